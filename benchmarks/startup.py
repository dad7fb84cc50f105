"""How long the command line and `import hf_lrsched` take to start, and where the time goes.

Each command runs in a fresh interpreter, 5 times, median. The breakdown comes from `python -X importtime` on
`hf-lrsched show` and `hf-lrsched list`: the cumulative import time of the packages that dominate it, and the rest
(the command itself, the first optimizer, whose construction imports `torch._dynamo`).

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import RESULTS, command_line, machine, machine_line, markdown_table, write

SCRIPT = shutil.which("hf-lrsched", path=str(Path(sys.executable).parent)) or "hf-lrsched"
COMMANDS = {
    "hf-lrsched --help": [SCRIPT, "--help"],
    "hf-lrsched show warmup_cosine --num-training-steps 1000": [
        SCRIPT,
        "show",
        "warmup_cosine",
        "--num-training-steps",
        "1000",
    ],
    "hf-lrsched list": [SCRIPT, "list"],
    'python -c "import hf_lrsched"': [sys.executable, "-c", "import hf_lrsched"],
    'python -c "from hf_lrsched import get_schedule"': [sys.executable, "-c", "from hf_lrsched import get_schedule"],
}
# Top-level packages whose import time is reported.
PACKAGES = ["torch", "transformers", "peft", "hf_lrsched"]


def wall(command: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        tic = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - tic)
    return statistics.median(times)


def import_breakdown(argv: list[str]) -> dict[str, float]:
    """Seconds of import time per top-level package (the self time of each of its modules, summed), for
    `python -X importtime -m hf_lrsched.cli ARGV`, and the command's whole wall time."""
    tic = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "hf_lrsched.cli", *argv], capture_output=True, text=True, check=True
    )
    total = time.perf_counter() - tic
    seconds: dict[str, float] = {}
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            package = match.group(2).split(".")[0]
            seconds[package] = seconds.get(package, 0.0) + int(match.group(1)) / 1e6
    breakdown = {name: seconds.get(name, 0.0) for name in PACKAGES}
    breakdown["other imports"] = sum(v for k, v in seconds.items() if k not in PACKAGES)
    breakdown["not imports (the command, the first optimizer)"] = total - sum(seconds.values())
    breakdown["total (wall)"] = total
    return breakdown


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    data = {
        "machine": machine(),
        "command": command_line(),
        "wall": {name: wall(command, args.rounds) for name, command in COMMANDS.items()},
        "imports": {
            "show": import_breakdown(["show", "warmup_cosine", "--num-training-steps", "1000"]),
            "list": import_breakdown(["list"]),
        },
    }
    rows = [[f"`{name}`", f"{seconds:.2f}"] for name, seconds in data["wall"].items()]
    parts = list(data["imports"])
    breakdown = [[name] + [f"{data['imports'][p][name]:.2f}" for p in parts] for name in data["imports"]["show"]]
    markdown = "\n\n".join(
        [
            "### Start-up time",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: each command in a fresh interpreter, "
            f"{args.rounds} runs, median.",
            markdown_table(["command", "seconds"], rows),
            "Where the time of `show` and `list` goes (seconds; the import time of each package's own modules, one run "
            "with `python -X importtime`; what is not an import is the command itself and the interpreter, mostly the "
            "first optimizer, whose construction imports `torch._dynamo` at run time):",
            markdown_table(["", *[f"`{p}`" for p in parts]], breakdown),
        ]
    )
    write("startup", data, markdown, args.out_dir)
    return data


if __name__ == "__main__":
    main()
