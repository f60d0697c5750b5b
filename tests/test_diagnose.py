"""python -m tfseq.diagnose: a smoke run on a tiny config, and its usage errors as one line each."""
import json
import subprocess

import pytest

from conftest import PYTHON, ROOT
from tfseq import diagnose


def test_gradients_of_a_tiny_config_write_the_plot_and_the_numbers(small_book, tmp_path):
    out = tmp_path / "diag"
    done = subprocess.run([PYTHON, "-m", "tfseq.diagnose", "gradients", "--config", "charlm_tiny", "--set",
                           f"data.path={small_book}", "--set", "data.start_marker=", "--compare", "--steps", "3",
                           "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "gradient_flow.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "gradient_flow.json").read_text())
    assert [c["label"] for c in data["curves"]][::2] == ["SimpleRNN: at initialisation", "LSTM: at initialisation",
                                                         "GRU: at initialisation"]
    for curve in data["curves"]:
        assert len(curve["norm"]) == 32 and curve["relative"][0] == 1.0 and curve["texts"] == [16] * 32
    lines = done.stdout.splitlines()
    assert "model" in lines[-8] and "k=10" in lines[-8] and "k=25" in lines[-8]
    assert lines[-1] == f"wrote {out / 'gradient_flow.png'} and {out / 'gradient_flow.json'}"
    assert not done.stderr.strip(), done.stderr  # no TensorFlow or Keras chatter


@pytest.mark.parametrize("args, message", [
    (["gradients"], "gradients takes a run folder or --config FILE (one of them)"),
    (["gradients", "models/x", "--config", "charlm_tiny"], "gradients takes a run folder or --config FILE"),
    (["gradients", "--config", "charlm_tiny", "--steps", "many"], "argument --steps: invalid int value: 'many'"),
    (["summary"], "argument COMMAND: invalid choice: 'summary'"),
])
def test_usage_errors_are_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        diagnose.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("args, message", [
    (["--config", "charlm_tiny", "--set", "data.path=/nowhere/book.txt"],
     "error: data.path /nowhere/book.txt (the training data of charlm_tiny) does not exist: the diagnosis reads a "
     "batch of it; restore it, or point --set data.path= at a copy"),
    (["models/no-such-run"], "error: run folder models/no-such-run does not exist"),
    (["--config", "charlm_tiny", "--compare", "--steps", "0"], "error: --steps 0 must be at least 1"),
    (["--config", "no_such_pipeline"], "error: config file 'no_such_pipeline' not found"),
])
def test_user_errors_are_one_line(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        diagnose.main(["gradients", *args])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and len(err.strip().splitlines()) == 1, err


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit):
        diagnose.main(["gradients", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("RUN", "--config FILE", "--set SECTION.KEY=VALUE", "--compare", "--steps N", "--out DIR"):
        assert option in text
    assert "models/diagnostics-<pipeline>" in text and "RUN/diagnostics" in text
