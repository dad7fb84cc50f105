"""Exact decisions on the real numbers of the schedule contract, in integer arithmetic.

The math page (`docs/schedules/math.md`) defines the cycle starts `C_i` and the auto warmup length as real numbers computed from the exact
values of the floats a user passed. A float evaluation is usually close enough to decide the integer they round to,
and `hf_lrsched.lr_lambdas` takes that fast path where its error bound proves the answer. Where it does not, the
helpers here decide: they bound the real number between two rationals built from integer powers computed with
directed rounding at a working precision of `prec` bits, and double the precision until both bounds give the same
answer (Ziv's strategy). At a precision of `k * e + 64` bits the powers `(p / 2^k)^e` are computed without any
rounding at all, so the loop always ends with the exact answer, ties included.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = ["Dyadic", "decimal_fraction", "pow_bounds", "round_half_up"]

START_PRECISION = 96


class Dyadic:
    """A float `x >= 0` as the exact fraction `p / 2^k` (`k >= 0`): how `fractions.Fraction(x)` sees it."""

    __slots__ = ("k", "p")

    def __init__(self, x: float):
        p, q = float(x).as_integer_ratio()
        self.p, self.k = p, q.bit_length() - 1  # q is a power of two

    def exact_bits(self, exponent: int) -> int:
        """A working precision at which `pow_bounds(self, exponent, prec)` is exact."""
        return self.k * exponent + 64


def pow_bounds(base: Dyadic, exponent: int, prec: int) -> tuple[int, int]:
    """Integers `lo <= base^exponent * 2^prec <= hi`, by squaring with floor (lo) and ceiling (hi) rounding.

    Exact (`lo == hi`) once `prec >= base.k * exponent`, since then no product ever drops a bit.
    """
    one = 1 << prec
    if prec >= base.k:
        scaled = base.p << (prec - base.k)
        b_lo = b_hi = scaled
    else:
        b_lo = (base.p << prec) >> base.k
        b_hi = -((-(base.p << prec)) >> base.k)
    lo = hi = one
    e = exponent
    while e:
        if e & 1:
            lo = (lo * b_lo) >> prec
            hi = -((-hi * b_hi) >> prec)
        e >>= 1
        if e:
            b_lo = (b_lo * b_lo) >> prec
            b_hi = -((-b_hi * b_hi) >> prec)
    return lo, hi


def round_half_up(x: Fraction) -> int:
    """`floor(x + 1/2)` of an exact rational."""
    return (2 * x.numerator + x.denominator) // (2 * x.denominator)


def decimal_fraction(x: float) -> Fraction:
    """The value the user wrote: the shortest decimal that reads back as `x` (`repr(x)`), as an exact fraction.

    `0.29` is 29/100 here, not the binary 0.28999999999999998002... that the float holds; the contract reads
    `beta2` and `max_auto_warmup_ratio` this way, so that `ceil(2 / (1 - 0.99999))` is 200000 and
    `floor(0.29 * 100)` is 29.
    """
    if not math.isfinite(x):
        raise ValueError(f"not a finite number: {x!r}")
    return Fraction(repr(float(x)))
