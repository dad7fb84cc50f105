"""Fine-tune BERT on a GLUE task with an hf_lrsched schedule, in a plain `accelerate` loop (no `Trainer`).

The learning rate at every optimizer step is exactly the schedule's, whatever the number of processes: the
scheduler is built in optimizer steps after `accelerator.prepare` (which may shorten the data loader), is *not*
passed to `prepare` (an `AcceleratedScheduler` would step it once per process per optimizer step), and is stepped
once per real optimizer step (not on a step skipped for a mixed-precision overflow). The lines that teach this are
marked `# hf_lrsched:` below.

    # One process (this machine's CPU, or one GPU): the offline default, BBC News with the packaged MiniLM BERT
    python examples/glue.py --task_name bbc_news

    # GLUE (needs the Hugging Face Hub), growing restarts with warmup derived from Adam's beta2
    python examples/glue.py --task_name mrpc --lr_schedule cosine_with_growing_restarts \
        --lr_schedule_kwargs '{"num_cycles": 3, "cycle_mult": 2.0}' --num_warmup_steps auto

    # Several processes: a shipped accelerate config (two CPU processes here; GPUs, machines: examples/README.md)
    ACCELERATE_USE_CPU=1 accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml \
        examples/glue.py --task_name bbc_news

    # All arguments from one file
    python examples/glue.py examples/configs/bbc_news.yaml

Writes to `--output_dir`: `all_results.json` (the final evaluation, the run's step count and duration),
`lr_schedule.csv` (`step,lr`: the learning rate each optimizer step used, steps counted from 1) and
`lr_schedule.png`, `train_loss.csv` (`step,loss`: the main process's mean loss of each optimizer step), the
fine-tuned model and tokenizer, and a checkpoint every `--checkpointing_steps`.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding

from hf_lrsched import build_param_groups, describe, get_schedule, resolve_num_warmup_steps
from hf_lrsched.callbacks import stage_starts, write_lr_curve
from hf_lrsched.param_groups import SCHEDULE_PLAN_KEYS, check_layer_decay, group_labels, parse_param_group_rules
from hf_lrsched.preview import PROBE_TRAINING_STEPS, check_schedule
from hf_lrsched.registry import check_reserved_schedule_kwargs, get_schedule_entry, parse_schedule_kwargs
from hf_lrsched.schedules import ScheduleLR

import glue_data
from glue_checkpoints import (
    RECORDS,
    OutputError,
    RunError,
    cannot_write,
    check_output_dir,
    check_writable,
    ensemble_metrics,
    expected_calibration_error,
    load_checkpoint,
    raise_together,
    save_checkpoint,
    save_snapshot,
    schedule_options,
    state_steps,
)
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
        default=None, metadata={"help": "The schedule's options as JSON, e.g. '{\"min_lr_ratio\": 0.1}'."}
    )
    num_warmup_steps: str = field(
        default="0.06",
        metadata={"help": "Warmup: a number of optimizer steps, a ratio of them below 1, or 'auto' (from beta2)."},
    )
    checkpointing_steps: str | None = field(
        default=None, metadata={"help": "Save the state every N optimizer steps, or 'epoch' at each epoch's end."}
    )
    resume_from_checkpoint: str | None = field(default=None, metadata={"help": "A checkpoint folder to resume from."})
    lr_layer_decay: float | None = field(
        default=None,
        metadata={
            "help": "Layer-wise LR decay gamma in (0, 1]: layer l of L (0 embeddings, L+1 head) at gamma^(L+1-l)."
        },
    )
    lr_param_groups: str | None = field(
        default=None,
        metadata={
            "help": "Rules giving parts of the model their own rates, first match wins, as JSON, e.g. "
            '\'[{"pattern": "classifier", "lr_mult": 10}]\'; keys: pattern, name, lr_mult, weight_decay, min_lr, '
            "min_lr_ratio, start_step, warmup_steps."
        },
    )
    lr_resume: str = field(
        default="identical",
        metadata={
            "help": "'identical': a resume must give the steps taken the rates they had; 'new_stage': the checkpoint's "
            "schedule stays the run's past and this one starts at its step, from the rate the run had reached.",
            "choices": ["identical", "new_stage"],
        },
    )
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Write into a non-empty --output_dir (otherwise refused, as in run_glue.py)."}
    )
    eval_steps: int | None = field(
        default=None, metadata={"help": "Also evaluate every N optimizer steps (all_results.json: eval_history)."}
    )
    save_snapshots: bool = field(
        default=False,
        metadata={
            "help": "Save the model at the end of every cycle of the schedule (before each restart, and at the "
            "end) as <output_dir>/snapshot-<step>, with its held-out metrics."
        },
    )
    snapshot_ensemble: int | None = field(
        default=None,
        metadata={
            "help": "Also evaluate the ensemble of the last K snapshots (mean of their softmax outputs); "
            "implies --save_snapshots."
        },
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
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"`weight_decay` must be a finite number >= 0, got {self.weight_decay}.")
        check_report_to(self.report_to)
        # hf_lrsched: the LR plan (param groups) is checked now; a rule that matches no parameter is reported when
        # the optimizer is built.
        self.lr_param_groups = parse_param_group_rules(self.lr_param_groups, "lr_param_groups")
        if self.lr_layer_decay is not None:
            self.lr_layer_decay = check_layer_decay(self.lr_layer_decay, "lr_layer_decay")
        own = sorted({key for rule in self.lr_param_groups or [] for key in SCHEDULE_PLAN_KEYS if rule.get(key)})
        if own and get_schedule_entry(self.lr_schedule).transformers_name is not None:
            raise ValueError(
                f"`lr_param_groups` sets {', '.join(own)}, which only the schedules of hf_lrsched follow; "
                f"`lr_schedule` {self.lr_schedule!r} is a transformers schedule."
            )
        if self.lr_resume not in ("identical", "new_stage"):
            raise ValueError(f"`lr_resume` must be 'identical' or 'new_stage', got {self.lr_resume!r}.")
        if self.lr_resume == "new_stage" and get_schedule_entry(self.lr_schedule).transformers_name is not None:
            raise ValueError(
                f"`lr_resume` 'new_stage' starts a schedule of hf_lrsched as a new stage; `lr_schedule` "
                f"{self.lr_schedule!r} is a transformers schedule, which records no stages."
            )
        # An unknown name, option or value fails now, before any model is loaded: the schedule is built once on a
        # throw-away optimizer (with the real step count when --max_train_steps gives it).
        check_lr_schedule(self, self.max_train_steps)
        for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"`{name}` must be >= 1, got {getattr(self, name)}.")
        if self.eval_steps is not None and self.eval_steps < 1:
            raise ValueError(f"`eval_steps` must be >= 1, got {self.eval_steps}.")
        if self.snapshot_ensemble is not None:
            if self.snapshot_ensemble < 1:
                raise ValueError(
                    f"`snapshot_ensemble` must be a number of snapshots >= 1, got {self.snapshot_ensemble}."
                )
            self.save_snapshots = True
        if self.checkpointing_steps not in (None, "epoch"):
            if not str(self.checkpointing_steps).isdigit() or int(self.checkpointing_steps) < 1:
                raise ValueError(
                    f"`checkpointing_steps` must be a number of steps >= 1 or 'epoch', got {self.checkpointing_steps!r}."
                )


def check_report_to(report_to: str) -> None:
    """`--report_to`: "all", "none" or accelerate's tracker names, comma-separated."""
    from accelerate.utils import LoggerType

    allowed = ["all", "none", *(tracker.value for tracker in LoggerType if tracker.value != "all")]
    for name in report_to.split(","):
        if name.strip() not in allowed:
            raise ValueError(f"`report_to` {name.strip()!r} is not a tracker; use one or more of {allowed}.")


def check_lr_schedule(args: LoopArguments, num_training_steps: int | None) -> None:
    """Build the schedule on a throw-away optimizer and refuse, naming the option, one this loop cannot train with:
    a value that fails (`inverse_sqrt` with `timescale` 0), a warmup longer than the run, a rate that is not a
    finite number >= 0 at some step (`polynomial` with `power` -1, or with its warmup as long as the run), or a
    scheduler stepped with a metric (`reduce_lr_on_plateau`, `greedy`: this loop steps once per optimizer step,
    without one). `num_training_steps=None` (epochs, not counted yet) checks the run's length again at the start."""
    name, kwargs = args.lr_schedule, args.lr_schedule_kwargs
    steps = num_training_steps or PROBE_TRAINING_STEPS
    warmup = resolve_num_warmup_steps(args.num_warmup_steps, steps)
    options = f"`lr_schedule` {name!r} with `lr_schedule_kwargs` {kwargs}"
    for option, minimum in (("timescale", 0), ("power", 0)):
        if name in ("inverse_sqrt", "polynomial") and option in kwargs:
            value = kwargs[option]
            if not (is_number(value) and math.isfinite(value) and value > minimum):
                raise ValueError(f"{options}: `{option}` must be a finite number > {minimum}, got {value!r}.")
    try:
        probe = check_schedule(name, warmup, steps, lr=args.learning_rate, **kwargs)
    except ArithmeticError as error:  # a transformers schedule's lambda, computed at construction
        raise ValueError(f"{options} cannot be computed: {type(error).__name__}: {error}.") from None
    if any(p.default is inspect.Parameter.empty for p in inspect.signature(probe.step).parameters.values()):
        raise ValueError(
            f"`lr_schedule` {name!r} builds a {type(probe).__name__}, stepped with a metric; this loop steps the "
            "schedule once per optimizer step, without one. Use a schedule of the step count, or glue_trainer.py."
        )
    if isinstance(probe, ScheduleLR) or not num_training_steps:
        return  # ours check their options themselves
    if name == "polynomial" and warmup != "auto" and warmup >= num_training_steps:
        raise ValueError(
            f"`num_warmup_steps` {args.num_warmup_steps!r} ({warmup} steps) must be fewer than the run's "
            f"{num_training_steps} steps for `lr_schedule` 'polynomial', which decays over the steps after warmup."
        )
    if warmup != "auto" and warmup > num_training_steps:
        raise ValueError(
            f"`num_warmup_steps` {args.num_warmup_steps!r} ({warmup} steps) is longer than the run "
            f"({num_training_steps} steps): the rate would never reach --learning_rate."
        )
    if isinstance(probe, torch.optim.lr_scheduler.LambdaLR):
        total = num_training_steps
        checked = range(total + 1) if total <= 100_000 else sorted({*range(0, total + 1, total // 10_000), total})
        for step in checked:
            try:
                factor = probe.lr_lambdas[0](step)
            except ArithmeticError as error:
                raise ValueError(
                    f"{options} fails at step {step} of {total} ({type(error).__name__}: {error}); "
                    f"with {warmup} warmup steps."
                ) from None
            if not (is_number(factor) and math.isfinite(factor) and factor >= 0):
                raise ValueError(
                    f"{options} gives the learning-rate factor {factor!r} at step {step} of {total}; it must be a "
                    "finite number >= 0."
                )


def check_run_length(args: LoopArguments, max_train_steps: int) -> None:
    """`check_lr_schedule` with the run's real length, when parsing could not know it (epochs); `RunError`."""
    if not args.max_train_steps:
        try:
            check_lr_schedule(args, max_train_steps)
        except (ValueError, TypeError) as error:
            raise RunError(str(error)) from None


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_args(argv: list[str] | None = None):
    return glue_data.parse_args((ModelArguments, DataArguments, LoopArguments), argv)


@dataclass
class Run:
    """Everything the loop needs, and what it has done so far (`records` go into checkpoints and results)."""

    args: LoopArguments
    accelerator: Accelerator
    model: torch.nn.Module
    tokenizer: object
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    train_dataloader: DataLoader
    eval_dataloader: DataLoader
    metric: Metric
    is_regression: bool
    steps_per_epoch: int
    max_train_steps: int
    run_config: dict
    completed_steps: int = 0
    records: dict = field(default_factory=lambda: {key: [] for key in RECORDS})
    last_evaluation: dict = field(default_factory=dict)  # the metrics of the latest evaluation
    cycle_ends: set = field(default_factory=set)
    last_probabilities: dict = field(default_factory=dict)
    eval_seconds: float = 0.0


def train(model_args: ModelArguments, data_args: DataArguments, args: LoopArguments) -> dict:
    """Train, evaluate and write the results; returns what `all_results.json` holds."""
    args.output_dir = args.output_dir or os.path.join("outputs", data_args.task_name or "custom")
    check_output_dir(args)
    accelerator = make_accelerator(args)
    model, tokenizer, processed, is_regression = load_task(accelerator, model_args, data_args)
    train_dataloader, eval_dataloader = make_dataloaders(processed, tokenizer, args, accelerator)
    if has_plan(args):  # hf_lrsched: parts of the model at their own rates (layer-wise decay, rules by name)
        groups = build_param_groups(
            model,
            args.learning_rate,
            args.weight_decay,
            layer_decay=args.lr_layer_decay,
            rules=args.lr_param_groups,
        )
    else:
        groups = param_groups(model, args.weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=args.learning_rate)
    # --8<-- [start:schedule]
    model, optimizer, train_dataloader, eval_dataloader = accelerator.prepare(
        model, optimizer, train_dataloader, eval_dataloader
    )

    # hf_lrsched: the schedule counts optimizer steps of the *global* batch. After `prepare`, `len(train_dataloader)`
    # is per process, which is what one optimizer step consumes on each process.
    steps_per_epoch = math.ceil(len(train_dataloader) / args.gradient_accumulation_steps)
    max_train_steps = args.max_train_steps or math.ceil(args.num_train_epochs * steps_per_epoch)
    check_run_length(args, max_train_steps)  # epochs: the options that depend on the length, checked now
    num_warmup_steps = resolve_num_warmup_steps(args.num_warmup_steps, max_train_steps)  # a ratio, steps or "auto"
    # hf_lrsched: built on the unwrapped optimizer and never passed to `prepare`: stepped once per optimizer step.
    new_stage = {"new_stage": True} if args.lr_resume == "new_stage" else {}  # a change of plan, asked for
    lr_scheduler = get_schedule(
        args.lr_schedule,
        optimizer.optimizer,
        num_warmup_steps,
        max_train_steps,
        **args.lr_schedule_kwargs,
        **new_stage,
    )
    accelerator.register_for_checkpointing(lr_scheduler)  # hf_lrsched: its state checks a resume's options
    # --8<-- [end:schedule]

    batch = args.per_device_train_batch_size * accelerator.num_processes * args.gradient_accumulation_steps
    run_config = {
        "num_processes": accelerator.num_processes,
        "total_batch_size": batch,
        "max_train_steps": max_train_steps,
        "lr_schedule": args.lr_schedule,
        "seed": args.seed,
    }
    run = Run(
        args,
        accelerator,
        model,
        tokenizer,
        optimizer,
        lr_scheduler,
        train_dataloader,
        eval_dataloader,
        Metric(data_args.task_name),
        is_regression,
        steps_per_epoch,
        max_train_steps,
        run_config,
    )
    if args.save_snapshots:  # hf_lrsched: `describe` knows where every cycle ends
        run.cycle_ends = (
            set(describe(lr_scheduler).cycle_ends) if isinstance(lr_scheduler, ScheduleLR) else {max_train_steps}
        )
    if args.resume_from_checkpoint:
        resume(run)
    if args.with_tracking:
        hparams = {**vars(args), **run_config}  # trackers take plain scalars
        plain = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in hparams.items()}
        accelerator.init_trackers("hf_lrsched_glue", plain)
    accelerator.print(plan_line(run, data_args, len(processed["train"])))
    return train_loop(run)


def make_accelerator(args: LoopArguments) -> Accelerator:
    # A seedable sampler makes each epoch's shuffle a function of the seed and the epoch, so that a resumed run
    # skips exactly the batches the interrupted one had seen.
    kwargs = {
        "gradient_accumulation_steps": args.gradient_accumulation_steps,
        "dataloader_config": DataLoaderConfiguration(use_seedable_sampler=True),
    }
    if args.with_tracking:
        kwargs.update(log_with=args.report_to, project_dir=args.output_dir)
    accelerator = Accelerator(**kwargs)
    # The run's own output only: a plan, one progress bar, a result. transformers' and datasets' notices (the load
    # report of the new classification head, their progress bars) stay quiet; their errors still show.
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    set_seed(args.seed)
    error = None
    if accelerator.is_main_process:
        try:
            check_writable(args.output_dir)  # a read-only or full disk: refused now, not after training
        except OutputError as failure:
            error = failure
    raise_together(accelerator, error)
    return accelerator


def load_task(accelerator: Accelerator, model_args: ModelArguments, data_args: DataArguments):
    """The model, its tokenizer, the tokenized train and validation sets, and whether the task is a regression."""
    with accelerator.main_process_first():
        raw = load_raw_datasets(data_args)
    is_regression, label_list = label_info(data_args, raw)
    model, tokenizer = load_model_and_tokenizer(
        model_args, data_args, 1 if is_regression else len(label_list), label_list
    )
    with accelerator.main_process_first():
        processed = tokenize_datasets(raw, tokenizer, data_args, label_list, is_regression)
    return model, tokenizer, processed, is_regression


def make_dataloaders(processed, tokenizer, args: LoopArguments, accelerator: Accelerator):
    pad_to = 8 if accelerator.mixed_precision != "no" else None
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=pad_to)
    # Each loader draws its workers' base seed from a generator of its own, not from torch's global generator, which
    # dropout uses: each new iterator (an epoch, an evaluation, the one that skips the batches seen before a resume)
    # would otherwise move the global generator, and a resumed run would get other dropout masks than the
    # uninterrupted one. The order of the batches is the seedable sampler's, a function of the seed and the epoch.
    train = DataLoader(
        processed["train"],
        shuffle=True,
        collate_fn=collator,
        batch_size=args.per_device_train_batch_size,
        generator=torch.Generator().manual_seed(args.seed),
    )
    evaluation = DataLoader(
        processed["validation"],
        collate_fn=collator,
        batch_size=args.per_device_eval_batch_size,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return train, evaluation


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's two groups, as in `run_glue_no_trainer.py`: no weight decay on biases and LayerNorm weights."""
    no_decay = ("bias", "LayerNorm.weight")
    return [
        {
            "params": [p for n, p in model.named_parameters() if not any(nd in n for nd in no_decay)],
            "weight_decay": weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if any(nd in n for nd in no_decay)], "weight_decay": 0.0},
    ]


def has_plan(args: LoopArguments) -> bool:
    return args.lr_layer_decay is not None or bool(args.lr_param_groups)


def plan_line(run: Run, data_args: DataArguments, num_examples: int) -> str:
    info = describe(run.lr_scheduler) if isinstance(run.lr_scheduler, ScheduleLR) else None
    warmup = f", warmup {info.num_warmup_steps} step{'s' if info.num_warmup_steps != 1 else ''}" if info else ""
    cycles = f", {info.num_cycles} cycles" if info and info.num_cycles > 1 else ""
    resumed = f", resuming at step {run.completed_steps}" if run.completed_steps else ""
    return (
        f"{data_args.task_name or 'custom'}: {num_examples:,} examples, {run.max_train_steps} optimizer steps "
        f"(global batch {run.run_config['total_batch_size']}, {run.accelerator.num_processes} process"
        f"{'es' if run.accelerator.num_processes > 1 else ''}), {run.args.lr_schedule} at lr "
        f"{run.args.learning_rate:g}{warmup}{cycles}{resumed}{groups_text(run)}"
    )


def groups_text(run: Run) -> str:
    """`; 14 param groups: embeddings 2.6e-05, layer_0 3.3e-05, ...` for a run with an LR plan, else nothing."""
    if not has_plan(run.args):
        return ""
    groups = run.optimizer.param_groups
    rates: dict[str, float] = {}
    for label, group in zip(group_labels(groups), groups):  # a group and its no-decay twin share a rate
        rates.setdefault(label.removesuffix(".no_decay"), group["initial_lr"])
    return f"; {len(groups)} param groups: " + ", ".join(f"{name} {lr:.3g}" for name, lr in rates.items())


def resume(run: Run) -> None:
    """Load the checkpoint and the run's records; `ResumeError` when it cannot continue exactly."""
    options = schedule_options(run.args, run.max_train_steps)
    meta = load_checkpoint(
        run.accelerator, run.args.resume_from_checkpoint, run.run_config, options, run.max_train_steps
    )
    run.completed_steps = meta["completed_steps"]
    run.records = {key: meta.get(key, []) for key in RECORDS}
    run.last_evaluation = meta.get("last_evaluation", {})


def checkpoint(run: Run, name: str) -> None:
    """Save the state after everything the step does (its records, evaluation and snapshot), so that a run resumed
    from it repeats nothing and misses nothing."""
    meta = {
        **run.run_config,
        "options": schedule_options(run.args, run.max_train_steps),
        "completed_steps": run.completed_steps,
        **state_steps(run.accelerator, run.optimizer, run.lr_scheduler),
        **run.records,
        "last_evaluation": run.last_evaluation,
    }
    save_checkpoint(run.accelerator, os.path.join(run.args.output_dir, name), meta)


def train_loop(run: Run) -> dict:
    accelerator = run.accelerator
    num_epochs = math.ceil(run.max_train_steps / run.steps_per_epoch)
    starting_epoch = run.completed_steps // run.steps_per_epoch
    first_step, start = run.completed_steps, time.time()
    progress = tqdm(
        total=run.max_train_steps,
        initial=run.completed_steps,
        desc="training",
        unit="step",
        disable=not accelerator.is_local_main_process,
    )
    for epoch in range(starting_epoch, num_epochs):
        if run.completed_steps >= run.max_train_steps:  # a finished run, resumed from its last checkpoint
            break
        train_epoch(run, epoch, progress)
    progress.close()
    return finish(run, run.last_evaluation, time.time() - start, run.completed_steps - first_step)


def train_epoch(run: Run, epoch: int, progress) -> None:
    args, accelerator, model = run.args, run.accelerator, run.model
    model.train()
    run.train_dataloader.set_epoch(epoch)
    dataloader = run.train_dataloader
    skip = (run.completed_steps - epoch * run.steps_per_epoch) * args.gradient_accumulation_steps
    if skip:  # a resumed run continues mid-epoch, after the batches already seen
        dataloader = accelerator.skip_first_batches(run.train_dataloader, skip)
    step_loss, step_batches = 0.0, 0
    for batch in dataloader:
        with accelerator.accumulate(model):
            loss = model(**batch).loss
            step_loss, step_batches = step_loss + loss.detach().float().item(), step_batches + 1
            accelerator.backward(loss)
            lr_used = [group["lr"] for group in run.optimizer.param_groups]  # the rates this optimizer step uses
            run.optimizer.step()
            # hf_lrsched: once per real optimizer step; not after a step that mixed precision skipped.
            if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                run.lr_scheduler.step()
            run.optimizer.zero_grad()
        if not accelerator.sync_gradients:
            continue
        run.completed_steps += 1
        after_step(run, lr_used, step_loss / step_batches, progress)
        step_loss, step_batches = 0.0, 0
        if run.completed_steps >= run.max_train_steps:
            break


def after_step(run: Run, lrs: list[float], loss: float, progress) -> None:
    """Record the step, and save, evaluate or snapshot where the options ask for it."""
    args, step = run.args, run.completed_steps
    lr = lrs[0]
    # Every param group's rate with an LR plan; without one, the groups share the rate and one column says it.
    run.records["lr_history"].append([step, *lrs] if has_plan(args) else [step, lr])
    run.records["loss_history"].append([step, loss])
    progress.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.3g}", refresh=False)
    progress.update(1)
    if args.with_tracking:
        per_group = {}
        if has_plan(args):  # every param group's rate, under its name
            per_group = {f"lr/{label}": v for label, v in zip(group_labels(run.optimizer.param_groups), lrs)}
        run.accelerator.log({"train_loss": loss, "lr": lr, **per_group}, step=step)
    metrics = take_snapshot(run, step) if step in run.cycle_ends else None
    epoch, end_of_epoch = (step - 1) // run.steps_per_epoch, step % run.steps_per_epoch == 0
    end_of_epoch = end_of_epoch or step == run.max_train_steps  # the run's last step ends its last epoch
    if end_of_epoch or (args.eval_steps and step % args.eval_steps == 0):
        run.last_evaluation = metrics = metrics or evaluate(run)
        if args.eval_steps:
            run.records["eval_history"].append({"step": step, **metrics})
        if args.with_tracking:
            epoch_key = {"epoch": epoch} if end_of_epoch else {}
            run.accelerator.log({**{f"eval_{k}": v for k, v in metrics.items()}, **epoch_key}, step=step)
        if end_of_epoch and step < run.max_train_steps:
            progress.write(f"epoch {epoch}: {metric_summary(metrics)}")
    # Last: a checkpoint holds every record of its step, this step's evaluation and snapshot included.
    if args.checkpointing_steps == "epoch":
        if end_of_epoch:
            checkpoint(run, f"epoch_{epoch}")
    elif args.checkpointing_steps is not None and step % int(args.checkpointing_steps) == 0:
        checkpoint(run, f"step_{step}")


def evaluate(run: Run) -> dict[str, float]:
    """The task's metrics on the whole evaluation set, its mean loss (cross-entropy, or squared error) and, for
    classification, the expected calibration error."""
    tic = time.perf_counter()
    run.model.eval()
    predictions, references, losses, probabilities = [], [], [], []
    for batch in run.eval_dataloader:
        with torch.no_grad():
            logits = run.model(**batch).logits.float()
        if run.is_regression:
            preds = logits.squeeze(-1)
            loss = (preds - batch["labels"].float()) ** 2
        else:
            preds = logits.argmax(dim=-1)
            loss = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
        gathered = run.accelerator.gather_for_metrics((preds, batch["labels"], loss, logits.softmax(-1)))
        for values, tensor in zip((predictions, references, losses, probabilities), gathered):
            values.append(tensor.cpu())
    run.model.train()
    metrics = run.metric.compute(torch.cat(predictions).numpy(), torch.cat(references).numpy())
    metrics["loss"] = float(torch.cat(losses).mean())
    if not run.is_regression:
        run.last_probabilities.update(probs=torch.cat(probabilities), labels=torch.cat(references))
        metrics["ece"] = expected_calibration_error(run.last_probabilities["probs"], run.last_probabilities["labels"])
    run.eval_seconds += time.perf_counter() - tic
    return metrics


def take_snapshot(run: Run, step: int) -> dict[str, float]:
    """The model at the end of a cycle, with its held-out metrics (`--save_snapshots`); returns the metrics. Its
    `path` is recorded relative to the output directory, which may move between a kill and the resume."""
    metrics = evaluate(run)
    name, error = f"snapshot-{step}", None
    if run.accelerator.is_main_process:
        path = os.path.join(run.args.output_dir, name)
        try:
            save_snapshot(run.accelerator.unwrap_model(run.model), run.tokenizer, path, run.last_probabilities)
        except Exception as failure:  # a full disk: an OSError, torch.save's RuntimeError or a SafetensorError
            error = cannot_write(path, failure)
    raise_together(run.accelerator, error)
    run.records["snapshots"].append({"step": step, "path": name, **metrics})
    return metrics


def metric_summary(metrics: dict[str, float]) -> str:
    return ", ".join(f"{'eval loss' if k == 'loss' else k} {v:.4f}" for k, v in metrics.items())


def finish(run: Run, metrics: dict[str, float], runtime: float, steps_run: int) -> dict:
    """Write the model, `all_results.json`, the learning-rate curve (CSV and PNG) and the loss curve; print one line
    with the result and one with where the files went."""
    args, accelerator, records = run.args, run.accelerator, run.records
    if args.with_tracking:
        accelerator.end_training()
    accelerator.wait_for_everyone()
    train_seconds = runtime - run.eval_seconds
    results = {
        **{f"eval_{k}": v for k, v in metrics.items()},
        **run.run_config,
        "completed_steps": run.completed_steps,
        "num_warmup_steps": describe(run.lr_scheduler).num_warmup_steps
        if isinstance(run.lr_scheduler, ScheduleLR)
        else args.num_warmup_steps,
        "final_lr": run.lr_scheduler.get_last_lr()[0],
        "train_runtime_s": round(runtime, 1),
        # samples per second of training, evaluation excluded: what benchmarks/throughput.py compares
        "train_samples_per_second": round(steps_run * run.run_config["total_batch_size"] / train_seconds, 3)
        if steps_run and train_seconds > 0
        else None,
        "metrics_source": run.metric.source,
    }
    for key in ("eval_history", "snapshots"):
        if records[key]:
            results[key] = records[key]
    if args.snapshot_ensemble and records["snapshots"]:
        results["snapshot_ensemble"] = ensemble_metrics(
            records["snapshots"][-args.snapshot_ensemble :], args.output_dir
        )
    error = None
    if accelerator.is_main_process:
        try:
            accelerator.unwrap_model(run.model).save_pretrained(args.output_dir)
            run.tokenizer.save_pretrained(args.output_dir)
            write_json(os.path.join(args.output_dir, "all_results.json"), results)
            names = group_labels(run.optimizer.param_groups) if has_plan(args) else None
            stages = stage_starts(run.lr_scheduler)  # where a new stage (--lr_resume new_stage) took over
            written = write_lr_curve(records["lr_history"], args.output_dir, names=names, stages=stages)
            write_csv(os.path.join(args.output_dir, "train_loss.csv"), ["step", "loss"], records["loss_history"])
        except Exception as failure:  # a full disk: an OSError, torch.save's RuntimeError or a SafetensorError
            error = cannot_write(args.output_dir, failure)
        else:
            files = ["all_results.json", *(os.path.basename(path) for path in written), "train_loss.csv", "the model"]
            accelerator.print(f"step {run.completed_steps}: {metric_summary(metrics)} ({runtime:.0f} s)")
            accelerator.print(f"wrote {args.output_dir}: {', '.join(files)}")
    raise_together(accelerator, error)
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse, train and write; a user's mistake (an argument, a checkpoint, an output directory, the Hub offline, a
    disk that cannot be written) is one line on stderr and exit status 2, never a traceback."""
    try:
        parsed = parse_args(argv)
    except (ValueError, TypeError) as error:  # bad arguments: the message, no traceback
        print(f"glue.py: error: {error}", file=sys.stderr)
        return 2
    try:
        train(*parsed)
    except (HubUnavailableError, RunError, OutputError) as error:
        print(f"glue.py: error: {error}", file=sys.stderr)
        return 2
    finally:
        # Close the process group before the interpreter exits: gloo's threads, left running, can abort a process
        # at exit ("terminate called without an active exception"), after its work is done.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
