"""What `glue.py` keeps besides the training loop: checkpoints that resume exactly (with every record of the run),
snapshots of the model at each cycle end, and the metrics of their ensembles."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

from hf_lrsched import ResumeMismatchError

from glue_data import write_json

CHECKPOINT_META = "hf_lrsched_checkpoint.json"
EVAL_PROBS = "eval_probabilities.pt"  # in each snapshot: its held-out softmax outputs, for ensembles
RECORDS = ("lr_history", "loss_history", "eval_history", "snapshots")
# accelerate's file names in a checkpoint of one process (`save_state` on one device, or DDP)
SCHEDULER_FILE, OPTIMIZER_FILE, RNG_FILE = "custom_checkpoint_0.pkl", "optimizer.bin", "random_states_{}.pkl"
ACCELERATE_FILES = ("model.safetensors", OPTIMIZER_FILE, RNG_FILE.format(0), SCHEDULER_FILE)


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
    tmp, old = f"{path}.tmp", f"{path}.old"
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
    if accelerator.is_main_process:
        try:
            meta = {**meta, "files": file_digests(tmp)}
            write_json(os.path.join(tmp, CHECKPOINT_META), meta)
            shutil.rmtree(old, ignore_errors=True)
            if os.path.isdir(path):
                os.replace(path, old)  # the previous copy stays on disk until the new one is in place
            os.replace(tmp, path)
        except OSError as failure:
            error = cannot_write(tmp, failure)
            if not os.path.isdir(path) and os.path.isdir(old):
                os.replace(old, path)  # the previous copy back in place
            shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    raise_together(accelerator, error)


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


def check_writable(output_dir: str) -> None:
    """Create `output_dir` and write a file into it, so that a read-only or full disk is refused before training."""
    probe = os.path.join(output_dir, ".write_test")
    try:
        os.makedirs(output_dir, exist_ok=True)
        with open(probe, "w") as f:
            f.write("ok")
            f.flush()
            os.fsync(f.fileno())
        os.remove(probe)
    except OSError as error:
        raise cannot_write(probe, error) from None


def schedule_options(args, max_train_steps: int) -> dict:
    """The options of this script that shape the learning rate, as a checkpoint records them."""
    return {
        "lr_schedule": args.lr_schedule,
        "lr_schedule_kwargs": args.lr_schedule_kwargs,
        "num_warmup_steps": args.num_warmup_steps,
        "learning_rate": args.learning_rate,
        "max_train_steps": max_train_steps,
    }


def load_checkpoint(
    accelerator: Accelerator, checkpoint: str, run_config: dict, options: dict, max_train_steps: int
) -> dict:
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
    check_meta(checkpoint, meta, max_train_steps)
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


def ensemble_metrics(snapshots: list[dict], output_dir: str) -> dict:
    """Accuracy, negative log-likelihood and ECE of the mean of the snapshots' held-out softmax outputs (their
    `path`s relative to `output_dir`)."""
    saved = [torch.load(os.path.join(output_dir, s["path"], EVAL_PROBS), weights_only=True) for s in snapshots]
    probs, labels = torch.stack([s["probs"] for s in saved]).mean(dim=0), saved[0]["labels"]
    nll = float(-probs[torch.arange(len(labels)), labels].clamp_min(1e-12).log().mean())
    return {
        "k": len(snapshots),
        "steps": [s["step"] for s in snapshots],
        "accuracy": float((probs.argmax(-1) == labels).float().mean()),
        "nll": nll,
        "ece": expected_calibration_error(probs, labels),
    }


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
