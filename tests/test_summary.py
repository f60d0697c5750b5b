"""python -m tfseq.summary as a user runs it: the text table, --json, a run folder, --help and refusals."""
import json
import subprocess

import pytest

from conftest import PYTHON, ROOT
from tfseq.config import default_config, dumps_toml
from tfseq.data.text import WordVocab, save_vocab
from tfseq.summary import main


def summary(*args):
    return subprocess.run([PYTHON, "-m", "tfseq.summary", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_text_of_a_char_lm_pipeline(capsys):
    main(["--config", "charlm_tiny"])
    out = capsys.readouterr().out
    assert "16 sequences (train.batch_size) x 32 time steps (data.seq_len); vocabulary 100 (assumed)" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()}
    # name, kind, shape, params by formula, Keras' count, "formula": 16 x 100 embedding, LSTM 4 x 32 x (16 + 32 + 1)
    assert rows["embedding"][:6] == ["embedding", "Embedding", "16x32x16", "1,600", "1,600", "formula"]
    assert rows["rnn_0"][:6] == ["rnn_0", "LSTM", "16x32x32", "6,272", "6,272", "formula"]
    assert rows["logits"][:6] == ["logits", "Dense", "16x32x100", "3,300", "3,300", "formula"]
    assert rows["total"][1:3] == ["11,172", "11,172"]
    assert "rnn_0 (LSTM): stays on the cuDNN kernel" in out
    assert "logits: output 16x32x100 float32; loss gradient 16x32x100 float32" in out
    assert "vocabulary: assumed 100 char ids" in out


def test_json_of_a_tiny_classifier_in_mixed_precision(capsys):
    main(["--config", "classify_tiny", "--num-classes", "3", "--set", "train.mixed_precision=true",
          "--set", "model.recurrent_dropout=0.1", "--json"])
    found = json.loads(capsys.readouterr().out)
    assert (found["task"], found["batch_size"], found["time_steps"], found["vocab_size"], found["num_classes"]) == \
        ("classify", 16, 64, 2002, 3)
    assert found["bytes_per_element"] == {"weights": 4, "optimizer": 4, "activations": 2, "outputs_and_loss": 4}
    layers = {layer["name"]: layer for layer in found["layers"]}
    assert layers["output"]["output_shape"] == [16, 3]
    # 2002 x 16 embedding; a bidirectional GRU: 2 x 3 x 16 x (16 + 16 + 2); max_mean pooling: 64 -> 3
    assert [layers[name]["params"] for name in ("embedding", "rnn_0", "output")] == [32032, 3264, 195]
    assert found["totals"]["params"] == found["totals"]["keras_params"] == 32032 + 3264 + 195
    assert found["totals"]["total_bytes"] == sum(found["totals"][key] for key in
                                                 ("weight_bytes", "optimizer_bytes", "activation_bytes"))
    assert found["cudnn"]["rnn_0"]["on_cudnn"] is False
    assert "recurrent_dropout = 0.1" in found["cudnn"]["rnn_0"]["reasons"][0]


def test_a_run_folder(tmp_path, capsys):
    cfg = default_config("classify")
    cfg.model.units, cfg.model.embedding_dim, cfg.data.max_length, cfg.data.pad_multiple = 8, 4, 20, 8
    (tmp_path / "config.toml").write_text(dumps_toml(cfg))
    save_vocab(WordVocab(["a", "b", "c"]), tmp_path / "vocab.json")
    (tmp_path / "classes.json").write_text(json.dumps({"classes": ["x", "y", "z", "w"]}))
    main([str(tmp_path), "--set", "train.batch_size=2"])
    out = capsys.readouterr().out
    assert "2 sequences (train.batch_size) x 24 time steps (data.max_length = 20 padded to a multiple of " \
           "data.pad_multiple = 8); vocabulary 5 (the run's vocab.json); 4 classes (the run's class list)" in out
    assert "notes:" not in out  # nothing assumed


def test_a_separate_process_prints_one_json_object_and_nothing_else():
    done = summary("--config", "pipelines/charlm_tiny.toml", "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert json.loads(done.stdout)["totals"]["params"] == 11172


def test_help():
    done = summary("--help")
    assert done.returncode == 0
    assert "--time-steps N" in done.stdout and "--json" in done.stdout and "RUN" in done.stdout


@pytest.mark.parametrize("args, message", [
    (("--config", "charlm_tiny", "--time-steps", "x"), "argument --time-steps: invalid int value: 'x' (see --help)"),
    (("--config", "nope"), "config file 'nope' not found"),
    ((), "give a run folder (RUN) or --config FILE, one of them (see --help)"),
    (("models/x", "--config", "charlm_tiny"), "give a run folder (RUN) or --config FILE, one of them"),
    (("--config", "charlm_tiny", "--vocab-size", "1"), "--vocab-size 1 is out of range; allowed: 2 to 2147483647"),
    (("--config", "charlm_tiny", "--set", "model.cell=tcn"), "model.cell = 'tcn' is not allowed"),
])
def test_user_errors_are_one_line_with_exit_code_2(args, message):
    done = summary(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
