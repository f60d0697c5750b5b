"""Texts -> word ids, by one implementation for training and serving.

`TextEncoder` holds the vocabulary lookup, the truncation and the empty-text rule. The training pipeline tokenizes
every text once (`tokenized_chunks`, all cores), builds the vocabulary from the training split (`build_vocab`) and
encodes with `TextEncoder.encode_chunks`; an exported model calls `TextEncoder.encode` on raw strings. Both end in
`TextEncoder.finish`, so a text gets the same ids in training and in serving.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from tfseq.data.batching import Encoded
from tfseq.data.text import WordVocab, tokenize

CHUNK = 1024  # texts per tokenizer call: large enough to amortise op overhead, small enough to parallelise


def vocab_table(vocab: WordVocab):
    """A tf.lookup table from token to id (1..V), OOV tokens to vocab.oov_id."""
    import tensorflow as tf

    keys = tf.constant(vocab.tokens or [""], tf.string)
    values = tf.range(1, max(len(vocab.tokens), 1) + 1, dtype=tf.int64)
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values),
                                     default_value=tf.constant(vocab.oov_id, tf.int64))


def tokenized_chunks(texts, tokenizer: str) -> list[tuple]:
    """Tokenizes texts in chunks on all cores; per chunk: its unique tokens, an index into them, tokens per text.

    Each chunk's tokens are reduced to their unique values (in order of first appearance) and an index, so that
    counting and encoding work on ~10^4 unique strings per chunk instead of ~10^5 tokens, inside TensorFlow. The
    chunks run as eager TensorFlow ops on a thread pool (the ops release the GIL; no tracing to pay for).

    Args:
        texts: a list of str, or a tf.string tensor of them.
        tokenizer: "book" or "lower".

    Returns:
        A list of (unique: tf.string tensor, index: int32 tensor, counts: int32 tensor, lengths: int32 tensor).
    """
    import tensorflow as tf

    workers = max(1, min(os.cpu_count() or 1, 8))

    def chunk(k):
        # A list is converted chunk by chunk: the text is never held twice, in Python and in TensorFlow.
        piece = tf.constant(texts[k * CHUNK:(k + 1) * CHUNK], tf.string) if isinstance(texts, list) else \
            texts[k * CHUNK:(k + 1) * CHUNK]
        tokens = tokenize(piece, tokenizer, variant=k % workers)
        unique, index, counts = tf.unique_with_counts(tokens.flat_values, out_idx=tf.int32)
        return unique, index, counts, tf.cast(tokens.row_lengths(), tf.int32)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(chunk, range(-(-len(texts) // CHUNK))))


def build_vocab(chunks: list, tokenizer: str, max_tokens: int = 0, min_count: int = 1) -> WordVocab:
    """The vocabulary of tokenized chunks: tokens seen >= min_count times, the max_tokens most frequent if capped.

    Args:
        chunks: (unique, index, counts, lengths) tuples from `tokenized_chunks` of the training split.
        tokenizer: the tokenizer's name, stored with the vocabulary.
        max_tokens: cap (0 = none); ties go to the token seen first.
        min_count: minimum count in the training split.

    Returns:
        A WordVocab with tokens in order of first appearance (the textbook encoder's order).
    """
    import tensorflow as tf

    if not chunks:
        return WordVocab([], tokenizer)
    # tf.unique keeps first-appearance order, and chunks are in order: the global order is the textbook's.
    tokens, where = tf.unique(tf.concat([c[0] for c in chunks], 0), out_idx=tf.int32)
    counts = tf.math.unsorted_segment_sum(tf.concat([c[2] for c in chunks], 0), where, tf.size(tokens)).numpy()
    keep = counts >= min_count
    if max_tokens and keep.sum() > max_tokens:
        ranked = np.argsort(-np.where(keep, counts, -1), kind="stable")  # stable: the earlier-seen token wins ties
        keep = np.zeros_like(keep)
        keep[ranked[:max_tokens]] = True
    return WordVocab([t.decode("utf-8") for t in tokens.numpy()[keep].tolist()], tokenizer)




class TextEncoder:
    """Word ids of texts: vocabulary lookup (unknown tokens -> the OOV id), truncation to `max_length` tokens (the
    last or the first), and the empty-text rule (a text without tokens becomes one OOV id: a fully masked row breaks
    cuDNN and pooling). TensorFlow ops only, so it runs in tf.data and inside an exported graph.

    Args:
        vocab: the run's WordVocab (it names the tokenizer).
        max_length: tokens kept per text; 0 = all.
        truncate: "last" keeps a long text's last max_length tokens (the textbook), "first" its first.
    """

    def __init__(self, vocab: WordVocab, max_length: int = 0, truncate: str = "last"):
        self.vocab, self.max_length, self.truncate = vocab, max_length, truncate
        self.table = vocab_table(vocab)

    def finish(self, ids):
        """Truncates int64 ids [n, (tokens)] and fills empty rows; returns (int32 ids [n, (time)], each row
        non-empty; int32 [n] ids in each kept row that are in the vocabulary)."""
        import tensorflow as tf

        if self.max_length:
            ids = ids[:, -self.max_length:] if self.truncate == "last" else ids[:, : self.max_length]
        oov = self.vocab.oov_id
        known = tf.reduce_sum(tf.cast(tf.not_equal(ids, oov), tf.int32), axis=1)
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        fill = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(empty)], tf.constant(oov, tf.int64)), empty)
        return tf.cast(tf.concat([ids, fill], axis=1), tf.int32), known

    def encode(self, texts):
        """Raw texts (tf.string [n]) -> (int32 ids [n, (time)], int32 [n] known tokens), as `finish` gives them."""
        import tensorflow as tf

        return self.finish(tf.ragged.map_flat_values(self.table.lookup, tokenize(texts, self.vocab.tokenizer)))

    def encode_chunks(self, chunks, labels: np.ndarray) -> Encoded:
        """Encodes tokenized chunks (from `tokenized_chunks`): each chunk's unique tokens are looked up once.

        Args:
            chunks: (unique, index, counts, lengths) tuples.
            labels: the texts' class ids.

        Returns:
            The split as flat ids and row offsets.
        """
        import tensorflow as tf

        ids, lengths = [], []
        for unique, index, _, row_lengths in chunks:
            rows = tf.RaggedTensor.from_row_lengths(tf.gather(self.table.lookup(unique), index),
                                                    tf.cast(row_lengths, tf.int64))
            finished, _ = self.finish(rows)
            ids.append(finished.flat_values.numpy())
            lengths.append(finished.row_lengths().numpy())
        ids = np.concatenate(ids) if ids else np.zeros(0, np.int32)
        lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        return Encoded(ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), np.asarray(labels, np.int32))


def encode_splits(splits: dict, cfg) -> tuple[WordVocab, dict[str, Encoded]]:
    """Tokenizes every split once, builds the vocabulary from train, and encodes all splits.

    Each split's texts are released as soon as it is tokenized (`texts` becomes []), so the texts are never held
    twice: only their per-chunk unique tokens and indices stay.

    Args:
        splits: {"train", "val", "test"}: tfseq.data.examples.Examples with class ids.
        cfg: the [data] section (tfseq.config.TextEncoding fields).

    Returns:
        (vocabulary, {split name: Encoded}).
    """
    chunks = {}
    for name, part in splits.items():
        chunks[name] = tokenized_chunks(part.texts, cfg.tokenizer)
        part.texts = []
    vocab = build_vocab(chunks["train"], cfg.tokenizer, cfg.max_tokens, cfg.min_count)
    encoder = TextEncoder(vocab, cfg.max_length, cfg.truncate)
    return vocab, {name: encoder.encode_chunks(chunks[name], part.labels) for name, part in splits.items()}
