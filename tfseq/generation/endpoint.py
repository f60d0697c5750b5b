"""Raw strings in, raw strings out: the unit's codec (prompts to ids, ids to text, inside the graph) and the
`generate` function that a run folder calls eagerly and an export saves as its signature.

Characters: each character is an id; a prompt character outside the vocabulary is an error. Words
(tfseq.data.words): prompts are tokenized as the training text was, words outside the vocabulary become <unk> and
are returned in "unknown"; the output is detokenized, and <unk> is never drawn. An end of document is shown as a
blank line.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfseq.config import INT32_MAX, SAMPLING_RULES
from tfseq.data.text import EOD_CHAR, CharVocab
from tfseq.data.words import EOD, PARAGRAPH, TokenVocab, detokenize, tokenize
from tfseq.errors import UserError

MAX_LENGTH = 10_000_000  # most ids one call generates per prompt: the output alone is then 40 MB per prompt
MAX_GENERATED = 2**28  # most ids one call generates over all prompts (1 GiB of int32 output)
assert MAX_GENERATED <= INT32_MAX


class CharCodec:
    """Prompts as characters, output characters joined.

    Args:
        vocab: the run's CharVocab.
    """

    never = ()
    checks = ("prompt character not in the vocabulary",)

    def __init__(self, vocab: CharVocab):
        self.vocab = vocab
        self.table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(vocab.chars), tf.range(vocab.size, dtype=tf.int64)),
            default_value=-1)
        self.shown = tf.constant([PARAGRAPH if c == EOD_CHAR else c for c in vocab.chars])

    def lookup(self, texts):
        """Ragged int64 ids [n, (ids)]; -1 for a character outside the vocabulary."""
        return tf.ragged.map_flat_values(self.table.lookup, tf.strings.unicode_split(texts, "UTF-8"))

    def prompt_ids(self, prompts):
        """(ragged int64 ids [n, (ids)], the asserts they need, string [n] of words read as <unk>: none here)."""
        ids = self.lookup(prompts)
        check = tf.debugging.assert_non_negative(ids.flat_values, message=self.checks[0])
        return ids, [check], tf.fill(tf.shape(prompts), "")

    def encode(self, text: str) -> np.ndarray:
        """A text's ids (a UserError names the characters outside the vocabulary)."""
        return self.vocab.encode(text)

    def render(self, ids) -> tf.Tensor:
        """Ragged ids [n, (ids)] -> string [n]."""
        return tf.strings.reduce_join(tf.gather(self.shown, ids), axis=-1)

    def full_text(self, prompts, prompt_ids, generated) -> tf.Tensor:
        """Prompt + continuation, the prompt as the user typed it."""
        return prompts + self.render(generated)


class WordCodec:
    """Prompts tokenized into words, output detokenized.

    Args:
        vocab: the run's TokenVocab.
    """

    never = (0,)  # <unk>: a sample shows words, not a placeholder
    checks = ()

    def __init__(self, vocab: TokenVocab):
        self.vocab = vocab
        self.table = vocab.table()
        self.shown = tf.constant([PARAGRAPH if t == EOD else t for t in vocab.tokens])

    def lookup(self, texts):
        """Ragged int64 ids [n, (tokens)]; 0 (<unk>) for a word outside the vocabulary."""
        return tf.ragged.map_flat_values(self.table.lookup, tokenize(texts, self.vocab.lowercase))

    def prompt_ids(self, prompts):
        tokens = tokenize(prompts, self.vocab.lowercase)
        ids = tf.ragged.map_flat_values(self.table.lookup, tokens)
        unknown = tf.strings.reduce_join(tf.ragged.boolean_mask(tokens, tf.equal(ids, 0)), axis=-1, separator=" ")
        return ids, [], unknown

    def encode(self, text: str) -> np.ndarray:
        """A text's ids; UserError naming the words outside the vocabulary."""
        tokens = tokenize(tf.constant([text]), self.vocab.lowercase)
        ids = self.table.lookup(tokens.flat_values).numpy()
        missing = sorted({t.decode() for t, i in zip(tokens.flat_values.numpy(), ids) if i == 0})
        if missing:
            raise UserError(f"{len(missing)} word(s) not in the model's vocabulary: {', '.join(missing[:10])}")
        return ids.astype(np.int32)

    def render(self, ids) -> tf.Tensor:
        return detokenize(tf.gather(self.shown, ids))

    def full_text(self, prompts, prompt_ids, generated) -> tf.Tensor:
        """The prompt's tokens (words outside the vocabulary too; lowercased when the vocabulary is) and the
        continuation, detokenized together (the prompt's spacing is normalised)."""
        return detokenize(tf.concat([tokenize(prompts, self.vocab.lowercase), tf.gather(self.shown, generated)],
                                    axis=1))


def codec_for(vocab):
    """The codec of a run's vocabulary: CharCodec or WordCodec."""
    return WordCodec(vocab) if isinstance(vocab, TokenVocab) else CharCodec(vocab)


ENDPOINT_CHECKS = ("empty prompt", f"length must be between 1 and {MAX_LENGTH}",
                   f"prompts x length must be at most {MAX_GENERATED}",
                   *(f"{name} {rule}" for name, _, rule in SAMPLING_RULES))


def generate_function(stepper, codec):
    """`generate(prompts, length, temperature, top_k, top_p, seed, stops) -> {"text", "generated", "unknown"}`.

    "text" is prompt + continuation, "generated" the continuation alone (both cut before a stop sequence), "unknown"
    the prompt's words read as <unk> (space-separated; "" for characters). Bad input (an empty prompt, a prompt
    character outside the vocabulary, a length or sampling option out of range) fails with InvalidArgumentError
    naming the problem; an empty batch of prompts gives empty outputs.

    Args:
        stepper: a tfseq.generation.stepper.Stepper.
        codec: the codec of the run's vocabulary (`codec_for`).
    """

    def generate(prompts, length, temperature, top_k, top_p, seed, stops):
        ids, checks, unknown = codec.prompt_ids(prompts)
        checks += [
            tf.debugging.assert_positive(ids.row_lengths(), message=ENDPOINT_CHECKS[0]),
            tf.debugging.Assert((length > 0) & (length <= MAX_LENGTH), [ENDPOINT_CHECKS[1]]),
            tf.debugging.Assert(tf.cast(tf.size(prompts), tf.int64) * tf.cast(length, tf.int64) <= MAX_GENERATED,
                                [ENDPOINT_CHECKS[2]]),
        ]
        options = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}
        checks += [tf.debugging.Assert(allowed(options[name]), [f"{name} {rule}"])
                   for name, allowed, rule in SAMPLING_RULES]

        def run():
            out, kept = stepper.generate_ids(tf.cast(ids.to_tensor(0), tf.int32), tf.cast(ids.row_lengths(), tf.int32),
                                             length, temperature, top_k, top_p, seed, stops)
            generated = tf.RaggedTensor.from_tensor(out, lengths=kept)
            return codec.full_text(prompts, ids, generated), codec.render(generated)

        with tf.control_dependencies(checks):
            empty = tf.zeros([0], tf.string)
            text, generated = tf.cond(tf.size(prompts) > 0, run, lambda: (empty, empty))
        return {"text": text, "generated": generated, "unknown": unknown}

    return generate


def stop_table(codec, stops) -> tf.Tensor:
    """Stop strings (string [m]) as the loop's int32 [m', width] table of ids, left-padded with -1; a stop that can
    never be generated (a character outside the vocabulary, a word read as <unk>) or holds no token is left out."""
    ids = tf.cast(codec.lookup(stops), tf.int32)
    possible = tf.reduce_all(ids > (0 if isinstance(codec, WordCodec) else -1), axis=1) & (ids.row_lengths() > 0)
    ids = tf.ragged.boolean_mask(ids, possible)
    lengths = tf.cast(ids.row_lengths(), tf.int32)
    width = tf.maximum(tf.reduce_max(tf.concat([lengths, [1]], 0)), 1)
    dense = ids.to_tensor(-1)
    dense = tf.pad(dense, [[0, 0], [0, width - tf.shape(dense)[1]]], constant_values=-1)
    index = tf.range(width)[None, :] - (width - lengths)[:, None]  # right-aligned: position of each id in its row
    return tf.where(index >= 0, tf.gather(dense, tf.maximum(index, 0), batch_dims=1), -1)


def add_generate_endpoint(archive, stepper, codec) -> None:
    """Adds `generate(prompts, length, temperature, top_k, top_p, seed)` and `generate_until(..., stops: string[m])`
    (see generate_function; a sample ends before the first stop sequence it completes, compared as tokens) to a
    keras.export.ExportArchive: codec, vocabulary and loop all in the graph."""
    archive.track(stepper)
    archive.track(codec.table)
    generate = generate_function(stepper, codec)
    signature = [
        tf.TensorSpec([None], tf.string, name="prompts"), tf.TensorSpec([], tf.int32, name="length"),
        tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float32, name="top_p"), tf.TensorSpec([], tf.int64, name="seed")]
    archive.add_endpoint("generate", lambda *args: generate(*args, tf.fill([0, 1], -1)), input_signature=signature)
    archive.add_endpoint("generate_until", lambda *args: generate(*args[:-1], stop_table(codec, args[-1])),
                         input_signature=[*signature, tf.TensorSpec([None], tf.string, name="stops")])
