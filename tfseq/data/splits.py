"""Carving labelled texts into train / validation / test: by group (no group straddles two splits), stratified by
class, and stratified samples for tiny runs. Every draw comes from the caller's seeded generator."""
from __future__ import annotations

import numpy as np

from tfseq.data.examples import Examples


def group_carve(groups: list[str], fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Holds out every text of a random `fraction` of the groups (at least one group).

    Returns:
        (bool mask of the held-out texts, a note saying how many groups were held out).
    """
    distinct = np.array(sorted(set(groups)))
    held = set(rng.permutation(distinct)[: max(1, round(len(distinct) * fraction))])
    return np.array([g in held for g in groups], bool), f"all texts of {len(held)} of {len(distinct)} groups"


def stratified_carve(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Holds out a random `fraction` of each class's texts (at least one of a class with two or more).

    Returns:
        A bool mask of the held-out texts.
    """
    held = np.zeros(len(labels), bool)
    for label in np.unique(labels):
        index = np.flatnonzero(labels == label)
        count = round(len(index) * fraction)
        held[rng.permutation(index)[: max(count, 1 if len(index) > 1 else 0)]] = True
    return held


def stratified_sample(part: Examples, limit: int, rng: np.random.Generator) -> Examples:
    """A sample of about `limit` texts with the classes in their original proportion, in the original order."""
    if limit >= len(part):
        return part
    keep = []
    for label in np.unique(part.labels):
        index = np.flatnonzero(part.labels == label)
        keep.append(rng.permutation(index)[: round(limit * len(index) / len(part))])
    return part.take(np.sort(np.concatenate(keep)))
