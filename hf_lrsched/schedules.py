"""The schedules of hf_lrsched as `torch.optim.lr_scheduler.LambdaLR` factories: each a warmup and a list of phases.

The signatures follow `transformers.optimization` (`optimizer, num_warmup_steps, num_training_steps, ...,
last_epoch=-1`). `warmup_cosine`, `exponential_warmup_cosine`, `wsd` and `cosine_with_growing_restarts` are presets,
fixed phase lists of the one engine in `hf_lrsched.phases`; `get_phases_schedule` takes the list from the user. A
new schedule is its factory (a phase list) and its registry record (`hf_lrsched.registry`), nothing else.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ._exact import decimal_fraction
from ._validation import check_choice, check_float, check_int
from .phases import WARMUP_TYPES, resolve_phases
from .stages import PlannedSchedule, PreviewOptimizer, ResumeMismatchError, StagedSchedule
from .warmup import resolve_auto_warmup_steps, resolve_num_warmup_steps

if TYPE_CHECKING:
    from torch.optim import Optimizer

    from .scheduler import ScheduleLR

__all__ = [
    "ResumeMismatchError",
    "get_cosine_with_growing_restarts_schedule",
    "get_exponential_warmup_cosine_schedule",
    "get_phases_schedule",
    "get_warmup_cosine_schedule",
    "get_wsd_schedule",
    "resolve_auto_warmup_steps",
    "resolve_num_warmup_steps",
]

WarmupType = Literal["linear", "exponential", "cosine"]
DecayType = Literal["cosine", "linear", "1-sqrt"]
DECAY_TYPES = ("cosine", "linear", "1-sqrt")

#: The most training steps a schedule takes: a 64-bit step counter (far beyond any run; larger numbers overflow the
#: floats the formulas are evaluated in).
MAX_STEPS = 2**63 - 1


@dataclass(frozen=True, kw_only=True)
class CommonOptions:
    """The options every factory of hf_lrsched takes, as its caller gave them: the one list of them. A factory passes
    each by name (its defaults stay in its own signature); `resolve` checks them and `as_kwargs` gives them back, to
    rebuild the schedule over the steps a new stage has left."""

    num_warmup_steps: Any
    num_training_steps: Any
    warmup_type: Any
    warmup_start_ratio: Any
    warmup_exp_rate: Any
    min_lr_ratio: Any
    min_lr: Any
    max_auto_warmup_ratio: Any

    def as_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of a factory, as given."""
        return {option.name: getattr(self, option.name) for option in dataclasses.fields(self)}

    def resolve(self, optimizer: Optimizer) -> dict[str, Any]:
        """Validate the options, resolve `"auto"` warmup from `optimizer`, and return them as plain values: what a
        scheduler's state records (see `ScheduleLR`)."""
        num_training_steps = _check_total(self.num_training_steps)
        warmup_type = check_choice("warmup_type", self.warmup_type, WARMUP_TYPES)
        warmup_start_ratio = check_float(
            "warmup_start_ratio", self.warmup_start_ratio, low=0.0, high=1.0, high_open=True
        )
        warmup_exp_rate = check_float("warmup_exp_rate", self.warmup_exp_rate, low=0.0, low_open=True)
        num_warmup_steps = self.num_warmup_steps
        if num_warmup_steps == "auto":
            num_warmup_steps = resolve_auto_warmup_steps(
                optimizer,
                num_training_steps,
                warmup_type=warmup_type,
                warmup_exp_rate=warmup_exp_rate,
                max_auto_warmup_ratio=self.max_auto_warmup_ratio,
            )
        else:
            check_float("max_auto_warmup_ratio", self.max_auto_warmup_ratio, low=0.0, high=1.0)
            num_warmup_steps = check_int(
                "num_warmup_steps",
                num_warmup_steps,
                minimum=0,
                maximum=num_training_steps,
                hint=" (at most num_training_steps) or 'auto'",
            )
        min_lr_ratio, min_lr = self.min_lr_ratio, self.min_lr
        if min_lr_ratio is not None and min_lr is not None:
            raise ValueError(
                f"Pass either `min_lr_ratio` (a fraction of each base learning rate) or `min_lr` (an absolute learning "
                f"rate), not both; got min_lr_ratio={min_lr_ratio} and min_lr={min_lr}."
            )
        if min_lr_ratio is not None:
            min_lr_ratio = check_float("min_lr_ratio", min_lr_ratio, low=0.0, high=1.0, high_open=True)
        if min_lr is not None:
            min_lr = check_float("min_lr", min_lr, low=0.0)
        return dict(
            num_warmup_steps=num_warmup_steps,
            num_training_steps=num_training_steps,
            warmup_type=warmup_type,
            warmup_start_ratio=warmup_start_ratio,
            warmup_exp_rate=warmup_exp_rate,
            min_lr_ratio=min_lr_ratio,
            min_lr=min_lr,
        )


def _check_total(num_training_steps) -> int:
    total = check_int("num_training_steps", num_training_steps, minimum=1)
    if total > MAX_STEPS:
        raise ValueError(
            f"`num_training_steps` must be at most 2**63 - 1 = {MAX_STEPS}, got a number of {len(str(total))} digits."
        )
    return total


def _schedule(
    factory: Callable[..., Any],
    optimizer: Any,
    common: CommonOptions,
    name: str,
    phases: list[dict[str, Any]],
    *,
    own: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    last_epoch: Any,
    new_stage: Any,
    preset: bool = True,
) -> Any:
    """The `ScheduleLR` of a phase list (a `PlannedSchedule` for a `PreviewOptimizer`): `common` the options every
    factory takes, `own` the factory's other options as given (both rebuild it over a new stage's steps), `options`
    the schedule's own resolved options, recorded beside the common ones."""
    resolved_common = common.resolve(optimizer)
    resolved = resolve_phases(
        phases,
        num_training_steps=resolved_common["num_training_steps"],
        num_warmup_steps=resolved_common["num_warmup_steps"],
        preset=preset,
    )
    if isinstance(optimizer, PreviewOptimizer):  # laid out without torch, for a preview
        build: type[StagedSchedule] = PlannedSchedule
    else:
        from .scheduler import ScheduleLR  # torch, only for a real optimizer

        build = ScheduleLR
    return build(  # type: ignore[call-arg]
        optimizer,
        name=name,
        options={**resolved_common, **(options or {})},
        phases=resolved,
        last_epoch=last_epoch,
        new_stage=new_stage,
        rebuild=_Rebuild(factory, {**common.as_kwargs(), **(own or {})}),
        explicit_start=common.warmup_start_ratio != 0.0,
    )


class _Rebuild:
    """A factory with a schedule's options, to lay the same schedule over the steps a new stage has left. Picklable,
    and compared by what it builds."""

    __slots__ = ("arguments", "factory")

    def __init__(self, factory: Callable[..., Any], arguments: dict[str, Any]):
        self.factory, self.arguments = factory, arguments

    def __call__(self, optimizer: Any, **overrides: Any) -> Any:
        return self.factory(optimizer, **{**self.arguments, **overrides})

    def __reduce__(self):
        return (_Rebuild, (self.factory, self.arguments))


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
    new_stage: bool = False,
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
        new_stage (`bool`, *optional*, defaults to `False`):
            Start this schedule as a new stage of a run when a state is loaded into it (the contract's "Stages"):
            the loaded state's stages are kept as the run's past, and this schedule takes over at its step `t_k`,
            resolved over the `T - t_k` steps left and starting from the rate each group had reached (its warmup
            rises from there unless a non-zero `warmup_start_ratio` is given; without a warmup, its first phase
            starts there). A state whose last stage is this schedule continues it. See [`ScheduleLR`].

    Returns:
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    common = CommonOptions(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    return _schedule(
        get_warmup_cosine_schedule,
        optimizer,
        common,
        "warmup_cosine",
        [{"shape": "cosine", "to": "min"}],
        last_epoch=last_epoch,
        new_stage=new_stage,
    )


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
    new_stage: bool = False,
) -> ScheduleLR:
    r"""
    [`get_warmup_cosine_schedule`] with exponential warmup by default:

    $$
    \lambda(t) = s + (1 - s)\,\bigl(1 - e^{-k t / W}\bigr) \qquad t < W
    $$

    With \(k = 5\) (the default) and \(s = 0\) this is the classic \(\eta_\text{base}\,(1 - e^{-5 t / W})\); the
    multiplier reaches \(1 - e^{-5} = 0.9933\) at the last warmup step and 1 at step \(W\). The arguments are those of
    [`get_warmup_cosine_schedule`].

    Returns:
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    common = CommonOptions(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    return _schedule(
        get_exponential_warmup_cosine_schedule,
        optimizer,
        common,
        "warmup_cosine",
        [{"shape": "cosine", "to": "min"}],
        last_epoch=last_epoch,
        new_stage=new_stage,
    )


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
    new_stage: bool = False,
) -> ScheduleLR:
    r"""
    Create a schedule with a warmup as in [`get_warmup_cosine_schedule`], then cosine annealing with warm restarts
    whose cycles grow by `cycle_mult` (SGDR, Loshchilov & Hutter 2017), optionally with decaying peaks and a short
    linear warmup after each restart.

    The \(D = T - W\) decay steps are split into cycles of length \(L_i = L_0\, r^i\) starting at
    \(B_i = \operatorname{round}\bigl(L_0 (r^i - 1) / (r - 1)\bigr)\). Inside cycle \(i\), with local step
    \(j = t - W - B_i\), cycle length \(L = B_{i+1} - B_i\), peak \(P = m + (1 - m)\,\gamma^i\) and \(R_i = R\) for
    \(i \ge 1\) (0 for \(i = 0\)):

    $$
    \lambda(t) = \begin{cases}
    m + (P - m)\, j / R_i & j < R_i \\
    m + (P - m)\, \tfrac{1}{2}(1 + \cos \pi q) & \text{otherwise}
    \end{cases}
    $$

    with \(q = (j - R_i) / (L - R_i)\), and \(\lambda(t) = m\) for \(t \ge T\). The cycle index is found in closed
    form and is exact at every \(B_i\).

    Two modes:

    - fit (the default, `num_cycles=n`, 3 when neither option is given): \(L_0 = D (r - 1) / (r^n - 1)\)
      (\(D / n\) when \(r = 1\)) and \(B_n = D\), so the last cycle ends exactly at \(T\) on the floor;
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
    common = CommonOptions(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    own = dict(
        num_cycles=num_cycles,
        first_cycle_steps=first_cycle_steps,
        cycle_mult=cycle_mult,
        cycle_decay=cycle_decay,
        restart_warmup_steps=restart_warmup_steps,
    )
    scheduler = _schedule(
        get_cosine_with_growing_restarts_schedule,
        optimizer,
        common,
        "cosine_with_growing_restarts",
        [dict(shape="restarts", to="min", **own)],
        own=own,
        last_epoch=last_epoch,
        new_stage=new_stage,
    )
    resolved = scheduler._own["phases"][0]
    scheduler._own["options"].update({key: resolved[key] for key in own})
    return scheduler


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
    new_stage: bool = False,
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
    common = CommonOptions(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    own = dict(decay_ratio=decay_ratio, num_decay_steps=num_decay_steps, decay_type=decay_type)
    decay_type = check_choice("decay_type", decay_type, DECAY_TYPES)
    total = _check_total(num_training_steps)
    if decay_ratio is not None and num_decay_steps is not None:
        raise ValueError(
            f"Pass either `decay_ratio` (a share of the training steps) or `num_decay_steps` (a number of steps), "
            f"not both; got decay_ratio={decay_ratio} and num_decay_steps={num_decay_steps}."
        )
    if num_decay_steps is not None:
        num_decay_steps = decay_steps = check_int("num_decay_steps", num_decay_steps, minimum=0)
        source = f"num_decay_steps={decay_steps}"
    else:
        ratio = check_float("decay_ratio", 0.2 if decay_ratio is None else decay_ratio, low=0.0, high=1.0)
        decay_ratio = None if decay_ratio is None else ratio
        decay_steps = math.ceil(decimal_fraction(ratio) * total)
        source = f"decay_ratio={ratio} of num_training_steps={total}, {decay_steps} steps"
    warmup = common.resolve(optimizer)["num_warmup_steps"]
    if decay_steps > total - warmup:
        raise ValueError(
            f"The decay ({source}) is longer than the {total - warmup} steps after warmup (num_training_steps={total} "
            f"- num_warmup_steps={warmup}): it would start at step {total - decay_steps}, before warmup ends. Use a "
            "shorter decay or a shorter warmup."
        )
    phases = [
        {"shape": "constant", "steps": total - decay_steps - warmup},
        {"shape": decay_type, "steps": decay_steps, "to": "min"},
    ]
    wsd_options = dict(decay_ratio=decay_ratio, num_decay_steps=num_decay_steps, decay_type=decay_type)
    return _schedule(
        get_wsd_schedule,
        optimizer,
        common,
        "wsd",
        phases,
        own=own,
        options=wsd_options,
        last_epoch=last_epoch,
        new_stage=new_stage,
    )


def get_phases_schedule(
    optimizer: Optimizer,
    num_warmup_steps: int | Literal["auto"],
    num_training_steps: int,
    *,
    phases: list[dict[str, Any]],
    warmup_type: WarmupType = "linear",
    warmup_start_ratio: float = 0.0,
    warmup_exp_rate: float = 5.0,
    min_lr_ratio: float | None = None,
    min_lr: float | None = None,
    max_auto_warmup_ratio: float = 0.1,
    last_epoch: int = -1,
    new_stage: bool = False,
) -> ScheduleLR:
    r"""
    Create a schedule from a list of phases: a warmup as in [`get_warmup_cosine_schedule`], then the phases laid end
    to end over the `D = T - W` steps after it, then the last phase's end level for `t >= T`.

    A phase is a dict: its `shape`, its length (`steps`, `ratio` of `T`, or neither: the one phase that takes the
    steps left; the lengths must add up to `D`), and its levels `from` (default: where the previous phase ended, 1
    for the first) and `to` (default `"min"`, each param group's floor `m`), multipliers of the base learning rate in
    `[0, 1]`. Inside a phase that starts at step `a` and lasts `L` steps, with `u = (t - a) / L`:

    $$
    \lambda(t) = y + (x - y)\, g(u)
    $$

    with `g(u) = 1 - u` (`"linear"`), `(1 + cos(pi u)) / 2` (`"cosine"`), `1 - sqrt(u)` (`"1-sqrt"`), `1 - u^p`
    (`"power"`, with `p > 0`), `(1 - u) / (1/2 + (1 - u) / 2)` (`"rex"`), `1` (`"constant"`, one level);
    `"exponential"` is `x (y / x)^u` (both levels above 0), and `"restarts"` lays the cycles of
    [`get_cosine_with_growing_restarts_schedule`] into the phase (its options `num_cycles` or
    `first_cycle_steps`, `cycle_mult`, `cycle_decay`, `restart_warmup_steps`), peak `x`, floor `y`. A `from` above
    where the previous phase ended is a restart; a `to` above `from` is a rise (a re-warmup).

    ```python
    import torch
    from hf_lrsched import get_phases_schedule

    optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1e-3)
    scheduler = get_phases_schedule(  # multi-period WSD: decay, re-warm, stable, decay
        optimizer, 10, 1000, min_lr_ratio=0.1,
        phases=[
            {"shape": "constant", "ratio": 0.4},
            {"shape": "1-sqrt", "steps": 100, "to": 0.3},
            {"shape": "linear", "steps": 20, "to": 1.0},
            {"shape": "constant", "ratio": 0.2},
            {"shape": "1-sqrt"},
        ],
    )
    ```

    Args:
        optimizer ([`~torch.optim.Optimizer`]):
            The optimizer for which to schedule the learning rate.
        num_warmup_steps (`int` or `"auto"`):
            The number of warmup steps `W`, or `"auto"` (see [`resolve_auto_warmup_steps`]).
        num_training_steps (`int`):
            The total number of training steps `T >= 1`.
        phases (`list[dict]`):
            The phases, in order; see above. Checked at construction: an error names the phase (its index and
            shape), the key and the value.
        warmup_type, warmup_start_ratio, warmup_exp_rate, min_lr_ratio, min_lr, max_auto_warmup_ratio, last_epoch, new_stage:
            As in [`get_warmup_cosine_schedule`].

    Returns:
        [`ScheduleLR`]: a `torch.optim.lr_scheduler.LambdaLR` with the appropriate schedule.
    """
    common = CommonOptions(
        num_warmup_steps=num_warmup_steps,
        num_training_steps=num_training_steps,
        warmup_type=warmup_type,
        warmup_start_ratio=warmup_start_ratio,
        warmup_exp_rate=warmup_exp_rate,
        min_lr_ratio=min_lr_ratio,
        min_lr=min_lr,
        max_auto_warmup_ratio=max_auto_warmup_ratio,
    )
    scheduler = _schedule(
        get_phases_schedule,
        optimizer,
        common,
        "phases",
        phases,
        own=dict(phases=phases),
        last_epoch=last_epoch,
        new_stage=new_stage,
        preset=False,
    )
    scheduler._own["options"]["phases"] = scheduler._own["phases"]
    return scheduler


def __getattr__(name: str):
    # `hf_lrsched.schedules.ScheduleLR`, where it lived before `hf_lrsched.scheduler`: imported on use, with torch.
    if name == "ScheduleLR":
        from .scheduler import ScheduleLR

        return ScheduleLR
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
