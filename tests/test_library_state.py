"""A scheduler's state as a user and a checkpoint meet it: every recorded option a plain Python value read as
written, damaged or tampered states refused by name, extreme sizes refused with the option named."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from hf_lrsched import ResumeMismatchError, describe, get_schedule

from .helpers import make_optimizer


def reloaded(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("wsd", dict(decay_ratio=np.float32(0.2), min_lr_ratio=np.float64(0.1))),
        ("cosine_with_growing_restarts", dict(num_cycles=np.int64(3), cycle_mult=np.float32(1.5))),
        (
            "phases",
            dict(phases=[{"shape": "constant", "ratio": np.float32(0.3)}, {"shape": "power", "p": np.float16(0.5)}]),
        ),
    ],
)
def test_numpy_options_are_recorded_as_plain_values_read_as_written(name, kwargs):
    scheduler = get_schedule(name, make_optimizer(lr=1.0), np.int64(0), np.int64(100), **kwargs)
    state = reloaded(scheduler.state_dict())  # loadable with weights_only=True: nothing but plain values
    options = state["_schedule"]["options"]
    for value in options.values():
        assert type(value) in (int, float, str, list, type(None)), (value, type(value))
    if name == "wsd":
        assert options["decay_ratio"] == 0.2 and describe(scheduler).decay_start == 80  # 20 decay steps, not 21
    if name == "phases":
        assert options["phases"][0]["steps"] == 30 and options["phases"][1]["p"] == 0.5


def test_extreme_training_lengths_are_refused_with_the_option_named():
    with pytest.raises(
        ValueError,
        match=r"`num_training_steps` must be at most 2\*\*63 - 1 = 9223372036854775807, got a number of 401 digits",
    ):
        get_schedule("cosine_with_growing_restarts", make_optimizer(), 0, 10**400, num_cycles=3)


def test_resuming_last_epoch_on_a_fresh_optimizer_is_a_clear_error():
    with pytest.raises(
        ValueError, match=r"`last_epoch`=5 resumes a schedule, which needs each param group's `initial_lr`"
    ):
        get_schedule("warmup_cosine", make_optimizer(), 5, 50, last_epoch=5)


@pytest.mark.parametrize(
    "tamper,message",
    [
        (lambda state: state.update(last_epoch=-5), r"`last_epoch` must be an integer >= 0, got -5"),
        (lambda state: state.update(last_epoch=True), r"`last_epoch` must be an integer >= 0, got True"),
        (lambda state: state.update(_schedule="warmup_cosine"), r"record is damaged"),
        (lambda state: state["_schedule"].update(stages="abc"), r"record of stages is damaged"),
        (lambda state: state["_schedule"]["stages"][0].pop("phases"), r"lacks 'phases'"),
    ],
)
def test_a_tampered_state_is_refused_by_name(tamper, message):
    first = get_schedule("warmup_cosine", make_optimizer(), 5, 50)
    for _ in range(10):
        first.optimizer.step()
        first.step()
    state = reloaded(first.state_dict())
    tamper(state)
    resumed = get_schedule("warmup_cosine", make_optimizer(), 5, 50)
    with pytest.raises(ResumeMismatchError, match=message):
        resumed.load_state_dict(state)
    assert resumed.last_epoch == 0  # nothing was loaded


def test_a_group_added_after_the_scheduler_follows_the_schedule():
    parameters = [torch.zeros(1, requires_grad=True) for _ in range(2)]
    optimizer = torch.optim.AdamW([parameters[0]], lr=1e-3)
    scheduler = get_schedule("warmup_cosine", optimizer, 4, 40, min_lr_ratio=0.1)
    for _ in range(10):
        optimizer.step()
        scheduler.step()
    optimizer.add_param_group({"params": [parameters[1]], "lr": 1e-2})
    reference = get_schedule("warmup_cosine", make_optimizer(lr=1.0), 4, 40, min_lr_ratio=0.1).lr_lambdas[0]
    assert optimizer.param_groups[1]["lr"] == 1e-2 * reference(10)  # the schedule's rate from the very next step
    optimizer.step()
    scheduler.step()  # torch's LambdaLR: "zip() argument 2 is shorter than argument 1"
    assert scheduler.get_last_lr() == pytest.approx([1e-3 * reference(11), 1e-2 * reference(11)], rel=1e-15)
    assert len(scheduler.state_dict()["_schedule"]["base_lrs"]) == 2  # the record covers the new group


def test_a_transformers_schedule_drops_our_record_when_it_loads_our_state():
    first = get_schedule("wsd", make_optimizer(), 5, 100, num_decay_steps=20)
    for _ in range(10):
        first.optimizer.step()
        first.step()
    theirs = get_schedule("cosine", make_optimizer(), 5, 100)
    theirs.load_state_dict(reloaded(first.state_dict()))
    for _ in range(30):
        theirs.optimizer.step()
        theirs.step()
    later = reloaded(theirs.state_dict())
    assert "_schedule" not in later  # no longer claims to be the wsd run it is not
    again = get_schedule("wsd", make_optimizer(), 5, 100, num_decay_steps=20)
    with pytest.raises(ResumeMismatchError, match="records no hf_lrsched schedule"):
        again.load_state_dict(later)  # 30 steps of cosine since: refused, not accepted as wsd
