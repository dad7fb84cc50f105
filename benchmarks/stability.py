"""What warmup buys: the band of peak learning rates that still train well, and the rate of failed seeds.

Warmup's main benefit is tolerating a larger peak rate (Kalra & Barkeshli 2024; Liu et al. 2019; Ma & Yarats 2019;
Mosbach et al. 2021 on failed BERT fine-tuning seeds). Measured here on the packaged MiniLM-L6 BERT fine-tuned on
BBC News (the seeded 80/20 split of `examples/glue.py`), for five schedules over a log grid of peak rates wide enough
to reach divergence, several seeds each:

- `constant` (no warmup), `transformers`' `linear`, `warmup_cosine` and `exponential_warmup_cosine`, each with a
  warmup of 10% of the steps, and `warmup_cosine` with `"auto"` warmup (AdamW's beta2 = 0.999 asks for 2,000 steps,
  capped here at `max_auto_warmup_ratio = 0.25`, i.e. a quarter of the budget);
- a short budget where the task is not at its ceiling: 32 optimizer steps of 16 articles, truncated to 64 tokens (the
  shorter sequences keep the 75 runs within about 30 minutes on 2 cores).

Reported per schedule: the best mean held-out accuracy over the grid; the usable band (the peak rates whose mean
accuracy is within 1 point of that schedule's best) and its max/min ratio; the failed-seed rate (accuracy at or below
the majority class's share); and a plot of accuracy against peak rate with every seed.

Runs in one process (the data tokenized once, the model reloaded from disk for each run), with the same training
step as `examples/glue.py`: AdamW (weight decay 0.01, not on biases and LayerNorm), the schedule stepped once per
optimizer step.

    python benchmarks/stability.py            # 5 schedules x 5 peak rates x 3 seeds: about 30 minutes
    python benchmarks/stability.py --quick    # 2 schedules x 2 rates x 1 seed, 4 steps

Each run's result is kept in `--work-dir` (default `benchmarks/results/stability_runs/`), so an interrupted sweep
resumes where it stopped. Writes `benchmarks/results/stability.{md,json,png}`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import torch

from hf_lrsched.plot import new_figure, save_figure

from common import RESULTS, command_line, machine, machine_line, markdown_table, write

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

SCHEDULES = {
    "constant (no warmup)": ("constant", 0.0, {}),
    "linear (transformers)": ("linear", 0.1, {}),
    "warmup_cosine": ("warmup_cosine", 0.1, {}),
    "exponential_warmup_cosine": ("exponential_warmup_cosine", 0.1, {}),
    "warmup_cosine (auto)": ("warmup_cosine", "auto", {"max_auto_warmup_ratio": 0.25}),
}
RATES = [3e-5, 1e-4, 3e-4, 1e-3, 3e-3]


class Task:
    """BBC News tokenized once, and a fresh MiniLM classifier for each run."""

    def __init__(self, max_length: int, model_path: str | None):
        from transformers import AutoTokenizer

        import glue_data

        self.model_path = model_path or glue_data.default_model("bbc_news")
        raw = glue_data.read_bbc_news(42)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.train = self.encode(raw["train"], max_length)
        self.eval = self.encode(raw["validation"], max_length)
        counts = torch.bincount(self.eval["labels"])
        self.majority = int(counts.max()) / int(counts.sum())  # exact: a run that predicts one class scores it

    def encode(self, split, max_length: int) -> dict:
        encoded = self.tokenizer(
            list(split["text"]), truncation=True, max_length=max_length, padding="max_length", return_tensors="pt"
        )
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": torch.tensor(list(split["label"])),
        }

    def model(self):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            self.model_path, num_labels=5, ignore_mismatched_sizes=True
        )


def run_one(task: Task, schedule: str, warmup, kwargs: dict, lr: float, seed: int, steps: int) -> dict:
    from transformers import set_seed

    from hf_lrsched import get_schedule

    set_seed(seed)
    model = task.model()
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
            "weight_decay": 0.01,
        },
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    num_warmup = warmup if warmup == "auto" else math.ceil(warmup * steps)
    scheduler = get_schedule(schedule, optimizer, num_warmup, steps, **kwargs)
    order = torch.randperm(len(task.train["labels"]), generator=torch.Generator().manual_seed(seed))
    model.train()
    losses = []
    for step in range(steps):
        index = order[(step * 16) % len(order) :][:16]
        batch = {k: v[index] for k, v in task.train.items()}
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for start in range(0, len(task.eval["labels"]), 64):
            batch = {k: v[start : start + 64] for k, v in task.eval.items()}
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            correct += int((logits.argmax(-1) == batch["labels"]).sum())
            total += len(batch["labels"])
    return {"accuracy": correct / total, "final_train_loss": losses[-1], "diverged": not math.isfinite(losses[-1])}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--model_name_or_path")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    schedules, rates, seeds, steps = dict(SCHEDULES), RATES, args.seeds, args.steps
    if args.quick:
        schedules = {k: SCHEDULES[k] for k in ("constant (no warmup)", "warmup_cosine")}
        rates, seeds, steps = [1e-4, 3e-3], seeds[:1], 4
    work = args.work_dir or args.out_dir / "stability_runs"
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(torch.get_num_threads())
    task = Task(args.max_length, args.model_name_or_path)
    start, runs = time.time(), {}
    total = len(schedules) * len(rates) * len(seeds)
    for seed in seeds:  # seeds outermost: an interrupted sweep leaves whole grids behind
        for label, (schedule, warmup, kwargs) in schedules.items():
            for lr in rates:
                key = f"{label}-{lr:g}-{seed}".replace(" ", "_").replace("(", "").replace(")", "")
                cached = work / f"{key}.json"
                if cached.is_file():
                    result = json.loads(cached.read_text())
                else:
                    tic = time.time()
                    result = run_one(task, schedule, warmup, kwargs, lr, seed, steps)
                    result["run_seconds"] = time.time() - tic
                    cached.write_text(json.dumps(result))
                runs.setdefault(label, {}).setdefault(lr, []).append(result)
                done = sum(len(v) for by_lr in runs.values() for v in by_lr.values())
                print(
                    f"[{time.time() - start:6.0f}s] {done}/{total} seed {seed} {label} lr {lr:g}: "
                    f"accuracy {result['accuracy']:.4f}",
                    flush=True,
                )

    elapsed = sum(r["run_seconds"] for by_lr in runs.values() for results in by_lr.values() for r in results)
    summary, rows = {}, []
    for label, by_lr in runs.items():
        means = {lr: statistics.mean(r["accuracy"] for r in results) for lr, results in by_lr.items()}
        best_lr = max(means, key=means.get)
        band = [lr for lr in rates if means[lr] >= means[best_lr] - 0.01]
        failed = [r for results in by_lr.values() for r in results if r["accuracy"] <= task.majority]
        n = sum(len(results) for results in by_lr.values())
        summary[label] = {
            "mean_accuracy": {str(lr): m for lr, m in means.items()},
            "best": means[best_lr],
            "best_lr": best_lr,
            "band": band,
            "band_ratio": max(band) / min(band),
            "failed_seeds": len(failed),
            "runs": n,
            "accuracy": {str(lr): [r["accuracy"] for r in results] for lr, results in by_lr.items()},
        }
        rows.append(
            [
                label,
                f"{means[best_lr]:.4f} at {best_lr:g}",
                ", ".join(f"{lr:g}" for lr in band),
                f"{max(band) / min(band):.0f}x",
                f"{len(failed)}/{n}",
            ]
        )
    grid = [[label] + [f"{summary[label]['mean_accuracy'][str(lr)]:.3f}" for lr in rates] for label in runs]
    data = {
        "machine": machine(),
        "command": command_line(),
        "seeds": seeds,
        "steps": steps,
        "rates": rates,
        "max_length": args.max_length,
        "majority_share": task.majority,
        "wall_time_s": elapsed,
        "results": summary,
    }
    markdown = "\n\n".join(
        [
            "### What warmup buys: the usable band of peak learning rates",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: {total} runs, {elapsed / 60:.0f} "
            f"minutes of training and evaluation. MiniLM-L6 BERT on BBC News (1,700 training articles, 425 held out), "
            f"{steps} optimizer steps of 16 articles truncated to {args.max_length} tokens, AdamW, seeds {seeds}. Warmup: "
            f"10% of the steps, except `constant` (none) and `auto` (beta2 = 0.999 asks for 2,000 steps, capped at 25%). "
            f"*Usable band*: the peak rates whose mean accuracy is within 1 point of the schedule's best. *Failed seeds*: "
            f"held-out accuracy at or below the majority class's share ({task.majority:.3f}).",
            markdown_table(
                ["schedule", "best mean accuracy", "usable band (peak rates)", "band max/min", "failed seeds"], rows
            ),
            "Mean held-out accuracy at each peak rate:",
            markdown_table(["schedule"] + [f"{lr:g}" for lr in rates], grid),
            "![accuracy against peak learning rate](stability.png)",
        ]
    )
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(runs, rates, task.majority, args.out_dir / "stability.png")
    write("stability", data, markdown, args.out_dir)
    return data


def plot(runs: dict, rates: list[float], majority: float, path: Path) -> None:
    fig = new_figure()
    ax = fig.add_subplot()
    styles = ["-", "--", "-.", ":", (0, (5, 1))]
    for (label, by_lr), style, shift in zip(runs.items(), styles, (0.94, 0.97, 1.0, 1.03, 1.06)):
        means = [statistics.mean(r["accuracy"] for r in by_lr[lr]) for lr in rates]
        (line,) = ax.plot([lr * shift for lr in rates], means, marker="o", linestyle=style, label=label)
        for lr in rates:  # every seed, slightly offset per schedule so that equal values stay visible
            ax.scatter(
                [lr * shift] * len(by_lr[lr]),
                [r["accuracy"] for r in by_lr[lr]],
                s=10,
                alpha=0.35,
                color=line.get_color(),
            )
    ax.axhline(majority, color="grey", linewidth=0.8, linestyle=":", label="majority class (a failed run)")
    ax.set_xscale("log")
    ax.set_xlabel("peak learning rate")
    ax.set_ylabel("held-out accuracy")
    save_figure(fig, ax, path, title="MiniLM on BBC News: accuracy against peak learning rate")


if __name__ == "__main__":
    main()
