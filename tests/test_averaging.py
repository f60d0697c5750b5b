import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import tiny_charlm_config, train_killed_after_epoch
from tfseq import trainer
from tfseq.averaging import averaged
from tfseq.config import load_config
from tfseq.errors import UserError
from tfseq.models.memory import estimate_memory, make_plan
from tfseq.runs import load_trained


def _trained_model(ema: float, policy: str = "float32"):
    """A tiny compiled model after eight steps of a nonzero gradient (seeded: under mixed precision the first steps'
    loss scale may overflow, and such steps are skipped)."""
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(policy)
    try:
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    t = load_config("charlm", "charlm_tiny", [f"train.ema={ema}", "train.learning_rate=0.1"]).train
    model.compile(optimizer=trainer.make_optimizer(t, 10), loss="mse")
    x, y = np.arange(32, dtype="float32").reshape(8, 4) / 32, np.ones((8, 1), "float32")
    for _ in range(8):  # not fit: it ends by making the average the model's weights
        model.train_on_batch(x, y)
    return model


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_averaged_weights_are_swapped_in_and_back_bit_for_bit(policy):
    model = _trained_model(0.5, policy)
    # Under mixed precision Keras wraps the optimizer in a loss-scaling one; the average is the inner one's.
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    assert (optimizer is not model.optimizer) == (policy == "mixed_float16")
    averages = [keras.ops.convert_to_numpy(a) for a in optimizer._model_variables_moving_average]
    trained = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) >= 3  # steps taken, not skipped
    assert not all(np.array_equal(a, t) for a, t in zip(averages, trained))  # steps apart: they differ
    with averaged(model):
        for w, a in zip(model.trainable_weights, averages):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), a)
    for w, t in zip(model.trainable_weights, trained):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), t)
    model.optimizer.finalize_variable_values(model.trainable_weights)  # what the trainer does at the end
    for w, a in zip(model.trainable_weights, averages):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), a)


def test_without_an_average_nothing_is_swapped():
    model = _trained_model(0.0)
    trained = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    with averaged(model):
        model.optimizer.finalize_variable_values(model.trainable_weights)
    for w, t in zip(model.trainable_weights, trained):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), t)


def test_the_average_warms_up_then_follows_the_decay_per_step():
    # Step t moves the average by 1 - min(decay, t / (t + 9)) toward the weights: a copy at t = 0, then a warm-up
    # until t / (t + 9) passes the decay (0.5 here, from t = 10 on).
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    t = load_config("charlm", "charlm_tiny", ["train.ema=0.5", "train.learning_rate=1.0"]).train
    model.compile(optimizer=trainer.make_optimizer(t, 100), loss="mse")
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: seen.append(float(model.trainable_weights[0].numpy()[0, 0])))
    model.fit(np.ones((1, 1)), np.full((1, 1), 10.0), epochs=14, verbose=0, callbacks=[record])
    assert len(set(seen)) == 14  # the weight moved at every step
    expected = 0.0
    for step, w in enumerate(seen):
        decay = min(0.5, step / (step + 9))
        expected = decay * expected + (1 - decay) * w
    average = model.optimizer._model_variables_moving_average[0]
    assert keras.ops.convert_to_numpy(average)[0, 0] == pytest.approx(expected, rel=1e-6)


def test_a_stateful_run_validates_and_keeps_the_averaged_weights(small_book, tmp_path):
    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.ema=0.9"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    last = run.read_history()[-1]
    metrics = json.loads(run.metrics.read_text())
    # The last epoch's stream loss was read with the average, and the saved model is the average: the same figure.
    assert last["val_loss"] == pytest.approx(metrics["val_loss"], rel=1e-9)
    plain = trainer.train(load_config("lm", "wordlm_tiny", [f"data.path={small_book}"]), str(tmp_path / "plain"))
    assert json.loads(plain.metrics.read_text())["val_loss"] != pytest.approx(metrics["val_loss"], rel=1e-6)


def test_keras_validation_and_the_best_epoch_use_the_average(small_book, tmp_path):
    cfg = tiny_charlm_config(small_book, epochs=3, steps_per_epoch=6, ema=0.9, early_stopping=2,
                             learning_rate=0.01)
    run = trainer.train(cfg, str(tmp_path / "run"))
    rows = run.read_history()
    best = json.loads(run.metrics.read_text())["best_epoch"]
    trained = load_trained(run.path)
    from tfseq.tasks.lm import LMTask

    task = LMTask(cfg)
    model = trained.model
    model.compile(loss=task.loss())
    # Keras' validation of the best epoch read the averaged weights, which the run keeps as its model.
    loss = model.evaluate(task.val_data(), verbose=0, return_dict=True)["loss"]
    assert rows[best - 1]["val_loss"] == pytest.approx(loss, rel=1e-5)


def test_a_run_resumed_after_its_last_epoch_ends_with_the_average(small_book, tmp_path, monkeypatch):
    # Resumed after the last epoch's checkpoint, the run does not fit again (so Keras does not put the average in
    # place at the end of fit): it must still end with the average, as the uninterrupted run does.
    cfg = tiny_charlm_config(small_book, epochs=2, steps_per_epoch=5, ema=0.9, learning_rate=0.01)
    straight = trainer.train(cfg, str(tmp_path / "straight"))
    train_killed_after_epoch(cfg, str(tmp_path / "resumed"), 2, monkeypatch)
    resumed = trainer.train(cfg, str(tmp_path / "resumed"))
    digests = [json.loads(r.metrics.read_text())["weights_sha256"] for r in (straight, resumed)]
    assert digests[0] == digests[1]


def test_an_unfinished_run_serves_its_last_checkpoints_weights_not_their_average(small_book, tmp_path, monkeypatch):
    # As README says: sample / predict / export of an unfinished run read the checkpoint's trained weights.
    cfg = tiny_charlm_config(small_book, epochs=2, steps_per_epoch=5, ema=0.9, learning_rate=0.01)
    train_killed_after_epoch(cfg, str(tmp_path / "run"), 1, monkeypatch)
    served = load_trained(tmp_path / "run").model
    task = trainer.make_task(cfg)
    model = trainer._compiled_model(cfg, task, tf.distribute.get_strategy())
    model.load_weights(tmp_path / "run" / "checkpoints" / "epoch-0001.weights.h5")
    with averaged(model):
        average = [keras.ops.convert_to_numpy(w).copy() for w in model.trainable_weights]
    for w, mine, avg in zip(served.trainable_weights, model.trainable_weights, average):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), keras.ops.convert_to_numpy(mine))
    assert not all(np.array_equal(keras.ops.convert_to_numpy(w), a) for w, a in zip(served.trainable_weights, average))


def test_the_decay_must_be_below_one_and_the_memory_estimate_counts_the_average():
    for bad in ("1.0", "-0.1"):
        with pytest.raises(UserError, match=r"train.ema = .* is out of range; allowed: \[0.0, 1.0\)"):
            load_config("lm", "wordlm_tiny", [f"train.ema={bad}"])
    plain, averaged_run = (estimate_memory(make_plan(load_config("lm", "wordlm_tiny", [f"train.ema={e}"])))
                           for e in (0.0, 0.99))
    assert averaged_run.totals["optimizer_bytes"] == plain.totals["optimizer_bytes"] * 16 // 12
