"""The formulas of the math page (docs/schedules/math.md), value by value, and agreement with transformers and torch where the math coincides."""

import dataclasses
import inspect
import math

import pytest
import torch
from transformers import get_cosine_schedule_with_warmup, get_cosine_with_min_lr_schedule_with_warmup

from hf_lrsched import (
    get_cosine_with_growing_restarts_schedule,
    get_exponential_warmup_cosine_schedule,
    get_phases_schedule,
    get_warmup_cosine_schedule,
    get_wsd_schedule,
    resolve_auto_warmup_steps,
)
from hf_lrsched.schedules import CommonOptions

from .helpers import assert_list_close, make_optimizer, unwrap_schedule

# Readable tables: base lr 10, so each number is ten times the multiplier.
# Cosine after warmup over D steps: 10 * (1 + cos(pi * tau / D)) / 2.
READABLE_TABLES = {
    "linear warmup 2, cosine to 0 over 8": (
        dict(num_warmup_steps=2, num_training_steps=10),
        [0.00, 5.00, 10.00, 9.62, 8.54, 6.91, 5.00, 3.09, 1.46, 0.38, 0.00, 0.00],
    ),
    "linear warmup 2, cosine to floor 0.1": (
        dict(num_warmup_steps=2, num_training_steps=10, min_lr_ratio=0.1),
        [0.00, 5.00, 10.00, 9.66, 8.68, 7.22, 5.50, 3.78, 2.32, 1.34, 1.00, 1.00],
    ),
    "linear warmup from s=0.2": (
        dict(num_warmup_steps=4, num_training_steps=8, warmup_start_ratio=0.2),
        [2.00, 4.00, 6.00, 8.00, 10.00, 8.54, 5.00, 1.46, 0.00, 0.00],
    ),
    "cosine warmup 4": (
        dict(num_warmup_steps=4, num_training_steps=8, warmup_type="cosine"),
        [0.00, 1.46, 5.00, 8.54, 10.00, 8.54, 5.00, 1.46, 0.00],
    ),
    "no warmup": (
        dict(num_warmup_steps=0, num_training_steps=4),
        [10.00, 8.54, 5.00, 1.46, 0.00, 0.00],
    ),
    "all warmup, W = T": (
        dict(num_warmup_steps=4, num_training_steps=4),
        [0.00, 2.50, 5.00, 7.50, 0.00, 0.00],
    ),
}


@pytest.mark.parametrize("case", READABLE_TABLES, ids=list(READABLE_TABLES))
def test_warmup_cosine_readable_tables(case):
    kwargs, expected = READABLE_TABLES[case]
    scheduler = get_warmup_cosine_schedule(make_optimizer(), **kwargs)
    assert_list_close(unwrap_schedule(scheduler, len(expected)), expected)


def test_exponential_warmup_is_one_minus_exp_minus_five_t_over_w():
    # 10 * (1 - e^{-5 t / 4}): 0, 7.135, 9.179, 9.765, then the cosine from 10.
    scheduler = get_exponential_warmup_cosine_schedule(make_optimizer(), num_warmup_steps=4, num_training_steps=8)
    expected = [0.000, 7.135, 9.179, 9.765, 10.000, 8.536, 5.000, 1.464, 0.000]
    assert_list_close(unwrap_schedule(scheduler, 9), expected, tol=1e-3)
    for t in range(4):
        assert scheduler.lr_lambdas[0](t) == pytest.approx(1 - math.exp(-5 * t / 4), rel=1e-12)


def test_exponential_warmup_rate_and_start_ratio():
    scheduler = get_warmup_cosine_schedule(
        make_optimizer(), 10, 20, warmup_type="exponential", warmup_exp_rate=2.0, warmup_start_ratio=0.5
    )
    for t in range(10):
        expected = 0.5 + 0.5 * (1 - math.exp(-2.0 * t / 10))
        assert scheduler.lr_lambdas[0](t) == pytest.approx(expected, rel=1e-12)


def test_exponential_name_differs_only_in_default_warmup_type():
    a = get_exponential_warmup_cosine_schedule(make_optimizer(), 5, 30, min_lr_ratio=0.1)
    b = get_warmup_cosine_schedule(make_optimizer(), 5, 30, min_lr_ratio=0.1, warmup_type="exponential")
    assert [a.lr_lambdas[0](t) for t in range(32)] == [b.lr_lambdas[0](t) for t in range(32)]


@pytest.mark.parametrize("warmup,total", [(0, 1), (0, 10), (3, 10), (10, 10), (7, 1000), (100, 101)])
def test_matches_transformers_cosine_with_warmup(warmup, total):
    ours = get_warmup_cosine_schedule(make_optimizer(), warmup, total)
    theirs = get_cosine_schedule_with_warmup(make_optimizer(), warmup, total)
    ours, theirs = unwrap_schedule(ours, total + 3), unwrap_schedule(theirs, total + 3)
    assert ours[:total] == pytest.approx(theirs[:total], abs=1e-12)
    # From step T on ours stays on the floor; transformers' cosine rises again after T (and is back at the peak at
    # T itself when W = T, where its decay phase has length 0).
    assert ours[total:] == [0.0, 0.0, 0.0]
    assert max(theirs[total:]) > 0.0


@pytest.mark.parametrize("warmup,total,rate", [(0, 10, 0.1), (3, 10, 0.5), (7, 1000, 0.01)])
def test_matches_transformers_cosine_with_min_lr(warmup, total, rate):
    ours = get_warmup_cosine_schedule(make_optimizer(), warmup, total, min_lr_ratio=rate)
    theirs = get_cosine_with_min_lr_schedule_with_warmup(make_optimizer(), warmup, total, min_lr_rate=rate)
    # transformers' curve is the same up to step T; past T, ours stays on the floor (theirs rises again).
    assert unwrap_schedule(ours, total + 1) == pytest.approx(unwrap_schedule(theirs, total + 1), abs=1e-12)


def test_matches_transformers_absolute_min_lr():
    ours = get_warmup_cosine_schedule(make_optimizer(lr=1e-3), 5, 50, min_lr=1e-5)
    theirs = get_cosine_with_min_lr_schedule_with_warmup(make_optimizer(lr=1e-3), 5, 50, min_lr=1e-5)
    assert unwrap_schedule(ours, 51) == pytest.approx(unwrap_schedule(theirs, 51), rel=1e-12, abs=1e-18)


def test_stays_on_the_floor_after_the_last_step():
    scheduler = get_warmup_cosine_schedule(make_optimizer(), 3, 10, min_lr_ratio=0.05)
    assert all(scheduler.lr_lambdas[0](t) == 0.05 for t in (10, 11, 50, 10**9))


def test_min_lr_gives_each_param_group_its_own_floor():
    optimizer = make_optimizer(groups=[1e-3, 1e-2])
    scheduler = get_warmup_cosine_schedule(optimizer, 2, 10, min_lr=1e-4)
    history = []
    for _ in range(12):
        history.append(scheduler.get_last_lr())
        optimizer.step()
        scheduler.step()
    assert history[2] == pytest.approx([1e-3, 1e-2])  # the end of warmup: each group at its own base rate
    assert history[10] == pytest.approx([1e-4, 1e-4])  # step T: both groups on the same absolute floor
    assert history[11] == pytest.approx([1e-4, 1e-4])
    for t in range(2, 11):  # in between, each group follows the cosine from its base rate to 1e-4
        p = (t - 2) / 8
        assert history[t] == pytest.approx(
            [1e-4 + (base - 1e-4) * (1 + math.cos(math.pi * p)) / 2 for base in (1e-3, 1e-2)]
        )


def test_min_lr_ratio_scales_every_group_alike():
    optimizer = make_optimizer(groups=[1e-3, 1e-2])
    scheduler = get_warmup_cosine_schedule(optimizer, 0, 4, min_lr_ratio=0.1)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert scheduler.get_last_lr() == pytest.approx([1e-4, 1e-3])


class TestAutoWarmup:
    @pytest.mark.parametrize(
        "beta2,warmup_type,expected",
        [
            (0.999, "linear", 2000),
            (0.98, "linear", 100),
            (0.9999, "linear", 20000),
            (0.99, "cosine", 200),
            (0.999, "exponential", 5000),
            (0.98, "exponential", 250),
        ],
    )
    def test_untuned_rules(self, beta2, warmup_type, expected):
        optimizer = make_optimizer(betas=(0.9, beta2))
        assert resolve_auto_warmup_steps(optimizer, 10**6, warmup_type=warmup_type) == expected

    def test_exponential_rule_uses_the_rate(self):
        optimizer = make_optimizer(betas=(0.9, 0.99))
        assert resolve_auto_warmup_steps(optimizer, 10**6, warmup_type="exponential", warmup_exp_rate=3.0) == 300

    def test_the_schedule_uses_the_resolved_length(self):
        optimizer = make_optimizer(betas=(0.9, 0.98))
        scheduler = get_warmup_cosine_schedule(optimizer, "auto", 10_000)
        assert scheduler.lr_lambdas[0](50) == pytest.approx(0.5)
        assert scheduler.lr_lambdas[0](100) == 1.0

    def test_exponential_auto_matches_the_untuned_rule(self):
        # exp(-k t / W) with W = k / (1 - beta2) is exp(-(1 - beta2) t).
        optimizer = make_optimizer(betas=(0.9, 0.99))
        scheduler = get_exponential_warmup_cosine_schedule(optimizer, "auto", 100_000)
        for t in (1, 10, 100, 499):
            assert scheduler.lr_lambdas[0](t) == pytest.approx(1 - math.exp(-0.01 * t), rel=1e-9)

    def test_cap_bites_and_is_logged(self, caplog):
        from transformers.utils import logging as hf_logging

        hf_logging.enable_propagation()
        optimizer = make_optimizer(betas=(0.9, 0.999))
        with caplog.at_level("WARNING"):
            assert resolve_auto_warmup_steps(optimizer, 5000, max_auto_warmup_ratio=0.1) == 500
        assert "capped" in caplog.text and "500" in caplog.text

    def test_optimizer_without_betas_is_an_error(self):
        with pytest.raises(ValueError, match=r"SGD has no `betas`.*pass `num_warmup_steps`"):
            get_warmup_cosine_schedule(make_optimizer(cls=torch.optim.SGD), "auto", 100)


class TestGrowingRestarts:
    def test_readable_table_fit_mode(self):
        # D = 14 decay steps, 3 cycles doubling: L_0 = 14 / 7 = 2, starts B = 0, 2, 6, 14.
        scheduler = get_cosine_with_growing_restarts_schedule(make_optimizer(), 2, 16, num_cycles=3, cycle_mult=2.0)
        expected = [
            0.00,
            5.00,  # warmup
            10.00,
            5.00,  # cycle 0: 2 steps
            10.00,
            8.54,
            5.00,
            1.46,  # cycle 1: 4 steps
            10.00,
            9.62,
            8.54,
            6.91,
            5.00,
            3.09,
            1.46,
            0.38,  # cycle 2: 8 steps
            0.00,
            0.00,  # T and after: the floor
        ]
        assert_list_close(unwrap_schedule(scheduler, len(expected)), expected)

    def test_readable_table_decay_floor_and_restart_warmup(self):
        # Free mode, L_0 = 4, r = 1 (equal cycles), gamma = 0.5, floor 0.1 (lr 1), R = 2 steps back up.
        scheduler = get_cosine_with_growing_restarts_schedule(
            make_optimizer(),
            0,
            12,
            first_cycle_steps=4,
            cycle_mult=1.0,
            cycle_decay=0.5,
            restart_warmup_steps=2,
            min_lr_ratio=0.1,
        )
        # cycle 0: peak 10; cycle 1: peak 1 + 9 * 0.5 = 5.5; cycle 2: peak 1 + 9 * 0.25 = 3.25.
        expected = [
            10.00,
            8.68,
            5.50,
            2.32,  # cosine over 4 steps, from 10 to the floor 1
            1.00,
            3.25,
            5.50,
            3.25,  # rise over R = 2 steps to 5.5, then cosine over the 2 remaining steps
            1.00,
            2.125,
            3.25,
            2.125,  # the same at half the height
            1.00,
            1.00,  # T and after
        ]
        assert_list_close(unwrap_schedule(scheduler, len(expected)), expected)

    def test_three_cycles_by_default(self):
        scheduler = get_cosine_with_growing_restarts_schedule(make_optimizer(), 0, 70)
        values = [scheduler.lr_lambdas[0](t) for t in range(71)]
        restarts = [t for t in range(1, 70) if values[t] > values[t - 1]]
        assert restarts == [10, 30]  # L_0 = 70 / 7 = 10, then 20, then 40
        assert values[70] == 0.0

    @pytest.mark.parametrize("cycle_mult", [1, 2, 3])
    def test_matches_torch_cosine_annealing_warm_restarts(self, cycle_mult):
        first, total, base, eta_min = 7, 400, 0.5, 0.01
        ours = get_cosine_with_growing_restarts_schedule(
            make_optimizer(lr=base), 0, total, first_cycle_steps=first, cycle_mult=cycle_mult, min_lr=eta_min
        )
        reference_optimizer = make_optimizer(lr=base)
        theirs = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            reference_optimizer, T_0=first, T_mult=cycle_mult, eta_min=eta_min
        )
        assert unwrap_schedule(ours, total) == pytest.approx(unwrap_schedule(theirs, total), rel=1e-9, abs=1e-12)

    def test_timm_boundary_is_not_missed(self):
        # timm's floor(log(...)) misses the restart at step 1210 for t_initial=10, cycle_mul=3; B = 10 (3^i - 1) / 2.
        scheduler = get_cosine_with_growing_restarts_schedule(
            make_optimizer(), 0, 5000, first_cycle_steps=10, cycle_mult=3.0
        )
        lam = scheduler.lr_lambdas[0]
        for boundary in (10, 40, 130, 400, 1210, 3640):
            assert lam(boundary) == 1.0, boundary
            assert lam(boundary - 1) < 0.03, boundary  # the last step of the previous cycle, near the floor

    def test_fit_mode_ends_on_the_floor_at_every_cycle_mult(self):
        for cycle_mult in (1.0, 1.0001, 1.5, 2.0, 3.7):
            scheduler = get_cosine_with_growing_restarts_schedule(
                make_optimizer(), 13, 1013, num_cycles=4, cycle_mult=cycle_mult, min_lr_ratio=0.2
            )
            lam = scheduler.lr_lambdas[0]
            assert lam(1012) < 0.2 + 1e-3 and lam(1013) == 0.2, cycle_mult

    def test_first_cycle_follows_the_main_warmup_without_restart_warmup(self):
        scheduler = get_cosine_with_growing_restarts_schedule(
            make_optimizer(), 4, 100, num_cycles=2, cycle_mult=1.0, restart_warmup_steps=5
        )
        lam = scheduler.lr_lambdas[0]
        assert lam(4) == 1.0  # the peak right after the main warmup
        assert lam(4 + 48) == 0.0 and lam(4 + 48 + 5) == 1.0  # cycle 1: 5 steps up from the floor to the peak


# Every factory of ours with a value other than the default for each of its own options.
OWN_OPTIONS = {
    get_warmup_cosine_schedule: {},
    get_exponential_warmup_cosine_schedule: {},
    get_cosine_with_growing_restarts_schedule: dict(
        first_cycle_steps=5, cycle_mult=1.5, cycle_decay=0.5, restart_warmup_steps=1
    ),
    get_wsd_schedule: dict(num_decay_steps=7, decay_type="1-sqrt"),
    get_phases_schedule: dict(phases=[{"shape": "constant", "ratio": 0.5}, {"shape": "linear", "to": 0.5}]),
}
SCHEDULER_OPTIONS = ("optimizer", "last_epoch", "new_stage")


@pytest.mark.parametrize("factory", OWN_OPTIONS, ids=lambda f: f.__name__)
def test_every_option_a_factory_takes_is_kept_to_rebuild_it(factory):
    # The common options are defined once (`CommonOptions`) and each factory passes them, and its own, by name: a
    # parameter that a factory takes but does not pass on (or a common option it lacks) would be lost when a new
    # stage lays the schedule over the steps left, and the new stage would silently use the default.
    common = dict(warmup_type="cosine", warmup_start_ratio=0.25, warmup_exp_rate=3.0, min_lr=1e-4)
    given = dict(
        num_warmup_steps=3, num_training_steps=40, max_auto_warmup_ratio=0.2, **common, **OWN_OPTIONS[factory]
    )
    scheduler = factory(make_optimizer(lr=1e-2), **given)
    parameters = inspect.signature(factory).parameters
    assert {option.name for option in dataclasses.fields(CommonOptions)} <= set(parameters)
    expected = {name: given.get(name, p.default) for name, p in parameters.items() if name not in SCHEDULER_OPTIONS}
    assert scheduler._rebuild.arguments == expected
    rebuilt = scheduler._rebuild(make_optimizer(lr=1e-2))
    assert [rebuilt.lr_lambdas[0](t) for t in range(42)] == [scheduler.lr_lambdas[0](t) for t in range(42)]


@pytest.mark.parametrize("factory", OWN_OPTIONS, ids=lambda f: f.__name__)
def test_the_common_options_have_one_default_in_every_factory(factory):
    # The defaults live in the public signatures; they are the same everywhere (one row each in the docs' table of
    # common options), but for the warmup shape that names `exponential_warmup_cosine`.
    reference = inspect.signature(get_warmup_cosine_schedule).parameters
    parameters = inspect.signature(factory).parameters
    for option in dataclasses.fields(CommonOptions):
        expected = reference[option.name].default
        if factory is get_exponential_warmup_cosine_schedule and option.name == "warmup_type":
            expected = "exponential"
        assert parameters[option.name].default == expected, option.name
        assert parameters[option.name].kind == reference[option.name].kind, option.name
