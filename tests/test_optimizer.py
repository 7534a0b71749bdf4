"""The optimiser's learning-rate schedules against a direct transcription, and their bad values."""

import math

import jax
import jax.numpy as jnp
import pytest

from ccjax.config import get_base_config
from ccjax.errors import UserError
from ccjax.train.state import learning_rate_schedule, make_optimizer


def config(schedule: str, warmup: int = 0, epochs: int = 10, lr: float = 2e-3):
    c = get_base_config()
    c.lr_schedule, c.warmup_epochs, c.num_epochs, c.learning_rate = schedule, warmup, epochs, lr
    return c


def expected_lr(step: int, lr: float, warmup: int, total: int, schedule: str) -> float:
    if step < warmup:
        return lr * step / warmup
    if schedule == "constant":
        return lr
    return 0.5 * lr * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))


@pytest.mark.parametrize("schedule,warmup", [("constant", 0), ("constant", 2), ("cosine", 0), ("cosine", 3)])
def test_schedule_matches_its_formula(schedule, warmup):
    spe = 7
    c = config(schedule, warmup)
    f = learning_rate_schedule(c, spe)
    total = c.num_epochs * spe
    for step in range(total + 1):
        got = float(f(step)) if callable(f) else f
        assert got == pytest.approx(expected_lr(step, c.learning_rate, warmup * spe, total, schedule), abs=1e-9)
    if schedule == "cosine":
        assert float(f(total)) == pytest.approx(0.0, abs=1e-12)


def test_adam_follows_the_schedule():
    """One Adam step from zero moments moves each parameter by lr(step) (sign of the gradient)."""
    c = config("cosine", warmup=0, epochs=4, lr=0.1)
    tx = make_optimizer(c, steps_per_epoch=2)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    f = learning_rate_schedule(c, 2)
    for step in range(3):
        updates, state = tx.update({"w": jnp.ones(3)}, state, params)
        assert float(-updates["w"][0]) == pytest.approx(float(f(step)), rel=1e-4)


def test_schedule_length_does_not_change_the_state_structure():
    """Inference restores a checkpoint without knowing the run's steps per epoch."""
    params = {"w": jnp.zeros(3)}
    c = config("cosine", warmup=1)
    a = jax.tree.structure(make_optimizer(c, 7).init(params))
    b = jax.tree.structure(make_optimizer(c, 1).init(params))
    assert a == b


@pytest.mark.parametrize("field,value,words", [
    ("lr_schedule", "linear", "to one of constant, cosine"),
    ("warmup_epochs", -1, "warmup_epochs=-1 must be >= 0"),
])
def test_bad_schedule_values_are_user_errors(field, value, words):
    from ccjax.config import validate

    c = config("constant")
    setattr(c, field, value)
    with pytest.raises(UserError, match=words):
        validate(c)


def test_a_run_shorter_than_its_warm_up_warms_up_over_the_whole_run():
    c = config("constant", warmup=10, epochs=2, lr=1.0)
    f = learning_rate_schedule(c, 5)
    assert [float(f(i)) for i in (0, 5, 10)] == pytest.approx([0.0, 0.5, 1.0])
