"""Shared fixtures: small files the tests make themselves, the shared data when it is there, quiet TensorFlow."""
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
IMDB_ARCHIVE = SHARED_DATA / "imdb" / "aclImdb_v1.tar.gz"
PYTHON = sys.executable


@pytest.fixture(scope="session")
def small_book(tmp_path_factory) -> Path:
    """A 40,000-character Gutenberg-style file: licence header, START/END lines, a chunk of the embedded book."""
    from tfseq.data.gutenberg import EMBEDDED_BOOK, strip_gutenberg
    from tfseq.data.text import read_text

    body = strip_gutenberg(read_text(EMBEDDED_BOOK), "THE MYSTERIOUS ISLAND")[:40_000]
    path = tmp_path_factory.mktemp("book") / "small_book.txt"
    path.write_text(
        "The Project Gutenberg EBook of A Small Book\r\n\r\n*** START OF THIS PROJECT GUTENBERG EBOOK A SMALL BOOK ***"
        "\r\n\r\n" + body.replace("\n", "\r\n") + "\r\n\r\nEnd of the Project Gutenberg EBook of A Small Book\r\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK A SMALL BOOK ***\r\nlicence text\r\n",
        encoding="utf-8",
    )
    return path


def tiny_charlm_config(book: Path, **train):
    """The charlm_tiny pipeline on `book`, with train-section overrides."""
    from tfseq.config import load_config

    overrides = [f"data.path={book}", "data.start_marker="] + [f"train.{k}={v}" for k, v in train.items()]
    return load_config("charlm", "charlm_tiny", overrides)
