"""Contiguous lanes for stateful language-model training (truncated backpropagation through time).

The training stream is cut into `batch_size` lanes of equal length; batch k holds window k of every lane, so row i
of batch k continues row i of batch k-1 and a stateful model carries its state from one batch to the next (the
layout of PyTorch's word_language_model `batchify`). Each pass over the stream starts the lanes at a new offset in
[0, seq_len), drawn from (seed, pass), so window boundaries move from pass to pass. An epoch of fewer batches than a
pass (train.steps_per_epoch) goes on where the previous epoch stopped, so a long corpus is read through rather than
its first part again. An epoch's batches depend on nothing but (seed, epoch): a resumed run sees the batches an
uninterrupted one would.
"""
from __future__ import annotations

import numpy as np

from tfseq.errors import UserError


def lane_steps(n_ids: int, seq_len: int, batch_size: int, limit: int = 0) -> int:
    """Batches per epoch: the windows of seq_len every lane holds at any offset, or `limit`.

    Raises UserError when the stream gives less than one batch, or `limit` asks for more than one pass.
    """
    # The largest offset is seq_len - 1, and the targets need one id past the inputs.
    full = (n_ids - seq_len) // batch_size // seq_len
    if full < 1:
        raise UserError(f"the training stream ({n_ids:,} tokens) gives fewer than one batch of {batch_size} lanes "
                        f"of {seq_len}; lower train.batch_size or data.seq_len")
    if limit > full:
        raise UserError(f"train.steps_per_epoch = {limit} is more than one pass over the lanes ({full} batches); "
                        "raise train.epochs instead")
    return limit or full


def lane_offset(seed: int, stream_pass: int, seq_len: int) -> int:
    """Where the lanes of pass `stream_pass` start in the stream: an offset in [0, seq_len) drawn from (seed, pass)."""
    return int(np.random.default_rng([seed, stream_pass]).integers(seq_len))


def lanes(ids: np.ndarray, batch_size: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """The (input, target) lanes of one epoch: ids[offset:] cut into batch_size rows, targets shifted by one.

    Returns:
        (int32 [batch_size, lane_len], int32 [batch_size, lane_len]).
    """
    length = (len(ids) - offset - 1) // batch_size
    body = ids[offset:offset + batch_size * length + 1]
    return body[:-1].reshape(batch_size, length), body[1:].reshape(batch_size, length)


def lane_dataset(ids: np.ndarray, seq_len: int, batch_size: int, seed: int, first_epoch: int, epochs: int,
                 steps: int):
    """The (input, target) batches of epochs first_epoch .. epochs - 1, in lane order; batch k of epoch e is window
    (e * steps + k) of the passes over the stream laid end to end.

    Args:
        ids: the training stream (int32).
        seq_len: the window, where the gradient is cut.
        batch_size: lanes.
        seed: the run's seed.
        first_epoch: the epoch to start at (0-based; > 0 when resuming).
        epochs: the epoch to stop before.
        steps: batches per epoch (from `lane_steps`).

    Returns:
        A tf.data.Dataset of (int32 [batch_size, seq_len], int32 [batch_size, seq_len]), not shuffled.
    """
    import tensorflow as tf

    full = lane_steps(len(ids), seq_len, batch_size)

    def generator():
        laid_out = {}
        for window in range(first_epoch * steps, epochs * steps):
            stream_pass, k = divmod(window, full)
            if stream_pass not in laid_out:
                laid_out = {stream_pass: lanes(ids, batch_size, lane_offset(seed, stream_pass, seq_len))}
            x, y = laid_out[stream_pass]
            yield x[:, k * seq_len:(k + 1) * seq_len], y[:, k * seq_len:(k + 1) * seq_len]

    spec = tf.TensorSpec([batch_size, seq_len], tf.int32)
    return tf.data.Dataset.from_generator(generator, output_signature=(spec, spec)).prefetch(4)


def stream_rows(ids: np.ndarray, streams: int, context: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Held-out ids cut into `streams` contiguous pieces, read side by side, each with `context` ids before it.

    Every id of ids[1:] is scored exactly once, predicted from all of its piece and the piece's context; the
    context ids themselves are read but not scored (weight 0).

    Returns:
        (inputs, targets, weights), each [streams, width]; padding has weight 0.
    """
    n = len(ids)
    streams = max(1, min(streams, n - 1))
    bounds = np.linspace(1, n, streams + 1).astype(int)
    pieces = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        c = max(0, a - 1 - context)
        pieces.append((ids[c:b], np.arange(c + 1, b) >= a))  # the target positions of row[1:]
    width = max(len(row) for row, _ in pieces) - 1
    x, y = np.zeros((streams, width), np.int32), np.zeros((streams, width), np.int32)
    w = np.zeros((streams, width), np.float32)
    for i, (row, weight) in enumerate(pieces):
        x[i, : len(row) - 1], y[i, : len(row) - 1], w[i, : len(row) - 1] = row[:-1], row[1:], weight
    return x, y, w
