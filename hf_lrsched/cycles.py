"""The cycles of cosine annealing with warm restarts (SGDR) whose lengths grow: the `restarts` phase.

`Cycles` lays the cycles of a `restarts` phase out once and finds the cycle of any step in closed form, exact at
every boundary (`hf_lrsched._exact` settles what a float cannot); `check_fitted_cycles` refuses, at construction and
without a scan, a fit whose cycles would be too short. Torch-free.
"""

from __future__ import annotations

import math
from fractions import Fraction

from ._exact import START_PRECISION, Dyadic, pow_bounds, round_half_up

__all__ = ["Cycles", "check_fitted_cycles"]


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


def check_fitted_cycles(cycles: Cycles, span: str = "decay steps (num_training_steps - num_warmup_steps)") -> None:
    """Raise unless every fitted cycle is at least one step long and every cycle after a restart is longer than R.

    No scan over the cycles: the real lengths `l_i = L_0 r^i` grow with `i`, and a rounded length lies strictly
    between `l_i - 1` and `l_i + 1`. So every cycle from the first `j >= 1` with `l_j >= R + 1` on is long enough,
    and each cycle `1 <= i < j` is at most `R + 1` steps: they are all exactly `R + 1` if and only if their lengths
    add up to `(j - 1) (R + 1)`. A bisection finds `j` (and, on failure, the first short cycle) with exact
    comparisons.
    """
    num_cycles, decay_steps, restart_warmup_steps = cycles.num_cycles, cycles.decay_steps, cycles.restart_warmup_steps
    assert num_cycles is not None, "fit mode only"

    def fail(index: int, needed: int) -> None:
        length = cycles.start(index + 1) - cycles.start(index)
        why = "at least 1 step" if index == 0 else f"longer than restart_warmup_steps={restart_warmup_steps}"
        raise ValueError(
            f"`num_cycles`={num_cycles} with cycle_mult={cycles.cycle_mult} does not fit into the {decay_steps} "
            f"{span}: cycle {index} would be {length} steps long (first cycle "
            f"{cycles.first_cycle_length:.6g} steps before rounding), but every cycle must be {why} (needs >= "
            f"{needed}). Use fewer cycles, a smaller cycle_mult or a smaller restart_warmup_steps."
        )

    if cycles.start(1) < 1:
        fail(0, 1)
    if num_cycles == 1:
        return
    needed = restart_warmup_steps + 1
    lo, hi = 1, num_cycles  # the first cycle i >= 1 whose real length is at least `needed` (num_cycles if none)
    while lo < hi:
        mid = (lo + hi) // 2
        if cycles.real_length_at_least(mid, needed):
            hi = mid
        else:
            lo = mid + 1
    first_long, base = lo, cycles.start(1)
    if cycles.start(first_long) - base == (first_long - 1) * needed:
        return
    lo, hi = 1, first_long - 1  # the first short cycle: from it on, the lengths fall behind (i - 1) * needed
    while lo < hi:
        mid = (lo + hi) // 2
        if cycles.start(mid + 1) - base < mid * needed:
            hi = mid
        else:
            lo = mid + 1
    fail(lo, needed)
