"""`transformers`' scheduler names, selected through hf_lrsched (`get_schedule("cosine", ...)`, `lr_schedule="cosine"`,
`hf-lrsched plot cosine`): their options checked before the scheduler is built, and their multiplier held at its
end level from step `T` on, as every schedule of ours is.

`transformers.get_scheduler` checks almost nothing: `inverse_sqrt` with `timescale=0` divides by zero when the rate
is first computed, `linear` with more warmup than training steps never reaches its peak, `cosine_with_restarts` with
`num_cycles=0` stays at the peak, `polynomial` with `power=-1` rises to infinity; `polynomial` with
`num_warmup_steps == num_training_steps` divides by zero at step `T`, and the cosines (`cosine`,
`cosine_with_min_lr`, `cosine_warmup_with_min_lr`) rise again after `T`. Here each option is refused with its name,
its value and what is allowed, and for `t >= T` the multiplier is the decay's end level (`lambda(t) = lambda_end`),
the rule of `SCHEDULES.md` for our own schedules. Steps before `T`, those a Trainer uses, keep `transformers`' rates
exactly.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable
from typing import Any

from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ._validation import check_float, check_int

__all__ = ["check_transformers_schedule", "hold_end_level"]

#: Names whose multiplier depends on the warmup length, so that `num_warmup_steps` must be in [0, T].
_WARMED_UP = {
    "linear",
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "constant_with_warmup",
    "inverse_sqrt",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "warmup_stable_decay",
}
#: Names whose decay runs from the end of warmup to `T` with `progress = (t - W) / max(1, T - W)`: the end level is
#: the decay at `progress = 1`.
_DECAY_TO_T = {"linear", "cosine", "cosine_with_restarts", "polynomial", "cosine_with_min_lr"}
#: Names whose multiplier `transformers` does not hold at its end level after `T` (or computes by dividing by zero
#: there, `polynomial` with `W = T`): `linear` ends at 0 by itself.
_HELD = {
    "cosine",
    "cosine_with_restarts",
    "polynomial",
    "cosine_with_min_lr",
    "cosine_warmup_with_min_lr",
    "inverse_sqrt",
}


def check_transformers_schedule(
    name: str, optimizer, num_warmup_steps, num_training_steps, kwargs: dict[str, Any]
) -> None:
    """
    Refuse the options of `transformers`' scheduler `name` that its factory would accept and then misuse, naming the
    option, the value and what is allowed. The keywords themselves (an unknown one) are checked by the registry.

    Raises:
        `ValueError` or `TypeError`: for a value outside what the schedule can follow.
    """
    if name not in _WARMED_UP:  # constant (takes no options), reduce_lr_on_plateau and greedy (checked upstream)
        return
    if num_warmup_steps is None:
        return  # `transformers.get_scheduler` says that it needs one
    if num_training_steps is not None:
        num_training_steps = check_int("num_training_steps", num_training_steps, minimum=1)
        num_warmup_steps = check_int(
            "num_warmup_steps",
            num_warmup_steps,
            minimum=0,
            maximum=num_training_steps,
            hint=f" (at most num_training_steps, for {name!r})",
        )
    else:
        num_warmup_steps = check_int("num_warmup_steps", num_warmup_steps, minimum=0)
    T, W = num_training_steps, num_warmup_steps
    if name in ("cosine", "cosine_with_min_lr", "cosine_warmup_with_min_lr") and "num_cycles" in kwargs:
        check_float("num_cycles", kwargs["num_cycles"], low=0.0, low_open=True)
    if name == "cosine_with_restarts" and "num_cycles" in kwargs:
        most = None if T is None else max(1, T - W)
        _check_integral(
            "num_cycles", kwargs["num_cycles"], minimum=1, maximum=most, hint=" (cycles of one step or more)"
        )
    if name == "polynomial":
        lr_init = optimizer.defaults["lr"]
        if "power" in kwargs:
            check_float("power", kwargs["power"], low=0.0, low_open=True)
        if "lr_end" in kwargs:
            lr_end = check_float("lr_end", kwargs["lr_end"], low=0.0)
            if not lr_end < lr_init:
                raise ValueError(f"`lr_end` must be below the initial learning rate {lr_init}, got {lr_end}.")
    if name == "inverse_sqrt" and kwargs.get("timescale") is not None:
        check_float("timescale", kwargs["timescale"], low=0.0, low_open=True)
    if name in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        if kwargs.get("min_lr_rate") is not None:
            check_float("min_lr_rate", kwargs["min_lr_rate"], low=0.0, high=1.0)
        if kwargs.get("min_lr") is not None:
            check_float("min_lr", kwargs["min_lr"], low=0.0, high=float(optimizer.defaults["lr"]))
        if kwargs.get("warmup_lr_rate") is not None:
            check_float("warmup_lr_rate", kwargs["warmup_lr_rate"], low=0.0, high=1.0)
    if name == "warmup_stable_decay":
        _check_warmup_stable_decay(W, T, kwargs)


def _check_warmup_stable_decay(W: int, T: int | None, kwargs: dict[str, Any]) -> None:
    decay = kwargs.get("num_decay_steps")
    if decay is None:
        raise ValueError("'warmup_stable_decay' needs `num_decay_steps`, the length of its decay, in its options.")
    decay = check_int("num_decay_steps", decay, minimum=0)
    stable = kwargs.get("num_stable_steps")
    if stable is not None:
        stable = check_int("num_stable_steps", stable, minimum=0)
    if T is not None:
        used = W + decay + (stable or 0)
        if used > T:
            parts = f"num_warmup_steps {W} + num_decay_steps {decay}" + (
                "" if stable is None else f" + num_stable_steps {stable}"
            )
            raise ValueError(f"'warmup_stable_decay': {parts} = {used} exceed num_training_steps {T}.")
    if "min_lr_ratio" in kwargs:
        check_float("min_lr_ratio", kwargs["min_lr_ratio"], low=0.0, high=1.0)
    if "num_cycles" in kwargs:
        check_float("num_cycles", kwargs["num_cycles"], low=0.0, low_open=True)


def _check_integral(name: str, value, *, minimum: int, maximum: int | None, hint: str = "") -> int:
    """An integer, or a float with an integral value (JSON and YAML write `2.0`), in `[minimum, maximum]`."""
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        if not (math.isfinite(value) and float(value).is_integer()):
            allowed = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
            raise ValueError(f"`{name}` must be {allowed}{hint}, got {value}.")
        value = int(float(value))
    return check_int(name, value, minimum=minimum, maximum=maximum, hint=hint)


def hold_end_level(name: str, scheduler: LRScheduler, num_training_steps) -> LRScheduler:
    """
    Hold the multiplier of `transformers`' scheduler `name` at its end level from step `num_training_steps` on:
    `lambda(t) = lambda_end` for `t >= T`, where `lambda_end` is the decay's value at its end (`progress = 1`).
    Every step before `T` keeps `transformers`' own multiplier. Schedulers that are no `LambdaLR`, and names
    whose multiplier already ends where it should, are returned unchanged.
    """
    if num_training_steps is None or not isinstance(scheduler, LambdaLR):
        return scheduler
    if name not in _HELD:
        return scheduler
    T = int(num_training_steps)
    wrapped: list[Callable[[int], float]] = []
    for lr_lambda in scheduler.lr_lambdas:
        if not isinstance(lr_lambda, functools.partial) or "num_warmup_steps" not in lr_lambda.keywords:
            return scheduler  # not the shape this module knows: leave transformers' own
        wrapped.append(
            functools.partial(_held_at_end, lr_lambda=lr_lambda, num_training_steps=T, end=_end(name, lr_lambda, T))
        )
    scheduler.lr_lambdas = wrapped
    return scheduler


def _end(name: str, lr_lambda: functools.partial, T: int) -> float:
    """The multiplier at the end of the decay, computed by `transformers`' own formula where `progress` is 1 (also
    when the warmup fills every step, `W = T`, where that formula itself would divide by zero or restart)."""
    W = lr_lambda.keywords["num_warmup_steps"]
    if name in _DECAY_TO_T:
        if W < T:
            return float(lr_lambda(T))
        return float(lr_lambda.func(T, *lr_lambda.args, **{**lr_lambda.keywords, "num_warmup_steps": T - 1}))
    if name == "cosine_warmup_with_min_lr":  # its progress is (t - W + 1) / max(1, T - W): 1 at t = T - 1
        keywords = {**lr_lambda.keywords, "num_warmup_steps": min(W, T - 1)}
        return float(lr_lambda.func(T - 1, *lr_lambda.args, **keywords))
    return float(lr_lambda(T))  # inverse_sqrt: no end of its own, held at its value at T


def _held_at_end(current_step: int, *, lr_lambda, num_training_steps: int, end: float) -> float:
    return end if current_step >= num_training_steps else lr_lambda(current_step)


class TransformersLambdaLR(LambdaLR):
    """
    A `transformers` schedule built through hf_lrsched's registry: torch's `LambdaLR` in every respect, except that
    a state saved by a schedule of hf_lrsched loses its record (`"_schedule"`) when loaded. A plain `LambdaLR` keeps
    any key of the state it loads as an attribute and saves it again, so its later states would still claim a
    schedule of ours that no longer drives the run, and a contradicting resume would pass.
    """

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        state.pop("_schedule", None)
        super().load_state_dict(state)
        self.__dict__.pop("_schedule", None)


def without_our_record(scheduler: LRScheduler) -> LRScheduler:
    """Make a plain `LambdaLR` of `transformers` a [`TransformersLambdaLR`] (the same object, the same state)."""
    if type(scheduler) is LambdaLR:
        scheduler.__class__ = TransformersLambdaLR
    return scheduler
