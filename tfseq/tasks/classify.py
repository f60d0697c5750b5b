"""The classify task: labelled texts of any source -> a binary or k-class classifier, scored per class, served as
`serve(text) -> {"label", "probabilities"}`.

Sources: a CSV / TSV / JSON-lines table, a folder with one subfolder of .txt files per class, a TFDS dataset by name
(`tfds:NAME`), and the IMDb archive (polarity or 1-10 star ratings). The sentiment task is this task on IMDb's own
splits.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfseq.config import TextEncoding, check_choice, check_range
from tfseq.errors import UserError
from tfseq.tasks.base import Task, TaskSpec


@dataclass
class ClassifyData(TextEncoding):
    """Where labelled texts come from, and how they are split (tokenizing and batching: the fields above)."""

    path: str = ""  # a .csv/.tsv/.jsonl table, a folder of class subfolders, aclImdb_v1.tar.gz / aclImdb/, or tfds:NAME
    test_path: str = ""  # a separate test table or folder; "" = the source's own test split, else a carve
    text_column: str = ""  # the text column, several joined by a newline ("title,body"); "" = text (tables), the
    # dataset's supervised text feature (TFDS)
    label_column: str = ""  # the label column (strings or integers); "" = label (tables), the supervised label (TFDS)
    group_column: str = ""  # tables: test and validation carves keep each group's texts together; "" = stratified
    labels: str = "polarity"  # IMDb archive or folder: polarity (2 classes) | rating (stars 1-4 and 7-10: 8 classes)
    tfds_data_dir: str = ""  # TFDS data dir for tfds:NAME; "" = TFDS's default (~/tensorflow_datasets)
    tfds_splits: str = "train,test"  # TFDS: the training split and the test split, comma-separated
    test_fraction: float = 0.2  # without a test split or test_path: stratified fraction of the texts held out as test
    val_fraction: float = 0.1  # fraction of the training texts (of the groups, with groups) held out for validation
    split_seed: int = 0  # seed of the test and validation carves and of data.limit's samples

    def check(self) -> None:
        super().check()
        check_choice("data.labels", self.labels, ("polarity", "rating"))
        check_range("data.test_fraction", self.test_fraction, 0.0, 0.5, low_open=True)
        check_range("data.val_fraction", self.val_fraction, 0.0, 0.5, low_open=True)
        if self.text_column.strip() and not self.text_columns():
            raise UserError(f"data.text_column = {self.text_column!r} names no column; name the column(s) holding the "
                            "text, e.g. text or title,body")

    def text_columns(self) -> list[str]:
        """The text column names given (empty: the source's default)."""
        return [c.strip() for c in self.text_column.split(",") if c.strip()]


class ClassifyTask(Task):
    """Splits, vocabulary, class list and encoded texts of a classifier run; validation picks the model, test only
    reports.

    Args:
        cfg: the run's config.
    """

    tool = "predict"
    unit = "texts"  # what the texts are called in messages and metric names

    def __init__(self, cfg):
        from tfseq.data.batching import balanced_weights
        from tfseq.data.encoder import encode_splits
        from tfseq.data.examples import concat

        super().__init__(cfg)
        started = time.perf_counter()
        splits, self.classes, self.split_note = self.read_splits()
        if cfg.data.fold_val:
            splits["train"] = concat([splits["train"], splits["val"]])
            self.split_note += "; folded into training (data.fold_val): validation scores are of training texts"
            self.val_label = "validation texts (trained on: data.fold_val)"
        read = time.perf_counter()
        self._check_classes()
        # Test texts whose exact text is also a training or validation text (IMDb's official split has 123): the
        # final report gives the test accuracy with and without them.
        seen = set(splits["train"].texts) | set(splits["val"].texts)
        self.test_seen = np.array([text in seen for text in splits["test"].texts], bool)
        del seen  # the splits hold the only references to the texts, and encode_splits lets them go
        self.vocab, self.encoded = encode_splits(splits, cfg.data)
        self.seconds = {"read": read - started, "encode": time.perf_counter() - read}
        self.steps_per_epoch = -(-len(self.encoded["train"].labels) // cfg.train.batch_size)
        if cfg.train.steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, cfg.train.steps_per_epoch)
        self.class_weights = (balanced_weights(self.encoded["train"].labels, self.num_classes)
                              if cfg.train.class_weight == "balanced" else None)

    def read_splits(self):
        """Reads the source and cuts it into train / val / test.

        Returns:
            ({"train", "val", "test"}: Examples with class ids, the class names, a note on the validation carve).
        """
        from tfseq.data.examples import class_ids
        from tfseq.data.splits import group_carve, stratified_carve, stratified_sample

        d = self.cfg.data
        source = self._read(d.path, d.group_column)
        if d.test_path:
            test_source = self._read(d.test_path, "")  # test texts need no groups: they are never carved
            if "test" in source:
                raise UserError(f"{d.path} has its own test split; leave data.test_path empty to use it")
            source = {"train": source["all"], "test": _only(test_source, d.test_path)}
        train = source.get("train", source.get("all"))
        ids, classes = class_ids(list(train.labels))
        if len(classes) < 2:
            raise UserError(f"{d.path} has a single class ({classes[0]!r}) in its training texts; a classifier needs "
                            "at least two (for a table, check data.label_column)")
        rng = np.random.default_rng(d.split_seed)
        if "test" in source:
            test = source["test"]
        else:
            # With groups, a group's texts are all in training or all in test, as with validation below.
            held = (group_carve(train.groups, d.test_fraction, rng)[0] if train.groups is not None else
                    stratified_carve(ids, d.test_fraction, rng))
            train, test = train.take(np.flatnonzero(~held)), train.take(np.flatnonzero(held))
            ids = ids[~held]
        unseen = sorted(set(test.labels.tolist()) - set(classes))
        if unseen:
            raise UserError(f"the test texts have label {unseen[0]!r}, which no training text has (training classes: "
                            f"{', '.join(classes)}); add training texts of that class or drop it from the test data")
        train.labels, test.labels = ids, class_ids(list(test.labels), classes)[0]
        if train.groups is not None:
            held, note = group_carve(train.groups, d.val_fraction, rng)
        else:
            held, note = stratified_carve(train.labels, d.val_fraction, rng), "a stratified carve of the training texts"
        splits = {"train": train.take(np.flatnonzero(~held)), "val": train.take(np.flatnonzero(held)), "test": test}
        if d.limit:
            splits = {name: stratified_sample(part, d.limit, rng) for name, part in splits.items()}
        for name, part in splits.items():
            if len(part) == 0:
                fix = ("lower data.val_fraction / data.test_fraction, or give more texts (more groups, with "
                       "data.group_column)" if name == "train" else
                       f"raise data.{name}_fraction or data.limit, or give more texts")
                raise UserError(f"the {name} split is empty ({len(train) + len(test)} texts in all); {fix}")
            if name == "train" and len(set(part.labels.tolist())) < 2:
                raise UserError("the training split has texts of one class only; give more texts of the others, or "
                                "lower data.val_fraction / data.test_fraction")
        return splits, classes, f"validation: {note}"

    def _read(self, path: str, group_column: str) -> dict:
        """Reads one source into {"train", "test"} or {"all"}: Examples with label strings (and groups, from a table
        with group_column, or IMDb's movies)."""
        from tfseq.data import imdb, sources

        d = self.cfg.data
        if not path:
            raise UserError("no data given: pass --data PATH (a .csv/.tsv/.jsonl table, a folder with one subfolder "
                            "per class, aclImdb_v1.tar.gz, or tfds:NAME)")
        kind = ("tfds" if path.startswith("tfds:") else "imdb" if imdb.is_imdb_source(Path(path)) else
                "folders" if Path(path).is_dir() else "table")
        if d.labels == "rating" and kind != "imdb":
            raise UserError(f"data.labels = 'rating' reads the star ratings in the IMDb archive's file names; {path} "
                            "is not the IMDb archive or an aclImdb/ folder (its labels come from data.label_column)")
        if group_column and kind != "table":
            raise UserError(f"data.group_column = {group_column!r} names a column of a table; {path} is not a table "
                            "(the IMDb archive carves by movie by itself)")
        if kind == "tfds":
            return sources.read_tfds(path[5:], d.tfds_data_dir, [s.strip() for s in d.tfds_splits.split(",")],
                                     d.text_column.strip(), d.label_column.strip())
        if kind == "imdb":
            found, classes = imdb.read_source(path, labels=d.labels)
            names = np.array(classes)
            for part in found.values():
                part.labels = names[part.labels]
            return found
        if kind == "folders":
            return sources.read_class_folders(Path(path))
        return {"all": sources.read_table(Path(path), d.text_columns() or ["text"], d.label_column.strip() or "label",
                                          group_column)}

    def _check_classes(self) -> None:
        m, k = self.cfg.model, self.num_classes
        self.head.check_classes(self.classes)
        if m.num_classes and m.num_classes != k:
            shown = ", ".join(self.classes[:10]) + (" ..." if k > 10 else "")
            raise UserError(f"model.num_classes = {m.num_classes}, but the data has {k} classes ({shown}); set "
                            "model.num_classes = 0 (as many as the data has)")

    def describe(self) -> str:
        sizes = ", ".join(f"{len(e.labels):,} {name}" for name, e in self.encoded.items())
        lengths = self.encoded["train"].lengths
        counts = np.bincount(self.encoded["train"].labels, minlength=self.num_classes)
        shown = ", ".join(f"{name} {count:,}" for name, count in list(zip(self.classes, counts))[:10])
        return (f"{self.cfg.data.path}: {sizes} {self.unit}; {self.split_note}\n"
                f"{self.num_classes} classes (training {self.unit}: {shown}{' ...' if self.num_classes > 10 else ''})"
                f"\nvocabulary {self.vocab.size:,} ids ({self.cfg.data.tokenizer} tokenizer), training {self.unit} "
                f"{int(np.median(lengths))} tokens median, {int(lengths.max())} max; read in "
                f"{self.seconds['read']:.1f}s, tokenized + encoded in {self.seconds['encode']:.1f}s")

    def data_name(self) -> str:
        return self.cfg.data.path

    def fingerprint(self) -> str:
        """SHA-256 of what training depends on: the vocabulary, the class names, and every split's ids and labels."""
        from tfseq.data.text import data_fingerprint

        arrays = [a for e in self.encoded.values() for a in (e.ids, e.splits, e.labels)]
        return data_fingerprint(self.vocab, arrays + [np.array(self.classes)])

    def prepare_model(self, model) -> str:
        """With model.ngram_prior = "nb", sets the n-gram linear model's naive-Bayes ratios from the training texts."""
        if self.cfg.model.ngram_prior != "nb":
            return ""
        from tfseq.models.ngram_prior import naive_bayes_ratios

        started = time.perf_counter()
        bag, min_count = model.get_layer("ngrams"), self.cfg.model.ngram_min_count
        ratios = naive_bayes_ratios(bag, self.encoded["train"], self.num_classes, min_count=min_count)
        bag.ratios.embeddings.assign(ratios)
        kept = (f", {np.count_nonzero(ratios.any(axis=1)):,} buckets in {min_count} or more training {self.unit}"
                if min_count > 1 else "")
        return (f"n-gram prior: naive-Bayes log-count ratios of {len(self.encoded['train'].labels):,} training "
                f"{self.unit} over {bag.buckets:,} buckets{kept} (from {ratios.min():.2f} to {ratios.max():.2f}), "
                f"{time.perf_counter() - started:.0f} s")

    def train_data(self, first_epoch: int):
        """Shuffled (ids, label[, class weight]) batches for epochs first_epoch .. train.epochs - 1."""
        from tfseq.data.batching import train_dataset

        t, d = self.cfg.train, self.cfg.data
        ds, steps = train_dataset(self.encoded["train"], t.batch_size, t.seed, first_epoch, t.epochs, d.bucket,
                                  d.pad_multiple, self.class_weights)
        if self.steps_per_epoch < steps:
            per_epoch = self.steps_per_epoch
            ds = ds.enumerate().filter(lambda i, _: i % steps < per_epoch).map(lambda i, batch: batch)
        return ds

    def val_data(self):
        from tfseq.data.batching import eval_dataset

        return eval_dataset(self.encoded["val"], **self._eval_options())

    def _eval_options(self) -> dict:
        # A model without a mask reads the padding: only texts of one length share a batch, so that a text's score
        # does not depend on its neighbours.
        return {"batch_size": self.cfg.train.batch_size, "pad_multiple": self.cfg.data.pad_multiple,
                "exact_lengths": not self.cfg.model.mask_zero}

    def final_metrics(self, model, run) -> dict:
        """Validation and test scores (accuracy, loss, macro-F1; AUC for two classes; mean absolute error for
        numeric classes such as star ratings), the test's per-class scores and confusion matrix (also written as
        confusion.json and confusion.png), and the test accuracy without the test texts also seen in training."""
        from tfseq.data.batching import predict_split
        from tfseq.data.examples import numeric_values
        from tfseq.scores import classification_scores, plot_confusion

        ordinal = numeric_values(self.classes) is not None
        out = {}
        for split in ("val", "test"):
            probs = self.head.probabilities(predict_split(model, self.encoded[split], **self._eval_options()))
            predicted = self.head.predicted(probs)
            scores = classification_scores(probs, self.encoded[split].labels, self.classes, ordinal, predicted)
            out.update({f"{split}_{k}": v for k, v in scores.items() if k not in ("per_class", "confusion")})
        labels, seen = self.encoded["test"].labels, self.test_seen
        right = predicted == labels  # the test split's, scored last
        out.update({
            "classes": self.classes,
            "test_per_class": scores["per_class"],
            "test_confusion": scores["confusion"],
            f"test_{self.unit}": int(len(labels)),
            f"test_{self.unit}_seen_in_training": int(seen.sum()),
            "test_accuracy_unseen": float(right[~seen].mean()) if (~seen).any() else float("nan"),
            "validation": self.split_note,
        })
        run.write_confusion(self.classes, scores["confusion"])
        plot_confusion(scores["confusion"], self.classes, run.confusion_plot,
                       title=f"{run.path.name}: test, {len(labels):,} {self.unit}")
        return out

    @classmethod
    def add_endpoints(cls, archive, trained) -> None:
        """`serve(text: string[n]) -> {"label": string[n], "probabilities": float32[n, k], "known_tokens": int32[n]}`
        (binary models also give "probability" of the second class), and `classes() -> string[k]`."""
        from tfseq.serving import add_classifier_endpoints

        add_classifier_endpoints(archive, trained)


def _only(source: dict, path: str):
    """The single split of a test source (a table, or a folder without train/test subfolders)."""
    if "all" not in source:
        raise UserError(f"data.test_path {path} has its own train/test split; give a table or a folder of class "
                        "subfolders that holds test texts only")
    return source["all"]


SPEC = TaskSpec(
    name="classify", summary="a text classifier of any labelled texts, two classes or more (tfseq.predict labels "
    "texts with it)", data=ClassifyData, task=ClassifyTask, default_pipeline="classify_default",
    heads=("multiclass", "binary"), monitors=("val_loss", "val_accuracy"),
    model_defaults={"head": "multiclass", "num_classes": 0, "mask_zero": True, "units": 64},
    data_help="a .csv/.tsv/.jsonl table (data.text_column, data.label_column), a folder with one subfolder of .txt "
    "files per class, aclImdb_v1.tar.gz (data.labels = polarity or rating), or tfds:NAME")
