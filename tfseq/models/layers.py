"""The model factory's own Keras layers: pooling over time, token dropout, hashed bigram embeddings, an embedding
that also gives logits."""
from __future__ import annotations

import keras
from keras import layers, ops


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


@keras.saving.register_keras_serializable(package="tfseq")
class NgramBag(layers.Layer):
    """A linear model of a text's word n-grams, beside the recurrent one: each distinct 1..`order`-gram of the text
    (counted once, as NBSVM's binarised features) hashed into `buckets` rows of a `width`-wide table, the rows summed
    and scaled by `scale` / sqrt(distinct n-grams), to be added to the head's logits.

    N-grams are hashed from the ids in the graph (FNV-style: multiply and xor in int32, wrapping), so the input
    pipeline and the exported model need nothing extra. The "mixed" hash then scrambles every bit (murmur3's
    finalizer) before the bucket is taken: the FNV step alone leaves the low bits of a word pair's hash depending on
    few bits of its words, so that n-grams of frequent words crowd into few buckets. An n-gram that reaches into
    padding is left out. Duplicates are found by sorting each text's hashes, so the cost grows as t log t with the
    text's length t.

    Args:
        buckets: rows of the table (hash buckets shared by every order).
        order: the longest n-gram (1: words only).
        width: outputs (the head's logits: 1 for a binary head, k for k classes).
        scale: multiplies the output. The table starts at zero and Adam moves each weight by about its learning
            rate per step whatever the gradient's size, so this is the table's learning rate over the rest.
        hash: "mixed" (the default) or "fnv" (without the finalizer: models saved before it existed).
        dropout: while training, leaves out this fraction of each text's distinct n-grams (the rest scaled up by
            1 / (1 - dropout), so a text's expected logit stays), so that the table cannot memorise a training text
            by its rare n-grams alone.
        seed: seed of the dropout's random generator.
        prior: each row is also multiplied by a fixed row of `ratios` (ones until set: see
            tfseq.models.ngram_prior), NBSVM's scaling of each feature by its naive-Bayes log-count ratio. Under Adam
            an n-gram's weight then moves by about its ratio per step: telling n-grams learn fast, neutral ones
            hardly at all. The ratios are saved with the weights and never trained.
    """

    def __init__(self, buckets: int, order: int, width: int, scale: float = 1.0, prior: bool = False,
                 hash: str = "mixed", dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.buckets, self.order, self.width, self.scale, self.prior = buckets, order, width, float(scale), prior
        self.hash, self.dropout, self.seed = hash, float(dropout), seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.table = layers.Embedding(buckets, width, embeddings_initializer="zeros", name="table")
        self.ratios = (layers.Embedding(buckets, width, embeddings_initializer="ones", trainable=False,
                                        name="ratios") if prior else None)

    def build(self, input_shape):
        self.table.build(input_shape)
        if self.ratios is not None:
            self.ratios.build(input_shape)

    def hashes(self, ids):
        """int32 [batch, time * order]: each n-gram's bucket, or -1 where it reaches into padding."""
        ids = ops.cast(ids, "int32")
        valid = ops.not_equal(ids, 0)
        h, ok, found = ops.zeros_like(ids), ops.ones_like(valid), []
        for n in range(self.order):
            # The n-gram ending at t: the tokens t-n .. t; its order is mixed in so orders do not collide.
            back = ops.pad(ids[:, :-n], [[0, 0], [n, 0]]) if n else ids
            back_ok = ops.pad(valid[:, :-n], [[0, 0], [n, 0]]) if n else valid
            h = ops.bitwise_xor(h * 16777619, back + 7919 * (n + 1))
            ok = ops.logical_and(ok, back_ok)
            found.append(ops.where(ok, ops.mod(_fmix32(h) if self.hash == "mixed" else h, self.buckets), -1))
        return ops.concatenate(found, axis=1)

    def call(self, ids, training=False):
        ranked = ops.sort(self.hashes(ids), axis=1)
        previous = ops.pad(ranked[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        first = ops.cast(ops.logical_and(ops.greater_equal(ranked, 0), ops.not_equal(ranked, previous)),
                         self.compute_dtype)
        count = ops.maximum(ops.sum(first, axis=1, keepdims=True), 1.0)  # before dropout: the logit's scale stays
        used = first
        if training and self.dropout:
            kept = keras.random.uniform(ops.shape(first), seed=self.seed_generator) >= self.dropout
            used = first * ops.cast(kept, self.compute_dtype) / (1.0 - self.dropout)
        buckets = ops.maximum(ranked, 0)
        rows = self.table(buckets) * ops.expand_dims(used, -1)
        if self.ratios is not None:
            rows = rows * self.ratios(buckets)
        return ops.sum(rows, axis=1) * (self.scale / ops.sqrt(count))

    def compute_mask(self, ids, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.width)

    def get_config(self):
        return {**super().get_config(), "buckets": self.buckets, "order": self.order, "width": self.width,
                "scale": self.scale, "prior": self.prior, "hash": self.hash, "dropout": self.dropout, "seed": self.seed}


def _fmix32(h):
    """murmur3's 32-bit finalizer on int32 (wrapping products; logical shifts by masking the arithmetic ones)."""
    for shift, factor in ((16, -2048144789), (13, -1028477387), (16, None)):  # 0x85ebca6b, 0xc2b2ae35 as int32
        h = ops.bitwise_xor(h, ops.bitwise_and(ops.right_shift(h, shift), (1 << (32 - shift)) - 1))
        if factor is not None:
            h = h * factor
    return h


@keras.saving.register_keras_serializable(package="tfseq")
class ReversibleEmbedding(layers.Embedding):
    """An Embedding whose matrix also maps vectors back to logits over the vocabulary: `layer(x, reverse=True)` is
    x @ embeddings^T. A language model's output tied to its input embedding (Press & Wolf 2017) shares one
    vocab x dim matrix between both ends."""

    def call(self, inputs, reverse=False):
        if reverse:
            return ops.matmul(inputs, ops.transpose(ops.cast(self.embeddings, inputs.dtype)))
        return super().call(inputs)

    def compute_output_spec(self, inputs, reverse=False):
        if reverse:
            return keras.KerasTensor((*inputs.shape[:-1], self.input_dim), dtype=self.compute_dtype)
        return super().compute_output_spec(inputs)



@keras.saving.register_keras_serializable(package="tfseq")
class CharCNN(layers.Layer):
    """Adds a character CNN's features to each word's embedding (Ma & Hovy 2016): the word's character ids are
    embedded, convolved over `width` characters and max-pooled over the word, and the result is concatenated to
    the word embedding. The output keeps the word embedding's mask (Keras' Concatenate would unmask padding that
    only one input masks).

    Args:
        filters: features per word (the convolution's filters).
        buckets: character ids (0..buckets-1; 0 is padding).
        dim: character embedding size.
        width: characters the convolution reads at once.
    Call args: [word embeddings (batch, time, e), char ids (batch, time, chars)].
    """

    def __init__(self, filters: int, buckets: int, dim: int, width: int, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.buckets, self.dim, self.width = filters, buckets, dim, width
        self.supports_masking = True
        self.table = layers.Embedding(buckets, dim, name="table")
        self.conv = layers.Conv1D(filters, width, padding="same", activation="relu", name="conv")

    def build(self, input_shape):
        self.table.build(input_shape[1])
        self.conv.build((None, input_shape[1][-1], self.dim))

    def call(self, inputs, mask=None):
        words, chars = inputs
        shape = ops.shape(chars)
        features = self.conv(self.table(ops.reshape(chars, (-1, shape[-1]))))  # (batch * time, chars, filters)
        features = ops.reshape(ops.max(features, axis=1), (shape[0], shape[1], self.filters))
        return ops.concatenate([words, ops.cast(features, words.dtype)], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None if mask is None else mask[0]

    def compute_output_shape(self, input_shape):
        words = input_shape[0]
        return (*words[:-1], words[-1] + self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "buckets": self.buckets, "dim": self.dim,
                "width": self.width}
