"""`transformers`' scheduler names through hf_lrsched: options refused by name before anything is built, the
multiplier held at its end level from step `T` on (upstream, the cosines rise again and `polynomial` with `W = T`
divides by zero), and every step before `T` exactly `transformers`' own."""

import pickle

import pytest
import torch
from transformers.optimization import get_scheduler

from hf_lrsched import LRSchedTrainingArguments, get_schedule, schedule_multipliers

from .helpers import make_optimizer

T, W = 20, 4

NAMES = {
    "linear": {},
    "cosine": {},
    "cosine_with_restarts": {"num_cycles": 3},
    "polynomial": {"power": 2.0, "lr_end": 1e-3},
    "constant_with_warmup": {},
    "inverse_sqrt": {"timescale": 8},
    "cosine_with_min_lr": {"min_lr_rate": 0.1},
    "cosine_warmup_with_min_lr": {"min_lr_rate": 0.1},
    "warmup_stable_decay": {"num_decay_steps": 6, "min_lr_ratio": 0.05},
}


def upstream(name, num_warmup_steps, num_training_steps, kwargs):
    """`transformers`' own multipliers at steps 0..T - 1."""
    scheduler = get_scheduler(name, make_optimizer(lr=1.0), num_warmup_steps, num_training_steps, kwargs)
    return [scheduler.lr_lambdas[0](t) for t in range(num_training_steps)]


@pytest.mark.parametrize("name", NAMES)
def test_every_step_before_t_is_transformers_own_and_the_end_level_holds(name):
    ours = schedule_multipliers(name, W, T, num_steps=3 * T, **NAMES[name])
    assert ours[:T] == upstream(name, W, T, NAMES[name])  # bit for bit
    assert ours[T:] == [ours[T]] * (2 * T + 1)  # lambda(t) = lambda(T) for t >= T


@pytest.mark.parametrize(
    ("name", "end"),
    [("cosine", 0.0), ("cosine_with_min_lr", 0.1), ("cosine_warmup_with_min_lr", 0.1)],
)
def test_the_cosines_do_not_rise_again_after_t(name, end):
    # Upstream, cosine at 2T is back at its peak: progress 2 is a whole period.
    assert get_scheduler(name, make_optimizer(lr=1.0), W, T, NAMES[name]).lr_lambdas[0](2 * T - W) > 0.9
    curve = schedule_multipliers(name, W, T, num_steps=3 * T, **NAMES[name])
    assert curve[T] == pytest.approx(end, abs=1e-15) and max(curve[T:]) == curve[T]


def test_polynomial_with_all_steps_in_warmup_ends_at_lr_end():
    # Upstream divides by zero at step T (its decay has T - W = 0 steps).
    with pytest.raises(ZeroDivisionError):
        get_scheduler("polynomial", make_optimizer(lr=1.0), T, T, {}).lr_lambdas[0](T)
    curve = schedule_multipliers("polynomial", T, T, num_steps=T + 5, lr_end=0.01)
    assert curve[:T] == [t / T for t in range(T)]
    assert curve[T:] == [0.01] * 6


@pytest.mark.parametrize(
    ("name", "num_warmup_steps", "kwargs", "exception", "message"),
    [
        ("inverse_sqrt", W, {"timescale": 0}, ValueError, "`timescale` must be in (0, inf), got 0"),
        ("inverse_sqrt", W, {"timescale": -5}, ValueError, "`timescale` must be in (0, inf), got -5"),
        ("linear", T + 5, {}, ValueError, "`num_warmup_steps` must be an integer in [0, 20]"),
        ("constant_with_warmup", T + 1, {}, ValueError, "`num_warmup_steps` must be an integer in [0, 20]"),
        ("cosine_with_restarts", W, {"num_cycles": 0}, ValueError, "`num_cycles` must be an integer in [1, 16]"),
        ("cosine_with_restarts", W, {"num_cycles": 1e9}, ValueError, "`num_cycles` must be an integer in [1, 16]"),
        ("cosine_with_restarts", W, {"num_cycles": 2.5}, ValueError, "`num_cycles` must be an integer in [1, 16]"),
        ("cosine", W, {"num_cycles": 0}, ValueError, "`num_cycles` must be in (0, inf), got 0"),
        ("polynomial", W, {"power": -1}, ValueError, "`power` must be in (0, inf), got -1"),
        ("polynomial", W, {"power": float("nan")}, ValueError, "`power` must be a finite number"),
        ("polynomial", W, {"lr_end": 2.0}, ValueError, "`lr_end` must be below the initial learning rate 1.0"),
        ("cosine_with_min_lr", W, {"min_lr_rate": 1.5}, ValueError, "`min_lr_rate` must be in [0, 1], got 1.5"),
        ("warmup_stable_decay", W, {}, ValueError, "needs `num_decay_steps`"),
        ("warmup_stable_decay", W, {"num_decay_steps": 17}, ValueError, "= 21 exceed num_training_steps 20"),
        ("warmup_stable_decay", W, {"num_decay_steps": -1}, ValueError, "`num_decay_steps` must be an integer >= 0"),
    ],
)
def test_options_refused_by_name(name, num_warmup_steps, kwargs, exception, message):
    with pytest.raises(exception) as caught:
        get_schedule(name, make_optimizer(lr=1.0), num_warmup_steps, T, **kwargs)
    assert message in str(caught.value)


def test_refused_when_the_arguments_are_parsed(tmp_path):
    # Upstream's inverse_sqrt divides by zero when the scheduler is built: here, the option is named at parse time.
    with pytest.raises(ValueError, match=r"`timescale` must be in \(0, inf\), got 0"):
        LRSchedTrainingArguments(
            output_dir=str(tmp_path), lr_schedule="inverse_sqrt", lr_schedule_kwargs={"timescale": 0}
        )
    with pytest.raises(ValueError, match=r"`num_warmup_steps` must be an integer in \[0, 10\]"):
        LRSchedTrainingArguments(output_dir=str(tmp_path), lr_schedule="linear", max_steps=10, warmup_steps=12)
    with pytest.raises(ValueError, match=r"`power` must be in \(0, inf\), got -1"):
        LRSchedTrainingArguments(
            output_dir=str(tmp_path), lr_schedule="polynomial", lr_schedule_kwargs={"power": -1}, learning_rate=1e-3
        )


def test_a_held_scheduler_pickles_and_resumes():
    optimizer = make_optimizer(lr=1.0)
    scheduler = get_schedule("cosine", optimizer, W, T)
    for _ in range(7):
        optimizer.step()
        scheduler.step()
    state = pickle.loads(pickle.dumps(scheduler.state_dict()))
    other = make_optimizer(lr=1.0)
    other.load_state_dict(optimizer.state_dict())
    resumed = get_schedule("cosine", other, W, T)
    resumed.load_state_dict(state)
    assert resumed.get_last_lr() == scheduler.get_last_lr()
    pickle.dumps(resumed.lr_lambdas)  # picklable: partials of module-level functions
    assert isinstance(resumed, torch.optim.lr_scheduler.LambdaLR)
