"""A schedule without a model: build one on a throw-away parameter to check its options before training, or to
look at its curve (the command line, the docs' figures, tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler

from ._validation import check_int
from .phases import multipliers
from .registry import get_schedule

__all__ = [
    "PROBE_TRAINING_STEPS",
    "check_schedule",
    "preview_lr_lambda",
    "preview_scheduler",
    "probe_optimizer",
    "schedule_multipliers",
]

#: The number of training steps assumed when options are checked before the real count is known (at parse time):
#: large enough that no valid configuration fails for want of steps. The real count is checked again at training.
PROBE_TRAINING_STEPS = 10**6


def probe_optimizer(lr: float = 1.0, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """An `AdamW` over one throw-away parameter: enough to build (and so to check) any schedule without a model."""
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

    Returns:
        The scheduler built (on the throw-away optimizer).
    """
    num_training_steps = PROBE_TRAINING_STEPS if num_training_steps is None else num_training_steps
    return get_schedule(name, probe_optimizer(lr, betas), num_warmup_steps, num_training_steps, **kwargs)


def preview_scheduler(
    name: str,
    num_training_steps: int,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    *,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs: Any,
) -> LambdaLR:
    """A schedule built on a throw-away parameter (see [`schedule_multipliers`][hf_lrsched.schedule_multipliers]);
    refuses one that is no `LambdaLR`, since its rate depends on training."""
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
    **kwargs: Any,
) -> Callable[[int], float]:
    """The multiplier function of a schedule (of its first param group), built on a throw-away parameter."""
    return preview_scheduler(name, num_training_steps, num_warmup_steps, lr=lr, betas=betas, **kwargs).lr_lambdas[0]


def schedule_multipliers(
    name: str,
    num_training_steps: int,
    num_warmup_steps: int | Literal["auto"] | None = 0,
    *,
    num_steps: int | None = None,
    lr: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    **kwargs: Any,
) -> list[float]:
    """
    The multipliers `lambda(0), ..., lambda(num_steps)` of a schedule, for previews, plots and tests.

    Nothing is trained: the schedule is built on a throw-away parameter (an `AdamW` with the given `betas`, so that
    `num_warmup_steps="auto"` resolves as it would with `transformers`' default optimizer) and its `LambdaLR` lambdas
    are evaluated directly, so the curve costs one function call per step.

    ```python
    from hf_lrsched import schedule_multipliers

    curve = schedule_multipliers("cosine_with_growing_restarts", 100, 10, num_cycles=3)
    assert len(curve) == 101 and curve[0] == 0.0 and curve[10] == 1.0
    ```

    Args:
        name (`str`):
            The schedule's name; see [`available_schedules`][hf_lrsched.available_schedules].
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
    return multipliers(lr_lambda, num_steps)
