"""IMDb reviews as labelled texts: the Stanford archive `aclImdb_v1.tar.gz` read in place, an extracted `aclImdb/`
folder, the textbook's CSV (`review` + `sentiment` or `label`), and TFDS `imdb_reviews`; and the sentiment task's
splits. The 50,000 unlabelled reviews are read only as language-model text (`read_unlabelled_and_train`).

Labels are the polarity (negative / positive) or, from the archive and the folder, the 1-10 star rating in each file
name (8 classes: 1-4 and 7-10; the dataset has no 5- or 6-star reviews). Reviews carry their movie as their group.
"""
from __future__ import annotations

import os
import re
import tarfile
import zlib
from pathlib import Path

import numpy as np

from tfseq.data.examples import Examples, concat
from tfseq.data.splits import group_carve, stratified_sample
from tfseq.errors import UserError, first_line

_REVIEW = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg|unsup)/(\d+)_(\d+)\.txt$")
_URLS = re.compile(r"(?:^|/)aclImdb/(train|test)/urls_(pos|neg)\.txt$")
_MOVIE = re.compile(r"/title/(tt\d+)/")
POLARITY = ["negative", "positive"]
RATINGS = ["1", "2", "3", "4", "7", "8", "9", "10"]
# The (split, folder) pairs each reader keeps: labelled reviews for classifiers, training and unlabelled reviews
# (never the test reviews) for language models.
_LABELLED = (("train", "pos"), ("train", "neg"), ("test", "pos"), ("test", "neg"))
_TRAIN_AND_UNLABELLED = (("train", "pos"), ("train", "neg"), ("train", "unsup"))


def read_source(path: str, tfds_data_dir: str = "", labels: str = "polarity") -> tuple[dict[str, Examples], list[str]]:
    """Reads the labelled reviews of an IMDb source.

    Args:
        path: aclImdb_v1.tar.gz, an aclImdb/ folder, a CSV, or "tfds".
        tfds_data_dir: TFDS data dir for path = "tfds" ("" = TFDS's default).
        labels: "polarity" or "rating" (star ratings: the archive and the folder; other sources have polarity only).

    Returns:
        ({"train": ..., "test": ...} for sources with the official split (archive, folder, TFDS), or {"all": ...}
        for a CSV, with class ids as labels; the class names). Raises UserError for a missing, truncated or
        malformed source.
    """
    if not path:
        raise UserError("no IMDb data given: pass --data PATH (aclImdb_v1.tar.gz, an aclImdb/ folder, a CSV with "
                        "review and sentiment/label columns, or 'tfds')")
    if path == "tfds":
        return _read_tfds(tfds_data_dir), POLARITY
    source = Path(path)
    if not source.exists():
        raise UserError(f"IMDb data {source} does not exist")
    if source.suffix.lower() == ".csv" and not source.is_dir():
        return {"all": _read_csv(source)}, POLARITY
    found, urls = _read_folder(source) if source.is_dir() else _read_archive(source)
    return _official(found, urls, source, labels), RATINGS if labels == "rating" else POLARITY


def read_unlabelled_and_train(path: Path) -> tuple[list[str], list[str]]:
    """Reads the reviews a language model may learn from: the training and the unlabelled ones, never the test ones.

    Args:
        path: aclImdb_v1.tar.gz or an extracted aclImdb/ folder (or the folder holding it).

    Returns:
        (the 25,000 training reviews of train/pos and train/neg, the 50,000 unlabelled reviews of train/unsup), each
        sorted by (folder, number). Raises UserError for a missing, truncated or malformed source, or one without
        training or unlabelled reviews.
    """
    if not path.exists():
        raise UserError(f"IMDb data {path} does not exist")
    found, _ = (_read_folder(path, _TRAIN_AND_UNLABELLED) if path.is_dir()
                else _read_archive(path, _TRAIN_AND_UNLABELLED))
    train = sorted(k for k in found if k[1] != "unsup")
    unlabelled = sorted(k for k in found if k[1] == "unsup")
    if not train:
        raise UserError(f"{path} holds no aclImdb/train/pos or /neg reviews; is it the IMDb archive?")
    if not unlabelled:
        raise UserError(f"{path} holds no aclImdb/train/unsup reviews; is it the IMDb archive?")
    return [found[k][0] for k in train], [found[k][0] for k in unlabelled]


def _official(found: dict, urls: dict, source: Path, labels: str) -> dict[str, Examples]:
    """Orders archive/folder reviews by (split, label, number), labels them, and attaches movie ids from the urls
    files."""
    splits = {}
    for split in ("train", "test"):
        keys = sorted(k for k in found if k[0] == split)
        if not keys:
            raise UserError(f"{source} holds no aclImdb/{split}/pos or /neg reviews; is it the IMDb archive?")
        movies = None
        if all((split, label) in urls for label in ("pos", "neg")):
            movies = []
            for _, label, number in keys:
                lines = urls[(split, label)]
                if number >= len(lines):
                    raise UserError(f"{source}: aclImdb/{split}/urls_{label}.txt has no line {number + 1}")
                found_movie = _MOVIE.search(lines[number])
                movies.append(found_movie.group(1) if found_movie else lines[number].strip())
        texts = [found[k][0] for k in keys]
        if labels == "rating":
            ratings = [found[k][1] for k in keys]
            unknown = sorted(set(ratings) - set(RATINGS), key=int)
            if unknown:
                raise UserError(f"{source}: star rating {unknown[0]} in a file name of aclImdb/{split}; IMDb "
                                f"ratings are {', '.join(RATINGS)}")
            ids = np.array([RATINGS.index(r) for r in ratings], np.int32)
        else:
            ids = np.array([k[1] == "pos" for k in keys], np.int32)
        names = [f"aclImdb/{s}/{label}/{n}_{found[(s, label, n)][1]}.txt" for s, label, n in keys]
        splits[split] = Examples(texts, ids, names, movies)
    return splits


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"review {name} is not UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start})") from None


def _read_archive(path: Path, folders: tuple = _LABELLED) -> tuple[dict, dict]:
    """{(split, pos|neg|unsup, number): (text, rating)} and {(split, pos|neg): url lines} of the archive, for the
    (split, folder) pairs in `folders` only (other members are skipped unread)."""
    found, urls = {}, {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if (review := _REVIEW.search(member.name)) and review.group(1, 2) in folders:
                    key = (review.group(1), review.group(2), int(review.group(3)))
                    found[key] = _decode(tar.extractfile(member).read(), member.name), review.group(4)
                elif (listing := _URLS.search(member.name)) and listing.group(1, 2) in folders:
                    urls[(listing.group(1), listing.group(2))] = _decode(tar.extractfile(member).read(),
                                                                         member.name).splitlines()
            # tarfile ends its member loop quietly at a truncated header; reading the compressed stream to its end
            # makes gzip check the end-of-stream marker, so a cut-off download is an error, not a smaller dataset.
            while tar.fileobj.read(1 << 20):
                pass
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise UserError(f"{path} is not a readable .tar.gz archive or is truncated ({type(err).__name__}: "
                        f"{first_line(err, 120)}); download aclImdb_v1.tar.gz again") from None
    return found, urls


def _read_folder(path: Path, folders: tuple = _LABELLED) -> tuple[dict, dict]:
    """As `_read_archive`, from an extracted aclImdb/ folder."""
    root = path / "aclImdb" if (path / "aclImdb").is_dir() else path
    found, urls = {}, {}
    for split, label in folders:
        folder = root / split / label
        if not folder.is_dir():
            raise UserError(f"{path} is not an extracted aclImdb folder: {folder} is missing")
        for entry in os.scandir(folder):
            if entry.is_file() and (review := _REVIEW.search(f"aclImdb/{split}/{label}/{entry.name}")):
                with open(entry.path, "rb") as fh:
                    found[(split, label, int(review.group(3)))] = _decode(fh.read(), entry.path), review.group(4)
        listing = root / split / f"urls_{label}.txt"
        if label != "unsup" and listing.is_file():  # urls_unsup.txt: unlabelled reviews need no movie ids
            urls[(split, label)] = _decode(listing.read_bytes(), str(listing)).splitlines()
    return found, urls


def _read_csv(path: Path) -> Examples:
    import pandas as pd

    try:
        frame = pd.read_csv(path, encoding="utf-8", dtype={"review": str}, keep_default_na=False)
    except UnicodeDecodeError:
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:  # pandas reports offsets within its read buffer: find the byte itself
            line = raw[: err.start].count(b"\n") + 1
            raise UserError(f"{path} is not UTF-8: byte 0x{raw[err.start]:02x} at offset {err.start} (line {line}) "
                            "cannot be decoded; re-encode the file as UTF-8") from None
        raise UserError(f"{path} could not be read as UTF-8 text by pandas; re-save it as UTF-8 CSV") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise UserError(f"{path} is not a readable CSV ({str(err).strip().splitlines()[0][:160]})") from None
    column = "sentiment" if "sentiment" in frame.columns else "label" if "label" in frame.columns else None
    if "review" not in frame.columns or column is None:
        raise UserError(f"{path} needs a 'review' column and a 'sentiment' or 'label' column; it has: "
                        f"{', '.join(map(str, frame.columns)) or 'none'}")
    mapping = {"1": 1, "0": 0, "pos": 1, "neg": 0, "positive": 1, "negative": 0, "1.0": 1, "0.0": 0}
    values = frame[column].astype(str).str.strip().str.lower()
    labels = values.map(mapping)
    if labels.isna().any():
        row = int(np.flatnonzero(labels.isna().to_numpy())[0])
        raise UserError(f"{path} line {row + 2}: {column} = {str(frame[column].iloc[row])!r}; labels must be 0/1 or "
                        "pos/neg (or positive/negative)")
    names = [f"{path.name} line {i + 2}" for i in range(len(frame))]
    return Examples(frame["review"].astype(str).tolist(), labels.to_numpy(np.int32), names)


def _read_tfds(data_dir: str) -> dict[str, Examples]:
    import tensorflow_datasets as tfds

    kwargs = {"data_dir": data_dir} if data_dir else {}
    builder = tfds.builder("imdb_reviews", **kwargs)
    try:
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=os.path.join(builder.data_dir_root, "downloads", "manual")))
    except Exception as err:  # TFDS raises many types: checksum, download (offline), missing manual file
        name = type(err).__name__
        if "Checksum" in name:
            raise UserError(
                "TFDS rejected the IMDb archive: its checksum is not the one TFDS registered for imdb_reviews "
                "(a repacked archive, such as ../shared/data/imdb/aclImdb_v1.tar.gz, fails this check); pass the "
                "archive itself instead: --data path/to/aclImdb_v1.tar.gz") from None
        raise UserError(
            f"TFDS could not prepare imdb_reviews in {builder.data_dir_root} ({name}); offline, put the original "
            "aclImdb_v1.tar.gz in <data_dir>/downloads/manual/, or pass the archive itself with --data") from None
    splits = {}
    for split in ("train", "test"):
        texts, labels = [], []
        for text, label in tfds.as_numpy(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)):
            texts.append(text.decode("utf-8"))
            labels.append(int(label))
        splits[split] = Examples(texts, np.array(labels, np.int32), [f"tfds imdb_reviews/{split}[{i}]"
                                                                     for i in range(len(texts))])
    return splits


def make_splits(source: dict[str, Examples], cfg) -> tuple[dict[str, Examples], str]:
    """Cuts the source into train / val / test for the sentiment task.

    official: the source's 25k train / 25k test; validation = all reviews of a seeded random val_fraction of the
    training MOVIES (movies never straddle train and validation; the official test movies are disjoint already).
    A source without movie ids (TFDS) falls back to a random carve, and says so. textbook: the 50k labelled reviews
    shuffled with split_seed; first 50% test, next 40% train, last 10% validation (25k / 20k / 5k).

    Args:
        source: from `read_source`.
        cfg: the sentiment task's [data] section.

    Returns:
        ({"train", "val", "test"}: Examples, a note on how validation was carved).
    """
    rng = np.random.default_rng(cfg.split_seed)
    if cfg.split == "textbook":
        everything = source["all"] if "all" in source else concat([source["train"], source["test"]])
        order = rng.permutation(len(everything))
        n_test, n_train = len(order) // 2, len(order) * 4 // 10
        splits = {"test": everything.take(order[:n_test]), "train": everything.take(order[n_test:n_test + n_train]),
                  "val": everything.take(order[n_test + n_train:])}
        note = "textbook split: shuffled labelled reviews, 50% test / 40% train / 10% validation"
    else:
        if "all" in source:
            raise UserError("a CSV has no official train/test split; use --set data.split=textbook")
        train = source["train"]
        if train.groups is not None:
            is_val, held = group_carve(train.groups, cfg.val_fraction, rng)
            note = "validation: " + held.replace("texts", "reviews").replace("groups", "training movies")
        else:
            is_val = np.zeros(len(train), bool)
            is_val[rng.permutation(len(train))[: round(len(train) * cfg.val_fraction)]] = True
            note = ("validation: a random carve (this source has no movie ids, so validation shares movies with "
                    "train and overstates accuracy)")
        splits = {"train": train.take(np.flatnonzero(~is_val)), "val": train.take(np.flatnonzero(is_val)),
                  "test": source["test"]}
    if cfg.limit:
        splits = {name: stratified_sample(part, cfg.limit, rng) for name, part in splits.items()}
    for name, part in splits.items():
        if len(part) == 0 or len(set(part.labels.tolist())) < 2:
            raise UserError(f"the {name} split has {len(part)} reviews and needs both labels; raise data.limit or "
                            "check the source")
    return splits, note


def is_imdb_source(path: Path) -> bool:
    """An IMDb archive (aclImdb_v1.tar.gz, any .tar.gz / .tgz) or an extracted aclImdb/ folder (known by its
    train/urls_pos.txt; a folder of class subfolders named pos and neg is not one)."""
    name = path.name.lower()
    return name.endswith((".tar.gz", ".tgz")) or (path.is_dir() and (
        (path / "aclImdb" / "train" / "urls_pos.txt").is_file() or (path / "train" / "urls_pos.txt").is_file()))
