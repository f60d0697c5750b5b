"""A GRU layer for recurrent dropout off the GPU: the input projection leaves the time loop (model.fast_gru).

Keras' GRU with recurrent dropout runs its cell's first implementation: at every step three input matmuls and three
recurrent matmuls, one per gate, each recurrent one behind its own dropout mask. `FastGRU` multiplies the whole
window's input by the input kernel in one matmul before the loop and leaves one `h @ U` per step, behind one mask
shared by the three gates (drawn once per call, so once per window, as Keras' masks are). At inference, and without
recurrent dropout, it computes exactly what keras.layers.GRU (reset_after) computes with the same weights, which it
keeps in Keras' layout (`cell.kernel`, `cell.recurrent_kernel`, `cell.bias` of shape [2, 3 * units]), so the sampler,
the exporter and the memory estimate read it as a GRU. Keras layers and ops only: it runs on any backend.
"""
from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="tfseq")
class FastGRUCell(layers.GRUCell):
    """A reset-after GRU step whose input is already `x @ kernel + bias[0]`: only `h @ recurrent_kernel` is computed.

    Args:
        units: the state size.
        recurrent_dropout: the fraction of the state dropped (one mask for all three gates) while training.
        **kwargs: the rest of keras.layers.GRUCell's arguments; input dropout and reset_after = False are refused.
    """

    def __init__(self, units, recurrent_dropout=0.0, **kwargs):
        super().__init__(units, recurrent_dropout=recurrent_dropout, **kwargs)
        if self.dropout or not self.reset_after or not self.use_bias:
            raise ValueError("FastGRUCell supports neither input dropout, reset_after = False nor use_bias = False")
        self.dropout_mask_count = None  # one recurrent mask, not one per gate

    def call(self, projected, states, training=False):
        h = states[0] if isinstance(states, (list, tuple)) else states
        if training and self.recurrent_dropout:
            inner = ops.matmul(h * self.get_recurrent_dropout_mask(h), self.recurrent_kernel)
        else:
            inner = ops.matmul(h, self.recurrent_kernel)
        inner = inner + self.bias[1]
        u = self.units
        z = self.recurrent_activation(projected[:, :u] + inner[:, :u])
        r = self.recurrent_activation(projected[:, u:2 * u] + inner[:, u:2 * u])
        candidate = self.activation(projected[:, 2 * u:] + r * inner[:, 2 * u:])
        h = z * h + (1 - z) * candidate
        return h, [h] if isinstance(states, (list, tuple)) else h


@keras.saving.register_keras_serializable(package="tfseq")
class FastGRU(layers.RNN):
    """keras.layers.RNN over a FastGRUCell that projects the whole sequence's input before the loop.

    Build it as `FastGRU(FastGRUCell(units, recurrent_dropout=...), return_sequences=..., stateful=...)`.
    """

    def inner_loop(self, sequences, initial_state, mask, training=False):
        projected = ops.matmul(sequences, self.cell.kernel) + self.cell.bias[0]
        return super().inner_loop(projected, initial_state, mask, training=training)
