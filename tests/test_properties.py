"""Invariants of the math page (docs/schedules/math.md) over random valid configurations (hypothesis)."""

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hf_lrsched import get_cosine_with_growing_restarts_schedule, get_schedule, get_warmup_cosine_schedule

from .helpers import cycles_of, make_optimizer

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

common = dict(
    warmup_type=st.sampled_from(["linear", "exponential", "cosine"]),
    warmup_start_ratio=st.floats(0.0, 0.99),
    warmup_exp_rate=st.floats(0.1, 20.0),
    min_lr_ratio=st.floats(0.0, 0.99),
)


@st.composite
def steps(draw, max_total=3000):
    total = draw(st.integers(1, max_total))
    warmup = draw(st.integers(0, total))
    return warmup, total


def check_bounds_and_floor(lam, warmup, total, floor, cap=1.0):
    for t in range(total + 3):
        value = lam(t)
        assert math.isfinite(value)
        if t < warmup:
            assert 0.0 <= value <= 1.0
        else:
            assert floor - 1e-12 <= value <= cap + 1e-12
        if t >= total:
            assert value == floor


def check_monotone_warmup(lam, warmup):
    values = [lam(t) for t in range(warmup)]
    assert all(b > a for a, b in zip(values, values[1:])) or len(values) < 2
    assert all(v < 1.0 + 1e-12 for v in values)


@SETTINGS
@given(wt=steps(), **common)
def test_warmup_cosine_invariants(wt, warmup_type, warmup_start_ratio, warmup_exp_rate, min_lr_ratio):
    warmup, total = wt
    scheduler = get_warmup_cosine_schedule(
        make_optimizer(),
        warmup,
        total,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
    )
    lam = scheduler.lr_lambdas[0]
    check_bounds_and_floor(lam, warmup, total, min_lr_ratio)
    check_monotone_warmup(lam, warmup)
    assert lam(0) == (warmup_start_ratio if warmup else (1.0 if total > 0 else min_lr_ratio))
    if warmup < total:
        assert lam(warmup) == 1.0  # the peak, right after warmup
        decay = [lam(t) for t in range(warmup, total + 1)]
        assert all(b <= a for a, b in zip(decay, decay[1:]))  # the decay never rises again
        # continuity inside the decay phase: a step moves the multiplier by at most pi/2 * (1 - m) / D
        bound = math.pi / 2 * (1 - min_lr_ratio) / (total - warmup) + 1e-12
        assert all(a - b <= bound for a, b in zip(decay, decay[1:]))


@st.composite
def restart_configs(draw):
    warmup, total = draw(steps(max_total=4000))
    cycle_mult = draw(st.one_of(st.just(1.0), st.just(2.0), st.floats(1.0, 3.0)))
    restart_warmup_steps = draw(st.integers(0, 5))
    if draw(st.booleans()):
        return (
            warmup,
            total,
            dict(
                num_cycles=draw(st.integers(1, 12)), cycle_mult=cycle_mult, restart_warmup_steps=restart_warmup_steps
            ),
        )
    first = draw(st.integers(restart_warmup_steps + 1, max(restart_warmup_steps + 1, total)))
    return (
        warmup,
        total,
        dict(first_cycle_steps=first, cycle_mult=cycle_mult, restart_warmup_steps=restart_warmup_steps),
    )


@SETTINGS
@given(config=restart_configs(), cycle_decay=st.floats(0.05, 1.0), **common)
def test_growing_restarts_invariants(
    config, cycle_decay, warmup_type, warmup_start_ratio, warmup_exp_rate, min_lr_ratio
):
    warmup, total, cycle_kwargs = config
    try:
        scheduler = get_cosine_with_growing_restarts_schedule(
            make_optimizer(),
            warmup,
            total,
            cycle_decay=cycle_decay,
            warmup_type=warmup_type,
            warmup_start_ratio=warmup_start_ratio,
            warmup_exp_rate=warmup_exp_rate,
            min_lr_ratio=min_lr_ratio,
            **cycle_kwargs,
        )
    except ValueError as error:  # only fit-mode configurations whose cycles do not fit are refused
        assert "num_cycles" in cycle_kwargs and "does not fit" in str(error)
        return
    lam = scheduler.lr_lambdas[0]
    check_bounds_and_floor(lam, warmup, total, min_lr_ratio)
    check_monotone_warmup(lam, warmup)

    decay_steps = total - warmup
    n = cycle_kwargs.get("num_cycles")
    cycles = cycles_of(scheduler)  # the exact starts are checked against a reference in test_exact.py
    restart_warmup = cycle_kwargs["restart_warmup_steps"]
    i = 0
    while cycles.start(i) < decay_steps:
        start, end = cycles.start(i), cycles.start(i + 1)
        assert end > start
        peak = min_lr_ratio + (1 - min_lr_ratio) * cycle_decay**i
        rise = restart_warmup if i > 0 else 0
        # the restart happens exactly at B_i: at the peak, or on the floor rising to it
        assert lam(warmup + start) == pytest.approx(peak if rise == 0 else min_lr_ratio, rel=1e-12, abs=1e-300)
        if start + rise < decay_steps:
            assert abs(lam(warmup + start + rise) - peak) < 1e-12
        cycle = [lam(warmup + t) for t in range(start + rise, min(end, decay_steps))]
        assert all(b <= a + 1e-15 for a, b in zip(cycle, cycle[1:]))  # monotone inside a cycle's decay
        assert all(min_lr_ratio - 1e-12 <= v <= peak + 1e-12 for v in cycle)
        i += 1
    if n is not None:
        assert i == n  # fit mode: exactly n cycles, the last ending at T on the floor
        assert lam(total) == min_lr_ratio


@SETTINGS
@given(st.integers(1, 10**12), st.integers(1, 10**6), st.floats(1.0, 4.0), st.integers(0, 10**12))
def test_huge_steps_stay_finite_and_bounded(total, first, mult, t):
    assume(first <= total)
    scheduler = get_cosine_with_growing_restarts_schedule(
        make_optimizer(), 0, total, first_cycle_steps=first, cycle_mult=mult, min_lr_ratio=0.1
    )
    value = scheduler.lr_lambdas[0](t)
    assert math.isfinite(value) and 0.1 <= value <= 1.0


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(1, 3000),
    warmup_share=st.floats(0, 1),
    extra=st.integers(0, 50),
    cycles=st.integers(1, 6),
    mult=st.sampled_from([1.0, 1.05, 1.5, 2.0, 3.0]),
    decay=st.sampled_from([1.0, 0.7]),
    rise=st.integers(0, 3),
    floor=st.sampled_from([0.0, 0.1]),
    free=st.booleans(),
    warmup_type=st.sampled_from(["linear", "exponential", "cosine"]),
)
def test_a_whole_curve_is_the_lambda_at_every_step(
    total, warmup_share, extra, cycles, mult, decay, rise, floor, free, warmup_type
):
    """`schedule_multipliers` computes our curves a cycle at a time: the floats must be the lambda's, bit for bit."""
    from hf_lrsched.phases import multipliers

    warmup = int(warmup_share * total)
    common = dict(min_lr_ratio=floor, warmup_type=warmup_type)
    schedulers = [get_schedule("warmup_cosine", make_optimizer(), warmup, total, **common)]
    options = dict(cycle_mult=mult, cycle_decay=decay, restart_warmup_steps=rise, **common)
    if free:
        options.update(first_cycle_steps=rise + 1 + cycles)
    else:
        options.update(num_cycles=cycles)
    try:
        schedulers.append(get_schedule("cosine_with_growing_restarts", make_optimizer(), warmup, total, **options))
    except ValueError:  # cycles that do not fit: refused at construction, nothing to draw
        pass
    decay_steps = min(total - warmup, rise * 7 + cycles)
    for kind in ("cosine", "linear", "1-sqrt"):
        schedulers.append(
            get_schedule(
                "wsd", make_optimizer(), warmup, total, num_decay_steps=decay_steps, decay_type=kind, **common
            )
        )
    for scheduler in schedulers:
        lam = scheduler.lr_lambdas[0]
        assert multipliers(lam, total + extra) == [lam(t) for t in range(total + extra + 1)]
