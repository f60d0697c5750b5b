import math

import keras
import numpy as np
import pytest

from tfseq.schedule import BudgetCosine, replan


def rates(schedule, steps):
    return np.array([float(keras.ops.convert_to_numpy(schedule(s))) for s in steps])


@pytest.mark.parametrize("warmup", [0, 10])
def test_without_a_plan_it_is_keras_cosine_decay_with_warmup(warmup):
    ours = BudgetCosine(2e-3, 0.05, warmup, 110)
    theirs = keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else 2e-3, 110 - warmup, alpha=0.05, warmup_target=2e-3 if warmup else None,
        warmup_steps=warmup)
    steps = range(0, 130, 3)
    np.testing.assert_allclose(rates(ours, steps), rates(theirs, steps), rtol=1e-5, atol=1e-9)


def test_constant_after_the_warmup_when_the_floor_is_the_peak():
    np.testing.assert_allclose(rates(BudgetCosine(1e-3, 1.0, 4, 50), [0, 2, 4, 30, 80]),
                               [0.0, 5e-4, 1e-3, 1e-3, 1e-3], rtol=1e-6)


def cosine(progress):
    return 0.5 * (1 + math.cos(math.pi * progress))


def test_a_budget_slower_than_the_steps_ends_the_decay_with_the_last_epoch_that_fits():
    schedule = BudgetCosine(1.0, 0.0, 0, 1000)
    # The first epoch: 100 steps in 60 s of a 300 s budget. Four more such epochs fit (the fifth would cross it), so
    # the 90% of the decay still to go is spread over their 400 steps: progress reaches 1 at step 500.
    plan = replan(schedule, 100, 60.0, 60.0, 100, 300.0)
    assert plan == pytest.approx((100, 0.1, 0.9 / 400))
    schedule.set_plan(*plan)
    assert schedule.progress_at(100) == pytest.approx(0.1)
    assert schedule.progress_at(500) == pytest.approx(1.0)
    np.testing.assert_allclose(rates(schedule, [100, 300, 500, 700]), [cosine(0.1), cosine(0.55), 0.0, 0.0],
                               atol=1e-6)


def test_a_machine_that_speeds_up_goes_back_to_the_steps_and_never_sends_the_rate_up():
    schedule = BudgetCosine(1.0, 0.0, 0, 1000)
    schedule.set_plan(*replan(schedule, 100, 60.0, 60.0, 100, 300.0))  # 1 at step 500
    # The next 100 steps took 6 s: every planned epoch now fits, so the rest of the decay (from where the plan had
    # got to, 32.5%) ends with the planned steps.
    schedule.set_plan(*replan(schedule, 200, 66.0, 6.0, 100, 300.0))
    assert schedule.progress_at(200) == pytest.approx(0.325)
    assert schedule.progress_at(1000) == pytest.approx(1.0)


def test_no_epoch_left_in_the_budget_ends_the_decay_at_once():
    schedule = BudgetCosine(1.0, 0.0, 0, 1000)
    schedule.set_plan(*replan(schedule, 100, 250.0, 60.0, 100, 300.0))
    assert schedule.progress_at(101) == pytest.approx(1.0)


def test_a_plan_made_during_the_warmup_starts_the_decay_when_the_warmup_ends():
    schedule = BudgetCosine(1.0, 0.0, 100, 1100)
    # 50 steps in 30 s of a 300 s budget: 9 more such epochs fit, ending at step 500; the warm-up ends at step 100,
    # so the whole decay is spread over steps 100-500.
    assert replan(schedule, 50, 30.0, 30.0, 50, 300.0) == pytest.approx((100, 0.0, 1 / 400))
    schedule.set_plan(*replan(schedule, 50, 30.0, 30.0, 50, 300.0))
    np.testing.assert_allclose(rates(schedule, [50, 99, 100, 300, 500]), [0.5, 0.99, 1.0, 0.5, 0.0], atol=1e-6)


def test_a_fast_machine_follows_the_steps():
    schedule = BudgetCosine(1.0, 0.1, 5, 105)
    assert replan(schedule, 25, 1.0, 1.0, 25, 3600.0) == pytest.approx((25, 0.2, 0.01))


def test_the_plan_is_no_optimizer_variable_and_the_config_round_trips():
    schedule = BudgetCosine(3e-3, 0.05, 50, 800)
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build([keras.Variable(np.zeros(3, "float32"))])
    assert not [v for v in optimizer.variables if "lr_" in v.name]
    again = keras.optimizers.Adam.from_config(optimizer.get_config())
    assert again._learning_rate.get_config() == schedule.get_config()
