"""Training throughput of the example's loop with an hf_lrsched schedule against `transformers`' cosine.

The same `examples/glue.py` loop, process count, batch and budget; only `--lr_schedule` changes. Samples per second
of the training loop alone (forward, backward, optimizer and scheduler steps; `train_samples_per_second` in
`all_results.json`), runs interleaved A, B, C, A, B, C, ..., the median per schedule and its ratio to `cosine`.

    python benchmarks/throughput.py                 # BBC News + MiniLM, 3 rounds of 20 steps: about 6 minutes
    python benchmarks/throughput.py --rounds 1 --steps 5 --model_name_or_path DIR --train_file F --validation_file G

Writes `benchmarks/results/throughput.{md,json}` (`--out-dir` to change).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import (
    RESULTS,
    add_task_arguments,
    command_line,
    machine,
    machine_line,
    markdown_table,
    median,
    task_arguments,
    write,
)
from runner import run_glue

SCHEDULES = {
    "cosine": [],  # transformers' get_cosine_schedule_with_warmup, through the same get_schedule call
    "warmup_cosine": ["--lr_schedule_kwargs", '{"min_lr_ratio": 0.01}'],
    "cosine_with_growing_restarts": ["--lr_schedule_kwargs", '{"num_cycles": 3, "restart_warmup_steps": 2}'],
}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per run")
    add_task_arguments(parser, max_length=None)
    parser.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    common = task_arguments(args) + [
        "--max_train_steps",
        args.steps,
        "--per_device_train_batch_size",
        16,
        "--max_eval_samples",
        32,
        "--learning_rate",
        "1e-4",
        "--num_warmup_steps",
        "0.1",
        "--seed",
        1,
    ]
    samples = {name: [] for name in SCHEDULES}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for name, extra in SCHEDULES.items():
                result = run_glue(Path(tmp) / f"{name}-{round_}", common + ["--lr_schedule", name] + extra)
                samples[name].append(result["train_samples_per_second"])
    reference = median(samples["cosine"])
    rows = [
        {"schedule": name, "samples_per_second": median(values), "ratio": median(values) / reference, "runs": values}
        for name, values in samples.items()
    ]
    data = {"machine": machine(), "command": command_line(), "steps": args.steps, "rows": rows}
    markdown = "\n\n".join(
        [
            "### Training throughput",
            f"Measured with `{data['command']}` on {machine_line(data['machine'])}: `examples/glue.py` on "
            f"{args.task_name if not args.train_file else 'the given files'}, 1 process, batch 16, {args.steps} optimizer "
            f"steps per run, {args.rounds} interleaved rounds; samples per second of the training loop, median.",
            markdown_table(
                ["schedule", "samples / s", "ratio to cosine", "runs"],
                [
                    [
                        r["schedule"],
                        f"{r['samples_per_second']:.2f}",
                        f"{r['ratio']:.3f}",
                        ", ".join(f"{v:.2f}" for v in r["runs"]),
                    ]
                    for r in rows
                ],
            ),
        ]
    )
    write("throughput", data, markdown, args.out_dir)
    return data


if __name__ == "__main__":
    main()
