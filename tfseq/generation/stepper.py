"""The per-step recurrent cells of a trained next-token model, over folded weights, with explicit state.

The Keras model's weights are read into a `tf.Module` that runs the cells by hand: the state is carried from token to
token (the textbook re-runs the model on a 40-character window for every new character), and the embedding lookup
and the first layer's input projection are folded into one table, so each step of the first layer costs a gather
instead of a matmul. It works for any vocabulary (characters or words). A test checks that the logits at every
step equal the Keras model's.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from tfseq.errors import UserError
from tfseq.generation.sampling import sample_loop
from tfseq.models.factory import cell_kind, rnn_layers

NEVER = -1e9  # the logit of an id that must never be drawn (a word model's <unk>)


@dataclass
class _Layer:
    kind: str
    units: int
    kernel: np.ndarray  # [inputs, gates * units]
    recurrent: np.ndarray  # [units, gates * units]
    bias: np.ndarray  # [gates * units], added to the input projection
    recurrent_bias: np.ndarray | None  # GRU (reset_after): [3 * units], added to the recurrent projection


def _read_layers(model: keras.Model) -> list[_Layer]:
    found = []
    for layer in rnn_layers(model):
        if isinstance(layer, keras.layers.Bidirectional):
            raise UserError("a bidirectional model cannot generate text")
        cell = layer.cell
        kind = cell_kind(cell)
        kernel, recurrent, bias = (np.asarray(keras.ops.convert_to_numpy(w), np.float32)
                                   for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
        recurrent_bias = None
        if kind == "gru":
            bias, recurrent_bias = bias[0], bias[1]
        found.append(_Layer(kind, cell.units, kernel, recurrent, bias, recurrent_bias))
    return found


class Stepper(tf.Module):
    """A next-token model's weights, one step of its cells, and the compiled sampling loop over them.

    Args:
        model: a next-token model from `build_model` (unidirectional SimpleRNN / LSTM / GRU, any depth).
        never: ids that are never drawn (their logits are set to NEVER), e.g. a word model's <unk>.
    """

    def __init__(self, model: keras.Model, never: tuple[int, ...] = ()):
        super().__init__(name="stepper")
        layers = _read_layers(model)
        embedding = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings).astype(np.float32)
        self.kinds = [layer.kind for layer in layers]
        self.units = [layer.units for layer in layers]
        # Folded first layer: table[id] = embedding[id] @ kernel + bias, computed once in float64.
        first = layers[0]
        table = embedding.astype(np.float64) @ first.kernel.astype(np.float64) + first.bias
        # Variables, not constants: an exported model keeps its weights out of the graph definition.
        const = lambda value, name: tf.Variable(np.asarray(value, np.float32), trainable=False, name=name)
        self.table = const(table, "folded_embedding")
        self.kernels = [const(layer.kernel, f"kernel_{i + 1}") for i, layer in enumerate(layers[1:])]
        self.biases = [const(layer.bias, f"bias_{i + 1}") for i, layer in enumerate(layers[1:])]
        self.recurrents = [const(layer.recurrent, f"recurrent_{i}") for i, layer in enumerate(layers)]
        self.recurrent_biases = [const(layer.recurrent_bias if layer.recurrent_bias is not None else np.zeros(0),
                                       f"recurrent_bias_{i}") for i, layer in enumerate(layers)]
        out_kernel, out_bias = _output_layer(model, embedding)
        self.out_kernel = const(out_kernel, "out_kernel")
        out_bias[list(never)] = NEVER
        self.out_bias = const(out_bias, "out_bias")

    def initial_state(self, batch: tf.Tensor) -> list:
        """Zero states: [h, c] per LSTM layer, [h] per GRU / SimpleRNN layer."""
        return [[tf.zeros([batch, u])] * (2 if kind == "lstm" else 1) for kind, u in zip(self.kinds, self.units)]

    def step(self, ids: tf.Tensor, states: list) -> tuple[tf.Tensor, list]:
        """Advances every layer by one token.

        Args:
            ids: int32 [batch], the current tokens.
            states: as from `initial_state`.

        Returns:
            (logits float32 [batch, vocab] for the next token, new states).
        """
        x, new_states = None, []
        for i, (kind, state) in enumerate(zip(self.kinds, states)):
            projected = tf.gather(self.table, ids) if i == 0 else tf.matmul(x, self.kernels[i - 1]) + self.biases[i - 1]
            x, state = _cell(kind, projected, state, self.recurrents[i], self.recurrent_biases[i])
            new_states.append(state)
        return tf.matmul(x, self.out_kernel) + self.out_bias, new_states

    @tf.function(input_signature=[
        tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32),
        tf.TensorSpec([], tf.float32), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
        tf.TensorSpec([], tf.int64), tf.TensorSpec([None, None], tf.int32)], autograph=False)
    def generate_ids(self, prompts, prompt_lengths, length, temperature, top_k, top_p, seed, stops):
        """The sampling loop (tfseq.generation.sampling.sample_loop) over this model's steps, compiled once."""
        return sample_loop(self.step, self.initial_state(tf.shape(prompts)[0]), prompts, prompt_lengths, length,
                           temperature, top_k, top_p, seed, stops)


def _output_layer(model: keras.Model, embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The last layer's output -> logits as one (kernel, bias); a tied output (a projection, then the embedding
    transposed) folded into one matrix in float64."""
    try:
        projection = model.get_layer("projection")
    except ValueError:
        dense = model.get_layer("logits")
        return (np.asarray(keras.ops.convert_to_numpy(dense.kernel), np.float32),
                np.array(keras.ops.convert_to_numpy(dense.bias), np.float32))
    kernel, bias = (np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in (projection.kernel, projection.bias))
    tied = embedding.astype(np.float64).T
    return (kernel @ tied).astype(np.float32), (bias @ tied).astype(np.float32)


def _cell(kind: str, projected, state, recurrent, recurrent_bias):
    """One step of a Keras LSTM / GRU (reset_after) / SimpleRNN cell given the input projection x @ W + b."""
    if kind == "lstm":
        h, c = state
        i, f, g, o = tf.split(projected + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        return h, [h, c]
    if kind == "gru":
        (h,) = state
        x_z, x_r, x_h = tf.split(projected, 3, axis=-1)
        r_z, r_r, r_h = tf.split(tf.matmul(h, recurrent) + recurrent_bias, 3, axis=-1)
        z = tf.sigmoid(x_z + r_z)
        candidate = tf.tanh(x_h + tf.sigmoid(x_r + r_r) * r_h)
        h = z * h + (1 - z) * candidate
        return h, [h]
    (h,) = state
    h = tf.tanh(projected + tf.matmul(h, recurrent))
    return h, [h]
