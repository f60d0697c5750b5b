"""The language-model task, for characters or words: a next-token model of a corpus, sampled from with
tfseq.sample and exported as `generate`; trained on shuffled windows, or statefully over contiguous lanes.

`charlm` is the same task with characters only (its pipelines, run folders and commands from before `lm`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfseq.config import check_choice, check_positive, check_range
from tfseq.errors import UserError
from tfseq.tasks.base import Task, TaskSpec

@dataclass
class LMData:
    """Where a language model's text comes from, its unit, and how it is cut into training windows."""

    path: str = ""  # a text file, a folder of .txt files, a CSV / TSV / JSON-lines table or the IMDb archive; "" = the embedded book
    unit: str = "char"  # char: one token per character | word: words and punctuation marks (tfseq.data.words)
    text_column: str = ""  # table sources: the column holding the text ("" = "text")
    lowercase: bool = False  # word unit: lowercase the text before tokenizing
    max_tokens: int = 0  # word unit: keep the most frequent training tokens, the rest become <unk>; 0 = all
    min_count: int = 1  # word unit: tokens seen fewer times in the training text become <unk>
    max_documents: int = 0  # keep only the first N documents of a multi-document corpus (quick runs); 0 = all
    encoding_errors: str = "strict"  # strict: refuse bytes that are not UTF-8 | replace: turn them into U+FFFD
    start_marker: str = ""  # text files: start at the first occurrence of this; "" or not found: after "*** START OF"
    end_marker: str = "End of the Project Gutenberg"  # text files: end before this, or before the "*** END OF" line
    val_fraction: float = 0.1  # held out: the last fraction of a single text, or this share of whole documents
    split_seed: int = 0  # which documents are held out (multi-document corpora)
    seq_len: int = 100  # tokens per training window; the gradient is cut at each window's start

    def check(self) -> None:
        check_choice("data.unit", self.unit, ("char", "word"))
        check_choice("data.encoding_errors", self.encoding_errors, ("strict", "replace"))
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.5, low_open=True)
        check_positive("data.seq_len", self.seq_len)
        check_positive("data.min_count", self.min_count)
        for key in ("max_tokens", "max_documents"):
            check_range(f"data.{key}", getattr(self, key), 0, math.inf)
        if self.unit == "char" and (self.lowercase or self.max_tokens or self.min_count > 1):
            raise UserError("data.lowercase, data.max_tokens and data.min_count are for data.unit = 'word'; a char "
                            "model keeps every character of the text")


@dataclass
class CharLMData(LMData):
    """A char-LM's text (the `charlm` task: `lm` with data.unit = 'char')."""

    def check(self) -> None:
        super().check()
        if self.unit != "char":
            raise UserError(f"task charlm models characters; for data.unit = {self.unit!r} use "
                            "python -m tfseq.train lm")


class LMTask(Task):
    """Training and held-out streams of a language-model run, its final metrics, and its `generate` export.

    Args:
        cfg: the run's config.
    """

    tool = "sample"

    def __init__(self, cfg):
        from tfseq.data.corpus import read_corpus

        super().__init__(cfg)
        d = cfg.data
        self.corpus = read_corpus(d.path, text_column=d.text_column, start_marker=d.start_marker,
                                  end_marker=d.end_marker, encoding_errors=d.encoding_errors,
                                  val_fraction=d.val_fraction, split_seed=d.split_seed,
                                  max_documents=d.max_documents)
        separate = self.corpus.kind != "text"
        # The held-out characters after the first, which only starts the stream (as the first token does): for
        # characters, bits per character is then exactly val_loss / ln 2.
        self.val_chars = sum(len(doc) + separate for doc in self.corpus.held_out) - 1
        if d.unit == "char":
            self.train_ids, self.val_ids, self.vocab = _char_streams(self.corpus, separate)
        else:
            from tfseq.data.words import encode_documents

            self.train_ids, self.vocab = encode_documents(self.corpus.train, None, d.lowercase, d.max_tokens,
                                                          d.min_count, separate)
            self.val_ids, _ = encode_documents(self.corpus.held_out, self.vocab, d.lowercase, separate=separate)
        for name, ids in (("training", self.train_ids), ("held-out", self.val_ids)):
            if len(ids) - 1 <= d.seq_len:
                limit = f", data.max_documents = {d.max_documents}" if d.max_documents else ""
                raise UserError(f"{self.corpus.source}: the {name} text holds {len(ids):,} {d.unit}s, too few for "
                                f"data.seq_len = {d.seq_len} with data.val_fraction = {d.val_fraction}{limit}")
        self._scorer = None  # made on first use: it builds a model
        t = cfg.train
        if t.stateful:
            from tfseq.data.streams import lane_steps

            self.stateful_batch = t.batch_size
            self.steps_per_epoch = lane_steps(len(self.train_ids), d.seq_len, t.batch_size, t.steps_per_epoch)
        else:
            from tfseq.data import gutenberg

            self.steps_per_epoch = gutenberg.steps_per_epoch(len(self.train_ids), d.seq_len, t.batch_size,
                                                             t.steps_per_epoch)

    def describe(self) -> str:
        unit, c = self.cfg.data.unit, self.corpus
        docs = f" ({len(c.train):,} + {len(c.held_out):,} documents)" if c.kind != "text" else ""
        unknown = ""
        if unit == "word":
            unknown = f", {np.mean(self.val_ids == 0):.2%} of held-out tokens <unk>"
        layout = (f"{self.cfg.train.batch_size} stateful lanes" if self.cfg.train.stateful else "shuffled windows")
        return (f"{c.source}{docs}: {len(self.train_ids):,} training + {len(self.val_ids):,} held-out {unit}s "
                f"({self.val_chars:,} held-out characters), {self.vocab.size:,} {'symbols' if unit == 'char' else 'tokens'}"
                f"{unknown}\n{self.steps_per_epoch} batches per epoch of {layout} of {self.cfg.data.seq_len} {unit}s")

    def data_name(self) -> str:
        return str(self.corpus.source)

    def fingerprint(self) -> str:
        """SHA-256 of what training depends on: the vocabulary and the training and held-out ids."""
        from tfseq.data.text import data_fingerprint

        return data_fingerprint(self.vocab, [self.train_ids, self.val_ids])

    def train_data(self, first_epoch: int):
        """Batches for epochs first_epoch .. train.epochs - 1: lanes in order (stateful) or shuffled windows."""
        t, seq_len = self.cfg.train, self.cfg.data.seq_len
        if t.stateful:
            from tfseq.data.streams import lane_dataset

            return lane_dataset(self.train_ids, seq_len, t.batch_size, t.seed, first_epoch, t.epochs,
                                self.steps_per_epoch)
        from tfseq.data import gutenberg

        ds, _ = gutenberg.train_dataset(self.train_ids, seq_len, t.batch_size, t.seed, first_epoch, t.epochs,
                                        self.steps_per_epoch)
        return ds

    def val_data(self):
        """Back-to-back held-out windows for Keras' validation; None for a stateful run, whose validation reads the
        held-out stream through a copy of the model (epoch_metrics) so that the training state is untouched."""
        if self.cfg.train.stateful:
            return None
        from tfseq.data import gutenberg

        return gutenberg.eval_dataset(self.val_ids, self.cfg.data.seq_len, self.cfg.train.batch_size)

    def callbacks(self) -> list:
        if not self.cfg.train.stateful:
            return []
        from tfseq.data.streams import lane_steps

        d, t = self.cfg.data, self.cfg.train
        return [StatefulLanes(self.steps_per_epoch, lane_steps(len(self.train_ids), d.seq_len, t.batch_size))]

    def epoch_metrics(self, model) -> dict:
        """A stateful run's validation: the held-out stream's metrics (stream_metrics), read by a stateful copy of
        the model, so the training model's carried state is left as it was."""
        return self.stream_metrics(model) if self.cfg.train.stateful else {}

    def stream_metrics(self, model) -> dict:
        """val_loss (nats per token over the held-out stream, state carried), val_perplexity, val_bpc (bits per
        held-out character: the same total nats over the characters, comparable across units)."""
        from tfseq.models.streaming import StreamScorer

        if self._scorer is None:
            self._scorer = StreamScorer(self.cfg.model, self.vocab.size, self.val_ids)
        total, count = self._scorer(model)
        loss = total / count
        return {"val_loss": loss, "val_perplexity": math.exp(min(loss, 700.0)),  # capped: a diverged run reports
                "val_bpc": total / self.val_chars / math.log(2)}

    def final_metrics(self, model, run) -> dict:
        """The stream metrics, the unit and the held-out sizes; for characters also the loss over back-to-back
        windows of seq_len (`val_loss_windowed`) and of 40 (`val_loss_windows40`, the textbook's view: each
        character sees only the window before it)."""
        from tfseq.data import gutenberg
        from tfseq.models.factory import build_model

        metrics = {**self.stream_metrics(model), "unit": self.cfg.data.unit, "val_tokens": len(self.val_ids) - 1,
                   "val_chars": self.val_chars, "seq_len": self.cfg.data.seq_len}
        plain = model
        if self.cfg.train.stateful:  # a stateful model takes only its own batch size
            plain = build_model(self.cfg.model, self.vocab.size)
            plain.set_weights(model.get_weights())
            plain.compile(loss=self.loss())
        for key, seq_len in (("val_loss_windowed", self.cfg.data.seq_len), ("val_loss_windows40", 40)):
            windows = gutenberg.eval_dataset(self.val_ids, seq_len, 64)
            metrics[key] = float(plain.evaluate(windows, verbose=0, return_dict=True)["loss"])
        return metrics

    @classmethod
    def add_endpoints(cls, archive, trained) -> None:
        from tfseq.generation.endpoint import add_generate_endpoint, codec_for
        from tfseq.generation.stepper import Stepper

        codec = codec_for(trained.vocab)
        add_generate_endpoint(archive, Stepper(trained.model, never=codec.never), codec)


def _char_streams(corpus, separate: bool):
    """(training ids, held-out ids, CharVocab) of a corpus read as characters; the vocabulary covers the whole text
    (as the textbook's does), so a held-out character is never unknown."""
    from tfseq.data.text import EOD_CHAR, CharVocab

    join = (lambda docs: "".join(doc + EOD_CHAR for doc in docs)) if separate else "".join
    train, held_out = join(corpus.train), join(corpus.held_out)
    vocab = CharVocab.from_text(train + held_out)
    return vocab.encode(train), vocab.encode(held_out), vocab


def _keras_callback(name: str, doc: str, **methods):
    """A keras.callbacks.Callback subclass made on first use (task modules import Keras inside functions only)."""
    import keras

    return type(name, (keras.callbacks.Callback,), {"__doc__": doc, **methods})


def StatefulLanes(steps: int, full: int):
    """Zeroes the carried state when an epoch starts, and where a new pass over the stream starts the lanes at
    another offset (the old state then belongs to other text). The state is not checkpointed: zeroing it at every
    epoch start is what lets a resumed run go on exactly as the uninterrupted one (one cold window per epoch).

    Args:
        steps: batches per epoch.
        full: batches per pass over the stream.
    """
    from tfseq.models.factory import reset_states

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        reset_states(self.model)

    def on_train_batch_begin(self, batch, logs=None):
        if batch and (self.epoch * steps + batch) % full == 0:
            reset_states(self.model)

    return _keras_callback("StatefulLanes", StatefulLanes.__doc__, on_epoch_begin=on_epoch_begin,
                           on_train_batch_begin=on_train_batch_begin)()


_HELP = ("a text file (default: the embedded book, The Mysterious Island), a folder of .txt files, a CSV / TSV / "
         "JSON-lines table (data.text_column), or the IMDb archive (its training and unlabelled reviews)")

SPEC = TaskSpec(
    name="lm", summary="a language model of characters or words (data.unit), sampled with tfseq.sample",
    data=LMData, task=LMTask, default_pipeline="charlm_quick", heads=("next_token",), stateful=True,
    accepts_pipelines=("charlm",), data_help=_HELP)

CHARLM_SPEC = TaskSpec(
    name="charlm", summary="a character-level language model of a text (the lm task with data.unit = 'char')",
    data=CharLMData, task=LMTask, default_pipeline="charlm_quick", heads=("next_token",), stateful=True,
    data_help=_HELP)
