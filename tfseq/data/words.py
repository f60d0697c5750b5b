"""Words and punctuation as language-model tokens, and the way back to normal text.

One implementation, in TensorFlow string ops, serves training (tokenize the corpus), sampling from a run folder and
the exported `generate` graph (tokenize prompts, detokenize output): a prompt is cut into the same tokens the model
was trained on, wherever it is sampled.

Tokens: runs of letters, digits and marks; each punctuation mark alone ("..." is three tokens); contractions split
before their apostrophe ("don't" -> "don", "'t"; "Pencroft's" -> "Pencroft", "'s"); numbers with a comma or
point inside ("2,000", "3.5") whole; a paragraph break (a blank
line) is the token "\\n\\n". Other whitespace only separates tokens. The detokenizer joins tokens with spaces, then
removes the space before closing punctuation and contractions and after opening brackets, joins hyphenated words,
and pairs double quotes ("a" b "c" -> the first and second quote enclose a). Whitespace is the only thing a round
trip can change (tests/test_words.py checks it on the whole embedded book).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfseq.errors import UserError

UNK, EOD, PARAGRAPH = "<unk>", "<eod>", "\n\n"
# Private-use code points mark paragraph breaks, contraction apostrophes and number separators between the regex passes; the
# tokenizer removes them from its input first, so a text that holds them cannot fool it.
_MARKS = "\ue000\ue001\ue002\ue003\ue004"
_WORD = r"\pL\pN\pM_"


def tokenize(texts, lowercase: bool = False):
    """Cuts texts into word and punctuation tokens, inside TensorFlow.

    Args:
        texts: tf.string [n] (or a list of str).
        lowercase: lowercase the text first.

    Returns:
        tf.RaggedTensor of tf.string, [n, (tokens)].
    """
    import tensorflow as tf

    t = tf.strings.regex_replace(texts, f"[{_MARKS}]", "")
    if lowercase:
        t = tf.strings.lower(t, encoding="utf-8")
    t = tf.strings.regex_replace(t, r"[ \t\r\f\v]*\n(?:[ \t\r\f\v]*\n)+\s*", " \ue000 ")
    # A contraction's apostrophe (between two word characters) is marked, so the punctuation pass leaves it; so is
    # the comma or point inside a number ("2,000", "3.5"), which stays one token. Each pattern runs twice: matches
    # do not overlap, and "rock'n'roll" or "1,000,000" need the second pass for the character the first consumed.
    for _ in range(2):
        t = tf.strings.regex_replace(t, f"([{_WORD}])'([{_WORD}])", "\\1 \ue001\\2")
        t = tf.strings.regex_replace(t, f"([{_WORD}])\u2019([{_WORD}])", "\\1 \ue002\\2")
        t = tf.strings.regex_replace(t, r"(\pN),(\pN)", "\\1\ue003\\2")
        t = tf.strings.regex_replace(t, r"(\pN)\.(\pN)", "\\1\ue004\\2")
    t = tf.strings.regex_replace(t, f"([^{_WORD}\\s{_MARKS}])", " \\1 ")
    for mark, char in zip(_MARKS[1:], "'\u2019,."):
        t = tf.strings.regex_replace(t, mark, char)
    tokens = tf.strings.split(t)
    flat = tokens.flat_values
    return tokens.with_flat_values(tf.where(flat == "\ue000", PARAGRAPH, flat))


def detokenize(tokens):
    """Joins tokens back into text, inside TensorFlow.

    Args:
        tokens: tf.RaggedTensor (or dense tensor) of tf.string [n, (tokens)].

    Returns:
        tf.string [n].
    """
    import tensorflow as tf

    t = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    t = tf.strings.regex_replace(t, r" ?\n\n ?", "\n\n")
    t = tf.strings.regex_replace(t, " ([,.;:!?)\\]}%\u201d])", "\\1")
    t = tf.strings.regex_replace(t, f" (['\u2019][{_WORD}])", "\\1")
    t = tf.strings.regex_replace(t, " ?\u2019", "\u2019")
    t = tf.strings.regex_replace(t, "([(\\[{\u201c\u2018$]) ", "\\1")
    t = tf.strings.regex_replace(t, r" ?- ?", "-")
    # Quotes pair left to right: the text between quote 2k-1 and quote 2k loses its outer spaces.
    return tf.strings.regex_replace(t, r'" ?([^"]*?) ?"', '"\\1"')


@dataclass
class TokenVocab:
    """A language model's word vocabulary: id i is `tokens[i]`; id 0 is "<unk>" (any word left out), id 1 is
    "<eod>" (the end of a document); the rest by training count, most frequent first.

    Args:
        tokens: the tokens, "<unk>" and "<eod>" first.
        lowercase: the text was lowercased before tokenizing.
    """

    tokens: list[str]
    lowercase: bool = False

    @property
    def size(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, flat_tokens, max_tokens: int = 0, min_count: int = 1, lowercase: bool = False) -> "TokenVocab":
        """Counts the training tokens and keeps the most frequent (ties: first seen first).

        Args:
            flat_tokens: tf.string [n], every training token in order.
            max_tokens: most tokens kept besides "<unk>" and "<eod>"; 0 = all.
            min_count: leave out tokens seen fewer times.
            lowercase: recorded with the vocabulary (the tokenizer setting it was built with).
        """
        import tensorflow as tf

        unique, _, counts = tf.unique_with_counts(flat_tokens)
        counts = counts.numpy()
        order = np.argsort(-counts, kind="stable")
        order = order[counts[order] >= min_count]
        words = [w.decode("utf-8") for w in unique.numpy()[order]]
        words = [w for w in words if w not in (UNK, EOD)][: max_tokens or None]
        return cls([UNK, EOD, *words], lowercase)

    def table(self):
        """A tf.lookup table from token to id; unknown tokens give 0 ("<unk>")."""
        import tensorflow as tf

        return tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(self.tokens), tf.range(self.size, dtype=tf.int64)),
            default_value=tf.constant(0, tf.int64))

    def to_json(self) -> dict:
        return {"kind": "lm_words", "lowercase": self.lowercase, "tokens": self.tokens}

    @classmethod
    def from_json(cls, table: dict, path) -> "TokenVocab":
        tokens = table.get("tokens")
        if not isinstance(tokens, list) or tokens[:2] != [UNK, EOD] or not all(isinstance(t, str) for t in tokens) \
                or len(set(tokens)) != len(tokens) or not isinstance(table.get("lowercase"), bool):
            raise UserError(f"vocabulary {path} is corrupt: 'tokens' must be distinct strings starting with "
                            f"{UNK!r}, {EOD!r}, and 'lowercase' true or false")
        return cls(tokens, table["lowercase"])


def encode_documents(docs: list[str], vocab: TokenVocab | None, lowercase: bool, max_tokens: int = 0,
                     min_count: int = 1, separate: bool = True) -> tuple[np.ndarray, TokenVocab]:
    """Tokenizes documents into one id stream, each document followed by "<eod>" when `separate`.

    Args:
        docs: the documents.
        vocab: the vocabulary to encode with; None = build it from these documents.
        lowercase, max_tokens, min_count: how to tokenize, and (vocab None) the vocabulary cap.
        separate: end every document with "<eod>" (multi-document corpora; a single text has none).

    Returns:
        (int32 ids, the vocabulary).
    """
    import tensorflow as tf

    pieces = []
    for start in range(0, len(docs), 1024):
        tokens = tokenize(tf.constant(docs[start:start + 1024]), lowercase)
        if separate:
            tokens = tf.concat([tokens, tf.fill([tokens.nrows(), 1], EOD)], axis=1)
        pieces.append(tokens.flat_values)
    flat = tf.concat(pieces, 0) if pieces else tf.zeros([0], tf.string)
    if vocab is None:
        vocab = TokenVocab.build(flat, max_tokens, min_count, lowercase)
    return vocab.table().lookup(flat).numpy().astype(np.int32), vocab
