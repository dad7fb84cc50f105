"""`ScheduleLR`: the `LambdaLR` every schedule of ours returns, whose state records the run's stages.

The stages, their record and the resume check are torch-free, in `hf_lrsched.stages`; this module adds them to torch's
`LambdaLR`.
"""

from __future__ import annotations

import functools
import numbers
import weakref
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ._validation import check_last_epoch
from .stages import (
    _OWN_ATTRIBUTES,
    ResumeMismatchError,
    StagedSchedule,
    _as_float,
    _run_lambdas,
    _saved_stages,
    check_resume_identity,
    group_plans,
    stage_lambdas,
)

__all__ = ["ResumeMismatchError", "ScheduleLR", "check_resume_identity"]


class ScheduleLR(StagedSchedule, LambdaLR):
    """
    The `torch.optim.lr_scheduler.LambdaLR` that every hf_lrsched factory returns: a `LambdaLR` in every respect,
    whose state also records what the schedule is, so that a resume cannot silently bend the curve.

    `state_dict()` adds the run's stages: for each, its first step, the schedule's name, its resolved options (`T`,
    `W` with `"auto"` resolved, every option that shapes the rate) and phases, the base learning rates and the
    level each group started from; all plain numbers and strings (`torch.load(weights_only=True)` reads it).

    `load_state_dict()` follows the contract's resume identity rule: a state is accepted when the saved run and this
    schedule give every param group the same learning rate at every step already taken (`t` below the state's step
    count), and refused otherwise with a [`ResumeMismatchError`] (a `ValueError`) that names what differs. So a run
    may grow while its past is unchanged (a longer run still in warmup, a `wsd` run extended in its stable phase),
    and another schedule, other cycles or another base rate under an absolute `min_lr` are refused. The check
    compares the two runs phase by phase and evaluates the rates only where two phases differ: at most one
    evaluation per step taken.

    A scheduler built with `new_stage=True` changes the plan on purpose: loaded into it, a state whose last stage is
    this schedule continues it; any other state is kept as the run's past, and this schedule starts at the state's
    step `t_k` as a new stage, resolved over the `T - t_k` steps left and starting from the rate each group had
    reached (its warmup rises from there, or, without a warmup, its first phase starts there), unless
    `warmup_start_ratio` or the first phase's `from` is given.

    After a state is loaded, the optimizer's learning rates are those of the run at the current step.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        *,
        name: str,
        options: dict[str, Any],
        phases: list[dict[str, Any]],
        last_epoch: int = -1,
        new_stage: bool = False,
        rebuild: Callable[..., ScheduleLR] | None = None,
        explicit_start: bool = False,
    ):
        last_epoch = check_last_epoch(last_epoch, optimizer.param_groups)
        base_lrs = self._init_stage(
            optimizer.param_groups,
            name=name,
            options=options,
            phases=phases,
            new_stage=new_stage,
            rebuild=rebuild,
            explicit_start=explicit_start,
        )
        super().__init__(optimizer, stage_lambdas(self._own, base_lrs), last_epoch)
        self._follow_added_param_groups()

    def _follow_added_param_groups(self) -> None:
        """Wrap the optimizer's `add_param_group` (as torch wraps its `step`): a group added later takes the
        schedule's rate at once, for the very next optimizer step. An optimizer keeps such wrappers out of its pickled
        state (`Optimizer.__getstate__`)."""
        optimizer = self.optimizer
        add = optimizer.add_param_group
        if getattr(add, "_hf_lrsched_scheduler", None) is not None:
            add = add.__wrapped__  # type: ignore[attr-defined]  # a scheduler built before on this optimizer
        scheduler = weakref.ref(self)

        @functools.wraps(add)
        def add_param_group(param_group: dict[str, Any]) -> None:
            add(param_group)
            follower = scheduler()
            if follower is not None and follower.optimizer is optimizer:
                follower._adopt_param_groups()

        add_param_group._hf_lrsched_scheduler = scheduler  # type: ignore[attr-defined]
        optimizer.add_param_group = add_param_group  # type: ignore[method-assign]

    def step(self, epoch: int | None = None) -> None:
        if len(self.optimizer.param_groups) != len(self.base_lrs):
            self._adopt_param_groups()
        super().step(epoch)

    def _adopt_param_groups(self) -> None:
        """Param groups added to the optimizer (`add_param_group`) after this scheduler was built follow the
        schedule from their own base rate (their `lr` when added) and plan; the run's record gains them."""
        groups = self.optimizer.param_groups
        known = len(self.base_lrs)
        if len(groups) < known:
            raise ValueError(
                f"The optimizer has {len(groups)} param groups, but this scheduler was built for {known}: param "
                "groups cannot be removed from an optimizer under a scheduler. Build a new scheduler."
            )
        plans = group_plans(groups)[known:]
        for group in groups[known:]:
            group.setdefault("initial_lr", group["lr"])
            self.base_lrs.append(group["initial_lr"])
        added = [_as_float(group["initial_lr"]) for group in groups[known:]]
        for stage in {id(stage): stage for stage in [self._own, *self._stages]}.values():
            stage["base_lrs"] = [*stage["base_lrs"], *added]
            stage["groups"] = [*stage.get("groups", [{}] * known), *plans]
            if stage.get("start_levels") is not None:
                stage["start_levels"] = [*stage["start_levels"], *[None] * len(added)]
        self.lr_lambdas = _run_lambdas(self._stages, [_as_float(lr) for lr in self.base_lrs])
        step = max(self.last_epoch, 0)
        for group, base, fn in list(zip(groups, self.base_lrs, self.lr_lambdas))[known:]:
            group["lr"] = base * fn(step)  # the schedule's rate from the next optimizer step on
        self._last_lr = [group["lr"] for group in groups]

    def state_dict(self) -> dict:
        state = super().state_dict()
        for key in _OWN_ATTRIBUTES:  # how this scheduler was built, not where the run is: recorded in `_schedule`
            state.pop(key, None)
        state["_schedule"] = self._record()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        if not isinstance(state_dict, dict):
            raise TypeError(f"A scheduler state must be a dict, got {type(state_dict).__name__}.")
        state = dict(state_dict)
        saved = state.pop("_schedule", None)
        steps = state.get("last_epoch")
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 0:
            raise ResumeMismatchError(
                f"The scheduler state's step count `last_epoch` must be an integer >= 0, got {steps!r}: the state "
                "is damaged or was not saved by a scheduler that had been built."
            )
        steps = int(steps)
        base_lrs = [_as_float(lr) for lr in self.base_lrs]
        stages = self._stages_after(_saved_stages(saved), steps, base_lrs)
        state.pop("base_lrs", None)  # this run's base rates: equal to the saved ones wherever the past agrees
        for key in _OWN_ATTRIBUTES:
            state.pop(key, None)
        state["lr_lambdas"] = [None] * len(self.lr_lambdas)  # partials keep no state: nothing to restore in them
        super().load_state_dict(state)
        self._stages = stages
        self.lr_lambdas = _run_lambdas(stages, base_lrs)
        values = [base_lr * fn(self.last_epoch) for base_lr, fn in zip(self.base_lrs, self.lr_lambdas)]
        for group, lr in zip(self.optimizer.param_groups, values):
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr)
            else:
                group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _param_groups(self) -> list[dict[str, Any]]:
        return self.optimizer.param_groups
