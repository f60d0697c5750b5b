"""The model factory: a backbone (Embedding -> stacked SimpleRNN/LSTM/GRU -> pooling) and a head, Keras layers only.

Nothing here calls TensorFlow directly, so the same models run on any Keras backend.
Layer names are fixed (`embedding`, `rnn_0`, `rnn_1`, ..., `logits` / `output`) because the generator and the
exporter read weights by name.
"""
from __future__ import annotations

import keras
from keras import layers

from tfseq.config import ModelConfig
from tfseq.errors import UserError
from tfseq.models.fast_gru import FastGRU, FastGRUCell
from tfseq.models.heads import get_head
from tfseq.models.layers import CharCNN, HashedBigrams, NgramBag, ReversibleEmbedding, TimePooling, TokenDropout

# A tagger's character CNN (model.char_features): each word's first and last MAX_WORD_CHARS / 2 characters, as code
# points hashed into CHAR_BUCKETS ids (0: padding; no character vocabulary to store or to miss), embedded in
# CHAR_DIM, convolved over CHAR_WIDTH characters and max-pooled over the word: a word outside the vocabulary still
# shows its suffix, capitals and digits. tfseq.data.tag_encoding makes the ids.
MAX_WORD_CHARS, CHAR_BUCKETS, CHAR_DIM, CHAR_WIDTH = 16, 1024, 16, 3

CELLS = {"lstm": layers.LSTM, "gru": layers.GRU, "simplernn": layers.SimpleRNN}
# Gates per cell: the width of the kernels is gates * units.
GATES = {"lstm": 4, "gru": 3, "simplernn": 1}


def build_backbone(cfg: ModelConfig, vocab_size: int, per_step: bool, stateful_batch: int = 0):
    """The recurrent body: ids -> embedding (+ hashed bigrams) -> N recurrent layers -> pooling (unless per_step).

    Args:
        cfg: the model section of a run config.
        vocab_size: ids the embedding takes (a word vocabulary's OOV id is the last, vocab_size - 1, which token
            dropout uses).
        per_step: return one feature vector per step (language models, taggers) instead of one per text.
        stateful_batch: > 0: a stateful model of this fixed batch size, whose recurrent layers carry their state
            from one call to the next (until `reset_state`); its weights are those of the stateless model.

    Returns:
        (the model's inputs: the int32 ids input, or with model.char_features {"ids": [batch, time], "chars": [batch,
        time, MAX_WORD_CHARS]}; the features tensor: [batch, time, width] when per_step, else [batch, width]; the
        embedding layer).
    """
    inputs = keras.Input(shape=(None,), batch_size=stateful_batch or None, dtype="int32", name="ids")
    ids = TokenDropout(cfg.token_dropout, vocab_size - 1, name="token_dropout")(inputs) if cfg.token_dropout else inputs
    embedding = (ReversibleEmbedding if cfg.tie_embeddings else layers.Embedding)(
        vocab_size, cfg.embedding_dim, mask_zero=cfg.mask_zero, name="embedding")
    x = embedding(ids)
    if cfg.char_features:
        chars = keras.Input(shape=(None, MAX_WORD_CHARS), batch_size=stateful_batch or None, dtype="int32",
                            name="chars")
        x = CharCNN(cfg.char_features, CHAR_BUCKETS, CHAR_DIM, CHAR_WIDTH, name="char_cnn")([x, chars])
        inputs = {"ids": inputs, "chars": chars}
    if cfg.bigram_buckets:
        pairs = HashedBigrams(cfg.bigram_buckets, cfg.embedding_dim, cfg.mask_zero, name="bigrams")(ids)
        x = layers.Add(name="embedding_sum")([x, pairs])
    if cfg.embedding_dropout:
        x = layers.SpatialDropout1D(cfg.embedding_dropout, name="embedding_dropout")(x)
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        sequences = per_step or not (last and cfg.pooling == "last")
        if cfg.fast_gru:
            rnn = FastGRU(FastGRUCell(cfg.units, recurrent_dropout=cfg.recurrent_dropout), return_sequences=sequences,
                          stateful=stateful_batch > 0, name=f"rnn_{i}")
        else:
            rnn = CELLS[cfg.cell](cfg.units, return_sequences=sequences, recurrent_dropout=cfg.recurrent_dropout,
                                  stateful=stateful_batch > 0, name=f"rnn_{i}")
        if cfg.bidirectional:
            rnn = layers.Bidirectional(rnn, name=f"rnn_{i}")
        x = rnn(x)
        if cfg.dropout:
            x = layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    if not per_step:
        if cfg.pooling != "last":
            x = TimePooling(cfg.pooling, name="pooling")(x)
        if cfg.hidden_units:
            x = layers.Dense(cfg.hidden_units, activation="relu", name="hidden")(x)
    return inputs, x, embedding


def build_model(cfg: ModelConfig, vocab_size: int, num_classes: int = 0, stateful_batch: int = 0) -> keras.Model:
    """Builds the network a ModelConfig describes: the backbone, then the head `cfg.head` names.

    Args:
        cfg: the model section of a run config (already checked).
        vocab_size: ids the embedding takes (including padding / OOV ids).
        num_classes: classes of a multiclass head; 0 = cfg.num_classes.
        stateful_batch: > 0 for a stateful model of that batch size (see build_backbone).

    Returns:
        An uncompiled keras.Model from int32 ids (batch, time) to logits (batch, time, vocab) for a next-token
        head, a probability (batch, 1) for a binary head, or probabilities (batch, classes) for a multiclass head.
    """
    head = get_head(cfg.head)
    head.check(cfg)
    if vocab_size < 2:
        raise UserError(f"the vocabulary has {vocab_size} entries; a model needs at least 2")
    inputs, features, embedding = build_backbone(cfg, vocab_size, head.per_step, stateful_batch)
    num_classes = num_classes or cfg.num_classes
    ngrams = (NgramBag(cfg.ngram_buckets, cfg.ngram_order, head.width(vocab_size, num_classes), cfg.ngram_scale,
                       prior=cfg.ngram_prior == "nb", hash=cfg.ngram_hash, dropout=cfg.ngram_dropout, dtype="float32",
                       name="ngrams")(inputs)
              if cfg.ngram_buckets else None)
    outputs = head.build(features, vocab_size, num_classes, embedding if cfg.tie_embeddings else None, ngrams)
    names = {"next_token": "char_lm", "per_token": "tagger"}
    return keras.Model(inputs, outputs, name=names.get(head.name, "classifier"))


def parameter_count(cfg: ModelConfig, vocab_size: int, num_classes: int = 0) -> int:
    """The number of weights `build_model(cfg, vocab_size, num_classes)` will have, computed without building it.

    Returns:
        The parameter count (equal to the built model's `count_params()`).
    """
    head = get_head(cfg.head)
    total = vocab_size * cfg.embedding_dim + cfg.bigram_buckets * cfg.embedding_dim
    width, directions = cfg.embedding_dim, 2 if cfg.bidirectional else 1
    if cfg.char_features:  # the char embedding, then the convolution's kernel and bias
        total += CHAR_BUCKETS * CHAR_DIM + CHAR_WIDTH * CHAR_DIM * cfg.char_features + cfg.char_features
        width += cfg.char_features
    for _ in range(cfg.layers):
        # x W + h U + b per gate; a GRU with reset_after has a second bias.
        total += directions * GATES[cfg.cell] * cfg.units * (width + cfg.units + (2 if cfg.cell == "gru" else 1))
        width = directions * cfg.units
    if not head.per_step:
        width *= 2 if cfg.pooling == "max_mean" else 1
        if cfg.hidden_units:
            total += width * cfg.hidden_units + cfg.hidden_units
            width = cfg.hidden_units
    if cfg.tie_embeddings:  # a projection to embedding_dim; the logits reuse the embedding matrix
        return total + width * cfg.embedding_dim + cfg.embedding_dim
    outputs = head.width(vocab_size, num_classes or cfg.num_classes)
    tables = 2 if cfg.ngram_prior == "nb" else 1  # the n-gram weights, and their fixed naive-Bayes ratios
    return total + width * outputs + outputs + tables * cfg.ngram_buckets * outputs


def cell_kind(cell) -> str:
    """Returns "lstm", "gru" or "simplernn" for a recurrent layer's cell (FastGRUCell is a GRU cell)."""
    for kind, cell_class in (("lstm", layers.LSTMCell), ("gru", layers.GRUCell), ("simplernn", layers.SimpleRNNCell)):
        if isinstance(cell, cell_class):
            return kind
    raise ValueError(f"{type(cell).__name__} is not a cell tfseq builds")


def reset_states(model: keras.Model) -> None:
    """Zeroes the carried state of a stateful model's recurrent layers."""
    for layer in rnn_layers(model):
        layer.reset_state()


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
        if isinstance(cell, FastGRUCell):
            problems.append("model.fast_gru = true (set it false on a GPU)")
        found += [f"layer {layer.name} ({cell_kind(cell).upper()}) is off the cuDNN path on a GPU: {p}"
                  for p in problems]
    return found
