"""Tokens -> a tagger's inputs (word ids and character ids), by one implementation for training and serving.

A tagger reads whitespace-separated tokens (the tokens of a CoNLL file, or a served text split on whitespace). Each
token gets a word id from the run's vocabulary (lowercased first with data.lowercase; unknown words get the OOV
id) and, for a model with a character CNN, the hashed code points of its first and last characters, taken from
the token as written: a word outside the vocabulary still shows its suffix, capitals and digits. TensorFlow ops
only, so the same functions run over the training tokens and inside an exported graph.
"""
from __future__ import annotations

import numpy as np

from tfseq.data.text import WordVocab
from tfseq.models.factory import CHAR_BUCKETS, MAX_WORD_CHARS

CHUNK = 200_000  # tokens per eager call when encoding a corpus: bounded memory for the intermediate strings


def char_ids(tokens):
    """Character ids of tokens: the first and last MAX_WORD_CHARS / 2 code points of each (all of a shorter one),
    hashed into 1..CHAR_BUCKETS - 1, right-padded with 0.

    Args:
        tokens: tf.string [n].

    Returns:
        int32 [n, MAX_WORD_CHARS].
    """
    import tensorflow as tf

    points = tf.strings.unicode_decode(tokens, "UTF-8", errors="replace")
    lengths = points.row_lengths()
    keep = tf.minimum(lengths, MAX_WORD_CHARS)
    position = tf.ragged.range(keep).flat_values
    # A long word's second half comes from its end: shift those positions by what is skipped in the middle.
    skipped = tf.repeat(lengths - keep, keep)
    position = tf.where(position >= MAX_WORD_CHARS // 2, position + skipped, position)
    picked = tf.gather(points.flat_values, tf.repeat(points.row_starts(), keep) + position)
    ids = 1 + tf.math.floormod(picked, CHAR_BUCKETS - 1)
    return tf.RaggedTensor.from_row_lengths(ids, keep).to_tensor(0, shape=[None, MAX_WORD_CHARS])


class TagEncoder:
    """Word ids (and character ids) of tokens.

    Args:
        vocab: the run's WordVocab; its tokenizer ("split" or "split_lower") says whether tokens are lowercased
            before the lookup.
    """

    def __init__(self, vocab: WordVocab):
        from tfseq.data.encoder import vocab_table

        self.vocab = vocab
        self.table = vocab_table(vocab)

    def word_ids(self, tokens):
        """tf.string tokens (any shape, ragged too) -> int32 word ids of the same shape."""
        import tensorflow as tf

        if self.vocab.tokenizer == "split_lower":
            tokens = tf.ragged.map_flat_values(tf.strings.lower, tokens, encoding="utf-8") \
                if isinstance(tokens, tf.RaggedTensor) else tf.strings.lower(tokens, encoding="utf-8")
        lookup = (tf.ragged.map_flat_values(self.table.lookup, tokens) if isinstance(tokens, tf.RaggedTensor)
                  else self.table.lookup(tokens))
        return tf.cast(lookup, tf.int32)

    def encode_flat(self, tokens: list[str], with_chars: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Encodes a corpus's tokens, in chunks.

        Args:
            tokens: every token, sentences laid end to end.
            with_chars: also make character ids.

        Returns:
            (int32 word ids [n], int32 char ids [n, MAX_WORD_CHARS] or None).
        """
        import tensorflow as tf

        words, chars = [np.zeros(0, np.int32)], [np.zeros((0, MAX_WORD_CHARS), np.int32)]
        for start in range(0, len(tokens), CHUNK):
            piece = tf.constant(tokens[start:start + CHUNK], tf.string)
            words.append(self.word_ids(piece).numpy())
            if with_chars:
                chars.append(char_ids(piece).numpy())
        return np.concatenate(words), np.concatenate(chars) if with_chars else None


def build_tag_vocab(tokens: list[str], lowercase: bool, max_tokens: int = 0, min_count: int = 1) -> WordVocab:
    """The word vocabulary of the training tokens: tokens seen >= min_count times, the max_tokens most frequent if
    capped (ties: the token seen first), lowercased first with `lowercase` (by TensorFlow, as serving lowercases).

    Args:
        tokens: the training tokens, sentences laid end to end.

    Returns:
        A WordVocab (id 0 padding, 1..V tokens, V + 1 unknown) whose tokenizer is "split_lower" or "split".
    """
    import tensorflow as tf

    counts: dict[str, int] = {}
    for start in range(0, len(tokens), CHUNK):
        piece = tf.constant(tokens[start:start + CHUNK], tf.string)
        if lowercase:
            piece = tf.strings.lower(piece, encoding="utf-8")
        unique, _, found = tf.unique_with_counts(piece)
        for token, count in zip(unique.numpy().tolist(), found.numpy().tolist()):
            key = token.decode("utf-8")
            counts[key] = counts.get(key, 0) + count
    kept = [t for t, c in counts.items() if c >= min_count]
    if max_tokens and len(kept) > max_tokens:
        order = sorted(range(len(kept)), key=lambda i: -counts[kept[i]])  # sorted() is stable: first seen wins ties
        kept = [kept[i] for i in sorted(order[:max_tokens])]
    return WordVocab(kept, "split_lower" if lowercase else "split")
