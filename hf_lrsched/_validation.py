"""Argument checks shared by every schedule: each names the parameter, the value and what is allowed."""

from __future__ import annotations

import difflib
import math
import numbers
import re
from collections.abc import Collection, Iterable, Mapping
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


#: What `HfArgumentParser` reads as a boolean on the command line (`transformers.hf_argparser.string_to_bool`), in
#: any case.
TRUE_STRINGS = ("yes", "true", "t", "y", "1")
FALSE_STRINGS = ("no", "false", "f", "n", "0")


def check_bool(name: str, value) -> bool:
    """`value` as `HfArgumentParser` reads a boolean on the command line: a bool, or one of yes/no, true/false, t/f,
    y/n, 1/0 as a string in any case; anything else (`"maybe"`, `1`, `None`) is refused with the option named. A
    JSON or YAML config passes its values as they are, and a non-empty string such as `"false"` must not read as
    true."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value.lower() in TRUE_STRINGS:
            return True
        if value.lower() in FALSE_STRINGS:
            return False
    raise ValueError(
        f"`{name}` must be a boolean (true/false, yes/no, t/f, y/n, 1/0 as a string), got {value!r} "
        f"({type(value).__name__})."
    )


_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)", re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d+")


def numbers_from_strings(value, *, keep: Collection[str] = (), integers: Collection[str] = ()):
    """Numbers written as strings read as numbers, in dicts and lists at any depth, as configs give them (PyYAML reads
    `1e-6`, without a dot, as a string): `"1e-2"` is 0.01, `"3"` is 3, `"inf"` is `inf` (for the check to refuse by
    value); any other string (`"min"`, a shape) stays a string, for the check to name.

    Args:
        value: A number, a string, or a dict or list of them.
        keep (`Collection[str]`, *optional*):
            Keys of a dict whose values stay as written (a rule's `pattern` and `name`).
        integers (`Collection[str]`, *optional*):
            Keys of a dict whose values are counts: a string becomes an `int` only when it is written as one (`"3"`);
            `"3.0"` stays a string, which the check refuses as not an integer.
    """
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if key in keep:
                out[key] = item
            elif key in integers and isinstance(item, str):
                out[key] = int(item) if _INTEGER.fullmatch(item.strip()) else item
            else:
                out[key] = numbers_from_strings(item, keep=keep, integers=integers)
        return out
    if isinstance(value, list):
        return [numbers_from_strings(item, keep=keep, integers=integers) for item in value]
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return int(value) if _INTEGER.fullmatch(value.strip()) else float(value)
    return value


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
