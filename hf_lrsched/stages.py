"""Stages, the state record and resume identity: what a schedule of ours is, as plain values. Torch-free.

A run is a list of stages (the contract's "Stages"): stage `k` is a schedule started at step `t_k`, resolved over
the `T - t_k` steps left and evaluated at `t - t_k`. Each stage is recorded as plain values (its name, resolved
options and phases, the base rates, each param group's own plan and the level it started from), so that a resume
can be checked against the rates already used, and a curve, `describe` or the CLI can show the whole run.
`StagedSchedule` holds this for `ScheduleLR` (torch's `LambdaLR`, in `hf_lrsched.scheduler`) and for
`PlannedSchedule`, the same schedule without torch, for previews.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from ._validation import check_float, check_int
from .phases import (
    PhasePlan,
    Warmup,
    _get_phases_lr_lambda,
    _get_staged_lr_lambda,
    build_plan,
    make_cycles,
    phase_key,
)

__all__ = [
    "GROUP_PLAN_KEYS",
    "PlannedSchedule",
    "PreviewOptimizer",
    "ResumeMismatchError",
    "StagedSchedule",
    "check_resume_identity",
    "floor_ratios",
    "group_plans",
    "stage_lambdas",
]


class ResumeMismatchError(ValueError):
    """A scheduler state that this schedule cannot continue: its recorded past (the rates already used) differs from
    what this schedule gives, or it records no schedule of ours. The message says what differs and what to do."""


#: The keys of a param group that plan its own rate (set by `build_param_groups`): a floor, and a start with a ramp.
GROUP_PLAN_KEYS = ("min_lr", "min_lr_ratio", "start_step", "warmup_steps")


def group_plans(param_groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each param group's own plan (the `GROUP_PLAN_KEYS` it sets, as plain numbers), checked."""
    plans = []
    for index, group in enumerate(param_groups):
        plan = {key: group[key] for key in GROUP_PLAN_KEYS if group.get(key) is not None}
        if "min_lr" in plan and "min_lr_ratio" in plan:
            raise ValueError(f"Param group {index} sets both `min_lr` and `min_lr_ratio`; give one floor.")
        for key in ("start_step", "warmup_steps"):
            if key in plan:
                plan[key] = check_int(f"param group {index}: {key}", plan[key], minimum=0)
        for key in ("min_lr", "min_lr_ratio"):
            if key in plan:
                high = 1.0 if key == "min_lr_ratio" else None
                plan[key] = check_float(f"param group {index}: {key}", plan[key], low=0.0, high=high, high_open=True)
        plans.append({key: value for key, value in plan.items() if value != 0 or key in ("min_lr", "min_lr_ratio")})
    return plans


def floor_ratios(
    options: dict[str, Any], base_lrs: list[float], groups: list[dict[str, Any]] | None = None
) -> list[float]:
    """One floor `m` per param group: the group's own (`min_lr_ratio`, or `min_lr / base_lr`), else the schedule's
    (`min_lr_ratio` for all, or `min_lr / base_lr` for each): the contract's `m`."""
    ratios = []
    for index, base_lr in enumerate(base_lrs):
        own = (groups or [{}] * len(base_lrs))[index]
        source = own if ("min_lr" in own or "min_lr_ratio" in own) else options
        min_lr_ratio, min_lr = source.get("min_lr_ratio"), source.get("min_lr")
        if min_lr is None:
            ratios.append(0.0 if min_lr_ratio is None else float(min_lr_ratio))
            continue
        if not min_lr < base_lr:
            whose = f" (param group {index}'s own floor)" if source is own else ""
            raise ValueError(
                f"`min_lr`={min_lr} must be below the base learning rate of every param group{whose}, but param "
                f"group {index} has lr={base_lr}; lower `min_lr` or use `min_lr_ratio`."
            )
        ratios.append(min_lr / base_lr)
    return ratios


def _get_ramped_lr_lambda(current_step: int, *, fn: Callable[[int], float], start: int, steps: int) -> float:
    # A param group frozen before its start step, then ramped in linearly over its own warmup: lambda(t) * r_g(t).
    if current_step < start:
        return 0.0
    if current_step < start + steps:
        return fn(current_step) * ((current_step - start) / steps)
    return fn(current_step)


def _unknown_lr_lambda(current_step: int) -> float:
    """The past of a run whose scheduler state recorded no schedule of ours: not known, so not a number."""
    return math.nan


def stage_lambdas(stage: dict[str, Any], base_lrs: list[float]) -> list[Callable[[int], float]]:
    """One multiplier function per param group for a stage record (evaluated at the stage's local step); param
    groups with the same floor and start level share one `functools.partial`."""
    if stage["name"] is None:
        return [_unknown_lr_lambda] * len(base_lrs)
    options, resolved = stage["options"], stage["phases"]
    warmup_steps, total = options["num_warmup_steps"], options["num_training_steps"]
    groups = stage.get("groups") or [{}] * len(base_lrs)
    floors = floor_ratios(options, base_lrs, groups)
    starts = stage.get("start_levels") or [None] * len(base_lrs)
    where = "Phase {} (restarts): " if stage["name"] == "phases" else ""
    cycles = [
        make_cycles(phase, where=where.format(index)) if phase["shape"] == "restarts" else None
        for index, phase in enumerate(resolved)
    ]
    shared: dict[tuple, Callable[[int], float]] = {}
    lambdas = []
    for floor, start, group in zip(floors, starts, groups):
        ramp = (group.get("start_step", 0) - stage["start"], group.get("warmup_steps", 0))
        if (floor, start, ramp) in shared:
            lambdas.append(shared[floor, start, ramp])
            continue
        if (floor, start) not in shared:
            warmup = Warmup(
                options["warmup_type"],
                options["warmup_start_ratio"] if start is None or warmup_steps == 0 else start,
                options["warmup_exp_rate"],
            )
            level = 1.0 if start is None or warmup_steps > 0 else start
            plan = build_plan(
                resolved,
                num_warmup_steps=warmup_steps,
                floor=floor,
                start_level=level,
                cycles=cycles,
                preset=stage["name"] != "phases",
            )
            shared[floor, start] = functools.partial(
                _get_phases_lr_lambda,
                num_warmup_steps=warmup_steps,
                num_training_steps=total,
                warmup=warmup,
                plan=plan,
            )
        fn = shared[floor, start]
        if ramp[0] > 0 or ramp[0] + ramp[1] > 0:
            fn = functools.partial(_get_ramped_lr_lambda, fn=fn, start=ramp[0], steps=ramp[1])
        shared[floor, start, ramp] = fn
        lambdas.append(fn)
    return lambdas


def _run_lambdas(stages: list[dict[str, Any]], base_lrs: list[float]) -> list[Callable[[int], float]]:
    """The multiplier functions of a whole run, of the current `base_lrs`: a stage's own functions when there is one
    stage, else one `_get_staged_lr_lambda` per group over every stage (a past stage with other base rates scaled to
    give its rates: `base_now * lambda * base_then / base_now`, equal to the rate then up to one rounding)."""
    per_stage = []
    for stage in stages:
        fns = stage_lambdas(stage, stage["base_lrs"])
        if stage["base_lrs"] != base_lrs:
            fns = [
                functools.partial(_scaled_lr_lambda, fn=fn, scale=then / now if now else 0.0)
                for fn, then, now in zip(fns, stage["base_lrs"], base_lrs)
            ]
        per_stage.append(fns)
    if len(stages) == 1:
        return per_stage[0]
    starts = tuple(stage["start"] for stage in stages)
    return [
        functools.partial(_get_staged_lr_lambda, starts=starts, lambdas=tuple(fns[group] for fns in per_stage))
        for group in range(len(base_lrs))
    ]


def _scaled_lr_lambda(current_step: int, *, fn: Callable[[int], float], scale: float) -> float:
    return fn(current_step) * scale


def _rate_of_run(stages: list[dict[str, Any]], group: int, step: int) -> float:
    """A param group's learning rate at an absolute step of a run: that of the last stage started at or before it."""
    stage = next(stage for stage in reversed(stages) if stage["start"] <= step)
    fn = stage_lambdas(stage, stage["base_lrs"])[group]
    return stage["base_lrs"][group] * fn(step - stage["start"])


class PreviewOptimizer:
    """Enough of an optimizer to lay out a schedule without torch: param groups with a learning rate (and betas, for
    `"auto"` warmup; and each group's own plan, `GROUP_PLAN_KEYS`, where given). Given to a factory of ours, it makes
    the factory return a `PlannedSchedule`."""

    def __init__(
        self,
        lrs: Sequence[float] = (1.0,),
        betas: Sequence[Any] | None = None,
        plans: Sequence[dict[str, Any]] | None = None,
    ):
        betas = list(betas) if betas is not None else [None] * len(lrs)
        plans = list(plans) if plans is not None else [{}] * len(lrs)
        self.param_groups = [
            {"lr": float(lr), **({"betas": tuple(b)} if b is not None else {}), **plan}
            for lr, b, plan in zip(lrs, betas, plans)
        ]


class StagedSchedule:
    """What every schedule of ours is, with or without torch: its own stage (`_own`), the run's stages (`_stages`)
    and how to lay itself over the steps a new stage has left (`_rebuild`)."""

    _own: dict[str, Any]
    _stages: list[dict[str, Any]]
    _new_stage: bool
    _rebuild: Callable[..., StagedSchedule] | None
    _explicit_start: bool
    base_lrs: list
    lr_lambdas: list[Callable[[int], float]]

    def _init_stage(
        self,
        param_groups: list[dict[str, Any]],
        *,
        name: str,
        options: dict[str, Any],
        phases: list[dict[str, Any]],
        new_stage: bool,
        rebuild: Callable[..., StagedSchedule] | None,
        explicit_start: bool,
    ) -> list[float]:
        if not isinstance(new_stage, bool):
            raise TypeError(f"`new_stage` must be True or False, got {new_stage!r} ({type(new_stage).__name__}).")
        base_lrs = [_as_float(group.get("initial_lr", group["lr"])) for group in param_groups]
        # This schedule as a stage of its own run; `_stages` is the whole run (more than this one once a state with
        # earlier stages is loaded).
        self._own = {
            "start": 0,
            "name": name,
            "options": dict(options),
            "phases": phases,
            "base_lrs": base_lrs,
            "groups": group_plans(param_groups),
            "start_levels": None,
        }
        self._stages = [self._own]
        self._new_stage = new_stage
        self._rebuild = rebuild  # the factory with this schedule's options, to lay it over the steps left
        self._explicit_start = explicit_start  # `warmup_start_ratio` given: a new stage's warmup starts there
        return base_lrs

    def _param_groups(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    @property
    def schedule_name(self) -> str:
        """The name of the schedule of the run's last stage (`"warmup_cosine"`, `"wsd"`, `"phases"`, ...)."""
        return self._stages[-1]["name"]

    @property
    def schedule_options(self) -> dict:
        """The resolved options the last stage was built with (a copy)."""
        return dict(self._stages[-1]["options"])

    @property
    def stages(self) -> list[dict[str, Any]]:
        """The run's stages, first to last (copies of the records `state_dict()` saves)."""
        return [dict(stage) for stage in self._stages]

    def _record(self) -> dict[str, Any]:
        last = self._stages[-1]
        return {
            "name": last["name"],
            "options": last["options"],
            "base_lrs": list(last["base_lrs"]),
            "stages": [dict(stage) for stage in self._stages],
        }

    def _stage_at(self, start: int, base_lrs: list[float]) -> dict[str, Any]:
        """This schedule laid over the steps from `start` to `T` (its own record when `start` is 0)."""
        if start == 0:
            return dict(self._own, base_lrs=base_lrs)
        total = self._own["options"]["num_training_steps"]
        if self._rebuild is None or start >= total:
            raise ResumeMismatchError(
                f"Cannot start this schedule as a new stage at step {start}: it has num_training_steps={total}, so no "
                "step is left. Give the run a larger `num_training_steps` (the run's total, past steps included)."
            )
        groups = self._param_groups()
        probe = PreviewOptimizer(base_lrs, [group.get("betas") for group in groups], group_plans(groups))
        stage = dict(self._rebuild(probe, num_training_steps=total - start)._own)
        stage["start"] = start
        return stage

    def _stages_after(self, saved: list[dict[str, Any]] | None, steps: int, base_lrs: list[float]) -> list[dict]:
        """The run's stages once a state with `saved` stages at step `steps` is loaded, or a `ResumeMismatchError`."""
        if saved is None:
            if not self._new_stage:
                raise ResumeMismatchError(
                    "This scheduler state records no hf_lrsched schedule (saved by another scheduler, or by an older "
                    "version), so the rates of its past cannot be checked. To continue such a run with this schedule "
                    "on purpose, start it as a new stage (`new_stage=True`; `lr_resume='new_stage'` with the Trainer "
                    "or the examples): it will start from the rates the optimizer holds."
                )
            if steps == 0:
                return [self._own]
            unknown: dict[str, Any] = {
                "start": 0,
                "name": None,
                "options": {},
                "phases": [],
                "base_lrs": base_lrs,
                "start_levels": None,
            }
            reached = [_as_float(group["lr"]) for group in self._param_groups()]
            return [unknown, self._new_stage_at(steps, reached, base_lrs)]
        saved_bases = saved[-1].get("base_lrs", [])
        if len(saved_bases) != len(base_lrs):
            raise ResumeMismatchError(
                f"Cannot resume this schedule from the saved state: the saved run had {len(saved_bases)} param groups, "
                f"this optimizer has {len(base_lrs)}. Resume with the same param groups."
            )
        last = saved[-1]
        try:
            mine_then = self._stage_at(last["start"], base_lrs) if last["start"] <= steps else None
        except ResumeMismatchError:  # this schedule has no step left after the last stage's start
            mine_then = None
        if mine_then is not None and _same_stage(mine_then, last):
            return saved  # this schedule is the run's last stage: it continues
        if self._new_stage:
            if steps == 0:  # saved before any step: nothing to keep, this schedule is the run
                return [self._own]
            past = [stage for stage in saved if stage["start"] < steps]
            reached = [_rate_of_run(past, group, steps) for group in range(len(base_lrs))]
            return [*past, self._new_stage_at(steps, reached, base_lrs)]
        mine = [self._stage_at(0, base_lrs)]
        _check_same_past(saved, mine, steps)
        return mine

    def _new_stage_at(self, start: int, reached: list[float], base_lrs: list[float]) -> dict[str, Any]:
        stage = self._stage_at(start, base_lrs)
        warmup = stage["options"]["num_warmup_steps"] > 0
        if not (warmup and self._explicit_start):
            stage["start_levels"] = [rate / base if base > 0 else 0.0 for rate, base in zip(reached, base_lrs)]
        return stage


class PlannedSchedule(StagedSchedule):
    """
    A schedule of ours laid out without torch (a factory called with a [`PreviewOptimizer`]): its stages and each
    param group's multiplier function `lr_lambdas`, the same functions a `ScheduleLR` holds. What the command line
    draws.
    """

    def __init__(self, optimizer: PreviewOptimizer, *, name: str, options, phases, last_epoch=-1, **stage: Any):
        check_int("last_epoch", last_epoch, minimum=-1)
        self.optimizer = optimizer
        self.base_lrs = self._init_stage(optimizer.param_groups, name=name, options=options, phases=phases, **stage)
        self.lr_lambdas = stage_lambdas(self._own, self.base_lrs)

    def _param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PlannedSchedule:
        """The run a scheduler state records (its `"_schedule"`: every stage), laid out again without torch: what
        `hf-lrsched show --state` draws."""
        stages = _saved_stages(record)
        if stages is None:
            raise ResumeMismatchError("The state records no hf_lrsched schedule.")
        planned = cls.__new__(cls)
        planned.base_lrs = list(stages[-1]["base_lrs"])
        planned.optimizer = PreviewOptimizer(planned.base_lrs)
        planned._own, planned._stages = stages[-1], stages
        planned._new_stage, planned._rebuild, planned._explicit_start = False, None, False
        planned.lr_lambdas = _run_lambdas(stages, planned.base_lrs)
        return planned


_OWN_ATTRIBUTES = ("_own", "_stages", "_new_stage", "_rebuild", "_explicit_start")


def _as_float(value) -> float:
    """A plain float from a number or a one-element tensor (a learning rate may be a tensor), without torch."""
    return float(value.item() if hasattr(value, "item") else value)


def _same_stage(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a.get(key) == b.get(key) for key in ("name", "options", "phases", "base_lrs", "groups"))


def _saved_stages(saved: object) -> list[dict[str, Any]] | None:
    """The stages of a saved record (a record from before stages is one stage), checked to be well formed."""
    if saved is None:
        return None
    if not isinstance(saved, dict) or not isinstance(saved.get("base_lrs"), list):
        raise ResumeMismatchError(
            f"The scheduler state's hf_lrsched record is damaged (not a dict with 'base_lrs'): {saved!r:.200}."
        )
    stages = saved.get("stages")
    if stages is None:  # saved before stages: one stage, its phases rebuilt by the factory of its name
        stages = [_legacy_stage(saved)]
    if not isinstance(stages, list) or not stages or not all(isinstance(s, dict) for s in stages):
        raise ResumeMismatchError(f"The scheduler state's record of stages is damaged: {stages!r:.200}.")
    out = []
    for stage in stages:
        stage = dict(stage)
        stage.setdefault("base_lrs", saved["base_lrs"])
        for key in ("start", "name", "options", "phases"):
            if key not in stage:
                raise ResumeMismatchError(f"The scheduler state's record of a stage lacks {key!r}: {stage!r:.200}.")
        out.append(stage)
    return out


def _legacy_stage(saved: dict[str, Any]) -> dict[str, Any]:
    """A record saved before stages and phases (name, options, base_lrs): rebuilt by its registered factory."""
    from .registry import get_schedule_entry

    name, options = saved.get("name"), saved.get("options")
    try:
        rebuilt = get_schedule_entry(str(name)).factory(PreviewOptimizer(saved["base_lrs"]), **dict(options or {}))
    except (TypeError, ValueError) as error:
        raise ResumeMismatchError(f"The saved schedule {name!r} cannot be rebuilt ({error}).") from None
    if not isinstance(rebuilt, StagedSchedule):
        raise ResumeMismatchError(f"The saved schedule {name!r} is not one of hf_lrsched's.")
    return {**rebuilt._stages[0], "base_lrs": list(saved["base_lrs"])}


# Resume identity: two runs agree on the past when every param group has the same rate at every step taken.


def _pieces(stages: list[dict[str, Any]], group: int) -> list[tuple[int, float, tuple, Callable[[int], float]]]:
    """`(lo, hi, key, rate)`: the steps `lo <= t < hi` of one param group's run, cut wherever its formula changes;
    `rate(t)` is the learning rate at the absolute step `t`, and two pieces with equal keys give equal rates."""
    out: list[tuple[int, float, tuple, Callable[[int], float]]] = []
    for index, stage in enumerate(stages):
        t0, base = stage["start"], stage["base_lrs"][group]
        stop = stages[index + 1]["start"] if index + 1 < len(stages) else math.inf
        fn = stage_lambdas(stage, stage["base_lrs"])[group]
        rate = functools.partial(_rate_at, fn=fn, start=t0, base=base)
        if stage["name"] is None:
            out.append((t0, stop, ("unknown", t0), rate))
            continue
        ramp: tuple = ()
        if fn.func is _get_ramped_lr_lambda:  # type: ignore[attr-defined]
            ramp, fn = (t0 + fn.keywords["start"], fn.keywords["steps"]), fn.keywords["fn"]  # type: ignore[attr-defined]
        W, T = fn.keywords["num_warmup_steps"], fn.keywords["num_training_steps"]  # type: ignore[attr-defined]
        plan: PhasePlan = fn.keywords["plan"]  # type: ignore[attr-defined]
        cuts: list[tuple[int, float, tuple]] = [(t0, t0 + W, ("warmup", t0, W, fn.keywords["warmup"]))]  # type: ignore[attr-defined]
        cuts += [(t0 + phase.start, t0 + phase.end, phase_key(phase, t0)) for phase in plan.phases]
        cuts.append((t0 + T, math.inf, ("constant", plan.final)))
        for lo, hi, key in cuts:
            lo, hi = max(lo, t0), min(hi, stop)
            if lo < hi:
                out.append((lo, hi, (base, ramp, *key), rate))
    return out


def _rate_at(step: int, *, fn: Callable[[int], float], start: int, base: float) -> float:
    return base * fn(step - start)


def _check_same_past(saved: list[dict], mine: list[dict], steps: int) -> None:
    """Raise `ResumeMismatchError` at the first step `t < steps` where a group's rate differs between two runs.
    Pieces with the same formula are skipped: the check evaluates rates only where the two runs' phases differ."""
    for group in range(len(mine[-1]["base_lrs"])):
        old, new = _pieces(saved, group), _pieces(mine, group)
        i = j = t = 0
        while t < steps:
            while old[i][1] <= t:
                i += 1
            while new[j][1] <= t:
                j += 1
            hi = int(min(old[i][1], new[j][1], steps))
            if old[i][2] != new[j][2] or old[i][2][0] == "unknown":
                for step in range(t, hi):
                    then, now = old[i][3](step), new[j][3](step)
                    if then != now:
                        _refuse(saved, mine, steps, group, step, then, now)
            t = hi


def _refuse(saved: list[dict], mine: list[dict], steps: int, group: int, step: int, then: float, now: float) -> None:
    last = saved[-1]
    differences = _describe_differences(last, mine[-1])
    hint = ""
    if last["name"] == "wsd" and last["phases"]:
        start = last["start"] + last["options"]["num_warmup_steps"] + last["phases"][0]["steps"]
        if start < steps:
            hint = (
                f" The saved wsd run had begun its decay at step {start}: a wsd run grows, or branches a cooldown, "
                "only from a checkpoint taken before its decay starts."
            )
    past = "had no recorded rate" if math.isnan(then) else f"had learning rate {then!r}"
    raise ResumeMismatchError(
        f"Cannot resume this schedule from the saved state: param group {group} {past} at step {step}, and this "
        f"schedule gives it {now!r}. What differs (saved -> now): {differences}. A resume must give the {steps} steps "
        f"already taken the learning rates they had.{hint} Resume with the saved options, or start a new run; to "
        "lengthen a run, use a schedule whose past does not depend on its length (`wsd`, grown while still in its "
        "stable phase); to change the run's plan from here on on purpose, start this schedule as a new stage "
        "(`new_stage=True`; `lr_resume='new_stage'` with the Trainer or the examples)."
    )


def _describe_differences(saved: dict, mine: dict) -> str:
    parts = []
    if saved.get("name") != mine["name"]:
        parts.append(f"schedule {saved.get('name')!r} -> {mine['name']!r}")
    old, new = saved.get("options") or {}, mine["options"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            parts.append(f"{key} {old.get(key)!r} -> {new.get(key)!r}")
    for index, (a, b) in enumerate(zip(saved["base_lrs"], mine["base_lrs"])):
        if a != b:
            parts.append(f"base learning rate of param group {index} {a!r} -> {b!r}")
    if saved.get("groups") != mine.get("groups"):
        parts.append(f"param groups' own plans {saved.get('groups')!r} -> {mine.get('groups')!r}")
    text = "; ".join(parts) or "nothing"
    if saved["start"] > 0:
        text += f" (the saved run's last stage started at step {saved['start']}; its options count from there)"
    return text


def check_resume_identity(saved: dict, scheduler: StagedSchedule, steps_taken: int) -> None:
    """Raise [`ResumeMismatchError`] unless the saved run (a state's `"_schedule"` record) and `scheduler`'s run (all
    its stages) give every param group the same learning rate at every step `t < steps_taken`. Phase by phase: the
    rates are evaluated only where the two runs' phases differ."""
    stages = _saved_stages(saved)
    if stages is None:
        raise ResumeMismatchError("The state records no hf_lrsched schedule.")
    if len(stages[-1]["base_lrs"]) != len(scheduler._stages[-1]["base_lrs"]):
        raise ResumeMismatchError("The saved run and this schedule have different numbers of param groups.")
    _check_same_past(stages, scheduler._stages, steps_taken)
