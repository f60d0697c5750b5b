"""Naive-Bayes log-count ratios of a classifier's hashed n-grams (NBSVM's feature scaling, Wang & Manning 2012), for
the n-gram linear model's fixed `ratios` (model.ngram_prior = "nb")."""
from __future__ import annotations

import keras
import numpy as np


def naive_bayes_ratios(bag, encoded, num_classes: int, alpha: float = 1.0, min_count: int = 1,
                       batch_size: int = 256) -> np.ndarray:
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
        min_count: > 1: a bucket fewer training texts contain gets ratio 0 (the n-gram linear model ignores it) and
            is left out of the sums, as NBSVM leaves out n-grams under its min_df.
        batch_size: texts hashed together.

    Returns:
        float32 [bag.buckets, bag.width]; with min_count 1, a bucket no training text contains gets the classes' size
        ratio only.
    """
    from tfseq.data.batching import eval_dataset

    counts = np.zeros(num_classes * bag.buckets, np.float64)
    for ids, labels in eval_dataset(encoded, batch_size):  # shortest texts first: little padding to hash
        ranked = np.sort(keras.ops.convert_to_numpy(bag.hashes(ids)), axis=1)
        # Each text's distinct buckets (-1: an n-gram reaching into padding), as NgramBag.call counts them.
        first = (ranked >= 0) & np.pad(ranked[:, 1:] != ranked[:, :-1], [[0, 0], [1, 0]], constant_values=True)
        classes = np.broadcast_to(labels.numpy().astype(np.int64), ranked.shape)
        counts += np.bincount((classes * bag.buckets + ranked)[first], minlength=counts.size)
    counts = counts.reshape(num_classes, bag.buckets)
    # min_count 1 keeps every bucket, even those no training text contains (the smoothing's mass stays in the sums).
    keep = counts.sum(axis=0) >= min_count if min_count > 1 else np.ones(bag.buckets, bool)
    ratios = np.zeros((bag.buckets, bag.width), np.float32)
    for column, c in enumerate([1] if bag.width == 1 else range(bag.width)):
        inside, outside = counts[c][keep] + alpha, counts.sum(axis=0)[keep] - counts[c][keep] + alpha
        ratios[keep, column] = np.log(inside / inside.sum()) - np.log(outside / outside.sum())
    return ratios
