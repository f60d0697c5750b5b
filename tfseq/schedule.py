"""The learning-rate schedule: linear warm-up, then a cosine decay whose progress follows the steps taken or, with a
time budget, the training time spent, whichever is further on.

A cosine sized in steps ends its decay only if every planned epoch runs; on a machine twice as slow as the one a
recipe was tuned on, the time budget stops the run half-way down the cosine, at a learning rate far above its floor.
With `train.max_minutes` set, each epoch's end re-plans the rest of the decay from the clock: progress so far is the
larger of the steps' share of the run and the time's share of the budget, and each step of the next epoch adds the
larger of one step's share and the last epoch's seconds per step over the budget. The plan is two numbers (offset,
rate) written into state.json with the checkpoint and set again at each epoch's start, so a resumed run follows
exactly the learning rates the uninterrupted one would have, and every worker of a multi-worker run the chief's.
"""
from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="tfseq")
class BudgetCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Warm-up then cosine decay, with progress = clip(offset + (step - warmup_steps) * rate, 0, 1).

    Args:
        peak: the learning rate at the end of the warm-up.
        min_ratio: the floor, as a fraction of the peak, reached at progress 1; 1.0 = constant after the warm-up.
        warmup_steps: steps of the linear warm-up from 0 to the peak.
        total_steps: steps of the whole run; until re-planned, progress is (step - warmup_steps) over the rest.
    """

    def __init__(self, peak: float, min_ratio: float = 0.0, warmup_steps: int = 0, total_steps: int = 1):
        self.peak, self.min_ratio = float(peak), float(min_ratio)
        self.warmup_steps, self.total_steps = int(warmup_steps), int(total_steps)
        # Kept on a plain object, out of the optimizer's variables: checkpoints keep the layout they had.
        self.plan = _Plan(0.0, 1.0 / self.decay_steps)

    @property
    def decay_steps(self) -> int:
        return max(1, self.total_steps - self.warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        progress = keras.ops.clip(self.plan.offset + (step - self.warmup_steps) * self.plan.rate, 0.0, 1.0)
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        decayed = self.peak * ((1.0 - self.min_ratio) * cosine + self.min_ratio)
        if not self.warmup_steps:
            return decayed
        return keras.ops.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, decayed)

    def progress_at(self, step: int) -> float:
        """The decay's progress (0-1) at `step` under the current plan."""
        offset, rate = self.plan.values()
        return min(1.0, max(0.0, offset + (step - self.warmup_steps) * rate))

    def set_plan(self, offset: float, rate: float) -> None:
        """Sets the plan that the next steps follow (see `replan`)."""
        self.plan.offset.assign(offset)
        self.plan.rate.assign(rate)

    def get_config(self) -> dict:
        return {"peak": self.peak, "min_ratio": self.min_ratio, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


class _Plan:
    """The (offset, rate) pair of a BudgetCosine, as variables that a compiled step reads every time."""

    def __init__(self, offset: float, rate: float):
        self.offset = keras.Variable(offset, dtype="float32", trainable=False, name="lr_offset")
        self.rate = keras.Variable(rate, dtype="float32", trainable=False, name="lr_rate")

    def values(self) -> tuple[float, float]:
        return (float(keras.ops.convert_to_numpy(self.offset)), float(keras.ops.convert_to_numpy(self.rate)))


def replan(schedule: BudgetCosine, step: int, seconds: float, epoch_seconds: float, epoch_steps: int,
           budget_seconds: float) -> tuple[float, float]:
    """The plan for the next epoch of a run with a time budget, from the clock at the end of this one.

    Args:
        schedule: the run's schedule, holding the plan this epoch followed.
        step: steps taken so far (the optimizer's iterations).
        seconds: training seconds used so far (of the budget).
        epoch_seconds: seconds the epoch just finished took.
        epoch_steps: steps that epoch took.
        budget_seconds: the time budget (train.max_minutes * 60).

    Returns:
        (offset, rate): progress never goes back, and reaches 1 when the steps or the budget run out, whichever
        comes first.
    """
    done = max(schedule.progress_at(step), (step - schedule.warmup_steps) / schedule.decay_steps,
               seconds / budget_seconds)
    rate = max(1.0 / schedule.decay_steps, epoch_seconds / max(1, epoch_steps) / budget_seconds)
    return done - (step - schedule.warmup_steps) * rate, rate
