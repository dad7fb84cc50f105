"""One table from names to schedule factories: ours, every `transformers` scheduler name, and yours.

A factory is called as `factory(optimizer, num_warmup_steps=..., num_training_steps=..., **kwargs)` and returns a
`torch.optim.lr_scheduler.LRScheduler`. `transformers`' names are added on first use of the table, so that importing
hf_lrsched (or building one of its own schedules) does not import `transformers.optimization`.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import importlib.util
import inspect
import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from ._validation import check_int, check_last_epoch, numbers_from_strings, suggest
from .schedules import (
    get_cosine_with_growing_restarts_schedule,
    get_exponential_warmup_cosine_schedule,
    get_phases_schedule,
    get_warmup_cosine_schedule,
    get_wsd_schedule,
)
from .warmup import resolve_auto_warmup_steps

__all__ = [
    "ScheduleEntry",
    "available_schedules",
    "get_schedule",
    "get_schedule_entry",
    "get_schedule_factory",
    "parse_schedule_kwargs",
    "register_schedule",
    "schedule_description",
    "unregister_schedule",
]

if TYPE_CHECKING:
    from torch.optim import Optimizer
    from torch.optim.lr_scheduler import LRScheduler

ScheduleFactory = Callable[..., "LRScheduler"]


@dataclass(frozen=True)
class ScheduleEntry:
    """
    One registered schedule.

    Attributes:
        name (`str`):
            The name it is selected by.
        factory (`Callable`):
            Called as `factory(optimizer, num_warmup_steps=..., num_training_steps=..., **kwargs)`.
        description (`str`):
            One line, shown by `hf-lrsched list`.
        transformers_name (`str`, *optional*):
            The `transformers` scheduler name the entry delegates to (`transformers.get_scheduler`), or `None`.
        torch_free (`bool`, *optional*, defaults to `False`):
            Whether the factory lays its schedule out without torch when given a
            [`PreviewOptimizer`][hf_lrsched.stages.PreviewOptimizer] (every schedule of hf_lrsched): previews and the
            command line then need neither torch nor `transformers`.
    """

    name: str
    factory: ScheduleFactory
    description: str
    transformers_name: str | None = None
    torch_free: bool = False


_REGISTRY: dict[str, ScheduleEntry] = {}
_TRANSFORMERS_LOADED = False


def register_schedule(
    name: str,
    factory: ScheduleFactory | ScheduleEntry | None = None,
    *,
    override: bool = False,
    description: str | None = None,
):
    """
    Register a schedule factory under `name`, so that [`get_schedule`][hf_lrsched.get_schedule], the Trainer
    integration and the command line can select it by that string. Usable directly or as a decorator:

    ```python
    import torch
    from hf_lrsched import get_schedule, register_schedule


    @register_schedule("constant_half", description="Half the base rate, always.")
    def get_constant_half_schedule(optimizer, num_warmup_steps=None, num_training_steps=None, *, last_epoch=-1):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5, last_epoch)


    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-3)
    assert get_schedule("constant_half", optimizer).get_last_lr() == [5e-4]
    ```

    Args:
        name (`str`):
            The name to register, a non-empty string.
        factory (`Callable` or [`ScheduleEntry`][hf_lrsched.registry.ScheduleEntry], *optional*):
            Called as `factory(optimizer, num_warmup_steps=..., num_training_steps=..., **kwargs)`; returns an
            `LRScheduler`. Leave it out to use `register_schedule` as a decorator. An entry from
            [`unregister_schedule`][hf_lrsched.registry.unregister_schedule] is put back as it was.
        override (`bool`, *optional*, defaults to `False`):
            Replace an existing registration. Without it, registering a taken name raises `ValueError`.
        description (`str`, *optional*):
            A one-line description for `hf-lrsched list`; defaults to the first sentence of the factory's docstring.

    Returns:
        The factory (so that the decorator leaves the function unchanged).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty string, got {name!r}.")

    def decorator(fn):
        if isinstance(fn, ScheduleEntry):
            entry = fn if fn.name == name else dataclasses.replace(fn, name=name)
        elif callable(fn):
            entry = ScheduleEntry(name, fn, description or _first_sentence(inspect.getdoc(fn) or ""))
        else:
            raise TypeError(f"`factory` for schedule {name!r} must be callable, got {fn!r}.")
        _load_transformers_names()
        if name in _REGISTRY and not override:
            raise ValueError(f"A schedule named {name!r} is already registered; pass `override=True` to replace it.")
        _REGISTRY[name] = entry
        return fn

    return decorator if factory is None else decorator(factory)


def unregister_schedule(name: str) -> ScheduleEntry:
    """
    Remove the schedule registered under `name` and return its entry (pass it to
    [`register_schedule`][hf_lrsched.register_schedule] to put it back).

    Raises:
        `ValueError`: for a name that is not registered, with the closest ones.
    """
    entry = get_schedule_entry(name)
    del _REGISTRY[entry.name]
    return entry


def available_schedules() -> list[str]:
    """The names [`get_schedule`][hf_lrsched.get_schedule] accepts, sorted: ours, `transformers`' and any
    registered since."""
    _load_transformers_names()
    return sorted(_REGISTRY)


def get_schedule_entry(name: str) -> ScheduleEntry:
    """
    The [`ScheduleEntry`][hf_lrsched.registry.ScheduleEntry] registered under `name` (a string, or a
    `transformers.SchedulerType`).

    Raises:
        `TypeError`: when `name` is not a string.
        `ValueError`: for an unknown name, with the closest valid names.
    """
    name = check_schedule_name(name)
    if name not in _REGISTRY:
        _load_transformers_names()
    if name not in _REGISTRY:
        raise _unknown_name(name, list(_REGISTRY))
    return _REGISTRY[name]


def check_schedule_name(name: str) -> str:
    """
    `name` (a string, or a `transformers.SchedulerType`) as a string if a schedule is registered under it, without
    importing `transformers`' schedules (nor torch) to find out: an unknown name is refused at once.

    Raises:
        `TypeError`: when `name` is not a string.
        `ValueError`: for an unknown name, with the closest valid names.
    """
    if isinstance(name, enum.Enum):  # transformers' SchedulerType is a str Enum
        name = name.value
    if not isinstance(name, str):
        raise TypeError(f"A schedule name must be a string, got {name!r} ({type(name).__name__}).")
    if name in _REGISTRY:
        return name
    if _TRANSFORMERS_LOADED:
        names = list(_REGISTRY)
    else:  # in the order loading them gives: ours, then transformers' (sorted)
        names = list(_REGISTRY) + [n for n in sorted(_transformers_names()) if n not in _REGISTRY]
    if name not in names:
        raise _unknown_name(name, names)
    return name


def _unknown_name(name: str, names: list[str]) -> ValueError:
    return ValueError(f"Unknown schedule name {name!r}.{suggest(name, names)} Available schedules: {sorted(names)}.")


def get_schedule_factory(name: str) -> ScheduleFactory:
    """
    The factory registered under `name`, called as `factory(optimizer, num_warmup_steps=..., num_training_steps=...,
    **kwargs)`. Raises as [`get_schedule_entry`][hf_lrsched.registry.get_schedule_entry] does.
    """
    return get_schedule_entry(name).factory


def schedule_description(name: str) -> str:
    """The one-line description of the schedule registered under `name` (what `hf-lrsched list` prints)."""
    return get_schedule_entry(name).description


class ReservedKwarg(NamedTuple):
    """Why a key of a schedule's options is the caller's, not the user's: what to set instead in a training loop's
    arguments (`lr_schedule_kwargs`), and in `hf-lrsched`'s `--kwargs`."""

    loop: str
    command_line: str


#: Keys of a schedule's options that the caller supplies itself: a user's value would clash or break a resume. The
#: one table for the training loops (`lr_schedule_kwargs`) and the command line (`--kwargs`).
RESERVED_SCHEDULE_KWARGS: dict[str, ReservedKwarg] = {
    "optimizer": ReservedKwarg(
        "the training loop passes its own optimizer", "the curve is drawn on a throw-away optimizer"
    ),
    "num_warmup_steps": ReservedKwarg(
        "set the warmup steps (`warmup_steps`, `--num_warmup_steps`) or `auto_warmup` instead",
        "use --num-warmup-steps or --warmup-ratio",
    ),
    "num_training_steps": ReservedKwarg(
        "set the training length (`max_steps`, `--max_train_steps`, epochs) instead", "use --num-training-steps"
    ),
    "last_epoch": ReservedKwarg(
        "a run resumes its schedule from a checkpoint (`resume_from_checkpoint`)",
        "a curve is drawn from step 0; a resumed run's rates are the same curve's",
    ),
    "new_stage": ReservedKwarg(
        "set `lr_resume='new_stage'` (`--lr_resume new_stage`) to start the schedule as a new stage",
        "a curve is drawn from step 0; use --state to draw the stages a saved run records",
    ),
}


def parse_schedule_kwargs(value: dict | str | None, option: str = "lr_schedule_kwargs") -> dict:
    """
    A schedule's options from a dict, a JSON object string or `None`, with a message naming `option` otherwise.
    Numbers written as strings are read as numbers at any depth, as configs give them: PyYAML reads `1e-6` (no
    dot) as a string.

    Raises:
        `TypeError`: for a value that is neither (a list, a number).
        `ValueError`: for a string that is not a JSON object.
    """
    if value is None:
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"`{option}` is not valid JSON ({error.msg} at character {error.pos}): {value!r}."
            ) from None
        if not isinstance(value, dict):
            raise ValueError(
                f"`{option}` must be a JSON object of the schedule's options, e.g. '{{\"num_cycles\": 3}}'; got {value!r}."
            )
    if not isinstance(value, dict):
        raise TypeError(
            f"`{option}` must be a dict (or a JSON object string) of the schedule's options, e.g. {{'num_cycles': 3}}; "
            f"got {value!r} ({type(value).__name__})."
        )
    return numbers_from_strings(dict(value))


def check_reserved_schedule_kwargs(
    kwargs: dict, option: str = "lr_schedule_kwargs", *, command_line: bool = False
) -> None:
    """Reject the keys of `RESERVED_SCHEDULE_KWARGS` by name, with what to set instead: in a training loop's
    arguments, or on `hf-lrsched`'s command line (`command_line=True`)."""
    for key, reserved in RESERVED_SCHEDULE_KWARGS.items():
        if key in kwargs:
            instead = reserved.command_line if command_line else reserved.loop
            raise ValueError(f"`{option}` must not contain {key!r}: {instead}.")


def check_schedule_kwargs(name: str, kwargs: dict) -> None:
    """Raise `TypeError` for a keyword the schedule `name` does not take, naming the closest ones it does."""
    entry = get_schedule_entry(name)
    target: Any = entry.factory
    if entry.transformers_name is not None:
        from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION
        from transformers.trainer_utils import SchedulerType

        target = TYPE_TO_SCHEDULER_FUNCTION[SchedulerType(entry.transformers_name)]
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
    **kwargs: Any,
) -> LRScheduler:
    """
    Build any registered schedule by name: one of ours (`warmup_cosine`, `exponential_warmup_cosine`,
    `cosine_with_growing_restarts`, `wsd`, `phases`), any `transformers` scheduler name (`linear`, `cosine`,
    `cosine_with_restarts`, ..., delegated to `transformers.get_scheduler`) or one added with
    [`register_schedule`][hf_lrsched.register_schedule].

    ```python
    import torch
    from hf_lrsched import get_schedule

    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-3)
    scheduler = get_schedule("cosine_with_growing_restarts", optimizer, 10, 100, num_cycles=3, cycle_mult=2.0)
    ```

    Args:
        name (`str`):
            The schedule's name; see [`available_schedules`][hf_lrsched.available_schedules].
        optimizer (`torch.optim.Optimizer`):
            The optimizer for which to schedule the learning rate.
        num_warmup_steps (`int` or `"auto"`, *optional*):
            The number of warmup steps, or `"auto"` to derive it from Adam's `beta2` (for `transformers`' schedules,
            with the linear rule `ceil(2 / (1 - beta2))`, capped at 10% of `num_training_steps`).
        num_training_steps (`int`, *optional*):
            The total number of training steps.
        kwargs:
            The schedule's own options (`min_lr`, `num_cycles`, `phases`, ..., and `new_stage=True` to start one of
            ours as a new stage of a run when a state is loaded), passed to its factory; for `transformers`' names,
            its `scheduler_specific_kwargs`.

    Returns:
        `torch.optim.lr_scheduler.LRScheduler`: a [`ScheduleLR`][hf_lrsched.ScheduleLR] for every schedule of ours.

    Raises:
        `ValueError`: for an unknown name or an invalid option value.
        `TypeError`: for an option the schedule does not take, or a value of the wrong type.
    """
    entry = get_schedule_entry(name)
    if entry.transformers_name is not None and "new_stage" in kwargs:
        if kwargs.pop("new_stage") is not False:
            raise ValueError(
                f"`new_stage` starts a schedule of hf_lrsched as a new stage of a run; {name!r} is a `transformers` "
                "schedule, which records no stages. Use one of ours (`phases`, `wsd`, `warmup_cosine`, ...)."
            )
    check_schedule_kwargs(entry.name, kwargs)
    if entry.transformers_name is not None and num_warmup_steps == "auto":
        num_warmup_steps = resolve_auto_warmup_steps(
            optimizer, check_int("num_training_steps", num_training_steps, minimum=1)
        )
    return entry.factory(optimizer, num_warmup_steps=num_warmup_steps, num_training_steps=num_training_steps, **kwargs)


def _transformers_factory(
    name: str, optimizer, num_warmup_steps=None, num_training_steps=None, last_epoch=-1, **kwargs
):
    from torch.optim.lr_scheduler import LambdaLR
    from transformers.optimization import get_scheduler

    from .transformers_schedules import check_transformers_schedule, hold_end_level, without_our_record

    check_transformers_schedule(name, optimizer, num_warmup_steps, num_training_steps, kwargs)
    last_epoch = check_last_epoch(last_epoch, optimizer.param_groups)  # before building, which sets `initial_lr`
    scheduler = get_scheduler(
        name,
        optimizer=optimizer,
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        scheduler_specific_kwargs=kwargs,
    )
    scheduler = without_our_record(hold_end_level(name, scheduler, num_training_steps))
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


_TRANSFORMERS_NAMES: tuple[str, ...] | None = None


def _transformers_names() -> tuple[str, ...]:
    """The values of `transformers.trainer_utils.SchedulerType`, read from that module's source without importing it
    (it imports torch, seconds for a name that is not there); from the module itself where the source cannot be
    read."""
    global _TRANSFORMERS_NAMES
    if _TRANSFORMERS_NAMES is None:
        _TRANSFORMERS_NAMES = _scheduler_type_values_from_source()
        if _TRANSFORMERS_NAMES is None:
            from transformers.trainer_utils import SchedulerType

            _TRANSFORMERS_NAMES = tuple(member.value for member in SchedulerType)
    return _TRANSFORMERS_NAMES


def _scheduler_type_values_from_source() -> tuple[str, ...] | None:
    try:
        spec = importlib.util.find_spec("transformers")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return None
        path = os.path.join(next(iter(spec.submodule_search_locations)), "trainer_utils.py")
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError, ImportError):
        return None
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "SchedulerType":
            values = tuple(
                statement.value.value
                for statement in node.body
                if isinstance(statement, ast.Assign)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            )
            return values or None
    return None


def _load_transformers_names() -> None:
    """Add every `transformers` scheduler name once (a name registered before keeps its own entry)."""
    global _TRANSFORMERS_LOADED
    if _TRANSFORMERS_LOADED:
        return
    _TRANSFORMERS_LOADED = True
    from transformers.optimization import TYPE_TO_SCHEDULER_FUNCTION
    from transformers.trainer_utils import SchedulerType

    for member in sorted(SchedulerType, key=lambda m: m.value):
        line = _TRANSFORMERS_DESCRIPTIONS.get(member.value) or _first_sentence(
            inspect.getdoc(TYPE_TO_SCHEDULER_FUNCTION[member]) or ""
        )
        factory = functools.partial(_transformers_factory, member.value)
        _REGISTRY.setdefault(
            member.value, ScheduleEntry(member.value, factory, f"[transformers] {line}", member.value)
        )


for _entry in (
    ScheduleEntry(
        "warmup_cosine",
        get_warmup_cosine_schedule,
        "Linear (or exponential, cosine) warmup, then a half cosine down to a floor.",
        torch_free=True,
    ),
    ScheduleEntry(
        "exponential_warmup_cosine",
        get_exponential_warmup_cosine_schedule,
        "Exponential warmup 1 - exp(-k t / W), then a half cosine down to a floor.",
        torch_free=True,
    ),
    ScheduleEntry(
        "cosine_with_growing_restarts",
        get_cosine_with_growing_restarts_schedule,
        "Warmup, then cosine annealing with warm restarts whose cycles grow (SGDR), decaying peaks optional.",
        torch_free=True,
    ),
    ScheduleEntry(
        "wsd",
        get_wsd_schedule,
        "Warmup, the peak held, then a short decay (cosine, linear or 1-sqrt) to a floor; runs can grow.",
        torch_free=True,
    ),
    ScheduleEntry(
        "phases",
        get_phases_schedule,
        "Warmup, then any list of phases (constant, linear, cosine, 1-sqrt, power, exponential, rex, restarts).",
        torch_free=True,
    ),
):
    _REGISTRY[_entry.name] = _entry
