"""Weight averaging (train.ema): the exponential moving average of the weights that the optimizer keeps step by step
(Keras' `use_ema`, with a warm-up: WarmedAverage), swapped into the model to validate it and kept as the run's final
weights (Keras' `finalize_variable_values`, which a loss-scaling optimizer passes to its inner one).

The average lives in the optimizer's variables, so a checkpoint holds it and a resumed run goes on with it. Swapping
in copies the trained weights out and back exactly (Keras' SwapEMAWeights swaps by adding and subtracting, which
does not give the same bits back, and a resumed run must end with the same weights as an uninterrupted one).
"""
from __future__ import annotations

from contextlib import contextmanager

import keras


class WarmedAverage:
    """Mixin for a Keras optimizer: at step t (from 0) the average moves toward the weights with the decay
    min(ema_momentum, t / (t + 9)), the warm-up of TensorFlow's ExponentialMovingAverage (num_updates): the first
    step copies the weights, and until the decay reaches ema_momentum the average covers about the last tenth of the
    steps. Keras' own constant decay keeps the starting weights in the average for thousands of steps (with 0.999,
    a third of it after 1,000): a stateful char-LM's average scored 1.546 nats/char after 5 epochs where its weights
    scored 1.246 (bench/RESULTS.md, 2026-12-05).
    """

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        t = keras.ops.cast(self.iterations, "float32")
        decay = keras.ops.minimum(self.ema_momentum, t / (t + 9.0))
        for var, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                d = keras.ops.cast(decay, var.dtype)
                average.assign(d * average + (1 - d) * var)


def _averaging_optimizer(model: keras.Model):
    """The optimizer that keeps the average (the inner one under mixed precision's loss scaling), or None."""
    optimizer = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    return optimizer if getattr(optimizer, "use_ema", False) else None


def _pairs(model: keras.Model) -> list:
    """(trained variable, its average) pairs; [] when the run keeps no average or before the optimizer is built."""
    optimizer = _averaging_optimizer(model)
    averages = getattr(optimizer, "_model_variables_moving_average", None) if optimizer else None
    if not averages:
        return []
    return [(var, avg) for var, avg in zip(optimizer._trainable_variables, averages) if avg is not None]


def swap_in(model: keras.Model) -> list | None:
    """Puts the averaged weights into the model.

    Returns:
        The trained weights it replaced, for `restore`; None when the run keeps no average (nothing changed).
    """
    pairs = _pairs(model)
    if not pairs:
        return None
    trained = [keras.ops.convert_to_numpy(var.value).copy() for var, _ in pairs]
    for var, avg in pairs:
        var.assign(avg.value)
    return trained


def restore(model: keras.Model, trained: list | None) -> None:
    """Puts back the trained weights that `swap_in` returned (bit for bit)."""
    if trained is None:
        return
    for (var, _), value in zip(_pairs(model), trained):
        var.assign(value)


@contextmanager
def averaged(model: keras.Model):
    """Within the block the model holds its averaged weights (its own when the run keeps no average)."""
    trained = swap_in(model)
    try:
        yield model
    finally:
        restore(model, trained)

