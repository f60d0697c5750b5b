"""The bad-input battery, as a new user meets it on the command line: one line on stderr, exit code 2."""
import subprocess
import tarfile

import pytest

from conftest import PYTHON, ROOT


def tfseq(*args):
    return subprocess.run([PYTHON, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def assert_user_error(done, message):
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, imdb_archive):
    root = tmp_path_factory.mktemp("bad")
    (root / "empty.txt").write_text("")
    (root / "latin1.txt").write_bytes(("Caf\xe9 " * 1000).encode("latin-1"))
    (root / "truncated.tar.gz").write_bytes(imdb_archive.read_bytes()[: imdb_archive.stat().st_size // 2])
    (root / "columns.csv").write_text("text,stars\ngood,5\n")
    (root / "labels.csv").write_text("review,sentiment\ngood,1\nbad,maybe\n")
    (root / "bad_config.toml").write_text('task = "charlm"\n[train]\nepochs = "many"\n')
    return root


@pytest.mark.parametrize("args, message", [
    (("tfseq.train", "charlm", "--data", "{root}/missing.txt"), "missing.txt does not exist"),
    (("tfseq.train", "charlm", "--data", "{root}/empty.txt"), "empty.txt is empty"),
    (("tfseq.train", "charlm", "--data", "{root}/latin1.txt"),
     "latin1.txt is not UTF-8 text: byte 0xe9 at offset 3 cannot be decoded; re-encode the file as UTF-8 or pass "
     "--set data.encoding_errors=replace"),
    (("tfseq.train", "sentiment", "--data", "{root}/truncated.tar.gz"),
     "truncated.tar.gz is not a readable .tar.gz archive or is truncated"),
    (("tfseq.train", "sentiment", "--data", "{root}/columns.csv", "--set", "data.split=textbook"),
     "needs a 'review' column and a 'sentiment' or 'label' column; it has: text, stars"),
    (("tfseq.train", "sentiment", "--data", "{root}/labels.csv", "--set", "data.split=textbook"),
     "labels.csv line 3: sentiment = 'maybe'; labels must be 0/1 or pos/neg"),
    (("tfseq.train", "charlm", "--config", "{root}/bad_config.toml"),
     "config key train.epochs in {root}/bad_config.toml must be an integer, got 'many'"),
    (("tfseq.train", "charlm", "--batch-size", "0"), "train.batch_size = 0 must be greater than 0"),
    (("tfseq.train", "charlm", "--set", "model.dropout=1.5"), "model.dropout = 1.5 is out of range"),
    (("tfseq.train", "charlm", "--set", "train.strategy=multiworker", "--run-dir", "{root}/mw"),
     "needs the TF_CONFIG environment variable"),
])
def test_bad_input(bad_files, args, message):
    assert_user_error(tfseq(*[a.format(root=bad_files) for a in args]), message.format(root=bad_files))


def test_replace_flag_reads_a_file_that_is_not_utf8(bad_files, tmp_path):
    done = tfseq("tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(bad_files / "latin1.txt"),
                 "--set", "data.encoding_errors=replace", "--set", "data.seq_len=8", "--batch-size", "4",
                 "--set", "train.steps_per_epoch=2", "--epochs", "1", "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr


def test_broken_run_folders(tmp_path, small_book):
    run = tmp_path / "run"
    done = tfseq("tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(small_book), "--set",
                 "data.start_marker=", "--epochs", "1", "--set", "train.steps_per_epoch=2", "--run-dir", str(run))
    assert done.returncode == 0, done.stderr
    (run / "model.weights.h5").write_bytes(b"not an h5 file")
    assert_user_error(tfseq("tfseq.sample", str(run)), "cannot load weights")
    (run / "vocab.json").write_text("{")
    assert_user_error(tfseq("tfseq.sample", str(run)), "vocabulary " + str(run / "vocab.json") + " is corrupt")
    (run / "vocab.json").unlink()
    assert_user_error(tfseq("tfseq.export", str(run)), "vocabulary " + str(run / "vocab.json") + " is missing")
    (run / "config.toml").unlink()
    assert_user_error(tfseq("tfseq.predict", str(run), "a review"), "is not a tfseq run folder: config.toml is missing")
    assert_user_error(tfseq("tfseq.sample", str(tmp_path / "nowhere")), "does not exist")
