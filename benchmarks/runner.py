"""Run `examples/glue.py` (or `glue_snapshots.py`) the way users run it (`accelerate launch`) and read what it wrote."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
GLUE = EXAMPLES / "glue.py"


def run_glue(output_dir: Path, args: list[str], *, log: Path | None = None, script: Path = GLUE) -> dict:
    """One single-process `accelerate launch` of the example; returns its `all_results.json` plus its loss curve."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--cpu",
        "--num_processes",
        "1",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        str(script),
        "--output_dir",
        str(output_dir),
        "--overwrite_output_dir",
    ] + [str(a) for a in args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-4000:]}")
    results = json.loads((output_dir / "all_results.json").read_text())
    with open(output_dir / "train_loss.csv", newline="") as f:
        results["loss_curve"] = [(int(row["step"]), float(row["loss"])) for row in csv.DictReader(f)]
    return results


def cached_run(work: Path, key: str, args: list, *, start: float | None = None, script: Path = GLUE) -> dict:
    """`run_glue` into `work/key`, its results kept as `work/key.json` so that an interrupted benchmark resumes where
    it stopped; prints a progress line for each run it makes."""
    import time

    cached = work / f"{key}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    tic = time.time()
    result = run_glue(work / key, args, script=script)
    result["run_seconds"] = time.time() - tic  # the whole launch: start-up, training, evaluations
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps(result))
    since = f"[{time.time() - start:6.0f}s] " if start is not None else ""
    print(f"{since}{key}: accuracy {result['eval_accuracy']:.4f}, {result['run_seconds']:.0f}s", flush=True)
    return result
