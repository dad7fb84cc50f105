"""The phase engine: every shape against an independent reference written from the contract ("Phases"), the four
presets against the phase lists they stand for (bit for bit), and every bad phase list refused by name."""

from __future__ import annotations

import copy
import io
import math
import pickle
from fractions import Fraction

import mpmath
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hf_lrsched import describe, get_phases_schedule, get_schedule, schedule_multipliers
from hf_lrsched.phases import multipliers

from .helpers import make_optimizer

mpmath.mp.dps = 50
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Reference:
    """The contract's "Phases" section, read literally: lengths resolved with exact rationals, each step's phase
    found by a scan, the formulas in mpmath at 50 digits. Shares no code with hf_lrsched."""

    def __init__(self, phases, T, W, m, s=0.0):
        self.T, self.W, self.m, self.s = T, W, m, s
        fixed, rest = [], None
        for i, phase in enumerate(phases):
            if "steps" in phase:
                fixed.append(phase["steps"])
            elif "ratio" in phase:
                fixed.append(math.ceil(Fraction(repr(phase["ratio"])) * T))
            else:
                rest = i
                fixed.append(None)
        if rest is not None:
            fixed[rest] = (T - W) - sum(x for x in fixed if x is not None)
        self.segments = []
        a, level = W, 1.0
        for phase, length in zip(phases, fixed):
            x = self.level(phase.get("from"), level)
            if phase["shape"] == "constant":
                x = self.level(phase.get("from", phase.get("to")), level)
                y = x
            else:
                y = self.level(phase.get("to", "min"), level)
            self.segments.append((a, length, phase, x, y))
            a += length
            level = y
        last = phases[-1] if phases else {}
        named = last.get("to", "min") if last.get("shape") != "constant" else last.get("from", last.get("to"))
        self.final = m if named is None or named == "min" else named

    def level(self, value, previous):
        if value is None:
            return previous
        return self.m if value == "min" else value

    def __call__(self, t):
        if t < self.W:
            return mpmath.mpf(self.s) + (1 - mpmath.mpf(self.s)) * mpmath.mpf(t) / self.W
        if t >= self.T:
            return mpmath.mpf(self.final)
        for a, length, phase, x, y in self.segments:
            if a <= t < a + length:
                u = mpmath.mpf(t - a) / length
                x, y = mpmath.mpf(x), mpmath.mpf(y)
                shape = phase["shape"]
                if shape == "constant":
                    return x
                if shape == "exponential":
                    return x * (y / x) ** u
                if shape == "linear":
                    g = 1 - u
                elif shape == "cosine":
                    g = (1 + mpmath.cos(mpmath.pi * u)) / 2
                elif shape == "1-sqrt":
                    g = 1 - mpmath.sqrt(u)
                elif shape == "power":
                    g = 1 - u ** mpmath.mpf(phase["p"])
                else:  # rex
                    g = (1 - u) / (mpmath.mpf(1) / 2 + (1 - u) / 2)
                return y + (x - y) * g
        raise AssertionError(f"no phase holds step {t}")


SIMPLE_SHAPES = ["constant", "linear", "cosine", "1-sqrt", "power", "exponential", "rex"]


@st.composite
def phase_lists(draw):
    T = draw(st.integers(1, 400))
    W = draw(st.integers(0, T - 1))
    D = T - W
    count = draw(st.integers(1, min(10, D)))
    cuts = (
        sorted(draw(st.lists(st.integers(1, D - 1), min_size=count - 1, max_size=count - 1, unique=True)))
        if count > 1
        else []
    )
    lengths = [b - a for a, b in zip([0, *cuts], [*cuts, D])]
    rest = draw(st.one_of(st.none(), st.integers(0, count - 1)))
    m = draw(st.sampled_from([0.0, 0.1, 0.37]))
    level = st.one_of(st.floats(0.0, 1.0), st.just("min"), st.just(1.0), st.just(0.0))
    phases = []
    for i, length in enumerate(lengths):
        shape = draw(st.sampled_from(SIMPLE_SHAPES))
        phase = {"shape": shape}
        if i != rest:
            phase["steps"] = length
        if shape == "constant":
            if draw(st.booleans()):
                phase[draw(st.sampled_from(["from", "to"]))] = draw(level)
        else:
            if draw(st.booleans()):
                phase["from"] = draw(level)
            if draw(st.booleans()):
                phase["to"] = draw(level)
        if shape == "power":
            phase["p"] = draw(st.sampled_from([0.4, 1.0, 2.0, 0.05, 7.5]))
        if shape == "exponential":  # geometric: both levels above 0, including the defaults
            phase["from"] = draw(st.floats(0.01, 1.0))
            phase["to"] = draw(st.floats(0.01, 1.0))
        phases.append(phase)
    return T, W, m, phases


@SETTINGS
@given(config=phase_lists())
def test_every_shape_matches_the_contract_at_every_step(config):
    T, W, m, phases = config
    scheduler = get_phases_schedule(make_optimizer(lr=1.0), W, T, phases=phases, min_lr_ratio=m)
    reference = Reference(phases, T, W, m)
    lam = scheduler.lr_lambdas[0]
    for t in range(T + 3):
        assert abs(lam(t) - float(reference(t))) <= 1e-12, (t, phases)
    # the whole curve is the lambda's, bit for bit
    assert multipliers(lam, T + 2) == [lam(t) for t in range(T + 3)]


def test_boundaries_are_exact_integers_with_ratios_read_as_written():
    # ceil(0.3 * 10) is 3 with 0.3 read as written (the float 0.3 * 10 is 3.0000000000000004, whose ceil is 4).
    scheduler = get_phases_schedule(
        make_optimizer(lr=1.0), 0, 10, phases=[{"shape": "constant", "ratio": 0.3}, {"shape": "linear"}]
    )
    curve = [scheduler.lr_lambdas[0](t) for t in range(11)]
    assert curve[:3] == [1.0] * 3 and curve[3] == 1.0 and curve[4] == pytest.approx(1 - 1 / 7)
    assert [phase["steps"] for phase in describe(scheduler).phases] == [3, 7]


def test_a_million_steps_of_ten_phases_need_no_loop_over_phases():
    phases = [{"shape": s, "steps": 100_000} for s in ["cosine", "linear", "1-sqrt", "rex", "constant"] * 2]
    for i, phase in enumerate(phases):
        phase["from"] = 1.0 if i % 2 == 0 else 0.5
    lam = get_phases_schedule(make_optimizer(lr=1.0), 0, 10**6, phases=phases, min_lr_ratio=0.1).lr_lambdas[0]
    reference = Reference(phases, 10**6, 0, 0.1)
    for t in [0, 99_999, 100_000, 100_001, 499_999, 500_000, 999_999, 10**6, 10**9]:
        assert abs(lam(t) - float(reference(t))) <= 1e-12


# The presets are phase lists: each equals, bit for bit, the list the contract says it stands for.

common_options = dict(
    warmup_type=st.sampled_from(["linear", "exponential", "cosine"]),
    warmup_start_ratio=st.one_of(st.just(0.0), st.floats(0.0, 0.99)),
    warmup_exp_rate=st.one_of(st.just(5.0), st.floats(0.1, 20.0)),
    floor=st.one_of(st.just(None), st.floats(0.0, 0.99), st.just(("min_lr", 1e-4))),
)


def _common(warmup_type, warmup_start_ratio, warmup_exp_rate, floor):
    options = dict(warmup_type=warmup_type, warmup_start_ratio=warmup_start_ratio, warmup_exp_rate=warmup_exp_rate)
    if isinstance(floor, tuple):
        options["min_lr"] = floor[1]
    elif floor is not None:
        options["min_lr_ratio"] = floor
    return options


def assert_same_rates(preset, phases, steps):
    for fn_a, fn_b in zip(preset.lr_lambdas, phases.lr_lambdas):
        assert [fn_a(t) for t in range(steps)] == [fn_b(t) for t in range(steps)]
    assert preset.base_lrs == phases.base_lrs


@SETTINGS
@given(total=st.integers(1, 300), warmup_share=st.floats(0, 1), **common_options)
def test_warmup_cosine_is_one_cosine_phase(total, warmup_share, **common):
    options = _common(**common)
    W = int(warmup_share * total)
    groups = [1e-3, 3e-3]
    for name in ("warmup_cosine", "exponential_warmup_cosine"):
        preset = get_schedule(name, make_optimizer(groups=groups), W, total, **options)
        if name == "exponential_warmup_cosine":
            options = {**options, "warmup_type": options["warmup_type"]}
        phases = [{"shape": "cosine", "to": "min"}] if W < total else []
        other = get_schedule("phases", make_optimizer(groups=groups), W, total, phases=phases, **options)
        assert_same_rates(preset, other, total + 3)


@SETTINGS
@given(
    total=st.integers(1, 300),
    warmup_share=st.floats(0, 1),
    decay_share=st.floats(0, 1),
    decay_type=st.sampled_from(["cosine", "linear", "1-sqrt"]),
    by_ratio=st.booleans(),
    **common_options,
)
def test_wsd_is_a_constant_and_a_decay_phase(total, warmup_share, decay_share, decay_type, by_ratio, **common):
    options = _common(**common)
    W = int(warmup_share * total)
    if by_ratio:
        ratio = round(decay_share * (total - W) / total, 3)
        decay = math.ceil(Fraction(repr(ratio)) * total)
        assume(decay <= total - W)
        options["decay_ratio"] = ratio
    else:
        decay = int(decay_share * (total - W))
        options["num_decay_steps"] = decay
    preset = get_schedule("wsd", make_optimizer(groups=[1e-3, 3e-3]), W, total, decay_type=decay_type, **options)
    phases = [{"shape": "constant", "steps": total - W - decay}, {"shape": decay_type, "steps": decay, "to": "min"}]
    phases = [phase for phase in phases if phase["steps"] > 0]  # a phase of 0 steps is no phase
    common_only = {k: v for k, v in options.items() if k not in ("decay_ratio", "num_decay_steps")}
    other = get_schedule("phases", make_optimizer(groups=[1e-3, 3e-3]), W, total, phases=phases, **common_only)
    assert_same_rates(preset, other, total + 3)


@SETTINGS
@given(
    total=st.integers(1, 400),
    warmup_share=st.floats(0, 1),
    num_cycles=st.integers(1, 8),
    free=st.booleans(),
    first=st.integers(1, 60),
    cycle_mult=st.one_of(st.just(1.0), st.just(2.0), st.floats(1.0, 3.0)),
    cycle_decay=st.floats(0.05, 1.0),
    restart_warmup_steps=st.integers(0, 3),
    **common_options,
)
def test_growing_restarts_is_one_restarts_phase(
    total, warmup_share, num_cycles, free, first, cycle_mult, cycle_decay, restart_warmup_steps, **common
):
    options = _common(**common)
    W = int(warmup_share * total)
    cycles = dict(cycle_mult=cycle_mult, cycle_decay=cycle_decay, restart_warmup_steps=restart_warmup_steps)
    cycles.update(first_cycle_steps=first + restart_warmup_steps) if free else cycles.update(num_cycles=num_cycles)
    try:
        preset = get_schedule(
            "cosine_with_growing_restarts", make_optimizer(groups=[1e-3, 3e-3]), W, total, **cycles, **options
        )
    except ValueError:
        assume(False)
    assume(W < total)
    other = get_schedule(
        "phases",
        make_optimizer(groups=[1e-3, 3e-3]),
        W,
        total,
        phases=[{"shape": "restarts", **cycles}],
        **options,
    )
    assert_same_rates(preset, other, total + 3)


# Documented phase lists: multi-period WSD, REX and a power-0.4 cooldown.

MULTI_PERIOD_WSD = [
    {"shape": "constant", "ratio": 0.4},
    {"shape": "1-sqrt", "ratio": 0.1, "to": 0.3},
    {"shape": "linear", "ratio": 0.05, "to": 1.0},
    {"shape": "constant", "ratio": 0.25},
    {"shape": "1-sqrt"},
]


def test_multi_period_wsd_decays_rewarms_and_decays_again():
    curve = schedule_multipliers("phases", 50, 1000, phases=MULTI_PERIOD_WSD, min_lr_ratio=0.01)
    assert curve[50:450] == [1.0] * 400  # stable
    assert curve[549] == pytest.approx(0.3 + 0.7 * (1 - math.sqrt(99 / 100)))  # the first decay ends near 0.3
    assert curve[550] == pytest.approx(0.3, abs=1e-15) and curve[600] == 1.0  # the re-warm, from 0.3 to the peak
    assert curve[600:850] == [1.0] * 250 and curve[1000] == 0.01


def test_rex_is_the_reflected_exponential():
    curve = schedule_multipliers("phases", 0, 100, phases=[{"shape": "rex"}])
    assert curve[0] == 1.0 and curve[50] == pytest.approx(0.5 / 0.75) and curve[100] == 0.0


# Bad phase lists: a clear error naming the phase (its index and shape) and the value.


@pytest.mark.parametrize(
    "phases,error,message",
    [
        (
            [{"shape": "constant", "steps": 30}, {"shape": "cosine", "ratio": 0.5}],
            ValueError,
            r"add up to 80 steps, but the D = T - W = 100 - 10 = 90 steps.*phase 0 \(constant\): 30 steps; "
            r"phase 1 \(cosine\): ratio 0.5 of T=100 -> 50 steps",
        ),
        ([{"shape": "constant"}, {"shape": "cosine"}], ValueError, "Phases 0 and 1 both give no length"),
        ([{"shape": "cosin"}], ValueError, r"Phase 0: `shape` must be one of .* got 'cosin'. Did you mean 'cosine'"),
        ([{"shape": "linear", "stpes": 90}], ValueError, r"unknown key 'stpes'.*Did you mean 'steps'"),
        ([{"shape": "cosine", "p": 2}], ValueError, r"unknown key 'p' \(only for a 'power' phase\)"),
        ([{"shape": "cosine", "num_cycles": 2}], ValueError, r"'num_cycles' \(only for a 'restarts' phase\)"),
        ([{"shape": "linear", "to": 1.5}], ValueError, r"Phase 0 \(linear\): `to` must be a level in \[0, 1\]"),
        ([{"shape": "linear", "from": -0.1}], ValueError, r"`from` must be a level in \[0, 1\].*got -0.1"),
        ([{"shape": "linear", "to": "max"}], ValueError, r"`to` must be a level .* or 'min'.*got 'max'"),
        ([{"shape": "linear", "to": True}], TypeError, r"`to` must be a level"),
        ([{"shape": "exponential", "from": 1.0}], ValueError, r"Phase 0 \(exponential\): .*both must be > 0"),
        ([{"shape": "power"}], ValueError, r"Phase 0 \(power\): a power phase needs its exponent `p` > 0"),
        ([{"shape": "power", "p": 0}], ValueError, r"Phase 0 \(power\): p. must be in \(0, inf\)"),
        (
            [{"shape": "constant", "from": 1.0, "to": 0.5}],
            ValueError,
            r"Phase 0 \(constant\): a constant phase has one level",
        ),
        (
            [{"shape": "constant", "steps": 0}, {"shape": "cosine"}],
            ValueError,
            r"Phase 0 \(constant\): steps. must be an integer >= 1",
        ),
        ([{"shape": "constant", "steps": 5, "ratio": 0.1}], ValueError, "as `steps` or as `ratio`, not both"),
        ([{"shape": "constant", "steps": 90}, {"shape": "cosine"}], ValueError, "leave 0 steps for phase 1"),
        ("cosine", TypeError, "`phases` must be a list of phases"),
        ([["cosine"]], TypeError, "Phase 0 must be a dict"),
        (
            [{"shape": "restarts", "num_cycles": 200}],
            ValueError,
            r"Phase 0 \(restarts\): `num_cycles`=200 .* does not fit",
        ),
    ],
)
def test_bad_phase_lists_are_refused_by_name(phases, error, message):
    with pytest.raises(error, match=message):
        get_phases_schedule(make_optimizer(lr=1.0), 10, 100, phases=phases)


def test_a_phases_schedule_pickles_copies_and_loads_weights_only():
    scheduler = get_phases_schedule(
        make_optimizer(lr=1.0),
        5,
        200,
        phases=[{"shape": "restarts", "steps": 100, "num_cycles": 3}, {"shape": "power", "p": 0.4, "from": 0.8}],
        min_lr_ratio=0.05,
    )
    curve = [scheduler.lr_lambdas[0](t) for t in range(201)]
    for clone in (pickle.loads(pickle.dumps(scheduler)), copy.deepcopy(scheduler)):
        assert [clone.lr_lambdas[0](t) for t in range(201)] == curve
    buffer = io.BytesIO()
    torch.save(scheduler.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    assert state["_schedule"]["options"]["phases"][1] == {
        "shape": "power",
        "steps": 95,
        "from": 0.8,
        "to": "min",
        "p": 0.4,
    }
