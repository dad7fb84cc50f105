"""Exact means exact: every restart boundary and every auto warmup length against an independent reference.

The reference below is written from the math page (`docs/schedules/math.md`) alone: `C_i` as the real number of the exact binary values of
the floats given (`fractions.Fraction` where the numbers stay small, mpmath at 400 bits otherwise), `B_i` that
number rounded half up, the cycle of a step by its real-valued index, and the multiplier by the contract's formulas.
It shares no code with `hf_lrsched`. Hypothesis fuzzes every option over extreme values, and each example is checked
at every kind of boundary: `B_i - 1`, `B_i`, `B_i + 1`, `T - 1`, `T`, `T + 1`.
"""

import math
import re
import time
from fractions import Fraction

import mpmath
import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from hf_lrsched import get_cosine_with_growing_restarts_schedule, resolve_auto_warmup_steps

from .helpers import cycles_of

PREC = 400  # bits of the mpmath reference
EXACT_BITS = 40_000  # below this size, the reference computes C_i as an exact fraction


class Undecided(Exception):
    """The 400-bit reference cannot decide (never seen: the exact fraction handles every possible tie)."""


def optimizer(lr=1.0, betas=(0.9, 0.999)):
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr, betas=betas)


class Reference:
    """`cosine_with_growing_restarts` straight from the contract."""

    def __init__(
        self,
        T,
        W,
        *,
        num_cycles=None,
        first_cycle_steps=None,
        cycle_mult=2.0,
        cycle_decay=1.0,
        restart_warmup_steps=0,
        min_lr_ratio=0.0,
        warmup_type="linear",
        warmup_start_ratio=0.0,
        warmup_exp_rate=5.0,
    ):
        self.T, self.W, self.D = T, W, T - W
        self.warmup = (warmup_type, warmup_start_ratio, warmup_exp_rate)
        self.n, self.L0, self.r = num_cycles, first_cycle_steps, Fraction(cycle_mult)
        self.gamma, self.R, self.m = cycle_decay, restart_warmup_steps, min_lr_ratio

    def C_exact(self, i):
        r = self.r
        if r == 1:
            return Fraction(i * self.D, self.n) if self.n else Fraction(i * self.L0)
        if self.n:
            return self.D * (r**i - 1) / (r**self.n - 1)
        return self.L0 * (r**i - 1) / (r - 1)

    def C_mp(self, i):
        with mpmath.workprec(PREC):
            r = mpmath.mpf(self.r.numerator) / self.r.denominator
            if self.n:
                return self.D * mpmath.powm1(r, i) / mpmath.powm1(r, self.n)
            return self.L0 * mpmath.powm1(r, i) / (r - 1)

    def B(self, i):
        if i <= 0:
            return 0
        if self.n and i >= self.n:
            return self.D
        bits = self.r.denominator.bit_length() * max(i, self.n or 0) + self.r.numerator.bit_length() * max(
            i, self.n or 0
        )
        if self.r == 1 or bits < EXACT_BITS:
            c = self.C_exact(i)
            return math.floor(c + Fraction(1, 2))
        with mpmath.workprec(PREC):
            x = self.C_mp(i) + mpmath.mpf(0.5)
            f = mpmath.floor(x)
            if x - f < mpmath.mpf(2) ** -300:
                raise Undecided(i)
            return int(f)

    def locate(self, tau):
        """(i, B_i, B_{i+1}) with B_i <= tau < B_{i+1}, from the real-valued index."""
        if self.r == 1:
            i = int(tau * self.n // self.D) if self.n else tau // self.L0
        else:
            with mpmath.workprec(PREC):
                r = mpmath.mpf(self.r.numerator) / self.r.denominator
                if self.n:
                    real = mpmath.log1p(tau * mpmath.powm1(r, self.n) / self.D) / mpmath.log(r)
                else:
                    real = mpmath.log1p(tau * (r - 1) / self.L0) / mpmath.log(r)
                i = int(mpmath.floor(real))
        if self.n:
            i = min(i, self.n - 1)
        while self.B(i) > tau:
            i -= 1
        while self.B(i + 1) <= tau:
            i += 1
        return i, self.B(i), self.B(i + 1)

    def lam(self, t):
        if t < self.W:
            kind, s, k = self.warmup
            u = t / self.W
            w = {"linear": u, "exponential": 1 - math.exp(-k * u), "cosine": (1 - math.cos(math.pi * u)) / 2}[kind]
            return s + (1 - s) * w
        if t >= self.T:
            return self.m
        tau = t - self.W
        i, start, end = self.locate(tau)
        peak = self.m + (1 - self.m) * self.gamma**i
        rise = self.R if i >= 1 else 0
        j, length = tau - start, end - start
        if j < rise:
            return self.m + (peak - self.m) * j / rise
        q = (j - rise) / (length - rise)
        return self.m + (peak - self.m) * (1 + math.cos(math.pi * q)) / 2


def assert_same(ours, ref, *, indices, steps):
    cycles = cycles_of(ours)
    for i in indices:
        assert cycles.start(i) == ref.B(i), f"B_{i}"
    lam = ours.lr_lambdas[0]
    for t in steps:
        if t < 0:
            continue
        expected = ref.lam(t)
        got = lam(t)
        # Compared above the floor: a wrong cycle moves (lambda - m) by far more than rounding does (and the cycle
        # itself is compared below, for peaks too small to show).
        assert got - ref.m == pytest.approx(expected - ref.m, rel=1e-9, abs=1e-15), f"step {t}"
        if ref.W <= t < ref.T:
            assert cycles.locate(t - ref.W) == ref.locate(t - ref.W), f"the cycle of step {t}"


def boundary_steps(ref, indices):
    steps = {ref.T - 1, ref.T, ref.T + 1, ref.W - 1, ref.W, ref.W + 1, 1, ref.W // 2}
    for i in indices:
        b = ref.B(i)
        if b <= ref.D:
            steps |= {ref.W + b - 1, ref.W + b, ref.W + b + 1}
    return sorted(steps)


def sample_indices(count, data_draw=None):
    """Every boundary for few cycles; else the first, the last and a spread between."""
    if count <= 400:
        return list(range(count + 1))
    spread = {count * k // 97 for k in range(98)}
    return sorted(set(range(12)) | set(range(count - 12, count + 1)) | spread)


# ---- the reproducers of the issue --------------------------------------------------------------------------------


def test_a_tie_rounds_half_up():
    # C_2 = 10 + 10.5 = 20.5 (plus the 4e-16 of the binary 1.05): B_2 = 21, so step 20 is still in cycle 1.
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 0, 100, first_cycle_steps=10, cycle_mult=1.05)
    lam = ours.lr_lambdas[0]
    assert lam(20) == pytest.approx((1 + math.cos(math.pi * 10 / 11)) / 2, rel=1e-12)
    assert lam(21) == 1.0


def test_r_near_one_loses_no_step():
    T = 10**9
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 0, T, num_cycles=3, cycle_mult=1 + 1e-9)
    assert ours.lr_lambdas[0](666666666) == 1.0  # C_2 = 666666666.33: the restart
    assert ours.lr_lambdas[0](666666665) < 1e-15
    ref = Reference(T, 0, num_cycles=30, cycle_mult=1 + 1e-9)
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 0, T, num_cycles=30, cycle_mult=1 + 1e-9)
    assert_same(ours, ref, indices=range(31), steps=boundary_steps(ref, range(31)))


def test_the_documented_case_is_exact():
    T = 10**9
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 1, T, num_cycles=8, cycle_mult=1.0001)
    ref = Reference(T, 1, num_cycles=8, cycle_mult=1.0001)
    assert ref.B(2) == 249925009
    assert_same(ours, ref, indices=range(9), steps=boundary_steps(ref, range(9)))


def test_a_valid_tight_fit_is_accepted():
    # C_1 = 1.4999999993: B_1 = 1, and cycle 1 is 2 steps, longer than R = 1.
    ours = get_cosine_with_growing_restarts_schedule(
        optimizer(), 0, 3, num_cycles=2, cycle_mult=1 + 1e-9, restart_warmup_steps=1
    )
    assert [ours.lr_lambdas[0](t) for t in range(4)] == [1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(num_cycles=10**7, cycle_mult=1 + 1e-12),
        dict(num_cycles=10**6, cycle_mult=1.0000001),
        dict(num_cycles=10**7, cycle_mult=1.0),
        dict(first_cycle_steps=1, cycle_mult=1 + 1e-12),
    ],
)
def test_construction_does_not_scan_cycles(kwargs):
    start = time.perf_counter()
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 0, 15_000_000, **kwargs)
    elapsed = time.perf_counter() - start
    # Not a speed test (benchmarks/overhead.py measures it): a scan of 10^7 cycles takes seconds, this takes ms.
    assert elapsed < 2.0
    ref = Reference(15_000_000, 0, **kwargs)
    indices = sample_indices(kwargs.get("num_cycles", 1000))
    assert_same(ours, ref, indices=indices, steps=boundary_steps(ref, indices))


def test_many_cycles_that_cannot_all_be_longer_than_r_are_refused_by_name():
    with pytest.raises(ValueError, match=r"cycle \d+ would be 1 steps long.*restart_warmup_steps=1") as info:
        get_cosine_with_growing_restarts_schedule(
            optimizer(), 0, 15_000_000, num_cycles=10**7, cycle_mult=1 + 1e-12, restart_warmup_steps=1
        )
    index = int(re.search(r"cycle (\d+) would be", str(info.value)).group(1))
    ref = Reference(15_000_000, 0, num_cycles=10**7, cycle_mult=1 + 1e-12)
    assert ref.B(index + 1) - ref.B(index) == 1
    assert all(ref.B(i + 1) - ref.B(i) >= 2 for i in range(1, index))  # it names the first short cycle


def test_huge_options_compute_or_refuse_clearly():
    # A first cycle longer than any run: one cycle, computed in integers (no OverflowError).
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 0, 100, first_cycle_steps=10**400)
    assert [ours.lr_lambdas[0](t) for t in (0, 99, 100)] == [1.0, 1.0, 0.0]
    # A huge growth factor: free mode computes it; fit mode cannot fit its cycles and says so at construction.
    ours = get_cosine_with_growing_restarts_schedule(optimizer(), 0, 100, first_cycle_steps=10, cycle_mult=1e200)
    assert ours.lr_lambdas[0](10) == 1.0 and ours.lr_lambdas[0](99) > 0.99
    with pytest.raises(ValueError, match=r"cycle 0 would be 0 steps long"):
        get_cosine_with_growing_restarts_schedule(optimizer(), 0, 100, num_cycles=3, cycle_mult=1e200)


# ---- fuzzed against the reference ----------------------------------------------------------------------------------

MULTS = [1 + 1e-12, 1 + 1e-9, 1.0001, 1.05, 1.5, 2.0, 3.0, 10.0, 1000.0, 1.0]
FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def fit_configs(draw):
    r = draw(st.one_of(st.sampled_from(MULTS), st.floats(1.0, 5.0)))
    T = draw(st.one_of(st.integers(1, 200), st.integers(1, 10**12)))
    W = draw(st.one_of(st.just(0), st.just(T), st.integers(0, T)))
    D = T - W
    assume(D >= 1)
    # n such that the first cycle is at least about a step: the valid region, plus its edge.
    n_max = D if r == 1 else max(1, int(math.log1p(D * (r - 1)) / math.log(r)))
    n = draw(st.integers(1, min(n_max + 1, 10**6)))
    first = D / n if r == 1 else D * (r - 1) / math.expm1(n * math.log(r))
    k = draw(st.integers(0, min(n, 60)))
    near = int(first * r**k) if first * r**k < 1e15 else 0
    R = draw(st.one_of(st.just(0), st.integers(max(0, near - 2), near + 2), st.integers(0, 5)))
    return dict(T=T, W=W, num_cycles=n, cycle_mult=r, restart_warmup_steps=R)


@st.composite
def free_configs(draw):
    r = draw(st.one_of(st.sampled_from(MULTS), st.floats(1.0, 5.0)))
    T = draw(st.one_of(st.integers(1, 200), st.integers(1, 10**12)))
    W = draw(st.one_of(st.just(0), st.integers(0, T - 1)))
    first = draw(st.one_of(st.integers(1, 10), st.integers(1, max(1, T - W)), st.integers(1, 10**6)))
    R = draw(st.one_of(st.just(0), st.just(first - 1), st.integers(0, first - 1)))
    return dict(T=T, W=W, first_cycle_steps=first, cycle_mult=r, restart_warmup_steps=R)


def build_both(config, gamma, m, warmup=("linear", 0.0, 5.0)):
    T, W = config["T"], config["W"]
    options = {k: v for k, v in config.items() if k not in ("T", "W")}
    options.update(warmup_type=warmup[0], warmup_start_ratio=warmup[1], warmup_exp_rate=warmup[2])
    ref = Reference(T, W, **options, cycle_decay=gamma, min_lr_ratio=m)
    try:
        ours = get_cosine_with_growing_restarts_schedule(
            optimizer(), W, T, **options, cycle_decay=gamma, min_lr_ratio=m
        )
    except ValueError as error:
        return None, ref, error
    return ours, ref, None


def reference_validity(ref, error):
    """A refusal must name a cycle that the reference finds too short; an acceptance, all cycles long enough."""
    if error is not None:
        found = re.search(r"cycle (\d+) would be (-?\d+) steps long", str(error))
        assert found, str(error)
        i, length = int(found.group(1)), int(found.group(2))
        assert ref.B(i + 1) - ref.B(i) == length
        assert length < (1 if i == 0 else ref.R + 1)
        return False
    return True


WARMUPS = st.tuples(
    st.sampled_from(["linear", "exponential", "cosine"]),
    st.one_of(st.just(0.0), st.floats(0.0, 0.99)),
    st.one_of(st.just(5.0), st.floats(0.01, 50.0)),
)
GAMMAS = st.one_of(st.just(1.0), st.sampled_from([1e-300, 1e-12, 0.5]), st.floats(1e-6, 1.0))
FLOORS = st.one_of(st.just(0.0), st.sampled_from([0.999999, 1 - 1e-12]), st.floats(0.0, 0.99))


@FUZZ
@given(config=fit_configs(), gamma=GAMMAS, m=FLOORS, warmup=WARMUPS)
@example(
    config=dict(T=10**9, W=0, num_cycles=30, cycle_mult=1 + 1e-9, restart_warmup_steps=0),
    gamma=1.0,
    m=0.0,
    warmup=("linear", 0.0, 5.0),
)
@example(
    config=dict(T=3, W=0, num_cycles=2, cycle_mult=1 + 1e-9, restart_warmup_steps=1),
    gamma=1.0,
    m=0.0,
    warmup=("linear", 0.0, 5.0),
)
def test_fit_mode_matches_the_reference(config, gamma, m, warmup):
    ours, ref, error = build_both(config, gamma, m, warmup)
    n = config["num_cycles"]
    try:
        if not reference_validity(ref, error):
            return
        indices = sample_indices(n)
        if n <= 2000:  # an accepted configuration: every cycle long enough, by the reference
            lengths = [ref.B(i + 1) - ref.B(i) for i in range(n)]
            assert lengths[0] >= 1 and all(length > ref.R for length in lengths[1:])
        assert_same(ours, ref, indices=indices, steps=boundary_steps(ref, indices))
    except Undecided:
        assume(False)


@FUZZ
@given(config=free_configs(), gamma=GAMMAS, m=FLOORS, warmup=WARMUPS)
@example(
    config=dict(T=100, W=0, first_cycle_steps=10, cycle_mult=1.05, restart_warmup_steps=0),
    gamma=1.0,
    m=0.0,
    warmup=("linear", 0.0, 5.0),
)
@example(
    config=dict(T=10**12, W=0, first_cycle_steps=7, cycle_mult=1.5, restart_warmup_steps=6),
    gamma=1.0,
    m=0.0,
    warmup=("exponential", 0.1, 5.0),
)
def test_free_mode_matches_the_reference(config, gamma, m, warmup):
    ours, ref, error = build_both(config, gamma, m, warmup)
    assert error is None, error
    try:
        last, _, _ = ref.locate(ref.D - 1) if ref.D else (0, 0, 0)
        indices = sample_indices(last + 1)
        assert_same(ours, ref, indices=indices, steps=boundary_steps(ref, indices))
    except Undecided:
        assume(False)


# ---- auto warmup ---------------------------------------------------------------------------------------------------


def reference_auto_warmup(beta2, T, ratio=0.1, warmup_type="linear", k=5.0):
    scale = Fraction(repr(k)) if warmup_type == "exponential" else 2
    W = math.ceil(scale / (1 - Fraction(repr(beta2))))
    return min(W, math.floor(Fraction(repr(ratio)) * T))


@pytest.mark.parametrize(
    "beta2,T,ratio,expected",
    [
        (0.99999, 10**7, 1.0, 200000),
        (0.999, 100, 0.29, 29),
        (0.9999, 10**6, 1.0, 20000),
        (0.95, 1000, 0.1, 40),
        (0.0, 10, 1.0, 2),
        (0.98, 100, 0.5, 50),
    ],
)
def test_auto_warmup_is_exact(beta2, T, ratio, expected):
    W = resolve_auto_warmup_steps(optimizer(betas=(0.9, beta2)), T, max_auto_warmup_ratio=ratio)
    assert W == expected == reference_auto_warmup(beta2, T, ratio)


@settings(max_examples=300, deadline=None)
@given(
    beta2=st.one_of(st.floats(0.0, 0.999999999), st.sampled_from([0.9, 0.99, 0.999, 0.9999, 0.99999, 0.999999])),
    T=st.integers(1, 10**12),
    ratio=st.one_of(st.floats(0.0, 1.0), st.sampled_from([0.01, 0.07, 0.1, 0.29, 0.3, 0.57, 1.0])),
    warmup_type=st.sampled_from(["linear", "exponential", "cosine"]),
    k=st.one_of(st.just(5.0), st.floats(0.01, 100.0)),
)
def test_auto_warmup_matches_the_reference(beta2, T, ratio, warmup_type, k):
    W = resolve_auto_warmup_steps(
        optimizer(betas=(0.9, beta2)), T, warmup_type=warmup_type, warmup_exp_rate=k, max_auto_warmup_ratio=ratio
    )
    assert W == reference_auto_warmup(beta2, T, ratio, warmup_type, k)


def test_auto_warmup_reads_tensor_betas_and_refuses_what_it_cannot_read():
    tensor_betas = torch.optim.AdamW(
        [torch.nn.Parameter(torch.zeros(1))], betas=(torch.tensor(0.9), torch.tensor(0.999))
    )
    assert resolve_auto_warmup_steps(tensor_betas, 10**5) == 2000  # the float32 0.999 read as written
    one_beta = torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))], "betas": (0.9,)}])
    with pytest.raises(ValueError, match=r"betas.*pair.*param group 0.*\(0\.9,\)"):
        resolve_auto_warmup_steps(one_beta, 100)
    no_groups = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    no_groups.param_groups.clear()
    with pytest.raises(ValueError, match=r"has none.*param groups|param groups.*has none"):
        resolve_auto_warmup_steps(no_groups, 100)
    two = torch.optim.AdamW(
        [
            {"params": [torch.nn.Parameter(torch.zeros(1))], "betas": (0.9, 0.999)},
            {"params": [torch.nn.Parameter(torch.zeros(1))], "betas": (0.9, 0.99)},
        ]
    )
    with pytest.raises(ValueError, match=r"different beta2 values \[0\.999, 0\.99\]"):
        resolve_auto_warmup_steps(two, 100)
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match="SGD has no `betas`"):
        resolve_auto_warmup_steps(sgd, 100)
