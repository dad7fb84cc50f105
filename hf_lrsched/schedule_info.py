"""`describe(scheduler)`: what an hf_lrsched scheduler is, asked through a small public API.

The CLI, the examples and the snapshot callback learn a schedule's length, warmup, restarts and floors here, never
from the `functools.partial` keywords inside a scheduler.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .cycles import Cycles
from .phases import PhasePlan
from .stages import StagedSchedule, floor_ratios, stage_lambdas

__all__ = ["ScheduleInfo", "describe"]


@dataclass(frozen=True)
class ScheduleInfo:
    """
    What an hf_lrsched schedule is: its name, length, warmup, phases, cycles, stages and per-group rates.

    Steps follow `transformers`' `Trainer.state.global_step`: optimizer step `k` (counted from 1) uses the rate of
    scheduler step `k - 1`. A cycle *ends* after the optimizer step whose global step is `W + B_i` (the last step
    before restart `i`), and the last cycle after step `T`.

    Attributes:
        name (`str`):
            The schedule's name (`"warmup_cosine"`, `"cosine_with_growing_restarts"`, `"wsd"`, `"phases"`); of the
            last stage for a run of several.
        num_training_steps (`int`):
            `T`, the total number of optimizer steps of the run.
        num_warmup_steps (`int`):
            `W`, with `"auto"` resolved (of the last stage, counted from its start).
        num_cycles (`int`):
            The number of cycles that start before `T` (1 for a schedule without restarts).
        base_lrs (`tuple[float, ...]`):
            Each param group's peak (base) learning rate.
        min_lrs (`tuple[float, ...]`):
            Each param group's learning rate for `t >= T` (its floor `m * base_lr`, unless the last phase names
            another level).
        options (`dict`):
            The resolved options the schedule (the last stage) was built with.
        decay_start (`int`, *optional*):
            For `wsd`, the step `S = T - D_d` at which the decay starts (the last step of the stable phase is
            `S - 1`); a run grows, or branches a cooldown, only from a checkpoint at a step `k <= S`.
        phases (`tuple[dict, ...]`):
            The last stage's phases after its warmup, each with its `shape`, `start` (the step of its first step),
            `steps` and levels (`from`, `to`) as recorded.
        stages (`tuple[dict, ...]`):
            The run's stages, each with its `start` step, `name` and `options` (one stage unless the plan was changed
            on purpose with `new_stage=True`).
        groups (`tuple[dict, ...]`):
            One dict per param group, as the last stage plans it: `name` (the group's `name`, as
            [`build_param_groups`] sets it, or `None`), `base_lr`, `floor` (its floor as an absolute rate: `m *
            base_lr`, its own or the schedule's), `start_step` (before it the group is frozen) and `warmup_steps` (its
            own ramp after `start_step`).
    """

    name: str
    num_training_steps: int
    num_warmup_steps: int
    num_cycles: int
    base_lrs: tuple[float, ...]
    min_lrs: tuple[float, ...]
    options: dict = field(repr=False)
    decay_start: int | None = None
    phases: tuple[dict, ...] = field(default=(), repr=False)
    stages: tuple[dict, ...] = field(default=(), repr=False)
    groups: tuple[dict, ...] = field(default=(), repr=False)
    _cycles: tuple[tuple[int, Cycles], ...] = field(default=(), repr=False, compare=False)

    def iter_restarts(self) -> Iterator[int]:
        """The scheduler steps at which a restart happens (`W + B_i`, `i >= 1`, for every restarts phase), in
        order, lazily."""
        for offset, cycles in self._cycles:
            for index in range(1, _count_cycles(cycles)):
                yield offset + cycles.start(index)

    @property
    def restarts(self) -> list[int]:
        """Every restart step (see `iter_restarts`); for millions of cycles, prefer the iterator."""
        return list(self.iter_restarts())

    @property
    def cycle_ends(self) -> list[int]:
        """The global steps after which a cycle ends: the step before each restart, and `T`."""
        return [*self.iter_restarts(), self.num_training_steps]


def _count_cycles(cycles: Cycles) -> int:
    if cycles.num_cycles is not None:
        return cycles.num_cycles
    return cycles.locate(cycles.decay_steps - 1)[0] + 1 if cycles.decay_steps > 0 else 1


def _plan_of(lr_lambda) -> PhasePlan:
    """The `PhasePlan` of one param group's multiplier function (under its ramp, if it has one)."""
    while "plan" not in lr_lambda.keywords:
        lr_lambda = lr_lambda.keywords["fn"]
    return lr_lambda.keywords["plan"]


def describe(scheduler) -> ScheduleInfo:
    """
    Describe a scheduler built by an hf_lrsched factory (or by [`get_schedule`] with one of our names).

    Args:
        scheduler ([`ScheduleLR`]):
            The scheduler to describe.

    Returns:
        [`ScheduleInfo`]: its name, `T`, `W`, phases, number of cycles, restarts, cycle ends, stages and per-group
        rates.

    Raises:
        `TypeError`: for a scheduler that no hf_lrsched factory built (a `transformers` name, a torch scheduler).
    """
    if not isinstance(scheduler, StagedSchedule):
        raise TypeError(
            f"describe() takes a scheduler built by hf_lrsched (warmup_cosine, exponential_warmup_cosine, "
            f"cosine_with_growing_restarts, wsd, phases), got {type(scheduler).__name__}."
        )
    stages = scheduler.stages
    last = stages[-1]
    options = dict(last["options"])
    t0, warmup = last["start"], options["num_warmup_steps"]
    total = t0 + options["num_training_steps"]
    base_lrs = tuple(float(lr) for lr in scheduler.base_lrs)
    fn = stage_lambdas(last, list(base_lrs))
    phases, cycles, step = [], [], t0 + warmup
    plan = _plan_of(fn[0])
    for record, phase in zip(last["phases"], plan.phases):
        phases.append({**record, "start": step})
        if record["shape"] == "restarts" and record["steps"] > 0:
            cycles.append((step, phase.args[4]))
        step += record["steps"]
    num_cycles = sum(_count_cycles(c) for _, c in cycles) if cycles else 1
    floors = tuple(base * f(total) for base, f in zip(base_lrs, scheduler.lr_lambdas))  # lambda(t >= T)
    decay_start = t0 + warmup + last["phases"][0]["steps"] if last["name"] == "wsd" else None
    plans = last.get("groups") or [{}] * len(base_lrs)
    ratios = floor_ratios(options, list(last["base_lrs"]), plans)
    groups = tuple(
        {
            "name": group.get("name") if isinstance(group.get("name"), str) else None,
            "base_lr": base,
            "floor": ratio * stage_base,
            "start_step": plan.get("start_step", 0),
            "warmup_steps": plan.get("warmup_steps", 0),
        }
        for group, base, stage_base, ratio, plan in zip(
            scheduler._param_groups(), base_lrs, last["base_lrs"], ratios, plans
        )
    )
    return ScheduleInfo(
        last["name"],
        total,
        warmup,
        num_cycles,
        base_lrs,
        floors,
        options,
        decay_start,
        tuple(phases),
        tuple({"start": s["start"], "name": s["name"], "options": dict(s["options"])} for s in stages),
        groups,
        tuple(cycles),
    )
