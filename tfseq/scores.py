"""Scores of a classifier's predicted probabilities against true labels, and a confusion-matrix picture.

Everything here is plain NumPy (no scikit-learn): accuracy, cross-entropy, per-class precision / recall / F1,
macro F1, the confusion matrix, the exact ROC AUC of two-class runs and, for ordered classes such as star
ratings, the mean absolute error in label units. Results are plain Python values, ready for JSON.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfseq.data.examples import numeric_values
from tfseq.files import atomic_save

EPSILON = 1e-7  # Keras' backend.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON] before the log


def rank_with_ties(values) -> np.ndarray:
    """1-based ranks of `values`, tied values given the mean of the ranks they share (as scipy.stats.rankdata).

    Args:
        values: a 1-D array of numbers.

    Returns:
        float array of the same length: e.g. [3, 1, 3, 2] -> [3.5, 1, 3.5, 2].
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"rank_with_ties needs a 1-D array, got shape {values.shape}")
    _, group, counts = np.unique(values, return_inverse=True, return_counts=True)
    # The distinct values in ascending order occupy consecutive blocks of ranks: block j ends at rank
    # counts[:j + 1].sum() and starts counts[j] - 1 ranks before; its members all get the block's midpoint.
    last = np.cumsum(counts)
    mean_rank = last - (counts - 1) / 2
    return mean_rank[group]


def binary_auc(scores, positive: np.ndarray) -> float:
    """Exact ROC AUC: the chance that a random positive scores above a random negative, ties counting one half.

    Args:
        scores: 1-D array, higher meaning "more likely positive".
        positive: boolean array of the same length, True for the positive examples.

    Returns:
        the AUC in [0, 1]; NaN when only one class is present.
    """
    scores = np.asarray(scores)
    positive = np.asarray(positive)
    if positive.dtype != bool:
        # 0/1 integers would be taken as indices below, silently giving a wrong answer
        raise ValueError(f"positive must be a boolean array, got dtype {positive.dtype}")
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} must be 1-D of the same length")
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if not n_pos or not n_neg:
        return float("nan")
    # Mann-Whitney: the positives' rank sum, less the smallest it could be (n_pos(n_pos+1)/2), counts the
    # (positive, negative) pairs won by the positive, a tie's mean rank giving each tied pair one half.
    won = rank_with_ties(scores)[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(won / (n_pos * n_neg))


def classification_scores(probs: np.ndarray, labels: np.ndarray, classes: list[str], ordinal: bool = False,
                          predicted: np.ndarray | None = None) -> dict:
    """Scores of class probabilities against the true classes; the predicted class is the argmax (the first on ties)
    unless `predicted` gives it.

    Per class, precision = 0 when the class was never predicted, recall = 0 when it has no support, and
    F1 = 0 when precision and recall are both 0. Macro F1 averages F1 over the classes that have support or
    were predicted: a class with neither says nothing about the model and is left out.

    Args:
        probs: float [n, k] class probabilities, rows summing to ~1.
        labels: int [n] true class ids in 0..k-1.
        classes: the k class names, in id order.
        ordinal: the names are numbers (e.g. stars): also report the mean absolute error in those units.
        predicted: int [n] the predicted class ids, when the model decides otherwise than by argmax (a binary head:
            class 1 from probability 0.5 on).

    Returns:
        {"accuracy", "loss" (mean cross-entropy in nats, probabilities clipped as Keras does), "macro_f1",
        "per_class": {name: {"precision", "recall", "f1", "support"}}, "confusion" (k lists, row = true class,
        column = predicted class)}, plus "auc" (class 1 positive, scored by probs[:, 1]) when k == 2, and
        "mae" (of the predicted class's value) and "mae_expected" (of the probability-weighted mean value)
        when `ordinal`; all plain Python values.

    Raises:
        ValueError: on no examples, mismatched shapes, labels out of range, repeated class names, or a
            non-numeric class name when `ordinal`.
    """
    probs = np.asarray(probs, dtype=np.float64)  # float32 would round 1 - 1e-7 and drift in the sums
    labels = np.asarray(labels)
    k = len(classes)
    if probs.ndim != 2 or probs.shape[1] != k:
        raise ValueError(f"probs must have shape [n, {k}] for {k} classes, got {probs.shape}")
    if len(set(classes)) != k:
        raise ValueError(f"class names must be distinct: {classes}")
    n = probs.shape[0]
    if n == 0:
        raise ValueError("no examples to score")
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {n} integers, got shape {labels.shape} of {labels.dtype}")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"labels must lie in 0..{k - 1}, got {labels.min()}..{labels.max()}")
    values = _class_values(classes) if ordinal else None

    predicted = np.argmax(probs, axis=1) if predicted is None else np.asarray(predicted, np.int64)
    confusion = np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)
    hits = np.diag(confusion)
    support = confusion.sum(axis=1)
    times_predicted = confusion.sum(axis=0)
    # np.divide with `where` leaves the 0 of `out` where the denominator is 0: the conventions of the docstring.
    precision = np.divide(hits, times_predicted, out=np.zeros(k), where=times_predicted > 0)
    recall = np.divide(hits, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    seen = (support > 0) | (times_predicted > 0)  # never empty: n > 0 gives some class support

    true_prob = np.clip(probs[np.arange(n), labels], EPSILON, 1 - EPSILON)
    scores = {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(np.log(true_prob))),
        "macro_f1": float(f1[seen].mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(classes)
        },
        "confusion": confusion.tolist(),
    }
    if k == 2:
        scores["auc"] = binary_auc(probs[:, 1], labels == 1)
    if ordinal:
        true_value = values[labels]
        scores["mae"] = float(np.mean(np.abs(values[predicted] - true_value)))
        scores["mae_expected"] = float(np.mean(np.abs(probs @ values - true_value)))
    return scores


def _class_values(classes: list[str]) -> np.ndarray:
    """The numeric values of ordinal class names ("1" .. "10" stars), raising ValueError naming one that is not."""
    values = numeric_values(classes)
    if values is None:
        bad = next(name for name in classes if numeric_values([name]) is None)
        raise ValueError(f"ordinal scores need class names that are finite numbers, got {bad!r}")
    return values


def plot_confusion(confusion: list[list[int]], classes: list[str], path: Path, title: str = "") -> None:
    """Draws a confusion matrix as a PNG heat map: colour = share of the true class's examples, text = count.

    Args:
        confusion: k lists of k counts, row = true class, column = predicted class.
        classes: the k class names (tick labels).
        path: the PNG to write (atomically).
        title: drawn above the matrix when given.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, dtype=np.int64)
    k = len(classes)
    if counts.shape != (k, k):
        raise ValueError(f"confusion must be {k} x {k} for {k} classes, got shape {counts.shape}")
    # Row-normalised, so that a rare class's mistakes show as clearly as a common one's; empty rows stay 0.
    row_totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, row_totals, out=np.zeros((k, k)), where=row_totals > 0)

    side = max(4.0, 2.0 + 0.5 * k)  # about half an inch per cell: 20 classes still have room for 5-digit counts
    font = 10 if k <= 8 else 8 if k <= 14 else 7
    fig, ax = plt.subplots(figsize=(side + 1.0, side))  # the extra inch is for the colour bar
    try:
        image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
        for (row, col), count in np.ndenumerate(counts):
            # white on the dark half of the colour map, black on the light half
            ax.text(col, row, str(count), ha="center", va="center", fontsize=font,
                    color="white" if shares[row, col] > 0.5 else "black")
        # Turn the column labels when the longest would be wider than its cell (a character is ~0.6 em).
        cell_points = 72 * side * 0.7 / k
        rotate = max(len(name) for name in classes) * 0.6 * font > cell_points
        ax.set_xticks(range(k), labels=classes, fontsize=font, rotation=45 if rotate else 0,
                      ha="right" if rotate else "center", rotation_mode="anchor")
        ax.set_yticks(range(k), labels=classes, fontsize=font)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        atomic_save(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100), suffix=".png")
    finally:
        plt.close(fig)  # pyplot keeps every figure alive until closed, also when the save failed
