"""Argument checks shared by every schedule: each names the parameter, the value and what is allowed."""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any


def check_int(name: str, value, *, minimum: int = 0, maximum: int | None = None, hint: str = "") -> int:
    """Return `value` as an `int` if it is an integer in `[minimum, maximum]`, else raise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer >= {minimum}{hint}, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        allowed = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
        raise ValueError(f"`{name}` must be {allowed}{hint}, got {value}.")
    return value


def check_last_epoch(last_epoch, param_groups) -> int:
    """`last_epoch` as an `int >= -1`; a resume (`last_epoch != -1`) needs every param group's `initial_lr`, which a
    scheduler sets when first built: refused by name where one is missing (torch would raise a bare `KeyError`)."""
    last_epoch = check_int("last_epoch", last_epoch, minimum=-1)
    if last_epoch != -1:
        for index, group in enumerate(param_groups):
            if "initial_lr" not in group:
                raise ValueError(
                    f"`last_epoch`={last_epoch} resumes a schedule, which needs each param group's `initial_lr` (set "
                    f"when a scheduler is first built, and kept in the optimizer's state_dict), but param group "
                    f"{index} has none; load the optimizer's state first, or build with last_epoch=-1."
                )
    return last_epoch


def check_float(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return `value` as a finite `float` inside the given interval, else raise.

    The interval is written the usual way in the message: `[0, 1)`, `(0, 1]`, `[1, inf)`.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number, got {value!r} ({type(value).__name__}).")
    value = as_written(value)
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    interval = f"{left}{'-inf' if low is None else _fmt(low)}, {'inf' if high is None else _fmt(high)}{right}"
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be a finite number in {interval}, got {value}.")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        raise ValueError(f"`{name}` must be in {interval}, got {value}.")
    return value


def as_written(value: numbers.Real) -> float:
    """A real number as a plain `float`, read as the user wrote it: a NumPy `float32` (or `float16`) gives the
    shortest decimal that is that value (`np.float32(0.2)` gives 0.2, not 0.20000000298023224), as NumPy prints it."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and getattr(dtype, "kind", "") == "f" and getattr(dtype, "itemsize", 8) < 8:
        return float(str(value))
    return float(value)


def check_choice(name: str, value, choices: Iterable[str]) -> Any:
    """Return `value` if it is one of `choices` (typed as the caller's `Literal`), else raise with the closest valid
    names: `TypeError` for a value that is not a string, `ValueError` for another string."""
    choices = list(choices)
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be one of {choices}, got {value!r} ({type(value).__name__}).")
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {value!r}.{suggest(value, choices)}")
    return value


def suggest(value, choices: Iterable[str]) -> str:
    """` Did you mean 'a' or 'b'?` for the closest of `choices`, or an empty string."""
    if not isinstance(value, str):
        return ""
    choices = list(choices)
    close = difflib.get_close_matches(value, choices, n=3, cutoff=0.5)
    close += [c for c in choices if value and c.startswith(value) and c not in close][: 3 - len(close)]
    if not close:
        return ""
    return " Did you mean " + " or ".join(repr(c) for c in close) + "?"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
