"""The bad-input battery, as a new user meets it on the command line: one line on stderr, exit code 2."""
import json
import subprocess
import time

import pytest

from conftest import PYTHON, ROOT


def tfseq(*args, stdin=None, env=None):
    import os

    return subprocess.run([PYTHON, "-m", *args], cwd=ROOT, capture_output=True, timeout=300, input=stdin,
                          env=None if env is None else {**os.environ, **env})


def decoded(done):
    done.stdout = done.stdout.decode("utf-8", "replace")
    done.stderr = done.stderr.decode("utf-8", "replace")
    return done


def assert_user_error(done, message):
    done = decoded(done) if isinstance(done.stderr, bytes) else done
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
    (root / "latin1.toml").write_bytes('task = "charlm"\n# caf\xe9\n'.encode("latin-1"))
    (root / "a_file").write_text("not a folder")
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
    (("tfseq.train", "charlm", "--set", "train.strategy=multiworker"),
     "train.strategy = 'multiworker' needs --run-dir"),
    # Numbers outside what the code can represent.
    (("tfseq.train", "charlm", "--seed", "99999999999"), "train.seed = 99999999999 is out of range; allowed: 0 to"),
    (("tfseq.train", "charlm", "--epochs", "99999999999999999999"), "train.epochs = 99999999999999999999 is out of"),
    (("tfseq.train", "charlm", "--set", "train.learning_rate=inf"), "train.learning_rate = inf must be a finite"),
    (("tfseq.train", "charlm", "--set", "model.layers=3000"), "model.layers = 3000 is out of range; allowed: [1, 64]"),
    (("tfseq.train", "sentiment", "--set", "data.pad_multiple=2147483647"), "data.pad_multiple = 2147483647 is out"),
    (("tfseq.sample", "x", "--seed", "-1"), "seed = -1 is out of range"),
    (("tfseq.sample", "x", "--num-samples", "99999999999999"), "--num-samples 99999999999999 must be between 1 and"),
    (("tfseq.sample", "x", "--length", "99999999999"), "length = 99999999999 must be between 1 and 10,000,000"),
    # Configs that cannot work.
    (("tfseq.train", "charlm", "--set", "model.mask_zero=true"), "model.mask_zero = true cannot be used with head = "
                                                                 "'next_token'"),
    (("tfseq.train", "sentiment", "--set", "model.head=multiclass", "--set", "model.num_classes=5"),
     "task sentiment trains model.head = 'binary', got 'multiclass'"),
    # Paths of the wrong kind.
    (("tfseq.train", "charlm", "--config", "charlm_tiny", "--run-dir", "{root}/a_file"),
     "--run-dir {root}/a_file is a file, not a folder"),
    (("tfseq.train", "charlm", "--config", "{root}"), "not found"),
    (("tfseq.sample", "{root}/a_file"), "{root}/a_file is a file, not a run folder"),
    (("tfseq.export", "{root}/a_file"), "{root}/a_file is a file, not a run folder"),
    # Bytes that are not UTF-8.
    (("tfseq.train", "charlm", "--config", "{root}/latin1.toml"), "latin1.toml is not UTF-8 (byte offset 21)"),
    (("tfseq.train", "charlm", "--set", "data.start_marker=\udcff"), "argument overrides is not valid UTF-8 text"),
    (("tfseq.sample", "x", "--prompt", "caf\udce9"), "argument prompt is not valid UTF-8 text"),
    (("tfseq.predict", "x", "caf\udce9"), "argument texts is not valid UTF-8 text"),
])
def test_bad_input(bad_files, args, message):
    done = tfseq(*[a.format(root=bad_files).encode("utf-8", "surrogateescape") for a in args])
    assert_user_error(done, message.format(root=bad_files))
    assert not (ROOT / "models").exists() or not any(p.name.startswith(("charlm_quick-", "imdb_default-"))
                                                     and p.stat().st_mtime > time.time() - 60
                                                     for p in (ROOT / "models").iterdir())  # nothing written


def test_a_model_too_large_for_memory_is_refused_before_anything_is_written(tmp_path):
    done = tfseq("tfseq.train", "charlm", "--config", "charlm_tiny", "--set", "model.embedding_dim=2000000000",
                 "--run-dir", str(tmp_path / "r"))
    assert_user_error(done, "error: the model has 416,000,006,864 parameters: about 6198.9 GiB to train")
    assert "GiB to train (weights, gradients, optimizer state), more than this machine's" in decoded_text(done)
    assert not (tmp_path / "r").exists()


def decoded_text(done):
    return done.stderr if isinstance(done.stderr, str) else done.stderr.decode("utf-8", "replace")


def test_a_refused_run_leaves_an_existing_empty_folder_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    done = tfseq("tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(tmp_path / "missing.txt"),
                 "--run-dir", str(tmp_path / "empty"))
    assert_user_error(done, "missing.txt does not exist")
    assert list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("tf_config", [
    "garbage", '{"cluster": {"worker": [1, 2]}, "task": {"type": "worker", "index": 0}}',
    '{"cluster": {"worker": ["nocolon"]}, "task": {"type": "worker", "index": 0}}'])
def test_bad_tf_config_is_one_line(tmp_path, tf_config):
    done = tfseq("tfseq.train", "charlm", "--set", "train.strategy=multiworker", "--run-dir", str(tmp_path / "r"),
                 env={"TF_CONFIG": tf_config})
    assert_user_error(done, "TF_CONFIG must be JSON like")
    assert not (tmp_path / "r").exists()


def test_predict_with_stdin_closed():
    done = subprocess.run(["bash", "-c", f"{PYTHON} -m tfseq.predict nowhere <&-"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert_user_error(done, "stdin is closed; pass the texts as arguments or pipe them in")


def test_replace_flag_reads_a_file_that_is_not_utf8(bad_files, tmp_path):
    done = tfseq("tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(bad_files / "latin1.txt"),
                 "--set", "data.encoding_errors=replace", "--set", "data.seq_len=8", "--batch-size", "4",
                 "--set", "train.steps_per_epoch=2", "--epochs", "1", "--run-dir", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr


def test_broken_run_folders(tmp_path, small_book):
    run = tmp_path / "run"
    train = ("tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(small_book), "--set",
             "data.start_marker=", "--epochs", "1", "--set", "train.steps_per_epoch=2", "--run-dir", str(run))
    done = tfseq(*train)
    assert done.returncode == 0, done.stderr
    # Resuming a run whose checkpoint or state is damaged: one line, and the run folder is left as it was.
    state = json.loads((run / "state.json").read_text())
    (run / "state.json").write_text(json.dumps({**state, "finished": False}))
    checkpoint = run / "checkpoints" / state["checkpoint"]
    good = checkpoint.read_bytes()
    checkpoint.write_bytes(good[: len(good) // 2])
    assert_user_error(tfseq(*train), f"cannot resume {run}: checkpoint {checkpoint.name} is missing or damaged")
    checkpoint.write_bytes(good)
    (run / "state.json").write_text(json.dumps({**state, "finished": False, "checkpoint": 5}))
    assert_user_error(tfseq(*train), f"run state {run / 'state.json'} is corrupt (checkpoint)")
    victim = tmp_path / "victim.weights.h5"
    victim.write_bytes(good)
    (run / "state.json").write_text(json.dumps({**state, "finished": False, "checkpoint": "../../victim.weights.h5"}))
    assert_user_error(tfseq(*train), f"run state {run / 'state.json'} is corrupt (checkpoint)")
    assert victim.read_bytes() == good  # a name from state.json never reaches a file outside the run
    (run / "state.json").write_text(json.dumps({**state, "finished": False, "epoch": 999,
                                                "checkpoint": "epoch-0999.weights.h5"}))
    assert_user_error(tfseq(*train), "is corrupt: it records epoch 999 of a 1-epoch run")
    (run / "state.json").write_text(json.dumps({**state, "finished": False}))
    history = (run / "history.csv").read_text()
    (run / "history.csv").write_text("epoch,loss\n1,not a number\n")
    assert_user_error(tfseq(*train), f"history {run / 'history.csv'} is corrupt")
    (run / "history.csv").write_text(history)
    (run / "state.json").write_text(json.dumps(state))
    other = tmp_path / "other"
    other.mkdir()
    assert_user_error(tfseq("tfseq.export", str(run), "--out", str(run)), "holds the run folder")
    assert_user_error(tfseq("tfseq.export", str(run), "--out", str(tmp_path), "--force"), "holds the run folder")
    assert_user_error(tfseq("tfseq.export", str(run), "--out", str(run / "checkpoints"), "--force"),
                      "is inside the run folder")
    assert (run / "config.toml").is_file()
    (run / "model.weights.h5").write_bytes(b"not an h5 file")
    assert_user_error(tfseq("tfseq.sample", str(run)), "cannot load weights")
    (run / "vocab.json").write_text("{")
    assert_user_error(tfseq("tfseq.sample", str(run)), "vocabulary " + str(run / "vocab.json") + " is corrupt")
    (run / "vocab.json").unlink()
    assert_user_error(tfseq("tfseq.export", str(run)), "vocabulary " + str(run / "vocab.json") + " is missing")
    (run / "config.toml").unlink()
    assert_user_error(tfseq("tfseq.predict", str(run), "a review"), "is not a tfseq run folder: config.toml is missing")
    assert_user_error(tfseq("tfseq.sample", str(tmp_path / "nowhere")), "does not exist")
