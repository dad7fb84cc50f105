"""The math of every hf_lrsched schedule: pure functions of the step, no torch.

Each public factory in `hf_lrsched.schedules` binds one of the `_get_*_lr_lambda` functions below with
`functools.partial`, exactly as `transformers.optimization` does, so that a scheduler pickles, deep-copies and
stores nothing but its step count in `state_dict()`. Everything that can be computed once (the warmup length, the
floor, `log(cycle_mult)`, the first cycle length) is computed by the factory and bound into the partial; the
functions here only evaluate the formulas of `SCHEDULES.md` for one step.
"""

from __future__ import annotations

import math

WARMUP_TYPES = ("linear", "exponential", "cosine")


def warmup_multiplier(
    current_step: int, *, num_warmup_steps: int, warmup_type: str, warmup_start_ratio: float, warmup_exp_rate: float
) -> float:
    """Multiplier during warmup, `s + (1 - s) * w(t / W)`, for `0 <= t < W`."""
    u = current_step / num_warmup_steps
    if warmup_type == "linear":
        w = u
    elif warmup_type == "exponential":
        w = -math.expm1(-warmup_exp_rate * u)
    else:  # cosine
        w = 0.5 * (1.0 - math.cos(math.pi * u))
    return warmup_start_ratio + (1.0 - warmup_start_ratio) * w


def _get_warmup_cosine_lr_lambda(
    current_step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup_type: str,
    warmup_start_ratio: float,
    warmup_exp_rate: float,
    min_lr_ratio: float,
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(
            current_step,
            num_warmup_steps=num_warmup_steps,
            warmup_type=warmup_type,
            warmup_start_ratio=warmup_start_ratio,
            warmup_exp_rate=warmup_exp_rate,
        )
    if current_step >= num_training_steps:
        return min_lr_ratio
    progress = (current_step - num_warmup_steps) / (num_training_steps - num_warmup_steps)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def cycle_start(
    index: int, *, first_cycle_steps: float, cycle_mult: float, num_cycles: int | None, decay_steps: int
) -> int:
    """`B_i`: the decay-phase step at which cycle `index` starts.

    `B_i = round(C_i)` with `C_i = L_0 (r^i - 1) / (r - 1)` (`i L_0` when `r = 1`), rounding half up so that
    cycles of at least one step never collapse. In fit mode (`num_cycles` set) `B_n = D` exactly; with `r = 1` the
    fit-mode starts are computed in integers, `round(i D / n)`.
    """
    if num_cycles is not None:
        if index >= num_cycles:
            return decay_steps
        if cycle_mult == 1.0:
            return (2 * index * decay_steps + num_cycles) // (2 * num_cycles)
    elif cycle_mult == 1.0:
        return index * int(first_cycle_steps)
    return math.floor(first_cycle_steps * (cycle_mult**index - 1.0) / (cycle_mult - 1.0) + 0.5)


def cycle_index(
    decay_step: int,
    *,
    first_cycle_steps: float,
    cycle_mult: float,
    log_cycle_mult: float,
    num_cycles: int | None,
    decay_steps: int,
) -> tuple[int, int, int]:
    """The cycle `i` holding `decay_step` (`tau`), with its start `B_i` and end `B_{i+1}`, in closed form.

    The logarithm gives the index up to floating-point error; the integer boundaries of `cycle_start` then settle it,
    so the answer is exact at every boundary whatever the number of cycles (at most a step or two of correction).
    """
    bounds = dict(first_cycle_steps=first_cycle_steps, cycle_mult=cycle_mult, num_cycles=num_cycles, decay_steps=decay_steps)
    if cycle_mult == 1.0:
        index = int(decay_step // first_cycle_steps)
    else:
        index = int(math.log1p(decay_step * (cycle_mult - 1.0) / first_cycle_steps) / log_cycle_mult)
    if num_cycles is not None:
        index = min(index, num_cycles - 1)
    start = cycle_start(index, **bounds)
    while start > decay_step:
        index -= 1
        start = cycle_start(index, **bounds)
    end = cycle_start(index + 1, **bounds)
    while end <= decay_step and (num_cycles is None or index + 1 < num_cycles):
        index += 1
        start, end = end, cycle_start(index + 1, **bounds)
    return index, start, end


def _get_cosine_with_growing_restarts_lr_lambda(
    current_step: int,
    *,
    num_warmup_steps: int,
    num_training_steps: int,
    warmup_type: str,
    warmup_start_ratio: float,
    warmup_exp_rate: float,
    min_lr_ratio: float,
    first_cycle_steps: float,
    cycle_mult: float,
    log_cycle_mult: float,
    num_cycles: int | None,
    cycle_decay: float,
    restart_warmup_steps: int,
) -> float:
    if current_step < num_warmup_steps:
        return warmup_multiplier(
            current_step,
            num_warmup_steps=num_warmup_steps,
            warmup_type=warmup_type,
            warmup_start_ratio=warmup_start_ratio,
            warmup_exp_rate=warmup_exp_rate,
        )
    if current_step >= num_training_steps:
        return min_lr_ratio
    decay_step = current_step - num_warmup_steps
    index, start, end = cycle_index(
        decay_step,
        first_cycle_steps=first_cycle_steps,
        cycle_mult=cycle_mult,
        log_cycle_mult=log_cycle_mult,
        num_cycles=num_cycles,
        decay_steps=num_training_steps - num_warmup_steps,
    )
    height = (1.0 - min_lr_ratio) * cycle_decay**index
    local_step = decay_step - start
    rise = restart_warmup_steps if index > 0 else 0
    if local_step < rise:
        return min_lr_ratio + height * local_step / rise
    progress = (local_step - rise) / (end - start - rise)
    return min_lr_ratio + height * 0.5 * (1.0 + math.cos(math.pi * progress))
