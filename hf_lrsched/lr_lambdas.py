"""The math of every hf_lrsched schedule: pure functions of the step, no torch.

Each public factory in `hf_lrsched.schedules` binds one of the `_get_*_lr_lambda` functions below with
`functools.partial`, exactly as `transformers.optimization` does, so that a scheduler pickles, deep-copies and
stores nothing but its step count in `state_dict()`. Everything that can be computed once (the warmup length, the
floor, the cycles) is computed by the factory and bound into the partial, grouped in the small named tuples `Warmup`
and `Decay` and the `Cycles` object (few keywords keep a partial call cheap); the functions here only evaluate the
formulas of the math page (`docs/schedules/math.md`) for one step. `Cycles` decides each restart boundary exactly (see its docstring and
`hf_lrsched._exact`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import NamedTuple

from ._exact import START_PRECISION, Dyadic, pow_bounds, round_half_up

WARMUP_TYPES = ("linear", "exponential", "cosine")


class Warmup(NamedTuple):
    """The warmup options bound into a schedule's lambda."""

    type: str  # "linear", "exponential" or "cosine"
    start_ratio: float  # s, the multiplier at step 0
    exp_rate: float  # k, the rate of exponential warmup


class Cycles:
    """
    The cycles of `cosine_with_growing_restarts`, laid out once by its factory: the exact starts `B_i` of
    the math page and, for any decay step `tau`, the cycle that holds it, found in closed form.

    `B_i = floor(C_i + 1/2)` where `C_i` is the real number `L_0 (r^i - 1) / (r - 1)` (free mode) or
    `D (r^i - 1) / (r^n - 1)` (fit mode) of the exact binary values of the floats given. A float evaluation decides
    `B_i` wherever its error bound proves the integer (almost always); near a tie, or where cancellation near `r = 1`
    leaves it open, `hf_lrsched._exact` settles it in integer arithmetic. A logarithm guesses the cycle of a step and
    the exact starts correct the guess, so nothing ever loops over the cycles. The last cycle found is remembered:
    consecutive steps in one cycle cost one comparison, and the memo is checked on every use, never trusted.

    Picklable and deep-copyable (rebuilt from its options; the memo is not carried over).
    """

    __slots__ = (
        "_l0",
        "_log_r",
        "_memo",
        "_n",
        "_r",
        "_scale",
        "_x_n",
        "cycle_decay",
        "cycle_mult",
        "decay_steps",
        "first_cycle_steps",
        "num_cycles",
        "restart_warmup_steps",
    )

    def __init__(
        self,
        decay_steps: int,
        *,
        num_cycles: int | None = None,
        first_cycle_steps: int | None = None,
        cycle_mult: float = 2.0,
        cycle_decay: float = 1.0,
        restart_warmup_steps: int = 0,
    ):
        if (num_cycles is None) == (first_cycle_steps is None):
            raise ValueError(
                "Cycles takes exactly one of `num_cycles` (fit mode) and `first_cycle_steps` (free mode)."
            )
        self.decay_steps = decay_steps  # D = T - W
        self.num_cycles = num_cycles  # n in fit mode (B_n = D), None in free mode
        self.first_cycle_steps = first_cycle_steps  # L_0 in free mode, None in fit mode
        self.cycle_mult = cycle_mult  # r >= 1
        self.cycle_decay = cycle_decay  # gamma: the height of cycle i above the floor is gamma^i
        self.restart_warmup_steps = restart_warmup_steps  # R: steps from the floor back to the peak after a restart
        self._l0 = first_cycle_steps or 0  # the mode's integers, typed as such (0 where the mode has none)
        self._n = num_cycles or 0
        self._r = Dyadic(cycle_mult)
        self._log_r = math.log1p(cycle_mult - 1.0) if cycle_mult < 2.0 else math.log(cycle_mult)
        self._x_n = 0.0 if num_cycles is None else num_cycles * self._log_r
        # C_i = scale * expm1(i log r) on the fast path: scale = L_0 / (r - 1) (free) or D / expm1(n log r) (fit).
        self._scale: float | None = None
        if cycle_mult > 1.0:
            try:
                if num_cycles is None:
                    self._scale = float(self._l0) / (cycle_mult - 1.0)
                elif self._x_n < 700.0:
                    self._scale = decay_steps / math.expm1(self._x_n)
            except OverflowError:
                self._scale = None
        # The last cycle found: (i, B_i, B_{i+1}, gamma^i, R_i). Checked on every use (`B_i <= tau < B_{i+1}`), never
        # trusted, and never needed for correctness: it spares consecutive steps of one cycle the lookup.
        self._memo: tuple[int, int, int, float, int] | None = None

    def __reduce__(self):
        return (
            _rebuild_cycles,
            (
                self.decay_steps,
                self.num_cycles,
                self.first_cycle_steps,
                self.cycle_mult,
                self.cycle_decay,
                self.restart_warmup_steps,
            ),
        )

    def __repr__(self) -> str:
        mode = (
            f"num_cycles={self.num_cycles}"
            if self.num_cycles is not None
            else f"first_cycle_steps={self.first_cycle_steps}"
        )
        return (
            f"Cycles(decay_steps={self.decay_steps}, {mode}, cycle_mult={self.cycle_mult}, "
            f"cycle_decay={self.cycle_decay}, restart_warmup_steps={self.restart_warmup_steps})"
        )

    @property
    def first_cycle_length(self) -> float:
        """`L_0` as a float (in fit mode `D (r - 1) / (r^n - 1)`, which may be fractional), for messages."""
        if self.first_cycle_steps is not None:
            return float(self.first_cycle_steps)
        if self.cycle_mult == 1.0:
            return self.decay_steps / self._n
        if self._x_n > 700.0:
            return 0.0
        return self.decay_steps * (self.cycle_mult - 1.0) / math.expm1(self._x_n)

    def start(self, index: int) -> int:
        """`B_i`: the decay step at which cycle `index` starts (`B_0 = 0`; `B_n = D` in fit mode)."""
        n = self.num_cycles
        if index <= 0:
            return 0
        if n is not None and index >= n:
            return self.decay_steps
        if self.cycle_mult == 1.0:  # equal cycles, in integers: i L_0, or round(i D / n)
            if n is None:
                return index * self._l0
            return (2 * index * self.decay_steps + n) // (2 * n)
        if n is None and index == 1:
            return self._l0  # C_1 = L_0 exactly
        if self._scale is not None:
            x = index * self._log_r
            if x < 700.0:
                c = self._scale * math.expm1(x)
                # Each libm call is within 2 ulp; the error of expm1(x) grows with x; 64 ulp per term is ample.
                err = (c + 1.0) * (4.0 + x + self._x_n) * _ULP64
                if c + err < 2.0**62:
                    lo = math.floor(c - err + 0.5)
                    if lo == math.floor(c + err + 0.5):
                        return lo
        return self._exact_start(index)

    def _c_bounds(self, index: int, prec: int) -> tuple[Fraction, Fraction]:
        """Rationals `lo <= C_index <= hi`, from powers of `r` at `prec` bits."""
        one = 1 << prec
        a_lo, a_hi = pow_bounds(self._r, index, prec)
        if self.num_cycles is None:
            r_minus_1 = (self._r.p << (prec - self._r.k)) - one  # exact: prec >= k
            return (Fraction(self._l0 * (a_lo - one), r_minus_1), Fraction(self._l0 * (a_hi - one), r_minus_1))
        n_lo, n_hi = pow_bounds(self._r, self._n, prec)
        return (
            Fraction(self.decay_steps * (a_lo - one), n_hi - one),
            Fraction(self.decay_steps * (a_hi - one), n_lo - one),
        )

    def _exact_start(self, index: int) -> int:
        top = self._r.exact_bits(max(index, self.num_cycles or 0))
        prec = START_PRECISION
        while True:
            lo, hi = self._c_bounds(index, prec)
            if round_half_up(lo) == round_half_up(hi) or prec >= top:
                return round_half_up(lo)
            prec = min(2 * prec, top)

    def real_length_at_least(self, index: int, steps: int) -> bool:
        """Whether the real length `C_{i+1} - C_i = L_0 r^i` of cycle `index` is at least `steps`, decided exactly."""
        if self.cycle_mult == 1.0:
            if self.num_cycles is None:
                return self._l0 >= steps
            return self.decay_steps >= steps * self._n
        top = self._r.exact_bits(max(index + 1, self.num_cycles or 0))
        prec = START_PRECISION
        while True:
            one = 1 << prec
            a_lo, a_hi = pow_bounds(self._r, index, prec)
            if self.num_cycles is None:  # L_0 r^i >= steps
                lo, hi, target_lo, target_hi = self._l0 * a_lo, self._l0 * a_hi, steps * one, steps * one
            else:  # D (r - 1) r^i >= steps (r^n - 1)
                r_minus_1 = (self._r.p << (prec - self._r.k)) - one
                n_lo, n_hi = pow_bounds(self._r, self._n, prec)
                lo, hi = self.decay_steps * r_minus_1 * a_lo, self.decay_steps * r_minus_1 * a_hi
                target_lo, target_hi = steps * (n_lo - one) * one, steps * (n_hi - one) * one
            if lo >= target_hi:
                return True
            if hi < target_lo or prec >= top:
                return lo >= target_hi
            prec = min(2 * prec, top)

    def _guess(self, decay_step: int) -> int:
        """A cycle index close to the one holding `decay_step`, by a logarithm; `locate` corrects it."""
        n = self.num_cycles
        if self.cycle_mult == 1.0:
            return decay_step // self._l0 if n is None else decay_step * n // self.decay_steps
        if self._scale is None:
            if n is None:  # L_0 overflows a float: the first cycle outlasts any step
                return 0
            guess = n + math.log(max(decay_step, 1) / self.decay_steps) / self._log_r  # r^n is astronomically large
        else:
            guess = math.log1p(decay_step / self._scale) / self._log_r
        index = int(guess) if guess > 0 else 0
        return index if n is None else min(index, n - 1)

    def locate(self, decay_step: int) -> tuple[int, int, int]:
        """`(i, B_i, B_{i+1})` for the cycle `i` that holds `decay_step` (`0 <= tau < D`), exact at every boundary."""
        return self.segment(decay_step)[:3]

    def segment(self, decay_step: int) -> tuple[int, int, int, float, int]:
        """`(i, B_i, B_{i+1}, gamma^i, R_i)` for the cycle holding `decay_step`: the remembered cycle when it holds
        the step (checked), else `remember`'s. The multiplier function inlines this check: it runs at every step."""
        memo = self._memo
        if memo is None or not memo[1] <= decay_step < memo[2]:
            memo = self.remember(decay_step)
        return memo

    def remember(self, decay_step: int) -> tuple[int, int, int, float, int]:
        """Find the cycle holding `decay_step` and remember it: `(i, B_i, B_{i+1}, gamma^i, R_i)`."""
        memo = self._memo
        if memo is not None and decay_step == memo[2]:  # the step after the last one of the remembered cycle
            index, start, end = memo[0] + 1, memo[2], self.start(memo[0] + 2)
        else:
            index = self._guess(decay_step)
            start = self.start(index)
            while start > decay_step:
                index -= 1
                start = self.start(index)
            end = self.start(index + 1)
        while end <= decay_step:
            index += 1
            start, end = end, self.start(index + 1)
        rise = self.restart_warmup_steps if index > 0 else 0
        self._memo = (index, start, end, self.cycle_decay**index, rise)
        return self._memo


_ULP64 = 64.0 * 2.0**-53


def _rebuild_cycles(decay_steps, num_cycles, first_cycle_steps, cycle_mult, cycle_decay, restart_warmup_steps):
    return Cycles(
        decay_steps,
        num_cycles=num_cycles,
        first_cycle_steps=first_cycle_steps,
        cycle_mult=cycle_mult,
        cycle_decay=cycle_decay,
        restart_warmup_steps=restart_warmup_steps,
    )


def cycle_start(index: int, cycles: Cycles) -> int:
    """`B_i`, the decay step at which cycle `index` starts; see `Cycles.start`."""
    return cycles.start(index)


def cycle_index(decay_step: int, cycles: Cycles) -> tuple[int, int, int]:
    """`(i, B_i, B_{i+1})` for the cycle holding `decay_step`; see `Cycles.locate`."""
    return cycles.locate(decay_step)


DECAY_TYPES = ("cosine", "linear", "1-sqrt")


class Decay(NamedTuple):
    """The decay phase of `wsd`: it starts at `S = T - D_d` and lasts `D_d` steps."""

    start: int  # S
    steps: int  # D_d
    type: str  # "cosine", "linear" or "1-sqrt"


def warmup_multiplier(current_step: int, num_warmup_steps: int, warmup: Warmup) -> float:
    """Multiplier during warmup, `s + (1 - s) * w(t / W)`, for `0 <= t < W`."""
    u = current_step / num_warmup_steps
    if warmup.type == "linear":
        w = u
    elif warmup.type == "exponential":
        w = -math.expm1(-warmup.exp_rate * u)
    else:  # cosine
        w = 0.5 * (1.0 - math.cos(math.pi * u))
    return warmup.start_ratio + (1.0 - warmup.start_ratio) * w


def _get_warmup_cosine_lr_lambda(
    current_step: int, *, num_warmup_steps: int, num_training_steps: int, warmup: Warmup, min_lr_ratio: float
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(current_step, num_warmup_steps, warmup)
    if current_step >= num_training_steps:
        return min_lr_ratio
    progress = (current_step - num_warmup_steps) / (num_training_steps - num_warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _get_cosine_with_growing_restarts_lr_lambda(
    current_step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup: Warmup,
    min_lr_ratio: float,
    cycles: Cycles,
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(current_step, num_warmup_steps, warmup)
    if current_step >= num_training_steps:
        return min_lr_ratio
    decay_step = current_step - num_warmup_steps
    memo = cycles._memo  # the cycle of the previous step, checked here: no method call while the cycle lasts
    if memo is None or not memo[1] <= decay_step < memo[2]:
        memo = cycles.remember(decay_step)
    _, start, end, factor, rise = memo
    height = (1.0 - min_lr_ratio) * factor
    local_step = decay_step - start
    if local_step < rise:
        return min_lr_ratio + height * local_step / rise
    progress = (local_step - rise) / (end - start - rise)
    return min_lr_ratio + height * 0.5 * (1.0 + math.cos(math.pi * progress))


def _get_wsd_lr_lambda(
    current_step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup: Warmup,
    min_lr_ratio: float,
    decay: Decay,
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(current_step, num_warmup_steps, warmup)
    if current_step >= num_training_steps:
        return min_lr_ratio
    if current_step < decay.start:
        return 1.0
    u = (current_step - decay.start) / decay.steps
    if decay.type == "cosine":
        f = 0.5 * (1.0 + math.cos(math.pi * u))
    elif decay.type == "linear":
        f = 1.0 - u
    else:  # 1-sqrt
        f = 1.0 - math.sqrt(u)
    # f * (1 - m) + m, in this order: bit for bit what transformers' warmup_stable_decay computes.
    return f * (1.0 - min_lr_ratio) + min_lr_ratio


def multipliers(lr_lambda: Callable[[int], float], num_steps: int) -> list[float]:
    """
    `[lr_lambda(0), ..., lr_lambda(num_steps)]`, the same floats, computed a phase (a cycle) at a time for the lambdas
    of hf_lrsched (no call and no cycle lookup per step: a million-step preview in a fraction of a second), and step
    by step for any other function.
    """
    func = getattr(lr_lambda, "func", None)
    keywords = getattr(lr_lambda, "keywords", {})
    if func is _get_cosine_with_growing_restarts_lr_lambda:
        return _growing_restarts_curve(num_steps, **keywords)
    if func is _get_warmup_cosine_lr_lambda:
        return _warmup_cosine_curve(num_steps, **keywords)
    if func is _get_wsd_lr_lambda:
        return _wsd_curve(num_steps, **keywords)
    return list(map(lr_lambda, range(num_steps + 1)))


def _warmup_part(num_steps: int, num_warmup_steps: int, warmup: Warmup) -> list[float]:
    return [warmup_multiplier(t, num_warmup_steps, warmup) for t in range(min(num_warmup_steps, num_steps + 1))]


def _warmup_cosine_curve(
    num_steps: int, *, num_warmup_steps: int, num_training_steps: int, warmup: Warmup, min_lr_ratio: float
) -> list[float]:
    # The expressions of `_get_warmup_cosine_lr_lambda`, term for term, so that every float is the same.
    out = _warmup_part(num_steps, num_warmup_steps, warmup)
    cos, pi, m, W = math.cos, math.pi, min_lr_ratio, num_warmup_steps
    D = num_training_steps - W
    out += [
        m + (1.0 - m) * 0.5 * (1.0 + cos(pi * ((t - W) / D)))
        for t in range(W, min(num_steps, num_training_steps - 1) + 1)
    ]
    out += [m] * (num_steps + 1 - len(out))
    return out


def _growing_restarts_curve(
    num_steps: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup: Warmup,
    min_lr_ratio: float,
    cycles: Cycles,
) -> list[float]:
    # The expressions of `_get_cosine_with_growing_restarts_lr_lambda`, term for term, one cycle at a time.
    out = _warmup_part(num_steps, num_warmup_steps, warmup)
    cos, pi, m, W = math.cos, math.pi, min_lr_ratio, num_warmup_steps
    last = min(num_steps, num_training_steps - 1)
    t = W
    while t <= last:
        _, start, end, factor, rise = cycles.segment(t - W)
        height = (1.0 - m) * factor
        stop = min(W + end, last + 1)  # one past the last step of this cycle that is wanted
        base = W + start + rise  # the first step of the cosine part
        out += [m + height * (s - W - start) / rise for s in range(t, min(base, stop))]
        span = end - start - rise
        out += [m + height * 0.5 * (1.0 + cos(pi * ((s - base) / span))) for s in range(max(t, base), stop)]
        t = stop
    out += [m] * (num_steps + 1 - len(out))
    return out


def _wsd_curve(
    num_steps: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup: Warmup,
    min_lr_ratio: float,
    decay: Decay,
) -> list[float]:
    # The expressions of `_get_wsd_lr_lambda`, term for term.
    out = _warmup_part(num_steps, num_warmup_steps, warmup)
    last = min(num_steps, num_training_steps - 1)
    out += [1.0] * max(0, min(decay.start - 1, last) - num_warmup_steps + 1)
    m, S, D = min_lr_ratio, decay.start, decay.steps
    steps = range(max(num_warmup_steps, S), last + 1)
    if decay.type == "cosine":
        cos, pi = math.cos, math.pi
        out += [(0.5 * (1.0 + cos(pi * ((t - S) / D)))) * (1.0 - m) + m for t in steps]
    elif decay.type == "linear":
        out += [(1.0 - (t - S) / D) * (1.0 - m) + m for t in steps]
    else:
        sqrt = math.sqrt
        out += [(1.0 - sqrt((t - S) / D)) * (1.0 - m) + m for t in steps]
    out += [m] * (num_steps + 1 - len(out))
    return out
