"""What `glue.py` keeps besides the training loop: checkpoints that resume exactly (with every record of the run),
snapshots of the model at each cycle end, and the metrics of their ensembles."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator

from glue_data import write_json

CHECKPOINT_META = "hf_lrsched_checkpoint.json"
EVAL_PROBS = "eval_probabilities.pt"  # in each snapshot: its held-out softmax outputs, for ensembles
RECORDS = ("lr_history", "loss_history", "eval_history", "snapshots")


class ResumeError(ValueError):
    """A checkpoint that this run cannot continue exactly, or an output directory this run would overwrite."""


def save_checkpoint(accelerator: Accelerator, path: str, meta: dict) -> None:
    """accelerate's state (model, optimizer, scheduler, RNGs), then `meta` (the run's options and every record so
    far), written last and atomically: a checkpoint without it is incomplete."""
    accelerator.save_state(path)
    if accelerator.is_main_process:
        write_json(os.path.join(path, CHECKPOINT_META), meta)
    accelerator.wait_for_everyone()


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


def schedule_options(args, max_train_steps: int) -> dict:
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
            raise ResumeError(
                f"cannot load the checkpoint {checkpoint}: {damaged_file(checkpoint) or error}"
            ) from None
        raise ResumeError(
            f"Cannot resume from {checkpoint} with {', '.join(changed) or 'these options'}: the {meta['completed_steps']} "
            f"steps already taken would get other learning rates. {error}"
        ) from None
    except Exception as error:  # a truncated or missing file of accelerate's state
        raise ResumeError(f"cannot load the checkpoint {checkpoint}: {damaged_file(checkpoint) or error}") from None
    if changed:
        accelerator.print(f"Resuming with {', '.join(changed)}: the steps already taken keep their learning rates.")
    for key in RECORDS:
        meta.setdefault(key, [])
    return meta


def damaged_file(checkpoint: str) -> str | None:
    """The first file of an accelerate checkpoint that cannot be read, described, or None."""
    from safetensors import safe_open

    path = Path(checkpoint)
    expected = ["model.safetensors", "optimizer.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl"]
    for name in expected:
        if not (path / name).is_file() and not (
            name == "model.safetensors" and (path / "pytorch_model.bin").is_file()
        ):
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
