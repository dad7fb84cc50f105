"""What every benchmark writes: the machine it ran on, and results as JSON and as a Markdown table."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def machine_line(info: dict) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']}, "
        f"transformers {info['transformers']}"
    )


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def command_line() -> str:
    """The command that ran this benchmark, as one would type it from the repository root."""
    script = os.path.relpath(os.path.abspath(sys.argv[0]), Path(__file__).resolve().parents[1])
    return shlex.join(["python", script] + sys.argv[1:])


def write(name: str, data: dict, markdown: str, out_dir: Path = RESULTS) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / f"{name}.md").write_text(markdown.rstrip() + "\n")
    print(markdown)


def median(values) -> float:
    return statistics.median(values)


def mean_std(values: list[float], digits: int = 4) -> str:
    """`mean ± standard deviation`, or the value alone for one run."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def add_task_arguments(parser, *, max_length: int | None = 128) -> None:
    """The data and model options every fine-tuning benchmark passes on to `examples/glue.py`."""
    parser.add_argument("--task_name", default="bbc_news")
    parser.add_argument("--model_name_or_path")
    parser.add_argument("--train_file")
    parser.add_argument("--validation_file")
    if max_length is not None:
        parser.add_argument("--max_length", type=int, default=max_length)


def task_arguments(args) -> list:
    """`glue.py` arguments for the task (or files) and model that `add_task_arguments` parsed."""
    data = (
        ["--task_name", args.task_name]
        if not args.train_file
        else ["--train_file", args.train_file, "--validation_file", args.validation_file]
    )
    if args.model_name_or_path:
        data += ["--model_name_or_path", args.model_name_or_path]
    return data
