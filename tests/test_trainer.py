import json
import math

import h5py
import numpy as np
import pytest

from conftest import tiny_charlm_config
from tfseq import runs, trainer
from tfseq.charlm import stream_loss
from tfseq.config import ModelConfig
from tfseq.errors import UserError
from tfseq.modeling import build_model
from tfseq.runs import RunFolder, choose_run_dir


def weights_of(path):
    with h5py.File(path, "r") as f:
        out = {}
        f.visit(lambda name: out.__setitem__(name, f[name][()]) if isinstance(f[name], h5py.Dataset) else None)
    return out


def test_run_folder_holds_everything(small_book, tmp_path):
    cfg = tiny_charlm_config(small_book, epochs=2, steps_per_epoch=5)
    run = trainer.train(cfg, str(tmp_path / "run"))
    for name in ("config.toml", "vocab.json", "model.weights.h5", "history.csv", "metrics.json",
                 "learning_curve.png", "state.json"):
        assert (run.path / name).is_file(), name
    assert any((run.path / "logs").rglob("events.out.tfevents.*"))
    assert [r["epoch"] for r in run.read_history()] == [1, 2]
    metrics = json.loads(run.metrics.read_text())
    assert math.isclose(metrics["val_bpc"], metrics["val_loss"] / math.log(2))
    assert math.isclose(metrics["val_perplexity"], math.exp(metrics["val_loss"]))
    assert run.read_state()["finished"] and run.read_config() == cfg
    with pytest.raises(UserError, match="holds a finished run; choose a new --run-dir"):
        choose_run_dir(cfg, str(run.path))
    other = tiny_charlm_config(small_book, epochs=2, steps_per_epoch=5, learning_rate=0.5)
    with pytest.raises(UserError, match=r"holds a run with a different config \(train.learning_rate\)"):
        choose_run_dir(other, str(run.path))


def test_tiny_text_is_learnt(tmp_path):
    book = tmp_path / "repetitive.txt"
    book.write_text("the cat sat on the mat. " * 600)
    cfg = tiny_charlm_config(book, epochs=5, steps_per_epoch=25, learning_rate=1e-2)
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["val_loss"] < 0.2, metrics  # a uniform guess over 12 symbols costs 2.48 nats


def test_interrupted_run_resumes_to_the_same_weights(small_book, tmp_path, monkeypatch):
    overrides = dict(epochs=3, steps_per_epoch=6)
    cfg = tiny_charlm_config(small_book, **overrides)
    cfg.model.dropout = 0.2  # dropout masks must be redrawn identically after the resume
    straight = trainer.train(cfg, str(tmp_path / "straight"))

    original = trainer.RunCheckpoint.on_epoch_end

    def crash_after_epoch_2(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", crash_after_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, str(tmp_path / "resumed"))
    half = RunFolder(tmp_path / "resumed")
    assert half.read_state()["epoch"] == 2 and not half.read_state()["finished"]
    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", original)
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))

    assert [r["epoch"] for r in resumed.read_history()] == [1, 2, 3]
    a, b = weights_of(straight.weights), weights_of(resumed.weights)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert list((resumed.path / "checkpoints").iterdir()) == [resumed.checkpoint(3)]


def test_default_run_dir_resumes_the_newest_unfinished_run_of_the_same_config(small_book, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MODELS_DIR", tmp_path)
    cfg = tiny_charlm_config(small_book)
    first, resume = choose_run_dir(cfg, None)
    assert not resume and first.path.parent == tmp_path and first.path.name.startswith("charlm_tiny-")
    first.path.mkdir()
    first.write_config(cfg)
    again, resume = choose_run_dir(cfg, None)
    assert resume and again.path == first.path
    other = tiny_charlm_config(small_book, seed=9)
    fresh, resume = choose_run_dir(other, None)
    assert not resume and fresh.path != first.path
    first.write_state({"epoch": 2, "train_seconds": 1.0, "finished": True})
    assert choose_run_dir(cfg, None)[0].path != first.path


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(small_book, tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from tfseq.charlm import CharLMTask

    poisoned = tf.Variable(0.0)  # becomes NaN after the first epoch

    def loss(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True) + poisoned

    original = trainer.RunCheckpoint.on_epoch_end

    def poison_after_epoch_1(self, epoch, logs=None):
        original(self, epoch, logs)
        poisoned.assign(float("nan"))

    monkeypatch.setattr(CharLMTask, "loss", lambda self: loss)
    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", poison_after_epoch_1)
    cfg = tiny_charlm_config(small_book, epochs=3, steps_per_epoch=5)
    with pytest.raises(UserError, match=r"the training loss became nan in epoch 2, batch 1; kept the last good "
                                        r"checkpoint \(epoch 1\) in .*lower train.learning_rate"):
        trainer.train(cfg, str(tmp_path / "run"))
    run = RunFolder(tmp_path / "run")
    state = run.read_state()
    assert state["epoch"] == 1 and not state["finished"] and run.checkpoint(1).is_file()
    assert [r["epoch"] for r in run.read_history()] == [1] and not run.weights.exists()


def test_stream_loss_equals_the_loss_of_one_pass_over_the_whole_text():
    import keras

    keras.utils.set_random_seed(0)
    model = build_model(ModelConfig(cell="lstm", units=8, embedding_dim=4), 7)
    ids = np.random.default_rng(0).integers(0, 7, 300).astype(np.int32)
    logits = model(ids[None, :-1]).numpy()[0].astype(np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    expected = -logp[np.arange(299), ids[1:]].mean()
    loss, count = stream_loss(model, ids, streams=4, context=400)
    assert count == 299
    assert math.isclose(loss, expected, rel_tol=1e-5)


def test_mixed_precision_trains_with_float32_logits_and_samples(small_book, tmp_path):
    import keras

    from tfseq.config import SampleConfig
    from tfseq.generation import sample_run

    cfg = tiny_charlm_config(small_book, epochs=1, steps_per_epoch=3)
    cfg.train.mixed_precision = True
    run = trainer.train(cfg, str(tmp_path / "run"))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    assert math.isfinite(json.loads(run.metrics.read_text())["val_loss"])
    text = sample_run(str(run.path), ["The"], 20, SampleConfig(seed=1))[0]
    assert text.startswith("The") and len(text) == 23


def test_time_budget_stops_before_an_epoch_that_would_cross_it(small_book, tmp_path, monkeypatch, capsys):
    import itertools
    import types

    # A fake clock: training starts at 0 s and every epoch ends 60 s after the previous one.
    clock = itertools.count(0, 60)
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    cfg = tiny_charlm_config(small_book, epochs=6, steps_per_epoch=2)
    cfg.train.max_minutes = 3.5  # epochs end at 1, 2, 3 minutes; a fourth would end at 4
    run = trainer.train(cfg, str(tmp_path / "run"))
    assert [r["epoch"] for r in run.read_history()] == [1, 2, 3]
    assert json.loads(run.metrics.read_text())["train_minutes"] == 3.0
    assert "time budget: 3.0 of 3.5 minutes used, another epoch takes 1.0; stopped" in capsys.readouterr().out
