"""The math of every hf_lrsched schedule: a warmup, then a list of phases laid end to end. Pure Python, no torch.

A schedule of ours is `lambda(t)`, a multiplier of each param group's base learning rate: the warmup for `t < W`,
then the phases over the `D = T - W` decay steps, then the last phase's end level for `t >= T` (the contract's
"Phases" section, `docs/schedules/math.md`). `warmup_cosine`, `wsd` and `cosine_with_growing_restarts` are fixed
phase lists (`hf_lrsched.schedules`); the `phases` schedule takes the list from the user.

Each shape is one module-level function, `shape(a, L, x, y, param, t)` for a phase that starts at step `a`, lasts `L`
steps and goes from level `x` to level `y`, at step `t`: the per-step multiplier calls it, and a whole curve
(`multipliers`) maps it over a range of steps, so the two can never disagree. A scheduler binds
`_get_phases_lr_lambda` with `functools.partial`, as `transformers.optimization` does, so that it pickles and stores
nothing but its step count.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import repeat
from math import cos, pi, sqrt
from typing import Any, NamedTuple

from ._exact import decimal_fraction
from ._validation import check_float, check_int, suggest
from .cycles import Cycles, check_fitted_cycles

__all__ = [
    "PHASE_KEYS",
    "RESTART_KEYS",
    "SHAPES",
    "WARMUP_TYPES",
    "PhasePlan",
    "Warmup",
    "build_plan",
    "multipliers",
    "resolve_phases",
    "warmup_multiplier",
]

WARMUP_TYPES = ("linear", "exponential", "cosine")


class Warmup(NamedTuple):
    """The warmup options bound into a schedule's lambda."""

    type: str  # "linear", "exponential" or "cosine"
    start_ratio: float  # s, the multiplier at step 0
    exp_rate: float  # k, the rate of exponential warmup


def warmup_multiplier(current_step: int, num_warmup_steps: int, warmup: Warmup) -> float:
    """Multiplier during warmup, `s + (1 - s) * w(t / W)`, for `0 <= t < W`."""
    u = current_step / num_warmup_steps
    if warmup.type == "linear":
        w = u
    elif warmup.type == "exponential":
        w = -math.expm1(-warmup.exp_rate * u)
    else:  # cosine
        w = 0.5 * (1.0 - math.cos(math.pi * u))
    return warmup.start_ratio + (1.0 - warmup.start_ratio) * w


# The shapes: the multiplier at step t of a phase that starts at step a, lasts L steps and goes from level x (at
# u = 0) towards level y (at u = 1), u = (t - a) / L. The step comes last, so that a phase binds the rest once
# (`functools.partial(shape, a, L, x, y, param)`) and calls it with the step alone. One formula each, written as the contract writes it,
# lambda = y + (x - y) * g(u); a rise (x < y) is the same formula.


def _constant(a: int, L: int, x: float, y: float, param: Any, t: int) -> float:
    return x


def _linear(a: int, L: int, x: float, y: float, param: Any, t: int) -> float:
    return y + (x - y) * (1.0 - (t - a) / L)


def _cosine(a: int, L: int, x: float, y: float, param: Any, t: int) -> float:
    return y + (x - y) * 0.5 * (1.0 + cos(pi * ((t - a) / L)))


def _one_minus_sqrt(a: int, L: int, x: float, y: float, param: Any, t: int) -> float:
    return y + (x - y) * (1.0 - sqrt((t - a) / L))


def _power(a: int, L: int, x: float, y: float, p: float, t: int) -> float:
    return y + (x - y) * (1.0 - ((t - a) / L) ** p)


def _exponential(a: int, L: int, x: float, y: float, param: Any, t: int) -> float:
    return x * (y / x) ** ((t - a) / L)  # geometric: both levels > 0


def _rex(a: int, L: int, x: float, y: float, param: Any, t: int) -> float:
    v = 1.0 - (t - a) / L  # REX (Chen et al. 2022): (1 - u) / (1/2 + (1 - u) / 2)
    return y + (x - y) * (v / (0.5 + 0.5 * v))


def _restarts(a: int, L: int, x: float, y: float, cycles: Cycles, t: int) -> float:
    # The cycles of `cosine_with_growing_restarts` inside the phase, with peak x and floor y (see `Cycles`).
    tau = t - a
    memo = cycles._memo  # the cycle of the previous step, checked here: no method call while the cycle lasts
    if memo is None or not memo[1] <= tau < memo[2]:
        memo = cycles.remember(tau)
    _, start, end, factor, rise = memo
    height = (x - y) * factor
    j = tau - start
    if j < rise:
        return y + height * j / rise
    return y + height * 0.5 * (1.0 + cos(pi * ((j - rise) / (end - start - rise))))


_SHAPE_FUNCTIONS: dict[str, Callable[..., float]] = {
    "constant": _constant,
    "linear": _linear,
    "cosine": _cosine,
    "1-sqrt": _one_minus_sqrt,
    "power": _power,
    "exponential": _exponential,
    "rex": _rex,
    "restarts": _restarts,
}
SHAPES = tuple(_SHAPE_FUNCTIONS)
#: The keys of a phase; `p` only for `power`, `RESTART_KEYS` only for `restarts`.
PHASE_KEYS = ("shape", "steps", "ratio", "from", "to", "p")
#: The options of a `restarts` phase: those of `cosine_with_growing_restarts`.
RESTART_KEYS = ("num_cycles", "first_cycle_steps", "cycle_mult", "cycle_decay", "restart_warmup_steps")


class Phase(NamedTuple):
    """One phase of a plan, its levels resolved for one param group: steps `start <= t < end`; `value(t)` is the
    multiplier, the shape `fn` with its arguments `args` bound (`functools.partial(fn, *args)`)."""

    start: int
    end: int
    fn: Callable[..., float]
    args: tuple  # (a, L, x, y, param): the shape's arguments before t
    value: Callable[[int], float]


def _phase(start: int, end: int, fn: Callable[..., float], args: tuple) -> Phase:
    return Phase(start, end, fn, args, functools.partial(fn, *args))


_NO_PHASE = _phase(0, 0, _constant, (0, 0, 0.0, 0.0, None))


class PhasePlan:
    """
    The phases of one param group, laid end to end, and the level after the last (`final`). The phase of a step is
    found by a bisection over the phase starts (never a loop over phases); the last phase found is remembered, and
    checked on every use, so consecutive steps of one phase cost one comparison. Picklable (the memo is not kept).
    """

    __slots__ = ("_starts", "final", "memo", "phases")

    def __init__(self, phases: Sequence[Phase], final: float):
        self.phases = tuple(phases)
        self.final = final
        self._starts = [phase.start for phase in self.phases]
        self.memo = _NO_PHASE

    def __reduce__(self):
        return (PhasePlan, (self.phases, self.final))

    def __repr__(self) -> str:
        return f"PhasePlan({len(self.phases)} phases, final={self.final})"

    def locate(self, step: int) -> Phase:
        """The phase holding `step` (a phase start <= step < the plan's end), remembered for the next call."""
        phase = self.phases[bisect_right(self._starts, step) - 1]
        self.memo = phase
        return phase


def _get_phases_lr_lambda(
    current_step: int, *, num_warmup_steps: int, num_training_steps: int, warmup: Warmup, plan: PhasePlan
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(current_step, num_warmup_steps, warmup)
    if current_step >= num_training_steps:
        return plan.final
    phase = plan.memo
    if not phase.start <= current_step < phase.end:
        phase = plan.locate(current_step)
    return phase.value(current_step)


def _get_staged_lr_lambda(current_step: int, *, starts: tuple[int, ...], lambdas: tuple[Callable, ...]) -> float:
    # Stage k covers steps starts[k] <= t < starts[k + 1] and is evaluated at its own local step t - starts[k].
    if current_step >= starts[-1]:
        return lambdas[-1](current_step - starts[-1])
    index = bisect_right(starts, current_step) - 1
    return lambdas[index](current_step - starts[index])


def multipliers(lr_lambda: Callable[[int], float], num_steps: int) -> list[float]:
    """
    `[lr_lambda(0), ..., lr_lambda(num_steps)]`, the same floats. For the lambdas of hf_lrsched each phase's shape
    function is mapped over its steps directly (no phase lookup per step: a million-step preview in a fraction of a
    second); any other function is called step by step.
    """
    func = getattr(lr_lambda, "func", None)
    keywords = getattr(lr_lambda, "keywords", {})
    if func is _get_phases_lr_lambda:
        return _phases_curve(0, num_steps + 1, **keywords)
    if func is _get_staged_lr_lambda:
        starts, lambdas = keywords["starts"], keywords["lambdas"]
        bounds = [*starts[1:], num_steps + 1]
        out: list[float] = []
        for start, stop, fn in zip(starts, bounds, lambdas):
            if start < min(stop, num_steps + 1):
                out += _range(fn, 0, min(stop, num_steps + 1) - start)
        return out
    return list(map(lr_lambda, range(num_steps + 1)))


def _range(lr_lambda: Callable[[int], float], lo: int, hi: int) -> list[float]:
    """`lr_lambda(t)` for `lo <= t < hi`."""
    if getattr(lr_lambda, "func", None) is _get_phases_lr_lambda:
        return _phases_curve(lo, hi, **lr_lambda.keywords)  # type: ignore[attr-defined]
    return list(map(lr_lambda, range(lo, hi)))


def _phases_curve(
    lo: int, hi: int, *, num_warmup_steps: int, num_training_steps: int, warmup: Warmup, plan: PhasePlan
) -> list[float]:
    W, T = num_warmup_steps, num_training_steps
    out = list(map(warmup_multiplier, range(lo, min(W, hi)), repeat(W), repeat(warmup)))
    for phase in plan.phases:
        first, stop = max(phase.start, lo), min(phase.end, T, hi)
        if first < stop:
            out += map(phase.value, range(first, stop))
    out += [plan.final] * (hi - lo - len(out))
    return out


# Resolving a phase list: lengths first (the same for every param group), then each group's levels.


def _where(index: int | None, shape: object) -> str:
    return "" if index is None else f"Phase {index} ({shape}): "


def _check_level(where: str, key: str, value: object) -> float | str:
    """A level as written: a number in [0, 1], or "min" (each group's floor)."""
    if value == "min" and isinstance(value, str):
        return "min"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise (TypeError if isinstance(value, bool) or not isinstance(value, (int, float, str)) else ValueError)(
            f"{where}`{key}` must be a level in [0, 1] (a multiplier of the base learning rate) or 'min' (each param "
            f"group's floor), got {value!r}."
        )
    if not math.isfinite(float(value)):
        raise ValueError(f"{where}`{key}` must be a finite level in [0, 1] or 'min', got {value!r}.")
    return float(value)


def resolve_phases(
    phases: object, *, num_training_steps: int, num_warmup_steps: int, preset: bool = False
) -> list[dict[str, Any]]:
    """
    Check a phase list and resolve every length to steps: returns one plain dict per phase (`shape`, `steps`, `from`,
    `to` and, where they apply, `p` and the restart options), levels as written (a number, `"min"`, or `None` for
    "where the previous phase ended"). What a scheduler's state records, and what `build_plan` reads.

    Lengths: `steps` (an integer >= 1), `ratio` (`ceil(ratio * T)`, the ratio read as written) or neither (the one
    phase that takes the steps left); they must add up to `D = T - W` exactly. `preset=True` (our fixed lists) allows
    phases of 0 steps and names the schedule's options, not phase indices, in errors.

    Raises:
        `ValueError` or `TypeError`: naming the phase (its index and shape), the key and the value.
    """
    if isinstance(phases, (str, bytes, dict)) or not isinstance(phases, Sequence):
        raise TypeError(
            f"`phases` must be a list of phases (dicts with a 'shape', e.g. [{{'shape': 'constant', 'ratio': 0.8}}, "
            f"{{'shape': '1-sqrt'}}]), got {phases!r} ({type(phases).__name__})."
        )
    total, decay = num_training_steps, num_training_steps - num_warmup_steps
    resolved: list[dict[str, Any]] = []
    rest: int | None = None
    lengths: list[str] = []
    for index, phase in enumerate(phases):
        where = _where(None if preset else index, phase.get("shape") if isinstance(phase, dict) else "?")
        if not isinstance(phase, dict):
            raise TypeError(f"Phase {index} must be a dict with a 'shape', got {phase!r} ({type(phase).__name__}).")
        shape = phase.get("shape")
        if shape not in _SHAPE_FUNCTIONS:
            raise ValueError(
                f"Phase {index}: `shape` must be one of {list(SHAPES)}, got {shape!r}.{suggest(shape, SHAPES)}"
            )
        allowed = [
            *PHASE_KEYS[:5],
            *(["p"] if shape == "power" else []),
            *(RESTART_KEYS if shape == "restarts" else []),
        ]
        for key in phase:
            if key not in allowed:
                other = " (only for a 'power' phase)" if key == "p" else ""
                other = other or (" (only for a 'restarts' phase)" if key in RESTART_KEYS else "")
                raise ValueError(
                    f"{where}unknown key {key!r}{other}.{suggest(key, allowed)} A {shape} phase takes {allowed}."
                )
        out: dict[str, Any] = {"shape": shape}
        if "steps" in phase and "ratio" in phase:
            raise ValueError(
                f"{where}give its length as `steps` or as `ratio`, not both; got steps={phase['steps']!r} and "
                f"ratio={phase['ratio']!r}."
            )
        if "steps" in phase:
            out["steps"] = check_int(f"{where}steps".strip(), phase["steps"], minimum=0 if preset else 1)
            lengths.append(f"phase {index} ({shape}): {out['steps']} steps")
        elif "ratio" in phase:
            ratio = check_float(f"{where}ratio".strip(), phase["ratio"], low=0.0, high=1.0, low_open=not preset)
            out["steps"] = math.ceil(decimal_fraction(ratio) * total)
            lengths.append(f"phase {index} ({shape}): ratio {ratio} of T={total} -> {out['steps']} steps")
        else:
            if rest is not None:
                raise ValueError(
                    f"Phases {rest} and {index} both give no length (neither `steps` nor `ratio`): only one phase may "
                    "take the steps left."
                )
            rest = index
            lengths.append(f"phase {index} ({shape}): the rest")
        if shape == "constant":
            levels = {key: _check_level(where, key, phase[key]) for key in ("from", "to") if key in phase}
            if len(set(levels.values())) > 1:
                raise ValueError(
                    f"{where}a constant phase has one level, got from={phase['from']!r} and to={phase['to']!r}."
                )
            level = next(iter(levels.values()), None)
            out["from"] = out["to"] = level
        else:
            out["from"] = _check_level(where, "from", phase["from"]) if "from" in phase else None
            out["to"] = _check_level(where, "to", phase.get("to", "min"))
        if shape == "power":
            if "p" not in phase:
                raise ValueError(f"{where}a power phase needs its exponent `p` > 0 (1 - u^p), e.g. 'p': 0.5.")
            out["p"] = check_float(f"{where}p".strip(), phase["p"], low=0.0, low_open=True)
        if shape == "restarts":
            out.update(_restart_options(where, phase))
        resolved.append(out)
    taken = sum(phase.get("steps", 0) for phase in resolved)
    if rest is not None:
        left = decay - taken
        if left < (0 if preset else 1):
            raise ValueError(
                f"The phases leave {left} steps for phase {rest}, which takes the rest: the D = T - W = {total} - "
                f"{num_warmup_steps} = {decay} steps after warmup are taken by the others ({'; '.join(lengths)})."
            )
        resolved[rest]["steps"] = left
        lengths[rest] += f" -> {left} steps"
    elif taken != decay:
        raise ValueError(
            f"The phases' lengths add up to {taken} steps, but the D = T - W = {total} - {num_warmup_steps} = {decay} "
            f"steps after warmup need exactly that many ({'; '.join(lengths)}). Fix a length, or leave one phase "
            "without `steps` and `ratio` to take the rest."
        )
    return resolved


def _restart_options(where: str, phase: dict) -> dict[str, Any]:
    """The options of a `restarts` phase, checked (`cosine_with_growing_restarts`' rules), as plain values."""
    name = (lambda key: f"{where}{key}".strip()) if where else (lambda key: key)
    num_cycles, first_cycle_steps = phase.get("num_cycles"), phase.get("first_cycle_steps")
    if num_cycles is not None and first_cycle_steps is not None:
        raise ValueError(
            f"{where}Pass either `num_cycles` (fit that many cycles into training) or `first_cycle_steps` (cycles of "
            f"that first length until the end), not both; got num_cycles={num_cycles} and "
            f"first_cycle_steps={first_cycle_steps}."
        )
    cycle_mult = check_float(name("cycle_mult"), phase.get("cycle_mult", 2.0), low=1.0)
    cycle_decay = check_float(name("cycle_decay"), phase.get("cycle_decay", 1.0), low=0.0, high=1.0, low_open=True)
    restart_warmup_steps = check_int(name("restart_warmup_steps"), phase.get("restart_warmup_steps", 0), minimum=0)
    if first_cycle_steps is not None:
        first_cycle_steps = check_int(name("first_cycle_steps"), first_cycle_steps, minimum=1)
        if restart_warmup_steps >= first_cycle_steps:
            raise ValueError(
                f"{where}`restart_warmup_steps` must be smaller than first_cycle_steps={first_cycle_steps} (every "
                f"cycle after a restart is at least that long and needs a decay part), got {restart_warmup_steps}."
            )
    else:
        num_cycles = check_int(name("num_cycles"), 3 if num_cycles is None else num_cycles, minimum=1)
    return dict(
        num_cycles=num_cycles,
        first_cycle_steps=first_cycle_steps,
        cycle_mult=cycle_mult,
        cycle_decay=cycle_decay,
        restart_warmup_steps=restart_warmup_steps,
    )


def make_cycles(phase: dict[str, Any], *, where: str = "") -> Cycles:
    """The `Cycles` of a resolved `restarts` phase, with the fit checked (every cycle long enough)."""
    cycles = Cycles(phase["steps"], **{key: phase[key] for key in RESTART_KEYS})
    if phase["num_cycles"] is not None:
        try:
            check_fitted_cycles(
                cycles, "steps of the phase" if where else "decay steps (num_training_steps - num_warmup_steps)"
            )
        except ValueError as error:
            raise ValueError(f"{where}{error}") from None
    return cycles


def build_plan(
    resolved: Sequence[dict[str, Any]],
    *,
    num_warmup_steps: int,
    floor: float,
    start_level: float = 1.0,
    cycles: Sequence[Cycles | None] | None = None,
    preset: bool = False,
) -> PhasePlan:
    """
    One param group's `PhasePlan` from `resolve_phases`' list: `"min"` is the group's `floor`, a missing `from` is
    where the previous phase ended (`start_level` for the first phase: 1 after a warmup). `cycles` may pass the
    `Cycles` of each restarts phase, built once for all groups (`make_cycles`).
    """
    level = start_level
    step = num_warmup_steps
    out = []
    for index, phase in enumerate(resolved):
        where = _where(None if preset else index, phase["shape"])
        x = _level(phase["from"], floor, default=level)
        y = x if phase["shape"] == "constant" else _level(phase["to"], floor, default=level)
        if phase["shape"] == "exponential" and (x <= 0.0 or y <= 0.0):
            raise ValueError(
                f"{where}an exponential phase goes geometrically from one level to the other, so both must be > 0; "
                f"got from={x} and to={y} (a level 'min' is the param group's floor, here {floor}). Give a floor "
                "(`min_lr_ratio` or `min_lr`) or a level above 0."
            )
        param: Any = phase.get("p")
        if phase["shape"] == "restarts":
            param = (
                cycles[index] if cycles is not None and cycles[index] is not None else make_cycles(phase, where=where)
            )
        length = phase["steps"]
        out.append(_phase(step, step + length, _SHAPE_FUNCTIONS[phase["shape"]], (step, length, x, y, param)))
        step += length
        level = y
    # For t >= T: the last phase's end level when it names one (a `to`, or a constant's level), else the floor.
    final = _level(resolved[-1]["to"], floor, default=floor) if resolved else floor
    return PhasePlan(out, final)


def _level(value: float | str | None, floor: float, *, default: float) -> float:
    if value is None:
        return default
    return floor if value == "min" else float(value)


def phase_key(phase: Phase, offset: int) -> tuple:
    """What makes a phase's rates: equal keys give equal floats at every step the two phases share. `offset` is the
    step of the phase's stage (its steps are `offset + t`)."""
    a, length, x, y, param = phase.args
    if phase.fn is _constant:
        return ("constant", x)
    if phase.fn is _restarts:
        param = repr(param)  # its options
    return (phase.fn.__name__, offset + a, length, x, y, param)
