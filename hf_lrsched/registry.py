"""One table from names to schedule factories: ours, every `transformers` scheduler name, and yours.

A factory is called as `factory(optimizer, num_warmup_steps=..., num_training_steps=..., **kwargs)` and returns a
`torch.optim.lr_scheduler.LRScheduler`.
"""

from __future__ import annotations

import functools
import inspect
import json
import warnings
from collections.abc import Callable
from typing import Literal

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler
from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION, get_scheduler
from transformers.trainer_utils import SchedulerType

from ._validation import check_int, suggest
from .schedules import (
    get_cosine_with_growing_restarts_schedule,
    get_exponential_warmup_cosine_schedule,
    get_warmup_cosine_schedule,
    get_wsd_schedule,
    resolve_auto_warmup_steps,
)

__all__ = [
    "register_schedule",
    "available_schedules",
    "get_schedule",
    "get_schedule_factory",
    "parse_schedule_kwargs",
    "preview_lr_lambda",
    "preview_scheduler",
    "probe_optimizer",
    "schedule_multipliers",
]

ScheduleFactory = Callable[..., LRScheduler]

# The number of training steps assumed when options are checked before the real count is known (at parse time):
# large enough that no valid configuration fails for want of steps. The real count is checked again at training.
PROBE_TRAINING_STEPS = 10**6

_REGISTRY: dict[str, ScheduleFactory] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_schedule(
    name: str, factory: ScheduleFactory | None = None, *, override: bool = False, description: str | None = None
):
    """
    Register a schedule factory under `name`, so that [`get_schedule`], the Trainer integration and the command line
    can select it by that string. Usable directly or as a decorator:

    ```python
    @register_schedule("my_schedule")
    def get_my_schedule(optimizer, num_warmup_steps, num_training_steps, *, last_epoch=-1):
        ...
    ```

    Args:
        name (`str`):
            The name to register, a non-empty string.
        factory (`Callable`, *optional*):
            Called as `factory(optimizer, num_warmup_steps=..., num_training_steps=..., **kwargs)`; returns an
            `LRScheduler`. Leave it out to use `register_schedule` as a decorator.
        override (`bool`, *optional*, defaults to `False`):
            Replace an existing registration. Without it, registering a taken name raises `ValueError`.
        description (`str`, *optional*):
            A one-line description for `hf-lrsched list`; defaults to the first line of the factory's docstring.

    Returns:
        The factory (so that the decorator leaves the function unchanged).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty string, got {name!r}.")

    def decorator(fn: ScheduleFactory) -> ScheduleFactory:
        if not callable(fn):
            raise TypeError(f"`factory` for schedule {name!r} must be callable, got {fn!r}.")
        if name in _REGISTRY and not override:
            raise ValueError(f"A schedule named {name!r} is already registered; pass `override=True` to replace it.")
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description or _first_sentence(inspect.getdoc(fn) or "")
        return fn

    return decorator if factory is None else decorator(factory)


def available_schedules() -> list[str]:
    """The names [`get_schedule`] accepts, sorted: ours, `transformers`' and any registered since."""
    return sorted(_REGISTRY)


def schedule_description(name: str) -> str:
    """A one-line description of the schedule registered under `name`."""
    get_schedule_factory(name)
    return _DESCRIPTIONS.get(name, "")


def get_schedule_factory(name: str) -> ScheduleFactory:
    """The factory registered under `name`; an unknown name raises `ValueError` with the closest valid names."""
    if isinstance(name, SchedulerType):
        name = name.value
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown schedule name {name!r}.{suggest(name, _REGISTRY)} Available schedules: {available_schedules()}."
        ) from None


#: Keys of `lr_schedule_kwargs` that a training loop supplies itself: a user's value would clash or break a resume.
RESERVED_SCHEDULE_KWARGS = {
    "optimizer": "the training loop passes its own optimizer",
    "num_warmup_steps": "set the warmup steps (`warmup_steps`, `--num_warmup_steps`) or `auto_warmup` instead",
    "num_training_steps": "set the training length (`max_steps`, `--max_train_steps`, epochs) instead",
    "last_epoch": "a run resumes its schedule from a checkpoint (`resume_from_checkpoint`)",
}


def parse_schedule_kwargs(value, option: str = "lr_schedule_kwargs") -> dict:
    """A schedule's options from a dict, a JSON object string or None, with a message naming `option` otherwise."""
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(f"`{option}` is not valid JSON ({error.msg} at character {error.pos}): {value!r}.") from None
    if not isinstance(value, dict):
        raise ValueError(
            f"`{option}` must be a JSON object of the schedule's options, e.g. '{{\"num_cycles\": 3}}'; got {value!r}."
        )
    return dict(value)


def check_reserved_schedule_kwargs(kwargs: dict, option: str = "lr_schedule_kwargs") -> None:
    """Reject the keys of `RESERVED_SCHEDULE_KWARGS` by name."""
    for key, why in RESERVED_SCHEDULE_KWARGS.items():
        if key in kwargs:
            raise ValueError(f"`{option}` must not contain {key!r}: {why}.")


def check_schedule_kwargs(name: str, kwargs: dict) -> None:
    """Raise `TypeError` for a keyword the schedule `name` does not take, naming the closest ones it does."""
    factory = get_schedule_factory(name)
    upstream = _upstream_name(factory)
    target = TYPE_TO_SCHEDULER_FUNCTION[SchedulerType(upstream)] if upstream else factory
    try:
        parameters = inspect.signature(target).parameters
    except (TypeError, ValueError):  # a builtin or C callable: let the call itself complain
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    reserved = {"optimizer", "num_warmup_steps", "num_training_steps"}
    accepted = [p for p in parameters if p not in reserved]
    for key in kwargs:
        if key not in accepted:
            raise TypeError(
                f"Schedule {name!r} got an unexpected keyword argument {key!r}.{suggest(key, accepted)} "
                f"It accepts: {accepted}."
            )


def get_schedule(
    name: str,
    optimizer: Optimizer,
    num_warmup_steps: int | Literal["auto"] | None = None,
    num_training_steps: int | None = None,
    **kwargs,
) -> LRScheduler:
    """
    Build any registered schedule by name: one of ours (`warmup_cosine`, `exponential_warmup_cosine`,
    `cosine_with_growing_restarts`), any `transformers` scheduler name (`linear`, `cosine`, `cosine_with_restarts`,
    ..., delegated to `transformers.get_scheduler`) or one added with [`register_schedule`].

    Args:
        name (`str`):
            The schedule's name; see [`available_schedules`].
        optimizer ([`~torch.optim.Optimizer`]):
            The optimizer for which to schedule the learning rate.
        num_warmup_steps (`int` or `"auto"`, *optional*):
            The number of warmup steps, or `"auto"` to derive it from Adam's `beta2` (for `transformers`' schedules,
            with the linear rule `ceil(2 / (1 - beta2))`, capped at 10% of `num_training_steps`).
        num_training_steps (`int`, *optional*):
            The total number of training steps.
        kwargs:
            The schedule's own options (`min_lr`, `num_cycles`, ...), passed to its factory; for `transformers`' names,
            its `scheduler_specific_kwargs`.

    Returns:
        `torch.optim.lr_scheduler.LRScheduler` (a `LambdaLR` for every schedule of ours).
    """
    factory = get_schedule_factory(name)
    name = name.value if isinstance(name, SchedulerType) else name
    check_schedule_kwargs(name, kwargs)
    if _upstream_name(factory) and num_warmup_steps == "auto":
        num_warmup_steps = resolve_auto_warmup_steps(optimizer, check_int("num_training_steps", num_training_steps, minimum=1))
    return factory(optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs)


def _upstream_name(factory: ScheduleFactory) -> str | None:
    """The `transformers` scheduler name a factory delegates to, or None for any other factory."""
    if isinstance(factory, functools.partial) and factory.func is _transformers_factory:
        return factory.args[0]
    return None


def _transformers_factory(name: str, optimizer, num_warmup_steps=None, num_training_steps=None, last_epoch=-1, **kwargs):
    last_epoch = check_int("last_epoch", last_epoch, minimum=-1)
    if last_epoch != -1:  # before building, which sets `initial_lr` where it is missing
        for index, group in enumerate(optimizer.param_groups):
            if "initial_lr" not in group:
                raise ValueError(
                    f"`last_epoch`={last_epoch} resumes a schedule, which needs each param group's `initial_lr` (set "
                    f"when a scheduler is first built, and kept in the optimizer's state_dict), but param group "
                    f"{index} has none; load the optimizer's state first, or build with last_epoch=-1."
                )
    scheduler = get_scheduler(
        name,
        optimizer=optimizer,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=kwargs,
    )
    if last_epoch == -1:
        return scheduler
    # `transformers.get_scheduler` forwards `last_epoch` to some schedules and drops it for others: do what a
    # `LambdaLR(..., last_epoch=k)` does for all of them, start at step k + 1.
    if not isinstance(scheduler, LambdaLR):
        raise ValueError(
            f"`last_epoch`={last_epoch} cannot be honoured by {name!r}, which builds a {type(scheduler).__name__} "
            "whose rate depends on training; build it with last_epoch=-1 and load its state_dict to resume."
        )
    scheduler.last_epoch = last_epoch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "step() before optimizer.step()" notice: this is a resume
        scheduler.step()
    return scheduler


def _first_sentence(doc: str) -> str:
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    return paragraph.split(". ")[0].rstrip(".:") + "."


def schedule_multipliers(
    name: str,
    num_training_steps: int,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    *,
    num_steps: int | None = None,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs,
) -> list[float]:
    """
    The multipliers `lambda(0), ..., lambda(num_steps)` of a schedule, for previews, plots and tests.

    Nothing is trained: the schedule is built on a throw-away parameter (an `AdamW` with the given `betas`, so that
    `num_warmup_steps="auto"` resolves as it would with `transformers`' default optimizer) and its `LambdaLR` lambdas
    are evaluated directly, so the curve costs one function call per step.

    Args:
        name (`str`):
            The schedule's name; see [`available_schedules`].
        num_training_steps (`int`):
            The total number of training steps `T`.
        num_warmup_steps (`int` or `"auto"`, *optional*, defaults to 0):
            The number of warmup steps.
        num_steps (`int`, *optional*):
            The last step to evaluate; defaults to `num_training_steps`.
        lr (`float`, *optional*, defaults to 1.0):
            The base learning rate, which matters only when an absolute `min_lr` is given.
        betas (`tuple[float, float]`, *optional*, defaults to `(0.9, 0.999)`):
            The optimizer's betas, used by `num_warmup_steps="auto"`.
        kwargs:
            The schedule's own options.

    Returns:
        `list[float]`: `num_steps + 1` multipliers of the base learning rate.
    """
    num_steps = check_int("num_steps", num_training_steps if num_steps is None else num_steps, minimum=0)
    lr_lambda = preview_lr_lambda(name, num_training_steps, num_warmup_steps, lr=lr, betas=betas, **kwargs)
    return [lr_lambda(step) for step in range(num_steps + 1)]


def probe_optimizer(lr: float = 1.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """An `AdamW` over one throw-away parameter: enough to build (and so to check) any schedule without a model."""
    return torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr, betas=betas)


def preview_scheduler(
    name: str,
    num_training_steps: int,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    *,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs,
) -> LambdaLR:
    """A schedule built on a throw-away parameter (see [`schedule_multipliers`]); refuses one that is no
    `LambdaLR`, since its rate depends on training."""
    scheduler = get_schedule(name, probe_optimizer(lr, betas), num_warmup_steps, num_training_steps, **kwargs)
    if not isinstance(scheduler, LambdaLR):
        raise ValueError(
            f"Schedule {name!r} builds a {type(scheduler).__name__}, whose learning rate depends on training; "
            "it has no multiplier curve to preview."
        )
    return scheduler


def preview_lr_lambda(
    name: str,
    num_training_steps: int,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    *,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs,
) -> Callable[[int], float]:
    """The multiplier function of a schedule (of its first param group), built on a throw-away parameter; see
    [`schedule_multipliers`]."""
    return preview_scheduler(name, num_training_steps, num_warmup_steps, lr=lr, betas=betas, **kwargs).lr_lambdas[0]


register_schedule(
    "warmup_cosine",
    get_warmup_cosine_schedule,
    description="Linear (or exponential, cosine) warmup, then a half cosine down to a floor.",
)
register_schedule(
    "exponential_warmup_cosine",
    get_exponential_warmup_cosine_schedule,
    description="Exponential warmup 1 - exp(-k t / W), then a half cosine down to a floor.",
)
register_schedule(
    "cosine_with_growing_restarts",
    get_cosine_with_growing_restarts_schedule,
    description="Warmup, then cosine annealing with warm restarts whose cycles grow (SGDR), decaying peaks optional.",
)
register_schedule(
    "wsd",
    get_wsd_schedule,
    description="Warmup, the peak held, then a short decay (cosine, linear or 1-sqrt) to a floor; runs can grow.",
)
# One line each for `hf-lrsched list`; a name that a newer `transformers` adds falls back to its docstring.
_TRANSFORMERS_DESCRIPTIONS = {
    "linear": "Linear warmup, then a straight line down to 0 (the Trainer's default).",
    "cosine": "Linear warmup, then a half cosine down to 0.",
    "cosine_with_restarts": "Linear warmup, then cosine with hard restarts in cycles of equal length.",
    "polynomial": "Linear warmup, then polynomial decay to `lr_end`.",
    "constant": "A constant learning rate.",
    "constant_with_warmup": "Linear warmup, then constant.",
    "inverse_sqrt": "Linear warmup, then decay as 1 / sqrt(step).",
    "reduce_lr_on_plateau": "Lower the learning rate when a metric stops improving (not a LambdaLR).",
    "cosine_with_min_lr": "Linear warmup, then a half cosine down to `min_lr` or `min_lr_rate`.",
    "cosine_warmup_with_min_lr": "Linear warmup from `min_lr`, then a half cosine down to `min_lr`.",
    "warmup_stable_decay": "Warmup, a constant stage, then a decay (WSD).",
    "greedy": "Adapt the learning rate to the training loss (not a LambdaLR).",
}
for _name in sorted(member.value for member in SchedulerType):
    _fn = TYPE_TO_SCHEDULER_FUNCTION[SchedulerType(_name)]
    _line = _TRANSFORMERS_DESCRIPTIONS.get(_name) or _first_sentence(inspect.getdoc(_fn) or "")
    register_schedule(
        _name, functools.partial(_transformers_factory, _name), description=f"[transformers] {_line}"
    )
