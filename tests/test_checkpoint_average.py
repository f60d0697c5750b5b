import json
import os
import subprocess

from conftest import PYTHON, ROOT
from tfseq import trainer
from tfseq.config import load_config

SCRIPT = ROOT / "bench" / "checkpoint_average.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def test_the_last_checkpoints_average_is_the_finished_runs_model(small_book, tmp_path):
    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.ema=0.9"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    out = subprocess.run([PYTHON, str(SCRIPT), str(run.path)], capture_output=True, text=True, env=ENV, check=True)
    report = json.loads(out.stdout)
    metrics = json.loads(run.metrics.read_text())
    assert report["checkpoint"] == "epoch-0002.weights.h5" and report["ema"] == 0.9
    # The run ends with its last checkpoint's average; the trained weights there score otherwise.
    assert abs(report["average"]["val_loss"] - metrics["val_loss"]) < 1e-9
    assert abs(report["weights"]["val_loss"] - metrics["val_loss"]) > 1e-6


def test_a_run_without_an_average_is_refused(small_book, tmp_path):
    run = trainer.train(load_config("lm", "wordlm_tiny", [f"data.path={small_book}"]), str(tmp_path / "run"))
    out = subprocess.run([PYTHON, str(SCRIPT), str(run.path)], capture_output=True, text=True, env=ENV)
    assert out.returncode == 1 and "needs a language-model run with train.ema > 0" in out.stderr
