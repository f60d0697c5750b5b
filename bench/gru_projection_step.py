"""Seconds per training step of charlm_stateful's 2 x GRU 512: Keras' GRU against a prototype that multiplies every
step's input by the input kernel in one matmul before the loop, side by side in one process.

    python bench/gru_projection_step.py [--rounds R]

Keras' GRU cell multiplies its input by the input kernel inside the time loop: 50 matmuls of 64 rows per window
and layer. The prototype (not in the factory; a lead for issue 15's "faster step") puts that product outside the
loop as one Dense layer over all 64 x 50 positions and leaves only h @ U in the loop; the gates, the reset-after
form, the weight layout and the dropout masks (input mask shared by all steps, one recurrent mask per window) are
Keras' GRU's. Both: embedding 256, dropout 0.25, recurrent dropout 0.2, a next-character head over 80 symbols,
AdamW with clipping, XLA, windows of 64 x 50. After a warm-up, R rounds alternate one fit of 10 steps of each, so
a slow spell of the machine falls on both. Prints one JSON object: the largest difference between the two given the
same weights (largest_difference), every fit's seconds per step, each model's median and the prototype's ratio to
Keras' GRU.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH, WINDOW, STEPS, VOCAB, UNITS = 64, 50, 10, 80, 512


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


def build(kind):
    """Returns the compiled 2-layer model, `kind` "keras" (keras.layers.GRU) or "projected" (the prototype)."""
    import keras

    cell_class = projected_gru_cell_class()
    inputs = keras.Input((WINDOW,), batch_size=BATCH, dtype="int32")
    h = keras.layers.Embedding(VOCAB, 256)(inputs)
    for _ in range(2):
        if kind == "keras":
            h = keras.layers.GRU(UNITS, return_sequences=True, dropout=0.25, recurrent_dropout=0.2)(h)
        else:
            h = keras.layers.Dropout(0.25, noise_shape=(None, 1, h.shape[-1]))(h)
            h = keras.layers.Dense(3 * UNITS)(h)
            h = keras.layers.RNN(cell_class(UNITS, recurrent_dropout=0.2), return_sequences=True)(h)
    model = keras.Model(inputs, keras.layers.Dense(VOCAB)(h))
    model.compile(optimizer=keras.optimizers.AdamW(2e-3, weight_decay=0.3, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
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

    x = np.random.default_rng(0).integers(0, VOCAB, (BATCH * STEPS, WINDOW)).astype(np.int32)
    y = np.roll(x, -1, 1)
    models = {kind: build(kind) for kind in ("keras", "projected")}
    for model in models.values():
        model.fit(x[:2 * BATCH], y[:2 * BATCH], batch_size=BATCH, verbose=0, shuffle=False)  # compile
    fits = {kind: [] for kind in models}
    for _ in range(args.rounds):
        for kind, model in models.items():
            started = time.perf_counter()
            model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
            fits[kind].append(round((time.perf_counter() - started) / STEPS, 3))
        print(json.dumps(fits), file=sys.stderr, flush=True)
    medians = {kind: statistics.median(seconds) for kind, seconds in fits.items()}
    print(json.dumps({"max_abs_difference_from_keras_gru": largest_difference(), "seconds_per_step": fits, "median": medians,
                      "projected_over_keras": round(medians["projected"] / medians["keras"], 3),
                      "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count()}, indent=1))


if __name__ == "__main__":
    main()
