"""Reading text files and character vocabularies.

Vocabularies are stored as JSON (not one token per line): a character vocabulary holds "\\n", "\\r" and quotes,
which do not survive a file that is split on lines.
"""
from __future__ import annotations

import functools
import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfseq.errors import UserError
from tfseq.files import atomic_write, read_json


def read_text(path: str | Path, errors: str = "strict") -> str:
    """Reads a UTF-8 text file (a BOM is dropped, line endings become "\\n").

    Args:
        path: the file.
        errors: "strict" to refuse bytes that are not UTF-8, "replace" to turn them into U+FFFD.

    Returns:
        The text. Raises UserError for a missing, unreadable, non-UTF-8 or empty file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"text file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; give the path of a text file") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not UTF-8 text: byte 0x{raw[err.start]:02x} at offset {err.start} cannot be decoded; "
            "re-encode the file as UTF-8 or pass --set data.encoding_errors=replace"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"{path} is empty: a language model needs text to learn from")
    return text


@dataclass
class CharVocab:
    """A character vocabulary: id i is `chars[i]`, characters sorted by code point (the textbook's char2int).

    Args:
        chars: the distinct characters, sorted.
    """

    chars: list[str]

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """Builds the vocabulary of every character in `text`."""
        return cls(sorted(set(text)))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Maps text to int32 ids. Raises UserError naming the characters the vocabulary does not have."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.frombuffer("".join(self.chars).encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(table, points).clip(0, len(table) - 1)
        unknown = table[ids] != points
        if unknown.any():
            missing = sorted({chr(p) for p in points[unknown]})
            shown = ", ".join(repr(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise UserError(f"{len(missing)} character(s) not in the model's vocabulary: {shown}")
        return ids.astype(np.int32)

    def decode(self, ids) -> str:
        """Maps ids back to text."""
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> dict:
        return {"kind": "chars", "chars": self.chars}


EOD_CHAR = "\x1e"  # a char-LM's end of document (the record separator, absent from ordinary text)

# book / lower: classifiers' tokenizers (below); split / split_lower: taggers' (whitespace only: their training
# tokens come already split, as in CoNLL files, and a served text is split the same way).
# An HTML line break as IMDb reviews write it (RE2).
HTML_BREAK = r"<br\s*/?>"
TOKENIZERS = ("book", "lower", "words", "words_lower", "split", "split_lower")


@functools.lru_cache(maxsize=None)
def separator_pattern(variant: int = 0) -> str:
    """An RE2 pattern for the separator runs to turn into one space before splitting on whitespace.

    `tfds.deprecated.text.Tokenizer()` (the textbook's) splits on Python `re` `\\W+`: a word character is a letter,
    a number or "_". RE2's `[\\pL\\pN_]` agrees on every assigned code point; RE2 knows newer Unicode versions, so the
    code points this Python's database leaves unassigned (category Cn) are listed as non-word too. A run of
    non-word characters that is nothing but spaces is left alone (splitting on whitespace already removes it): most
    separators in text are single spaces, and skipping them makes the replacement three times faster. Checked
    against `re` over all of Unicode in tests/test_imdb.py.
    """
    ranges, start = [], None
    # Planes 4 to 16 hold no letters or numbers in any Unicode version so far: RE2 and Python agree there.
    for point in range(0x40000 + 1):
        unassigned = point < 0x40000 and not 0xD800 <= point <= 0xDFFF and unicodedata.category(chr(point)) == "Cn"
        if unassigned and start is None:
            start = point
        elif not unassigned and start is not None:
            ranges.append(f"\\x{{{start:x}}}-\\x{{{point - 1:x}}}")
            start = None
    unassigned = f"[{''.join(ranges)}]"
    non_word = f"(?:[^\\pL\\pN_]|{unassigned})"
    non_word_non_space = f"(?:[^\\pL\\pN_ ]|{unassigned})"
    # Variants are the same pattern in `variant` extra groups: each compiles to its own RE2 object, so threads
    # tokenizing side by side do not serialise on one object's DFA-cache lock.
    return "(?:" * variant + f"{non_word}*{non_word_non_space}{non_word}*" + ")" * variant


def tokenize(texts, tokenizer: str = "book", variant: int = 0):
    """Splits a batch of texts into word tokens inside TensorFlow (usable in tf.data and in exported graphs).

    Args:
        texts: tf.string [n].
        tokenizer: "book": exactly the tokens of `tfds.deprecated.text.Tokenizer()` (case kept, split on runs of
            non-word characters); "lower": "<br />" line breaks removed, lowercased, then split the same way;
            "words" / "words_lower": the word language model's tokens (tfseq.data.words: words, each punctuation
            mark, contractions' "'s" / "n't", paragraph breaks), "<br />" read as a line break as the LM's IMDb
            corpus reads it, case kept / lowercased, so a classifier can start from an LM's weights
            (model.init_from); "split": split on whitespace only; "split_lower": lowercased, then split on
            whitespace.

    Returns:
        A tf.RaggedTensor of tokens, [n, (tokens)].
    """
    import tensorflow as tf

    if tokenizer in ("split", "split_lower"):
        return tf.strings.split(tf.strings.lower(texts, encoding="utf-8") if tokenizer == "split_lower" else texts)
    if tokenizer in ("words", "words_lower"):
        from tfseq.data import words

        return words.tokenize(tf.strings.regex_replace(texts, HTML_BREAK, "\n"), tokenizer == "words_lower")
    if tokenizer == "lower":
        texts = tf.strings.lower(tf.strings.regex_replace(texts, HTML_BREAK, " "), encoding="utf-8")
    return tf.strings.split(tf.strings.regex_replace(texts, separator_pattern(variant), " "))


@dataclass
class WordVocab:
    """A word vocabulary: id 0 is padding, ids 1..V are `tokens`, id V+1 is out-of-vocabulary.

    Args:
        tokens: the kept tokens, in order of first appearance in the training split (the textbook's order).
        tokenizer: one of TOKENIZERS, the tokenizer the tokens came from.
    """

    tokens: list[str]
    tokenizer: str = "book"

    @property
    def size(self) -> int:
        """Ids the embedding needs: padding + tokens + OOV."""
        return len(self.tokens) + 2

    @property
    def oov_id(self) -> int:
        return len(self.tokens) + 1

    def to_json(self) -> dict:
        return {"kind": "words", "tokenizer": self.tokenizer, "tokens": self.tokens}


def data_fingerprint(vocab, arrays) -> str:
    """SHA-256 of a vocabulary and the arrays encoded with it: equal when a run's data is the same.

    Args:
        vocab: a CharVocab, WordVocab or TokenVocab.
        arrays: NumPy arrays (ids, offsets, labels), in a fixed order.
    """
    digest = hashlib.sha256(json.dumps(vocab.to_json(), ensure_ascii=False).encode("utf-8"))
    for array in arrays:
        digest.update(str(array.dtype).encode() + str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def save_vocab(vocab, path: Path) -> None:
    """Writes a vocabulary as JSON (atomically: a crash leaves the old file or none)."""
    atomic_write(path, json.dumps(vocab.to_json(), ensure_ascii=False, indent=0))


def load_vocab(path: Path):
    """Reads a vocabulary written by `save_vocab`.

    Returns:
        A CharVocab or a WordVocab. Raises UserError when the file is missing or broken.
    """
    table = read_json(path, "vocabulary")
    kind = table.get("kind") if isinstance(table, dict) else None
    if kind == "chars":
        chars = table.get("chars")
        if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars) or chars != sorted(set(chars)):
            raise UserError(f"vocabulary {path} is corrupt: 'chars' must be a sorted list of distinct single "
                            "characters")
        return CharVocab(chars)
    if kind == "words":
        tokens, tokenizer = table.get("tokens"), table.get("tokenizer")
        if tokenizer not in TOKENIZERS or not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens) \
                or len(set(tokens)) != len(tokens):
            raise UserError(f"vocabulary {path} is corrupt: 'tokens' must be a list of distinct strings and "
                            f"'tokenizer' one of {', '.join(TOKENIZERS)}")
        return WordVocab(tokens, tokenizer)
    if kind == "lm_words":
        from tfseq.data.words import TokenVocab

        return TokenVocab.from_json(table, path)
    raise UserError(f"vocabulary {path} is corrupt: unknown kind {kind!r}")
