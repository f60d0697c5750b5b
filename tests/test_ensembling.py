"""Ensembles of classifier runs (tfseq.ensembling, python -m tfseq.ensemble): scored, predicted, exported and served
as the mean of their members, and refused with the reason when the members do not fit or have changed."""
import json
import os
import subprocess

import numpy as np
import pytest

from conftest import PYTHON, ROOT, tiny_classify_config
from tfseq import trainer
from tfseq.errors import UserError


@pytest.fixture(scope="module")
def members(news_csv, tmp_path_factory):
    """Two tiny classify runs of one config, seeds 1 and 2, and the config."""
    root = tmp_path_factory.mktemp("members")
    cfgs = [tiny_classify_config(news_csv, "train.epochs=2", f"train.seed={seed}") for seed in (1, 2)]
    return [trainer.train(cfg, str(root / f"seed{i + 1}")).path for i, cfg in enumerate(cfgs)], news_csv


def test_an_ensemble_scores_predicts_and_serves_the_mean_of_its_members(members, tmp_path):
    import tensorflow as tf

    from tfseq.data.batching import predict_split
    from tfseq.ensembling import make_ensemble
    from tfseq.runs import load_trained
    from tfseq.serving import classify, export_run
    from tfseq.trainer import make_task

    runs, news_csv = members
    out = make_ensemble(tmp_path / "ens", runs)
    metrics = json.loads((out / "metrics.json").read_text())
    member_metrics = [json.loads((run / "metrics.json").read_text()) for run in runs]
    assert metrics["train_minutes"] == pytest.approx(sum(m["train_minutes"] for m in member_metrics))
    assert metrics["members"] == [os.path.relpath(run, out) for run in runs]
    # The test accuracy is that of the members' mean probabilities, computed here from each member alone.
    task = make_task(load_trained(runs[0]).cfg)
    probs = [predict_split(load_trained(run).model, task.encoded["test"], 8) for run in runs]
    mean = np.mean(probs, axis=0)
    assert not np.allclose(probs[0], probs[1])  # two seeds, two models
    assert metrics["test_accuracy"] == pytest.approx((mean.argmax(1) == task.encoded["test"].labels).mean())
    texts = ["The striker scored twice in the final", "A new phone with a faster chip", "Soup of the day"]
    each = [classify(run, texts).probabilities for run in runs]
    together = classify(out, texts)
    np.testing.assert_allclose(together.probabilities, np.mean(each, axis=0), rtol=1e-5, atol=1e-6)
    loaded = tf.saved_model.load(str(export_run(out, tmp_path / "exported")))
    np.testing.assert_allclose(loaded.serve(tf.constant(texts))["probabilities"].numpy(), together.probabilities,
                               rtol=1e-5, atol=1e-6)
    assert [c.decode() for c in loaded.classes().numpy()] == together.classes


def test_an_ensemble_refuses_members_that_do_not_fit(members, tmp_path):
    from tfseq.ensembling import make_ensemble

    runs, news_csv = members
    with pytest.raises(UserError, match="an ensemble needs two or more runs; 1 given"):
        make_ensemble(tmp_path / "one", runs[:1])
    with pytest.raises(UserError, match="a run is given twice"):
        make_ensemble(tmp_path / "twice", [runs[0], runs[0]])
    other = trainer.train(tiny_classify_config(news_csv, "train.epochs=1", "data.max_tokens=50"),
                          str(tmp_path / "other")).path
    with pytest.raises(UserError, match=r"other\b.* was trained on other data than .*seed1 \(data.max_tokens\)"):
        make_ensemble(tmp_path / "mixed", [runs[0], other])
    assert not (tmp_path / "mixed").exists()  # refused before anything is written
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="full already exists and is not an empty folder"):
        make_ensemble(tmp_path / "full", runs)
    assert (tmp_path / "full" / "notes.txt").read_text() == "mine"


def test_a_member_retrained_since_is_refused_and_training_into_an_ensemble_too(members, tmp_path):
    import shutil

    from tfseq.ensembling import make_ensemble
    from tfseq.runs import load_trained

    runs, news_csv = members
    copies = [tmp_path / "a", tmp_path / "b"]
    for run, copy in zip(runs, copies):
        shutil.copytree(run, copy)
    out = make_ensemble(tmp_path / "ens", copies)
    with pytest.raises(UserError, match="holds an ensemble of runs, which is not trained; choose a new --run-dir"):
        trainer.train(tiny_classify_config(news_csv, "train.epochs=2", "train.seed=1"), str(out))
    from tfseq.models.gradient_flow import diagnose_gradients

    with pytest.raises(UserError, match="is an ensemble of runs; diagnose one of its members"):
        diagnose_gradients(str(out))
    model = load_trained(copies[1]).model
    model.weights[-1].assign(model.weights[-1] + 1.0)  # the output bias: retrained, as far as the digest can tell
    model.save_weights(copies[1] / "model.weights.h5")
    with pytest.raises(UserError, match=r"b, a member of the ensemble .*ens, has other weights than when the ensemble "
                                        "was made"):
        load_trained(out)
    shutil.rmtree(copies[0])
    with pytest.raises(UserError, match=r"run folder .*a does not exist"):
        load_trained(out)


def test_the_ensemble_command_explains_itself_and_fails_in_one_line(tmp_path):
    shown = subprocess.run([PYTHON, "-m", "tfseq.ensemble", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert shown.returncode == 0 and "OUT_DIR" in shown.stdout and "finished classifier run" in shown.stdout
    (tmp_path / "x").mkdir()
    failed = subprocess.run([PYTHON, "-m", "tfseq.ensemble", str(tmp_path / "ens"), str(tmp_path / "x"),
                             str(tmp_path / "y")], cwd=ROOT, capture_output=True, text=True)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'x'} is not a finished run")
