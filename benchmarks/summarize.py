"""Write the README's benchmark summary from `benchmarks/results/*.json`, so that no number in it is typed by hand.

python benchmarks/summarize.py           # rewrites the block between the benchmark markers of README.md
python benchmarks/summarize.py --check   # exits 1 if README.md is not what the results say
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START = "<!-- benchmarks:start: written by `python benchmarks/summarize.py` from benchmarks/results/ -->"
END = "<!-- benchmarks:end -->"
# The README is the package's description on an index, where a relative link leads nowhere: its links are absolute.
REPO = "https://github.com/hf-lrsched/hf_lrsched"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def summary() -> str:
    lines = []
    overhead, throughput, quality, wsd = load("overhead"), load("throughput"), load("quality"), load("wsd")
    stability, snapshots, startup = load("stability"), load("snapshots"), load("startup")
    groups = load("groups")
    if overhead:
        worst: dict[str, float] = {}
        for row in overhead["steps"]:
            worst[row["schedule"]] = max(worst.get(row["schedule"], 0.0), row["ratio"])
        ours = {k: v for k, v in worst.items() if not k.startswith(("transformers", "torch"))}
        us = [row["us_per_step"] for row in overhead["steps"]]
        # how much each schedule's cost moves between the smallest and the largest step count (same group count)
        by_size: dict[tuple, list[float]] = {}
        for row in overhead["steps"]:
            by_size.setdefault((row["schedule"], row["groups"]), []).append(row["us_per_step"])
        spread = max(max(v) / min(v) - 1 for (name, _), v in by_size.items() if name in ours)
        sizes = sorted({row["steps"] for row in overhead["steps"]})
        lines.append(
            f"- **Cost per step** (`benchmarks/overhead.py`): a `scheduler.step()` takes {min(us):.1f} to "
            f"{max(us):.1f} us at {sizes[0]:,} to {sizes[-1]:,} steps with 1 or 4 param groups; the worst ratio to "
            "`transformers`' cosine over all sizes is "
            + ", ".join(f"{ratio:.2f} for `{name}`" for name, ratio in ours.items())
            + f". Between the smallest and the largest step count, the cost of each of ours moves by at most "
            f"{spread:.0%}."
        )
    if overhead and overhead.get("curve"):
        curve = ", ".join(f"`{r['schedule']}` {r['seconds']:.2f} s" for r in overhead["curve"])
        lines.append(f"- **A whole {overhead['curve'][0]['steps']:,}-step curve** (`schedule_multipliers`): {curve}.")
    if startup:
        wall, peak = startup["wall"], startup.get("peak_mb", {})
        lines.append(
            "- **Start-up** (`benchmarks/startup.py`): "
            + ", ".join(
                f"`{command}` {seconds:.2f} s" + (f" ({peak[command]:.0f} MB)" if command in peak else "")
                for command, seconds in wall.items()
                if "python -c" not in command or command == "python -c pass"
            )
            + "; our schedules are drawn without torch or `transformers`, whose import is most of the rest."
        )
    if throughput:
        ratios = ", ".join(
            f"`{r['schedule']}` {r['ratio']:.3f}" for r in throughput["rows"] if r["schedule"] != "cosine"
        )
        lines.append(
            f"- **Training throughput** (`benchmarks/throughput.py`), ratio to `transformers`' cosine in the "
            f"same loop: {ratios}."
        )
    if quality:
        for budget, rows in quality["results"].items():
            best = max(rows, key=lambda label: statistics.mean(rows[label]["accuracy"]))
            linear = next((label for label in rows if label.startswith("linear")), None)
            text = (
                f"- **Fine-tuning, {budget}** (`benchmarks/quality.py`, {len(quality['seeds'])} seeds): best mean "
                f"held-out accuracy {statistics.mean(rows[best]['accuracy']):.4f} with `{best}`"
            )
            if linear:
                text += f"; `transformers`' default `linear` {statistics.mean(rows[linear]['accuracy']):.4f}"
            lines.append(text + ".")
    if wsd:
        parts = []
        for budget in wsd["budgets"]:
            a = statistics.mean(wsd["results"]["wsd"][str(budget)]["accuracy"])
            b = statistics.mean(wsd["results"]["cosine"][str(budget)]["accuracy"])
            parts.append(f"{budget} steps {a:.4f} vs {b:.4f}")
        steps = wsd["optimizer_steps_per_seed"]
        lines.append(
            f"- **Runs that change length** (`benchmarks/wsd.py`, {len(wsd['seeds'])} seeds): one `wsd` trunk with "
            f"cooldowns branched at {len(wsd['budgets'])} budgets against separate `warmup_cosine` runs, mean held-out "
            f"accuracy wsd vs cosine: {', '.join(parts)}; optimizer steps for all budgets: wsd {steps['wsd']}, "
            f"cosine {steps['cosine']}."
        )
    if stability:
        parts = [
            f"`{label}` {row['band_ratio']:.0f}x ({len(row['band'])} of {len(stability['rates'])} rates), "
            f"{row['failed_seeds']}/{row['runs']} failed"
            for label, row in stability["results"].items()
        ]
        lines.append(
            f"- **Usable peak-rate band** (`benchmarks/stability.py`, {len(stability['seeds'])} seeds, "
            f"{stability['steps']} steps, peak rates {min(stability['rates']):g} to {max(stability['rates']):g}): the "
            f"max/min ratio of the peak rates within 1 point of each schedule's best, and failed runs: "
            + "; ".join(parts)
            + "."
        )
    if snapshots:
        seeds = snapshots["per_seed"]

        def mean(get) -> float:
            return statistics.mean(get(p) for p in seeds)

        final = mean(lambda p: p["snapshots"][-1]["accuracy"])
        lines.append(
            f"- **Snapshots from restarts** (`benchmarks/snapshots.py`, {len(seeds)} seeds, {snapshots['steps']} "
            f"steps): held-out accuracy of the final model {final:.4f}, of the ensemble of the last 2 snapshots "
            f"{mean(lambda p: p['ensemble_last_2']['accuracy']):.4f}, of the last 3 "
            f"{mean(lambda p: p['ensemble_last_3']['accuracy']):.4f}; `warmup_cosine` with the same budget "
            f"{mean(lambda p: p['cosine'][str(snapshots['steps'])]['accuracy']):.4f}."
        )
    if groups:
        parts, changes = [], []
        for size, rows in groups["results"].items():
            base = rows.get("warmup_cosine")
            cells = [
                f"`{label}` {row['mean']:.4f} ± {row['std']:.4f} ({row['failed']}/{len(row['accuracy'])} failed)"
                for label, row in rows.items()
            ]
            parts.append(f"{size}: " + ", ".join(cells))
            if base:
                changes += [
                    (row["paired_change"], row["paired_change_std"], label, size, base["std"])
                    for label, row in rows.items()
                    if row["paired_change"] is not None
                ]
        text = (
            f"- **Param-group plans, small data** (`benchmarks/groups.py`, MiniLM through `LRSchedTrainer`, "
            f"{len(groups['seeds'])} seeds"
            + ("" if groups["complete"] else f"; PARTIAL: {groups['runs_done']} of {groups['runs_planned']} runs")
            + "): held-out accuracy, mean ± std over seeds, of `warmup_cosine` alone, with layer-wise LR decay and "
            "with the embeddings frozen then warmed in: " + "; ".join(parts) + "."
        )
        if changes:
            change, paired_std, label, size, std = max(changes, key=lambda c: abs(c[0]))
            within = "within" if abs(change) <= std else "beyond"
            spread = "" if paired_std is None else f" ± {paired_std:.4f} over seeds"
            text += (
                f" The largest change against `warmup_cosine`, seed by seed, is {change:+.4f}{spread} (`{label}`, "
                f"{size}), {within} one standard deviation of the baseline's own seeds ({std:.4f})."
            )
        lines.append(text)
    if not lines:
        lines.append("- No benchmark has been run yet.")
    lines.append(
        f"- Full tables, plots, commands and the machine: [docs/benchmarks.md]({REPO}/blob/main/docs/benchmarks.md) "
        f"and [benchmarks/results/]({REPO}/tree/main/benchmarks/results)."
    )
    return "\n".join([START, *lines, END])


def rewrite(text: str) -> str:
    start, end = text.index(START), text.index(END) + len(END)
    return text[:start] + summary() + text[end:]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    text = readme.read_text()
    if args.check:
        sys.exit(0 if rewrite(text) == text else 1)
    readme.write_text(rewrite(text))
    print(summary())
