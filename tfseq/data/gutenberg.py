"""A Project Gutenberg book stripped to its text, and shuffled (input, target) windows of an id stream (a
language model's stateless training)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfseq.errors import UserError

EMBEDDED_BOOK = Path(__file__).resolve().parent / "books" / "1268-0.txt"
_START_LINE = re.compile(r"^\*\*\* ?START OF[^\n]*\n", re.MULTILINE | re.IGNORECASE)
_END_LINE = re.compile(r"^\*\*\* ?END OF", re.MULTILINE | re.IGNORECASE)


def strip_gutenberg(text: str, start_marker: str = "", end_marker: str = "") -> str:
    """Cuts a Gutenberg file down to the book: no header, no licence.

    Args:
        text: the whole file.
        start_marker: the book starts at the first occurrence of this (kept, as the textbook does); when it is
            empty or absent, the book starts after the "*** START OF ..." line (or at the top).
        end_marker: the book ends before the first occurrence of this after the start, or before the
            "*** END OF ..." line, whichever comes first (or at the bottom).

    Returns:
        The book's text.
    """
    start = text.find(start_marker) if start_marker else -1
    if start < 0:
        found = _START_LINE.search(text)
        start = found.end() if found else 0
    ends = [len(text)]
    if end_marker and (pos := text.find(end_marker, start)) >= 0:
        ends.append(pos)
    if found := _END_LINE.search(text, start):
        ends.append(found.start())
    return text[start:min(ends)]


def steps_per_epoch(n_ids: int, seq_len: int, batch_size: int, limit: int = 0) -> int:
    """Batches per epoch: one full pass over `n_ids` characters (the same for every window offset), or `limit`.

    Raises UserError when the text gives less than one batch, or when `limit` asks for more than one pass.
    """
    full = (n_ids - 1 - seq_len) // seq_len // batch_size
    if full < 1:
        raise UserError(
            f"the training text ({n_ids:,} characters) gives fewer than one batch of {batch_size} windows of "
            f"{seq_len}; lower train.batch_size or data.seq_len"
        )
    if limit > full:
        raise UserError(f"train.steps_per_epoch = {limit} is more than one pass over the text ({full} batches); "
                        "raise train.epochs instead")
    return limit or full


def train_dataset(ids: np.ndarray, seq_len: int, batch_size: int, seed: int, first_epoch: int,
                  epochs: int, steps: int = 0) -> tuple[tf.data.Dataset, int]:
    """Shuffled (input, target) windows for epochs `first_epoch` .. `epochs - 1`, epoch after epoch.

    Each epoch cuts the text into back-to-back windows of seq_len + 1 characters (neighbours share one character, so
    every transition is learnt once per epoch), starting at an offset in [0, seq_len] and in an order drawn from
    (seed, epoch). An epoch's batches therefore do not depend on earlier epochs, and a resumed run sees exactly the
    batches an uninterrupted one would.

    Args:
        ids: the training text as int32 char ids.
        seq_len: input length of each window.
        batch_size: windows per batch (partial batches are dropped).
        seed: the run's seed.
        first_epoch: the epoch to start at (0-based; > 0 when resuming).
        epochs: the epoch to stop before.
        steps: batches per epoch, at most one pass; 0 = one pass.

    Returns:
        (dataset of (int32[batch, seq_len], int32[batch, seq_len]), batches per epoch).
    """
    steps = steps_per_epoch(len(ids), seq_len, batch_size, steps)
    windows = (len(ids) - 1 - seq_len) // seq_len
    text = tf.constant(ids)
    span = tf.range(seq_len + 1)

    def one_epoch(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        offset = tf.random.stateless_uniform([], key, minval=0, maxval=seq_len + 1, dtype=tf.int32)
        order = tf.random.experimental.stateless_shuffle(tf.range(windows), key)[: steps * batch_size]
        starts = offset + order * seq_len
        return tf.data.Dataset.from_tensor_slices(starts).batch(batch_size)

    def cut(starts):
        window = tf.gather(text, starts[:, None] + span[None, :])
        return window[:, :-1], window[:, 1:]

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(one_epoch)
    return ds.map(cut, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE), steps


def eval_dataset(ids: np.ndarray, seq_len: int, batch_size: int) -> tf.data.Dataset:
    """Back-to-back (input, target) windows over held-out ids, in order, the last batch partial.

    Args:
        ids: the held-out text as int32 char ids.
        seq_len: input length of each window.
        batch_size: windows per batch.
    """
    windows = (len(ids) - 1) // seq_len
    starts = np.arange(windows) * seq_len
    window = ids[starts[:, None] + np.arange(seq_len + 1)[None, :]]
    return tf.data.Dataset.from_tensor_slices((window[:, :-1], window[:, 1:])).batch(batch_size).cache()
