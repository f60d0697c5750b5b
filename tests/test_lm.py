"""The language-model task: lanes, stateful training, stream metrics, word models sampled and exported."""
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import PYTHON, ROOT
from tfseq import trainer
from tfseq.config import load_config
from tfseq.data.streams import lane_dataset, lane_offset, lane_steps, lanes, stream_rows
from tfseq.errors import UserError
from tfseq.runs import RunFolder


def test_lanes_continue_row_by_row_from_batch_to_batch():
    ids = np.arange(103, dtype=np.int32)
    x, y = lanes(ids, batch_size=4, offset=2)
    assert x.tolist()[1][:3] == [27, 28, 29] and x.shape == (4, 25)  # lane 1 starts 25 after lane 0
    np.testing.assert_array_equal(y, x + 1)
    steps = lane_steps(len(ids), seq_len=5, batch_size=4)
    assert steps == 4  # (103 - 5) // 4 // 5: the same count at every offset
    batches = [(bx.numpy(), by.numpy()) for bx, by in lane_dataset(ids, 5, 4, seed=3, first_epoch=0, epochs=2,
                                                                    steps=steps)]
    assert len(batches) == 8
    first = lane_offset(3, 0, 5)
    lane_len = (103 - first - 1) // 4
    for k in range(4):
        bx, by = batches[k]
        expected = first + np.arange(4)[:, None] * lane_len + k * 5 + np.arange(5)[None, :]
        np.testing.assert_array_equal(bx, expected)  # row i of batch k continues row i of batch k-1
        np.testing.assert_array_equal(by, expected + 1)
    offsets = {lane_offset(3, stream_pass, 5) for stream_pass in range(20)}
    assert len(offsets) > 1 and offsets <= set(range(5))  # window boundaries move from pass to pass
    assert batches[4][0][0, 0] == lane_offset(3, 1, 5)
    resumed = [bx.numpy() for bx, _ in lane_dataset(ids, 5, 4, seed=3, first_epoch=1, epochs=2, steps=steps)]
    np.testing.assert_array_equal(np.stack(resumed), np.stack([b[0] for b in batches[4:]]))
    # Epochs shorter than a pass go on through the stream: epoch 1 of 3 batches starts at window 3 of pass 0.
    short = [bx.numpy() for bx, _ in lane_dataset(ids, 5, 4, seed=3, first_epoch=1, epochs=3, steps=3)]
    np.testing.assert_array_equal(short[0], batches[3][0])
    np.testing.assert_array_equal(short[1], batches[4][0])  # window 4 = window 0 of pass 1


def test_lane_limits_are_refused_with_the_setting_to_change():
    with pytest.raises(UserError, match="fewer than one batch of 64 lanes of 40; lower train.batch_size"):
        lane_steps(1000, 40, 64)
    with pytest.raises(UserError, match="train.steps_per_epoch = 9 is more than one pass over the lanes"):
        lane_steps(103, 5, 4, limit=9)


def test_stream_rows_score_every_id_once():
    x, y, w = stream_rows(np.arange(50, dtype=np.int32), streams=3, context=4)
    assert w.sum() == 49
    assert sorted(y[w > 0].tolist()) == list(range(1, 50))
    np.testing.assert_array_equal(y[x.astype(bool) | (y > 0)], x[x.astype(bool) | (y > 0)] + 1)


def periodic_config(tmp_path, stateful: bool):
    """A text whose next character after a run of b's depends on a count longer than a window: 'a' every 7th."""
    book = tmp_path / "periodic.txt"
    book.write_text("abbbbbb" * 3000)
    return load_config("lm", "charlm_tiny", [
        f"data.path={book}", "data.start_marker=", "data.seq_len=4", "model.units=32", "model.embedding_dim=8",
        "train.batch_size=16", "train.epochs=4", "train.steps_per_epoch=0", "train.learning_rate=1e-2",
        f"train.stateful={str(stateful).lower()}", f"train.jit_compile={str(stateful).lower()}"])


def test_only_a_stateful_model_learns_what_lies_beyond_one_window(tmp_path):
    stateful = json.loads(trainer.train(periodic_config(tmp_path, True), str(tmp_path / "a")).metrics.read_text())
    stateless = json.loads(trainer.train(periodic_config(tmp_path, False), str(tmp_path / "b")).metrics.read_text())
    assert stateful["val_loss"] < 0.1  # the state counts the b's across windows
    # Without the state, four b's in a window cannot tell whether an 'a' comes next.
    assert min(stateless["val_loss"], stateless["val_loss_windowed"]) > 0.2


def test_the_state_is_zeroed_at_each_epoch_start_and_where_a_new_pass_starts():
    import keras

    from tfseq.config import ModelConfig
    from tfseq.models.factory import build_model, rnn_layers
    from tfseq.tasks.lm import StatefulLanes

    model = build_model(ModelConfig(units=4, embedding_dim=2), 5, stateful_batch=2)
    callback = StatefulLanes(steps=3, full=4)  # epochs of 3 batches, passes of 4: pass 1 starts at epoch 1, batch 1
    callback.set_model(model)
    ids = np.ones((2, 3), np.int32)

    def carried():
        return any(np.abs(keras.ops.convert_to_numpy(s)).sum() > 0 for s in rnn_layers(model)[0].states)

    for epoch, batch, zeroed in ((0, None, True), (0, 1, False), (0, 2, False), (1, None, True), (1, 1, True),
                                 (1, 2, False), (2, None, True), (2, 1, False), (2, 2, True)):
        model(ids)
        if batch is None:
            callback.on_epoch_begin(epoch)
        else:
            callback.on_train_batch_begin(batch)
        assert carried() != zeroed, (epoch, batch)


def test_validation_and_evaluation_leave_the_training_state_as_it_was(small_book):
    import keras

    from tfseq.models.factory import build_model, rnn_layers
    from tfseq.tasks.lm import LMTask

    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}"])
    task = LMTask(cfg)
    model = build_model(cfg.model, task.vocab.size, stateful_batch=cfg.train.batch_size)
    model.compile(loss=task.loss())
    x, _ = next(iter(task.train_data(0)))
    model(x)
    before = [keras.ops.convert_to_numpy(s).copy() for layer in rnn_layers(model) for s in layer.states]
    assert any(np.abs(s).sum() > 0 for s in before)
    logs = task.epoch_metrics(model)
    metrics = task.final_metrics(model, None)
    assert set(logs) == {"val_loss", "val_perplexity", "val_bpc"} and logs["val_loss"] == metrics["val_loss"]
    after = [keras.ops.convert_to_numpy(s) for layer in rnn_layers(model) for s in layer.states]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


def test_metrics_put_words_and_characters_on_one_scale(small_book, tmp_path):
    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.epochs=1"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    metrics = json.loads(run.metrics.read_text())
    assert metrics["unit"] == "word"
    (row,) = run.read_history()  # what early stopping and the best epoch go by
    assert row["val_loss"] > 0 and row["val_perplexity"] == pytest.approx(np.exp(row["val_loss"]), rel=1e-5)
    assert metrics["val_perplexity"] == pytest.approx(np.exp(metrics["val_loss"]))
    # bits per character = the same total nats over the held-out characters
    total = metrics["val_loss"] * metrics["val_tokens"]
    assert metrics["val_bpc"] == pytest.approx(total / metrics["val_chars"] / np.log(2))
    assert metrics["val_chars"] > 3 * metrics["val_tokens"]


def test_kill_9_during_stateful_training_resumes_to_the_same_weights(small_book, tmp_path):
    # With AdamW's decay, dropout of whole embedding channels and the weights' average (kept in the checkpoints).
    args = ["--config", "wordlm_tiny", "--data", str(small_book), "--set", "train.epochs=6",
            "--set", "train.steps_per_epoch=40", "--set", "model.dropout=0.2", "--set", "train.weight_decay=0.3",
            "--set", "model.embedding_dropout=0.15", "--set", "train.ema=0.9"]
    command = [PYTHON, "-m", "tfseq.train", "lm", *args]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([*command, "--run-dir", str(tmp_path / "straight")], check=True, cwd=ROOT, env=env,
                   capture_output=True)
    killed = subprocess.Popen([*command, "--run-dir", str(tmp_path / "killed")], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = RunFolder(tmp_path / "killed")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        if run.state.exists() and 2 <= run.read_state()["epoch"] < 6:
            killed.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    subprocess.run([*command, "--run-dir", str(run.path)], check=True, cwd=ROOT, env=env, capture_output=True)
    straight, resumed = (json.loads(RunFolder(tmp_path / name).metrics.read_text()) for name in ("straight", "killed"))
    assert straight["weights_sha256"] == resumed["weights_sha256"]


def test_stateful_training_is_for_language_models_on_one_device(news_csv):
    with pytest.raises(UserError, match="train.stateful = true is for language models; task classify"):
        load_config("classify", "classify_tiny", [f"data.path={news_csv[0]}", "train.stateful=true"])
    with pytest.raises(UserError, match="train.stateful = true trains on one device; set train.strategy"):
        load_config("lm", "wordlm_tiny", ["train.strategy=mirrored"])
    with pytest.raises(UserError, match="task charlm models characters; for data.unit = 'word' use"):
        load_config("charlm", "charlm_tiny", ["data.unit=word"])
    with pytest.raises(UserError, match="data.lowercase, data.max_tokens and data.min_count are for data.unit"):
        load_config("lm", "charlm_tiny", ["data.max_tokens=10"])


def test_a_word_model_samples_words_reports_unknown_ones_and_never_draws_unk(small_book, tmp_path):
    import tensorflow as tf

    from tfseq.config import SampleConfig
    from tfseq.data.words import tokenize
    from tfseq.generation.generate import sample_run
    from tfseq.serving import export_run

    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.epochs=1"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    samples = sample_run(str(run.path), ["The engineer Zzyzx", "Qwrtz"], 200, SampleConfig(temperature=1.5))
    assert samples.unknown == ["Qwrtz", "Zzyzx"]
    assert samples.texts[0].startswith("The engineer Zzyzx ") and all("<unk>" not in t for t in samples.texts)
    # --length counts tokens: the continuation re-tokenizes into exactly `length` words and marks.
    generated = samples.texts[1][len("Qwrtz"):]
    assert tokenize(tf.constant([generated]))[0].shape[0] == 200
    # The SavedModel gives the same samples, unknown words and stops (ended on tokens, as the run folder does).
    exported = export_run(run.path, tmp_path / "exported")
    options = SampleConfig(temperature=1.0, seed=4)
    for stops in ((), (".", "the")):
        ours = sample_run(str(run.path), ["the Zzyzx", "It was"], 40, options, stops)
        theirs = sample_run(str(exported), ["the Zzyzx", "It was"], 40, options, stops)
        assert ours == theirs
    assert ours.unknown == ["Zzyzx"] and all("." not in t.split(" ", 2)[-1] for t in ours.texts)
    with pytest.raises(UserError, match=r"the prompt '\\ue000' holds no word or punctuation mark to start from"):
        sample_run(str(run.path), ["\ue000"], 5, options)
    done = subprocess.run([PYTHON, "-m", "tfseq.sample", str(run.path), "--prompt", "the Zzyzx", "--length", "5"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "note: 1 prompt word(s) not in the model's vocabulary, read as <unk>: Zzyzx" in done.stderr
    assert done.stdout.startswith("the Zzyzx")


def test_a_tied_word_model_trains_samples_and_exports(small_book, tmp_path):
    from tfseq.config import SampleConfig
    from tfseq.generation.generate import sample_run
    from tfseq.serving import export_run

    cfg = load_config("lm", "wordlm_tiny", [f"data.path={small_book}", "train.epochs=1", "model.tie_embeddings=true"])
    run = trainer.train(cfg, str(tmp_path / "run"))
    options = SampleConfig(temperature=0.9, seed=2)
    ours = sample_run(str(run.path), ["The island"], 30, options)
    assert ours == sample_run(str(export_run(run.path, tmp_path / "exported")), ["The island"], 30, options)
