"""The run's state and what `glue.py` keeps of it besides the loop: checkpoints that resume exactly (with every
record of the run, checked file by file), the results it writes, and the line that announces its plan."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import torch
from accelerate import Accelerator

from hf_lrsched import ResumeMismatchError, ScheduleLR, describe
from hf_lrsched.atomic import replace_folder
from hf_lrsched.callbacks import write_lr_curve

from glue_data import Metric, write_csv, write_json

CHECKPOINT_META = "hf_lrsched_checkpoint.json"
RECORDS = ("lr_history", "loss_history", "eval_history", "snapshots")
# accelerate's file names in a checkpoint of one process (`save_state` on one device, or DDP)
SCHEDULER_FILE, OPTIMIZER_FILE, RNG_FILE = "custom_checkpoint_0.pkl", "optimizer.bin", "random_states_{}.pkl"
ACCELERATE_FILES = ("model.safetensors", OPTIMIZER_FILE, RNG_FILE.format(0), SCHEDULER_FILE)
T = TypeVar("T")


class Extension:
    """What `glue_snapshots.py` adds to `glue.py`'s loop (snapshots, ensembles, trackers); this one adds nothing."""

    def accelerator_kwargs(self, args) -> dict:
        return {}

    def start(self, run: Run) -> None:
        pass

    def step_end(self, run: Run, loss: float, lrs: list[float]) -> dict | None:
        """The metrics of an evaluation made at this step, which the step's own evaluation then reuses."""
        return None

    def evaluated(self, run: Run, metrics: dict, end_of_epoch: bool) -> None:
        pass

    def finish(self, run: Run, results: dict) -> None:
        pass


@dataclass
class Run:
    """The run's parts, and what it has done so far (`records` go into every checkpoint and into the results)."""

    args: object
    accelerator: Accelerator
    model: torch.nn.Module
    tokenizer: object
    optimizer: torch.optim.Optimizer
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler
    train_dataloader: torch.utils.data.DataLoader
    eval_dataloader: torch.utils.data.DataLoader
    metric: Metric
    steps_per_epoch: int
    max_train_steps: int
    num_warmup_steps: int | str  # resolved from a ratio; "auto" when a schedule of ours resolves it
    config: dict  # what a checkpoint must share with the run that resumes it
    extension: Extension = field(default_factory=Extension)
    completed_steps: int = 0
    records: dict = field(default_factory=lambda: {key: [] for key in RECORDS})
    last_evaluation: dict = field(default_factory=dict)
    last_probabilities: dict = field(default_factory=dict)  # the last evaluation's softmax outputs and labels
    eval_seconds: float = 0.0

    @property
    def has_plan(self) -> bool:
        """Whether parts of the model train at their own rates (`--lr_layer_decay`, `--lr_param_groups`)."""
        return self.args.lr_layer_decay is not None or bool(self.args.lr_param_groups)


def schedule_options(run: Run) -> dict:
    """The options that shape the learning rate, as a checkpoint records them (a resume names those that changed)."""
    keys = ("lr_schedule", "lr_schedule_kwargs", "num_warmup_steps", "learning_rate")
    return {**{key: getattr(run.args, key) for key in keys}, "max_train_steps": run.max_train_steps}


def checkpoint(run: Run, name: str) -> None:
    """Save the run's state and every record so far as `<output_dir>/<name>` (see `save_checkpoint`)."""
    meta = {**run.config, "options": schedule_options(run), "completed_steps": run.completed_steps, **run.records}
    meta.update(state_steps(run.accelerator, run.optimizer, run.lr_scheduler), last_evaluation=run.last_evaluation)
    save_checkpoint(run.accelerator, os.path.join(run.args.output_dir, name), meta)


def resume(run: Run) -> None:
    """Load `--resume_from_checkpoint` and the run's records, or raise `ResumeError` saying why it cannot continue."""
    meta = load_checkpoint(run.accelerator, run.args.resume_from_checkpoint, run.config, schedule_options(run))
    run.completed_steps, run.last_evaluation = meta["completed_steps"], meta.get("last_evaluation", {})
    run.records = {key: meta.get(key, []) for key in RECORDS}


def run_results(run: Run, runtime: float, steps_run: int) -> dict:
    """What `all_results.json` holds: the last evaluation, the run's configuration, steps, time and final rate."""
    info = describe(run.lr_scheduler) if isinstance(run.lr_scheduler, ScheduleLR) else None
    train_seconds = runtime - run.eval_seconds
    out = {
        **{f"eval_{k}": v for k, v in run.last_evaluation.items()},
        **run.config,
        "completed_steps": run.completed_steps,
        "num_warmup_steps": info.num_warmup_steps if info else run.num_warmup_steps,  # in steps
        "final_lr": run.lr_scheduler.get_last_lr()[0],
        "train_runtime_s": round(runtime, 1),
        # samples per second of training, evaluation excluded: what benchmarks/throughput.py compares
        "train_samples_per_second": round(steps_run * run.config["total_batch_size"] / train_seconds, 3)
        if steps_run and train_seconds > 0
        else None,
        "metrics_source": run.metric.source,
    }
    if run.records["eval_history"]:
        out["eval_history"] = run.records["eval_history"]
    return out


def write_results(run: Run, results: dict) -> list[str]:
    """On the main process: the model and tokenizer, `all_results.json`, `lr_schedule.csv`/`.png` and
    `train_loss.csv`, each written whole or not at all; returns what was written (nothing on the other processes),
    or raises `OutputError` on every process."""
    output_dir = run.args.output_dir

    def write() -> list[str]:
        run.accelerator.unwrap_model(run.model).save_pretrained(output_dir)
        run.tokenizer.save_pretrained(output_dir)
        write_json(os.path.join(output_dir, "all_results.json"), results)
        written = write_lr_curve(run.records["lr_history"], output_dir, scheduler=run.lr_scheduler)
        write_csv(os.path.join(output_dir, "train_loss.csv"), ["step", "loss"], run.records["loss_history"])
        return ["all_results.json", *(os.path.basename(p) for p in written), "train_loss.csv", "the model"]

    run.accelerator.wait_for_everyone()
    return write_on_main(run.accelerator, output_dir, write) or []


def plan_line(run: Run, task_name: str | None, num_examples: int) -> str:
    """`bbc_news: 1,700 examples, 107 optimizer steps (global batch 16, 1 process), warmup_cosine at lr 5e-05, ...`"""
    info = describe(run.lr_scheduler) if isinstance(run.lr_scheduler, ScheduleLR) else None
    warmup = f", warmup {info.num_warmup_steps} step{'s' if info.num_warmup_steps != 1 else ''}" if info else ""
    cycles = f", {info.num_cycles} cycles" if info and info.num_cycles > 1 else ""
    resumed = f", resuming at step {run.completed_steps}" if run.completed_steps else ""
    n = run.accelerator.num_processes
    line = (
        f"{task_name or 'custom'}: {num_examples:,} examples, {run.max_train_steps} optimizer steps (global batch "
        f"{run.config['total_batch_size']}, {n} process{'es' if n > 1 else ''}), {run.args.lr_schedule} at lr "
        f"{run.args.learning_rate:g}{warmup}{cycles}{resumed}"
    )
    if run.has_plan:  # `; 14 param groups: embeddings 2.6e-05, layer_0 3.3e-05, ...`
        groups, rates = run.optimizer.param_groups, {}
        for group in groups:  # a group and its no-decay twin share a rate
            rates.setdefault(group["name"].removesuffix(".no_decay"), group["initial_lr"])
        line += f"; {len(groups)} param groups: " + ", ".join(f"{name} {lr:.3g}" for name, lr in rates.items())
    return line


def metric_summary(metrics: dict[str, float]) -> str:
    return ", ".join(f"{'eval loss' if k == 'loss' else k} {v:.4f}" for k, v in metrics.items())


class RunError(ValueError):
    """An option, a checkpoint or an output directory that this run cannot use; the message says why."""


class ResumeError(RunError):
    """A checkpoint that this run cannot continue exactly, or an output directory this run would overwrite."""


class OutputError(RuntimeError):
    """A file of the run could not be written (a read-only or full disk); the message names the path."""


def cannot_write(path, error: Exception) -> OutputError:
    """The `OutputError` for a write under `path` that failed with `error`: an `OSError`, or what `torch.save` (a
    `RuntimeError`) and `safetensors` raise for a full disk or a file-size limit."""
    if isinstance(error, OSError):
        what = f"{error.filename or path}: {error.strerror or error}"
    else:
        what = f"{path}: {type(error).__name__}: {error}"
    try:
        free = f" ({shutil.disk_usage(Path(path).parent if not os.path.exists(path) else path).free:,} bytes free)"
    except OSError:
        free = ""
    return OutputError(
        f"cannot write {what}{free}. The files written before it (the last complete checkpoint among them) are left "
        "as they were."
    )


def save_checkpoint(accelerator: Accelerator, path: str, meta: dict) -> None:
    """accelerate's state (model, optimizer, scheduler, RNGs) and `meta` (the run's options, every record so far and
    the SHA-256 of each file of the state), written into `<path>.tmp` and renamed into place once complete: a kill
    or a full disk never leaves a partial checkpoint at `path`, nor damages the one already there. A write that
    fails on any process raises `OutputError` on every process (none is left waiting for the others)."""
    path = os.path.normpath(path)
    tmp = f"{path}.tmp"
    error = None
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    try:
        accelerator.save_state(tmp)
    except Exception as failure:  # a full disk is an OSError, torch.save's RuntimeError or a SafetensorError
        error = cannot_write(tmp, failure)
    try:
        raise_together(accelerator, error)  # also a barrier: every process's random states are written
    except OutputError:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        raise

    def complete() -> None:
        try:
            write_json(os.path.join(tmp, CHECKPOINT_META), {**meta, "files": file_digests(tmp)})
            replace_folder(tmp, path)  # the previous copy stays on disk until the new one is in place
        except Exception:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    write_on_main(accelerator, tmp, complete)


def write_on_main(accelerator: Accelerator, path: str, write: Callable[[], T]) -> T | None:
    """`write()` on the main process only, and its result (None on the others). A write that fails there (a full
    disk: an `OSError`, `torch.save`'s `RuntimeError` or a `SafetensorError`) raises `OutputError`, naming `path`,
    on every process (see `raise_together`)."""
    result, error = None, None
    if accelerator.is_main_process:
        try:
            result = write()
        except Exception as failure:
            error = cannot_write(path, failure)
    raise_together(accelerator, error)
    return result


def raise_together(accelerator: Accelerator, error: Exception | None) -> None:
    """A barrier at which every process raises `OutputError` if any process brings an error (the first one's
    message), so that a process that failed to write never leaves the others waiting for it."""
    messages = [str(error) if error is not None else None]
    if accelerator.num_processes > 1:
        import torch.distributed as dist

        messages = [None] * accelerator.num_processes
        dist.all_gather_object(messages, str(error) if error is not None else None)
    message = next((m for m in messages if m), None)
    if message is not None:
        raise OutputError(message)


def close_process_group() -> None:
    """Close the process group before exit, on success and on error: gloo's threads, left running, can abort a
    2-process run at exit ("terminate called without an active exception", SIGABRT on one rank). `Trainer` does not
    close it either."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def file_digests(folder: str) -> dict[str, str]:
    """`{relative path: SHA-256}` of every file under `folder` (the checkpoint's metadata excepted)."""
    digests = {}
    for root, _dirs, files in os.walk(folder):
        for name in sorted(files):
            full = os.path.join(root, name)
            relative = os.path.relpath(full, folder).replace(os.sep, "/")
            if relative != CHECKPOINT_META:
                digests[relative] = sha256(full)
    return dict(sorted(digests.items()))


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def state_steps(accelerator: Accelerator, optimizer, lr_scheduler) -> dict:
    """What each part of a checkpoint records of its step, as the checkpoint's metadata keeps it to check them."""
    return {
        "scheduler_last_epoch": int(lr_scheduler.last_epoch),
        "optimizer_step": optimizer_step(optimizer.state_dict()),
        "accelerator_step": int(accelerator.step),
    }


def optimizer_step(state_dict: dict) -> int:
    """The largest `step` count in an optimizer's state (0 before its first step)."""
    steps = [float(state["step"]) for state in state_dict.get("state", {}).values() if "step" in state]
    return int(max(steps, default=0))


def check_output_dir(args) -> None:
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


def check_writable(accelerator: Accelerator, output_dir: str) -> None:
    """Create `output_dir` and write a file into it on the main process, so that a read-only or full disk is refused
    (`OutputError` on every process) before training."""
    probe = os.path.join(output_dir, ".write_test")

    def write() -> None:
        os.makedirs(output_dir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)

    write_on_main(accelerator, probe, write)


def load_checkpoint(accelerator: Accelerator, checkpoint: str, run_config: dict, options: dict) -> dict:
    """Load accelerate's state from `checkpoint` and return its metadata, or raise `ResumeError` saying why not.

    The process count, global batch and seed must match (the data order and the step count depend on them). The
    schedule's own options may differ only as far as the schedule's resume identity allows: the learning rate of
    every step already taken must stay what it was (a `wsd` run may grow in its stable phase, say). Before anything
    is loaded, the checkpoint is checked whole: every file it was written with is there with the same SHA-256, the
    scheduler, optimizer and random states record the metadata's step, and the metadata's records are well formed.
    A missing, damaged, stale or mixed-in file, or hand-edited metadata, is named.
    """
    meta = read_meta(checkpoint)
    if "files" not in meta and "completed_steps" in meta:
        raise ResumeError(
            f"{checkpoint} was written by an earlier glue.py, whose checkpoints record neither their files' SHA-256 "
            "nor the steps of their parts: it cannot be checked, so it is not resumed. Start the run again."
        )
    for key in ("num_processes", "total_batch_size", "seed"):
        if meta.get(key) != run_config[key]:
            raise ResumeError(
                f"Cannot resume from {checkpoint}: it was saved with {key}={meta.get(key)}, this run "
                f"has {key}={run_config[key]}. The schedule and the data order are laid out in optimizer steps "
                f"of one process count, global batch and seed; resume with "
                f"{meta.get('num_processes')} processes, a total batch of {meta.get('total_batch_size')} and "
                f"--seed {meta.get('seed')}."
            )
    check_meta(checkpoint, meta, options["max_train_steps"])
    check_steps(checkpoint, meta, accelerator.process_index)  # first: it names the odd file out, or the metadata
    check_files(checkpoint, meta)
    saved = meta.get("options", {})
    changed = [f"--{key} {saved.get(key)!r} -> {value!r}" for key, value in options.items() if saved.get(key) != value]
    try:
        accelerator.load_state(checkpoint)
    except ResumeMismatchError as error:  # the schedule's resume identity: the past would change
        raise ResumeError(
            f"Cannot resume from {checkpoint} with {', '.join(changed) or 'these options'}: the {meta['completed_steps']} "
            f"steps already taken would get other learning rates. {error}"
        ) from None
    except ValueError as error:
        raise ResumeError(f"cannot load the checkpoint {checkpoint}: {damaged_file(checkpoint) or error}") from None
    except Exception as error:  # a truncated or missing file of accelerate's state
        raise ResumeError(f"cannot load the checkpoint {checkpoint}: {damaged_file(checkpoint) or error}") from None
    if changed:
        accelerator.print(f"Resuming with {', '.join(changed)}: the steps already taken keep their learning rates.")
    return meta


def read_meta(checkpoint: str) -> dict:
    meta_path = Path(checkpoint) / CHECKPOINT_META
    if not meta_path.is_file():
        raise ResumeError(f"`{checkpoint}` is not a complete checkpoint of this script: {meta_path} is missing.")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ResumeError(f"the checkpoint file {meta_path} is damaged or truncated ({error}).") from None
    if not isinstance(meta, dict):
        raise ResumeError(
            f"the checkpoint file {meta_path} is damaged: it holds a {type(meta).__name__}, not a mapping."
        )
    return meta


def check_meta(checkpoint: str, meta: dict, max_train_steps: int) -> None:
    """Refuse metadata whose step or records are not what this script writes (hand-edited or damaged)."""
    meta_path = Path(checkpoint) / CHECKPOINT_META

    def refuse(what: str) -> ResumeError:
        return ResumeError(f"the checkpoint file {meta_path} is damaged or was edited: {what}.")

    steps = meta.get("completed_steps")
    if type(steps) is not int or steps < 1:
        raise refuse(f"`completed_steps` must be a number of optimizer steps >= 1, got {steps!r}")
    if steps > max_train_steps:
        raise ResumeError(
            f"Cannot resume from {checkpoint}: it records {steps} completed steps, more than this run's "
            f"{max_train_steps} (--max_train_steps, or the epochs' steps)."
        )
    for key in ("scheduler_last_epoch", "optimizer_step", "accelerator_step"):
        if type(meta.get(key)) is not int or meta[key] < 0:
            raise refuse(f"`{key}` must be a number >= 0, got {meta.get(key)!r}")
    if not isinstance(meta.get("files"), dict) or not meta["files"]:
        raise refuse("it has no `files` record of the checkpoint's files and their SHA-256")
    for key in ("lr_history", "loss_history"):
        rows = meta.get(key)
        if not isinstance(rows, list) or [row[0] if is_row(row) else None for row in rows] != list(
            range(1, steps + 1)
        ):
            raise refuse(f"`{key}` must hold one [step, value, ...] row for each of the steps 1 to {steps}")
    for key in ("eval_history", "snapshots"):
        rows = meta.get(key, [])
        if not isinstance(rows, list) or not all(
            isinstance(row, dict) and type(row.get("step")) is int and 1 <= row["step"] <= steps for row in rows
        ):
            raise refuse(f"`{key}` must be a list of records with a `step` from 1 to {steps}")
    if not all(isinstance(s.get("path"), str) for s in meta.get("snapshots", [])):
        raise refuse("each of `snapshots` must have a `path`")
    last = meta.get("last_evaluation", {})
    if not isinstance(last, dict) or not all(is_number(v) for v in last.values()):
        raise refuse("`last_evaluation` must be a mapping of metric names to numbers")


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_row(row) -> bool:
    """`[step, value]`, or `[step, value of group 0, value of group 1, ...]` (every group's rate with an LR plan)."""
    return isinstance(row, list) and len(row) >= 2 and type(row[0]) is int and all(map(is_number, row[1:]))


def check_files(checkpoint: str, meta: dict) -> None:
    """Every file the checkpoint was written with is there, unchanged (its SHA-256 as recorded)."""
    path = Path(checkpoint)
    for name, digest in meta["files"].items():
        file = path / name
        if not file.is_file():
            raise ResumeError(f"cannot load the checkpoint {checkpoint}: the file {file} is missing.")
        if sha256(str(file)) != digest:
            damage = unreadable(file)
            raise ResumeError(
                f"cannot load the checkpoint {checkpoint}: the file {file} "
                + (
                    f"is damaged or truncated ({damage})."
                    if damage
                    else f"is not the one this checkpoint was written with at step {meta['completed_steps']} (its "
                    "SHA-256 differs): copied from another checkpoint, or changed."
                )
            )


def check_steps(checkpoint: str, meta: dict, process_index: int) -> None:
    """The scheduler, optimizer and random states each record the step the metadata records; else the odd file out
    (or the metadata, when the others agree among themselves) is named."""
    path = Path(checkpoint)
    found = {}  # file -> (what it records, what the metadata expects)
    readers = (
        (SCHEDULER_FILE, "scheduler_last_epoch", lambda state: int(state["last_epoch"])),
        (OPTIMIZER_FILE, "optimizer_step", optimizer_step),
        (RNG_FILE.format(process_index), "accelerator_step", lambda state: int(state["step"])),
    )
    for name, key, read in readers:
        if (path / name).is_file():
            try:
                found[name] = (read(torch.load(path / name, map_location="cpu", weights_only=False)), meta[key])
            except Exception as error:
                raise ResumeError(
                    f"cannot load the checkpoint {checkpoint}: the file {path / name} is damaged or truncated "
                    f"({type(error).__name__}: {error})."
                ) from None
    wrong = [name for name, (recorded, expected) in found.items() if recorded != expected]
    if not wrong:
        return
    if len(wrong) > 1:  # the metadata disagrees with several parts: it is the odd one out, or they all are
        parts = ", ".join(f"{path / name} records {found[name][0]} (expected {found[name][1]})" for name in wrong)
        raise ResumeError(
            f"cannot load the checkpoint {checkpoint}: its metadata {path / CHECKPOINT_META} records step "
            f"{meta['completed_steps']}, which its other parts do not ({parts}): the metadata of another checkpoint, "
            "edited, or parts from different checkpoints."
        )
    name = wrong[0]
    raise ResumeError(
        f"cannot load the checkpoint {checkpoint}: the file {path / name} is of another step than the checkpoint's "
        f"step {meta['completed_steps']} (it records {found[name][0]}, the checkpoint {found[name][1]}): a file "
        "copied from another checkpoint."
    )


def trainer_checkpoint_problem(checkpoint: str) -> str | None:
    """What keeps `Trainer` from resuming from `checkpoint` (missing, not a checkpoint, a damaged file), or None."""
    path = Path(checkpoint)
    if not path.is_dir():
        return f"the checkpoint {checkpoint} does not exist" if not path.exists() else f"{checkpoint} is not a folder"
    if not (path / "trainer_state.json").is_file():
        return f"{checkpoint} is not a Trainer checkpoint: {path / 'trainer_state.json'} is missing"
    return damaged_file(checkpoint, expected=())


def damaged_file(checkpoint: str, expected: tuple = ACCELERATE_FILES) -> str | None:
    """The first file of a checkpoint (accelerate's, by default) that is missing or cannot be read, described, or
    None."""
    path = Path(checkpoint)
    for name in expected:
        if not (path / name).is_file() and not (
            name == "model.safetensors" and (path / "pytorch_model.bin").is_file()
        ):
            return f"the file {path / name} is missing"
    for file in sorted(path.iterdir()):
        damage = unreadable(file)
        if damage:
            return f"the file {file} is damaged or truncated ({damage})"
    return None


def unreadable(file: Path) -> str | None:
    """Why a checkpoint's file cannot be read whole (safetensors, torch pickles, JSON), or None."""
    from safetensors import safe_open

    try:
        if file.suffix == ".safetensors":
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():
                    f.get_tensor(key)
        elif file.suffix in (".bin", ".pkl", ".pt", ".pth"):
            torch.load(file, map_location="cpu", weights_only=False)
        elif file.suffix == ".json":
            json.loads(file.read_text(encoding="utf-8"))
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None
