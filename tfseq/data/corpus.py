"""The documents a language model learns from, and the held-out documents it is scored on.

`read_corpus` picks the source from the path: the embedded book or a text file (one document, its last part held
out), a folder of .txt files or a table (one document per file / row; whole documents held out at random), or the
IMDb reviews (the training and unlabelled reviews; the held-out ones are unlabelled reviews, and the test reviews
are never read, so a model pre-trained on this corpus can still be scored on them).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfseq.data import imdb, sources
from tfseq.data.text import HTML_BREAK, read_text
from tfseq.errors import UserError

_BREAK = re.compile(HTML_BREAK)


@dataclass
class Corpus:
    """Training and held-out text of a language model.

    Args:
        train: the training documents.
        held_out: the held-out documents.
        source: the path the documents came from, for messages.
        kind: "text", "folder", "table" or "imdb".
    """

    train: list[str]
    held_out: list[str]
    source: str
    kind: str


def read_corpus(path: str, *, text_column: str = "", start_marker: str = "", end_marker: str = "",
                encoding_errors: str = "strict", val_fraction: float = 0.1, split_seed: int = 0,
                max_documents: int = 0) -> Corpus:
    """Reads a language model's documents and splits them into training and held-out documents.

    Args:
        path: "" (the embedded book); a text file; a folder of .txt files (searched recursively); a table (.csv,
            .tsv/.tab, .jsonl/.ndjson/.json) with one document per row; or the IMDb reviews (aclImdb_v1.tar.gz /
            .tgz, or a folder holding aclImdb/train or train/unsup).
        text_column: a table's text column ("" = "text").
        start_marker: for a text file, where the book starts (see `strip_gutenberg`).
        end_marker: for a text file, where the book ends.
        encoding_errors: "strict" refuses text files that are not UTF-8, "replace" turns bad bytes into U+FFFD.
        val_fraction: the share held out: of the characters of one document (its last part), of the documents of
            a folder or a table (drawn at random), of the unlabelled IMDb reviews (drawn at random).
        split_seed: seeds the random draw of held-out documents.
        max_documents: > 0 keeps only the first that many documents before the split (IMDb keeps its training and
            unlabelled reviews in their proportion, so a small run still has unlabelled reviews to hold out).

    Returns:
        A Corpus; several documents keep their source order in both parts. Raises UserError for a missing or
        unreadable source, a missing column, too few documents, or a val_fraction that leaves a part empty.
    """
    if not 0 < val_fraction < 1:
        raise UserError(f"data.val_fraction = {val_fraction} leaves the training or the held-out part of "
                        f"{path or 'the embedded book'} empty; give a fraction between 0 and 1, such as 0.1")
    if not path:
        return _read_book(path, start_marker, end_marker, encoding_errors, val_fraction)
    source = Path(path)
    if not source.exists():
        raise UserError(f"corpus {path} does not exist; give a text file, a folder of .txt files, a table (.csv, "
                        ".tsv, .jsonl) or aclImdb_v1.tar.gz")
    name = source.name.lower()
    if source.is_dir() and ((source / "aclImdb" / "train").is_dir() or (source / "train" / "unsup").is_dir()) \
            or not source.is_dir() and name.endswith((".tar.gz", ".tgz")):
        return _read_imdb(source, path, val_fraction, split_seed, max_documents)
    if source.is_dir():
        docs, kind = _read_folder(source, encoding_errors, max_documents), "folder"
    elif (table_kind := sources._TABLE_KINDS.get(source.suffix.lower())) is not None:
        docs, kind = _read_table(source, table_kind, text_column or "text"), "table"
    else:
        return _read_book(path, start_marker, end_marker, encoding_errors, val_fraction)
    if 0 < max_documents < len(docs):
        docs = docs[:max_documents]
    if len(docs) < 2:
        kept = f" once data.max_documents = {max_documents} applies" if max_documents > 0 else ""
        raise UserError(f"{path} holds 1 document{kept}: a held-out document needs at least 2; give a single text "
                        "file to hold out its last part instead")
    is_held = _draw(len(docs), val_fraction, np.random.default_rng(split_seed))
    if is_held.all():
        raise UserError(f"data.val_fraction = {val_fraction} holds out all {len(docs)} documents of {path}, leaving "
                        "none to train on; lower data.val_fraction or give more documents")
    return Corpus([d for d, held in zip(docs, is_held) if not held], [d for d, held in zip(docs, is_held) if held],
                  path, kind)


def _read_book(path: str, start_marker: str, end_marker: str, errors: str, val_fraction: float) -> Corpus:
    """One text file ("": the embedded book), Gutenberg header and licence stripped; its last val_fraction of
    characters is held out, cut at a character position."""
    # gutenberg imports TensorFlow: only this source needs it.
    from tfseq.data.gutenberg import EMBEDDED_BOOK, strip_gutenberg

    file = Path(path) if path else EMBEDDED_BOOK
    text = strip_gutenberg(read_text(file, errors), start_marker, end_marker)
    cut = int(len(text) * (1 - val_fraction))
    if cut == 0 or cut == len(text):
        raise UserError(f"{file} holds {len(text):,} characters after stripping: data.val_fraction = "
                        f"{val_fraction} leaves its training or held-out part empty; give a longer text")
    return Corpus([text[:cut]], [text[cut:]], path or str(EMBEDDED_BOOK), "text")


def _draw(n: int, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A bool mask holding out a random val_fraction of n documents (at least one)."""
    is_held = np.zeros(n, bool)
    is_held[rng.permutation(n)[: max(1, round(n * val_fraction))]] = True
    return is_held


def _read_folder(folder: Path, errors: str, limit: int) -> list[str]:
    """The non-empty .txt files under `folder`, in path order (the first `limit` of them when limit > 0)."""
    docs = []
    for file in sources._txt_files(folder):
        if 0 < limit <= len(docs):
            break  # a small run need not read a large folder
        if (text := _read_document(file, errors)).strip():
            docs.append(text)
    if not docs:
        raise UserError(f"{folder} holds no non-empty .txt files; put each document in it as a UTF-8 .txt file")
    return docs


def _read_document(path: Path, errors: str) -> str:
    """A file as `read_text` reads it, except that a blank file gives "" (a folder may hold some) rather than an
    error."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as err:
        raise UserError(f"{path} is not UTF-8 text: byte 0x{raw[err.start]:02x} at offset {err.start} cannot be "
                        "decoded; re-encode the file as UTF-8 or pass --set data.encoding_errors=replace") from None
    return _newlines(text)


def _read_table(path: Path, kind: str, column: str) -> list[str]:
    """The non-empty cells of a table's text column, one document per row."""
    frame = sources._read_json_lines(path) if kind == "JSON lines" else sources._read_delimited(path, kind)
    if len(frame) == 0:
        raise UserError(f"{path} has no data rows; it needs a header and at least one row" if kind != "JSON lines"
                        else f"{path} has no records; it needs one JSON object per line")
    if column not in frame.columns:
        raise UserError(f"{path} has no column {column!r}; its columns are: {sources._column_list(frame)}; set "
                        "data.text_column")
    docs = [_newlines(cell) for cell in sources._cells(frame, column) if cell.strip()]
    if not docs:
        raise UserError(f"{path}: column {column!r} is empty in every row; set data.text_column to the column that "
                        f"holds the text (its columns are: {sources._column_list(frame)})")
    return docs


def _newlines(text: str) -> str:
    # As read_text does: a "\r" would otherwise be a character of the vocabulary that generated text never needs.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _read_imdb(source: Path, path: str, val_fraction: float, split_seed: int, limit: int) -> Corpus:
    """IMDb's training and unlabelled reviews, HTML line breaks made "\\n"; the held-out reviews are a random
    val_fraction of the unlabelled ones."""
    train, unlabelled = imdb.read_unlabelled_and_train(source)
    if 0 < limit < len(train) + len(unlabelled):
        n_train = limit * len(train) // (len(train) + len(unlabelled))
        train, unlabelled = train[:n_train], unlabelled[: limit - n_train]
    is_held = _draw(len(unlabelled), val_fraction, np.random.default_rng(split_seed))
    docs = train + [review for review, held in zip(unlabelled, is_held) if not held]
    if not docs:
        raise UserError(f"data.max_documents = {limit} leaves no training review of {path} once the held-out "
                        "reviews are drawn; raise data.max_documents")
    return Corpus([_BREAK.sub("\n", r) for r in docs],
                  [_BREAK.sub("\n", r) for r, held in zip(unlabelled, is_held) if held], path, "imdb")
