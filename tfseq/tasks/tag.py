"""The tag task: one tag per token (part of speech, named entities, punctuation, case), read in both directions,
scored per tag and per chunk, served as `serve(text) -> {"tokens", "tags", "lengths"}`.

Sources: a CoNLL-style file (one token per line, a blank line between sentences) or JSON lines ({"tokens",
"tags"}), with a separate test file or a carve; or, with data.derive, a tagging task made from any raw text
(punctuation restoration, truecasing: tfseq.data.derive_tags).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from tfseq.config import check_choice, check_range
from tfseq.errors import UserError
from tfseq.tasks.base import Task, TaskSpec


@dataclass
class TagData:
    """Where tagged sentences come from, how they are split, and how tokens become ids."""

    path: str = ""  # a CoNLL file or .jsonl; with data.derive: a text file, folder of .txt, the IMDb archive, "" = the book
    test_path: str = ""  # a separate test file; "" = a carve (data.carve), or the IMDb archive's test reviews (derive)
    token_column: int = 0  # CoNLL: the column holding the token (0 = first; negative counts from the last)
    tag_column: int = -1  # CoNLL: the column holding the tag (-1 = last)
    derive: str = ""  # make the tags from raw text: punctuate | truecase; "" = read tagged files (data.path)
    words_per_piece: int = 40  # derive = punctuate: words per tagged piece (pieces are cut inside paragraphs)
    lowercase: bool = False  # look words up lowercased (the character CNN still sees their case)
    max_tokens: int = 0  # vocabulary cap, most frequent training tokens first; 0 = all
    min_count: int = 1  # leave out tokens seen fewer times than this in training (they share the unknown id)
    carve: str = "random"  # without a test file: random (sentences drawn at random) | last (the last fraction: a book)
    test_fraction: float = 0.1  # without a test file: the fraction of the sentences held out for test
    val_fraction: float = 0.1  # the fraction of the training sentences held out for validation
    split_seed: int = 0  # seed of the random carves and of data.limit's samples
    limit: int = 0  # keep only this many sentences of each split, a random sample (quick runs); 0 = all
    bucket: bool = True  # batch sentences of similar length together (less padding)
    pad_multiple: int = 8  # pad each batch's length up to a multiple of this (few shapes, few retraces)

    def check(self) -> None:
        check_choice("data.derive", self.derive, ("", "punctuate", "truecase"))
        check_choice("data.carve", self.carve, ("random", "last"))
        check_range("data.test_fraction", self.test_fraction, 0.0, 0.5, low_open=True)
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.5, low_open=True)
        check_range("data.words_per_piece", self.words_per_piece, 2, 10_000)
        check_range("data.pad_multiple", self.pad_multiple, 1, 1024)
        for key in ("max_tokens", "limit"):
            check_range(f"data.{key}", getattr(self, key), 0, math.inf)
        check_range("data.min_count", self.min_count, 1, math.inf)


@dataclass
class TaggedIds:
    """A split as ids: sentence i is rows splits[i]:splits[i + 1] of `words`, `chars` and `tags`.

    Args:
        words: int32 [n] word ids.
        chars: int32 [n, MAX_WORD_CHARS] character ids, or None (a model without a character CNN).
        tags: int32 [n] tag ids (-1: a tag the training data does not have).
        splits: int64 [sentences + 1] row offsets.
    """

    words: np.ndarray
    chars: np.ndarray | None
    tags: np.ndarray
    splits: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.splits)


class TagTask(Task):
    """Splits, vocabulary, tag list and encoded sentences of a tagger run; validation picks the model, test only
    reports.

    Args:
        cfg: the run's config.
    """

    tool = "predict"

    def __init__(self, cfg):
        from tfseq.data.tagged import Tagged

        super().__init__(cfg)
        started = time.perf_counter()
        self.splits, self.split_note = self.read_splits()
        read = time.perf_counter()
        train, val = self.splits["train"], self.splits["val"]
        self.classes = Tagged(train.tokens + val.tokens, train.tags + val.tags).tag_set()
        if len(self.classes) < 2:
            raise UserError(f"{self.data_name()} has one tag only ({self.classes[0]!r}) in its training sentences; a "
                            "tagger needs at least two (for a CoNLL file, check data.tag_column)")
        self._check_classes()
        from tfseq.data.tag_encoding import TagEncoder, build_tag_vocab

        d = cfg.data
        self.vocab = build_tag_vocab(_flat(self.splits["train"].tokens), d.lowercase, d.max_tokens, d.min_count)
        encoder = TagEncoder(self.vocab)
        self.encoded = {name: self._encode(encoder, part) for name, part in self.splits.items()}
        self.seconds = {"read": read - started, "encode": time.perf_counter() - read}
        n = len(self.splits["train"])
        self.steps_per_epoch = -(-n // cfg.train.batch_size)
        if cfg.train.steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.train.steps_per_epoch)

    def read_splits(self) -> tuple[dict, str]:
        """Reads the source(s) and cuts them into train / val / test.

        Returns:
            ({"train", "val", "test"}: tfseq.data.tagged.Tagged, a note on how validation and test were made).
        """
        d = self.cfg.data
        train, test = self._read_sources()
        rng = np.random.default_rng(d.split_seed)
        note = "test: " + (f"the test sentences of {d.test_path or d.path}" if test is not None else
                           f"the last {d.test_fraction:.0%} of the sentences" if d.carve == "last" else
                           f"{d.test_fraction:.0%} of the sentences at random")
        if test is None:
            held = _carve(len(train), d.test_fraction, d.carve, rng)
            train, test = train.take(np.flatnonzero(~held)), train.take(np.flatnonzero(held))
        held = _carve(len(train), d.val_fraction, d.carve, rng)
        splits = {"train": train.take(np.flatnonzero(~held)), "val": train.take(np.flatnonzero(held)), "test": test}
        if d.limit:
            splits = {name: part.take(np.sort(rng.permutation(len(part))[:d.limit])) if len(part) > d.limit else part
                      for name, part in splits.items()}
        for name, part in splits.items():
            if len(part) == 0:
                raise UserError(f"the {name} split is empty ({len(train) + len(test)} sentences in all); give more "
                                "sentences, or raise data.val_fraction / data.test_fraction or data.limit")
        return splits, f"{note}; validation: the {'last' if d.carve == 'last' else 'random'} {d.val_fraction:.0%} " \
                       "of the training sentences"

    def _read_sources(self):
        """(training Tagged, test Tagged or None when test is carved from training)."""
        from tfseq.data.derive_tags import derive_source, is_imdb
        from tfseq.data.tagged import read_tagged

        d = self.cfg.data
        if d.derive:
            train = derive_source(d.derive, d.path or "book", "train", words_per_piece=d.words_per_piece)
            test = None
            if d.test_path:
                test = derive_source(d.derive, d.test_path, "test", words_per_piece=d.words_per_piece)
            elif is_imdb(d.path):
                test = derive_source(d.derive, d.path, "test", words_per_piece=d.words_per_piece)
            return train, test
        if not d.path:
            raise UserError("no data given: pass --data FILE (a CoNLL file, one token per line with its tag, or a "
                            ".jsonl file of {\"tokens\": [...], \"tags\": [...]}), or set data.derive = punctuate or "
                            "truecase to make a tagging task from raw text")
        train = read_tagged(d.path, d.token_column, d.tag_column)
        return train, read_tagged(d.test_path, d.token_column, d.tag_column) if d.test_path else None

    def _check_classes(self) -> None:
        m, k = self.cfg.model, self.num_classes
        if m.num_classes and m.num_classes != k:
            raise UserError(f"model.num_classes = {m.num_classes}, but the training sentences have {k} tags; set "
                            "model.num_classes = 0 (as many as the data has)")

    def _encode(self, encoder, part) -> TaggedIds:
        words, chars = encoder.encode_flat(_flat(part.tokens), with_chars=bool(self.cfg.model.char_features))
        index = {tag: i for i, tag in enumerate(self.classes)}
        tags = np.array([index.get(tag, -1) for tag in _flat(part.tags)], np.int32)
        splits = np.concatenate([[0], np.cumsum([len(s) for s in part.tokens])]).astype(np.int64)
        return TaggedIds(words, chars, tags, splits)

    def describe(self) -> str:
        sizes = ", ".join(f"{len(part):,} {name}" for name, part in self.splits.items())
        tokens = int(self.encoded["train"].splits[-1])
        unknown = float(np.mean(self.encoded["test"].words == self.vocab.oov_id))
        shown = ", ".join(self.classes[:12]) + (" ..." if len(self.classes) > 12 else "")
        return (f"{self.data_name()}: {sizes} sentences ({tokens:,} training tokens); {self.split_note}\n"
                f"{self.num_classes} tags ({shown}); vocabulary {self.vocab.size:,} ids, {unknown:.1%} of the test "
                f"tokens unknown; read in {self.seconds['read']:.1f}s, encoded in {self.seconds['encode']:.1f}s")

    def data_name(self) -> str:
        d = self.cfg.data
        return f"{d.derive} of {d.path or 'the embedded book'}" if d.derive else d.path

    def fingerprint(self) -> str:
        """SHA-256 of the vocabulary, the tag list and every split's ids (character ids too: an unknown word's
        characters are data the model reads)."""
        from tfseq.data.text import data_fingerprint

        arrays = [a for e in self.encoded.values() for a in (e.words, e.chars, e.tags, e.splits)
                  if a is not None] + [np.array(self.classes)]
        return data_fingerprint(self.vocab, arrays)

    def train_data(self, first_epoch: int):
        """Shuffled (inputs, tags) batches, right-padded, for epochs first_epoch .. train.epochs - 1."""
        import tensorflow as tf

        from tfseq.data.batching import epoch_batches

        t, data = self.cfg.train, self.encoded["train"]
        per_epoch = self.steps_per_epoch

        def index_batches():
            for epoch in range(first_epoch, t.epochs):
                yield from epoch_batches(data.lengths, t.batch_size, t.seed, epoch, self.cfg.data.bucket)[:per_epoch]

        ds = tf.data.Dataset.from_generator(index_batches, output_signature=tf.TensorSpec([None], tf.int64))
        return ds.map(self._batcher(data), num_parallel_calls=2).prefetch(tf.data.AUTOTUNE)

    def _batcher(self, data: TaggedIds):
        """A function from sentence indices to a right-padded (inputs, int32 tags [batch, time]) batch."""
        import tensorflow as tf

        multiple = self.cfg.data.pad_multiple
        rows = {"ids": tf.RaggedTensor.from_row_splits(data.words, data.splits)}
        if data.chars is not None:
            rows["chars"] = tf.RaggedTensor.from_row_splits(data.chars, data.splits)
        # A tag unknown to training (-1, possible in test only) is scored as wrong by final_metrics; for the
        # validation loss it reads as tag 0.
        tags = tf.RaggedTensor.from_row_splits(np.maximum(data.tags, 0), data.splits)

        def pad(ragged):
            dense = ragged.to_tensor(0)
            width = tf.shape(dense)[1]
            extra = (width + multiple - 1) // multiple * multiple - width
            return tf.pad(dense, [[0, 0], [0, extra]] + [[0, 0]] * (len(dense.shape) - 2))

        def batch(index):
            inputs = {key: pad(tf.gather(value, index)) for key, value in rows.items()}
            return inputs if data.chars is not None else inputs["ids"], pad(tf.gather(tags, index))

        return batch

    def val_data(self):
        return self._eval_dataset(self.encoded["val"])[0]

    def _eval_dataset(self, data: TaggedIds):
        """(batches of a whole split, shortest sentences first, and the order they visit the sentences in)."""
        import tensorflow as tf

        order = np.argsort(data.lengths, kind="stable")
        bounds = np.arange(0, len(order), self.cfg.train.batch_size)
        batches = [order[a:a + self.cfg.train.batch_size] for a in bounds]
        ds = tf.data.Dataset.from_generator(lambda: iter(batches), output_signature=tf.TensorSpec([None], tf.int64))
        # A known length: Keras' evaluation then ends on the count instead of warning that the data ran out.
        ds = ds.apply(tf.data.experimental.assert_cardinality(len(batches)))
        return ds.map(self._batcher(data)).cache().prefetch(2), order

    def predict(self, model, split: str) -> list[list[str]]:
        """The model's tag for every token of a split, as tag names, sentence by sentence in the split's order."""
        data = self.encoded[split]
        ds, order = self._eval_dataset(data)
        lengths = data.lengths
        found: list[list[str] | None] = [None] * len(lengths)
        names = np.array(self.classes)
        position = 0
        for inputs, _ in ds:
            best = np.argmax(model.predict_on_batch(inputs), axis=-1)
            for row in best:
                i = order[position]
                found[i] = names[row[:lengths[i]]].tolist()
                position += 1
        return found

    def final_metrics(self, model, run) -> dict:
        """Validation and test scores: token accuracy, micro-F1 over the tags other than O (f1_non_O), macro-F1,
        chunk F1 for BIO / IOBES tags (the conlleval rules), the test's per-tag scores and confusion matrix (also
        written as confusion.json and confusion.png); for truecasing also the accuracy over words that are not
        sentence-initial (whose case is free)."""
        from tfseq.scores import plot_confusion
        from tfseq.tag_scores import tag_scores

        out = {"tags": self.classes}
        # Test tags that training never had are scored too (always wrong): they join the list after the model's.
        names = self.classes + sorted(set(_flat(self.splits["test"].tags)) - set(self.classes))
        for split in ("val", "test"):
            true, predicted = self.splits[split].tags, self.predict(model, split)
            scores = tag_scores(true, predicted, names)
            out.update({f"{split}_{key}": value for key, value in scores.items()
                        if key not in ("per_tag", "confusion") and not isinstance(value, dict)})
            if "chunks" in scores:
                out[f"{split}_chunk_f1"] = scores["chunks"]["f1"]
            if self.cfg.data.derive == "truecase":
                inner = non_initial_words(self.splits[split].tokens)
                out[f"{split}_accuracy_non_initial"] = tag_scores(true, predicted, names, mask=inner)["accuracy"]
        out.update({"test_per_tag": scores["per_tag"], "test_confusion": scores["confusion"],
                    "test_sentences": len(self.splits["test"]), "test_tokens": int(self.encoded["test"].splits[-1]),
                    "validation": self.split_note})
        run.write_confusion(names, scores["confusion"])
        plot_confusion(scores["confusion"], names, run.confusion_plot,
                       title=f"{run.path.name}: test, {out['test_tokens']:,} tokens")
        return out

    @classmethod
    def add_endpoints(cls, archive, trained) -> None:
        """`serve(text: string[n]) -> {"tokens": string[n, t], "tags": string[n, t], "lengths": int32[n]}` (the
        texts split on whitespace, padded with "" to the longest; lengths: each text's tokens) and
        `tags() -> string[k]`."""
        from tfseq.tagging import add_tagger_endpoints

        add_tagger_endpoints(archive, trained)


def _flat(sentences: list[list[str]]) -> list[str]:
    return [token for sentence in sentences for token in sentence]


def _carve(n: int, fraction: float, how: str, rng: np.random.Generator) -> np.ndarray:
    """A bool mask of the held-out sentences: the last `fraction` of them, or a random `fraction` (at least one)."""
    count = max(1, round(n * fraction)) if n > 1 else 0
    held = np.zeros(n, bool)
    if how == "last":
        held[n - count:] = True
    else:
        held[rng.permutation(n)[:count]] = True
    return held


def non_initial_words(sentences: list[list[str]]) -> list[list[bool]]:
    """Per token: a word (it has a letter) that is not its sentence's first word."""
    from tfseq.data.derive_tags import initial_words

    return [[any(ch.isalpha() for ch in token) and not first for token, first in zip(tokens, initial_words(tokens))]
            for tokens in sentences]


SPEC = TaskSpec(
    name="tag", summary="a tagger: one tag per token (CoNLL or JSON-lines files, or punctuation / case derived from "
    "raw text with data.derive); tfseq.predict prints token/TAG", data=TagData, task=TagTask,
    default_pipeline="tag_tiny", heads=("per_token",), monitors=("val_loss", "val_accuracy"),
    model_defaults={"head": "per_token", "num_classes": 0, "mask_zero": True, "bidirectional": True, "units": 128,
                    "embedding_dim": 128, "char_features": 32},
    data_help="a CoNLL file (data.token_column, data.tag_column) or .jsonl of {\"tokens\", \"tags\"}; with "
    "data.derive: a text file, a folder of .txt files or the IMDb archive")
