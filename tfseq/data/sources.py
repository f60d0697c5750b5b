"""Generic classification sources: a table (CSV, TSV, JSON lines), class folders of .txt files, a TFDS dataset.

Every reader returns `Examples` whose labels are the label strings (a NumPy str array); the caller turns them into
class ids with `class_ids`. Every problem the user can fix is a one-line `UserError` naming the file (or dataset)
and what to do. pandas and TensorFlow Datasets are imported inside the readers, so importing this module is cheap.
"""
from __future__ import annotations

import codecs
import json
import os
import re
import warnings
from pathlib import Path
from typing import NoReturn

import numpy as np

from tfseq.data.examples import Examples
from tfseq.errors import UserError, first_line
from tfseq.files import decode_utf8

_TABLE_KINDS = {".csv": "CSV", ".tsv": "TSV", ".tab": "TSV", ".jsonl": "JSON lines", ".ndjson": "JSON lines",
                ".json": "JSON lines"}
_WHOLE_FLOAT = re.compile(r"[+-]?\d+\.0*")


def read_table(path: Path, text_columns: list[str], label_column: str, group_column: str = "") -> Examples:
    """Reads labelled texts from a CSV (.csv), TSV (.tsv, .tab) or JSON lines (.jsonl, .ndjson, .json) file.

    CSV and TSV files have a header row; fields may be quoted as in CSV (a quoted field can hold newlines and
    delimiters). JSON lines files hold one JSON object per line. UTF-8 with or without a byte-order mark.

    Args:
        path: the file.
        text_columns: the columns holding the text; several are joined with "\\n" in this order.
        label_column: the column holding the label (a string or a whole number).
        group_column: the column holding each text's group (an author, a movie); "" = none.

    Returns:
        Examples with the label strings (whitespace stripped, whole numbers without ".0"), names
        "<file> row <n>" (data rows counted from 1), and the group strings (None without a group column).
    """
    kind = _TABLE_KINDS.get(path.suffix.lower())
    if not path.exists():
        raise UserError(f"{path} does not exist; check data.path")
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a table file (.csv, .tsv or .jsonl)")
    if kind is None:
        raise UserError(f"{path}: cannot read {path.suffix or 'a file without a suffix'!r} tables; use a .csv, "
                        ".tsv/.tab or .jsonl/.ndjson/.json (JSON lines) file")
    if not text_columns:
        raise UserError(f"no text column given for {path}; set data.text_column")
    frame = _read_json_lines(path) if kind == "JSON lines" else _read_delimited(path, kind)
    if len(frame) == 0:
        raise UserError(f"{path} has no data rows; it needs a header and at least one row"
                        if kind != "JSON lines" else f"{path} has no records; it needs one JSON object per line")
    for column, setting in [(c, "data.text_column") for c in text_columns] + [(label_column, "data.label_column")] \
            + ([(group_column, "data.group_column")] if group_column else []):
        if column not in frame.columns:
            raise UserError(f"{path} has no column {column!r}; its columns are: {_column_list(frame)}; set {setting}")
    columns = [_cells(frame, c) for c in text_columns]
    for column, values in zip(text_columns, columns):
        if not any(v.strip() for v in values):
            raise UserError(f"{path}: column {column!r} is empty in every row; set data.text_column to the column "
                            f"that holds the text (its columns are: {_column_list(frame)})")
    texts = columns[0] if len(columns) == 1 else ["\n".join(parts) for parts in zip(*columns)]
    labels = [_label_text(v) for v in _cells(frame, label_column)]
    unlabelled = [i for i, label in enumerate(labels) if not label]
    if unlabelled:
        raise UserError(f"{path} row {unlabelled[0] + 1} (data row, 1-based) has no label in column {label_column!r} "
                        f"({len(unlabelled)} of {len(labels)} rows have none); give every row a label")
    groups = [v.strip() for v in _cells(frame, group_column)] if group_column else None
    return Examples(texts, np.array(labels, dtype=str), [f"{path.name} row {i + 1}" for i in range(len(frame))],
                    groups)


def read_class_folders(path: Path) -> dict[str, Examples]:
    """Reads the `keras.utils.text_dataset_from_directory` layout: one subfolder per class holding .txt files.

    Files in folders below a class folder count too; hidden files and folders (".name") and files that are not .txt
    are ignored. Texts are UTF-8, a byte-order mark is dropped.

    Args:
        path: the folder; when its only subfolders are train/ and test/, each of them holds the class folders.

    Returns:
        {"train": ..., "test": ...} for the train/test layout, else {"all": ...}; labels are the class folder names,
        names the file paths relative to `path`, in sorted order.
    """
    if not path.exists():
        raise UserError(f"{path} does not exist; check data.path")
    if not path.is_dir():
        raise UserError(f"{path} is not a folder; class folders need a folder with one subfolder per class")
    folders = _subfolders(path)
    if folders == ["test", "train"]:
        return {split: _read_classes(path / split, path) for split in ("train", "test")}
    if "train" in folders:
        # Split folders beside others (val/, dev/) would otherwise be read as classes named train, test, ...
        raise UserError(f"{path} holds train/ beside {', '.join(f for f in folders if f != 'train')}: a folder of "
                        "class folders either has one subfolder per class, or exactly train/ and test/ holding them; "
                        "move the other folders out (validation is carved from train/)")
    return {"all": _read_classes(path, path)}


def read_tfds(name: str, data_dir: str, split_names: list[str], text_key: str, label_key: str) -> dict[str, Examples]:
    """Reads labelled texts from a TensorFlow Datasets dataset, downloading and preparing it when needed.

    Args:
        name: the TFDS name, e.g. "imdb_reviews" or "ag_news_subset" (a config or version may follow, as in TFDS).
        data_dir: where TFDS keeps its datasets; "" = TFDS's default (~/tensorflow_datasets).
        split_names: [train split, test split], or one split to read whole; TFDS slices such as "train[:10%]" work.
        text_key: the feature holding the text; "" = the first of the dataset's supervised keys.
        label_key: the feature holding the label; "" = the second of the dataset's supervised keys.

    Returns:
        {"train": ..., "test": ...} for two split names, {"all": ...} for one. A ClassLabel label is its class
        name, any other label its value as a string; names are "tfds <name>/<split>[<index>]".
    """
    import tensorflow_datasets as tfds

    if len(split_names) not in (1, 2):
        raise UserError(f"give TFDS dataset {name} one split name or two (train, test), not {len(split_names)}; "
                        "set data.tfds_splits")
    try:
        builder = tfds.builder(name, **({"data_dir": data_dir} if data_dir else {}))
    except tfds.core.DatasetNotFoundError as err:
        guess = re.search(r"Did you mean: \S+ -> (\S+)", str(err))
        raise UserError(f"TFDS has no dataset {name!r}; " + (f"did you mean {guess.group(1)!r}?" if guess else
                        "see https://www.tensorflow.org/datasets/catalog/overview for the names")) from None
    except (ValueError, AssertionError) as err:  # a malformed name, an unknown config or version
        raise UserError(f"TFDS cannot open dataset {name!r} ({first_line(err)})") from None
    features = builder.info.features
    if not text_key or not label_key:
        keys = builder.info.supervised_keys
        if not (isinstance(keys, tuple) and len(keys) == 2 and all(isinstance(k, str) for k in keys)):
            raise UserError(f"TFDS dataset {name} names no (text, label) features; set data.text_column and "
                            f"data.label_column to two of its features: {', '.join(features)}")
        text_key, label_key = text_key or keys[0], label_key or keys[1]
    for key, setting in ((text_key, "data.text_column"), (label_key, "data.label_column")):
        if key not in features:
            raise UserError(f"TFDS dataset {name} has no feature {key!r}; its features are: {', '.join(features)}; "
                            f"set {setting}")
    # Checked before anything is downloaded: a list of sentences or an id would otherwise be read as garbage text.
    texts_found = [k for k, f in features.items() if f.shape == () and np.dtype(f.np_dtype) == object]
    if text_key not in texts_found:
        raise UserError(f"TFDS dataset {name}: feature {text_key!r} is not a single text; its text features are: "
                        f"{', '.join(texts_found) or 'none'}; set data.text_column")
    label_feature = features[label_key]
    if label_feature.shape != ():
        raise UserError(f"TFDS dataset {name}: feature {label_key!r} is not a single label (its shape is "
                        f"{label_feature.shape}); set data.label_column")
    try:
        builder.download_and_prepare()
    except Exception as err:  # TFDS raises many types: download (offline), checksum, missing manual file
        raise UserError(f"TFDS could not prepare {name} in {builder.data_dir_root} ({type(err).__name__}: "
                        f"{first_line(err, 120)}); go online once, or copy a prepared {name} into that folder "
                        "(data.tfds_data_dir)") from None
    known = list(builder.info.splits)
    for split in split_names:
        # A split may be a TFDS expression ("train[:10%]+test"): each part's bare name must be a split.
        if known and any(part.split("[")[0].strip() not in known for part in split.split("+")):
            raise UserError(f"TFDS dataset {name} has no split {split!r}; its splits are: {', '.join(known)}; "
                            "set data.tfds_splits")
    keys = ("train", "test") if len(split_names) == 2 else ("all",)
    return {key: _read_tfds_split(builder, name, split, text_key, label_key)
            for key, split in zip(keys, split_names)}


def _read_delimited(path: Path, kind: str):
    import pandas as pd

    try:
        # A data row with more fields than the header: pandas would otherwise silently drop its extra fields
        # (index_col=False) or turn the first columns into the index; as an error, the user gets to fix the quoting.
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(path, sep="," if kind == "CSV" else "\t", encoding="utf-8-sig", dtype=str,
                               keep_default_na=False, index_col=False)
    except UnicodeDecodeError:
        _raise_not_utf8(path)
    except pd.errors.ParserWarning:
        raise UserError(f"{path} is not a readable {kind}: a data row has more fields than the header; quote fields "
                        f"that contain {'a comma' if kind == 'CSV' else 'a tab'}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as err:
        raise UserError(f"{path} is not a readable {kind} ({first_line(err, 160)})") from None


def _read_json_lines(path: Path):
    import pandas as pd

    with open(path, "rb") as fh:
        start = fh.read(64).removeprefix(codecs.BOM_UTF8).lstrip()
    if start and not start.startswith(b"{"):  # a JSON array (or any one document) would become odd columns
        raise UserError(f"{path} is not JSON lines: it starts with {start[:1].decode('latin-1')!r}, not '{{'; write "
                        "one JSON object per line")
    try:
        # dtype=False: values keep their JSON types (no dates parsed from "date"-like columns, no text made numeric).
        return pd.read_json(path, lines=True, dtype=False, encoding="utf-8-sig")
    except UnicodeDecodeError:
        _raise_not_utf8(path)
    except ValueError as err:
        # pandas names no line: find the first line that is not JSON.
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            try:
                if line.strip():
                    json.loads(line)
            except ValueError as line_err:
                raise UserError(f"{path} line {number} is not JSON ({first_line(line_err, 120)}); write one JSON "
                                "object per line") from None
        raise UserError(f"{path} is not readable JSON lines ({first_line(err, 160)})") from None


def _raise_not_utf8(path: Path) -> NoReturn:
    """Raises the error for a file pandas could not decode, naming the first undecodable byte of the file itself
    (pandas reports offsets within its read buffer)."""
    decode_utf8(path.read_bytes(), str(path))
    raise UserError(f"{path} could not be read as UTF-8 text; re-save it as UTF-8")


def _cells(frame, column: str) -> list[str]:
    """A column's values as strings; missing values (JSON null, a short CSV row) are ""."""
    values = frame[column].astype(object)
    return ["" if missing else _cell(v) for v, missing in zip(values.tolist(), values.isna().tolist())]


def _cell(value) -> str:
    # pandas turns a JSON integer column with a null in it into floats: 3.0 is written back as "3".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _label_text(text: str) -> str:
    text = text.strip()
    # "3.0" (a float column saved to CSV) names the same class as 3.
    return str(int(text.partition(".")[0])) if _WHOLE_FLOAT.fullmatch(text) else text


def _column_list(frame) -> str:
    # repr shows surrounding spaces, the usual reason a header name "is there" and still does not match.
    names = [str(c) if str(c) == str(c).strip() else repr(str(c)) for c in frame.columns]
    return ", ".join(names) or "none"


def _subfolders(path: Path) -> list[str]:
    return sorted(e.name for e in os.scandir(path) if e.is_dir() and not e.name.startswith("."))


def _read_classes(root: Path, top: Path) -> Examples:
    classes = _subfolders(root)
    if len(classes) < 2:
        found = f" ({', '.join(classes)})" if classes else ""
        raise UserError(f"{root} holds {len(classes)} class folder(s){found}; class folders need at least 2 "
                        "subfolders, one per class, holding .txt files (<class>/<name>.txt), optionally inside "
                        "train/ and test/")
    texts, labels, names = [], [], []
    for label in classes:
        files = _txt_files(root / label)
        if not files:
            raise UserError(f"class folder {root / label} holds no .txt files; put that class's texts in it as .txt "
                            "files or remove it")
        for file in files:
            texts.append(decode_utf8(file.read_bytes(), str(file)))
            labels.append(label)
            names.append(file.relative_to(top).as_posix())
    return Examples(texts, np.array(labels, dtype=str), names)


def _txt_files(folder: Path) -> list[Path]:
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [f for f in folders if not f.startswith(".")]  # os.walk descends only into the folders kept
        found += [Path(parent, f) for f in files if f.lower().endswith(".txt") and not f.startswith(".")]
    return sorted(found)


def _read_tfds_split(builder, name: str, split: str, text_key: str, label_key: str) -> Examples:
    import tensorflow_datasets as tfds

    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False)
    except ValueError as err:  # a malformed slice, or an unknown split where TFDS did not list its splits
        raise UserError(f"TFDS dataset {name} cannot read split {split!r} ({first_line(err)}); set data.tfds_splits") \
            from None
    # Only the two features, in batches: one NumPy conversion per 1024 examples rather than one per example.
    batches = dataset.map(lambda example: (example[text_key], example[label_key])).batch(1024)
    feature = builder.info.features[label_key]
    is_class = isinstance(feature, tfds.features.ClassLabel)
    texts, labels = [], []
    for text_batch, label_batch in tfds.as_numpy(batches):
        for raw, label in zip(text_batch, label_batch):
            where = f"tfds {name}/{split}[{len(texts)}]"
            texts.append(decode_utf8(raw, where))
            if is_class:
                if not 0 <= int(label) < feature.num_classes:  # GLUE's test splits hold -1: no label
                    raise UserError(f"{where} has label {int(label)}, not one of the dataset's {feature.num_classes} "
                                    "classes (an unlabelled split?); choose labelled splits with data.tfds_splits")
                labels.append(feature.int2str(int(label)))
            elif isinstance(label, bytes):
                labels.append(_label_text(decode_utf8(label, where)))
            else:
                labels.append(_label_text(_cell(label.item())))
    return Examples(texts, np.array(labels, dtype=str), [f"tfds {name}/{split}[{i}]" for i in range(len(texts))])
