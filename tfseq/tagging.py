"""Raw-string tagging: the in-graph tagger an export serves, and tags for texts from a run folder or a SavedModel.

A text is split on whitespace (as the tokens of a CoNLL file are), so a served text gets the tags its tokens
would get in a tagged file.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf

from tfseq.data.tag_encoding import TagEncoder, char_ids
from tfseq.errors import UserError
from tfseq.models.factory import MAX_WORD_CHARS
from tfseq.serving import STRINGS, add_text_endpoints, is_savedmodel



def tagger_function(model, encoder: TagEncoder, tags: list[str], with_chars: bool):
    """The `serve` endpoint: raw texts (tf.string [n]) -> {"tokens": string [n, t], "tags": string [n, t],
    "lengths": int32 [n]}: each text's whitespace-separated tokens and their tags, padded with "" to the longest
    text; a text without tokens has length 0.

    Args:
        model: the tagger.
        encoder: the run's TagEncoder.
        tags: the tag names, in the order of the model's outputs.
        with_chars: the model also takes character ids.
    """
    names = tf.constant(tags)

    def serve(text):
        tokens = tf.strings.split(text)
        ids = encoder.word_ids(tokens).to_tensor(0)
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])  # a batch of empty texts: one step
        inputs = ids
        if with_chars:
            chars = tf.RaggedTensor.from_row_splits(char_ids(tokens.flat_values), tokens.row_splits)
            shape = tf.concat([tf.shape(ids, out_type=tf.int64), [MAX_WORD_CHARS]], 0)
            inputs = {"ids": ids, "chars": chars.to_tensor(0, shape=shape)}
        best = tf.argmax(model(inputs, training=False), axis=-1, output_type=tf.int32)
        lengths = tf.cast(tokens.row_lengths(), tf.int32)
        real = tf.sequence_mask(lengths, tf.shape(best)[1])
        return {"tokens": tokens.to_tensor(""), "lengths": lengths,
                "tags": tf.where(real, tf.gather(names, best), "")[:, :tf.reduce_max(tf.concat([lengths, [0]], 0))]}

    return serve


def _serve_function(trained):
    """The `serve` endpoint of a loaded tagger run, and its encoder (an export tracks the encoder's table)."""
    encoder = TagEncoder(trained.vocab)
    return tagger_function(trained.model, encoder, trained.classes, bool(trained.cfg.model.char_features)), encoder


def add_tagger_endpoints(archive, trained) -> None:
    """Adds `serve(text: string[n])` (see tagger_function) and `tags() -> string[k]` to an ExportArchive.

    Args:
        archive: a keras.export.ExportArchive tracking the model.
        trained: the loaded run (tfseq.runs.Trained).
    """
    serve, encoder = _serve_function(trained)
    add_text_endpoints(archive, serve, encoder.table, "tags", trained.classes)


@dataclass
class Tagged:
    """A tagger's answers: per text, its tokens and their tags."""

    tokens: list[list[str]]
    tags: list[list[str]]


def tag_texts(source, texts: list[str], batch_size: int = 256) -> Tagged:
    """Tags each text's whitespace-separated tokens, from a tagger run folder or its exported SavedModel.

    Args:
        source: a run folder or a SavedModel folder.
        texts: the texts.
        batch_size: texts per model call.
    """
    if is_savedmodel(source):
        loaded = tf.saved_model.load(str(source))
        if not hasattr(loaded, "tags"):
            raise UserError(f"{source} is a SavedModel without a 'tags' signature; export a tagger run")
        serve = loaded.serve
    else:
        from tfseq.runs import load_trained

        serve = tf.function(_serve_function(load_trained(source, tool="predict"))[0], input_signature=[STRINGS])
    tokens, tags = [], []
    for start in range(0, len(texts), batch_size):
        out = serve(tf.constant(texts[start:start + batch_size], tf.string))
        for row_tokens, row_tags, n in zip(out["tokens"].numpy(), out["tags"].numpy(), out["lengths"].numpy()):
            tokens.append([t.decode("utf-8") for t in row_tokens[:n]])
            tags.append([t.decode("utf-8") for t in row_tags[:n]])
    return Tagged(tokens, tags)


def is_tagger(source) -> bool:
    """Whether a run folder or SavedModel holds a tagger: its head is per_token (a SavedModel's is in its
    tfseq.json, read without loading the model; one without that record is loaded to see if it serves `tags`)."""
    from tfseq.models.heads import HEADS
    from tfseq.runs import RunFolder

    if is_savedmodel(source):
        try:
            name = json.loads((Path(source) / "tfseq.json").read_text(encoding="utf-8")).get("head")
        except (OSError, ValueError, AttributeError):
            name = None
        if name not in HEADS:
            return hasattr(tf.saved_model.load(str(source)), "tags")
    else:
        run = RunFolder(Path(source))
        if not run.config.is_file():
            return False  # not a run folder: the classifier's loader says what is wrong with it
        name = run.read_config().model.head
    return HEADS[name].per_step and HEADS[name].has_classes

