"""The model factory: Embedding -> stacked SimpleRNN/LSTM/GRU -> pooling -> head, from Keras layers only.

Nothing here calls TensorFlow directly, so the same models run on any Keras backend (the GPU timings use JAX).
Layer names are fixed (`embedding`, `rnn_0`, `rnn_1`, ..., `logits` / `output`) because the generator and the
exporter read weights by name.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from tfseq.config import ModelConfig
from tfseq.errors import UserError

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "simplernn": layers.SimpleRNN}
# Gates per cell: the width of the kernels is gates * units.
GATES = {"lstm": 4, "gru": 3, "simplernn": 1}


@keras.saving.register_keras_serializable(package="tfseq")
class TimePooling(layers.Layer):
    """Pools a (batch, time, features) sequence over time, skipping masked (padding) steps.

    Args:
        mode: "mean", "max", or "max_mean" (max and mean concatenated).
    """

    def __init__(self, mode: str, **kwargs):
        super().__init__(**kwargs)
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        keep = ops.expand_dims(ops.cast(mask, "bool"), -1)
        pooled = []
        if self.mode in ("max", "max_mean"):
            lowest = ops.full_like(inputs, -1e4 if inputs.dtype == "float16" else -1e30)
            pooled.append(ops.max(ops.where(keep, inputs, lowest), axis=1))
        if self.mode in ("mean", "max_mean"):
            weights = ops.cast(keep, inputs.dtype)
            count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1, inputs.dtype))
            pooled.append(ops.sum(inputs * weights, axis=1) / count)
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        width = input_shape[-1] * (2 if self.mode == "max_mean" else 1)
        return (input_shape[0], width)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="tfseq")
class TokenDropout(layers.Layer):
    """While training, replaces a random `rate` of the (non-padding) token ids by `oov_id`: word-level dropout.

    Args:
        rate: fraction of tokens replaced.
        oov_id: the vocabulary's out-of-vocabulary id.
        seed: seed of the layer's random generator.
    """

    def __init__(self, rate: float, oov_id: int, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rate, self.oov_id, self.seed = rate, oov_id, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids, training=False):
        if not training or not self.rate:
            return ids
        drop = keras.random.uniform(ops.shape(ids), seed=self.seed_generator) < self.rate
        return ops.where(drop & ops.not_equal(ids, 0), ops.cast(self.oov_id, ids.dtype), ids)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "oov_id": self.oov_id, "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfseq")
class HashedBigrams(layers.Layer):
    """Embeds each (previous token, token) pair, hashed into `buckets` rows: bigram features for an RNN's input.

    The pair hash is computed from the ids in the graph ((previous * 7919 + current) mod buckets, in int32, exact for
    vocabularies under 270,000 ids), so the input pipeline and the exported model need nothing extra.

    Args:
        buckets: rows of the bigram embedding table.
        dim: embedding size (that of the token embedding it is added to).
        mask_zero: whether id 0 is padding (the mask follows the token ids).
    """

    def __init__(self, buckets: int, dim: int, mask_zero: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.buckets, self.dim, self.mask_zero = buckets, dim, mask_zero
        self.table = layers.Embedding(buckets, dim, name="table")

    def build(self, input_shape):
        self.table.build(input_shape)

    def call(self, ids):
        ids = ops.cast(ids, "int32")
        previous = ops.pad(ids[:, :-1], [[0, 0], [1, 0]])
        return self.table(ops.mod(previous * 7919 + ids, self.buckets))

    def compute_mask(self, ids, mask=None):
        return ops.not_equal(ids, 0) if self.mask_zero else None

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.dim)

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets, "dim": self.dim, "mask_zero": self.mask_zero}


def build_model(cfg: ModelConfig, vocab_size: int) -> keras.Model:
    """Builds the network a ModelConfig describes.

    Args:
        cfg: the model section of a run config (already checked).
        vocab_size: number of ids the embedding takes (including padding / OOV ids; a word vocabulary's OOV id is
            the last, vocab_size - 1, which token dropout uses).

    Returns:
        An uncompiled keras.Model from int32 ids (batch, time) to logits (batch, time, vocab) for a next-token
        head, a probability (batch, 1) for a binary head, or probabilities (batch, classes) for a multiclass head.
    """
    if cfg.head == "next_token" and cfg.bidirectional:
        raise UserError("a bidirectional model cannot predict the next token (its backward layer sees it)")
    if vocab_size < 2:
        raise UserError(f"the vocabulary has {vocab_size} entries; a model needs at least 2")
    classifier = cfg.head != "next_token"
    inputs = keras.Input(shape=(None,), dtype="int32", name="ids")
    ids = TokenDropout(cfg.token_dropout, vocab_size - 1, name="token_dropout")(inputs) if cfg.token_dropout else inputs
    x = layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=cfg.mask_zero, name="embedding")(ids)
    if cfg.bigram_buckets:
        pairs = HashedBigrams(cfg.bigram_buckets, cfg.embedding_dim, cfg.mask_zero, name="bigrams")(ids)
        x = layers.Add(name="embedding_sum")([x, pairs])
    if cfg.embedding_dropout:
        x = layers.SpatialDropout1D(cfg.embedding_dropout, name="embedding_dropout")(x)
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        rnn = CELLS[cfg.cell](
            cfg.units,
            return_sequences=not (last and classifier and cfg.pooling == "last"),
            recurrent_dropout=cfg.recurrent_dropout,
            name=f"rnn_{i}",
        )
        if cfg.bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"rnn_{i}")
        x = rnn(x)
        if cfg.dropout:
            x = layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    if not classifier:
        # float32 logits even under mixed precision: softmax and sampling need the range.
        outputs = layers.Dense(vocab_size, dtype="float32", name="logits")(x)
        return keras.Model(inputs, outputs, name="char_lm")
    if cfg.pooling != "last":
        x = TimePooling(cfg.pooling, name="pooling")(x)
    if cfg.hidden_units:
        x = layers.Dense(cfg.hidden_units, activation="relu", name="hidden")(x)
    if cfg.head == "binary":
        outputs = layers.Dense(1, activation="sigmoid", dtype="float32", name="output")(x)
    else:
        outputs = layers.Dense(cfg.num_classes, activation="softmax", dtype="float32", name="output")(x)
    return keras.Model(inputs, outputs, name="classifier")


def parameter_count(cfg: ModelConfig, vocab_size: int) -> int:
    """The number of weights `build_model(cfg, vocab_size)` will have, computed without building it.

    Args:
        cfg: the model section of a run config.
        vocab_size: ids the embedding takes.

    Returns:
        The parameter count (equal to the built model's `count_params()`).
    """
    total = vocab_size * cfg.embedding_dim + cfg.bigram_buckets * cfg.embedding_dim
    width, directions = cfg.embedding_dim, 2 if cfg.bidirectional else 1
    for _ in range(cfg.layers):
        # x W + h U + b per gate; a GRU with reset_after has a second bias.
        total += directions * GATES[cfg.cell] * cfg.units * (width + cfg.units + (2 if cfg.cell == "gru" else 1))
        width = directions * cfg.units
    if cfg.head == "next_token":
        return total + width * vocab_size + vocab_size
    width *= 2 if cfg.pooling == "max_mean" else 1
    if cfg.hidden_units:
        total += width * cfg.hidden_units + cfg.hidden_units
        width = cfg.hidden_units
    outputs = 1 if cfg.head == "binary" else cfg.num_classes
    return total + width * outputs + outputs


def rnn_layers(model: keras.Model) -> list:
    """Returns the model's recurrent layers (`rnn_0`, `rnn_1`, ...) in order."""
    found = []
    while True:
        try:
            found.append(model.get_layer(f"rnn_{len(found)}"))
        except ValueError:
            return found


def cudnn_warnings(model: keras.Model) -> list[str]:
    """Why the model's LSTM / GRU layers would miss the cuDNN kernel on a GPU ([] when none would).

    cuDNN needs tanh / sigmoid activations, no recurrent dropout, no unrolling, biases, GRU reset_after, and masks
    that are right-padded (tfseq's pipelines always pad on the right). Off that path Keras 3 runs a step-by-step
    loop, several times slower on a GPU.

    Returns:
        One message per layer and setting, naming the setting to change.
    """
    found = []
    for layer in rnn_layers(model):
        inner = layer.forward_layer if isinstance(layer, layers.Bidirectional) else layer
        cell = inner.cell
        if not isinstance(cell, (layers.LSTMCell, layers.GRUCell)):
            continue
        problems = []
        if cell.recurrent_dropout:
            problems.append(f"recurrent_dropout = {cell.recurrent_dropout} (set model.recurrent_dropout = 0 and "
                            "regularise with model.dropout)")
        if cell.activation.__name__ != "tanh" or cell.recurrent_activation.__name__ != "sigmoid":
            problems.append("activations other than tanh / sigmoid")
        if inner.unroll:
            problems.append("unroll = True")
        if not cell.use_bias:
            problems.append("use_bias = False")
        if isinstance(cell, layers.GRUCell) and not cell.reset_after:
            problems.append("reset_after = False")
        found += [f"layer {layer.name} ({type(cell).__name__[:-4].upper()}) is off the cuDNN path on a GPU: {p}"
                  for p in problems]
    return found
