"""Warmup + cosine schedules as `torch.optim.lr_scheduler.LambdaLR` factories.

The signatures follow `transformers.optimization` (`optimizer, num_warmup_steps, num_training_steps, ...,
last_epoch=-1`); the formulas are those of `SCHEDULES.md` and live, torch-free, in `hf_lrsched.lr_lambdas`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers.utils import logging

from ._validation import check_choice, check_float, check_int
from .lr_lambdas import (
    WARMUP_TYPES,
    Cycles,
    Warmup,
    _get_cosine_with_growing_restarts_lr_lambda,
    _get_warmup_cosine_lr_lambda,
    cycle_start,
)

logger = logging.get_logger(__name__)

__all__ = [
    "get_warmup_cosine_schedule",
    "get_exponential_warmup_cosine_schedule",
    "get_cosine_with_growing_restarts_schedule",
    "resolve_auto_warmup_steps",
]

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
    betas = optimizer.param_groups[0].get("betas") if optimizer.param_groups else None
    if betas is None:
        raise ValueError(
            f"`num_warmup_steps='auto'` derives the warmup length from Adam's beta2, but {type(optimizer).__name__} "
            "has no `betas`; pass `num_warmup_steps` as a number of steps instead."
        )
    beta2 = check_float("beta2 (the optimizer's betas[1])", betas[1], low=0.0, high=1.0, high_open=True)
    scale = warmup_exp_rate if warmup_type == "exponential" else 2.0
    # Rounded before the ceiling so that float noise (2 / (1 - 0.9999) = 20000.0000000022) costs no extra step.
    warmup_steps = math.ceil(round(scale / (1.0 - beta2), 6))
    cap = math.floor(max_auto_warmup_ratio * num_training_steps)
    if warmup_steps > cap:
        logger.warning_once(
            f"`num_warmup_steps='auto'`: the untuned {warmup_type} warmup for beta2={beta2} is {warmup_steps} steps, "
            f"capped at max_auto_warmup_ratio * num_training_steps = {max_auto_warmup_ratio} * {num_training_steps} "
            f"= {cap} steps."
        )
        warmup_steps = cap
    return warmup_steps


def _check_common(
    optimizer: Optimizer,
    num_warmup_steps,
    num_training_steps,
    *,
    warmup_type,
    warmup_start_ratio,
    warmup_exp_rate,
    min_lr_ratio,
    min_lr,
    max_auto_warmup_ratio,
) -> tuple[dict, list[float]]:
    """Validate the options every schedule shares and resolve `"auto"` warmup and the per-group floors.

    Returns the keyword arguments shared by all lambdas and one floor ratio `m` per param group.
    """
    num_training_steps = check_int("num_training_steps", num_training_steps, minimum=1)
    warmup_type = check_choice("warmup_type", warmup_type, WARMUP_TYPES)
    warmup_start_ratio = check_float("warmup_start_ratio", warmup_start_ratio, low=0.0, high=1.0, high_open=True)
    warmup_exp_rate = check_float("warmup_exp_rate", warmup_exp_rate, low=0.0, low_open=True)
    if num_warmup_steps == "auto":
        num_warmup_steps = resolve_auto_warmup_steps(
            optimizer,
            num_training_steps,
            warmup_type=warmup_type,
            warmup_exp_rate=warmup_exp_rate,
            max_auto_warmup_ratio=max_auto_warmup_ratio,
        )
    else:
        check_float("max_auto_warmup_ratio", max_auto_warmup_ratio, low=0.0, high=1.0)
        num_warmup_steps = check_int(
            "num_warmup_steps",
            num_warmup_steps,
            minimum=0,
            maximum=num_training_steps,
            hint=" (at most num_training_steps) or 'auto'",
        )
    floors = _min_lr_ratios(optimizer, min_lr_ratio, min_lr)
    shared = dict(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup=Warmup(warmup_type, warmup_start_ratio, warmup_exp_rate),
    )
    return shared, floors


def _min_lr_ratios(optimizer: Optimizer, min_lr_ratio, min_lr) -> list[float]:
    """One floor `m` per param group: `min_lr_ratio` for all, or `min_lr / group_base_lr` for each."""
    if min_lr_ratio is not None and min_lr is not None:
        raise ValueError(
            f"Pass either `min_lr_ratio` (a fraction of each base learning rate) or `min_lr` (an absolute learning "
            f"rate), not both; got min_lr_ratio={min_lr_ratio} and min_lr={min_lr}."
        )
    groups = optimizer.param_groups
    if min_lr is None:
        ratio = 0.0 if min_lr_ratio is None else check_float("min_lr_ratio", min_lr_ratio, low=0.0, high=1.0, high_open=True)
        return [ratio] * len(groups)
    min_lr = check_float("min_lr", min_lr, low=0.0)
    ratios = []
    for index, group in enumerate(groups):
        # LambdaLR scales `initial_lr` (set on first construction, kept on resume), so the floor is relative to it.
        base_lr = group.get("initial_lr", group["lr"])
        base_lr = float(base_lr.item() if hasattr(base_lr, "item") else base_lr)
        if not min_lr < base_lr:
            raise ValueError(
                f"`min_lr`={min_lr} must be below the base learning rate of every param group, but param group "
                f"{index} has lr={base_lr}; lower `min_lr` or use `min_lr_ratio`."
            )
        ratios.append(min_lr / base_lr)
    return ratios


def _lambda_lr(optimizer: Optimizer, lr_lambda: Callable, floors: list[float], last_epoch: int) -> LambdaLR:
    """A `LambdaLR` with one partial per param group when the floors differ, else one shared partial."""
    last_epoch = check_int("last_epoch", last_epoch, minimum=-1)
    if len(set(floors)) <= 1:
        lambdas = functools.partial(lr_lambda, min_lr_ratio=floors[0] if floors else 0.0)
    else:
        lambdas = [functools.partial(lr_lambda, min_lr_ratio=floor) for floor in floors]
    return LambdaLR(optimizer, lambdas, last_epoch)


def get_warmup_cosine_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int | Literal["auto"],
    num_training_steps: int,
    *,
    warmup_type: WarmupType = "linear",
    warmup_start_ratio: float = 0.0,
    warmup_exp_rate: float = 5.0,
    min_lr_ratio: float | None = None,
    min_lr: float | None = None,
    max_auto_warmup_ratio: float = 0.1,
    last_epoch: int = -1,
) -> LambdaLR:
    """
    Create a schedule that warms the learning rate up from `s` times the base rate to the base rate over `W` steps,
    then decays it along a half cosine to the floor `m` times the base rate at step `T`, and stays there.

    With `u = t / W`, `p = (t - W) / (T - W)`:

        lambda(t) = s + (1 - s) * w(u)                     for t < W
        lambda(t) = m + (1 - m) * (1 + cos(pi * p)) / 2    for W <= t < T
        lambda(t) = m                                      for t >= T

    where `w(u)` is `u` (linear), `1 - exp(-k u)` (exponential) or `(1 - cos(pi u)) / 2` (cosine). With the
    defaults (linear warmup, `s = 0`, `m = 0`) this is `transformers.get_cosine_schedule_with_warmup`.

    Args:
        optimizer ([`~torch.optim.Optimizer`]):
            The optimizer for which to schedule the learning rate.
        num_warmup_steps (`int` or `"auto"`):
            The number of warmup steps `W`, `0 <= W <= T`, or `"auto"` to derive it from Adam's `beta2` (see
            [`resolve_auto_warmup_steps`]).
        num_training_steps (`int`):
            The total number of training steps `T >= 1`.
        warmup_type (`str`, *optional*, defaults to `"linear"`):
            The warmup shape: `"linear"`, `"exponential"` or `"cosine"`.
        warmup_start_ratio (`float`, *optional*, defaults to 0.0):
            The multiplier `s` at step 0, in `[0, 1)`. A positive value avoids a first step at learning rate 0.
        warmup_exp_rate (`float`, *optional*, defaults to 5.0):
            The rate `k > 0` of exponential warmup.
        min_lr_ratio (`float`, *optional*):
            The floor `m` as a fraction of each param group's base learning rate, in `[0, 1)`. Defaults to 0.
        min_lr (`float`, *optional*):
            The floor as an absolute learning rate, converted per param group to `min_lr / base_lr`, so that every
            group ends at `min_lr`. Mutually exclusive with `min_lr_ratio`.
        max_auto_warmup_ratio (`float`, *optional*, defaults to 0.1):
            With `num_warmup_steps="auto"`, the cap on `W` as a fraction of `T`.
        last_epoch (`int`, *optional*, defaults to -1):
            The index of the last epoch when resuming training.

    Returns:
        `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    shared, floors = _check_common(
        optimizer,
        num_warmup_steps,
        num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    return _lambda_lr(optimizer, functools.partial(_get_warmup_cosine_lr_lambda, **shared), floors, last_epoch)


def get_exponential_warmup_cosine_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int | Literal["auto"],
    num_training_steps: int,
    *,
    warmup_type: WarmupType = "exponential",
    warmup_start_ratio: float = 0.0,
    warmup_exp_rate: float = 5.0,
    min_lr_ratio: float | None = None,
    min_lr: float | None = None,
    max_auto_warmup_ratio: float = 0.1,
    last_epoch: int = -1,
) -> LambdaLR:
    """
    [`get_warmup_cosine_schedule`] with exponential warmup by default:

        lambda(t) = s + (1 - s) * (1 - exp(-k t / W))      for t < W

    With `k = 5` (the default) and `s = 0` this is the classic `eta_base * (1 - e^{-5 t / T_warmup})`; the
    multiplier reaches `1 - e^{-5} = 0.9933` at the last warmup step and 1 at step `W`. The arguments are those of
    [`get_warmup_cosine_schedule`].

    Returns:
        `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    return get_warmup_cosine_schedule(
        optimizer,
        num_warmup_steps,
        num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
        last_epoch=last_epoch,
    )


def _fit_first_cycle_steps(decay_steps: int, num_cycles: int, cycle_mult: float) -> float:
    """`L_0 = D (r - 1) / (r^n - 1)`, `D / n` when `r = 1`: the first cycle length that fits `n` cycles into `D`."""
    if cycle_mult == 1.0:
        return decay_steps / num_cycles
    if num_cycles * math.log(cycle_mult) > 700.0:  # r^n overflows a float: the first cycle is far below one step
        return 0.0
    return decay_steps * (cycle_mult - 1.0) / (cycle_mult**num_cycles - 1.0)


def _check_fitted_cycles(cycles: Cycles) -> None:
    """Raise unless every fitted cycle is at least one step long and every cycle after a restart is longer than R.

    Lengths are exact (the rounded `B_i`). The scan stops early: once `floor(L_i)` exceeds what is needed, every later
    cycle, being longer, does too; only the last cycle, which ends at `D` exactly, is checked on its own.
    """
    first, mult, _, num_cycles, decay_steps, _, restart_warmup_steps = cycles

    def fail(index: int, length: int, needed: int) -> None:
        why = "at least 1 step" if index == 0 else f"longer than restart_warmup_steps={restart_warmup_steps}"
        raise ValueError(
            f"`num_cycles`={num_cycles} with cycle_mult={mult} does not fit into the {decay_steps} decay steps "
            f"(num_training_steps - num_warmup_steps): cycle {index} would be {length} steps long (first cycle "
            f"{first:.4g} steps before rounding), but every cycle must be {why} (needs >= {needed}). "
            "Use fewer cycles, a smaller cycle_mult or a smaller restart_warmup_steps."
        )

    if decay_steps < num_cycles or first <= 0.0:
        fail(0, math.floor(first), 1)
    if mult == 1.0 and num_cycles > 1_000_000:
        # Equal cycles of floor(D / n) or ceil(D / n) steps: the shortest one decides, without a scan.
        if decay_steps // num_cycles < restart_warmup_steps + 1:
            fail(1, decay_steps // num_cycles, restart_warmup_steps + 1)
        return
    for index in range(num_cycles):
        needed = 1 if index == 0 else restart_warmup_steps + 1
        length = cycle_start(index + 1, cycles) - cycle_start(index, cycles)
        if length < needed:
            fail(index, length, needed)
        if index >= 1 and mult > 1.0 and math.floor(first * mult**index) > needed:
            break  # every later cycle but the last is at least floor(L_i) steps long
    last = num_cycles - 1
    needed = 1 if last == 0 else restart_warmup_steps + 1
    length = decay_steps - cycle_start(last, cycles)
    if length < needed:
        fail(last, length, needed)


def get_cosine_with_growing_restarts_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int | Literal["auto"],
    num_training_steps: int,
    *,
    num_cycles: int | None = None,
    first_cycle_steps: int | None = None,
    cycle_mult: float = 2.0,
    cycle_decay: float = 1.0,
    restart_warmup_steps: int = 0,
    warmup_type: WarmupType = "linear",
    warmup_start_ratio: float = 0.0,
    warmup_exp_rate: float = 5.0,
    min_lr_ratio: float | None = None,
    min_lr: float | None = None,
    max_auto_warmup_ratio: float = 0.1,
    last_epoch: int = -1,
) -> LambdaLR:
    """
    Create a schedule with a warmup as in [`get_warmup_cosine_schedule`], then cosine annealing with warm restarts
    whose cycles grow by `cycle_mult` (SGDR, Loshchilov & Hutter 2017), optionally with decaying peaks and a short
    linear warmup after each restart.

    The `D = T - W` decay steps are split into cycles of length `L_i = L_0 * r^i` starting at
    `B_i = round(L_0 (r^i - 1) / (r - 1))`. Inside cycle `i`, with local step `j = t - W - B_i`, cycle length
    `L = B_{i+1} - B_i`, peak `P = m + (1 - m) * gamma^i` and `R_i = R` for `i >= 1` (0 for `i = 0`):

        lambda(t) = m + (P - m) * j / R_i                          for j < R_i
        lambda(t) = m + (P - m) * (1 + cos(pi * q)) / 2            otherwise, q = (j - R_i) / (L - R_i)

    and `lambda(t) = m` for `t >= T`. The cycle index is found in closed form and is exact at every `B_i`.

    Two modes:
    - fit (the default, `num_cycles=n`, 3 when neither option is given): `L_0 = D (r - 1) / (r^n - 1)`
      (`D / n` when `r = 1`) and `B_n = D`, so the last cycle ends exactly at `T` on the floor;
    - free (`first_cycle_steps=L_0`): cycles of the given first length run on until `T`, the last one may be cut.

    Args:
        optimizer ([`~torch.optim.Optimizer`]):
            The optimizer for which to schedule the learning rate.
        num_warmup_steps (`int` or `"auto"`):
            The number of warmup steps `W`, `0 <= W <= T`, or `"auto"`.
        num_training_steps (`int`):
            The total number of training steps `T >= 1`.
        num_cycles (`int`, *optional*):
            Fit exactly this many cycles (`n >= 1`) into the decay phase. Mutually exclusive with `first_cycle_steps`.
        first_cycle_steps (`int`, *optional*):
            The length `L_0 >= 1` of the first cycle, in steps. Mutually exclusive with `num_cycles`.
        cycle_mult (`float`, *optional*, defaults to 2.0):
            The growth factor `r >= 1` of each cycle over the previous one (1 gives equal cycles).
        cycle_decay (`float`, *optional*, defaults to 1.0):
            The factor `gamma` in `(0, 1]` by which the height of each cycle above the floor shrinks.
        restart_warmup_steps (`int`, *optional*, defaults to 0):
            The number of steps `R >= 0` over which the learning rate rises linearly from the floor to the peak after
            each restart (not before the first cycle, which follows the main warmup). Must be smaller than every
            cycle after the first.
        warmup_type, warmup_start_ratio, warmup_exp_rate, min_lr_ratio, min_lr, max_auto_warmup_ratio, last_epoch:
            As in [`get_warmup_cosine_schedule`].

    Returns:
        `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    shared, floors = _check_common(
        optimizer,
        num_warmup_steps,
        num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    cycle_mult = check_float("cycle_mult", cycle_mult, low=1.0)
    cycle_decay = check_float("cycle_decay", cycle_decay, low=0.0, high=1.0, low_open=True)
    restart_warmup_steps = check_int("restart_warmup_steps", restart_warmup_steps, minimum=0)
    decay_steps = shared["num_training_steps"] - shared["num_warmup_steps"]
    if num_cycles is not None and first_cycle_steps is not None:
        raise ValueError(
            f"Pass either `num_cycles` (fit that many cycles into training) or `first_cycle_steps` (cycles of that "
            f"first length until the end), not both; got num_cycles={num_cycles} and first_cycle_steps={first_cycle_steps}."
        )
    if first_cycle_steps is not None:
        first_cycle_steps = check_int("first_cycle_steps", first_cycle_steps, minimum=1)
        if restart_warmup_steps >= first_cycle_steps:
            raise ValueError(
                f"`restart_warmup_steps` must be smaller than first_cycle_steps={first_cycle_steps} (every cycle after a "
                f"restart is at least that long and needs a decay part), got {restart_warmup_steps}."
            )
    else:
        num_cycles = check_int("num_cycles", 3 if num_cycles is None else num_cycles, minimum=1)
        first_cycle_steps = _fit_first_cycle_steps(decay_steps, num_cycles, cycle_mult)
    cycles = Cycles(
        first_cycle_steps, cycle_mult, math.log(cycle_mult), num_cycles, decay_steps, cycle_decay, restart_warmup_steps
    )
    if num_cycles is not None:
        _check_fitted_cycles(cycles)
    lr_lambda = functools.partial(_get_cosine_with_growing_restarts_lr_lambda, **shared, cycles=cycles)
    return _lambda_lr(optimizer, lr_lambda, floors, last_epoch)
