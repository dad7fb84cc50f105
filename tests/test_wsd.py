"""`wsd`: the contract's formula, equality with transformers' warmup_stable_decay, per-group floors, and runs that
change length: grown from a stable checkpoint, branched cooldowns, refused from a decaying one."""

import io
import math

import pytest
import torch
from transformers import get_wsd_schedule as transformers_wsd

from hf_lrsched import LRSchedTrainer, ScheduleLR, describe, get_schedule, get_wsd_schedule

from .helpers import logged_learning_rates, make_args, make_optimizer, tiny_bert, tiny_dataset, unwrap_schedule


def multipliers(scheduler, steps):
    return [scheduler.lr_lambdas[0](t) for t in range(steps)]


def test_readable_table():
    # W = 2, T = 10, decay 20% = 2 steps (0.2 read as written: not 3 from the binary 0.2 * 10), cosine, floor 0.1.
    scheduler = get_wsd_schedule(make_optimizer(), 2, 10, min_lr_ratio=0.1)
    assert multipliers(scheduler, 12) == pytest.approx([0.0, 0.5, 1, 1, 1, 1, 1, 1, 1.0, 0.55, 0.1, 0.1])
    assert describe(scheduler).decay_start == 8


@pytest.mark.parametrize(
    "decay_type,f",
    [
        ("cosine", lambda u: (1 + math.cos(math.pi * u)) / 2),
        ("linear", lambda u: 1 - u),
        ("1-sqrt", lambda u: 1 - math.sqrt(u)),
    ],
)
def test_the_contract_formula(decay_type, f):
    W, T, D, m = 5, 40, 12, 0.05
    scheduler = get_wsd_schedule(
        make_optimizer(),
        W,
        T,
        num_decay_steps=D,
        decay_type=decay_type,
        warmup_type="cosine",
        warmup_start_ratio=0.2,
        min_lr_ratio=m,
    )
    S = T - D
    for t in range(T + 3):
        if t < W:
            expected = 0.2 + 0.8 * (1 - math.cos(math.pi * t / W)) / 2
        elif t < S:
            expected = 1.0
        elif t < T:
            expected = m + (1 - m) * f((t - S) / D)
        else:
            expected = m
        assert scheduler.lr_lambdas[0](t) == pytest.approx(expected, rel=1e-12, abs=1e-15), t


@pytest.mark.parametrize("decay_type", ["cosine", "linear", "1-sqrt"])
@pytest.mark.parametrize(
    "W,T,D,m", [(0, 10, 3, 0.0), (4, 50, 10, 0.1), (10, 10, 0, 0.0), (7, 1000, 993, 0.25), (3, 30, 27, 0.0)]
)
def test_equals_transformers_warmup_stable_decay_at_every_step(decay_type, W, T, D, m):
    ours = get_wsd_schedule(
        make_optimizer(), W, T, num_decay_steps=D, decay_type=decay_type, min_lr_ratio=m, warmup_start_ratio=m
    )
    theirs = transformers_wsd(make_optimizer(), W, D, num_training_steps=T, decay_type=decay_type, min_lr_ratio=m)
    assert unwrap_schedule(ours, T + 1) == unwrap_schedule(theirs, T + 1)  # bit for bit, step T included
    by_name = get_schedule(
        "warmup_stable_decay", make_optimizer(), W, T, num_decay_steps=D, decay_type=decay_type, min_lr_ratio=m
    )
    # transformers' own name keeps its own function (a LambdaLR of transformers', not a schedule of ours)
    assert isinstance(by_name, torch.optim.lr_scheduler.LambdaLR) and not isinstance(by_name, ScheduleLR)


def test_per_group_absolute_floor():
    scheduler = get_wsd_schedule(make_optimizer(groups=[1e-3, 1e-2]), 2, 20, num_decay_steps=5, min_lr=1e-5)
    rates = []
    for _ in range(22):
        rates.append(scheduler.get_last_lr())
        scheduler.optimizer.step()
        scheduler.step()
    assert rates[10] == pytest.approx([1e-3, 1e-2])  # stable: each group at its peak
    assert rates[20] == pytest.approx([1e-5, 1e-5]) and rates[21] == pytest.approx([1e-5, 1e-5])
    assert describe(scheduler).min_lrs == pytest.approx((1e-5, 1e-5))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(num_decay_steps=95), "The decay (num_decay_steps=95) is longer than the 90 steps after warmup"),
        (dict(decay_ratio=0.95), "decay_ratio=0.95 of num_training_steps=100, 95 steps) is longer than the 90 steps"),
        (dict(decay_ratio=0.2, num_decay_steps=3), "not both"),
        (dict(decay_ratio=1.5), "`decay_ratio` must be in [0, 1], got 1.5"),
        (dict(num_decay_steps=-1), "`num_decay_steps` must be an integer >= 0, got -1"),
        (dict(decay_type="sqrt"), "`decay_type` must be one of ['cosine', 'linear', '1-sqrt'], got 'sqrt'"),
    ],
)
def test_bad_input_names_the_numbers(kwargs, message):
    with pytest.raises(ValueError) as info:
        get_wsd_schedule(make_optimizer(), 10, 100, **kwargs)
    assert message in str(info.value)


def saved(scheduler):
    buffer = io.BytesIO()
    torch.save({"scheduler": scheduler.state_dict(), "optimizer": scheduler.optimizer.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def resumed(state, **kwargs):
    scheduler = get_schedule("wsd", make_optimizer(lr=1e-3), **kwargs)
    scheduler.optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return scheduler


def test_grown_from_its_stable_phase_the_run_continues_exactly():
    trunk = get_schedule("wsd", make_optimizer(lr=1e-3), 10, 100, decay_ratio=0.2)  # decay from step 80
    before = unwrap_schedule(trunk, 60)
    grown = resumed(saved(trunk), num_warmup_steps=10, num_training_steps=300, decay_ratio=0.2)  # decay from 240
    fresh = unwrap_schedule(get_schedule("wsd", make_optimizer(lr=1e-3), 10, 300, decay_ratio=0.2), 301)
    assert before + unwrap_schedule(grown, 241) == fresh


def test_branched_cooldowns_are_valid_resumes():
    trunk = get_schedule("wsd", make_optimizer(lr=1e-3), 10, 10**6, num_decay_steps=1000)  # a long stable run
    unwrap_schedule(trunk, 400)
    state = saved(trunk)
    for decay in (20, 50):
        branch = resumed(state, num_warmup_steps=10, num_training_steps=400 + decay, num_decay_steps=decay)
        rates = unwrap_schedule(branch, decay + 1)
        assert rates[0] == 1e-3 and rates[-1] == 0.0
        assert (
            rates
            == unwrap_schedule(
                get_schedule("wsd", make_optimizer(lr=1e-3), 10, 400 + decay, num_decay_steps=decay), 401 + decay
            )[400:]
        )


def test_grown_from_its_decay_the_run_is_refused_with_the_reason():
    trunk = get_schedule("wsd", make_optimizer(lr=1e-3), 10, 100, decay_ratio=0.2)
    unwrap_schedule(trunk, 90)
    with pytest.raises(ValueError, match=r"had begun its decay at step 80.*only from a checkpoint taken before"):
        resumed(saved(trunk), num_warmup_steps=10, num_training_steps=300, decay_ratio=0.2)


def test_a_grown_cosine_run_is_refused_and_pointed_to_wsd():
    first = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 10, 100)
    unwrap_schedule(first, 50)
    other = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 10, 200)
    with pytest.raises(ValueError, match=r"num_training_steps 100 -> 200.*`wsd`, grown while still in its stable"):
        other.load_state_dict(saved(first)["scheduler"])


def trainer(tmp_path, out, max_steps, **kwargs):
    args = make_args(
        tmp_path / out,
        max_steps=max_steps,
        warmup_steps=3,
        lr_schedule="wsd",
        save_strategy="steps",
        save_steps=10,
        lr_schedule_kwargs=kwargs,
    )
    return LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())


@pytest.mark.slow
def test_trainer_grows_a_run_from_a_stable_checkpoint_and_refuses_one_from_its_decay(tmp_path):
    trunk = trainer(tmp_path, "trunk", 30, num_decay_steps=8)  # stable until step 22
    trunk.train()
    grown = trainer(tmp_path, "grown", 50, num_decay_steps=8)
    grown.train(resume_from_checkpoint=str(tmp_path / "trunk" / "out" / "checkpoint-20"))
    fresh = trainer(tmp_path, "fresh", 50, num_decay_steps=8)
    fresh.train()
    assert grown.state.global_step == 50
    assert logged_learning_rates(grown) == logged_learning_rates(fresh)
    # A checkpoint taken in the decay (step 30 = T, the end of it) cannot grow: the past rates would change.
    refused = trainer(tmp_path, "refused", 50, num_decay_steps=8)
    with pytest.raises(ValueError, match="had begun its decay at step 22"):
        refused.train(resume_from_checkpoint=str(tmp_path / "trunk" / "out" / "checkpoint-30"))
