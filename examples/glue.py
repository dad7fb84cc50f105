"""Fine-tune BERT on a GLUE task, or on BBC News offline, with an hf_lrsched schedule in a plain `accelerate` loop.

Every optimizer step's learning rate is the schedule's, whatever the number of processes: the schedule is built in
optimizer steps after `accelerator.prepare` (which may shorten the data loader), is not passed to `prepare` (which
would step it once per process), and is stepped once per real optimizer step (not after one skipped on a
mixed-precision overflow). The lines that use hf_lrsched are marked `# hf_lrsched:`.

    python examples/glue.py --task_name bbc_news            # offline: BBC News and the packaged MiniLM BERT
    python examples/glue.py examples/configs/bbc_news.yaml  # the same, its arguments read from a file
    ACCELERATE_USE_CPU=1 accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml \\
        examples/glue.py --task_name bbc_news               # two processes; GPUs and machines: examples/README.md

Writes to `--output_dir`: `all_results.json` (the last evaluation, steps, time), `lr_schedule.csv` and `.png` (each
optimizer step's rate), `train_loss.csv`, the model and tokenizer, a checkpoint every `--checkpointing_steps`.
Snapshots at cycle ends, their ensembles and trackers: `glue_snapshots.py`, which runs this loop with them.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from tqdm.auto import tqdm

from hf_lrsched import build_param_groups, get_schedule, resolve_num_warmup_steps

import glue_data
from glue_checkpoints import (
    Extension,
    OutputError,
    Run,
    RunError,
    check_output_dir,
    check_writable,
    checkpoint,
    close_process_group,
    metric_summary,
    plan_line,
    resume,
    run_results,
    write_results,
)
from glue_data import DataArguments, ModelArguments


@dataclass
class LoopArguments:
    """The training loop and its schedule; `glue_data.check_loop_arguments` refuses a bad value when parsed."""

    output_dir: str | None = field(default=None, metadata={"help": "Results and checkpoints; outputs/<task_name>."})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "Write into a non-empty --output_dir."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Batch size per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs to train (unless --max_train_steps)."})
    max_train_steps: int | None = field(default=None, metadata={"help": "Optimizer steps to train; overrides epochs."})
    learning_rate: float = field(default=5e-5, metadata={"help": "The peak (base) learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on biases and LayerNorm)."})
    seed: int = field(default=42, metadata={"help": "Seed of the model's head, the data order and dropout."})
    lr_schedule: str = field(default="warmup_cosine", metadata={"help": "A schedule name (hf-lrsched list)."})
    lr_schedule_kwargs: dict | str | None = field(
        default=None, metadata={"help": "The schedule's options as JSON, e.g. '{\"min_lr_ratio\": 0.1}'."}
    )
    num_warmup_steps: str = field(
        default="0.06", metadata={"help": "Warmup: optimizer steps, a ratio of them below 1, or 'auto' (from beta2)."}
    )
    lr_layer_decay: float | None = field(
        default=None, metadata={"help": "Layer-wise LR decay gamma in (0, 1]: layer l of L+1 at lr * gamma^(L+1-l)."}
    )
    lr_param_groups: str | None = field(
        default=None,
        metadata={"help": 'Rates by name, first match wins: \'[{"pattern": "classifier", "lr_mult": 10}]\'.'},
    )
    lr_resume: str = field(
        default="identical",
        metadata={
            "help": "'identical': a resume keeps every past rate; 'new_stage': this schedule takes over at the "
            "checkpoint's step, from the rate reached.",
            "choices": ["identical", "new_stage"],
        },
    )
    eval_steps: int | None = field(default=None, metadata={"help": "Also evaluate every N optimizer steps."})
    checkpointing_steps: str | None = field(
        default=None, metadata={"help": "Save every N optimizer steps, or 'epoch'."}
    )
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint folder to resume from."})

    def __post_init__(self):
        glue_data.check_loop_arguments(self)


def train(model_args: ModelArguments, data_args: DataArguments, args: LoopArguments, extension=None) -> dict:
    """Train, evaluate and write the results; returns what `all_results.json` holds."""
    extension = extension or Extension()
    args.output_dir = args.output_dir or os.path.join("outputs", data_args.task_name or "custom")
    check_output_dir(args)
    # A seedable sampler makes each epoch's order a function of the seed and the epoch: a resumed run skips exactly
    # the batches the interrupted one had seen.
    accelerator = Accelerator(
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        **extension.accelerator_kwargs(args),
    )
    set_seed(args.seed)
    check_writable(accelerator, args.output_dir)  # a read-only or full disk is refused now, not after training

    model, tokenizer, data = glue_data.prepare_data(accelerator, model_args, data_args)
    train_dataloader, eval_dataloader = glue_data.make_dataloaders(data, tokenizer, args, accelerator)
    # hf_lrsched: with --lr_layer_decay or --lr_param_groups, parts of the model train at their own rates; without,
    # the two usual groups (no weight decay on biases and LayerNorm weights).
    try:
        groups = build_param_groups(
            model, args.learning_rate, args.weight_decay, layer_decay=args.lr_layer_decay, rules=args.lr_param_groups
        )
    except ValueError as error:  # a layer decay for a model whose layers cannot be numbered
        raise RunError(str(error)) from None
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate)
    # --8<-- [start:schedule]
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    # hf_lrsched: the schedule counts optimizer steps of the *global* batch. After `prepare`, `len(train_dataloader)`
    # is per process, which is what one optimizer step consumes on each process.
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or math.ceil(args.num_train_epochs * steps_per_epoch)
    num_warmup_steps = resolve_num_warmup_steps(args.num_warmup_steps, max_train_steps)  # a ratio, steps or "auto"
    try:  # hf_lrsched: built on the unwrapped optimizer and never passed to `prepare`
        lr_scheduler = get_schedule(
            args.lr_schedule,
            optimizer.optimizer,
            num_warmup_steps,
            max_train_steps,
            **args.lr_schedule_kwargs,
            **({"new_stage": True} if args.lr_resume == "new_stage" else {}),  # a change of plan, asked for
        )
    except (ValueError, TypeError) as error:  # an option that the run's length rules out (epochs: known only now)
        raise RunError(str(error)) from None
    accelerator.register_for_checkpointing(lr_scheduler)  # hf_lrsched: its state checks a resume's options
    # --8<-- [end:schedule]

    batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    config = {"num_processes": accelerator.num_processes, "total_batch_size": batch, "seed": args.seed}
    config.update(max_train_steps=max_train_steps, lr_schedule=args.lr_schedule)
    run = Run(
        args, accelerator, model, tokenizer, optimizer, lr_scheduler, train_dataloader, eval_dataloader,
        glue_data.Metric(data_args.task_name), steps_per_epoch, max_train_steps, num_warmup_steps, config, extension,
    )  # fmt: skip
    if args.resume_from_checkpoint:
        resume(run)  # the state, and every record so far; refused unless the run can continue exactly
    extension.start(run)
    accelerator.print(plan_line(run, data_args.task_name, len(data["train"])))

    first_step, start = run.completed_steps, time.time()
    progress = tqdm(
        total=max_train_steps, initial=run.completed_steps, desc="training", unit="step",
        disable=not accelerator.is_local_main_process,
    )  # fmt: skip
    model.train()
    for epoch in range(run.completed_steps // steps_per_epoch, math.ceil(max_train_steps / steps_per_epoch)):
        if run.completed_steps >= max_train_steps:  # a finished run, resumed from its last checkpoint
            break
        train_dataloader.set_epoch(epoch)
        skip = (run.completed_steps - epoch * steps_per_epoch) * args.gradient_accumulation_steps
        batches = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        step_loss, step_batches = 0.0, 0
        for batch in batches:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                step_loss, step_batches = step_loss + loss.detach().float().item(), step_batches + 1
                accelerator.backward(loss)
                lrs = [group["lr"] for group in optimizer.param_groups]  # the rates this optimizer step uses
                optimizer.step()
                # hf_lrsched: once per real optimizer step; not after a step that mixed precision skipped.
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    lr_scheduler.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                run.completed_steps += 1
                after_step(run, lrs, step_loss / step_batches, progress)
                step_loss, step_batches = 0.0, 0
                if run.completed_steps >= max_train_steps:
                    break
    progress.close()

    runtime = time.time() - start
    results = run_results(run, runtime, run.completed_steps - first_step)
    extension.finish(run, results)
    written = write_results(run, results)
    accelerator.print(f"step {run.completed_steps}: {metric_summary(run.last_evaluation)} ({runtime:.0f} s)")
    accelerator.print(f"wrote {args.output_dir}: {', '.join(written)}")
    return results


def after_step(run: Run, lrs: list[float], loss: float, progress) -> None:
    """Record the step; evaluate at each epoch's end and every --eval_steps; then save a checkpoint, last, so that it
    holds everything this step did and a run resumed from it repeats nothing and misses nothing."""
    args, step = run.args, run.completed_steps
    run.records["lr_history"].append([step, *lrs] if run.has_plan else [step, lrs[0]])
    run.records["loss_history"].append([step, loss])
    progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lrs[0]:.3g}", refresh=False)
    progress.update(1)
    metrics = run.extension.step_end(run, loss, lrs)  # glue_snapshots.py: a snapshot, evaluated
    epoch = (step - 1) // run.steps_per_epoch
    end_of_epoch = step % run.steps_per_epoch == 0 or step == run.max_train_steps
    if end_of_epoch or (args.eval_steps and step % args.eval_steps == 0):
        run.last_evaluation = metrics = metrics or evaluate(run)
        if args.eval_steps:
            run.records["eval_history"].append({"step": step, **metrics})
        run.extension.evaluated(run, metrics, end_of_epoch)
        if end_of_epoch and step < run.max_train_steps:
            progress.write(f"epoch {epoch}: {metric_summary(metrics)}")
    if args.checkpointing_steps == "epoch" and end_of_epoch:
        checkpoint(run, f"epoch_{epoch}")
    elif args.checkpointing_steps not in (None, "epoch") and step % int(args.checkpointing_steps) == 0:
        checkpoint(run, f"step_{step}")


def evaluate(run: Run) -> dict[str, float]:
    """The task's metrics, the mean loss and, for classification, `ece`: the expected calibration error, the mean gap
    between the model's confidence and its accuracy over 15 bins of confidence (0: perfectly calibrated)."""
    tic = time.perf_counter()
    metrics, run.last_probabilities = glue_data.evaluate_model(
        run.accelerator, run.model, run.eval_dataloader, run.metric
    )
    run.eval_seconds += time.perf_counter() - tic
    return metrics


def parse_args(argv: list[str] | None = None, loop_arguments: type = LoopArguments) -> tuple:
    return glue_data.parse_args((ModelArguments, DataArguments, loop_arguments), argv)


def main(argv: list[str] | None = None, script: str = "glue.py", extension=None, loop_arguments=LoopArguments) -> int:
    """Parse, train and write; a user's mistake (an argument, a checkpoint, an output directory, the Hub offline, a
    disk that cannot be written) is one line on stderr and exit status 2, never a traceback."""
    try:
        parsed = parse_args(argv, loop_arguments)
    except (ValueError, TypeError) as error:  # a bad argument: its message, no traceback
        print(f"{script}: error: {error}", file=sys.stderr)
        return 2
    try:
        train(*parsed, extension)
    except (glue_data.HubUnavailableError, RunError, OutputError) as error:
        print(f"{script}: error: {error}", file=sys.stderr)
        return 2
    finally:
        close_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
