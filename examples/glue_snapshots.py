"""`glue.py`'s loop, with what a study of a schedule's cycles needs: the model saved at the end of every cycle (before
each restart, and at the end) with its held-out metrics, the ensemble of the last K of those snapshots, and trackers.

    python examples/glue_snapshots.py --task_name bbc_news --lr_schedule cosine_with_growing_restarts \\
        --lr_schedule_kwargs '{"num_cycles": 3, "cycle_mult": 2.0}' --num_train_epochs 3 --snapshot_ensemble 2

Every argument and guarantee of `glue.py` holds (checkpoints, exact resume, any number of processes). `describe`
gives the steps where the cycles end; each snapshot is `<output_dir>/snapshot-<step>` (the model, its tokenizer and
its held-out softmax outputs), and `all_results.json` adds `snapshots` (each one's step, path and metrics: accuracy,
loss, which is the negative log-likelihood, and `ece`) and `snapshot_ensemble` (the same metrics for the mean of the
last K snapshots' softmax outputs). With `--with_tracking`, the loss, every param group's rate and each evaluation go
to the trackers of `--report_to`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass, field

import torch

from hf_lrsched import ScheduleLR, describe
from hf_lrsched.atomic import replace_folder

import glue
from glue_checkpoints import Extension, Run, write_on_main
from glue_data import expected_calibration_error

EVAL_PROBS = "eval_probabilities.pt"  # in each snapshot: its held-out softmax outputs and labels, for ensembles


@dataclass
class SnapshotArguments(glue.LoopArguments):
    """`glue.py`'s arguments, and the snapshots' and trackers'."""

    save_snapshots: bool = field(
        default=True, metadata={"help": "Save the model at the end of every cycle as <output_dir>/snapshot-<step>."}
    )
    snapshot_ensemble: int | None = field(
        default=None,
        metadata={"help": "Also evaluate the ensemble of the last K snapshots (mean of their softmax outputs)."},
    )
    with_tracking: bool = field(default=False, metadata={"help": "Log the loss and learning rate to trackers."})
    report_to: str = field(default="all", metadata={"help": "Trackers for --with_tracking (tensorboard, wandb, ...)."})

    def __post_init__(self):
        super().__post_init__()
        from accelerate.utils import LoggerType

        allowed = ["all", "none", *(tracker.value for tracker in LoggerType if tracker.value != "all")]
        for name in self.report_to.split(","):
            if name.strip() not in allowed:
                raise ValueError(f"`report_to` {name.strip()!r} is not a tracker; use one or more of {allowed}.")
        if self.snapshot_ensemble is not None:
            if self.snapshot_ensemble < 1:
                raise ValueError(
                    f"`snapshot_ensemble` must be a number of snapshots >= 1, got {self.snapshot_ensemble}."
                )
            if not self.save_snapshots:
                raise ValueError("`snapshot_ensemble` needs the snapshots: unset `--save_snapshots false`.")


class Snapshots(Extension):
    """The snapshots at the cycles' ends, their ensemble and the trackers, hooked into `glue.py`'s loop."""

    def __init__(self):
        self.cycle_ends: set[int] = set()

    def accelerator_kwargs(self, args: SnapshotArguments) -> dict:
        return {"log_with": args.report_to, "project_dir": args.output_dir} if args.with_tracking else {}

    def start(self, run: Run) -> None:
        # hf_lrsched: `describe` knows where every cycle ends (a schedule of transformers: at the end of the run).
        ours = isinstance(run.lr_scheduler, ScheduleLR)
        self.cycle_ends = set(describe(run.lr_scheduler).cycle_ends) if ours else {run.max_train_steps}
        if run.args.with_tracking:
            hparams = {**vars(run.args), **run.config}  # trackers take plain scalars
            plain = {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in hparams.items()}
            run.accelerator.init_trackers("hf_lrsched_glue", plain)

    def step_end(self, run: Run, loss: float, lrs: list[float]) -> dict | None:
        step = run.completed_steps
        if run.args.with_tracking:
            names = [group.get("name") or f"group_{i}" for i, group in enumerate(run.optimizer.param_groups)]
            per_group = {f"lr/{name}": lr for name, lr in zip(names, lrs)} if run.has_plan else {}
            run.accelerator.log({"train_loss": loss, "lr": lrs[0], **per_group}, step=step)
        if run.args.save_snapshots and step in self.cycle_ends:
            return take_snapshot(run, step)
        return None

    def evaluated(self, run: Run, metrics: dict, end_of_epoch: bool) -> None:
        if run.args.with_tracking:
            step = run.completed_steps
            epoch = {"epoch": (step - 1) // run.steps_per_epoch} if end_of_epoch else {}
            run.accelerator.log({**{f"eval_{k}": v for k, v in metrics.items()}, **epoch}, step=step)

    def finish(self, run: Run, results: dict) -> None:
        if run.args.with_tracking:
            run.accelerator.end_training()
        snapshots = run.records["snapshots"]
        if snapshots:
            results["snapshots"] = snapshots
        if run.args.snapshot_ensemble and snapshots:
            results["snapshot_ensemble"] = ensemble_metrics(
                snapshots[-run.args.snapshot_ensemble :], run.args.output_dir
            )


def take_snapshot(run: Run, step: int) -> dict[str, float]:
    """The model at the end of a cycle, with its held-out metrics; returns the metrics. Written into a temporary
    folder and renamed into place (a kill never leaves a partial snapshot); its `path` is recorded relative to the
    output directory, which may move between a kill and the resume."""
    metrics = glue.evaluate(run)
    name = f"snapshot-{step}"
    path = os.path.join(run.args.output_dir, name)

    def write() -> None:
        tmp = f"{path}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        run.accelerator.unwrap_model(run.model).save_pretrained(tmp)
        run.tokenizer.save_pretrained(tmp)
        if run.last_probabilities:
            torch.save(run.last_probabilities, os.path.join(tmp, EVAL_PROBS))
        replace_folder(tmp, path)  # one left by an interrupted run past its last checkpoint: the same step

    write_on_main(run.accelerator, path, write)
    run.records["snapshots"].append({"step": step, "path": name, **metrics})
    return metrics


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


def parse_args(argv: list[str] | None = None) -> tuple:
    return glue.parse_args(argv, SnapshotArguments)


def main(argv: list[str] | None = None) -> int:
    return glue.main(argv, "glue_snapshots.py", Snapshots(), SnapshotArguments)


if __name__ == "__main__":
    sys.exit(main())
