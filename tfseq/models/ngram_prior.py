"""Naive-Bayes log-count ratios of a classifier's hashed n-grams (NBSVM's feature scaling, Wang & Manning 2012), for
the n-gram linear model's fixed `ratios` (model.ngram_prior = "nb")."""
from __future__ import annotations

import keras
import numpy as np


def naive_bayes_ratios(bag, encoded, num_classes: int, alpha: float = 1.0, batch_size: int = 256) -> np.ndarray:
    """Each hash bucket's naive-Bayes log-count ratio in the training texts.

    A text counts once for each distinct n-gram bucket it contains (binarised, as the NgramBag reads it). For a
    class c, with n[c, b] the texts of class c containing bucket b and m[c, b] those of the other classes:
    ratio = log((alpha + n[c, b]) / sum_b (alpha + n[c, b])) - log((alpha + m[c, b]) / sum_b (alpha + m[c, b])).

    Args:
        bag: the model's tfseq.models.layers.NgramBag (its hashing and its width: 1 for a binary head, whose one
            column is class 1 against class 0; else one column per class, each against the rest).
        encoded: the training split (tfseq.data.batching.Encoded: ids, offsets, class ids).
        num_classes: the run's classes.
        alpha: the smoothing count added to every bucket.
        batch_size: texts hashed together (sorted by length, so that little is padding).

    Returns:
        float32 [bag.buckets, bag.width]; a bucket no training text contains gets the classes' size ratio only.
    """
    counts = np.zeros((num_classes, bag.buckets), np.float64)
    lengths = np.diff(encoded.splits)
    by_length = np.argsort(lengths, kind="stable")
    for start in range(0, len(by_length), batch_size):
        rows = by_length[start:start + batch_size]
        ids = np.zeros((len(rows), max(int(lengths[rows].max()), 1)), np.int32)
        for i, row in enumerate(rows):
            ids[i, :lengths[row]] = encoded.ids[encoded.splits[row]:encoded.splits[row + 1]]
        hashes = keras.ops.convert_to_numpy(bag.hashes(ids))
        for i, row in enumerate(rows):
            counts[encoded.labels[row], np.unique(hashes[i][hashes[i] >= 0])] += 1
    total = counts.sum(axis=0)
    columns = [(1, 0)] if bag.width == 1 else [(c, None) for c in range(bag.width)]
    ratios = np.empty((bag.buckets, bag.width), np.float32)
    for k, (c, other) in enumerate(columns):
        inside = counts[c] + alpha
        outside = (counts[other] if other is not None else total - counts[c]) + alpha
        ratios[:, k] = np.log(inside / inside.sum()) - np.log(outside / outside.sum())
    return ratios
