"""Encoded texts as batches: shuffled training epochs drawn from (seed, epoch), right-padded; evaluation batches;
scoring a whole split."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Encoded:
    """A split as ids: text i is `ids[splits[i]:splits[i + 1]]`, never empty; labels alongside.

    Args:
        ids: int32 flat token ids.
        splits: int64 row offsets, len(texts) + 1.
        labels: int32 labels.
    """

    ids: np.ndarray
    splits: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray = field(init=False)

    def __post_init__(self):
        self.lengths = np.diff(self.splits)


def epoch_batches(lengths: np.ndarray, batch_size: int, seed: int, epoch: int, bucket: bool) -> list[np.ndarray]:
    """The batches (arrays of text indices) of one training epoch, drawn from (seed, epoch) alone.

    Without bucketing: a shuffled order cut into batches. With bucketing: the shuffled order is cut into pools of
    64 batches, each pool sorted by length and cut into batches, and the batches shuffled, so that a batch holds
    texts of similar length (little padding) while every epoch still mixes the data. Either way an epoch has
    ceil(n / batch_size) batches, and a resumed run sees exactly the batches an uninterrupted one would.
    """
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    if bucket:
        pool = 64 * batch_size
        order = np.concatenate([p[np.argsort(lengths[p], kind="stable")]
                                for p in np.split(order, range(pool, len(order), pool))])
    batches = np.split(order, range(batch_size, len(order), batch_size))
    if bucket:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def _pad_to_multiple(ids, multiple: int):
    """Right-pads int ids [batch, time] with 0 so that time is a multiple of `multiple`."""
    import tensorflow as tf

    if multiple <= 1:
        return ids
    width = tf.shape(ids)[1]
    return tf.pad(ids, [[0, 0], [0, (width + multiple - 1) // multiple * multiple - width]])


def _batcher(data: Encoded, pad_multiple: int, class_weights: np.ndarray | None):
    """A function from text indices to a right-padded (int32 [batch, time], float32 [batch, 1]) batch, with float32
    [batch] sample weights (each text's class weight) when class_weights are given."""
    import tensorflow as tf

    rows = tf.RaggedTensor.from_row_splits(data.ids, data.splits)
    labels = tf.constant(data.labels, tf.float32)[:, None]
    if class_weights is None:
        return lambda index: (_pad_to_multiple(tf.gather(rows, index).to_tensor(), pad_multiple),
                              tf.gather(labels, index))
    weights = tf.constant(np.asarray(class_weights, np.float32)[data.labels])
    return lambda index: (_pad_to_multiple(tf.gather(rows, index).to_tensor(), pad_multiple),
                          tf.gather(labels, index), tf.gather(weights, index))


def balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class weights n / (k * count), as scikit-learn's "balanced": every class weighs the same in the loss.

    Returns:
        float64 [num_classes]; a class without texts gets weight 0.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return np.where(counts > 0, len(labels) / (num_classes * np.maximum(counts, 1)), 0.0)


def train_dataset(data: Encoded, batch_size: int, seed: int, first_epoch: int, epochs: int, bucket: bool,
                  pad_multiple: int = 1, class_weights: np.ndarray | None = None):
    """Right-padded (ids, label[, weight]) batches for epochs first_epoch .. epochs - 1, one epoch after the other.

    Each batch is padded to its longest text, rounded up to a multiple of `pad_multiple` (bounded shapes).

    Args:
        class_weights: a weight per class, given to each text as its sample weight; None = no weights.

    Returns:
        (tf.data.Dataset of (int32 [batch, time], float32 [batch, 1][, float32 [batch]]), batches per epoch).
    """
    import tensorflow as tf

    def index_batches():
        for epoch in range(first_epoch, epochs):
            yield from epoch_batches(data.lengths, batch_size, seed, epoch, bucket)

    ds = tf.data.Dataset.from_generator(index_batches, output_signature=tf.TensorSpec([None], tf.int64))
    ds = ds.map(_batcher(data, pad_multiple, class_weights), num_parallel_calls=2).prefetch(tf.data.AUTOTUNE)
    return ds, -(-len(data.lengths) // batch_size)


def _eval_batches(data: Encoded, batch_size: int, exact_lengths: bool) -> tuple[np.ndarray, np.ndarray]:
    """The order in which evaluation visits a split's texts (shortest first: least padding), and the batch bounds
    in that order. With exact_lengths, only texts of one length share a batch."""
    n = len(data.lengths)
    order = np.argsort(data.lengths, kind="stable")
    batch_splits = np.arange(0, n, batch_size)
    if exact_lengths:
        changes = np.flatnonzero(np.diff(data.lengths[order])) + 1
        # Within each run of equal lengths, a new batch every batch_size texts.
        run_starts = np.concatenate([[0], changes])
        run_ends = np.concatenate([changes, [n]])
        batch_splits = np.concatenate([np.arange(a, b, batch_size) for a, b in zip(run_starts, run_ends)] or
                                      [np.zeros(0, np.int64)])
    return order, np.append(batch_splits, n)


def eval_dataset(data: Encoded, batch_size: int, pad_multiple: int = 1, exact_lengths: bool = False):
    """Right-padded (ids, label) batches of a whole split, shortest texts first, cached after the first pass.

    Args:
        data: the encoded split.
        batch_size: texts per batch.
        pad_multiple: pad each batch's length up to a multiple of this.
        exact_lengths: only texts of one length share a batch, and nothing is padded: for models that read padding
            (no mask), whose score of a text would otherwise depend on the longest text beside it.

    Returns:
        The tf.data.Dataset.
    """
    import tensorflow as tf

    order, batch_splits = _eval_batches(data, batch_size, exact_lengths)
    # All batches as one [batch, (text), (token)] ragged tensor: slicing it costs tf.data microseconds per batch.
    rows = tf.gather(tf.RaggedTensor.from_row_splits(data.ids, data.splits), order)
    ids = tf.RaggedTensor.from_row_splits(rows, batch_splits)
    labels = tf.RaggedTensor.from_row_splits(data.labels[order].astype(np.float32)[:, None], batch_splits)
    ds = tf.data.Dataset.from_tensor_slices((ids, labels))
    multiple = 1 if exact_lengths else pad_multiple
    return ds.map(lambda x, y: (_pad_to_multiple(x.to_tensor(), multiple), y)).cache().prefetch(2)


def predict_split(model, data: Encoded, batch_size: int, pad_multiple: int = 1,
                  exact_lengths: bool = False) -> np.ndarray:
    """The model's outputs for every text of a split, in the split's own order.

    Args:
        model: a classifier (ids -> outputs [batch, width]).
        data, batch_size, pad_multiple, exact_lengths: as in `eval_dataset`.

    Returns:
        float64 [len(split), width].
    """
    ds = eval_dataset(data, batch_size, pad_multiple, exact_lengths)
    visited = model.predict(ds.map(lambda x, y: x), verbose=0).astype(np.float64)
    outputs = np.empty_like(visited)
    outputs[_eval_batches(data, batch_size, exact_lengths)[0]] = visited
    return outputs
