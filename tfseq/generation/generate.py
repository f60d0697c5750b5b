"""Sampling from a run folder or an exported SavedModel, with the checks the command line makes first."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfseq.config import SampleConfig
from tfseq.errors import UserError
from tfseq.generation.endpoint import ENDPOINT_CHECKS, MAX_GENERATED, MAX_LENGTH, CharCodec, codec_for, \
    generate_function
from tfseq.generation.stepper import Stepper


@dataclass
class Samples:
    """What a sampling call gives back.

    Args:
        texts: prompt + continuation, one per prompt.
        unknown: the prompts' words that the vocabulary does not hold (read as <unk>), sorted; [] for characters.
    """

    texts: list[str]
    unknown: list[str]


def check_request(prompts: list[str], length: int, options: SampleConfig) -> None:
    """Refuses, with a UserError naming the value, what the generation loop cannot do: an empty prompt, a length
    outside 1..MAX_LENGTH, more than MAX_GENERATED ids in all, and sampling options out of range."""
    options.check()
    if not 0 < length <= MAX_LENGTH:
        raise UserError(f"length = {length} must be between 1 and {MAX_LENGTH:,}")
    if not prompts or any(not p for p in prompts):
        raise UserError("the prompt is empty; give at least one character or word to start from")
    if len(prompts) * length > MAX_GENERATED:
        raise UserError(f"{len(prompts):,} prompts x length {length:,} = {len(prompts) * length:,} ids to generate, "
                        f"more than one call can hold ({MAX_GENERATED:,}); ask for fewer samples or a shorter length")


def encode_stops(codec, stops) -> np.ndarray:
    """Stop strings as an int32 [n, width] array of ids, left-padded with -1 ([0, 1] when there are none)."""
    if any(not s for s in stops):
        raise UserError("a stop string is empty")
    try:
        encoded = [codec.encode(s) for s in stops]
    except UserError as err:
        raise UserError(f"a stop string can never be generated: {err}") from None
    if any(len(e) == 0 for e in encoded):
        raise UserError("a stop string holds no token (only spaces?)")
    width = max([len(e) for e in encoded] + [1])
    table = np.full((len(encoded), width), -1, np.int32)
    for row, e in zip(table, encoded):
        row[width - len(e):] = e
    return table


def cut_at_stops(text: str, stops) -> str:
    """The text up to, not including, the stop string that is completed first (the longest, when several end there).

    The cut the generation loop makes for characters (it ends a stream as soon as a stop sequence is complete);
    used on the text of an export from before `generate_until`.
    """
    found = [(i + len(s), -len(s)) for s in stops if (i := text.find(s)) >= 0]
    if not found:
        return text
    end, minus_length = min(found)
    return text[: end + minus_length]


def _sample(stepper: Stepper, codec, prompts: list[str], length: int, options: SampleConfig,
            stops: list[str] = ()) -> dict:
    check_request(prompts, length, options)
    if isinstance(codec, CharCodec):
        for p in prompts:
            codec.encode(p)  # a UserError names the characters the vocabulary lacks
    else:
        for p, n in zip(prompts, codec.lookup(tf.constant(prompts)).row_lengths().numpy()):
            if not n:
                raise UserError(f"the prompt {p!r} holds no word or punctuation mark to start from")
    try:
        out = generate_function(stepper, codec)(
            tf.constant(prompts), np.int32(length), np.float32(options.temperature), np.int32(options.top_k),
            np.float32(options.top_p), np.int64(options.seed), encode_stops(codec, stops))
    except tf.errors.InvalidArgumentError as err:
        raise UserError(f"the model refused the prompt: {_known_check(err)}") from None
    return {k: [t.decode("utf-8") for t in v.numpy()] for k, v in out.items()}


def _known_check(err) -> str:
    """The failed check of the `generate` graph that an InvalidArgumentError names."""
    known = [m for m in (*CharCodec.checks, *ENDPOINT_CHECKS) if m in err.message]
    return known[0] if known else err.message.strip().splitlines()[-1]


def generate(stepper: Stepper, vocab, prompts: list[str], length: int, options: SampleConfig,
             stops: list[str] = ()) -> list[str]:
    """Continues each prompt by up to `length` tokens (characters or words).

    Args:
        stepper: a Stepper of the model.
        vocab: the run's vocabulary (CharVocab or TokenVocab).
        prompts: one or more non-empty prompts (a char model needs every character in its vocabulary).
        length: the most tokens to generate per prompt (> 0).
        options: temperature, top-k, top-p, seed.
        stops: stop strings: a continuation ends just before the first one it produces (not included).

    Returns:
        The generated continuations (without the prompts), one per prompt.
    """
    return _sample(stepper, codec_for(vocab), prompts, length, options, stops)["generated"]


def sample_run(source: str, prompts: list[str], length: int, options: SampleConfig,
               stops: list[str] = ()) -> Samples:
    """Samples from a language-model run folder or its exported SavedModel.

    Args:
        source: a run folder, or a SavedModel written by `python -m tfseq.export`.
        prompts: the prompts (repeat one prompt for several samples of it).
        length: the most tokens (characters or words) to generate per prompt.
        options: temperature, top-k, top-p, seed.
        stops: stop strings (a continuation ends before the first one; a SavedModel's text is cut the same way).

    Returns:
        Samples: prompt + continuation per prompt, and the prompt words read as <unk>.
    """
    from tfseq.runs import load_trained

    check_request(prompts, length, options)
    if (Path(source) / "saved_model.pb").is_file():
        loaded = tf.saved_model.load(str(source))
        if not hasattr(loaded, "generate"):
            raise UserError(f"{source} is a SavedModel without a 'generate' signature; export a language-model run")
        args = (tf.constant(prompts), np.int32(length), np.float32(options.temperature), np.int32(options.top_k),
                np.float32(options.top_p), np.int64(options.seed))
        # Exports from before `generate_until` stop by cutting the text, as the loop would for characters.
        until = stops and hasattr(loaded, "generate_until")
        try:
            out = loaded.generate_until(*args, tf.constant(list(stops), tf.string)) if until else loaded.generate(*args)
        except tf.errors.InvalidArgumentError as err:
            raise UserError(f"{source} refused the prompt: {_known_check(err)}") from None
        decoded = {k: [t.decode("utf-8") for t in v.numpy()] for k, v in out.items()}
        texts = []
        for text, generated in zip(decoded["text"], decoded["generated"]):
            cut = generated if until else cut_at_stops(generated, stops)
            texts.append(text[: len(text) - len(generated)] + cut if text.endswith(generated) else text)
        unknown = decoded.get("unknown", [])  # SavedModels exported before word models return none
    else:
        trained = load_trained(source, tool="sample")
        codec = codec_for(trained.vocab)
        out = _sample(Stepper(trained.model, never=codec.never), codec, prompts, length, options, stops)
        texts, unknown = out["text"], out["unknown"]
    return Samples(texts, sorted({w for line in unknown for w in line.split()}))
