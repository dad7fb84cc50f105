"""How long the command line and `import hf_lrsched` take to start, how much memory they take, and where the time goes.

Each command runs in a fresh interpreter, 5 times: the median wall time, its ratio to `python -c pass` measured the
same way, and the peak resident memory (the child's `ru_maxrss`). The targets: `show` of one of our schedules under
0.5 s and 100 MB, `plot` under 1.5 s (our schedules are drawn without importing torch or `transformers`). The
breakdown comes from `python -X importtime` on `hf-lrsched show` and `hf-lrsched list`: the import time of the
packages that dominate it, and the rest (the command itself).

    python benchmarks/startup.py
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, command_line, machine, machine_line, markdown_table, write

SCRIPT = shutil.which("hf-lrsched", path=str(Path(sys.executable).parent)) or "hf-lrsched"
PHASES = '{"phases": [{"shape": "constant", "ratio": 0.7}, {"shape": "power", "p": 0.4}]}'
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "hf-lrsched --help": [SCRIPT, "--help"],
    "hf-lrsched show warmup_cosine --num-training-steps 1000": [
        SCRIPT,
        "show",
        "warmup_cosine",
        "--num-training-steps",
        "1000",
    ],
    f"hf-lrsched show phases --num-training-steps 1000 --kwargs '{PHASES}'": [
        SCRIPT,
        "show",
        "phases",
        "--num-training-steps",
        "1000",
        "--kwargs",
        PHASES,
    ],
    "hf-lrsched plot warmup_cosine --num-training-steps 1000 -o lr.png": [
        SCRIPT,
        "plot",
        "warmup_cosine",
        "--num-training-steps",
        "1000",
        "-o",
        "{tmp}/lr.png",
    ],
    "hf-lrsched show cosine --num-training-steps 1000 (transformers' name)": [
        SCRIPT,
        "show",
        "cosine",
        "--num-training-steps",
        "1000",
    ],
    "hf-lrsched list": [SCRIPT, "list"],
    'python -c "import hf_lrsched"': [sys.executable, "-c", "import hf_lrsched"],
    'python -c "from hf_lrsched import get_schedule"': [sys.executable, "-c", "from hf_lrsched import get_schedule"],
}
# Top-level packages whose import time is reported.
PACKAGES = ["torch", "transformers", "peft", "hf_lrsched"]


_MEASURE = (
    "import resource, subprocess, sys, time; tic = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(time.perf_counter() - tic, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def measure(command: list[str], rounds: int) -> tuple[float, float]:
    """Median seconds and peak resident MB of `command`, each run in a fresh interpreter that only waits for it."""
    times, memory = [], []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", _MEASURE, *command], check=True, capture_output=True, text=True)
        seconds, kilobytes = out.stdout.split()
        times.append(float(seconds))
        memory.append(int(kilobytes) / 1024)
    return statistics.median(times), statistics.median(memory)


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
    breakdown["not imports (the command itself)"] = total - sum(seconds.values())
    breakdown["total (wall)"] = total
    return breakdown


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        measured = {
            name: measure([part.replace("{tmp}", tmp) for part in command], args.rounds)
            for name, command in COMMANDS.items()
        }
    baseline = measured["python -c pass"][0]
    data = {
        "machine": machine(),
        "command": command_line(),
        "wall": {name: seconds for name, (seconds, _) in measured.items()},
        "ratio_to_python": {name: seconds / baseline for name, (seconds, _) in measured.items()},
        "peak_mb": {name: mb for name, (_, mb) in measured.items()},
        "imports": {
            "show": import_breakdown(["show", "warmup_cosine", "--num-training-steps", "1000"]),
            "list": import_breakdown(["list"]),
        },
    }
    rows = [
        [f"`{name}`", f"{seconds:.2f}", f"{data['ratio_to_python'][name]:.1f}", f"{data['peak_mb'][name]:.0f}"]
        for name, seconds in data["wall"].items()
    ]
    parts = list(data["imports"])
    breakdown = [[name] + [f"{data['imports'][p][name]:.2f}" for p in parts] for name in data["imports"]["show"]]
    markdown = "\n\n".join(
        [
            "### Start-up time",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: each command in a fresh interpreter, "
            f"{args.rounds} runs, median; the ratio to `python -c pass`; the peak resident memory. Targets: `show` of "
            "ours under 0.5 s and 100 MB, `plot` under 1.5 s.",
            markdown_table(["command", "seconds", "x python -c pass", "peak MB"], rows),
            "Where the time of `show` and `list` goes (seconds; the import time of each package's own modules, one run "
            "with `python -X importtime`; the rest is the command itself and the interpreter; `list` names every "
            "`transformers` schedule, so it imports `transformers`, and through it torch):",
            markdown_table(["", *[f"`{p}`" for p in parts]], breakdown),
        ]
    )
    write("startup", data, markdown, args.out_dir)
    return data


if __name__ == "__main__":
    main()
