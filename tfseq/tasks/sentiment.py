"""The sentiment task: the classify task on IMDb reviews, with IMDb's official split (or the textbook's) and
positive / negative labels; validation carved by movie."""
from __future__ import annotations

from dataclasses import dataclass

from tfseq.config import TextEncoding, check_choice, check_range
from tfseq.data.imdb import POLARITY
from tfseq.tasks.base import TaskSpec
from tfseq.tasks.classify import ClassifyTask


@dataclass
class SentimentData(TextEncoding):
    """Where IMDb reviews come from and how they are split (tokenizing and batching: the fields above)."""

    path: str = ""  # aclImdb_v1.tar.gz, an extracted aclImdb/ folder, a CSV (review + sentiment/label), or "tfds"
    tfds_data_dir: str = ""  # TFDS data dir for path = "tfds"; "" = TFDS's default (~/tensorflow_datasets)
    split: str = "official"  # official: 25k train / 25k test | textbook: shuffled 50k -> 25k test/20k train/5k val
    val_fraction: float = 0.2  # official split: fraction of the training MOVIES held out (all their reviews)
    split_seed: int = 0  # seed of the validation carve (official) or of the 50k shuffle (textbook)

    def check(self) -> None:
        super().check()
        check_choice("data.split", self.split, ("official", "textbook"))
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.5, low_open=True)


class SentimentTask(ClassifyTask):
    """A binary IMDb classifier: the classify task's training, metrics and export on IMDb's splits.

    Args:
        cfg: the run's config.
    """

    unit = "reviews"
    default_classes = POLARITY  # run folders from before class lists were stored

    def read_splits(self):
        from tfseq.data import imdb

        source, classes = imdb.read_source(self.cfg.data.path, self.cfg.data.tfds_data_dir)
        splits, note = imdb.make_splits(source, self.cfg.data)
        return splits, classes, note

    def fingerprint(self) -> str:
        """SHA-256 of the vocabulary and every split's ids and labels (the class names are always the same)."""
        from tfseq.data.text import data_fingerprint

        return data_fingerprint(self.vocab, [a for e in self.encoded.values() for a in (e.ids, e.splits, e.labels)])

    def final_metrics(self, model, run) -> dict:
        """The classify task's metrics, the test confusion counts by name, and the split used."""
        out = super().final_metrics(model, run)
        (tn, fp), (fn, tp) = out["test_confusion"]
        out.update(test_true_positives=tp, test_false_positives=fp, test_true_negatives=tn, test_false_negatives=fn,
                   split=self.cfg.data.split)
        return out


SPEC = TaskSpec(
    name="sentiment", summary="a positive / negative classifier of IMDb reviews (tfseq.predict labels reviews with "
    "it)", data=SentimentData, task=SentimentTask, default_pipeline="imdb_default", heads=("binary",),
    monitors=("val_loss", "val_accuracy"), model_defaults={"head": "binary", "mask_zero": True, "units": 64},
    data_help="aclImdb_v1.tar.gz, an aclImdb/ folder, a CSV (review + sentiment/label columns), or 'tfds'")
