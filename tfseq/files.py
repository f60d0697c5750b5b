"""Crash-safe file writes: every artefact is written to a temporary name and renamed into place.

A crash (even `kill -9`) then leaves either the previous file or the new one, never a half-written file that
looks complete.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable

from tfseq.errors import UserError

UMASK = os.umask(0)
os.umask(UMASK)


def atomic_write(path: str | Path, data: str | bytes) -> None:
    """Writes text (UTF-8) or bytes to `path` through a temporary file in the same folder and a rename."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    atomic_save(path, lambda tmp: Path(tmp).write_bytes(payload))


def atomic_save(path: str | Path, save: Callable[[str], object], suffix: str = "") -> None:
    """Runs `save(tmp_path)` and renames the result onto `path`.

    Args:
        path: the final name.
        save: writes the file at the path it is given.
        suffix: ending the temporary name needs (Keras insists on ".weights.h5").
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~UMASK)  # mkstemp makes 0600; the rename should leave an ordinary file
    try:
        save(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fsync_dir(folder: str | Path) -> None:
    """Flushes a folder's entries to disk: after a rename, so that a power cut cannot undo it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: str | Path, obj) -> None:
    """Writes `obj` as indented JSON, atomically."""
    atomic_write(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def read_json(path: str | Path, what: str):
    """Reads a JSON file, raising UserError (naming `what` and the file) when it is missing or corrupt."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} {path} is missing") from None
    except (ValueError, UnicodeDecodeError) as err:
        raise UserError(f"{what} {path} is corrupt ({err})") from None
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror}") from None


def decode_utf8(raw: bytes, where: str) -> str:
    """Decodes UTF-8 bytes (a byte-order mark is dropped).

    Args:
        raw: the bytes.
        where: how to name them in the error (a file, "stdin").

    Raises:
        UserError naming the first byte that is not UTF-8, its offset and its line.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise UserError(f"{where} is not UTF-8: byte 0x{raw[err.start]:02x} at offset {err.start} (line {line}) "
                        "cannot be decoded; re-encode it as UTF-8") from None
