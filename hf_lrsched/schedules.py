"""Warmup + cosine schedules as `torch.optim.lr_scheduler.LambdaLR` factories.

The signatures follow `transformers.optimization` (`optimizer, num_warmup_steps, num_training_steps, ...,
last_epoch=-1`); the formulas are those of the docs' math page (`docs/schedules/math.md`) and live, torch-free, in `hf_lrsched.lr_lambdas`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Literal

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR
from transformers.utils import logging

from ._exact import decimal_fraction
from ._validation import check_choice, check_float, check_int
from .lr_lambdas import (
    DECAY_TYPES,
    WARMUP_TYPES,
    Cycles,
    Decay,
    Warmup,
    _get_cosine_with_growing_restarts_lr_lambda,
    _get_warmup_cosine_lr_lambda,
    _get_wsd_lr_lambda,
)

logger = logging.get_logger(__name__)

__all__ = [
    "ScheduleLR",
    "get_cosine_with_growing_restarts_schedule",
    "get_exponential_warmup_cosine_schedule",
    "get_warmup_cosine_schedule",
    "get_wsd_schedule",
    "resolve_auto_warmup_steps",
    "resolve_num_warmup_steps",
]

WarmupType = Literal["linear", "exponential", "cosine"]
DecayType = Literal["cosine", "linear", "1-sqrt"]


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
        logger.warning_once(
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
    allowed = "a whole number of steps, a ratio in [0, 1), or 'auto'"
    if value is None:
        return 0
    if isinstance(value, str):
        if value.strip() == "auto":
            return "auto"
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"`{option}` must be {allowed}; got {value!r}.") from None
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"`{option}` must be {allowed}; got {value!r} ({type(value).__name__}).")
    else:
        number = value
    if not math.isfinite(number) or number < 0 or (number >= 1 and not float(number).is_integer()):
        raise ValueError(f"`{option}` must be {allowed}; got {value!r}.")
    if number >= 1:
        return int(number)
    return math.ceil(check_int("num_training_steps", num_training_steps, minimum=1) * number)


def _as_written(value):
    """A plain number from a float or a one-element tensor; a float32 tensor gives the shortest decimal that is
    that float32 (`torch.tensor(0.999)` gives 0.999, not 0.9990000128746033)."""
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


# The options every factory shares, validated by `_check_common`.
COMMON_OPTIONS = (
    "optimizer",
    "num_warmup_steps",
    "num_training_steps",
    "warmup_type",
    "warmup_start_ratio",
    "warmup_exp_rate",
    "min_lr_ratio",
    "min_lr",
    "max_auto_warmup_ratio",
)


def _check_common(arguments: dict[str, Any]) -> tuple[dict, list[float], dict]:
    """Validate the options every schedule shares (`COMMON_OPTIONS`, read from a factory's `locals()`) and resolve
    `"auto"` warmup and the per-group floors.

    Returns the keyword arguments shared by all lambdas, one floor ratio `m` per param group and the resolved
    options as plain values.
    """
    return _check_common_options(**{name: arguments[name] for name in COMMON_OPTIONS})


def _check_common_options(
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
) -> tuple[dict, list[float], dict]:
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
    # The resolved options, plain numbers and strings: what a scheduler's state records (see `ScheduleLR`).
    options = dict(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=None if min_lr_ratio is None else float(min_lr_ratio),
        min_lr=None if min_lr is None else float(min_lr),
    )
    return shared, floors, options


def _min_lr_ratios(optimizer: Optimizer, min_lr_ratio, min_lr) -> list[float]:
    """One floor `m` per param group: `min_lr_ratio` for all, or `min_lr / group_base_lr` for each."""
    if min_lr_ratio is not None and min_lr is not None:
        raise ValueError(
            f"Pass either `min_lr_ratio` (a fraction of each base learning rate) or `min_lr` (an absolute learning "
            f"rate), not both; got min_lr_ratio={min_lr_ratio} and min_lr={min_lr}."
        )
    groups = optimizer.param_groups
    if min_lr is None:
        ratio = (
            0.0
            if min_lr_ratio is None
            else check_float("min_lr_ratio", min_lr_ratio, low=0.0, high=1.0, high_open=True)
        )
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


def _lambda_lr(
    optimizer: Optimizer, name: str, lr_lambda: Callable, floors: list[float], last_epoch: int, options: dict
) -> ScheduleLR:
    """A `ScheduleLR` with one partial per param group when the floors differ, else one shared partial."""
    last_epoch = check_int("last_epoch", last_epoch, minimum=-1)
    if len(set(floors)) <= 1:
        lambdas: Callable | list[Callable] = functools.partial(lr_lambda, min_lr_ratio=floors[0] if floors else 0.0)
    else:
        lambdas = [functools.partial(lr_lambda, min_lr_ratio=floor) for floor in floors]
    return ScheduleLR(optimizer, lambdas, last_epoch, name=name, options=options)


class ScheduleLR(LambdaLR):
    """
    The `torch.optim.lr_scheduler.LambdaLR` that every hf_lrsched factory returns: a `LambdaLR` in every respect,
    whose state also records what the schedule is, so that a resume cannot silently bend the curve.

    `state_dict()` adds the schedule's name, its resolved options (`T`, `W` with `"auto"` resolved, every option that
    shapes the rate) and the base learning rates, all plain numbers and strings (`torch.load(weights_only=True)`
    reads it). `load_state_dict()` follows the contract's resume identity rule: a state is accepted when the saved
    schedule and this one give every param group the same learning rate at every step already taken (`t` below the
    state's step count), and refused otherwise with a `ValueError` that names what differs. So a run may grow while
    its past is unchanged (a longer run still in warmup, a `wsd` run extended in its stable phase), and another
    schedule, other cycles or another base rate under an absolute `min_lr` are refused. Identical options are
    accepted at once; otherwise the check costs one evaluation of each schedule per step taken.

    After a state is loaded, the optimizer's learning rates are those of this schedule at the current step.
    """

    def __init__(self, optimizer: Optimizer, lr_lambda, last_epoch: int = -1, *, name: str, options: dict):
        self._schedule: dict[str, Any] = {"name": name, "options": dict(options)}
        super().__init__(optimizer, lr_lambda, last_epoch)

    @property
    def schedule_name(self) -> str:
        """The name of the schedule (`"warmup_cosine"`, `"cosine_with_growing_restarts"`, `"wsd"`)."""
        return self._schedule["name"]

    @property
    def schedule_options(self) -> dict:
        """The resolved options the schedule was built with (a copy)."""
        return dict(self._schedule["options"])

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["_schedule"] = {**self._schedule, "base_lrs": [float(lr) for lr in self.base_lrs]}
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedule", None)
        steps_taken = int(state.get("last_epoch", 0))
        if saved is None:
            logger.warning(
                "This scheduler state records no hf_lrsched schedule (saved by another scheduler or an older "
                "version): it is loaded without checking that it belongs to this schedule."
            )
        else:
            check_resume_identity(saved, self, steps_taken)
        state.pop("base_lrs", None)  # this schedule's base rates: equal to the saved ones wherever the past agrees
        super().load_state_dict(state)
        values = [base_lr * fn(self.last_epoch) for base_lr, fn in zip(self.base_lrs, self.lr_lambdas)]
        for group, lr in zip(self.optimizer.param_groups, values):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def schedule_part(scheduler: LambdaLR, name: str) -> Any:
    """The `cycles` (a `Cycles`) or `decay` (a `Decay`) that a schedule's multiplier function was bound with, or
    `None`: what `describe` and the resume check read, in one place."""
    lr_lambda = scheduler.lr_lambdas[0]
    return lr_lambda.keywords.get(name) if isinstance(lr_lambda, functools.partial) else None


def check_resume_identity(saved: dict, scheduler: ScheduleLR, steps_taken: int) -> None:
    """Raise `ValueError` unless the saved schedule and `scheduler` agree on every group's rate at `t < steps_taken`."""
    mine = {**scheduler._schedule, "base_lrs": [float(lr) for lr in scheduler.base_lrs]}
    if saved == mine:
        return
    differences = _describe_differences(saved, mine)
    hint = ""
    if len(saved.get("base_lrs", [])) != len(mine["base_lrs"]):
        where = (
            f"the saved run had {len(saved.get('base_lrs', []))} param groups, this optimizer has "
            f"{len(mine['base_lrs'])}"
        )
    else:
        disagreement, old = _first_disagreement(saved, scheduler, steps_taken)
        if disagreement is None:
            return
        where = disagreement
        if old is not None and old.schedule_name == "wsd":
            start = schedule_part(old, "decay").start
            if start < steps_taken:
                hint = (
                    f" The saved wsd run had begun its decay at step {start}: a wsd run grows, or branches a "
                    "cooldown, only from a checkpoint taken before its decay starts."
                )
    raise ValueError(
        f"Cannot resume this schedule from the saved state: {where}. What differs (saved -> now): {differences}. "
        f"A resume must give the {steps_taken} steps already taken the learning rates they had.{hint} Resume with "
        "the saved options, or start a new run; to lengthen a run, use a schedule whose past does not depend on its "
        "length (`wsd`, grown while still in its stable phase)."
    )


def _describe_differences(saved: dict, mine: dict) -> str:
    parts = []
    if saved.get("name") != mine["name"]:
        parts.append(f"schedule {saved.get('name')!r} -> {mine['name']!r}")
    old, new = saved.get("options", {}), mine["options"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            parts.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    old_lrs, new_lrs = saved.get("base_lrs", []), mine["base_lrs"]
    for index, (a, b) in enumerate(zip(old_lrs, new_lrs)):
        if a != b:
            parts.append(f"base learning rate of param group {index} {a!r} -> {b!r}")
    return "; ".join(parts) or "nothing"


def _first_disagreement(saved: dict, scheduler: ScheduleLR, steps_taken: int) -> tuple[str | None, ScheduleLR | None]:
    """Where the saved schedule's rates differ from `scheduler`'s over the steps taken (None if nowhere), and the
    saved schedule rebuilt (None if it cannot be)."""
    factory = _FACTORIES.get(str(saved.get("name")))
    if factory is None:
        return f"the saved schedule {saved.get('name')!r} is unknown to this version of hf_lrsched", None
    probe = torch.optim.SGD(
        [{"params": [torch.zeros(1, requires_grad=True)], "lr": lr} for lr in saved["base_lrs"]], lr=0.0
    )
    try:
        old = factory(probe, **saved["options"])
    except (TypeError, ValueError) as error:
        return f"the saved schedule cannot be rebuilt ({error})", None
    pairs = list(zip(saved["base_lrs"], old.lr_lambdas, scheduler.base_lrs, scheduler.lr_lambdas))
    for step in range(steps_taken):
        for group, (old_base, old_fn, new_base, new_fn) in enumerate(pairs):
            then, now = old_base * old_fn(step), float(new_base) * new_fn(step)
            if then != now:
                return (
                    f"param group {group} had learning rate {then!r} at step {step}, and this schedule gives it "
                    f"{now!r}"
                ), old
    return None, old


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
) -> ScheduleLR:
    r"""
    Create a schedule that warms the learning rate up from `s` times the base rate to the base rate over `W` steps,
    then decays it along a half cosine to the floor `m` times the base rate at step `T`, and stays there.

    With `u = t / W`, `p = (t - W) / (T - W)`:

    $$
    \lambda(t) = \begin{cases}
    s + (1 - s)\, w(u) & t < W \\
    m + (1 - m)\, \tfrac{1}{2}(1 + \cos \pi p) & W \le t < T \\
    m & t \ge T
    \end{cases}
    $$

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
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    arguments = dict(locals())  # the options, before any local variable is added
    shared, floors, options = _check_common(arguments)
    lr_lambda = functools.partial(_get_warmup_cosine_lr_lambda, **shared)
    return _lambda_lr(optimizer, "warmup_cosine", lr_lambda, floors, last_epoch, options)


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
) -> ScheduleLR:
    r"""
    [`get_warmup_cosine_schedule`] with exponential warmup by default:

    $$
    \lambda(t) = s + (1 - s)\,\bigl(1 - e^{-k t / W}\bigr) \qquad t < W
    $$

    With `k = 5` (the default) and `s = 0` this is the classic `eta_base * (1 - e^{-5 t / T_warmup})`; the
    multiplier reaches `1 - e^{-5} = 0.9933` at the last warmup step and 1 at step `W`. The arguments are those of
    [`get_warmup_cosine_schedule`].

    Returns:
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    return get_warmup_cosine_schedule(**locals())


def _check_fitted_cycles(cycles: Cycles) -> None:
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
            f"`num_cycles`={num_cycles} with cycle_mult={cycles.cycle_mult} does not fit into the {decay_steps} decay "
            f"steps (num_training_steps - num_warmup_steps): cycle {index} would be {length} steps long (first cycle "
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
) -> ScheduleLR:
    r"""
    Create a schedule with a warmup as in [`get_warmup_cosine_schedule`], then cosine annealing with warm restarts
    whose cycles grow by `cycle_mult` (SGDR, Loshchilov & Hutter 2017), optionally with decaying peaks and a short
    linear warmup after each restart.

    The `D = T - W` decay steps are split into cycles of length `L_i = L_0 * r^i` starting at
    `B_i = round(L_0 (r^i - 1) / (r - 1))`. Inside cycle `i`, with local step `j = t - W - B_i`, cycle length
    `L = B_{i+1} - B_i`, peak `P = m + (1 - m) * gamma^i` and `R_i = R` for `i >= 1` (0 for `i = 0`):

    $$
    \lambda(t) = \begin{cases}
    m + (P - m)\, j / R_i & j < R_i \\
    m + (P - m)\, \tfrac{1}{2}(1 + \cos \pi q) & \text{otherwise}
    \end{cases}
    $$

    with `q = (j - R_i) / (L - R_i)`, and `lambda(t) = m` for `t >= T`. The cycle index is found in closed form and is exact at every `B_i`.

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
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    arguments = dict(locals())  # the options, before any local variable is added
    shared, floors, options = _check_common(arguments)
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
    cycles = Cycles(
        decay_steps,
        num_cycles=num_cycles,
        first_cycle_steps=first_cycle_steps,
        cycle_mult=cycle_mult,
        cycle_decay=cycle_decay,
        restart_warmup_steps=restart_warmup_steps,
    )
    if num_cycles is not None:
        _check_fitted_cycles(cycles)
    cycle_options = dict(
        num_cycles=num_cycles,
        first_cycle_steps=first_cycle_steps,
        cycle_mult=cycle_mult,
        cycle_decay=cycle_decay,
        restart_warmup_steps=restart_warmup_steps,
    )
    lr_lambda = functools.partial(_get_cosine_with_growing_restarts_lr_lambda, **shared, cycles=cycles)
    return _lambda_lr(
        optimizer, "cosine_with_growing_restarts", lr_lambda, floors, last_epoch, {**options, **cycle_options}
    )


def get_wsd_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int | Literal["auto"],
    num_training_steps: int,
    *,
    decay_ratio: float | None = None,
    num_decay_steps: int | None = None,
    decay_type: DecayType = "cosine",
    warmup_type: WarmupType = "linear",
    warmup_start_ratio: float = 0.0,
    warmup_exp_rate: float = 5.0,
    min_lr_ratio: float | None = None,
    min_lr: float | None = None,
    max_auto_warmup_ratio: float = 0.1,
    last_epoch: int = -1,
) -> ScheduleLR:
    """
    Create a warmup-stable-decay (WSD) schedule: a warmup as in [`get_warmup_cosine_schedule`], the peak rate held
    until the last `D_d` steps, then a decay to the floor `m` at step `T`, where it stays (Hu et al. 2024, MiniCPM;
    Hägele et al. 2024).

    With `S = T - D_d` (the decay's start, `S >= W`) and `u = (t - S) / D_d`:

    - `t < W`: `lambda(t) = s + (1 - s) * w(t / W)`
    - `W <= t < S`: `lambda(t) = 1`
    - `S <= t < T`: `lambda(t) = m + (1 - m) * f(u)`, where `f(u)` is `(1 + cos(pi u)) / 2` (`"cosine"`),
      `1 - u` (`"linear"`) or `1 - sqrt(u)` (`"1-sqrt"`)
    - `t >= T`: `lambda(t) = m`

    Since the stable phase does not depend on `T`, a run resumed with a larger `T` from a checkpoint still in its
    stable phase continues exactly (the resume identity of [`ScheduleLR`] allows it), and a short cooldown can be
    branched from any stable checkpoint (`T = k + D_d` with `num_decay_steps = D_d`). With `warmup_start_ratio = m`
    and `num_decay_steps`, it equals `transformers.get_wsd_schedule` (`warmup_stable_decay`) at every step.

    Args:
        optimizer ([`~torch.optim.Optimizer`]):
            The optimizer for which to schedule the learning rate.
        num_warmup_steps (`int` or `"auto"`):
            The number of warmup steps `W`, or `"auto"` (see [`resolve_auto_warmup_steps`]).
        num_training_steps (`int`):
            The total number of training steps `T >= 1`.
        decay_ratio (`float`, *optional*):
            The decay's share of the training steps, in `[0, 1]`: `D_d = ceil(decay_ratio * T)` (`decay_ratio` read
            as written, so 0.2 of 10 steps is 2). Defaults to 0.2 when `num_decay_steps` is not given either.
        num_decay_steps (`int`, *optional*):
            The decay's length `D_d` in steps, `0 <= D_d <= T - W`. Mutually exclusive with `decay_ratio`.
        decay_type (`str`, *optional*, defaults to `"cosine"`):
            The decay's shape: `"cosine"`, `"linear"` or `"1-sqrt"` (which Hägele et al. found better than linear).
        warmup_type, warmup_start_ratio, warmup_exp_rate, min_lr_ratio, min_lr, max_auto_warmup_ratio, last_epoch:
            As in [`get_warmup_cosine_schedule`].

    Returns:
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    arguments = dict(locals())  # the options, before any local variable is added
    shared, floors, options = _check_common(arguments)
    decay_type = check_choice("decay_type", decay_type, DECAY_TYPES)
    total, warmup = shared["num_training_steps"], shared["num_warmup_steps"]
    if decay_ratio is not None and num_decay_steps is not None:
        raise ValueError(
            f"Pass either `decay_ratio` (a share of the training steps) or `num_decay_steps` (a number of steps), "
            f"not both; got decay_ratio={decay_ratio} and num_decay_steps={num_decay_steps}."
        )
    if num_decay_steps is not None:
        decay_steps = check_int("num_decay_steps", num_decay_steps, minimum=0)
        source = f"num_decay_steps={decay_steps}"
    else:
        ratio = check_float("decay_ratio", 0.2 if decay_ratio is None else decay_ratio, low=0.0, high=1.0)
        decay_steps = math.ceil(decimal_fraction(ratio) * total)
        source = f"decay_ratio={ratio} of num_training_steps={total}, {decay_steps} steps"
    if decay_steps > total - warmup:
        raise ValueError(
            f"The decay ({source}) is longer than the {total - warmup} steps after warmup (num_training_steps={total} "
            f"- num_warmup_steps={warmup}): it would start at step {total - decay_steps}, before warmup ends. Use a "
            "shorter decay or a shorter warmup."
        )
    decay = Decay(total - decay_steps, decay_steps, decay_type)
    wsd_options = dict(decay_ratio=decay_ratio, num_decay_steps=num_decay_steps, decay_type=decay_type)
    lr_lambda = functools.partial(_get_wsd_lr_lambda, **shared, decay=decay)
    return _lambda_lr(optimizer, "wsd", lr_lambda, floors, last_epoch, {**options, **wsd_options})


_FACTORIES: dict[str, Callable[..., ScheduleLR]] = {
    "wsd": get_wsd_schedule,
    "warmup_cosine": get_warmup_cosine_schedule,
    "cosine_with_growing_restarts": get_cosine_with_growing_restarts_schedule,
}
