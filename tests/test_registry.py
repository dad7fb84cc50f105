"""One string selects any schedule: ours, transformers' and registered ones."""

import pytest
import torch
from transformers import get_scheduler
from transformers.trainer_utils import SchedulerType

import hf_lrsched
from hf_lrsched import available_schedules, get_schedule, register_schedule, schedule_multipliers, unregister_schedule
from hf_lrsched.registry import get_schedule_entry

from .helpers import make_optimizer, unwrap_schedule

OURS = ["warmup_cosine", "exponential_warmup_cosine", "cosine_with_growing_restarts"]


@pytest.fixture
def scratch_registry():
    """Registrations made by a test are undone after it."""
    saved = {name: get_schedule_entry(name) for name in available_schedules()}
    yield
    for name in available_schedules():
        if name not in saved:
            unregister_schedule(name)
        elif get_schedule_entry(name) != saved[name]:
            register_schedule(name, saved[name], override=True)


def test_unregister_and_put_back(scratch_registry):
    entry = unregister_schedule("wsd")
    assert "wsd" not in available_schedules()
    with pytest.raises(ValueError, match="Unknown schedule name 'wsd'"):
        get_schedule("wsd", make_optimizer(), 0, 10)
    register_schedule("wsd", entry)
    assert get_schedule_entry("wsd") == entry and "wsd" in available_schedules()
    cosine = unregister_schedule("cosine")
    register_schedule("cosine", cosine)  # a transformers entry keeps its delegation
    assert get_schedule_entry("cosine").transformers_name == "cosine"
    with pytest.raises(ValueError, match="Unknown schedule name 'nope'"):
        unregister_schedule("nope")


def test_a_name_of_the_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="schedule name must be a string, got 3"):
        get_schedule(3, make_optimizer(), 0, 10)


def test_every_name_is_available():
    names = available_schedules()
    assert set(OURS) <= set(names)
    assert {member.value for member in SchedulerType} <= set(names)
    assert names == sorted(names)
    assert all(hf_lrsched.schedule_description(name) for name in names)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("linear", {}),
        ("cosine", {}),
        ("cosine_with_restarts", {"num_cycles": 3}),
        ("polynomial", {"power": 2.0}),
        ("cosine_with_min_lr", {"min_lr_rate": 0.1}),
        ("constant_with_warmup", {}),
        ("inverse_sqrt", {}),
        ("warmup_stable_decay", {"num_decay_steps": 20}),
    ],
)
def test_transformers_names_are_delegated(name, kwargs):
    ours = get_schedule(name, make_optimizer(), 10, 100, **kwargs)
    theirs = get_scheduler(name, make_optimizer(), 10, 100, scheduler_specific_kwargs=kwargs)
    assert isinstance(ours, type(theirs))  # a LambdaLR (that drops our record when it loads a state of ours)
    ours, theirs = unwrap_schedule(ours, 105), unwrap_schedule(theirs, 105)
    assert ours[:101] == theirs[:101]  # steps 0..T, transformers' own
    assert ours[100:] == [ours[100]] * 5  # and held at the end level after T (see test_transformers_schedules.py)


def test_scheduler_type_enum_is_accepted():
    scheduler = get_schedule(SchedulerType.COSINE, make_optimizer(), 2, 10)
    assert scheduler.lr_lambdas[0](2) == 1.0


def test_transformers_names_accept_auto_warmup():
    scheduler = get_schedule("linear", make_optimizer(betas=(0.9, 0.98)), "auto", 10_000)
    assert scheduler.lr_lambdas[0](50) == 0.5 and scheduler.lr_lambdas[0](100) == 1.0


@pytest.mark.parametrize("name", ["constant", "constant_with_warmup", "linear", "cosine", "warmup_cosine", "wsd"])
def test_last_epoch_is_honoured_for_every_name(name):
    # transformers' get_scheduler drops last_epoch for some names: a rebuilt scheduler must still start at step 15.
    reference = get_schedule(name, make_optimizer(), 10, 100)
    unwrap_schedule(reference, 15)
    rebuilt = get_schedule(name, reference.optimizer, 10, 100, last_epoch=14)
    assert rebuilt.last_epoch == 15
    assert rebuilt.get_last_lr() == reference.get_last_lr()
    assert unwrap_schedule(rebuilt, 30) == unwrap_schedule(reference, 30)


def test_last_epoch_without_initial_lr_or_on_a_non_lambda_schedule_is_refused():
    with pytest.raises(ValueError, match="param group 0 has none"):
        get_schedule("constant_with_warmup", make_optimizer(), 10, 100, last_epoch=3)
    optimizer = make_optimizer()
    optimizer.param_groups[0]["initial_lr"] = 10.0
    with pytest.raises(ValueError, match="cannot be honoured by 'reduce_lr_on_plateau'"):
        get_schedule("reduce_lr_on_plateau", optimizer, last_epoch=3)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(
        ValueError, match=r"Unknown schedule name 'warmup_cosin'\. Did you mean 'warmup_cosine'"
    ) as info:
        get_schedule("warmup_cosin", make_optimizer(), 0, 10)
    assert "Available schedules" in str(info.value)
    with pytest.raises(ValueError, match="Did you mean 'cosine_with_growing_restarts'"):
        get_schedule("cosine_growing_restarts", make_optimizer(), 0, 10)


def test_unknown_keyword_suggests_the_closest():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'min_lr_rato'\. Did you mean 'min_lr_ratio'"):
        get_schedule("warmup_cosine", make_optimizer(), 0, 10, min_lr_rato=0.1)
    with pytest.raises(TypeError, match="'cosine' got an unexpected keyword argument 'min_lr'"):
        get_schedule("cosine", make_optimizer(), 0, 10, min_lr=0.1)


def test_register_directly_and_as_decorator(scratch_registry):
    def constant_half(optimizer, num_warmup_steps=None, num_training_steps=None, *, last_epoch=-1):
        """Half the base rate, always."""
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 0.5, last_epoch)

    assert register_schedule("constant_half", constant_half) is constant_half

    @register_schedule("constant_quarter", description="A quarter of the base rate.")
    def constant_quarter(optimizer, num_warmup_steps=None, num_training_steps=None):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 0.25)

    assert callable(constant_quarter)
    assert {"constant_half", "constant_quarter"} <= set(available_schedules())
    assert get_schedule("constant_half", make_optimizer()).get_last_lr() == [5.0]
    assert get_schedule("constant_quarter", make_optimizer()).get_last_lr() == [2.5]
    assert hf_lrsched.schedule_description("constant_half") == "Half the base rate, always."
    assert hf_lrsched.schedule_description("constant_quarter") == "A quarter of the base rate."


def test_registering_a_taken_name_needs_override(scratch_registry):
    with pytest.raises(ValueError, match=r"'warmup_cosine' is already registered.*override=True"):
        register_schedule("warmup_cosine", lambda *a, **k: None)
    with pytest.raises(ValueError, match="'cosine' is already registered"):
        register_schedule("cosine")(lambda *a, **k: None)

    def replacement(optimizer, num_warmup_steps=None, num_training_steps=None, *, level=1.0):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: level)

    register_schedule("cosine", replacement, override=True)
    assert get_schedule("cosine", make_optimizer(), 5, 10).get_last_lr() == [10.0]
    # the replacement's own options are checked against its own signature, not transformers' cosine
    assert get_schedule("cosine", make_optimizer(), 5, 10, level=0.5).get_last_lr() == [5.0]
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_cycles'"):
        get_schedule("cosine", make_optimizer(), 5, 10, num_cycles=0.5)


def test_register_rejects_bad_arguments(scratch_registry):
    with pytest.raises(TypeError, match="non-empty string"):
        register_schedule("", lambda *a, **k: None)
    with pytest.raises(TypeError, match="must be callable"):
        register_schedule("not_callable", 42)


class TestMultipliers:
    def test_no_optimizer_needed_and_matches_the_scheduler(self):
        curve = schedule_multipliers("cosine_with_growing_restarts", 10, 100, num_cycles=2, cycle_mult=1.0)
        scheduler = get_schedule(
            "cosine_with_growing_restarts", make_optimizer(lr=1.0), 10, 100, num_cycles=2, cycle_mult=1.0
        )
        assert len(curve) == 101
        assert curve == unwrap_schedule(scheduler, 101)

    def test_transformers_names_and_num_steps(self):
        curve = schedule_multipliers("linear", 2, 10, num_steps=14)
        assert curve == pytest.approx([0, 0.5, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125, 0, 0, 0, 0, 0])

    def test_auto_uses_the_given_betas(self):
        curve = schedule_multipliers("warmup_cosine", "auto", 100_000, betas=(0.9, 0.98))
        assert curve[50] == 0.5 and curve[100] == 1.0

    def test_absolute_floor_relative_to_lr(self):
        curve = schedule_multipliers("warmup_cosine", 0, 10, lr=1e-3, min_lr=1e-4)
        assert curve[-1] == pytest.approx(0.1)

    def test_schedules_without_a_curve_are_refused(self):
        with pytest.raises(ValueError, match=r"reduce_lr_on_plateau.*ReduceLROnPlateau.*no multiplier curve"):
            schedule_multipliers("reduce_lr_on_plateau", 0, 10)
