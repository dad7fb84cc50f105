"""Run `examples/glue.py` the way users run it (`accelerate launch`) and read what it wrote."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GLUE = ROOT / "examples" / "glue.py"


def run_glue(output_dir: Path, args: list[str], *, log: Path | None = None) -> dict:
    """One single-process `accelerate launch` of the example; returns its `all_results.json` plus its loss curve."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "1",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(GLUE),
               "--output_dir", str(output_dir), "--overwrite_output_dir"] + [str(a) for a in args]
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
