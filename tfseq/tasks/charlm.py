"""The character-LM task: a next-character model of a text, sampled from and exported as `generate`."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tfseq.config import check_choice, check_positive, check_range
from tfseq.tasks.base import Task, TaskSpec


@dataclass
class CharLMData:
    """Where a char-LM's text comes from and how it is cut into training windows."""

    path: str = ""  # text file to learn from; "" = the embedded book (The Mysterious Island, Project Gutenberg #1268)
    encoding_errors: str = "strict"  # strict: refuse bytes that are not UTF-8 | replace: turn them into U+FFFD
    start_marker: str = ""  # text starts at the first occurrence of this; "" or not found: after "*** START OF" line
    end_marker: str = "End of the Project Gutenberg"  # text ends before this, or before the "*** END OF" line
    val_fraction: float = 0.1  # trailing fraction of the text held out for validation (one contiguous piece)
    seq_len: int = 100  # characters per training window (the targets are the same window shifted by one)

    def check(self) -> None:
        check_choice("data.encoding_errors", self.encoding_errors, ("strict", "replace"))
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.5, low_open=True)
        check_positive("data.seq_len", self.seq_len)


class CharLMTask(Task):
    """Training and held-out data of a char-LM run, its final metrics, and its `generate` export.

    Args:
        cfg: the run's config.
    """

    tool = "sample"

    def __init__(self, cfg):
        from tfseq.data import gutenberg

        super().__init__(cfg)
        self.corpus = gutenberg.load_corpus(cfg.data)
        self.vocab = self.corpus.vocab
        self.steps_per_epoch = gutenberg.steps_per_epoch(
            len(self.corpus.train_ids), cfg.data.seq_len, cfg.train.batch_size, cfg.train.steps_per_epoch)

    def describe(self) -> str:
        c = self.corpus
        return (f"{c.source.name}: {len(c.train_ids):,} training + {len(c.val_ids):,} held-out characters, "
                f"{c.vocab.size} symbols, {self.steps_per_epoch} batches per epoch")

    def data_name(self) -> str:
        return str(self.corpus.source)

    def fingerprint(self) -> str:
        """SHA-256 of what training depends on: the vocabulary and the training and held-out ids."""
        from tfseq.data.text import data_fingerprint

        return data_fingerprint(self.vocab, [self.corpus.train_ids, self.corpus.val_ids])

    def train_data(self, first_epoch: int):
        """(input, target) batches for epochs first_epoch .. train.epochs - 1."""
        from tfseq.data import gutenberg

        t = self.cfg.train
        ds, _ = gutenberg.train_dataset(self.corpus.train_ids, self.cfg.data.seq_len, t.batch_size, t.seed,
                                        first_epoch, t.epochs, self.steps_per_epoch)
        return ds

    def val_data(self):
        from tfseq.data import gutenberg

        return gutenberg.eval_dataset(self.corpus.val_ids, self.cfg.data.seq_len, self.cfg.train.batch_size)

    def final_metrics(self, model, run) -> dict:
        """Held-out loss over every character of the held-out tail, each predicted from all the text before it.

        The tail is read as 32 streams with the state carried through each stream and 256 characters of context
        before each stream's first scored character, so no character is scored from a cold start except the first
        stream's opening ones (as in any LM evaluation from the start of a text). Also reported: the loss over
        back-to-back windows of seq_len (`val_loss_windowed`, the per-epoch validation) and of 40 characters
        (`val_loss_windows40`, the textbook's view: each character sees only the window before it).
        """
        from tfseq.data import gutenberg

        loss, count = stream_loss(model, self.corpus.val_ids)
        windowed = model.evaluate(self.val_data(), verbose=0, return_dict=True)["loss"]
        # The textbook's own yardstick: back-to-back windows of 40 characters, whatever seq_len this run uses.
        textbook = model.evaluate(gutenberg.eval_dataset(self.corpus.val_ids, 40, 64), verbose=0,
                                  return_dict=True)["loss"]
        return {
            "val_loss": loss,
            "val_bpc": loss / math.log(2),
            "val_perplexity": math.exp(min(loss, 700.0)),  # capped: a diverged run must still report
            "val_chars": count,
            "val_loss_windowed": float(windowed),
            "seq_len": self.cfg.data.seq_len,
            "val_loss_windows40": float(textbook),
        }


    @classmethod
    def add_endpoints(cls, archive, trained) -> None:
        from tfseq.generation import CharGenerator, add_generate_endpoint

        add_generate_endpoint(archive, CharGenerator(trained.model), trained.vocab)


SPEC = TaskSpec(
    name="charlm", summary="a character-level language model of a text (sample from it with tfseq.sample)",
    data=CharLMData, task=CharLMTask, default_pipeline="charlm_quick", heads=("next_token",),
    data_help="a UTF-8 text file (default: the embedded book, The Mysterious Island)")


def stream_loss(model, ids: np.ndarray, streams: int = 32, context: int = 256) -> tuple[float, int]:
    """Mean next-character cross-entropy (nats) over ids[1:], reading `ids` as contiguous streams.

    Args:
        model: a next-token model (ids -> logits).
        ids: the held-out text as char ids.
        streams: how many pieces are read side by side (one batch).
        context: characters read before each piece's first scored character (not scored again).

    Returns:
        (mean loss in nats per character, number of characters scored).
    """
    n = len(ids)
    bounds = np.linspace(1, n, streams + 1).astype(int)
    rows, weights = [], []
    for a, b in zip(bounds[:-1], bounds[1:]):
        c = max(0, a - 1 - context)
        rows.append(ids[c:b])
        weights.append(np.arange(c + 1, b) >= a)  # the target positions of row[1:]
    width = max(len(r) for r in rows)
    x = np.zeros((streams, width - 1), np.int32)
    y = np.zeros((streams, width - 1), np.int32)
    w = np.zeros((streams, width - 1), np.float64)
    for i, (row, weight) in enumerate(zip(rows, weights)):
        x[i, : len(row) - 1], y[i, : len(row) - 1], w[i, : len(row) - 1] = row[:-1], row[1:], weight
    logits = model.predict(x, batch_size=streams, verbose=0).astype(np.float64)
    logits -= logits.max(-1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    count = int(w.sum())
    return float((nll * w).sum() / count), count
