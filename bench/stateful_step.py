"""Seconds per training step of charlm_best's model, stateful or not, with XLA or not, side by side in one process.

    python bench/stateful_step.py [MODE ...]     # modes below (default: jit stateful_jit nojit stateful_nojit)

Each mode builds the model (tfseq.models.factory.build_model, stateful_batch=128 for a stateful mode), compiles it
with Adam and clipping, warms up on two batches, then times 12 steps of 128 x 50 characters. Two more modes add what
training adds, to find where a stateful run's steps go: `stateful_jit_optimizer` compiles with tfseq's optimizer
(tfseq.trainer.make_optimizer with charlm_stateful's train section: the budget-paced cosine and the gradient-norm
log), and `stateful_jit_lanes` also reads the batches from tfseq's lane dataset (tfseq.data.streams.lane_dataset)
with the lane-reset callback. Prints one JSON object: the median of each mode's timed fits and its ratio to the
first mode.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main() -> None:
    import keras
    import numpy as np

    from tfseq.config import ModelConfig, load_pipeline
    from tfseq.data.streams import lane_dataset
    from tfseq.models.factory import build_model
    from tfseq.tasks.lm import StatefulLanes
    from tfseq.trainer import make_optimizer

    modes = sys.argv[1:] or ["jit", "stateful_jit", "nojit", "stateful_nojit"]
    train = load_pipeline("charlm_stateful").train  # its schedule and clipping, for the optimizer modes
    cfg = ModelConfig(cell="lstm", units=512, layers=2, embedding_dim=256, dropout=0.25, recurrent_dropout=0.2,
                      head="next_token")
    x = np.random.default_rng(0).integers(0, 80, (128 * 12, 50)).astype(np.int32)
    y = np.roll(x, -1, 1)
    stream = np.random.default_rng(1).integers(0, 80, 128 * 50 * 14).astype(np.int32)  # 13 batches of lanes
    seconds = {}
    for mode in modes:
        model = build_model(cfg, 80, stateful_batch=128 if mode.startswith("stateful") else 0)
        optimizer = (make_optimizer(train, train.epochs * 156) if mode.startswith("stateful_jit_")
                     else keras.optimizers.Adam(1e-3, global_clipnorm=1.0))
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      jit_compile="nojit" not in mode)
        model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0, shuffle=False)
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            if mode == "stateful_jit_lanes":
                lanes = lane_dataset(stream, 50, 128, 0, 0, 1, 12)
                model.fit(lanes, epochs=1, verbose=0, callbacks=[StatefulLanes(12, 10 ** 6)])
            else:
                model.fit(x, y, batch_size=128, epochs=1, verbose=0, shuffle=False)
            runs.append((time.perf_counter() - started) / 12)
        seconds[mode] = statistics.median(runs)
        print(f"{mode}: {seconds[mode]:.3f} s/step", file=sys.stderr, flush=True)
    first = seconds[modes[0]]
    print(json.dumps({"seconds_per_step": {m: round(s, 3) for m, s in seconds.items()},
                      "ratio_to_first": {m: round(s / first, 2) for m, s in seconds.items()},
                      "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
