"""Seconds per training step of charlm_stateful's model: as the factory builds it (keras.layers.GRU) against the same
model with each GRU layer replaced by a prototype that multiplies every step's input by the input kernel in one
matmul before the time loop, side by side in one process.

    python bench/gru_projection_step.py [--rounds R]

Keras' GRU cell multiplies its input by the input kernel inside the time loop: seq_len matmuls of batch_size rows per
window and layer. The prototype (not in the factory; a lead for issue 15's "faster step") puts that product outside
the loop as one Dense layer over all batch_size x seq_len positions and leaves only h @ U in the loop; the gates, the
reset-after form, the weight layout and the recurrent dropout mask (one per window) are Keras' GRU's. Both models are
tfseq.models.factory.build_model of pipelines/charlm_stateful.toml's model section, stateful over its batch_size lanes
(the prototype's copy made by keras.models.clone_model, every other layer unchanged), compiled with
tfseq.trainer.make_optimizer of its train section and XLA, fed windows of its seq_len. After a warm-up, R rounds
alternate one fit of 10 steps of each, so a slow spell of the machine falls on both. Prints one JSON object: the
largest difference between the two cells given the same weights (largest_difference), each model's weight count
(equal: the same model), every fit's seconds per step, each model's median and the prototype's ratio to the
factory's model.
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


def projected_gru_cell_class():
    """Returns the prototype's cell class (built here so that Keras is imported after argument parsing)."""
    import keras
    from keras import ops
    from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell  # Keras' one-mask-per-sequence helper

    class ProjectedGRUCell(keras.layers.Layer, DropoutRNNCell):
        """A reset-after GRU step whose input is x @ W + b already: only h @ U + b_h is computed per step."""

        def __init__(self, units, recurrent_dropout=0.0, **kwargs):
            super().__init__(**kwargs)
            self.units, self.state_size, self.output_size = units, units, units
            self.dropout, self.recurrent_dropout = 0.0, recurrent_dropout
            self.seed_generator = keras.random.SeedGenerator(1)

        def build(self, input_shape):
            self.recurrent_kernel = self.add_weight(shape=(self.units, 3 * self.units), initializer="orthogonal")
            self.recurrent_bias = self.add_weight(shape=(3 * self.units,), initializer="zeros")

        def call(self, projected, states, training=False):
            h = states[0] if isinstance(states, (list, tuple)) else states
            dropped = h * self.get_recurrent_dropout_mask(h) if training and self.recurrent_dropout else h
            recurrent = ops.matmul(dropped, self.recurrent_kernel) + self.recurrent_bias
            u = self.units
            z = ops.sigmoid(projected[:, :u] + recurrent[:, :u])
            r = ops.sigmoid(projected[:, u:2 * u] + recurrent[:, u:2 * u])
            candidate = ops.tanh(projected[:, 2 * u:] + r * recurrent[:, 2 * u:])
            h = z * h + (1 - z) * candidate
            return h, [h]

    return ProjectedGRUCell


def projected_gru_class():
    """Returns a layer class standing in for one keras.layers.GRU: Dense(3 x units), then the prototype cell's RNN."""
    import keras

    cell_class = projected_gru_cell_class()

    class ProjectedGRU(keras.layers.Layer):
        def __init__(self, units, recurrent_dropout, stateful, return_sequences, **kwargs):
            super().__init__(**kwargs)
            self.projection = keras.layers.Dense(3 * units)
            self.rnn = keras.layers.RNN(cell_class(units, recurrent_dropout), stateful=stateful,
                                        return_sequences=return_sequences)

        def build(self, input_shape):
            self.projection.build(input_shape)
            self.rnn.build(tuple(input_shape[:-1]) + (self.projection.units,))

        def call(self, x, mask=None, training=False):
            return self.rnn(self.projection(x), mask=mask, training=training)

    return ProjectedGRU


def build(kind, pipeline):
    """Returns the compiled model of `pipeline` (a tfseq config), `kind` "keras" (as the factory builds it) or
    "projected" (each GRU layer replaced by the prototype)."""
    import keras

    from tfseq.models.factory import build_model
    from tfseq.trainer import make_optimizer

    cfg, train = pipeline.model, pipeline.train
    cfg.head = "next_token"
    model = build_model(cfg, VOCAB, stateful_batch=train.batch_size)
    if kind == "projected":
        layer_class = projected_gru_class()

        def replace(layer):
            if not isinstance(layer, keras.layers.GRU):
                return layer.__class__.from_config(layer.get_config())
            return layer_class(layer.units, layer.cell.recurrent_dropout, layer.stateful, layer.return_sequences,
                               name=layer.name)

        model = keras.models.clone_model(model, clone_function=replace)
    # 5,000 steps: any schedule length; it does not change what a step costs
    model.compile(optimizer=make_optimizer(train, 5000), jit_compile=True,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def largest_difference() -> float:
    """Returns the largest |difference| between keras.layers.GRU and the prototype given the GRU's weights (random
    biases so that both halves are checked), on a 4 x 7 x 5 batch without dropout."""
    import keras
    import numpy as np

    x = np.random.default_rng(0).normal(size=(4, 7, 5)).astype("float32")
    gru = keras.layers.GRU(6, return_sequences=True)
    gru(x)
    kernel, recurrent_kernel, bias = gru.get_weights()
    bias = np.random.default_rng(1).normal(size=bias.shape).astype("float32")
    gru.set_weights([kernel, recurrent_kernel, bias])
    dense, rnn = keras.layers.Dense(18), keras.layers.RNN(projected_gru_cell_class()(6), return_sequences=True)
    rnn(dense(x))
    dense.set_weights([kernel, bias[0]])
    rnn.set_weights([recurrent_kernel, bias[1]])
    return float(np.max(np.abs(np.asarray(rnn(dense(x))) - np.asarray(gru(x)))))


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
    models = {kind: build(kind, load_pipeline("charlm_stateful")) for kind in ("keras", "projected")}
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
    print(json.dumps({"max_abs_difference_from_keras_gru": largest_difference(),
                      "weights": {kind: model.count_params() for kind, model in models.items()},
                      "seconds_per_step": fits, "median": medians,
                      "projected_over_keras": round(medians["projected"] / medians["keras"], 3),
                      "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
