"""`hf-lrsched`: list the schedules, and look at one before training with it.

    hf-lrsched list
    hf-lrsched show cosine_with_growing_restarts --num-training-steps 1000 --num-warmup-steps 50
    hf-lrsched plot warmup_cosine exponential_warmup_cosine --num-training-steps 1000 --warmup-ratio 0.1 \\
        --lr 5e-5 -o schedules.png

Bad input (an unknown name, an invalid option) prints the library's own message and exits with status 2.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import os
import sys
from dataclasses import dataclass, field

# The library (torch, transformers) is imported by the commands, not here: `hf-lrsched --help` answers at once.

__all__ = ["ScheduleCurve", "compute_curve", "draw_png", "draw_text", "main"]


#: Points of a preview: the curve is sampled at about this many evenly spaced steps, plus every key step.
SAMPLES = 4000
#: Restarts drawn and tabulated at most; past this many the table says how many there are.
MAX_RESTARTS = 200
#: Below this many steps, a schedule that is not hf_lrsched's is evaluated at every step to find its restarts.
SCAN_LIMIT = 200_000
#: The most training steps drawn: every step up to 2**53 is exact as a float, the steps a curve is computed at.
MAX_STEPS = 2**53
#: The largest text plot, in characters and lines.
MAX_WIDTH, MAX_HEIGHT = 1000, 500


@dataclass
class ScheduleCurve:
    """A schedule's learning rate at sampled steps (every key step included), and its key steps."""

    name: str
    steps: list[int]
    lrs: list[float]
    num_training_steps: int
    num_warmup_steps: int | None
    restarts: list[int] = field(default_factory=list)
    num_restarts: int = 0  # all restarts, of which `restarts` lists at most MAX_RESTARTS
    branch: tuple[int, int] | None = None  # (step, decay steps) of a cooldown branch drawn beside the trunk
    stages: list[tuple[int, str]] = field(default_factory=list)  # (first step, schedule) of each stage after the first
    decay_start: int | None = None  # a wsd decay's first step
    phases: list[tuple[int, str]] = field(default_factory=list)  # (first step, shape) of a `phases` schedule's phases

    def lr_at(self, step: int) -> float:
        """The rate at the sampled step nearest to `step`."""
        index = bisect.bisect_left(self.steps, step)
        if index == len(self.steps) or (index > 0 and step - self.steps[index - 1] < self.steps[index] - step):
            index -= 1
        return self.lrs[index]

    def key_steps(self) -> list[tuple[int, str]]:
        """(step, what) for the start, the end of warmup, each restart listed and the end, in order."""
        keys = {0: "start"}
        if self.num_warmup_steps:
            keys[self.num_warmup_steps] = "end of warmup"
        for i, step in enumerate(self.restarts, start=1):
            keys.setdefault(step, f"restart {i}")
        if self.decay_start is not None and self.decay_start < self.num_training_steps:
            keys.setdefault(self.decay_start, "decay starts")
        for i, (step, shape) in enumerate(self.phases):
            keys.setdefault(step, f"phase {i}: {shape}")
        for i, (step, name) in enumerate(self.stages, start=1):
            keys[step] = f"stage {i}: {name}"
        keys[self.num_training_steps] = "end"
        return sorted(keys.items())


def compute_curve(
    name: str,
    num_warmup_steps,
    num_training_steps: int,
    *,
    lr: float = 1.0,
    beta2: float = 0.999,
    kwargs: dict | None = None,
    samples: int = SAMPLES,
) -> ScheduleCurve:
    """The learning rate of schedule `name` at about `samples` steps of 0..T plus its key steps (warmup end, every
    restart, a `wsd` decay's start, T, and the step before each), so that 10^9 steps cost no more than 10^3. The
    schedules of hf_lrsched are laid out without torch."""
    from .preview import preview_scheduler

    scheduler = preview_scheduler(
        name, num_warmup_steps, num_training_steps, lr=lr, betas=(0.9, beta2), **(kwargs or {})
    )
    return _sample(name, scheduler, num_training_steps, lr, samples, num_warmup_steps, kwargs or {})


def _sample(name, scheduler, total: int, lr: float, samples: int, num_warmup_steps=None, kwargs=None) -> ScheduleCurve:
    from .stages import StagedSchedule

    lr_lambda = scheduler.lr_lambdas[0]
    stages: list[tuple[int, str]] = []
    phases: list[tuple[int, str]] = []
    decay_start = None
    if isinstance(scheduler, StagedSchedule):
        from .schedule_info import describe

        info = describe(scheduler)
        warmup: int | None = info.stages[-1]["start"] + info.num_warmup_steps
        restarts = list(itertools.islice(info.iter_restarts(), MAX_RESTARTS))
        num_restarts = info.num_cycles - 1
        stages = [(stage["start"], stage["name"] or "unknown") for stage in info.stages[1:]]
        decay_start = info.decay_start
        if info.name == "phases":
            phases = [(phase["start"], phase["shape"]) for phase in info.phases if phase["steps"] > 0]
    else:
        warmup = num_warmup_steps if isinstance(num_warmup_steps, int) else None
        restarts, num_restarts = _find_restarts(name, lr_lambda, total, warmup or 0, kwargs or {})
    stride = max(1, total // samples)
    sampled = set(range(0, total + 1, stride)) | {total}
    for key in [warmup or 0, *restarts, *(start for start, _ in stages), *([decay_start] if decay_start else [])]:
        sampled |= {key - 1, key}
    # Cycles shorter than the stride would alias (a few points per cycle, at drifting phases): with every sample,
    # the ends and peaks of its own cycle and of the next, so that between two samples the lowest and the highest
    # rate are sampled too, however many cycles there are (a plot then draws their envelope: `hf_lrsched.plot`).
    if isinstance(scheduler, StagedSchedule):
        sampled |= _cycle_extremes_of_ours(info, sorted(sampled))
    elif name == "cosine_with_restarts" and num_restarts:
        sampled |= _cycle_extremes_equal(sorted(sampled), warmup or 0, total, num_restarts + 1)
    steps = sorted(s for s in sampled if 0 <= s <= total)
    curve = ScheduleCurve(name, steps, [lr * lr_lambda(s) for s in steps], total, warmup, restarts, num_restarts)
    curve.stages, curve.decay_start, curve.phases = stages, decay_start, phases
    return curve


def _cycle_extremes_of_ours(info, steps: list[int]) -> set[int]:
    """For each step in a `restarts` phase: the last step, the first step and the peak (after the restart's warmup)
    of its cycle and of the next one. Peaks only fall and cycles only grow (`cycle_decay <= 1`, `cycle_mult >= 1`),
    so between two such steps the highest rate is the first peak after the first and the lowest the last trough
    before the second: both are in the set."""
    extra: set[int] = set()
    for offset, cycles in info._cycles:
        rise = cycles.restart_warmup_steps
        for step in steps:
            tau = step - offset
            if not 0 <= tau < cycles.decay_steps:
                continue
            index, start, end = cycles.locate(tau)
            extra |= {offset + start - 1, offset + start, offset + start + (rise if index else 0)}
            extra |= {offset + end - 1, offset + end, offset + end + rise}
    return extra


def _cycle_extremes_equal(steps: list[int], warmup: int, total: int, cycles: int) -> set[int]:
    """`_cycle_extremes_of_ours` for `transformers`' `cosine_with_restarts`: `cycles` equal cycles after the warmup,
    cycle `i` starting at `warmup + ceil(i * (total - warmup) / cycles)`."""
    decay = total - warmup
    if decay <= 0:
        return set()
    extra: set[int] = set()
    for step in steps:
        if step < warmup:
            continue
        index = min((step - warmup) * cycles // decay, cycles - 1)
        for i in (index, index + 1):
            start = warmup - (-i * decay // cycles)
            extra |= {start - 1, start}
    return extra


def _find_restarts(name: str, lr_lambda, total: int, warmup: int, kwargs: dict) -> tuple[list[int], int]:
    """Restarts of a schedule that is not ours: steps where the rate jumps up, after warmup; at most
    `MAX_RESTARTS` of them, and how many there are in all.

    A jump is a rise, in one step, by more than a quarter of the rate's range: a smooth rise (a cosine with two
    cycles) is not a restart. `transformers`' `cosine_with_restarts` is searched near its known cycle starts (the
    first `MAX_RESTARTS` of them: it has `num_cycles - 1`); any other schedule is scanned step by step when it is
    short enough, and reports none otherwise.
    """
    cycles = 0
    if name == "cosine_with_restarts":
        cycles = int(kwargs.get("num_cycles", 1))
        near: set[int] = set()
        for i in range(1, min(cycles, MAX_RESTARTS + 2)):
            center = warmup - (-i * (total - warmup) // cycles)  # warmup + ceil(i * (T - W) / cycles), exactly
            near |= set(range(center - 2, center + 3))
        candidates = sorted(t for t in near if warmup + 1 <= t < total)
    elif total <= SCAN_LIMIT:
        candidates = list(range(warmup + 1, total))
    else:
        return [], 0
    if not candidates:
        return [], 0
    sample = [lr_lambda(t) for t in range(0, total + 1, max(1, total // SAMPLES))]
    threshold = 0.25 * (max(sample) - min(sample))
    found = [t for t in candidates if threshold > 0 and lr_lambda(t) - lr_lambda(t - 1) > threshold]
    count = cycles - 1 if len(found) > MAX_RESTARTS else len(found)
    return found[:MAX_RESTARTS], count


def draw_text(curve: ScheduleCurve, width: int = 64, height: int = 12) -> str:
    """The curve drawn in characters, with `^` under the end of warmup, `R` under each restart, `D` under a `wsd`
    decay's start and `S` under the first step of each new stage. A curve with more cycles than a fifth of the
    columns is drawn as its envelope: each column from its lowest to its highest rate, its restarts unmarked (one
    point per column would draw a pattern the schedule does not have)."""
    T, top = curve.num_training_steps, max(curve.lrs) or 1.0
    grid = [[" "] * width for _ in range(height)]
    dense = curve.num_restarts + 1 > width / 5
    low, high = [math.inf] * width, [-math.inf] * width  # each column's lowest and highest sampled rate
    if dense:
        for step, lr in zip(curve.steps, curve.lrs):
            c = round(step * (width - 1) / T)
            low[c], high[c] = min(low[c], lr), max(high[c], lr)
    for column in range(width):
        if low[column] <= high[column]:
            first = round((1 - high[column] / top) * (height - 1))
            last = round((1 - low[column] / top) * (height - 1))
            for row in range(first, last + 1):
                grid[row][column] = "*"
            continue
        step = round(column * T / (width - 1))
        row = round((1 - curve.lr_at(step) / top) * (height - 1))
        grid[row][column] = "*"
    axis = [" "] * width
    if curve.num_warmup_steps:
        axis[round(curve.num_warmup_steps * (width - 1) / T)] = "^"
    for step in [] if dense else curve.restarts:
        axis[round(step * (width - 1) / T)] = "R"
    if curve.decay_start is not None and curve.decay_start < T:
        axis[round(curve.decay_start * (width - 1) / T)] = "D"
    for step, _ in curve.stages:
        axis[round(step * (width - 1) / T)] = "S"
    label_top, label_bottom = f"{top:.3g}", f"{min(curve.lrs):.3g}"
    pad = max(len(label_top), len(label_bottom))
    lines: list[str] = []
    for r, cells in enumerate(grid):
        label = label_top if r == 0 else label_bottom if r == height - 1 else ""
        lines.append(f"{label:>{pad}} |{''.join(cells)}")
    lines.append(f"{'':>{pad}} +{'-' * width}")
    lines.append(f"{'':>{pad}}  {''.join(axis)}")
    lines.append(f"{'':>{pad}}  0{T!s:>{width - 1}}")
    if dense:
        lines.append(
            f"{curve.num_restarts + 1:,} cycles: too many to draw at this width; each column spans its lowest to "
            "highest rate."
        )
    return "\n".join(lines)


def draw_table(curve: ScheduleCurve) -> str:
    rows = [("step", "", "learning rate")] + [(str(s), what, f"{curve.lr_at(s):.6g}") for s, what in curve.key_steps()]
    if curve.num_restarts > len(curve.restarts):
        rows.append(("...", f"{curve.num_restarts - len(curve.restarts)} more restarts", ""))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:>{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}" for a, b, c in rows)


def draw_png(curves: list[ScheduleCurve], path: str, *, title: str | None = None) -> None:
    """The curves overlaid in one PNG (see `hf_lrsched.plot.plot_lr_curves`); a branch only from its branch point."""
    from .plot import Curve, plot_lr_curves

    lines = []
    for curve in curves:
        if curve.branch is not None:  # only its own part: before the branch point it is the trunk
            start = bisect.bisect_left(curve.steps, curve.branch[0])
            lines.append(Curve(curve.name, curve.steps[start:], curve.lrs[start:], dashed=True))
        else:
            stages = [step for step, _ in curve.stages]
            cycles = curve.num_restarts + 1 if curve.num_restarts else None
            lines.append(
                Curve(
                    curve.name,
                    curve.steps,
                    curve.lrs,
                    curve.num_warmup_steps,
                    curve.restarts,
                    stages=stages,
                    num_cycles=cycles,
                )
            )
    plot_lr_curves(lines, path, title=title)


def _warmup(args) -> int | str:
    """The warmup of `--num-warmup-steps` (steps or 'auto') or `--warmup-ratio` (a ratio), read by the library's
    one rule (`resolve_num_warmup_steps`), each flag taking its own kind so that the two cannot be confused."""
    from .warmup import _resolve_warmup

    if args.warmup_ratio is not None:
        return _resolve_warmup(
            args.warmup_ratio,
            args.num_training_steps,
            option="--warmup-ratio",
            kinds=("ratio",),
            hint=" (--num-warmup-steps takes steps or 'auto')",
        )
    return _resolve_warmup(
        args.num_warmup_steps,
        args.num_training_steps,
        option="--num-warmup-steps",
        kinds=("steps", "auto"),
        hint=" (--warmup-ratio takes a ratio)",
    )


def _curves(args) -> list[ScheduleCurve]:
    if args.state is not None:
        return _state_curves(args.state)
    from .registry import check_reserved_schedule_kwargs, check_schedule_name, parse_schedule_kwargs

    for name in args.names:  # every name, before any is drawn (a name of transformers' imports torch)
        check_schedule_name(name)
    kwargs_list = [parse_schedule_kwargs(k, "--kwargs") for k in args.kwargs] if args.kwargs else [{}]
    for kwargs in kwargs_list:
        check_reserved_schedule_kwargs(kwargs, "--kwargs", command_line=True)
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ValueError(f"`--lr` must be a finite number > 0, got {args.lr}.")
    if len(kwargs_list) == 1:
        kwargs_list = kwargs_list * len(args.names)
    if len(kwargs_list) != len(args.names):
        raise ValueError(
            f"Give `--kwargs` once (for every schedule) or once per schedule: {_count(len(args.names), 'schedule')}, "
            f"{_count(len(kwargs_list), '--kwargs', '--kwargs')}."
        )
    warmup = _warmup(args)
    curves = []
    for name, kwargs in zip(args.names, kwargs_list):
        curves.append(
            compute_curve(name, warmup, args.num_training_steps, lr=args.lr, beta2=args.beta2, kwargs=kwargs)
        )
        if args.branch_at is not None:
            curves.append(_branch(args, name, kwargs, warmup))
    return curves


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _state_curves(path: str) -> list[ScheduleCurve]:
    """One curve per param group of the run that a saved scheduler state records (`scheduler.pt`, or a checkpoint
    folder holding one): every stage, at the groups' own rates."""
    import torch  # a `.pt` file is torch's

    from .stages import PlannedSchedule

    if os.path.isdir(path):
        path = os.path.join(path, "scheduler.pt")
    if not os.path.isfile(path):
        raise ValueError(f"`--state` {path!r}: no such file (a scheduler.pt, or a checkpoint folder holding one).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"`--state` {path!r} is not a readable scheduler state ({error}).") from None
    record = state.get("_schedule") if isinstance(state, dict) else None
    if record is None:
        raise ValueError(f"`--state` {path!r} records no hf_lrsched schedule (another scheduler saved it).")
    run = PlannedSchedule.from_record(record)
    last = run.stages[-1]
    total = last["start"] + last["options"]["num_training_steps"]
    steps_taken = state.get("last_epoch")
    _STATE_SUMMARY[path] = _state_summary(run, steps_taken)
    curves = []
    for group, base in enumerate(run.base_lrs):
        one = PlannedSchedule.from_record(record)
        one.lr_lambdas = [run.lr_lambdas[group]]
        curve = _sample(last["name"], one, total, 1.0, SAMPLES)
        curve.lrs = [base * lr for lr in curve.lrs]
        curve.name = f"{last['name']}, param group {group}" if len(run.base_lrs) > 1 else last["name"]
        curve.name += f" (saved at step {steps_taken})"
        curves.append(curve)
    return curves


_STATE_SUMMARY: dict[str, str] = {}


def _state_summary(run, steps_taken) -> str:
    """The stages and the param groups (base rate, floor, start) of a recorded run, as `show --state` prints them."""
    from .schedule_info import describe

    info = describe(run)
    lines = [f"saved at step {steps_taken}; stages:"]
    for stage in info.stages:
        options = stage["options"]
        if stage["name"] is None:
            lines.append(f"  from step {stage['start']}: not recorded (a scheduler that is not hf_lrsched's)")
        else:
            lines.append(
                f"  from step {stage['start']}: {stage['name']} over {options['num_training_steps']} steps, "
                f"warmup {options['num_warmup_steps']}"
            )
    lines.append("param groups:")
    rows = [("group", "base lr", "floor", "start", "ramp")]
    for index, group in enumerate(info.groups):
        name = group.get("name") or str(index)
        rows.append(
            (
                name,
                f"{group['base_lr']:.6g}",
                f"{group['floor']:.6g}",
                str(group["start_step"]),
                str(group["warmup_steps"]),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines += ["  " + "  ".join(f"{cell:>{width}}" for cell, width in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def _branch(args, name: str, kwargs: dict, warmup) -> ScheduleCurve:
    """A cooldown of `--branch-steps` steps branched from the `wsd` trunk at `--branch-at`: a run resumed from the
    trunk's checkpoint at that step with `num_training_steps = k + D` and `num_decay_steps = D`, checked to be a
    valid resume (the same rates before the branch)."""
    if args.branch_steps is None:
        raise ValueError("`--branch-at` needs `--branch-steps D`, the length of the branch's cooldown.")
    if name != "wsd":
        raise ValueError(
            f"`--branch-at` draws a cooldown branched from a wsd trunk; {name!r} is not wsd (its past "
            "depends on its length, so no branch of it is a valid resume)."
        )
    from .preview import preview_scheduler
    from .stages import StagedSchedule, check_resume_identity

    at, steps = args.branch_at, args.branch_steps  # in range: see `_check_steps`
    options = {k: v for k, v in kwargs.items() if k not in ("decay_ratio", "num_decay_steps")}
    options["num_decay_steps"] = steps
    betas = (0.9, args.beta2)
    trunk = preview_scheduler(name, warmup, args.num_training_steps, lr=args.lr, betas=betas, **kwargs)
    branch = preview_scheduler(name, warmup, at + steps, lr=args.lr, betas=betas, **options)
    assert isinstance(trunk, StagedSchedule) and isinstance(branch, StagedSchedule)  # wsd is one of ours
    try:
        check_resume_identity(trunk._record(), branch, at)  # phase by phase: no walk over the steps
    except ValueError as error:
        raise ValueError(f"`--branch-at {at}`: not a valid branch of this trunk. {error}") from None
    curve = compute_curve(name, warmup, at + steps, lr=args.lr, beta2=args.beta2, kwargs=options)
    curve.name = f"{name}, branched at step {at}: cooldown of {steps} steps"
    curve.branch = (at, steps)
    return curve


def _cmd_list(args) -> None:
    from .registry import available_schedules, schedule_description

    names = available_schedules()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {schedule_description(name)}")


def _check_steps(args) -> None:
    """The step counts, checked before anything is imported or computed."""
    if args.state is not None:
        if args.names or args.kwargs or args.branch_at is not None or args.num_training_steps is not None:
            raise ValueError(
                "`--state` draws the run a saved scheduler state records (its stages, its length, its param groups): "
                "give no NAME, --kwargs, --num-training-steps or --branch-at with it."
            )
        return
    if not args.names:
        raise ValueError("Give the name of at least one schedule (see `hf-lrsched list`), or `--state FILE`.")
    if args.num_training_steps is None:
        raise ValueError("`--num-training-steps` is required (the total number of optimizer steps T).")
    if not 1 <= args.num_training_steps <= MAX_STEPS:
        raise ValueError(
            f"`--num-training-steps` must be an integer in [1, 2**53 = {MAX_STEPS}] (steps beyond are not exact as "
            f"floats), got {args.num_training_steps}."
        )
    if args.branch_at is None:
        return
    at, steps = args.branch_at, args.branch_steps
    if steps is None:
        raise ValueError("`--branch-at` needs `--branch-steps D`, the length of the branch's cooldown.")
    if at < 1 or steps < 1:
        raise ValueError(f"`--branch-at` and `--branch-steps` must be >= 1, got {at} and {steps}.")
    if at > args.num_training_steps:
        raise ValueError(
            f"`--branch-at` must be a step of the trunk, in [1, {args.num_training_steps}] "
            f"(--num-training-steps), got {at}."
        )
    if at + steps > MAX_STEPS:
        raise ValueError(f"`--branch-at` + `--branch-steps` must be at most 2**53 = {MAX_STEPS}, got {at + steps}.")


def _cmd_show(args) -> None:
    for option, most in (("width", MAX_WIDTH), ("height", MAX_HEIGHT)):
        if not 2 <= getattr(args, option) <= most:
            raise ValueError(
                f"`--{option}` must be at least 2 and at most {most} characters, got {getattr(args, option)}."
            )
    _check_steps(args)
    curves = _curves(args)
    if args.state is not None:
        print(next(iter(_STATE_SUMMARY.values())))
        print()
    for i, curve in enumerate(curves):
        if i:
            print()
        warmup = curve.num_warmup_steps or 0
        if curve.num_restarts > 8:
            restarts = f"{curve.num_restarts} restarts, the first at {', '.join(map(str, curve.restarts[:5]))}, ..."
        else:
            restarts = f"restarts at {curve.restarts}" if curve.restarts else "no restarts"
        print(f"{curve.name}: {curve.num_training_steps} steps, warmup {warmup}, {restarts}")
        print(draw_text(curve, width=args.width, height=args.height))
        print()
        print(draw_table(curve))


def _cmd_plot(args) -> None:
    _check_output(args.output)
    _check_steps(args)
    curves = _curves(args)
    draw_png(curves, args.output, title=args.title)
    print(f"wrote {args.output}: {', '.join(c.name for c in curves)}")


def _check_output(path: str) -> None:
    """`-o` must name a file (new or regular) in an existing, writable directory, or a character device or a pipe
    to write into (`/dev/null`, `/dev/stdout`), with a suffix that names an image format: say so before any work."""
    import stat

    from .plot import figure_format

    if not path:
        raise ValueError("`--output` is empty: give a file name, such as 'lr.png'.")
    if os.path.isdir(path):
        raise ValueError(
            f"`--output` {path!r} is a directory; give a file name such as {os.path.join(path, 'lr.png')!r}."
        )
    target = os.path.realpath(path)
    if os.path.exists(target) and not os.path.isfile(target):
        mode = os.stat(target).st_mode
        if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
            raise ValueError(f"`--output` {path!r} is not a regular file, a character device or a pipe.")
        if not os.access(target, os.W_OK):
            raise ValueError(f"`--output` {path!r} is not writable.")
    else:
        folder = os.path.dirname(target)
        if not os.path.exists(folder):
            raise ValueError(f"`--output` {path!r}: the directory {folder!r} does not exist.")
        if not os.path.isdir(folder):
            raise ValueError(f"`--output` {path!r}: {folder!r} is a file, not a directory.")
        if not os.access(folder, os.W_OK):
            raise ValueError(f"`--output` {path!r}: the directory {folder!r} is not writable.")
    try:
        figure_format(path)
    except ValueError as error:
        raise ValueError(f"`--output` {error}") from None


def _schedule_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", metavar="NAME", help="schedule name(s); see `hf-lrsched list`")
    parser.add_argument("--num-training-steps", type=int, metavar="N", help="total optimizer steps T (required)")
    parser.add_argument(
        "--state",
        metavar="FILE",
        help="draw the run a saved scheduler state records instead (a scheduler.pt, or a checkpoint folder): every "
        "stage, every param group's rate",
    )
    warmup = parser.add_mutually_exclusive_group()
    warmup.add_argument(
        "--num-warmup-steps",
        default="0",
        metavar="W",
        help="warmup steps, or 'auto' to derive them from Adam's beta2 (default 0)",
    )
    warmup.add_argument("--warmup-ratio", metavar="R", help="warmup as a ratio of T in [0, 1): ceil(R * T) steps")
    parser.add_argument(
        "--kwargs",
        action="append",
        metavar="JSON",
        help="the schedule's options as a JSON object; once for all, or once per NAME in order",
    )
    parser.add_argument("--lr", type=float, default=1.0, help="base learning rate (default 1: the multiplier)")
    parser.add_argument("--beta2", type=float, default=0.999, help="Adam's beta2, for 'auto' warmup (default 0.999)")
    parser.add_argument(
        "--branch-at",
        type=int,
        metavar="K",
        help="wsd: also draw a cooldown branched from the trunk at step K (with --branch-steps)",
    )
    parser.add_argument("--branch-steps", type=int, metavar="D", help="wsd: the branch's cooldown length in steps")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="hf-lrsched", description="Learning-rate schedules for Transformers.")
    parser.add_argument("--version", action="version", version=f"hf-lrsched {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every available schedule with a one-line description").set_defaults(func=_cmd_list)
    show = sub.add_parser("show", help="draw schedules in the terminal, with a table of the key steps")
    _schedule_options(show)
    show.add_argument("--width", type=int, default=64, help="plot width in characters")
    show.add_argument("--height", type=int, default=12, help="plot height in lines")
    show.set_defaults(func=_cmd_show)
    plot = sub.add_parser("plot", help="draw schedules into a PNG, PDF or SVG (needs matplotlib)")
    _schedule_options(plot)
    plot.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE.png",
        help="where to write the image, in the format its suffix names (.png, .pdf, .svg, ...; PNG without one)",
    )
    plot.add_argument("--title", help="the plot's title")
    plot.set_defaults(func=_cmd_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except BrokenPipeError:  # `hf-lrsched show ... | head`: the reader has what it wanted
        sys.stderr.close()
        return 0
    except (ValueError, TypeError, RuntimeError, OSError) as error:  # the library's own message, no traceback
        print(f"hf-lrsched: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
