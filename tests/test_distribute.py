"""tf.distribute on this CPU: MirroredStrategy over 2 logical devices, MultiWorkerMirroredStrategy over loopback."""
import json
import os
import socket
import subprocess
import textwrap
import time

import numpy as np
import pytest

from conftest import PYTHON, ROOT

MIRRORED = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tfseq.config import ModelConfig, TrainConfig
    from tfseq.models.factory import build_model
    from tfseq.trainer import make_optimizer, make_strategy

    rng = np.random.default_rng(0)
    x = rng.integers(0, 11, (8, 12)).astype("int32")
    y = rng.integers(0, 11, (8, 12)).astype("int32")
    results = {}
    for name in ("default", "mirrored"):
        strategy = make_strategy(name)
        keras.utils.set_random_seed(3)
        with strategy.scope():
            model = build_model(ModelConfig(cell="gru", units=16, embedding_dim=8), 11)
            model.compile(make_optimizer(TrainConfig(learning_rate=0.01), 10),
                          keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # one global batch of 8
        losses = [float(model.fit(ds, epochs=1, verbose=0).history["loss"][0]) for _ in range(2)]
        results[name] = {"replicas": strategy.num_replicas_in_sync, "losses": losses,
                         "weights": [w.numpy().tolist() for w in model.weights]}
    print(json.dumps(results))
""")


def test_mirrored_over_two_logical_cpus_matches_one_device():
    done = subprocess.run([PYTHON, "-c", MIRRORED], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["default"]["replicas"] == 1 and results["mirrored"]["replicas"] == 2
    np.testing.assert_allclose(results["mirrored"]["losses"], results["default"]["losses"], rtol=1e-5)
    for a, b in zip(results["default"]["weights"], results["mirrored"]["weights"]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


TWO_LOGICAL_CPUS = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfseq.train import main
    main(sys.argv[1:])
""")


def train_args(book, run_dir, strategy, epochs=4):
    # Early stopping with a patience it will not reach: the best epoch is tracked, shared and restored at the end.
    return ["charlm", "--config", "charlm_tiny", "--data", str(book), "--set", "data.start_marker=",
            "--set", f"train.strategy={strategy}", "--epochs", str(epochs), "--set", "train.steps_per_epoch=6",
            "--set", "model.dropout=0.2", "--set", "train.early_stopping=3", "--run-dir", str(run_dir)]


def state_epoch(run_dir):
    try:
        return json.loads((run_dir / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def kill_after_first_epoch(procs, run_dir, deadline=240):
    """Waits until the chief's run folder records a finished epoch, then kills every process with SIGKILL."""
    start = time.monotonic()
    while state_epoch(run_dir) < 1:
        assert time.monotonic() - start < deadline and all(p.poll() is None for p in procs), \
            [p.communicate()[1][-2000:] for p in procs if p.poll() is not None]
        time.sleep(0.05)
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def digest(out):
    return [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("weights sha256")][0]


@pytest.mark.parametrize("strategy", ["default", "mirrored"])
def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(small_book, tmp_path, strategy):
    command = [PYTHON, "-c", TWO_LOGICAL_CPUS] if strategy == "mirrored" else [PYTHON, "-m", "tfseq.train"]
    straight = subprocess.run(command + train_args(small_book, tmp_path / "straight", strategy), cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert straight.returncode == 0, straight.stderr[-3000:]
    run_dir = tmp_path / "killed"
    proc = subprocess.Popen(command + train_args(small_book, run_dir, strategy), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kill_after_first_epoch([proc], run_dir)
    resumed = subprocess.run(command + train_args(small_book, run_dir, strategy), cwd=ROOT, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run_dir} (epoch " in resumed.stdout
    assert digest(resumed.stdout) == digest(straight.stdout)


def start_workers(book, run_dir, epochs=4, data=(None, None)):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([PYTHON, "-m", "tfseq.train", *train_args(data[index] or book, run_dir,
                                                                                 "multiworker", epochs)],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs):
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)  # bounded: a lost peer must not hang the suite
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out)
    finally:
        for proc in procs:
            proc.kill()
    return outputs


def test_two_workers_agree_and_resume_together_after_sigkill(small_book, tmp_path):
    straight = finish(start_workers(small_book, tmp_path / "straight"))
    folders = [line.split(": ", 1)[1] for out in straight for line in out.splitlines() if line.startswith("run folder")]
    assert folders[0] == str(tmp_path / "straight") and folders[1] != folders[0]  # only the chief writes the run
    assert not os.path.exists(folders[1])  # the other worker's copy is gone
    assert digest(straight[0]) == digest(straight[1])  # both workers end with the same weights
    run_dir = tmp_path / "killed"
    killed = start_workers(small_book, run_dir)
    kill_after_first_epoch(killed, run_dir)
    epoch = state_epoch(run_dir)
    resumed = finish(start_workers(small_book, run_dir))
    for out in resumed:
        assert f"(epoch {epoch} of 4 done)" in out and out.startswith("resuming "), out[:300]
    assert digest(resumed[0]) == digest(resumed[1]) == digest(straight[0])
    worker_copy = [line.split(": ", 1)[1] for line in resumed[1].splitlines() if line.startswith("run folder")][0]
    assert worker_copy != str(run_dir) and not os.path.exists(worker_copy)


def test_a_worker_that_cannot_start_stops_the_others_with_a_message(small_book, tmp_path):
    procs = start_workers(small_book, tmp_path / "run", data=(None, tmp_path / "missing.txt"))
    outputs = []
    try:
        for proc in procs:
            outputs.append(proc.communicate(timeout=300)[1])
    finally:
        for proc in procs:
            proc.kill()
    assert [p.returncode for p in procs] == [2, 2], outputs
    assert outputs[0].strip().endswith("error: another worker could not start this run; see its message")
    assert "missing.txt does not exist" in outputs[1]
    assert not (tmp_path / "run").exists()
