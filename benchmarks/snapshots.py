"""What restarts buy: a good model at the end of every cycle, and snapshot ensembles for the price of one run.

SGDR (Loshchilov & Hutter 2017) gives a usable model at the end of every cycle; ensembling those snapshots (Huang et
al. 2017, "Snapshot Ensembles: Train 1, get M for free") may beat the single final model. hf_lrsched knows its
restart steps exactly, so `examples/glue_snapshots.py` saves exactly those models. Measured here on the
packaged MiniLM-L6 BERT fine-tuned on BBC News (the seeded 80/20 split of `examples/glue.py`), through
`examples/glue_snapshots.py` (and `glue.py` for the baseline) launched as users launch them, for each seed:

- `cosine_with_growing_restarts` (3 cycles, `cycle_mult=2`) with `--save_snapshots`: held-out accuracy, negative
  log-likelihood and expected calibration error (ECE, 15 bins) of each snapshot (the last is the final model), and
  of the ensembles (mean of the softmax outputs) of the last 2 and the last 3 snapshots;
- `warmup_cosine` with the same budget, the single final model;
- anytime performance: `warmup_cosine` runs as long as each earlier cycle end, against the snapshot there.

Every run: batch 16, 128 tokens, peak rate 1e-4, warmup 4 steps, a budget of 60 optimizer steps (`benchmarks/
quality.py` measured 0.91 held-out accuracy at 30 steps and 0.97 at 107, so 60 steps are not at the ceiling).

    python benchmarks/snapshots.py            # 3 seeds: about 20 minutes
    python benchmarks/snapshots.py --quick    # 1 seed, 12 steps
    python benchmarks/snapshots.py --replot   # only the figure, from benchmarks/results/snapshots.json

Each run's results are kept in `--work-dir` (default `benchmarks/results/snapshots_runs/`), so an interrupted
benchmark resumes where it stopped. Writes `benchmarks/results/snapshots.{md,json,png}`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
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
from runner import EXAMPLES, GLUE, cached_run

sys.path.insert(0, str(EXAMPLES))  # a script beside examples/: the ensemble exactly as glue_snapshots.py computes it
from glue_snapshots import ensemble_metrics

WARMUP = 4
RESTARTS = json.dumps({"num_cycles": 3, "cycle_mult": 2.0})


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=60)
    add_task_arguments(parser)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--replot", action="store_true", help="redraw snapshots.png from snapshots.json; run nothing")
    args = parser.parse_args(argv)
    if args.replot:
        data = json.loads((args.out_dir / "snapshots.json").read_text())
        plot(data["per_seed"], data["cycle_ends"], args.out_dir / "snapshots.png")
        return data
    seeds, steps = args.seeds, args.steps
    if args.quick:
        seeds, steps = seeds[:1], 12
    work = args.work_dir or args.out_dir / "snapshots_runs"
    common = task_arguments(args) + [
        "--per_device_train_batch_size",
        16,
        "--learning_rate",
        "1e-4",
        "--num_warmup_steps",
        WARMUP,
        "--max_length",
        args.max_length,
    ]
    start = time.time()

    def run(key: str, glue_args: list, script=None) -> dict:
        return cached_run(work, key, common + glue_args, start=start, script=script or GLUE)

    per_seed = []
    for seed in seeds:
        restarts = run(
            f"restarts-seed{seed}",
            [
                "--lr_schedule",
                "cosine_with_growing_restarts",
                "--lr_schedule_kwargs",
                RESTARTS,
                "--max_train_steps",
                steps,
                "--seed",
                seed,
            ],
            script=EXAMPLES / "glue_snapshots.py",
        )
        snaps = restarts["snapshots"]
        cosine = {
            s["step"]: run(
                f"cosine{s['step']}-seed{seed}",
                ["--lr_schedule", "warmup_cosine", "--max_train_steps", s["step"], "--seed", seed],
            )
            for s in snaps
        }
        per_seed.append(
            {
                "snapshots": [
                    {"step": s["step"], "accuracy": s["accuracy"], "nll": s["loss"], "ece": s["ece"]} for s in snaps
                ],
                # the snapshots' paths are relative to their run's output directory (an absolute one, cached by an
                # earlier version, is joined as it is)
                "ensemble_last_2": ensemble_metrics(snaps[-2:], str(work / f"restarts-seed{seed}")),
                "ensemble_last_3": ensemble_metrics(snaps[-3:], str(work / f"restarts-seed{seed}")),
                "cosine": {
                    str(step): {"accuracy": r["eval_accuracy"], "nll": r["eval_loss"], "ece": r["eval_ece"]}
                    for step, r in cosine.items()
                },
                "run_seconds": restarts["run_seconds"] + sum(r["run_seconds"] for r in cosine.values()),
            }
        )
    ends = [s["step"] for s in per_seed[0]["snapshots"]]
    elapsed = sum(p["run_seconds"] for p in per_seed)

    def column(get) -> list[str]:
        return [mean_std([get(p)[metric] for p in per_seed]) for metric in ("accuracy", "nll", "ece")]

    rows = [
        [f"snapshot at step {step}" + (" (the final model)" if i == len(ends) - 1 else "")]
        + column(lambda p, i=i: p["snapshots"][i])
        for i, step in enumerate(ends)
    ]
    rows.append(["ensemble of the last 2 snapshots"] + column(lambda p: p["ensemble_last_2"]))
    rows.append(["ensemble of the last 3 snapshots"] + column(lambda p: p["ensemble_last_3"]))
    rows.append([f"warmup_cosine, {steps} steps (the final model)"] + column(lambda p: p["cosine"][str(steps)]))
    anytime = [
        [
            step,
            mean_std([p["snapshots"][i]["accuracy"] for p in per_seed]),
            mean_std([p["cosine"][str(step)]["accuracy"] for p in per_seed]),
        ]
        for i, step in enumerate(ends)
    ]
    data = {
        "machine": machine(),
        "command": command_line(),
        "seeds": seeds,
        "steps": steps,
        "cycle_ends": ends,
        "max_length": args.max_length,
        "wall_time_s": elapsed,
        "per_seed": per_seed,
    }
    markdown = "\n\n".join(
        [
            "### What restarts buy: snapshots and their ensembles",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: {len(seeds)} seeds ({seeds}), "
            f"{elapsed / 60:.0f} minutes of launches in all. MiniLM-L6 BERT on BBC News (1,700 training articles, 425 "
            f"held out), `examples/glue_snapshots.py` via `accelerate launch`, batch 16, {args.max_length} tokens, peak rate 1e-4, "
            f"warmup {WARMUP} steps, {steps} optimizer steps. `cosine_with_growing_restarts` with 3 cycles "
            f"(`cycle_mult=2`) and `--save_snapshots`: a snapshot at each cycle end (steps {ends}). Held-out accuracy, "
            "negative log-likelihood (NLL) and expected calibration error (ECE, 15 bins); mean ± standard deviation over "
            "seeds; an ensemble averages its snapshots' softmax outputs.",
            markdown_table(["model", "accuracy", "NLL", "ECE"], rows),
            "Anytime performance: the snapshot at each cycle end against a `warmup_cosine` run of that length.",
            markdown_table(["steps", "snapshot (restarts)", "warmup_cosine of that length"], anytime),
            "![accuracy of each snapshot, the ensembles and cosine runs](snapshots.png)",
        ]
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(per_seed, ends, args.out_dir / "snapshots.png")
    write("snapshots", data, markdown, args.out_dir)
    return data


def plot(per_seed: list[dict], ends: list[int], path: Path) -> None:
    """Mean held-out accuracy at each cycle end: the snapshot, a `warmup_cosine` run of that length, and (at the
    last end) the two ensembles. The series are nearly equal, so each is drawn beside the step it belongs to, with
    its own marker shape, size and fill, and no marker hides another."""
    fig = new_figure()
    ax = fig.add_subplot()
    shift = (ends[-1] - ends[0]) / 60  # about 9 pixels: beside the step, not on another one
    snap = [statistics.mean(p["snapshots"][i]["accuracy"] for p in per_seed) for i in range(len(ends))]
    cos = [statistics.mean(p["cosine"][str(step)]["accuracy"] for p in per_seed) for step in ends]
    ax.plot(
        [e - shift for e in ends],
        snap,
        marker="o",
        markersize=9,
        linewidth=2,
        label="snapshot at each cycle end (growing restarts)",
    )
    ax.plot(
        [e + shift for e in ends],
        cos,
        marker="s",
        markersize=8,
        markerfacecolor="white",
        markeredgewidth=2,
        linestyle="--",
        linewidth=2,
        label="warmup_cosine run of that length",
    )
    for k, marker, offset, color in ((2, "^", 3, "C2"), (3, "v", 5, "C3")):
        ax.scatter(
            [ends[-1] + offset * shift],
            [statistics.mean(p[f"ensemble_last_{k}"]["accuracy"] for p in per_seed)],
            marker=marker,
            s=90,
            color=color,
            zorder=3,
            label=f"ensemble of the last {k} snapshots",
        )
    ax.set_xlabel("optimizer steps (each series beside its step)")
    ax.set_ylabel("held-out accuracy")
    ax.set_xticks(ends)
    save_figure(fig, ax, path, title="MiniLM on BBC News: snapshots, ensembles and cosine runs (mean over seeds)")


if __name__ == "__main__":
    main()
