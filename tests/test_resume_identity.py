"""Resume identity (docs/schedules/math.md): a state loads only into a schedule that gives the steps already taken the rates
they had; anything else is refused with a message that names what differs."""

import io
import math
import pickle

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from hf_lrsched import ResumeMismatchError, get_schedule

from .helpers import make_optimizer


def run(scheduler, steps):
    rates = []
    for _ in range(steps):
        rates.append(list(scheduler.get_last_lr()))
        scheduler.optimizer.step()
        scheduler.step()
    return rates


def saved(scheduler):
    """The scheduler's and optimizer's state through `torch.save`/`torch.load(weights_only=True)`, as Trainer does."""
    buffer = io.BytesIO()
    torch.save({"scheduler": scheduler.state_dict(), "optimizer": scheduler.optimizer.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def resume(state, name, lr=1e-3, groups=None, **kwargs):
    scheduler = get_schedule(name, make_optimizer(lr=lr, groups=groups), **kwargs)
    scheduler.optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return scheduler


RESTARTS = dict(num_warmup_steps=5, num_training_steps=100, num_cycles=3, cycle_mult=2.0)


def test_the_state_records_the_schedule_in_plain_values():
    scheduler = get_schedule(
        "cosine_with_growing_restarts",
        make_optimizer(lr=1e-3),
        "auto",
        num_training_steps=100,
        num_cycles=3,
        min_lr=1e-5,
    )
    record = saved(scheduler)["scheduler"]["_schedule"]
    assert record["name"] == "cosine_with_growing_restarts"
    assert record["options"]["num_warmup_steps"] == 10  # "auto" resolved (capped at 10% of 100)
    assert record["options"]["min_lr"] == 1e-5 and record["base_lrs"] == [1e-3]
    assert pickle.loads(pickle.dumps(scheduler)).state_dict()["_schedule"] == scheduler.state_dict()["_schedule"]
    assert isinstance(scheduler, LambdaLR)


@pytest.mark.parametrize(
    "name,changed,message",
    [
        ("cosine_with_growing_restarts", dict(num_cycles=4), "num_cycles 3 -> 4"),
        ("cosine_with_growing_restarts", dict(cycle_mult=1.5), "cycle_mult 2.0 -> 1.5"),
        ("cosine_with_growing_restarts", dict(num_training_steps=120), "num_training_steps 100 -> 120"),
        ("warmup_cosine", {}, "schedule 'cosine_with_growing_restarts' -> 'warmup_cosine'"),
    ],
)
def test_other_options_that_change_the_past_are_refused(name, changed, message):
    first = get_schedule("cosine_with_growing_restarts", make_optimizer(lr=1e-3), **RESTARTS)
    run(first, 40)
    options = {**RESTARTS, **changed}
    if name == "warmup_cosine":
        options = dict(num_warmup_steps=5, num_training_steps=100)
    with pytest.raises(ValueError) as info:
        resume(saved(first), name, **options)
    text = str(info.value)
    assert message in text and "40 steps already taken" in text and "Resume with the saved options" in text


def test_another_base_rate_under_an_absolute_floor_is_refused():
    # The silent failure: rebuilt at lr 2e-3, the floor ratio became 1e-5 / 2e-3 while the loaded base rate stayed
    # 1e-3, and training ended at 5e-6 instead of 1e-5.
    first = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 10, 100, min_lr=1e-5)
    run(first, 50)
    with pytest.raises(ValueError, match=r"base learning rate of param group 0 0\.001 -> 0\.002"):
        resume(saved(first), "warmup_cosine", lr=2e-3, num_warmup_steps=10, num_training_steps=100, min_lr=1e-5)


def test_a_longer_run_still_in_warmup_continues_on_its_new_curve():
    first = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 20, 100)
    before = run(first, 15)
    resumed = resume(saved(first), "warmup_cosine", num_warmup_steps=20, num_training_steps=300)
    fresh = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 20, 300)
    reference = run(fresh, 300)
    assert before == reference[:15]
    assert run(resumed, 285) == reference[15:]  # from step 15 on, exactly the longer run


def test_a_longer_run_past_its_warmup_is_refused_with_the_first_differing_step():
    first = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 20, 100)
    run(first, 30)
    with pytest.raises(ValueError, match=r"param group 0 had learning rate .* at step 21"):
        resume(saved(first), "warmup_cosine", num_warmup_steps=20, num_training_steps=300)


def test_the_same_options_resume_exactly_with_two_param_groups():
    kwargs = dict(RESTARTS, min_lr=1e-5, restart_warmup_steps=2)
    reference = run(get_schedule("cosine_with_growing_restarts", make_optimizer(groups=[1e-3, 1e-2]), **kwargs), 110)
    first = get_schedule("cosine_with_growing_restarts", make_optimizer(groups=[1e-3, 1e-2]), **kwargs)
    before = run(first, 37)
    resumed = resume(saved(first), "cosine_with_growing_restarts", groups=[1e-3, 1e-2], **kwargs)
    assert before + run(resumed, 73) == reference


def test_another_number_of_param_groups_is_refused():
    first = get_schedule("warmup_cosine", make_optimizer(groups=[1e-3, 1e-2]), 5, 50)
    run(first, 10)
    state = saved(first)
    other = get_schedule("warmup_cosine", make_optimizer(groups=[1e-3]), 5, 50)
    with pytest.raises(ValueError, match="the saved run had 2 param groups, this optimizer has 1"):
        other.load_state_dict(state["scheduler"])


def plain_state(steps=1):
    plain = LambdaLR(make_optimizer(lr=1e-3), lambda t: 1.0)
    for _ in range(steps):
        plain.optimizer.step()
        plain.step()
    return dict(plain.state_dict().items())


def test_a_state_without_a_record_is_refused_unless_a_new_stage_is_asked_for():
    ours = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 0, 10)
    with pytest.raises(ResumeMismatchError, match=r"records no hf_lrsched schedule.*new_stage=True"):
        ours.load_state_dict(plain_state())
    staged = get_schedule("warmup_cosine", make_optimizer(lr=1e-3), 0, 10, new_stage=True)
    staged.optimizer.param_groups[0]["lr"] = 4e-4  # the optimizer's state, loaded first: the rate the run had reached
    staged.load_state_dict(plain_state(3))
    assert staged.last_epoch == 3 and staged.get_last_lr() == [4e-4]  # starts where the run was: no jump
    assert math.isnan(staged.lr_lambdas[0](1))  # the past is not known, and not made up
    assert [stage["name"] for stage in staged.stages] == [None, "warmup_cosine"]
