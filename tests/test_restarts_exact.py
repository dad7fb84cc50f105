"""The cycle index of `cosine_with_growing_restarts` is exact at every boundary, against a high-precision reference."""

import decimal
import math

import pytest

from hf_lrsched.lr_lambdas import Cycles, cycle_index, cycle_start
from hf_lrsched.schedules import _fit_first_cycle_steps

from .test_schedules import make_optimizer


def reference_starts(first_cycle_steps, cycle_mult, count):
    """`B_i = floor(L_0 (r^i - 1) / (r - 1) + 1/2)` for i < count, in 80-digit decimal arithmetic on the same floats."""
    with decimal.localcontext() as ctx:
        ctx.prec = 80
        L0, r = decimal.Decimal(first_cycle_steps), decimal.Decimal(cycle_mult)
        if r == 1:
            return [int(math.floor(i * L0 + decimal.Decimal("0.5"))) for i in range(count)]
        starts, power = [], decimal.Decimal(1)
        for _ in range(count):
            starts.append(int((L0 * (power - 1) / (r - 1) + decimal.Decimal("0.5")).to_integral_value(decimal.ROUND_FLOOR)))
            power *= r
        return starts


def assert_exact_at_boundaries(starts, *, first_cycle_steps, cycle_mult, num_cycles=None, decay_steps):
    cycles = Cycles(first_cycle_steps, cycle_mult, math.log(cycle_mult), num_cycles, decay_steps)
    for i, b in enumerate(starts):
        assert cycle_start(i, cycles) == b, f"B_{i}"
        if b >= decay_steps:
            break
        assert cycle_index(b, cycles)[:2] == (i, b), f"start of cycle {i} at {b}"
        if i > 0:
            assert cycle_index(b - 1, cycles)[0] == i - 1, f"last step of cycle {i - 1}"


@pytest.mark.parametrize(
    "first,mult,decay_steps",
    [
        (10, 3.0, 10**6),  # timm's miss at 1210
        (10, 1.5, 10**9),
        (7, 1.5, 10**9),  # ties: 7 (1.5^i - 1) / 0.5 lands on .5 exactly
        (1000, 1.0001, 10**9),  # about 46,000 cycles
        (3, 1.0001, 10**5),
        (1, 1.05, 10**9),  # hundreds of cycles
        (5, 1.0, 10**4),
        (1, 2.0, 10**9),
    ],
)
def test_free_mode_exact_at_every_boundary(first, mult, decay_steps):
    count = 1 if mult == 1.0 else int(math.log1p(decay_steps * (mult - 1) / first) / math.log(mult)) + 2
    count = decay_steps // first + 1 if mult == 1.0 else count
    starts = reference_starts(first, mult, min(count, 60_000))
    assert_exact_at_boundaries(starts, first_cycle_steps=first, cycle_mult=mult, decay_steps=decay_steps)


@pytest.mark.parametrize(
    "decay_steps,num_cycles,mult",
    [(10**9, 500, 1.0001), (10**9, 20, 1.5), (12345, 7, 1.3), (10**6, 300, 1.01), (10**9, 1000, 1.0), (1000, 3, 2.0)],
)
def test_fit_mode_exact_at_every_boundary_and_ends_at_d(decay_steps, num_cycles, mult):
    first = _fit_first_cycle_steps(decay_steps, num_cycles, mult)
    starts = reference_starts(first, mult, num_cycles)
    if mult == 1.0:  # fit mode with equal cycles is computed in integers: round(i D / n)
        starts = [(2 * i * decay_steps + num_cycles) // (2 * num_cycles) for i in range(num_cycles)]
    starts.append(decay_steps)
    assert_exact_at_boundaries(
        starts, first_cycle_steps=first, cycle_mult=mult, num_cycles=num_cycles, decay_steps=decay_steps
    )
    last = cycle_index(decay_steps - 1, Cycles(first, mult, math.log(mult), num_cycles, decay_steps))
    assert last == (num_cycles - 1, starts[-2], decay_steps)


def test_scheduler_restarts_exactly_over_a_billion_steps():
    from hf_lrsched import get_cosine_with_growing_restarts_schedule

    warmup, total = 1000, 10**9 + 1000
    scheduler = get_cosine_with_growing_restarts_schedule(
        make_optimizer(), warmup, total, num_cycles=200, cycle_mult=1.03, min_lr_ratio=0.01, cycle_decay=0.99
    )
    lam = scheduler.lr_lambdas[0]
    first = _fit_first_cycle_steps(total - warmup, 200, 1.03)
    starts = reference_starts(first, 1.03, 200)
    for i, b in enumerate(starts[1:], start=1):
        peak = 0.01 + 0.99 * 0.99**i
        assert lam(warmup + b) == pytest.approx(peak, rel=1e-12)
        assert lam(warmup + b - 1) < 0.01 + 1e-6
    assert lam(total) == 0.01
