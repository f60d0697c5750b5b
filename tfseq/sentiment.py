"""The sentiment task: IMDb reviews -> train / validation / test batches, loss, metrics and the final test report."""
from __future__ import annotations

import time

import keras
import numpy as np

from tfseq.config import RunConfig
from tfseq.data import imdb
from tfseq.data.text import data_fingerprint


class SentimentTask:
    """Splits, vocabulary and encoded reviews of a sentiment run; validation picks the model, test only reports.

    Args:
        cfg: the run's config (task "sentiment").
    """

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        started = time.perf_counter()
        source = imdb.read_source(cfg.data)
        read = time.perf_counter()
        splits, self.split_note = imdb.make_splits(source, cfg.data)
        del source
        # Test reviews whose exact text is also a training or validation review (the official IMDb split has 123):
        # the final report gives the test accuracy with and without them.
        seen = set(splits["train"].texts) | set(splits["val"].texts)
        self.test_seen = np.array([text in seen for text in splits["test"].texts], bool)
        del seen  # the splits hold the only references to the texts, and encode_splits lets them go
        self.vocab, self.encoded = imdb.encode_splits(splits, cfg.data)
        self.seconds = {"read": read - started, "encode": time.perf_counter() - read}
        self.steps_per_epoch = -(-len(self.encoded["train"].labels) // cfg.train.batch_size)
        if cfg.train.steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.train.steps_per_epoch)

    def describe(self) -> str:
        sizes = ", ".join(f"{len(e.labels):,} {name}" for name, e in self.encoded.items())
        lengths = self.encoded["train"].lengths
        return (f"{self.cfg.data.path}: {sizes} reviews; {self.split_note}\n"
                f"vocabulary {self.vocab.size:,} ids ({self.cfg.data.tokenizer} tokenizer), train reviews "
                f"{int(np.median(lengths))} tokens median, {int(lengths.max())} max; read in "
                f"{self.seconds['read']:.1f}s, tokenized + encoded in {self.seconds['encode']:.1f}s")

    def data_name(self) -> str:
        return self.cfg.data.path

    def fingerprint(self) -> str:
        """SHA-256 of what training depends on: the vocabulary and every split's ids and labels."""
        return data_fingerprint(self.vocab, [a for e in self.encoded.values() for a in (e.ids, e.splits, e.labels)])

    def train_data(self, first_epoch: int):
        """Shuffled (ids, label) batches for epochs first_epoch .. train.epochs - 1."""
        t = self.cfg.train
        ds, steps = imdb.train_dataset(self.encoded["train"], t.batch_size, t.seed, first_epoch, t.epochs,
                                       self.cfg.data.bucket, self.cfg.data.pad_multiple)
        if self.steps_per_epoch < steps:
            per_epoch = self.steps_per_epoch
            ds = ds.enumerate().filter(lambda i, _: i % steps < per_epoch).map(lambda i, batch: batch)
        return ds

    def val_data(self):
        return self._eval("val")[0]

    def _eval(self, split: str):
        # A model without a mask reads the padding: only reviews of one length share a batch, so that a review's
        # score does not depend on its neighbours.
        return imdb.eval_dataset(self.encoded[split], self.cfg.train.batch_size,
                                 pad_multiple=self.cfg.data.pad_multiple, exact_lengths=not self.cfg.model.mask_zero)

    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self) -> list:
        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]

    def final_metrics(self, model: keras.Model) -> dict:
        """Validation and test accuracy, loss and AUC, the test confusion counts (threshold 0.5), and the test
        accuracy without the test reviews whose text also appears in training."""
        out, scored = {}, {}
        for split in ("val", "test"):
            data, order = self._eval(split)
            probs = model.predict(data.map(lambda x, y: x), verbose=0)[:, 0].astype(np.float64)
            scored[split] = probs, self.encoded[split].labels[order], order
            out.update({f"{split}_{k}": v for k, v in binary_scores(*scored[split][:2]).items()})
        probs, labels, order = scored["test"]
        predicted = probs >= 0.5
        seen = self.test_seen[order]
        out.update({
            "test_true_positives": int(np.sum(predicted & (labels == 1))),
            "test_false_positives": int(np.sum(predicted & (labels == 0))),
            "test_true_negatives": int(np.sum(~predicted & (labels == 0))),
            "test_false_negatives": int(np.sum(~predicted & (labels == 1))),
            "test_reviews": int(len(labels)),
            "test_reviews_seen_in_training": int(seen.sum()),
            "test_accuracy_unseen": float(np.mean(predicted[~seen] == (labels[~seen] == 1))) if (~seen).any()
            else float("nan"),
            "split": self.cfg.data.split,
            "validation": self.split_note,
        })
        return out


def binary_scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy (threshold 0.5), mean binary cross-entropy and the exact ROC AUC of probabilities against 0/1 labels.

    Returns:
        {"accuracy", "loss", "auc"}; auc is NaN when only one label is present.
    """
    clipped = np.clip(probs, 1e-7, 1 - 1e-7)  # Keras' epsilon: the same loss as model.evaluate
    positive = labels == 1
    loss = -np.mean(np.where(positive, np.log(clipped), np.log(1 - clipped)))
    # AUC = P(score of a random positive > score of a random negative), ties counting one half: from mean ranks.
    ranks = rank_with_ties(probs)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    auc = ((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)) if n_pos and n_neg else float("nan")
    return {"accuracy": float(np.mean((probs >= 0.5) == positive)), "loss": float(loss), "auc": float(auc)}


def rank_with_ties(values: np.ndarray) -> np.ndarray:
    """1-based ranks of `values`, ties given their mean rank (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(values)) - 1
    mean_rank = (first + last) / 2 + 1
    ranks = np.empty(len(values))
    ranks[order] = mean_rank[group]
    return ranks
