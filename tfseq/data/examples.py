"""Labelled texts, as every classification source returns them: texts, labels, where each came from, groups."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Examples:
    """Labelled texts of one split.

    Args:
        texts: the texts.
        labels: int32 class ids (indices into a class list), or, as a source reads them, the label strings (a NumPy
            str array; `class_ids` turns them into ids).
        names: where each text came from (file, line, archive member, TFDS index), for error messages.
        groups: a group per text (a movie, an author) when the source has them: validation is carved by group so
            that no group straddles train and validation; None when the source has none.
    """

    texts: list[str]
    labels: np.ndarray
    names: list[str]
    groups: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, index: np.ndarray) -> "Examples":
        """Returns the examples at `index`, in that order."""
        index = np.asarray(index, np.int64)
        return Examples([self.texts[i] for i in index], self.labels[index], [self.names[i] for i in index],
                        None if self.groups is None else [self.groups[i] for i in index])


def concat(parts: list[Examples]) -> Examples:
    """Joins splits end to end (groups are kept only when every part has them)."""
    groups = None if any(p.groups is None for p in parts) else [g for p in parts for g in p.groups]
    return Examples([t for p in parts for t in p.texts], np.concatenate([p.labels for p in parts]).astype(np.int32),
                    [n for p in parts for n in p.names], groups)


def class_ids(values: list[str], classes: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Turns label strings into class ids.

    Args:
        values: one label per text, as strings.
        classes: the class list to use; None = the sorted distinct values (in numeric order when every label is a
            number, so "2" comes before "10").

    Returns:
        (int32 ids, the class list). A value missing from a given class list gets id -1.
    """
    if classes is None:
        distinct = sorted(map(str, set(values)))
        numbers = numeric_values(distinct)
        classes = distinct if numbers is None else [v for _, v in sorted(zip(numbers.tolist(), distinct))]
    index = {name: i for i, name in enumerate(classes)}
    return np.array([index.get(v, -1) for v in values], np.int32), list(classes)


def numeric_values(names: list[str]) -> np.ndarray | None:
    """The values of class names that are all finite numbers (star ratings: ordinal classes), else None.

    "nan" and "inf" parse as floats but have no distance to other classes: they make the names non-numeric.
    """
    try:
        values = np.array([float(name) for name in names], np.float64)
    except (TypeError, ValueError):
        return None
    return values if len(values) and np.isfinite(values).all() else None
