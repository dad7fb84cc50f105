"""Fine-tune BERT on a GLUE task with an hf_lrsched schedule, in a plain `accelerate` loop (no `Trainer`).

The learning rate at every optimizer step is exactly the schedule's, whatever the number of processes: the
scheduler is built in optimizer steps after `accelerator.prepare` (which may shorten the data loader), is *not*
passed to `prepare` (an `AcceleratedScheduler` would step it once per process per optimizer step), and is stepped
once per real optimizer step (not on a step skipped for a mixed-precision overflow).

    # The offline default: BBC News with the packaged MiniLM BERT, on this machine's CPU
    accelerate launch examples/glue.py --task_name bbc_news

    # GLUE (needs the Hugging Face Hub), growing restarts with warmup derived from Adam's beta2
    accelerate launch examples/glue.py --task_name mrpc --lr_schedule cosine_with_growing_restarts \
        --lr_schedule_kwargs '{"num_cycles": 3, "cycle_mult": 2.0}' --num_warmup_steps auto

    # Two CPU processes; several GPUs or machines: see examples/README.md
    ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 examples/glue.py --task_name bbc_news

    # All arguments from one file
    accelerate launch examples/glue.py examples/configs/bbc_news.yaml

Writes to `--output_dir`: `all_results.json` (the final evaluation, the run's step count and duration),
`lr_schedule.csv` (`step,lr`: the learning rate each optimizer step used, steps counted from 1), `train_loss.csv`
(`step,loss`: the main process's mean loss of each optimizer step), the fine-tuned model and tokenizer, and a
checkpoint every `--checkpointing_steps`.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import glue_data
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import DataLoaderConfiguration, set_seed
from glue_data import (
    DataArguments,
    HubUnavailableError,
    Metric,
    ModelArguments,
    label_info,
    load_model_and_tokenizer,
    load_raw_datasets,
    tokenize_datasets,
    write_csv,
    write_json,
)
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from hf_lrsched import ScheduleLR, describe, get_schedule
from hf_lrsched.registry import (
    PROBE_TRAINING_STEPS,
    check_reserved_schedule_kwargs,
    parse_schedule_kwargs,
    probe_optimizer,
)

logger = get_logger(__name__)

CHECKPOINT_META = "hf_lrsched_checkpoint.json"
EVAL_PROBS = "eval_probabilities.pt"  # in each snapshot: its held-out softmax outputs, for ensembles


class ResumeError(ValueError):
    """A checkpoint that this run cannot continue exactly."""


@dataclass
class LoopArguments:
    """The training loop and its schedule."""

    output_dir: str | None = field(
        default=None, metadata={"help": "Where to write results and checkpoints; defaults to outputs/<task_name>."}
    )
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Batch size per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per process."})
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "Batches per optimizer step."})
    num_train_epochs: float = field(default=1.0, metadata={"help": "Epochs to train (unless --max_train_steps)."})
    max_train_steps: int | None = field(default=None, metadata={"help": "Optimizer steps to train; overrides epochs."})
    learning_rate: float = field(default=5e-5, metadata={"help": "The peak (base) learning rate."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay (not on biases and LayerNorm)."})
    seed: int = field(default=42, metadata={"help": "Seed for the model's head and the data order."})
    lr_schedule: str = field(default="warmup_cosine", metadata={"help": "An hf_lrsched schedule name."})
    lr_schedule_kwargs: dict | str | None = field(
        default=None, metadata={"help": 'The schedule\'s options as JSON, e.g. \'{"min_lr_ratio": 0.1}\'.'}
    )
    num_warmup_steps: str = field(
        default="0.06",
        metadata={"help": "Warmup: a number of optimizer steps, a ratio of them below 1, or 'auto' (from beta2)."},
    )
    checkpointing_steps: str | None = field(
        default=None, metadata={"help": "Save the state every N optimizer steps, or 'epoch' at each epoch's end."}
    )
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint folder to resume from."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into a non-empty --output_dir (otherwise refused, as in run_glue.py)."}
    )
    eval_steps: int | None = field(
        default=None, metadata={"help": "Also evaluate every N optimizer steps (all_results.json: eval_history)."}
    )
    save_snapshots: bool = field(
        default=False,
        metadata={"help": "Save the model at the end of every cycle of the schedule (before each restart, and at the "
                          "end) as <output_dir>/snapshot-<step>, with its held-out metrics."},
    )
    snapshot_ensemble: int | None = field(
        default=None,
        metadata={"help": "Also evaluate the ensemble of the last K snapshots (mean of their softmax outputs); "
                          "implies --save_snapshots."},
    )
    with_tracking: bool = field(default=False, metadata={"help": "Log the loss and learning rate to trackers."})
    report_to: str = field(default="all", metadata={"help": "Trackers for --with_tracking (tensorboard, wandb, ...)."})

    def __post_init__(self):
        if self.max_train_steps is not None and self.max_train_steps < 1:
            raise ValueError(f"`max_train_steps` must be >= 1, got {self.max_train_steps}.")
        if self.max_train_steps is None and not (math.isfinite(self.num_train_epochs) and self.num_train_epochs > 0):
            raise ValueError(f"`num_train_epochs` must be a finite number > 0, got {self.num_train_epochs}.")
        self.lr_schedule_kwargs = parse_schedule_kwargs(self.lr_schedule_kwargs)
        check_reserved_schedule_kwargs(self.lr_schedule_kwargs)
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"`learning_rate` must be a finite number > 0, got {self.learning_rate}.")
        self.num_warmup_steps = parse_warmup(self.num_warmup_steps)
        # An unknown name, option or value fails now, before any model is loaded: the schedule is built once on a
        # throw-away optimizer (with the real step count when --max_train_steps gives it).
        num_training_steps = self.max_train_steps or PROBE_TRAINING_STEPS
        get_schedule(self.lr_schedule, probe_optimizer(self.learning_rate),
                     resolve_warmup(self.num_warmup_steps, num_training_steps), num_training_steps,
                     **self.lr_schedule_kwargs)
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ValueError(f"`eval_steps` must be >= 1, got {self.eval_steps}.")
        if self.snapshot_ensemble is not None:
            if self.snapshot_ensemble < 1:
                raise ValueError(f"`snapshot_ensemble` must be a number of snapshots >= 1, got {self.snapshot_ensemble}.")
            self.save_snapshots = True
        if self.checkpointing_steps not in (None, "epoch"):
            if not str(self.checkpointing_steps).isdigit() or int(self.checkpointing_steps) < 1:
                raise ValueError(
                    f"`checkpointing_steps` must be a number of steps >= 1 or 'epoch', got {self.checkpointing_steps!r}."
                )


def parse_warmup(value) -> int | float | str:
    """`'auto'`, a ratio in (0, 1), or a number of steps, as `transformers` 5 reads `warmup_steps`."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = value
    elif value == "auto":
        return "auto"
    else:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"`num_warmup_steps` must be a number of steps, a ratio below 1, or 'auto'; got {value!r}."
            ) from None
    if number < 0 or (number >= 1 and not float(number).is_integer()):
        raise ValueError(f"`num_warmup_steps` must be a whole number of steps, a ratio in [0, 1), or 'auto'; got {value!r}.")
    return number if number < 1 else int(number)


def resolve_warmup(num_warmup_steps, num_training_steps: int):
    """Steps for a ratio below 1 (`ceil(ratio * T)`, as `TrainingArguments.get_warmup_steps`), else unchanged."""
    if isinstance(num_warmup_steps, float):
        return math.ceil(num_warmup_steps * num_training_steps)
    return num_warmup_steps


def parse_args(argv: list[str] | None = None):
    return glue_data.parse_args((ModelArguments, DataArguments, LoopArguments), argv)


def main(argv: list[str] | None = None) -> dict:
    """Parse the arguments (a list, `sys.argv` by default) and train; returns what `all_results.json` holds."""
    return train(*parse_args(argv))


def train(model_args: ModelArguments, data_args: DataArguments, args: LoopArguments) -> dict:
    if args.output_dir is None:
        args.output_dir = os.path.join("outputs", data_args.task_name or "custom")
    check_output_dir(args)
    # A seedable sampler makes each epoch's shuffle a function of the seed and the epoch, so that a resumed run
    # skips exactly the batches the interrupted one had seen.
    accelerator_kwargs = {
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "dataloader_config": DataLoaderConfiguration(use_seedable_sampler=True),
    }
    if args.with_tracking:
        accelerator_kwargs.update(log_with=args.report_to, project_dir=args.output_dir)
    accelerator = Accelerator(**accelerator_kwargs)
    set_seed(args.seed)
    if accelerator.is_main_process:
        os.makedirs(args.output_dir, exist_ok=True)
    accelerator.wait_for_everyone()

    with accelerator.main_process_first():
        raw = load_raw_datasets(data_args)
    is_regression, label_list = label_info(data_args, raw)
    model, tokenizer = load_model_and_tokenizer(model_args, data_args, 1 if is_regression else len(label_list), label_list)
    with accelerator.main_process_first():
        processed = tokenize_datasets(raw, tokenizer, data_args, label_list, is_regression)

    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if accelerator.mixed_precision != "no" else None)
    train_dataloader = DataLoader(
        processed["train"], shuffle=True, collate_fn=collator, batch_size=args.per_device_train_batch_size
    )
    eval_dataloader = DataLoader(processed["validation"], collate_fn=collator, batch_size=args.per_device_eval_batch_size)

    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate)

    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    # The schedule counts optimizer steps of the *global* batch: `len(train_dataloader)` is per process after
    # `prepare`, which is what one optimizer step consumes on each process.
    num_update_steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    if args.max_train_steps is None:
        max_train_steps = math.ceil(args.num_train_epochs * num_update_steps_per_epoch)
    else:
        max_train_steps = args.max_train_steps
    num_train_epochs = math.ceil(max_train_steps / num_update_steps_per_epoch)
    num_warmup_steps = resolve_warmup(args.num_warmup_steps, max_train_steps)
    # Built on the unwrapped optimizer and never passed to `prepare`: stepped exactly once per optimizer step below.
    lr_scheduler = get_schedule(
        args.lr_schedule, optimizer.optimizer, num_warmup_steps, max_train_steps, **args.lr_schedule_kwargs
    )
    accelerator.register_for_checkpointing(lr_scheduler)

    total_batch_size = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    run_config = {
        "num_processes": accelerator.num_processes,
        "total_batch_size": total_batch_size,
        "max_train_steps": max_train_steps,
        "lr_schedule": args.lr_schedule,
    }
    if args.with_tracking:
        hparams = {**vars(args), **run_config}  # trackers take plain scalars
        accelerator.init_trackers(
            "hf_lrsched_glue", {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in hparams.items()}
        )

    logger.info(f"  Examples = {len(processed['train'])}, epochs = {num_train_epochs}, processes = "
                f"{accelerator.num_processes}, total batch = {total_batch_size}, optimizer steps = {max_train_steps}")

    # What a checkpoint records besides accelerate's state: the options that shape the schedule (to name them when
    # a resume is refused) and every record so far, so that a resumed run's files equal an uninterrupted run's.
    options = schedule_options(args, max_train_steps)
    records: dict[str, list] = {"lr_history": [], "loss_history": [], "eval_history": [], "snapshots": []}
    completed_steps, starting_epoch, resume_batches = 0, 0, 0
    if args.resume_from_checkpoint:
        meta = load_checkpoint(accelerator, args.resume_from_checkpoint, run_config, options)
        completed_steps = meta["completed_steps"]
        records = {key: [list(row) if isinstance(row, list) else row for row in meta[key]] for key in records}
        starting_epoch = completed_steps // num_update_steps_per_epoch
        resume_batches = (completed_steps - starting_epoch * num_update_steps_per_epoch) * args.gradient_accumulation_steps
        accelerator.print(f"Resumed from {args.resume_from_checkpoint} at optimizer step {completed_steps}")
    lr_history, loss_history, eval_history = records["lr_history"], records["loss_history"], records["eval_history"]

    def save_checkpoint(name: str) -> None:
        path = os.path.join(args.output_dir, name)
        accelerator.save_state(path)
        if accelerator.is_main_process:  # written last and atomically: a checkpoint without it is incomplete
            write_json(os.path.join(path, CHECKPOINT_META),
                       {**run_config, "options": options, "completed_steps": completed_steps, **records})
        accelerator.wait_for_everyone()

    metric = Metric(data_args.task_name)

    last_probabilities: dict[str, torch.Tensor] = {}  # the softmax outputs of the last evaluation

    def evaluate() -> dict[str, float]:
        """The task's metrics on the whole evaluation set, its mean loss (cross-entropy, or squared error) and, for
        classification, the expected calibration error."""
        model.eval()
        predictions, references, losses, probabilities = [], [], [], []
        for batch in eval_dataloader:
            with torch.no_grad():
                logits = model(**batch).logits.float()
            if is_regression:
                preds = logits.squeeze(-1)
                loss = (preds - batch["labels"].float()) ** 2
            else:
                preds = logits.argmax(dim=-1)
                loss = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
            preds, refs, loss, probs = accelerator.gather_for_metrics((preds, batch["labels"], loss, logits.softmax(-1)))
            predictions.append(preds.cpu())
            references.append(refs.cpu())
            losses.append(loss.cpu())
            probabilities.append(probs.cpu())
        model.train()
        metrics = metric.compute(torch.cat(predictions).numpy(), torch.cat(references).numpy())
        metrics["loss"] = float(torch.cat(losses).mean())
        if not is_regression:
            last_probabilities.update(probs=torch.cat(probabilities), labels=torch.cat(references))
            metrics["ece"] = expected_calibration_error(last_probabilities["probs"], last_probabilities["labels"])
        return metrics

    # With --save_snapshots: the model at the end of every cycle (the step before each restart, and the last step).
    cycle_ends = set()
    if args.save_snapshots:
        cycle_ends = set(describe(lr_scheduler).cycle_ends) if isinstance(lr_scheduler, ScheduleLR) else {max_train_steps}

    def take_snapshot(step: int) -> None:
        metrics = evaluate()
        path = os.path.join(args.output_dir, f"snapshot-{step}")
        if accelerator.is_main_process:
            save_snapshot(accelerator.unwrap_model(model), tokenizer, path, last_probabilities)
        records["snapshots"].append({"step": step, "path": os.path.abspath(path), **metrics})
        accelerator.wait_for_everyone()

    progress = tqdm(range(max_train_steps), initial=completed_steps, disable=not accelerator.is_local_main_process)
    eval_metrics: dict[str, float] = {}
    first_step, train_time, start = completed_steps, 0.0, time.time()
    for epoch in range(starting_epoch, num_train_epochs):
        model.train()
        train_dataloader.set_epoch(epoch)
        if epoch == starting_epoch and resume_batches:
            active_dataloader = accelerator.skip_first_batches(train_dataloader, resume_batches)
        else:
            active_dataloader = train_dataloader
        step_loss, step_batches, tic = 0.0, 0, time.perf_counter()
        for batch in active_dataloader:
            with accelerator.accumulate(model):
                loss = model(**batch).loss
                step_loss += loss.detach().float().item()
                step_batches += 1
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    lr_used = optimizer.param_groups[0]["lr"]
                optimizer.step()
                if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                    lr_scheduler.step()
                optimizer.zero_grad()
            if not accelerator.sync_gradients:
                continue
            completed_steps += 1
            train_time += time.perf_counter() - tic
            lr_history.append([completed_steps, lr_used])
            loss_history.append([completed_steps, step_loss / step_batches])
            step_loss, step_batches = 0.0, 0
            progress.update(1)
            if completed_steps in cycle_ends:
                take_snapshot(completed_steps)
            if args.with_tracking:
                accelerator.log({"train_loss": loss_history[-1][1], "lr": lr_used}, step=completed_steps)
            if args.checkpointing_steps not in (None, "epoch") and completed_steps % int(args.checkpointing_steps) == 0:
                save_checkpoint(f"step_{completed_steps}")
            if args.eval_steps and completed_steps % args.eval_steps == 0 and completed_steps < max_train_steps:
                eval_history.append({"step": completed_steps, **evaluate()})
                if args.with_tracking:
                    accelerator.log({f"eval_{k}": v for k, v in eval_history[-1].items() if k != "step"},
                                    step=completed_steps)
            if completed_steps >= max_train_steps:
                break
            tic = time.perf_counter()

        eval_metrics = evaluate()
        if args.eval_steps:
            eval_history.append({"step": completed_steps, **eval_metrics})
        accelerator.print(f"epoch {epoch}: {eval_metrics} (metrics: {metric.source})")
        if args.with_tracking:
            accelerator.log({**{f"eval_{k}": v for k, v in eval_metrics.items()}, "epoch": epoch}, step=completed_steps)
        if args.checkpointing_steps == "epoch":
            save_checkpoint(f"epoch_{epoch}")
        if completed_steps >= max_train_steps:
            break

    progress.close()
    runtime = time.time() - start
    if args.with_tracking:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    samples = (completed_steps - first_step) * total_batch_size
    results = {
        **{f"eval_{k}": v for k, v in eval_metrics.items()},
        **run_config,
        "completed_steps": completed_steps,
        "num_warmup_steps": bound_warmup_steps(lr_scheduler, num_warmup_steps),
        "final_lr": lr_scheduler.get_last_lr()[0],
        "train_runtime_s": round(runtime, 1),
        # the training loop alone: forward, backward, optimizer and scheduler steps (no evaluation, no checkpoint)
        "train_loop_s": round(train_time, 3),
        "train_samples_per_second": round(samples / train_time, 3) if train_time else None,
        "metrics_source": metric.source,
    }
    if eval_history:
        results["eval_history"] = eval_history
    if records["snapshots"]:
        results["snapshots"] = records["snapshots"]
    if args.snapshot_ensemble and records["snapshots"]:
        results["snapshot_ensemble"] = ensemble_metrics(records["snapshots"][-args.snapshot_ensemble:])
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(args.output_dir)
        tokenizer.save_pretrained(args.output_dir)
        write_json(os.path.join(args.output_dir, "all_results.json"), results)
        write_csv(os.path.join(args.output_dir, "lr_schedule.csv"), ["step", "lr"],
                  [(step, repr(lr)) for step, lr in lr_history])
        write_csv(os.path.join(args.output_dir, "train_loss.csv"), ["step", "loss"], loss_history)
    accelerator.wait_for_everyone()
    return results


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE over `bins` equal-width confidence bins: the mean gap between confidence and accuracy, weighted by bin size
    (Guo et al. 2017)."""
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += float(inside.float().mean() * (confidence[inside].mean() - correct[inside].mean()).abs())
    return ece


def save_snapshot(model, tokenizer, path: str, evaluation: dict) -> None:
    """The model and tokenizer as `save_pretrained` writes them, and the held-out softmax outputs, written into a
    temporary folder and renamed into place (a kill never leaves a partial snapshot)."""
    tmp = f"{path}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if evaluation:
        torch.save({"probs": evaluation["probs"], "labels": evaluation["labels"]}, os.path.join(tmp, EVAL_PROBS))
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)


def ensemble_metrics(snapshots: list[dict]) -> dict:
    """Accuracy, negative log-likelihood and ECE of the mean of the snapshots' held-out softmax outputs."""
    saved = [torch.load(os.path.join(s["path"], EVAL_PROBS), weights_only=True) for s in snapshots]
    probs, labels = torch.stack([s["probs"] for s in saved]).mean(dim=0), saved[0]["labels"]
    nll = float(-probs[torch.arange(len(labels)), labels].clamp_min(1e-12).log().mean())
    return {"k": len(snapshots), "steps": [s["step"] for s in snapshots],
            "accuracy": float((probs.argmax(-1) == labels).float().mean()), "nll": nll,
            "ece": expected_calibration_error(probs, labels)}


def check_output_dir(args: LoopArguments) -> None:
    """Refuse to write into a non-empty output directory, unless told to or resuming from a checkpoint inside it."""
    path = Path(args.output_dir)
    if args.overwrite_output_dir or not path.is_dir() or not any(path.iterdir()):
        return
    if args.resume_from_checkpoint and path.resolve() in Path(args.resume_from_checkpoint).resolve().parents:
        return
    raise ResumeError(
        f"the output directory {str(path)!r} is not empty, and this run would overwrite its results. Pass "
        "--overwrite_output_dir to write there anyway, --resume_from_checkpoint to continue a run saved in it, or "
        "another --output_dir."
    )


def schedule_options(args: LoopArguments, max_train_steps: int) -> dict:
    """The options of this script that shape the learning rate, as a checkpoint records them."""
    return {
        "lr_schedule": args.lr_schedule,
        "lr_schedule_kwargs": args.lr_schedule_kwargs,
        "num_warmup_steps": args.num_warmup_steps,
        "learning_rate": args.learning_rate,
        "max_train_steps": max_train_steps,
    }


def load_checkpoint(accelerator: Accelerator, checkpoint: str, run_config: dict, options: dict) -> dict:
    """Load accelerate's state from `checkpoint` and return its metadata, or raise `ResumeError` saying why not.

    The process count and global batch must match (the data order and the step count depend on them). The
    schedule's own options may differ only as far as the schedule's resume identity allows: the learning rate of
    every step already taken must stay what it was (a `wsd` run may grow in its stable phase, say). A damaged or
    incomplete checkpoint names the file.
    """
    meta_path = Path(checkpoint) / CHECKPOINT_META
    if not meta_path.is_file():
        raise ResumeError(f"`{checkpoint}` is not a complete checkpoint of this script: {meta_path} is missing.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResumeError(f"the checkpoint file {meta_path} is damaged or truncated ({error}).") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("completed_steps"), int):
        raise ResumeError(f"the checkpoint file {meta_path} is damaged: it records no `completed_steps`.")
    for key in ("num_processes", "total_batch_size"):
        if meta.get(key) != run_config[key]:
            raise ResumeError(
                f"Cannot resume from {checkpoint}: it was saved with {key}={meta.get(key)}, this run "
                f"has {key}={run_config[key]}. The schedule and the data order are laid out in optimizer steps "
                f"of one process count and global batch; resume with "
                f"{meta.get('num_processes')} processes and a total batch of {meta.get('total_batch_size')}."
            )
    saved = meta.get("options", {})
    changed = [f"--{key} {saved.get(key)!r} -> {value!r}" for key, value in options.items() if saved.get(key) != value]
    try:
        accelerator.load_state(checkpoint)
    except ValueError as error:
        if "Cannot resume this schedule" not in str(error):
            raise ResumeError(f"cannot load the checkpoint {checkpoint}: {damaged_file(checkpoint) or error}") from None
        raise ResumeError(
            f"Cannot resume from {checkpoint} with {', '.join(changed) or 'these options'}: the {meta['completed_steps']} "
            f"steps already taken would get other learning rates. {error}"
        ) from None
    except Exception as error:  # a truncated or missing file of accelerate's state
        raise ResumeError(f"cannot load the checkpoint {checkpoint}: {damaged_file(checkpoint) or error}") from None
    if changed:
        accelerator.print(f"Resuming with {', '.join(changed)}: the steps already taken keep their learning rates.")
    for key in ("lr_history", "loss_history", "eval_history", "snapshots"):
        meta.setdefault(key, [])
    return meta


def damaged_file(checkpoint: str) -> str | None:
    """The first file of an accelerate checkpoint that cannot be read, described, or None."""
    from safetensors import safe_open

    path = Path(checkpoint)
    expected = ["model.safetensors", "optimizer.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl"]
    for name in expected:
        if not (path / name).is_file() and not (name == "model.safetensors" and (path / "pytorch_model.bin").is_file()):
            return f"the file {path / name} is missing"
    for file in sorted(path.iterdir()):
        try:
            if file.suffix == ".safetensors":
                with safe_open(str(file), framework="pt") as f:
                    for key in f.keys():
                        f.get_tensor(key)
            elif file.suffix in (".bin", ".pkl", ".pt"):
                torch.load(file, map_location="cpu", weights_only=False)
        except Exception as error:
            return f"the file {file} is damaged or truncated ({type(error).__name__}: {error})"
    return None


def bound_warmup_steps(lr_scheduler, default):
    """The warmup length the schedule uses (an `"auto"` warmup resolved) for a schedule of hf_lrsched."""
    return describe(lr_scheduler).num_warmup_steps if isinstance(lr_scheduler, ScheduleLR) else default


if __name__ == "__main__":
    try:
        parsed = parse_args()
    except (ValueError, TypeError) as error:  # bad arguments: the message, no traceback
        print(f"glue.py: error: {error}", file=sys.stderr)
        sys.exit(2)
    try:
        train(*parsed)
    except (HubUnavailableError, ResumeError) as error:
        print(f"glue.py: error: {error}", file=sys.stderr)
        sys.exit(2)
