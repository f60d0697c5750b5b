"""The sentiment task: IMDb reviews -> train / validation / test batches, loss, metrics and the final test report."""
from __future__ import annotations

import time

import keras
import numpy as np

from tfseq.config import RunConfig
from tfseq.data import imdb


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
        del source  # the splits hold the only references to the texts, and encode_splits lets them go
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
        return self._eval("val")

    def _eval(self, split: str):
        return imdb.eval_dataset(self.encoded[split], self.cfg.train.batch_size,
                                 pad_multiple=self.cfg.data.pad_multiple)

    def loss(self):
        return keras.losses.BinaryCrossentropy()

    def metrics(self) -> list:
        return [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]

    def final_metrics(self, model: keras.Model) -> dict:
        """Validation and test accuracy, loss, AUC, and the test confusion counts (threshold 0.5)."""
        out = {}
        for split in ("val", "test"):
            data = self._eval(split)
            scores = model.evaluate(data, verbose=0, return_dict=True)
            out.update({f"{split}_{k}": float(v) for k, v in scores.items()})
        test = self.encoded["test"]
        data = self._eval("test")
        probs = model.predict(data.map(lambda x, y: x), verbose=0)[:, 0]
        labels = test.labels[np.argsort(test.lengths, kind="stable")]
        predicted = probs >= 0.5
        out.update({
            "test_true_positives": int(np.sum(predicted & (labels == 1))),
            "test_false_positives": int(np.sum(predicted & (labels == 0))),
            "test_true_negatives": int(np.sum(~predicted & (labels == 0))),
            "test_false_negatives": int(np.sum(~predicted & (labels == 1))),
            "test_reviews": int(len(labels)),
            "split": self.cfg.data.split,
            "validation": self.split_note,
        })
        return out
