"""Heads: what sits on the recurrent backbone. Each head owns its config rules, output layer, loss, metrics, the
probabilities it reports, and its serving outputs.

Importing this module does not import Keras or TensorFlow (NumPy only) (config checks run before either is loaded); the
methods that build layers or tensors import them.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from tfseq.config import ModelConfig
from tfseq.errors import UserError


class Head(ABC):
    """The interface every head implements.

    Attributes:
        name: the `model.head` value that selects it.
        per_step: the backbone returns every step (one output per token) instead of one vector per text.
        classifier: the head labels texts with classes (pooling, class list, predict and serve).
        has_classes: its outputs are named classes, stored with the run (classifiers' labels, taggers' tags).
    """

    name = ""
    per_step = False
    classifier = False
    has_classes = False

    def check(self, cfg: ModelConfig) -> None:
        """Raises UserError for model settings this head cannot use."""
        if cfg.tie_embeddings and self.name != NextTokenHead.name:
            raise UserError(f"model.tie_embeddings is for language models (head = 'next_token'), not head = "
                            f"{self.name!r}")
        if cfg.char_features and self.name != PerTokenHead.name:
            raise UserError(f"model.char_features is for taggers (head = 'per_token'), not head = {self.name!r}; set "
                            "it to 0")
        if cfg.ngram_buckets and not self.classifier:
            raise UserError(f"model.ngram_buckets is for classifiers (a linear model of each text's n-grams), not head "
                            f"= {self.name!r}; set it to 0")
        if cfg.init_from and not self.classifier:
            raise UserError(f"model.init_from starts a classifier from a language model, not head = {self.name!r}; "
                            "set it to \"\"")

    def check_classes(self, classes: list[str]) -> None:
        """Raises UserError when the head cannot label texts with these classes."""

    @abstractmethod
    def width(self, vocab_size: int, num_classes: int) -> int:
        """Units of the output layer."""

    def build(self, x, vocab_size: int, num_classes: int, embedding=None, extra_logits=None):
        """The output layer on the backbone's features `x` (float32 even under mixed precision: the loss, softmax
        and sampling need the range). `embedding`: the input embedding layer, for a head that ties its output to
        it. `extra_logits`: logits of another model of the text (model.ngram_buckets), added before the
        activation."""
        import keras

        width = self.width(vocab_size, num_classes)
        if extra_logits is None:
            return keras.layers.Dense(width, activation=self.activation, dtype="float32", name=self.layer_name)(x)
        logits = keras.layers.Dense(width, dtype="float32", name="rnn_logits")(x)
        logits = keras.layers.Add(dtype="float32", name="logits_sum")([logits, extra_logits])
        return keras.layers.Activation(self.activation, dtype="float32", name=self.layer_name)(logits)

    activation = None
    layer_name = "output"

    @abstractmethod
    def loss(self):
        """The Keras loss of the head's outputs against the labels."""

    def metrics(self) -> list:
        return []


class NextTokenHead(Head):
    """Logits over the vocabulary at every step: a language model."""

    name, per_step, layer_name = "next_token", True, "logits"

    def check(self, cfg: ModelConfig) -> None:
        super().check(cfg)
        if cfg.bigram_buckets or cfg.token_dropout:
            raise UserError("model.bigram_buckets and model.token_dropout are for classifiers (set them to 0 for a "
                            "language model)")
        if cfg.mask_zero:
            raise UserError(
                "model.mask_zero = true cannot be used with head = 'next_token': in a language model id 0 is a real "
                "symbol (a char-LM's newline, a word LM's <unk>), which a mask would skip while the sampler reads it; "
                "set model.mask_zero = false")
        if cfg.bidirectional:
            raise UserError(
                "model.bidirectional = true cannot be used with head = 'next_token': the backward layer would read "
                "the very token the model must predict; use a unidirectional model for language modelling")

    def width(self, vocab_size: int, num_classes: int) -> int:
        return vocab_size

    def build(self, x, vocab_size: int, num_classes: int, embedding=None, extra_logits=None):
        """Dense logits; or, with a tied `embedding` (a ReversibleEmbedding), a projection to its width and then its
        transposed matrix: (units x embedding_dim + embedding_dim) weights instead of (units x vocab + vocab), and
        as many fewer multiply-adds per token."""
        if embedding is None:
            return super().build(x, vocab_size, num_classes)
        import keras

        x = keras.layers.Dense(embedding.output_dim, name="projection")(x)
        return keras.layers.Activation("linear", dtype="float32", name="logits")(embedding(x, reverse=True))

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


class BinaryHead(Head):
    """One sigmoid unit: the probability of class 1 (of two)."""

    name, classifier, has_classes, activation = "binary", True, True, "sigmoid"

    def check_classes(self, classes: list[str]) -> None:
        if len(classes) != 2:
            shown = ", ".join(classes[:10]) + (" ..." if len(classes) > 10 else "")
            raise UserError(f"model.head = 'binary' needs two classes; the data has {len(classes)} ({shown}): set "
                            "model.head = 'multiclass'")

    def width(self, vocab_size: int, num_classes: int) -> int:
        return 1

    def loss(self):
        import keras

        return keras.losses.BinaryCrossentropy()

    def metrics(self) -> list:
        import keras

        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]

    @staticmethod
    def probabilities(outputs):
        """Model outputs (NumPy [n, 1]) -> probabilities of both classes [n, 2]."""
        return np.concatenate([1 - outputs, outputs], axis=1)

    @staticmethod
    def predicted(probabilities):
        """The class of each text: the second from probability 0.5 on (as serving and tfseq.predict decide)."""
        return (probabilities[:, 1] >= 0.5).astype(np.int64)

    @staticmethod
    def serving_outputs(outputs, classes: list[str]) -> dict:
        """{"label", "probabilities", "probability" (of class 1, as binary models have always served)}."""
        import tensorflow as tf

        probability = tf.reshape(outputs, [-1])
        label = tf.gather(tf.constant(classes), tf.cast(probability >= 0.5, tf.int32))
        return {"label": label, "probabilities": tf.stack([1 - probability, probability], axis=1),
                "probability": probability}


class MulticlassHead(Head):
    """Softmax over k classes."""

    name, classifier, has_classes, activation = "multiclass", True, True, "softmax"

    def width(self, vocab_size: int, num_classes: int) -> int:
        if num_classes < 2:
            raise UserError(f"a multiclass head needs two classes or more, got {num_classes}")
        return num_classes

    def loss(self):
        import keras

        return keras.losses.SparseCategoricalCrossentropy()

    def metrics(self) -> list:
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    @staticmethod
    def probabilities(outputs):
        """Model outputs (NumPy [n, k]) are the probabilities already."""
        return outputs

    @staticmethod
    def predicted(probabilities):
        """The most probable class of each text (the first on ties, as tf.argmax in serving)."""
        return probabilities.argmax(axis=1)

    @staticmethod
    def serving_outputs(outputs, classes: list[str]) -> dict:
        """{"label": the most probable class name, "probabilities": every class's probability}."""
        import tensorflow as tf

        return {"label": tf.gather(tf.constant(classes), tf.argmax(outputs, axis=1, output_type=tf.int32)),
                "probabilities": outputs}


class PerTokenHead(MulticlassHead):
    """The multiclass softmax at every token: a tagger (its tags are the classes). Padding is masked
    (model.mask_zero), so the loss and the accuracy count real tokens only."""

    name, per_step, classifier, layer_name = "per_token", True, False, "tags"

    def check(self, cfg: ModelConfig) -> None:
        super().check(cfg)
        if not cfg.mask_zero:
            raise UserError("head = 'per_token' needs model.mask_zero = true: without the mask the padding after a "
                            "short sentence would be tagged and scored, and would change the backward reading of "
                            "its real tokens")


HEADS = {head.name: head for head in (NextTokenHead(), BinaryHead(), MulticlassHead(), PerTokenHead())}


def get_head(name: str) -> Head:
    """The head a `model.head` value names."""
    return HEADS[name]
