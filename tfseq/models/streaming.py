"""Scoring a long held-out stream with a language model, the state carried through it.

The stream is read as a few contiguous pieces side by side (tfseq.data.streams.stream_rows), each with up to 256
tokens of context before its first scored one, chunk by chunk, by a
stateful copy of the model: memory stays bounded for any stream length and vocabulary, and the model that is being
trained (and its carried state) is never touched.
"""
from __future__ import annotations

import numpy as np

from tfseq.data.streams import stream_rows
from tfseq.models.factory import build_model, reset_states

LOGITS_BUDGET = 2**23  # most logits one chunk computes (32 MB of float32): bounds memory for any vocabulary


class StreamScorer:
    """Scores one held-out stream with the current weights of a model, as often as asked (each epoch).

    Args:
        cfg: the model's ModelConfig.
        vocab_size: its vocabulary size.
        ids: the held-out stream.
        streams: pieces read side by side (one batch).
        context: ids read before each piece's first scored id (the first piece has none: it starts the stream).
    """

    def __init__(self, cfg, vocab_size: int, ids: np.ndarray, streams: int = 32, context: int = 256):
        import tensorflow as tf

        self.x, self.y, self.w = stream_rows(ids, streams, context)
        self.copy = build_model(cfg, vocab_size, stateful_batch=len(self.x))
        self.chunk = int(max(1, min(1024, LOGITS_BUDGET // (len(self.x) * vocab_size))))

        @tf.function(reduce_retracing=True)
        def score(inputs, targets, weights):
            logits = tf.cast(self.copy(inputs, training=False), tf.float32)
            nll = tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits)
            return tf.reduce_sum(tf.cast(nll, tf.float64) * tf.cast(weights, tf.float64))

        self._score = score

    def __call__(self, model) -> tuple[float, int]:
        """(total next-token cross-entropy in nats over ids[1:], number of ids scored) with `model`'s weights."""
        self.copy.set_weights(model.get_weights())
        reset_states(self.copy)
        total = 0.0
        for start in range(0, self.x.shape[1], self.chunk):
            piece = slice(start, start + self.chunk)
            total += float(self._score(self.x[:, piece], self.y[:, piece], self.w[:, piece]))
        return total, int(self.w.sum())

