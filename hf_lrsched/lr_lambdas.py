"""The math of every hf_lrsched schedule: pure functions of the step, no torch.

Each public factory in `hf_lrsched.schedules` binds one of the `_get_*_lr_lambda` functions below with
`functools.partial`, exactly as `transformers.optimization` does, so that a scheduler pickles, deep-copies and
stores nothing but its step count in `state_dict()`. Everything that can be computed once (the warmup length, the
floor, `log(cycle_mult)`, the first cycle length) is computed by the factory and bound into the partial, grouped in
the small named tuples `Warmup` and `Cycles` (few keywords keep a partial call cheap); the functions here only
evaluate the formulas of `SCHEDULES.md` for one step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

WARMUP_TYPES = ("linear", "exponential", "cosine")


class Warmup(NamedTuple):
    """The warmup options bound into a schedule's lambda."""

    type: str  # "linear", "exponential" or "cosine"
    start_ratio: float  # s, the multiplier at step 0
    exp_rate: float  # k, the rate of exponential warmup


class Cycles(NamedTuple):
    """The cycles of `cosine_with_growing_restarts`, laid out once by its factory."""

    first_cycle_steps: float  # L_0: an integer in free mode, D (r - 1) / (r^n - 1) in fit mode
    cycle_mult: float  # r >= 1
    log_cycle_mult: float  # log(r)
    num_cycles: int | None  # n in fit mode (B_n = D), None in free mode
    decay_steps: int  # D = T - W
    cycle_decay: float = 1.0  # gamma: the height of cycle i above the floor is gamma^i
    restart_warmup_steps: int = 0  # R: steps from the floor back to the peak after each restart


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


def _get_warmup_cosine_lr_lambda(
    current_step: int, *, num_warmup_steps: int, num_training_steps: int, warmup: Warmup, min_lr_ratio: float
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(current_step, num_warmup_steps, warmup)
    if current_step >= num_training_steps:
        return min_lr_ratio
    progress = (current_step - num_warmup_steps) / (num_training_steps - num_warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cycle_start(index: int, cycles: Cycles) -> int:
    """`B_i`: the decay-phase step at which cycle `index` starts.

    `B_i = round(C_i)` with `C_i = L_0 (r^i - 1) / (r - 1)` (`i L_0` when `r = 1`), rounding half up so that
    cycles of at least one step never collapse. In fit mode (`num_cycles` set) `B_n = D` exactly; with `r = 1` the
    fit-mode starts are computed in integers, `round(i D / n)`.
    """
    first, mult, _, num_cycles, decay_steps, _, _ = cycles
    if num_cycles is not None:
        if index >= num_cycles:
            return decay_steps
        if mult == 1.0:
            return (2 * index * decay_steps + num_cycles) // (2 * num_cycles)
    elif mult == 1.0:
        return index * int(first)
    return math.floor(first * (mult**index - 1.0) / (mult - 1.0) + 0.5)


def cycle_index(decay_step: int, cycles: Cycles) -> tuple[int, int, int]:
    """The cycle `i` holding `decay_step` (`tau`), with its start `B_i` and end `B_{i+1}`, in closed form.

    A logarithm (a division when `r = 1`) gives the index up to floating-point error; the integer boundaries of
    `cycle_start` then settle it, so the answer is exact at every boundary whatever the number of cycles (at most a
    step or two of correction, never a loop over cycles). The common case, a guess that is already right, computes
    the two boundaries inline, with `cycle_start`'s very expressions.
    """
    first, mult, log_mult, num_cycles, decay_steps, _, _ = cycles
    if mult == 1.0:
        if num_cycles is None:  # equal integer cycles: exact in integers
            index = decay_step // int(first)
            start = index * int(first)
            return index, start, start + int(first)
        index = decay_step * num_cycles // decay_steps
    else:
        index = int(math.log1p(decay_step * (mult - 1.0) / first) / log_mult)
        if num_cycles is not None and index >= num_cycles:
            index = num_cycles - 1
        start = math.floor(first * (mult**index - 1.0) / (mult - 1.0) + 0.5)
        if num_cycles is not None and index + 1 >= num_cycles:
            end = decay_steps
        else:
            end = math.floor(first * (mult ** (index + 1) - 1.0) / (mult - 1.0) + 0.5)
        if start <= decay_step < end:
            return index, start, end
    start = cycle_start(index, cycles)
    while start > decay_step:
        index -= 1
        start = cycle_start(index, cycles)
    end = cycle_start(index + 1, cycles)
    while end <= decay_step and (num_cycles is None or index + 1 < num_cycles):
        index += 1
        start, end = end, cycle_start(index + 1, cycles)
    return index, start, end


def _get_cosine_with_growing_restarts_lr_lambda(
    current_step: int, *, num_warmup_steps: int, num_training_steps: int, warmup: Warmup, min_lr_ratio: float,
    cycles: Cycles
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(current_step, num_warmup_steps, warmup)
    if current_step >= num_training_steps:
        return min_lr_ratio
    decay_step = current_step - num_warmup_steps
    index, start, end = cycle_index(decay_step, cycles)
    height = (1.0 - min_lr_ratio) * cycles.cycle_decay**index
    local_step = decay_step - start
    rise = cycles.restart_warmup_steps if index > 0 else 0
    if local_step < rise:
        return min_lr_ratio + height * local_step / rise
    progress = (local_step - rise) / (end - start - rise)
    return min_lr_ratio + height * 0.5 * (1.0 + math.cos(math.pi * progress))
