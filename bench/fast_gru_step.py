"""Seconds per training step of charlm_stateful's model with keras.layers.GRU (model.fast_gru = false) against
tfseq.models.fast_gru.FastGRU (model.fast_gru = true), side by side in one process.

    python bench/fast_gru_step.py [--rounds R]

Keras' GRU with recurrent dropout multiplies each step's input by the input kernel inside the time loop, one matmul
per gate, and the state by the recurrent kernel behind one mask per gate; FastGRU makes the input product one matmul
over all batch_size x seq_len positions before the loop and leaves one h @ U per step. Both models are
tfseq.models.factory.build_model of pipelines/charlm_stateful.toml's model section (fast_gru set each way), stateful
over its batch_size lanes, compiled with tfseq.trainer.make_optimizer of its train section and XLA, fed windows of
its seq_len. After a warm-up, R rounds alternate one fit of 10 steps of each, so a slow spell of the machine falls on
both. Prints one JSON object: the largest difference between the two models' outputs given the same weights (at
inference, where the dropout masks do not differ), each model's weight count, every fit's seconds per step, each
model's median and FastGRU's ratio to Keras' GRU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

STEPS, VOCAB = 10, 80  # timed steps per fit; symbols of the next-character head


def build(kind, pipeline):
    """Returns the compiled model of `pipeline` (a tfseq config) with model.fast_gru false ("keras") or true
    ("fast_gru")."""
    import keras

    from tfseq.models.factory import build_model
    from tfseq.trainer import make_optimizer

    cfg, train = pipeline.model, pipeline.train
    cfg.fast_gru = kind == "fast_gru"
    model = build_model(cfg, VOCAB, stateful_batch=train.batch_size)
    # 5,000 steps: any schedule length; it does not change what a step costs
    model.compile(optimizer=make_optimizer(train, 5000), jit_compile=True,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="alternating timed fits of each model (default 7)")
    args = parser.parse_args()
    import numpy as np

    from tfseq.config import load_pipeline

    pipeline = load_pipeline("charlm_stateful")
    batch = pipeline.train.batch_size
    x = np.random.default_rng(0).integers(0, VOCAB, (batch * STEPS, pipeline.data.seq_len)).astype(np.int32)
    y = np.roll(x, -1, 1)
    models = {kind: build(kind, load_pipeline("charlm_stateful")) for kind in ("keras", "fast_gru")}
    models["fast_gru"].set_weights(models["keras"].get_weights())
    outputs = {kind: np.asarray(model(x[:batch])) for kind, model in models.items()}
    difference = float(np.max(np.abs(outputs["fast_gru"] - outputs["keras"])))
    for model in models.values():
        model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, verbose=0, shuffle=False)  # compile
    fits = {kind: [] for kind in models}
    for _ in range(args.rounds):
        for kind, model in models.items():
            started = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
            fits[kind].append(round((time.perf_counter() - started) / STEPS, 3))
        print(json.dumps(fits), file=sys.stderr, flush=True)
    medians = {kind: statistics.median(seconds) for kind, seconds in fits.items()}
    print(json.dumps({"max_abs_difference_from_keras_gru": difference,
                      "weights": {kind: model.count_params() for kind, model in models.items()},
                      "seconds_per_step": fits, "median": medians,
                      "fast_gru_over_keras": round(medians["fast_gru"] / medians["keras"], 3),
                      "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
