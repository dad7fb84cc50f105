"""`describe(scheduler)`: what an hf_lrsched scheduler is, asked through a small public API.

The CLI, the examples and the snapshot callback learn a schedule's length, warmup, restarts and floors here, never
from the `functools.partial` keywords inside a scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .lr_lambdas import Cycles
from .schedules import ScheduleLR, schedule_part

__all__ = ["ScheduleInfo", "describe"]


@dataclass(frozen=True)
class ScheduleInfo:
    """
    What an hf_lrsched schedule is: its name, length, warmup, cycles and per-group rates.

    Steps follow `transformers`' `Trainer.state.global_step`: optimizer step `k` (counted from 1) uses the rate of
    scheduler step `k - 1`. A cycle *ends* after the optimizer step whose global step is `W + B_i` (the last step
    before restart `i`), and the last cycle after step `T`.

    Attributes:
        name (`str`):
            The schedule's name (`"warmup_cosine"`, `"cosine_with_growing_restarts"`, `"wsd"`).
        num_training_steps (`int`):
            `T`, the total number of optimizer steps.
        num_warmup_steps (`int`):
            `W`, with `"auto"` resolved.
        num_cycles (`int`):
            The number of cycles that start before `T` (1 for a schedule without restarts).
        base_lrs (`tuple[float, ...]`):
            Each param group's peak (base) learning rate.
        min_lrs (`tuple[float, ...]`):
            Each param group's floor, as an absolute learning rate (`m * base_lr`).
        options (`dict`):
            The resolved options the schedule was built with.
        decay_start (`int`, *optional*):
            For `wsd`, the step `S = T - D_d` at which the decay starts (the last step of the stable phase is
            `S - 1`); a run grows, or branches a cooldown, only from a checkpoint at a step `k <= S`.
    """

    name: str
    num_training_steps: int
    num_warmup_steps: int
    num_cycles: int
    base_lrs: tuple[float, ...]
    min_lrs: tuple[float, ...]
    options: dict = field(repr=False)
    decay_start: int | None = None
    _cycles: Cycles | None = field(default=None, repr=False, compare=False)

    def iter_restarts(self) -> Iterator[int]:
        """The scheduler steps `W + B_i` (`i >= 1`, below `T`) at which a restart happens, in order, lazily."""
        if self._cycles is None:
            return
        for index in range(1, self.num_cycles):
            yield self.num_warmup_steps + self._cycles.start(index)

    @property
    def restarts(self) -> list[int]:
        """Every restart step (see `iter_restarts`); for millions of cycles, prefer the iterator."""
        return list(self.iter_restarts())

    @property
    def cycle_ends(self) -> list[int]:
        """The global steps after which a cycle ends: the step before each restart, and `T`."""
        return [*self.iter_restarts(), self.num_training_steps]


def describe(scheduler) -> ScheduleInfo:
    """
    Describe a scheduler built by an hf_lrsched factory (or by [`get_schedule`] with one of our names).

    Args:
        scheduler ([`ScheduleLR`]):
            The scheduler to describe.

    Returns:
        [`ScheduleInfo`]: its name, `T`, `W`, number of cycles, restarts, cycle ends and per-group rates.

    Raises:
        `TypeError`: for a scheduler that no hf_lrsched factory built (a `transformers` name, a torch scheduler).
    """
    if not isinstance(scheduler, ScheduleLR):
        raise TypeError(
            f"describe() takes a scheduler built by hf_lrsched (warmup_cosine, exponential_warmup_cosine, "
            f"cosine_with_growing_restarts, wsd), got {type(scheduler).__name__}."
        )
    options = scheduler.schedule_options
    total, warmup = options["num_training_steps"], options["num_warmup_steps"]
    cycles = None
    num_cycles = 1
    if scheduler.schedule_name == "cosine_with_growing_restarts":
        cycles = schedule_part(scheduler, "cycles")
        if cycles.num_cycles is not None:
            num_cycles = cycles.num_cycles
        elif cycles.decay_steps > 0:
            num_cycles = cycles.locate(cycles.decay_steps - 1)[0] + 1
    base_lrs = tuple(float(lr) for lr in scheduler.base_lrs)
    floors = tuple(base * fn(total) for base, fn in zip(base_lrs, scheduler.lr_lambdas))  # lambda(t >= T) = m
    decay = schedule_part(scheduler, "decay")
    decay_start = decay.start if decay is not None else None
    return ScheduleInfo(
        scheduler.schedule_name, total, warmup, num_cycles, base_lrs, floors, options, decay_start, cycles
    )
