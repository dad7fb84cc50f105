"""A schedule without a model: laid out on a throw-away optimizer, to check its options before training, or to look at
its curve (the command line, the docs' figures, tests).

The schedules of hf_lrsched are laid out without torch (a [`PreviewOptimizer`][hf_lrsched.stages.PreviewOptimizer]
stands in for the optimizer); any other name is built on a throw-away `torch.optim.AdamW`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Literal

from ._validation import check_int
from .phases import multipliers
from .registry import check_schedule_kwargs, get_schedule, get_schedule_entry
from .stages import PreviewOptimizer

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler

__all__ = ["PROBE_TRAINING_STEPS", "check_schedule", "preview_scheduler", "probe_optimizer", "schedule_multipliers"]

#: The number of training steps assumed when options are checked before the real count is known (at parse time):
#: large enough that no valid configuration fails for want of steps. The real count is checked again at training.
PROBE_TRAINING_STEPS = 10**6


def probe_optimizer(lr: float = 1.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """An `AdamW` over one throw-away parameter: enough to build (and so to check) any schedule without a model."""
    import torch

    return torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=lr, betas=betas)


def check_schedule(
    name: str,
    num_warmup_steps: int | Literal["auto"] | None,
    num_training_steps: int | None = None,
    *,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs: Any,
) -> LRScheduler:
    """
    Build the schedule once on a throw-away optimizer, so that an unknown name, option or value fails when the
    arguments are parsed, not after the model is loaded. With `num_training_steps=None` (not known yet: epochs),
    [`PROBE_TRAINING_STEPS`][hf_lrsched.preview.PROBE_TRAINING_STEPS] stand in; the real count is checked again
    when training starts.

    The `"auto"` warmup's note that its length was capped is not logged for the stand-in count: it would name a
    length the run will not have (the real run logs its own).

    Returns:
        The scheduler built (on the throw-away optimizer).
    """
    if num_training_steps is not None:
        return get_schedule(name, probe_optimizer(lr, betas), num_warmup_steps, num_training_steps, **kwargs)
    warmup_logger = logging.getLogger("hf_lrsched.warmup")
    quiet, warmup_logger.disabled = warmup_logger.disabled, True
    try:
        return get_schedule(name, probe_optimizer(lr, betas), num_warmup_steps, PROBE_TRAINING_STEPS, **kwargs)
    finally:
        warmup_logger.disabled = quiet


def preview_scheduler(
    name: str,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    num_training_steps: int | None = None,
    *,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs: Any,
) -> Any:
    """
    The schedule `name` laid out on a throw-away optimizer of one param group at `lr` (with `betas`, for `"auto"`
    warmup): a [`PlannedSchedule`][hf_lrsched.stages.PlannedSchedule], without torch, for every schedule of
    hf_lrsched, else the `LambdaLR` its factory builds on a throw-away `AdamW`. Its `lr_lambdas[0]` is the
    multiplier function. A schedule that is no `LambdaLR` (its rate depends on training) is refused.

    Arguments as in [`get_schedule`][hf_lrsched.get_schedule], in its order: `num_warmup_steps`, then
    `num_training_steps`.
    """
    entry = get_schedule_entry(name)
    if entry.torch_free:
        check_schedule_kwargs(entry.name, kwargs)
        return entry.factory(
            PreviewOptimizer([lr], [betas]),
            num_warmup_steps=num_warmup_steps,
            num_training_steps=num_training_steps,
            **kwargs,
        )
    from torch.optim.lr_scheduler import LambdaLR

    scheduler = get_schedule(name, probe_optimizer(lr, betas), num_warmup_steps, num_training_steps, **kwargs)
    if not isinstance(scheduler, LambdaLR):
        raise ValueError(
            f"Schedule {name!r} builds a {type(scheduler).__name__}, whose learning rate depends on training; "
            "it has no multiplier curve to preview."
        )
    return scheduler


def schedule_multipliers(
    name: str,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    num_training_steps: int | None = None,
    *,
    num_steps: int | None = None,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs: Any,
) -> list[float]:
    """
    The multipliers `lambda(0), ..., lambda(num_steps)` of a schedule, for previews, plots and tests.

    Nothing is trained: the schedule is laid out on a throw-away optimizer (see
    [`preview_scheduler`][hf_lrsched.preview.preview_scheduler]; for the schedules of hf_lrsched without torch, and
    with the given `betas`, so that `num_warmup_steps="auto"` resolves as it would with `transformers`' default
    optimizer), and its multiplier function is evaluated directly: a phase at a time for ours, from the same
    formulas as every step.

    ```python
    from hf_lrsched import schedule_multipliers

    curve = schedule_multipliers("cosine_with_growing_restarts", 10, 100, num_cycles=3)
    assert len(curve) == 101 and curve[0] == 0.0 and curve[10] == 1.0
    ```

    Args:
        name (`str`):
            The schedule's name; see [`available_schedules`][hf_lrsched.available_schedules].
        num_warmup_steps (`int` or `"auto"`, *optional*, defaults to 0):
            The number of warmup steps `W` (as in [`get_schedule`][hf_lrsched.get_schedule], before `T`).
        num_training_steps (`int`):
            The total number of training steps `T`.
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
    num_training_steps = check_int("num_training_steps", num_training_steps, minimum=1)
    num_steps = check_int("num_steps", num_training_steps if num_steps is None else num_steps, minimum=0)
    scheduler = preview_scheduler(name, num_warmup_steps, num_training_steps, lr=lr, betas=betas, **kwargs)
    return multipliers(scheduler.lr_lambdas[0], num_steps)
