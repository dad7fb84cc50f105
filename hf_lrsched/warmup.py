"""Warmup lengths: a number of steps, a ratio of the training steps, or `"auto"` from the optimizer's beta2."""

from __future__ import annotations

import functools
import logging
import math
import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Literal

from ._exact import decimal_fraction
from ._validation import check_choice, check_float, check_int
from .phases import WARMUP_TYPES

if TYPE_CHECKING:
    from torch.optim import Optimizer


logger = logging.getLogger(__name__)


@functools.lru_cache(None)
def _warning_once(message: str) -> None:
    # What `transformers.utils.logging.get_logger(__name__).warning_once` does for a module outside `transformers`,
    # without importing it: a preview of our schedules needs neither torch nor transformers.
    logger.warning(message)


__all__ = ["optimizer_beta2", "resolve_auto_warmup_steps", "resolve_num_warmup_steps"]

WarmupType = Literal["linear", "exponential", "cosine"]


def resolve_auto_warmup_steps(
    optimizer: Optimizer,
    num_training_steps: int,
    *,
    warmup_type: WarmupType = "linear",
    warmup_exp_rate: float = 5.0,
    max_auto_warmup_ratio: float = 0.1,
) -> int:
    """
    The warmup length that `num_warmup_steps="auto"` stands for, derived from the optimizer's `beta2`.

    Following Ma & Yarats (2019), "On the adequacy of untuned warmup for adaptive optimization": linear (and cosine)
    warmup lasts `W = ceil(2 / (1 - beta2))` steps, exponential warmup `W = ceil(k / (1 - beta2))` steps (so that
    `exp(-k t / W) = exp(-(1 - beta2) t)`). `W` is then capped at `floor(max_auto_warmup_ratio * T)`; the cap is
    logged once when it bites.

    Args:
        optimizer ([`~torch.optim.Optimizer`]):
            An Adam-family optimizer: its first param group must have `betas`.
        num_training_steps (`int`):
            The total number of training steps `T`.
        warmup_type (`str`, *optional*, defaults to `"linear"`):
            `"linear"`, `"exponential"` or `"cosine"`.
        warmup_exp_rate (`float`, *optional*, defaults to 5.0):
            The rate `k` of exponential warmup.
        max_auto_warmup_ratio (`float`, *optional*, defaults to 0.1):
            The cap on `W` as a fraction of `T`, in `[0, 1]`.

    Returns:
        `int`: the number of warmup steps.
    """
    num_training_steps = check_int("num_training_steps", num_training_steps, minimum=1)
    warmup_type = check_choice("warmup_type", warmup_type, WARMUP_TYPES)
    warmup_exp_rate = check_float("warmup_exp_rate", warmup_exp_rate, low=0.0, low_open=True)
    max_auto_warmup_ratio = check_float("max_auto_warmup_ratio", max_auto_warmup_ratio, low=0.0, high=1.0)
    beta2 = optimizer_beta2(optimizer)
    scale = decimal_fraction(warmup_exp_rate) if warmup_type == "exponential" else Fraction(2)
    # Exact: beta2 as written (0.99999 gives 200000 steps, not the 200001 of float arithmetic); see `decimal_fraction`.
    warmup_steps = math.ceil(scale / (1 - decimal_fraction(beta2)))
    cap = math.floor(decimal_fraction(max_auto_warmup_ratio) * num_training_steps)
    if warmup_steps > cap:
        _warning_once(
            f"`num_warmup_steps='auto'`: the untuned {warmup_type} warmup for beta2={beta2} is {warmup_steps} steps, "
            f"capped at max_auto_warmup_ratio * num_training_steps = {max_auto_warmup_ratio} * {num_training_steps} "
            f"= {cap} steps."
        )
        warmup_steps = cap
    return warmup_steps


def resolve_num_warmup_steps(
    value: int | float | str | None, num_training_steps: int, *, option: str = "num_warmup_steps"
) -> int | Literal["auto"]:
    """
    The warmup as a number of steps, read the way `transformers` 5 reads `TrainingArguments.warmup_steps`: a whole
    number of steps (`>= 1`, or 0), a ratio in `(0, 1)` of the training steps (`ceil(ratio * T)`, as
    `TrainingArguments.get_warmup_steps` computes it, so that the Trainer, the examples and the command line agree),
    or `"auto"` (kept, for the schedule to resolve from the optimizer). Strings, as a command line gives them, are
    read too: `"10"`, `"0.06"`, `"auto"`.

    ```python
    from hf_lrsched import resolve_num_warmup_steps

    assert resolve_num_warmup_steps(0.06, 1000) == 60
    assert resolve_num_warmup_steps("10", 1000) == 10
    assert resolve_num_warmup_steps("auto", 1000) == "auto"
    ```

    Args:
        value (`int`, `float` or `str`):
            Steps, a ratio below 1, `"auto"`, or one of these as a string. `None` means 0.
        num_training_steps (`int`):
            The total number of training steps `T`, which a ratio is taken of.
        option (`str`, *optional*, defaults to `"num_warmup_steps"`):
            The option's name in error messages (`"--warmup-ratio"`, `"warmup_steps"`).

    Returns:
        `int` or `"auto"`: the number of warmup steps.
    """
    return _resolve_warmup(value, num_training_steps, option=option)


#: What a warmup may be given as, in the words of the messages.
_WARMUP_KINDS = {"steps": "a whole number of steps", "ratio": "a ratio in [0, 1)", "auto": "'auto'"}
_INTEGER = re.compile(r"[+-]?\d+")


def _resolve_warmup(
    value: Any,
    num_training_steps: int,
    *,
    option: str,
    kinds: tuple[str, ...] = ("steps", "ratio", "auto"),
    hint: str = "",
) -> int | Literal["auto"]:
    """The one reading of a warmup (see [`resolve_num_warmup_steps`]), for an option that takes only some `kinds` of
    it: the command line's `--warmup-ratio` takes a ratio, its `--num-warmup-steps` steps or `"auto"`. A value of
    another kind is refused with the same message as an invalid one, saying what `option` takes, and `hint`."""
    words = [_WARMUP_KINDS[kind] for kind in kinds]
    allowed = words[0] if len(words) == 1 else f"{', '.join(words[:-1])}{',' if len(words) > 2 else ''} or {words[-1]}"
    refused = f"`{option}` must be {allowed}{hint}; got {value!r}."
    if value is None:
        return 0
    if isinstance(value, str):
        text = value.strip()
        if text == "auto":
            if "auto" not in kinds:
                raise ValueError(refused)
            return "auto"
        try:
            number = int(text) if _INTEGER.fullmatch(text) else float(text)  # a long integer stays exact
        except ValueError:
            raise ValueError(refused) from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{option}` must be {allowed}{hint}; got {value!r} ({type(value).__name__}).")
    else:
        number = value
    if number < 0 or (
        not isinstance(number, int)  # an int may be too large for a float: it is a number of steps all the same
        and (not math.isfinite(number) or (number >= 1 and not number.is_integer()))
    ):
        raise ValueError(refused)
    if number >= 1:
        if "steps" not in kinds:
            raise ValueError(refused)
        return int(number)
    if number > 0 and "ratio" not in kinds:
        raise ValueError(refused)
    return math.ceil(check_int("num_training_steps", num_training_steps, minimum=1) * number)


def _as_written(value: Any) -> Any:
    """A plain number from a float or a one-element tensor; a float32 tensor gives the shortest decimal that is
    that float32 (`torch.tensor(0.999)` gives 0.999, not 0.9990000128746033)."""
    if not type(value).__module__.startswith("torch"):
        return value
    import torch

    if not isinstance(value, torch.Tensor):
        return value
    if value.numel() != 1:
        return value.tolist()
    number = value.item()
    if value.dtype in (torch.float32, torch.float16, torch.bfloat16) and math.isfinite(number):
        for digits in range(1, 18):
            text = f"{number:.{digits}g}"
            if torch.tensor(float(text), dtype=value.dtype).item() == number:
                return float(text)
    return number


def optimizer_beta2(optimizer: Optimizer) -> float:
    """The `beta2` that every param group of an Adam-family optimizer shares; a clear error otherwise."""
    name = type(optimizer).__name__
    groups = getattr(optimizer, "param_groups", None)
    if not groups:
        raise ValueError(
            f"`num_warmup_steps='auto'` derives the warmup length from the optimizer's param groups, but {name} has "
            "none; build the schedule after adding parameters to the optimizer, or pass `num_warmup_steps` as a number."
        )
    values = []
    for index, group in enumerate(groups):
        betas = group.get("betas")
        if betas is None:
            raise ValueError(
                f"`num_warmup_steps='auto'` derives the warmup length from Adam's beta2, but {name} has no `betas`"
                f"{f' in param group {index}' if index else ''}; pass `num_warmup_steps` as a number of steps instead."
            )
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(
                f"`num_warmup_steps='auto'` needs the optimizer's `betas` as a pair (beta1, beta2), but param group "
                f"{index} of {name} has betas={betas!r}."
            )
        beta2 = _as_written(betas[1])
        values.append(check_float("beta2 (the optimizer's betas[1])", beta2, low=0.0, high=1.0, high_open=True))
    if len(set(values)) > 1:
        raise ValueError(
            f"`num_warmup_steps='auto'` derives one warmup length from beta2, but the param groups of {name} have "
            f"different beta2 values {values}; give them one beta2, or pass `num_warmup_steps` as a number of steps."
        )
    return values[0]
