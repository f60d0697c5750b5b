"""Reading text files and character vocabularies.

Vocabularies are stored as JSON (not one token per line): a character vocabulary holds "\\n", "\\r" and quotes,
which do not survive a file that is split on lines.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfseq.errors import UserError
from tfseq.files import atomic_write, read_json


def read_text(path: str | Path, errors: str = "strict") -> str:
    """Reads a UTF-8 text file (a BOM is dropped, line endings become "\\n").

    Args:
        path: the file.
        errors: "strict" to refuse bytes that are not UTF-8, "replace" to turn them into U+FFFD.

    Returns:
        The text. Raises UserError for a missing, unreadable, non-UTF-8 or empty file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"text file {path} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"{path} is a folder; give the path of a text file") from None
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None
    try:
        text = raw.decode("utf-8-sig", errors=errors)
    except UnicodeDecodeError as err:
        raise UserError(
            f"{path} is not UTF-8 text: byte 0x{raw[err.start]:02x} at offset {err.start} cannot be decoded; "
            "re-encode the file as UTF-8 or pass --set data.encoding_errors=replace"
        ) from None
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise UserError(f"{path} is empty: a language model needs text to learn from")
    return text


@dataclass
class CharVocab:
    """A character vocabulary: id i is `chars[i]`, characters sorted by code point (the textbook's char2int).

    Args:
        chars: the distinct characters, sorted.
    """

    chars: list[str]

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        """Builds the vocabulary of every character in `text`."""
        return cls(sorted(set(text)))

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        """Maps text to int32 ids. Raises UserError naming the characters the vocabulary does not have."""
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.frombuffer("".join(self.chars).encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(table, points).clip(0, len(table) - 1)
        unknown = table[ids] != points
        if unknown.any():
            missing = sorted({chr(p) for p in points[unknown]})
            shown = ", ".join(repr(c) for c in missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise UserError(f"{len(missing)} character(s) not in the model's vocabulary: {shown}")
        return ids.astype(np.int32)

    def decode(self, ids) -> str:
        """Maps ids back to text."""
        return "".join(self.chars[int(i)] for i in ids)

    def to_json(self) -> dict:
        return {"kind": "chars", "chars": self.chars}


def save_vocab(vocab, path: Path) -> None:
    """Writes a vocabulary as JSON (atomically: a crash leaves the old file or none)."""
    atomic_write(path, json.dumps(vocab.to_json(), ensure_ascii=False, indent=0))


def load_vocab(path: Path):
    """Reads a vocabulary written by `save_vocab`.

    Returns:
        A CharVocab (or a word vocabulary, for sentiment runs). Raises UserError when the file is missing or broken.
    """
    table = read_json(path, "vocabulary")
    kind = table.get("kind") if isinstance(table, dict) else None
    if kind == "chars":
        chars = table.get("chars")
        if not chars or not all(isinstance(c, str) and len(c) == 1 for c in chars):
            raise UserError(f"vocabulary {path} is corrupt: 'chars' must be a list of single characters")
        return CharVocab(chars)
    raise UserError(f"vocabulary {path} is corrupt: unknown kind {kind!r}")
