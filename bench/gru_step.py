"""Seconds per training step of charlm_stateful's model with keras.layers.GRU and with tfseq's ProjectedGRU, in one
process, the two interleaved so that a slow spell of the machine falls on both.

    python bench/gru_step.py [--config charlm_stateful] [--rounds 9] [--steps 10]

Both models come from tfseq.models.factory.build_model with the pipeline's model section (stateful, its batch size)
and are compiled with its optimizer (tfseq.trainer.make_optimizer) and XLA, as training does; the Keras one has
each ProjectedGRU replaced by keras.layers.GRU. Each round fits `steps` batches of each, timing every step (this VM
has spells where whole fits run at half speed; the median step sees through them). Prints one JSON object: each
model's median seconds per step over all rounds, the ratio keras / projected, and how far the two models' outputs
differ on the same weights.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="charlm_stateful", help="pipeline whose model and train sections to use")
    parser.add_argument("--rounds", type=int, default=9, help="timed fits of each model (the median is reported)")
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed fit")
    args = parser.parse_args()

    import keras
    import numpy as np

    from tfseq.config import load_pipeline
    from tfseq.models import factory
    from tfseq.trainer import make_optimizer

    cfg = load_pipeline(args.config)
    batch, length, vocab = cfg.train.batch_size, cfg.data.seq_len, 90
    rng = np.random.default_rng(0)
    x = rng.integers(0, vocab, (batch * args.steps, length)).astype(np.int32)
    y = np.roll(x, -1, 1)
    models = {}
    for name, gru in (("keras", keras.layers.GRU), ("projected", factory.CELLS["gru"])):
        cells = dict(factory.CELLS)
        factory.CELLS["gru"] = gru
        try:
            model = factory.build_model(cfg.model, vocab, stateful_batch=batch)
        finally:
            factory.CELLS.update(cells)
        model.compile(optimizer=make_optimizer(cfg.train, 1000),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
        models[name] = model
    models["projected"].set_weights(models["keras"].get_weights())
    difference = float(np.abs(models["keras"].predict(x[:batch], batch_size=batch, verbose=0)
                              - models["projected"].predict(x[:batch], batch_size=batch, verbose=0)).max())
    for model in models.values():  # compile (XLA) outside the timed rounds
        model.fit(x[:2 * batch], y[:2 * batch], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    steps = {name: [] for name in models}

    class StepTimes(keras.callbacks.Callback):
        def __init__(self, into: list):
            super().__init__()
            self.into = into

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.into.append(time.perf_counter() - self.started)

    for round_ in range(args.rounds):
        for name, model in models.items():
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False, callbacks=[StepTimes(steps[name])])
        print(f"round {round_ + 1}: " + ", ".join(
            f"{n} {statistics.median(s[-args.steps:]):.3f} s/step" for n, s in steps.items()), file=sys.stderr,
            flush=True)
    median = {name: statistics.median(s) for name, s in steps.items()}
    print(json.dumps({"config": args.config, "seconds_per_step": {n: round(s, 3) for n, s in median.items()},
                      "keras_over_projected": round(median["keras"] / median["projected"], 2),
                      "max_output_difference": difference, "rounds": args.rounds, "steps": args.steps,
                      "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
