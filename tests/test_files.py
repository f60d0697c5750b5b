"""Crash-safe writes: a file is replaced whole or not at all, its folder is fsynced after the rename."""
import pytest

from tfseq import files
from tfseq.errors import UserError


def test_atomic_write_replaces_the_file_and_fsyncs_its_folder(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr(files, "fsync_dir", lambda folder: synced.append(str(folder)))
    target = tmp_path / "sub" / "state.json"
    files.write_json(target, {"epoch": 1})
    files.write_json(target, {"epoch": 2})
    assert files.read_json(target, "state") == {"epoch": 2}
    assert synced == [str(target.parent)] * 2  # after each rename, so a power cut cannot undo it
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]  # no temporary file left


def test_a_failed_save_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "weights.h5"
    target.write_bytes(b"old")

    def crash(tmp):
        open(tmp, "wb").write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_save(target, crash)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["weights.h5"]


def test_fsync_dir_runs_on_a_real_folder(tmp_path):
    files.fsync_dir(tmp_path)  # must not raise: a folder opened read-only can be fsynced on Linux


def test_decode_utf8_drops_a_bom_and_names_the_bad_byte():
    from tfseq.files import decode_utf8

    assert decode_utf8("\ufeffcafé".encode(), "x") == "café"
    with pytest.raises(UserError, match=r"^notes.txt is not UTF-8: byte 0xe9 at offset 6 \(line 3\) cannot be decoded"):
        decode_utf8(b"ok\nok\n\xe9", "notes.txt")
