"""Schedulers survive pickle, deepcopy and state_dict round trips, and resume exactly where they stopped."""

import copy
import functools
import io
import pickle

import pytest
import torch

from hf_lrsched import get_schedule

from .helpers import make_optimizer

CONFIGS = {
    "warmup_cosine": dict(num_warmup_steps=10, num_training_steps=60, min_lr_ratio=0.05),
    "exponential_warmup_cosine": dict(num_warmup_steps=10, num_training_steps=60, warmup_start_ratio=0.1),
    "cosine_with_growing_restarts": dict(
        num_warmup_steps=6,
        num_training_steps=60,
        num_cycles=3,
        cycle_mult=1.5,
        cycle_decay=0.8,
        restart_warmup_steps=2,
        min_lr=1e-3,
    ),
}


def build(name, groups=(0.1, 0.5)):
    optimizer = make_optimizer(groups=list(groups))
    return get_schedule(name, optimizer, **CONFIGS[name])


def all_lrs(scheduler, num_steps):
    out = []
    for _ in range(num_steps):
        out.append(list(scheduler.get_last_lr()))
        scheduler.optimizer.step()
        scheduler.step()
    return out


@pytest.mark.parametrize("name", CONFIGS)
def test_lambdas_are_partials_of_module_level_functions(name):
    scheduler = build(name)
    for fn in scheduler.lr_lambdas:
        assert isinstance(fn, functools.partial)
        assert fn.func.__module__ == "hf_lrsched.phases" and "<locals>" not in fn.func.__qualname__


@pytest.mark.parametrize("name", CONFIGS)
def test_pickle_and_deepcopy(name):
    scheduler = build(name)
    all_lrs(scheduler, 7)
    for clone in (pickle.loads(pickle.dumps(scheduler)), copy.deepcopy(scheduler)):
        assert clone.last_epoch == 7
        assert [fn(t) for fn in clone.lr_lambdas for t in range(70)] == [
            fn(t) for fn in scheduler.lr_lambdas for t in range(70)
        ]
        assert all_lrs(clone, 20) == all_lrs(copy.deepcopy(scheduler), 20)


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("stop", [3, 8, 23, 59, 65])  # mid-warmup, mid-cycle, across restarts, past the end
def test_state_dict_resume_matches_the_uninterrupted_run(name, stop):
    reference = all_lrs(build(name), 70)

    first = build(name)
    before = all_lrs(first, stop)
    buffer = io.BytesIO()
    torch.save({"scheduler": first.state_dict(), "optimizer": first.optimizer.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # what Trainer does: the state dict holds only plain data

    resumed = build(name)
    resumed.optimizer.load_state_dict(state["optimizer"])
    resumed.load_state_dict(state["scheduler"])
    after = all_lrs(resumed, 70 - stop)
    assert before + after == reference


@pytest.mark.parametrize("name", CONFIGS)
def test_state_dict_stores_no_hyper_parameters(name):
    # A partial's `__dict__` is empty: a resumed run takes the hyper-parameters it was built with, never stale ones.
    state = build(name).state_dict()
    assert all(entry == {} for entry in state["lr_lambdas"])


@pytest.mark.parametrize("name", CONFIGS)
def test_last_epoch_rebuilds_mid_run(name):
    reference = build(name)
    all_lrs(reference, 15)
    optimizer = reference.optimizer  # has `initial_lr` in each group, as after a resume
    rebuilt = get_schedule(name, optimizer, **CONFIGS[name], last_epoch=14)  # LambdaLR steps once: now at 15
    assert rebuilt.last_epoch == reference.last_epoch == 15
    assert rebuilt.get_last_lr() == reference.get_last_lr()
    assert all_lrs(rebuilt, 30) == all_lrs(reference, 30)
