import json
import math

import h5py
import numpy as np
import pytest

from conftest import tiny_charlm_config, train_killed_after_epoch
from tfseq import runs, trainer
from tfseq.config import ModelConfig
from tfseq.errors import UserError
from tfseq.models.factory import build_model
from tfseq.models.streaming import StreamScorer
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

    train_killed_after_epoch(cfg, str(tmp_path / "resumed"), 2, monkeypatch)
    half = RunFolder(tmp_path / "resumed")
    assert half.read_state()["epoch"] == 2 and not half.read_state()["finished"]
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))

    assert [r["epoch"] for r in resumed.read_history()] == [1, 2, 3]
    a, b = weights_of(straight.weights), weights_of(resumed.weights)
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    assert list((resumed.path / "checkpoints").iterdir()) == [resumed.checkpoint(3)]


def test_default_run_dir_resumes_the_unfinished_run_of_the_same_config_among_all(small_book, tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "MODELS_DIR", tmp_path)
    seed1, seed2 = tiny_charlm_config(small_book), tiny_charlm_config(small_book, seed=2)
    first, resume = choose_run_dir(seed1, None)
    assert not resume and first.path.parent == tmp_path and first.path.name.startswith("charlm_tiny-")
    first.path.mkdir()
    first.write_config(seed1)
    again, resume = choose_run_dir(seed1, None)
    assert resume and again.path == first.path
    # Seed 2 is interrupted after seed 1: its folder is the newest, yet seed 1's command still finds seed 1's run.
    second = RunFolder(tmp_path / "charlm_tiny-29991231-235959")
    second.path.mkdir()
    second.write_config(seed2)
    assert choose_run_dir(seed1, None) == (first, True) and choose_run_dir(seed2, None) == (second, True)
    first.write_state({"epoch": 2, "train_seconds": 1.0, "finished": True})
    fresh, resume = choose_run_dir(seed1, None)
    assert not resume and fresh.path not in (first.path, second.path)


def test_a_second_trainer_on_the_same_folder_is_refused_and_a_killed_one_leaves_no_lock(small_book, tmp_path):
    import os
    import signal
    import subprocess

    from conftest import PYTHON, ROOT
    from tfseq.runs import RunLock

    run = RunFolder(tmp_path / "run")
    run.path.mkdir()
    lock = RunLock(run)
    done = subprocess.run([PYTHON, "-m", "tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(small_book),
                           "--run-dir", str(run.path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    assert f"is in use by another training process (pid {os.getpid()} on " in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not run.config.exists()
    lock.release()
    # A holder killed with SIGKILL cannot clean up: the kernel releases its lock.
    holder = subprocess.Popen([PYTHON, "-c", "import sys, time\nfrom tfseq.runs import RunFolder, RunLock\n"
                               f"RunLock(RunFolder({str(run.path)!r}))\nprint('locked', flush=True)\ntime.sleep(60)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(UserError, match="in use by another training process"):
        RunLock(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    RunLock(run).release()


def test_a_resume_against_changed_data_is_refused_and_damages_nothing(tmp_path, monkeypatch):
    book = tmp_path / "book.txt"
    book.write_text("the cat sat on the mat. " * 400)
    cfg = tiny_charlm_config(book, epochs=2, steps_per_epoch=3)
    original = trainer.RunCheckpoint.on_epoch_end

    def crash_after_epoch_1(self, epoch, logs=None):
        original(self, epoch, logs)
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", crash_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, str(tmp_path / "run"))
    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", original)
    run = RunFolder(tmp_path / "run")
    before = {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file()}
    book.write_text("THE DOG RAN IN THE FOG! " * 400)  # same size, other characters: another vocabulary
    with pytest.raises(UserError, match=r"run was trained on other data: .*book.txt has changed since the run started; "
                                        r"restore the data"):
        trainer.train(cfg, str(run.path))
    assert {p.name: p.read_bytes() for p in run.path.iterdir() if p.is_file() and p.name != ".lock"} == \
        {k: v for k, v in before.items() if k != ".lock"}
    book.write_text("the cat sat on the mat. " * 400)
    trainer.train(cfg, str(run.path))  # the original data resumes it
    assert [r["epoch"] for r in run.read_history()] == [1, 2]


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(small_book, tmp_path, monkeypatch):
    import keras
    import tensorflow as tf

    from tfseq.tasks.lm import LMTask

    poisoned = tf.Variable(0.0)  # becomes NaN after the first epoch

    def loss(y_true, y_pred):
        return keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True) + poisoned

    original = trainer.RunCheckpoint.on_epoch_end

    def poison_after_epoch_1(self, epoch, logs=None):
        original(self, epoch, logs)
        poisoned.assign(float("nan"))

    monkeypatch.setattr(LMTask, "loss", lambda self: loss)
    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", poison_after_epoch_1)
    cfg = tiny_charlm_config(small_book, epochs=3, steps_per_epoch=5)
    with pytest.raises(UserError, match=r"the training loss became nan in epoch 2, batch 1; kept the last good "
                                        r"checkpoint \(epoch 1\) in .*lower train.learning_rate"):
        trainer.train(cfg, str(tmp_path / "run"))
    run = RunFolder(tmp_path / "run")
    state = run.read_state()
    assert state["epoch"] == 1 and not state["finished"] and run.checkpoint(1).is_file()
    assert [r["epoch"] for r in run.read_history()] == [1] and not run.weights.exists()
    # The stop is part of the run: the same command gives the same answer and trains nothing.
    monkeypatch.setattr(trainer, "_fit_and_finish", lambda *a, **k: pytest.fail("trained again"))
    with pytest.raises(UserError, match=r"the training loss became nan in epoch 2, batch 1"):
        trainer.train(cfg, str(tmp_path / "run"))


def stream_loss(model, cfg, ids, streams, context):
    total, count = StreamScorer(cfg, model.get_layer("embedding").input_dim, ids, streams, context)(model)
    return total / count, count


def log_softmax(logits):
    logits = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_stream_loss_equals_the_loss_of_one_pass_over_the_whole_text():
    import keras

    keras.utils.set_random_seed(0)
    cfg = ModelConfig(cell="lstm", units=8, embedding_dim=4)
    model = build_model(cfg, 7)
    ids = np.random.default_rng(0).integers(0, 7, 300).astype(np.int32)
    logp = log_softmax(model(ids[None, :-1]).numpy()[0])
    expected = -logp[np.arange(299), ids[1:]].mean()
    loss, count = stream_loss(model, cfg, ids, streams=4, context=400)  # every stream sees the text from its start
    assert count == 299
    assert math.isclose(loss, expected, rel_tol=1e-5)


def test_stream_loss_with_short_context_scores_each_stream_from_its_own_window():
    import keras

    keras.utils.set_random_seed(0)
    cfg = ModelConfig(cell="gru", units=8, embedding_dim=4)
    model = build_model(cfg, 7)
    rng = np.random.default_rng(1)
    for w in model.weights:  # larger than the initialiser's: a state that remembers more than 10 steps
        w.assign(rng.normal(0, 1.0, w.shape).astype("float32"))
    ids = rng.integers(0, 7, 301).astype(np.int32)
    streams, context = 4, 10  # pieces of 75 targets: each stream starts 10 characters before its first target
    bounds = [1, 76, 151, 226, 301]
    nll = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        start = max(0, a - 1 - context)
        # Each piece alone, unpadded: targets a..b-1 predicted from ids[start:b-1].
        logp = log_softmax(model(ids[None, start:b - 1]).numpy()[0])
        positions = np.arange(a, b)
        nll.append(-logp[positions - 1 - start, ids[positions]])
    expected = np.concatenate(nll).mean()
    loss, count = stream_loss(model, cfg, ids, streams=streams, context=context)
    assert count == 300
    assert math.isclose(loss, expected, rel_tol=1e-5)
    whole = -log_softmax(model(ids[None, :-1]).numpy()[0])[np.arange(300), ids[1:]].mean()
    assert abs(loss - whole) > 1e-4  # the context limit is reached: streams start cold (float noise is ~1e-7)


def test_dropout_masks_differ_from_epoch_to_epoch():
    import keras

    from tfseq.trainer import seed_dropout

    inputs = keras.Input((64,))
    model = keras.Model(inputs, keras.layers.Dropout(0.5)(inputs))
    ones = np.ones((1, 64), np.float32)

    def masks(epoch, steps=3):
        seed_dropout(model, seed=1, epoch=epoch)
        return [model(ones, training=True).numpy()[0] > 0 for _ in range(steps)]

    epoch0, epoch1 = masks(0), masks(1)
    # Epoch 1 must not replay epoch 0's masks shifted by a step (the old seeding's flaw), nor repeat them.
    for a in epoch0:
        for b in epoch1:
            assert not np.array_equal(a, b)
    again = masks(1)
    for a, b in zip(epoch1, again):
        np.testing.assert_array_equal(a, b)  # a resumed epoch draws the same masks


def test_mixed_precision_trains_with_float32_logits_and_samples(small_book, tmp_path):
    import keras

    from tfseq.config import SampleConfig
    from tfseq.generation.generate import sample_run

    cfg = tiny_charlm_config(small_book, epochs=1, steps_per_epoch=3)
    cfg.train.mixed_precision = True
    run = trainer.train(cfg, str(tmp_path / "run"))
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after training
    assert math.isfinite(json.loads(run.metrics.read_text())["val_loss"])
    text = sample_run(str(run.path), ["The"], 20, SampleConfig(seed=1)).texts[0]
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


def fake_clock(monkeypatch, seconds_per_call=60):
    """trainer's clock reads 0 s when training starts and `seconds_per_call` more at each epoch's end."""
    import itertools
    import types

    clock = itertools.count(0, seconds_per_call)
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))


def test_under_a_time_budget_the_cosine_follows_the_clock_to_its_floor(small_book, tmp_path, monkeypatch):
    fake_clock(monkeypatch)  # epochs of 60 s: the 3.5-minute budget ends after 3 of the 6 epochs
    cfg = tiny_charlm_config(small_book, epochs=6, steps_per_epoch=2, lr_schedule="cosine", lr_min_ratio=0.1)
    cfg.train.max_minutes = 3.5
    run = trainer.train(cfg, str(tmp_path / "run"))
    rows = run.read_history()
    assert [r["epoch"] for r in rows] == [1, 2, 3]

    def rate(progress):
        return 3e-3 * (0.9 * 0.5 * (1 + math.cos(math.pi * progress)) + 0.1)

    # Epoch 1 follows the steps (2 of 12). Then 60 of 210 s are used and two more 60-s epochs fit: the 5/6 of the
    # decay still to go is spread over their 4 steps, so the third epoch, the last, ends at the floor, where a cosine
    # in steps would be half-way.
    expected = [rate(2 / 12), rate(2 / 12 + 2 * 5 / 24), rate(1.0)]
    np.testing.assert_allclose([r["lr"] for r in rows], expected, rtol=1e-5)
    assert run.read_state()["lr_plan"] == pytest.approx([6, 1.0, 0.0])  # step 6, the decay done, nothing left


def test_the_chiefs_state_reaches_the_other_workers_with_its_learning_rate_plan():
    chief = {"epoch": 3, "train_seconds": 180.0, "best_value": 1.5, "best_epoch": 2, "stop_reason": "",
             "lr_plan": [6.0, 0.75, 0.125]}
    # The other workers add the vector of an empty state: zeros of the same length.
    shared = np.add(trainer._state_vector(chief), trainer._state_vector({}))
    other = trainer._state_from_vector({"data_fingerprint": "f"}, shared)
    assert other == {**chief, "data_fingerprint": "f"}
    assert "lr_plan" not in trainer._state_from_vector({}, trainer._state_vector({"epoch": 1, "train_seconds": 1}))


def test_a_run_under_a_time_budget_resumes_to_the_same_weights(small_book, tmp_path, monkeypatch):
    cfg = tiny_charlm_config(small_book, epochs=6, steps_per_epoch=3, lr_schedule="cosine")
    cfg.train.max_minutes = 3.5  # 60 s epochs: the budget, not the steps, paces the cosine from epoch 2 on
    cfg.model.dropout = 0.2  # dropout masks must be redrawn identically after the resume
    fake_clock(monkeypatch)
    straight = json.loads(trainer.train(cfg, str(tmp_path / "straight")).metrics.read_text())

    fake_clock(monkeypatch)
    train_killed_after_epoch(cfg, str(tmp_path / "resumed"), 1, monkeypatch)
    fake_clock(monkeypatch)  # the restarted process's clock starts again at 0; the 60 s already used are in state
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))
    a, b = json.loads(resumed.metrics.read_text()), straight
    assert a["epochs"] == b["epochs"] == 3 and a["weights_sha256"] == b["weights_sha256"]
    lrs = [r["lr"] for r in resumed.read_history()]
    assert lrs[1] < 0.5 * lrs[0]  # the plan written with epoch 1 was followed after the restart


def test_an_early_stop_survives_a_kill_during_the_final_evaluation(small_book, tmp_path, monkeypatch):
    from tfseq.tasks.lm import LMTask

    cfg = tiny_charlm_config(small_book, epochs=6, steps_per_epoch=2, early_stopping=1)
    original = trainer.RunCheckpoint.on_epoch_end

    def validation_gets_worse_after_epoch_2(self, epoch, logs=None):
        original(self, epoch, {**logs, "val_loss": abs(epoch - 1) + 1.0})  # best at epoch 2, worse at 3

    monkeypatch.setattr(trainer.RunCheckpoint, "on_epoch_end", validation_gets_worse_after_epoch_2)
    straight = trainer.train(cfg, str(tmp_path / "straight"))
    assert [r["epoch"] for r in straight.read_history()] == [1, 2, 3]
    evaluate = LMTask.final_metrics
    monkeypatch.setattr(LMTask, "final_metrics", lambda self, model, run: (_ for _ in ()).throw(KeyboardInterrupt))
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, str(tmp_path / "resumed"))
    monkeypatch.setattr(LMTask, "final_metrics", evaluate)
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))
    assert [r["epoch"] for r in resumed.read_history()] == [1, 2, 3]
    a, b = (json.loads(run.metrics.read_text()) for run in (straight, resumed))
    assert a["best_epoch"] == b["best_epoch"] == 2 and a["weights_sha256"] == b["weights_sha256"]


def test_a_kill_during_the_final_evaluation_resumes_to_the_same_end(small_book, tmp_path, monkeypatch):
    import itertools
    import types

    from tfseq.tasks.lm import LMTask

    cfg = tiny_charlm_config(small_book, epochs=6, steps_per_epoch=2)
    cfg.train.max_minutes = 3.5
    clock = itertools.count(0, 60)
    monkeypatch.setattr(trainer, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    straight = json.loads(trainer.train(cfg, str(tmp_path / "straight")).metrics.read_text())

    clock = itertools.count(0, 60)
    evaluate = LMTask.final_metrics

    def killed(self, model, run):
        raise KeyboardInterrupt

    monkeypatch.setattr(LMTask, "final_metrics", killed)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(cfg, str(tmp_path / "resumed"))
    assert RunFolder(tmp_path / "resumed").read_state()["stop_reason"].startswith("time budget")
    monkeypatch.setattr(LMTask, "final_metrics", evaluate)
    # A slow machine after the restart: the recorded decision, not a new one, ends the run.
    clock = itertools.count(0, 1)
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))
    assert [r["epoch"] for r in resumed.read_history()] == [1, 2, 3]
    assert json.loads(resumed.metrics.read_text())["weights_sha256"] == straight["weights_sha256"]


def test_history_and_tensorboard_log_the_gradient_norm_before_clipping(small_book, tmp_path):
    import keras
    import tensorflow as tf

    cfg = tiny_charlm_config(small_book, epochs=2, steps_per_epoch=1)
    run = trainer.train(cfg, str(tmp_path / "run"))
    rows = run.read_history()
    # Epoch 1 is one step from the initial weights on the first batch: its gradient norm, computed here by a tape.
    task = trainer.make_task(cfg)
    keras.utils.set_random_seed(cfg.train.seed)
    model = build_model(cfg.model, task.vocab.size)
    x, y = next(iter(task.train_data(0)))
    with tf.GradientTape() as tape:
        loss = task.loss()(y, model(x, training=True))
    # The embedding's gradient comes as rows per id occurrence: the dense gradient adds a repeated id's rows.
    squares = [np.sum(np.square(tf.convert_to_tensor(g).numpy().astype(np.float64)))
               for g in tape.gradient(loss, model.trainable_variables)]
    assert math.isclose(rows[0]["grad_norm"], math.sqrt(sum(squares)), rel_tol=1e-4)
    assert rows[1]["grad_norm"] > 0 and [r["clipped"] for r in rows] == [0.0, 0.0]  # no train.clipnorm
    tags = {value.tag for events in (run.logs / "train").glob("events.out.tfevents.*")
            for event in tf.compat.v1.train.summary_iterator(str(events)) for value in event.summary.value}
    assert {"epoch_grad_norm", "epoch_clipped"} <= tags


def test_a_tiny_clipnorm_clips_every_step(small_book, tmp_path):
    cfg = tiny_charlm_config(small_book, epochs=2, steps_per_epoch=3, clipnorm=1e-6)
    rows = trainer.train(cfg, str(tmp_path / "run")).read_history()
    assert [r["clipped"] for r in rows] == [1.0, 1.0] and all(r["grad_norm"] > 1e-3 for r in rows)


def test_the_embedding_gradients_norms_keep_xla_shapes_static():
    import tensorflow as tf

    # One dynamic shape in a compiled step (tf.unique's or a sort's output) made XLA inline dropout's random-bit
    # generators into per-element fusions: a stateful char-LM's step took twice as long with the gradient log.
    values = tf.constant([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    ids = tf.constant([4, 1, 4])
    norms = tf.function(lambda v, i: trainer._squared_sums(tf.IndexedSlices(v, i, tf.constant([6, 2]))),
                        jit_compile=True)
    hlo = norms.experimental_get_compiler_ir(values, ids)(stage="hlo")
    assert "set-dimension-size" not in hlo and "<=" not in hlo
    summed, as_they_come = (float(t) for t in norms(values, ids))
    assert (summed, as_they_come) == (6.0 ** 2 + 8.0 ** 2 + 3.0 ** 2 + 4.0 ** 2, 91.0)


def tiny_gru_batch():
    rng = np.random.default_rng(0)
    return rng.integers(0, 7, (8, 12)).astype("int32"), rng.integers(0, 7, (8, 12)).astype("int32")


def test_checkpoints_from_before_the_gradient_log_load_both_ways(tmp_path):
    import warnings

    import keras

    from tfseq.config import TrainConfig

    x, y = tiny_gru_batch()
    models = {}
    for name, optimizer in (("plain", keras.optimizers.Adam(1e-2)),
                            ("logged", trainer.make_optimizer(TrainConfig(learning_rate=1e-2), 10))):
        keras.utils.set_random_seed(0)
        models[name] = build_model(ModelConfig(cell="gru", units=8, embedding_dim=4), 7)
        models[name].compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    models["plain"].fit(x, y, epochs=1, verbose=0)  # a checkpoint as runs wrote it before the log
    models["plain"].save_weights(tmp_path / "plain.weights.h5")
    models["logged"].optimizer.build(models["logged"].trainable_variables)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Keras only warns when it skips a mismatched optimizer
        models["logged"].load_weights(tmp_path / "plain.weights.h5")
    for a, b in zip(models["plain"].optimizer.variables, models["logged"].optimizer.variables, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    models["logged"].fit(x, y, epochs=1, verbose=0)
    assert trainer.gradient_log(models["logged"])["grad_norm"] > 0
    models["logged"].save_weights(tmp_path / "logged.weights.h5")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models["plain"].load_weights(tmp_path / "logged.weights.h5")  # and the other way round


@pytest.mark.parametrize("mixed, jit", [(True, False), (False, True), (True, True)])
def test_the_gradient_log_is_the_same_under_loss_scaling_and_xla(mixed, jit):
    import keras

    from tfseq.config import TrainConfig

    x, y = tiny_gru_batch()
    x[4:], y[4:] = 0, 0  # the second step's batch: one id, one target, a gradient norm 6 times the first's

    def logged_step(mixed_precision, jit_compile):
        policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
        try:
            keras.utils.set_random_seed(0)
            model = build_model(ModelConfig(cell="gru", units=8, embedding_dim=4), 7)
            model.compile(trainer.make_optimizer(TrainConfig(learning_rate=1e-2, clipnorm=0.5), 10),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit_compile)
        finally:
            keras.mixed_precision.set_global_policy(policy)
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)  # two steps
        return trainer.gradient_log(model)

    reference = logged_step(False, False)
    assert reference["clipped"] == 0.5, reference  # clipnorm between the two steps' norms
    log = logged_step(mixed, jit)
    # A loss-scaled norm would be 32768 times larger (the scaler's first factor).
    assert math.isclose(log["grad_norm"], reference["grad_norm"], rel_tol=1e-2) and log["clipped"] == reference["clipped"]


MIRRORED_LOG = """
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from tfseq.config import ModelConfig, TrainConfig
from tfseq.models.factory import build_model
from tfseq.trainer import gradient_log, make_optimizer, make_strategy

rng = np.random.default_rng(0)
x, y = rng.integers(0, 11, (8, 12)).astype("int32"), rng.integers(0, 11, (8, 12)).astype("int32")
strategy = make_strategy("mirrored")
with strategy.scope():
    model = build_model(ModelConfig(cell="gru", units=16, embedding_dim=8), 11)
    model.compile(make_optimizer(TrainConfig(learning_rate=0.01, clipnorm=1e-6), 10),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8).repeat(3), epochs=1, verbose=0)
print(json.dumps({"replicas": strategy.num_replicas_in_sync, **gradient_log(model)}))
"""


def test_the_gradient_log_under_a_mirrored_strategy():
    import subprocess

    from conftest import PYTHON, ROOT

    done = subprocess.run([PYTHON, "-c", MIRRORED_LOG], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    log = json.loads(done.stdout.strip().splitlines()[-1])
    assert log["replicas"] == 2 and log["clipped"] == 1.0 and 0 < log["grad_norm"] < 10, log


def test_weight_decay_shrinks_each_weight_by_the_scheduled_rate_times_the_decay():
    import keras

    from tfseq.config import TrainConfig
    from tfseq.trainer import make_optimizer

    # A zero gradient leaves Adam's step at zero, so only the decoupled decay moves the weight: w -= lr * wd * w,
    # with lr the schedule's rate at that step (warm-up over 2 steps: 0 at step 0, 0.1 * 1/2 at step 1).
    optimizer = make_optimizer(TrainConfig(learning_rate=0.1, weight_decay=0.5, warmup_steps=2), 10)
    weight = keras.Variable([2.0, -4.0])
    for _ in range(2):
        optimizer.apply_gradients([(keras.ops.zeros(2), weight)])
    np.testing.assert_allclose(weight.numpy(), np.array([2.0, -4.0]) * (1 - 0.05 * 0.5), rtol=1e-6)
    assert make_optimizer(TrainConfig(weight_decay=0.0), 10).weight_decay is None
