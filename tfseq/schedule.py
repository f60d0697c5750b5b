"""The learning-rate schedule: linear warm-up, then a cosine decay that ends with the planned steps or, with a time
budget, with the last epoch that fits in it, whichever comes first.

A cosine sized in steps ends its decay only if every planned epoch runs; on a machine twice as slow as the one a
recipe was tuned on, the time budget stops the run half-way down the cosine, at a learning rate far above its floor.
With `train.max_minutes` set, each epoch's end re-plans the rest of the decay from the clock: the epochs that still
fit (each timed as the last, as the budget's stop rule times them) or the planned ones, whichever are fewer, share
what is left of it. The plan is three numbers (a step, the progress there, the rate per step) written into state.json
with the checkpoint and set again at each epoch's start, so a resumed run follows exactly the learning rates the
uninterrupted one would have, and every worker of a multi-worker run the chief's.
"""
from __future__ import annotations

import math

import keras


@keras.saving.register_keras_serializable(package="tfseq")
class BudgetCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Warm-up then cosine decay, with progress = clip(start_progress + (step - start_step) * rate, 0, 1).

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
        self.plan = _Plan(self.warmup_steps, 0.0, 1.0 / self.decay_steps)

    @property
    def decay_steps(self) -> int:
        return max(1, self.total_steps - self.warmup_steps)

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        plan = self.plan
        progress = keras.ops.clip(plan.start_progress + (step - plan.start_step) * plan.rate, 0.0, 1.0)
        cosine = 0.5 * (1.0 + keras.ops.cos(math.pi * progress))
        decayed = self.peak * ((1.0 - self.min_ratio) * cosine + self.min_ratio)
        if not self.warmup_steps:
            return decayed
        return keras.ops.where(step < self.warmup_steps, self.peak * step / self.warmup_steps, decayed)

    def progress_at(self, step: int) -> float:
        """The decay's progress (0-1) at `step` under the current plan."""
        start_step, start_progress, rate = self.plan.values()
        return min(1.0, max(0.0, start_progress + (step - start_step) * rate))

    def set_plan(self, start_step: float, start_progress: float, rate: float) -> None:
        """Sets the plan that the next steps follow (see `replan`)."""
        for var, value in zip(self.plan.variables(), (start_step, start_progress, rate)):
            var.assign(value)

    def get_config(self) -> dict:
        return {"peak": self.peak, "min_ratio": self.min_ratio, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}


class _Plan:
    """The (start step, progress there, rate) of a BudgetCosine, as variables that a compiled step reads every time.
    Anchored at a step, not at step 0: float32 keeps the progress exact to about 1e-7 however steep the rate."""

    def __init__(self, start_step: float, start_progress: float, rate: float):
        def variable(value, name):
            return keras.Variable(value, dtype="float32", trainable=False, name=name)

        self.start_step = variable(start_step, "lr_start_step")
        self.start_progress = variable(start_progress, "lr_start_progress")
        self.rate = variable(rate, "lr_rate")

    def variables(self) -> tuple:
        return self.start_step, self.start_progress, self.rate

    def values(self) -> tuple[float, float, float]:
        return tuple(float(keras.ops.convert_to_numpy(v)) for v in self.variables())


def replan(schedule: BudgetCosine, step: int, seconds: float, epoch_seconds: float, epoch_steps: int,
           budget_seconds: float) -> tuple[float, float, float]:
    """The plan for the next epochs of a run with a time budget, from the clock at the end of this one.

    The budget stops a run before an epoch that would cross it (each timed as the last), so the epochs still to
    run are those that fit, or those planned, whichever are fewer; the rest of the decay is spread over their steps.

    Args:
        schedule: the run's schedule, holding the plan this epoch followed.
        step: steps taken so far (the optimizer's iterations).
        seconds: training seconds used so far (of the budget).
        epoch_seconds: seconds the epoch just finished took.
        epoch_steps: steps that epoch took.
        budget_seconds: the time budget (train.max_minutes * 60).

    Returns:
        (the step the plan starts from, the progress there, the rate per step): progress never goes back, and
        reaches 1 at the end of the last epoch that fits.
    """
    # The decay starts after the warm-up: a plan made during it is anchored at its end.
    start = max(step, schedule.warmup_steps)
    done = max(schedule.progress_at(start), (start - schedule.warmup_steps) / schedule.decay_steps)
    fit = math.floor(max(0.0, budget_seconds - seconds) / epoch_seconds) if epoch_seconds > 0 else math.inf
    steps_left = min(schedule.warmup_steps + schedule.decay_steps, step + fit * epoch_steps) - start
    rate = (1.0 - done) / max(1, steps_left)
    return float(start), done, rate
