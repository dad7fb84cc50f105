"""The cost of a schedule: `scheduler.step()` per optimizer step, building a scheduler, previewing a whole curve.

Each hf_lrsched schedule against `transformers`' `get_cosine_schedule_with_warmup` (the reference of every ratio)
and `get_cosine_with_hard_restarts_schedule_with_warmup`, and `torch`'s `CosineAnnealingWarmRestarts`; with 1 and 4
param groups; at step counts 10^3 to 10^6, each measured near the end of training, so that a cost growing with the
step index or the number of cycles would show. One process, the schedulers interleaved round by round: the median
time over the rounds, and the median over the rounds of each round's ratio to `transformers`' cosine (a ratio of two
times taken back to back cancels the machine's drift between rounds).

    python benchmarks/overhead.py            # about 2 minutes on 2 cores
    python benchmarks/overhead.py --quick    # a few seconds: the smoke test's setting

Writes `benchmarks/results/overhead.{md,json}` (`--out-dir` to change).
"""

from __future__ import annotations

import argparse
import gc
import time
import warnings
from pathlib import Path

import torch
from transformers import get_cosine_schedule_with_warmup, get_cosine_with_hard_restarts_schedule_with_warmup

from hf_lrsched import get_schedule, schedule_multipliers

from common import RESULTS, command_line, machine, machine_line, markdown_table, median, write


def optimizer(groups: int) -> torch.optim.Optimizer:
    return torch.optim.AdamW([{"params": [torch.nn.Parameter(torch.zeros(1))]} for _ in range(groups)], lr=1e-3)


def factories(total: int) -> dict:
    """name -> function(optimizer) building the scheduler for `total` steps (warmup 1%)."""
    warmup = total // 100
    return {
        "transformers cosine": lambda o: get_cosine_schedule_with_warmup(o, warmup, total),
        "transformers hard restarts (3)": lambda o: get_cosine_with_hard_restarts_schedule_with_warmup(
            o, warmup, total, num_cycles=3
        ),
        "torch CosineAnnealingWarmRestarts": lambda o: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            o, T_0=max(total // 100, 1), T_mult=2
        ),
        "warmup_cosine": lambda o: get_schedule("warmup_cosine", o, warmup, total, min_lr_ratio=0.1),
        "exponential_warmup_cosine": lambda o: get_schedule("exponential_warmup_cosine", o, warmup, total),
        "growing restarts, 3 cycles": lambda o: get_schedule(
            "cosine_with_growing_restarts", o, warmup, total, num_cycles=3, cycle_decay=0.8, restart_warmup_steps=5
        ),
        "growing restarts, first 10 steps, r=1.0001": lambda o: get_schedule(
            "cosine_with_growing_restarts", o, warmup, total, first_cycle_steps=10, cycle_mult=1.0001
        ),
        "wsd, 1-sqrt decay over the last 20%": lambda o: get_schedule(
            "wsd", o, warmup, total, decay_ratio=0.2, decay_type="1-sqrt", min_lr_ratio=0.01
        ),
        "phases, 10 phases": lambda o: get_schedule("phases", o, warmup, total, phases=TEN_PHASES, min_lr_ratio=0.01),
    }


# Ten phases of every kind but restarts, laid over the decay: the cost of finding a step's phase among many.
TEN_PHASES = [
    {"shape": "constant", "ratio": 0.09},
    {"shape": "linear", "ratio": 0.09, "to": 0.8},
    {"shape": "cosine", "ratio": 0.09, "to": 0.5},
    {"shape": "linear", "ratio": 0.09, "to": 1.0},
    {"shape": "1-sqrt", "ratio": 0.09, "to": 0.6},
    {"shape": "power", "p": 0.4, "ratio": 0.09, "to": 0.3},
    {"shape": "exponential", "ratio": 0.09, "from": 0.9, "to": 0.2},
    {"shape": "rex", "ratio": 0.09, "from": 1.0, "to": 0.4},
    {"shape": "constant", "ratio": 0.09},
    {"shape": "cosine"},
]


def position(scheduler, step: int) -> None:
    """Move a scheduler to `step` without stepping through the ones before."""
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts):
        scheduler.step(step)  # computes its cycle from the epoch, with a logarithm
    else:
        scheduler.last_epoch = step


def time_steps(scheduler, start: int, count: int) -> float:
    """Seconds per `scheduler.step()` over `count` steps from `start`."""
    position(scheduler, start)
    step = scheduler.step
    gc.disable()  # a collection inside one timing would charge its cost to whichever scheduler it fell on
    try:
        tic = time.perf_counter()
        for _ in range(count):
            step()
        return (time.perf_counter() - tic) / count
    finally:
        gc.enable()


def bench_steps(totals, groups_list, rounds: int, count: int) -> list[dict]:
    rows = []
    for groups in groups_list:
        for total in totals:
            builders = factories(total)
            opt = optimizer(groups)
            schedulers = {name: build(opt) for name, build in builders.items()}
            steps = min(count, total // 2)
            start = total - steps - 1  # the last steps of training: the most cycles, the largest step index
            samples = {name: [] for name in schedulers}
            for _ in range(rounds):  # interleaved: every scheduler once per round
                for name, scheduler in schedulers.items():
                    samples[name].append(time_steps(scheduler, start, steps))
            # Each round times every scheduler back to back, so the ratio of two times of one round cancels the
            # machine's drift (a 2-core VM moves by 10-20% between rounds); the median over rounds is reported.
            reference = samples["transformers cosine"]
            for name, times in samples.items():
                rows.append(
                    {
                        "groups": groups,
                        "steps": total,
                        "schedule": name,
                        "us_per_step": median(times) * 1e6,
                        "ratio": median([t / ref for t, ref in zip(times, reference)]),
                    }
                )
    return rows


# Configurations at the edge of what construction must handle without scanning cycles (docs/schedules/math.md, "Exact means
# exact"): millions of fitted cycles, r a hair above 1, and a fit whose validation has to bisect a long band.
EXTREME_BUILDS = {
    "growing restarts, 10^7 cycles, r=1+1e-12, T=1.5e7": lambda o: get_schedule(
        "cosine_with_growing_restarts", o, 0, 15_000_000, num_cycles=10**7, cycle_mult=1 + 1e-12
    ),
    "growing restarts, 10^6 cycles, r=1.0000001, R=1, T=10^9": lambda o: get_schedule(
        "cosine_with_growing_restarts", o, 0, 10**9, num_cycles=10**6, cycle_mult=1.0000001, restart_warmup_steps=1
    ),
    "growing restarts, 30 cycles, r=1+1e-9, T=10^9": lambda o: get_schedule(
        "cosine_with_growing_restarts", o, 0, 10**9, num_cycles=30, cycle_mult=1 + 1e-9
    ),
    "growing restarts, 40 cycles, r=2, T=10^12": lambda o: get_schedule(
        "cosine_with_growing_restarts", o, 0, 10**12, num_cycles=40, cycle_mult=2.0
    ),
}


def bench_build(rounds: int) -> list[dict]:
    total = 10**6
    rows = []
    for name, build in {**factories(total), **EXTREME_BUILDS}.items():
        times = []
        for _ in range(rounds):
            opt = optimizer(1)
            tic = time.perf_counter()
            build(opt)
            times.append(time.perf_counter() - tic)
        rows.append({"schedule": name, "us_to_build": median(times) * 1e6})
    return rows


CURVES = (
    ("warmup_cosine", {}),
    ("exponential_warmup_cosine", {}),
    ("cosine_with_growing_restarts", {"num_cycles": 5}),
    ("cosine_with_growing_restarts", {"first_cycle_steps": 10, "cycle_mult": 1.0001}),
    ("wsd", {"decay_ratio": 0.2, "decay_type": "1-sqrt"}),
    ("phases", {"phases": TEN_PHASES, "min_lr_ratio": 0.01}),
    ("cosine", {}),
)


def bench_curve(total: int, rounds: int) -> list[dict]:
    rows = []
    for name, kwargs in CURVES:
        times = []
        for _ in range(rounds):
            tic = time.perf_counter()
            schedule_multipliers(name, total // 100, total, **kwargs)
            times.append(time.perf_counter() - tic)
        label = name + (
            f" ({', '.join(f'{k}={v}' for k, v in kwargs.items())})" if name != "phases" and kwargs else ""
        )
        rows.append(
            {"schedule": label if name != "phases" else "phases, 10 phases", "steps": total, "seconds": median(times)}
        )
    return rows


def bench_resume_check(total: int, rounds: int) -> list[dict]:
    """A `wsd` run grown in its stable phase, resumed at the last stable step with 2 param groups: the resume check
    compares the two runs phase by phase, so its cost does not grow with the steps taken."""
    rows = []
    for steps in (total // 100, total):
        times = []
        for _ in range(rounds):
            trunk = get_schedule("wsd", optimizer(2), steps // 100, steps, num_decay_steps=steps // 10)
            trunk.last_epoch = steps - steps // 10  # the last step of the stable phase
            state = trunk.state_dict()
            grown = get_schedule("wsd", optimizer(2), steps // 100, 2 * steps, num_decay_steps=steps // 10)
            tic = time.perf_counter()
            grown.load_state_dict(state)
            times.append(time.perf_counter() - tic)
        rows.append({"steps_taken": steps - steps // 10, "seconds": median(times)})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for the smoke test")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step()` before")
    if args.quick:
        totals, rounds, count, curve_steps = [10**3], 2, 50, 10**3
    else:
        totals, rounds, count, curve_steps = [10**3, 10**4, 10**5, 10**6], 15, 2000, 10**6
    data = {
        "machine": machine(),
        "command": command_line(),
        "steps": bench_steps(totals, [1, 4], rounds, count),
        "build": bench_build(max(rounds, 5) * 5),
        "curve": bench_curve(curve_steps, 3 if not args.quick else 1),
        "resume_check": bench_resume_check(3 * curve_steps, 3 if not args.quick else 1),
    }
    step_rows = [
        [r["groups"], f"{r['steps']:,}", r["schedule"], f"{r['us_per_step']:.2f}", f"{r['ratio']:.2f}"]
        for r in data["steps"]
    ]
    worst = {}
    for r in data["steps"]:
        if r["schedule"] not in ("transformers cosine",):
            worst[r["schedule"]] = max(worst.get(r["schedule"], 0.0), r["ratio"])
    markdown = "\n\n".join(
        [
            "### Scheduler overhead",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}. "
            f"`scheduler.step()` timed over the last {count:,} steps of training (the last half for 1,000 steps), "
            f"{rounds} interleaved rounds: the median time, and the median of each round's ratio to `transformers`' "
            "cosine at the same size, timed back to back in that round (1.00 = the same cost).",
            markdown_table(["param groups", "training steps", "schedule", "us per step", "ratio"], step_rows),
            "Worst ratio over all rows: " + ", ".join(f"{name} {ratio:.2f}" for name, ratio in worst.items()) + ".",
            "Building a scheduler (median; 10^6 steps unless the name says otherwise; construction never scans the cycles):",
            markdown_table(
                ["schedule", "us to build"], [[r["schedule"], f"{r['us_to_build']:.0f}"] for r in data["build"]]
            ),
            f"A whole {curve_steps:,}-step curve for a preview (`schedule_multipliers`, median of 3):",
            markdown_table(["schedule", "seconds"], [[r["schedule"], f"{r['seconds']:.3f}"] for r in data["curve"]]),
            "The resume check of a `wsd` run grown in its stable phase (2 param groups, resumed at its last stable "
            "step; median of 3):",
            markdown_table(
                ["steps taken", "seconds"],
                [[f"{r['steps_taken']:,}", f"{r['seconds']:.4f}"] for r in data["resume_check"]],
            ),
        ]
    )
    write("overhead", data, markdown, args.out_dir)
    return data


if __name__ == "__main__":
    main()
