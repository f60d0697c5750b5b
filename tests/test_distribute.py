"""tf.distribute on this CPU: MirroredStrategy over 2 logical devices, MultiWorkerMirroredStrategy over loopback."""
import json
import os
import socket
import subprocess
import textwrap

import h5py
import numpy as np

from conftest import PYTHON, ROOT

MIRRORED = textwrap.dedent("""
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from tfseq.config import ModelConfig, TrainConfig
    from tfseq.modeling import build_model
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


def test_two_workers_on_loopback_train_to_the_end_and_agree(small_book, tmp_path):
    workers = [f"127.0.0.1:{p}" for p in free_ports(2)]
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": {"worker": workers},
                                                     "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [PYTHON, "-m", "tfseq.train", "charlm", "--config", "charlm_tiny", "--data", str(small_book),
             "--set", "data.start_marker=", "--set", "train.strategy=multiworker", "--epochs", "2",
             "--set", "train.steps_per_epoch=4", "--run-dir", str(tmp_path / "run")],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)  # bounded: a lost peer must not hang the suite
            assert proc.returncode == 0, err[-3000:]
            outputs.append(out)
    finally:
        for proc in procs:
            proc.kill()
    folders = [line.split(": ", 1)[1] for out in outputs for line in out.splitlines() if line.startswith("run folder")]
    assert folders[0] == str(tmp_path / "run") and folders[1] != folders[0]  # only the chief writes the run
    with h5py.File(f"{folders[0]}/model.weights.h5") as a, h5py.File(f"{folders[1]}/model.weights.h5") as b:
        names = []
        a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
        for name in names:
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
