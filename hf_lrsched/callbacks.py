"""`LRCurveCallback`: the learning rate of every optimizer step, written to `output_dir` when training ends."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import math
import os
import shutil
from collections.abc import Sequence
from typing import TYPE_CHECKING

from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.utils import logging

from .atomic import replace_folder, write_file
from .param_groups import group_labels
from .schedule_info import describe
from .scheduler import ScheduleLR, check_resume_identity

if TYPE_CHECKING:
    from torch.optim.lr_scheduler import LRScheduler

logger = logging.get_logger(__name__)

__all__ = ["LRCurveCallback", "SnapshotCallback", "write_lr_curve"]

CSV_NAME = "lr_schedule.csv"
PNG_NAME = "lr_schedule.png"


class LRCurveCallback(TrainerCallback, ExportableState):
    """
    Records the learning rate of every param group at every optimizer step (the rate the step used, before the
    scheduler moves on) and, at the end of training, writes `lr_schedule.csv` (`step,lr[,lr_group_1,...]`, steps
    counted from 1; with named param groups `lr/<name>` per group, see [`write_lr_curve`]) and, where matplotlib is
    installed, `lr_schedule.png` into `output_dir`, on the main process.

    A resumed run writes the whole curve, not only the steps after the resume, while checkpoints stay small: for an
    hf_lrsched schedule, whose resume identity guarantees that the resumed schedule gives every step already taken
    the rate it had, the rows before the checkpoint are recomputed from the schedule, and a checkpoint stores only
    the rare steps at which the schedule did not advance (an optimizer step skipped under mixed precision). For any
    other scheduler the rows themselves are stored in the checkpoint (`trainer_state.json`).

    No row is ever made up: the rows before a checkpoint are recomputed only from the schedule that the checkpoint
    records for them, when the resumed schedule gives those steps the same rates; otherwise they are the rows the
    checkpoint stores, and steps that nobody observed (a checkpoint of a plain `Trainer`, or one saved with
    `save_lr_curve=False`) are written with an empty rate (`nan` in the CSV). The learning rate also
    reaches TensorBoard and other trackers through the Trainer's own logging (`learning_rate`, every
    `logging_steps`).

    Args:
        write_png (`bool`, *optional*, defaults to `True`):
            Also draw the curve as a PNG when matplotlib can be imported.
    """

    def __init__(self, write_png: bool = True):
        self.write_png = write_png
        self.history: list[list[float]] = []  # [step, lr of group 0, lr of group 1, ...]; NaN where not observed
        self.epochs: dict[int, int] = {}  # step -> the scheduler step it used, where that is not step - 1
        # From this step on, the rows are those of the schedule `_record` (an hf_lrsched scheduler's record of its
        # name, options and base rates), so that a checkpoint stores the rows before it only; None: store them all.
        self._recompute_from: int | None = None
        self._record: dict | None = None

    def on_train_begin(self, args, state, control, lr_scheduler=None, optimizer=None, **kwargs):
        # On resume, `state` was just read from the checkpoint, and the scheduler's state loaded.
        name = type(self).__name__
        if state.stateful_callbacks is None:
            state.stateful_callbacks = {}
        stored = state.stateful_callbacks.get(name)
        if isinstance(stored, list):
            stored = stored[-1] if stored else None
        if stored is None:
            # A checkpoint saved without this callback (a plain Trainer's, `save_lr_curve=False`): `Trainer` saves
            # the state of every stateful callback into an entry it expects to find.
            state.stateful_callbacks[name] = self.state()
        attributes = (stored or {}).get("attributes", {})
        self.epochs = {int(step): int(epoch) for step, epoch in attributes.get("epochs", [])}
        num_groups = len(optimizer.param_groups) if optimizer is not None else 1
        done = state.global_step
        rows = {int(row[0]): list(row) for row in attributes.get("history", []) if int(row[0]) <= done}
        unknown = [float("nan")] * num_groups
        if stored is None:
            first = done + 1  # the steps already taken were not observed: their rates are unknown
        elif "recompute_from" in attributes:
            first = attributes["recompute_from"] or done + 1
        else:  # a checkpoint of an earlier version: rows stored for any scheduler but ours, none for ours
            first = done + 1 if rows else 1
        first = min(first, done + 1)
        saved_record = attributes.get("schedule")
        mine = _schedule_record(lr_scheduler)
        if first <= done and not self._same_past(
            saved_record, mine, lr_scheduler, done, legacy="schedule" not in attributes
        ):
            first = done + 1  # recorded under another schedule, which the current one does not reproduce
        self.history = [rows.get(step) or [step, *unknown] for step in range(1, first)]
        self.history += [self._row(lr_scheduler, step) for step in range(first, done + 1)]
        self._recompute_from, self._record = (None, None) if mine is None else (first, mine)

    @staticmethod
    def _same_past(saved: dict | None, mine: dict | None, scheduler, steps_taken: int, *, legacy: bool) -> bool:
        """Whether `scheduler` gives the steps already taken the rates that the saved schedule gave them."""
        if mine is None:
            return False
        if legacy:  # no record stored: the scheduler's own state was checked against its record when it loaded
            return True
        if saved is None:
            return False
        if saved == mine:
            return True
        try:
            check_resume_identity(saved, scheduler, steps_taken)
        except (ValueError, TypeError, KeyError):
            return False
        return True

    def _row(self, scheduler: ScheduleLR, step: int) -> list[float]:
        """The rates step `step` used, as the scheduler set them: `base_lr * lambda(epoch)` for each group."""
        epoch = self.epochs.get(step, step - 1)
        return [step] + [float(base * fn(epoch)) for base, fn in zip(scheduler.base_lrs, scheduler.lr_lambdas)]

    def on_optimizer_step(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        if optimizer is None:
            return
        step = state.global_step + 1  # the Trainer counts the step after the optimizer and scheduler moved
        self.history.append([step] + [float(group["lr"]) for group in optimizer.param_groups])
        epoch = getattr(lr_scheduler, "last_epoch", step - 1)
        if epoch != step - 1:
            self.epochs[step] = epoch

    def on_train_end(self, args, state, control, optimizer=None, lr_scheduler=None, **kwargs):
        if state.is_world_process_zero and self.history and args.output_dir:
            write_lr_curve(self.history, args.output_dir, write_png=self.write_png, scheduler=lr_scheduler)

    def state(self) -> dict:
        first = self._recompute_from
        stored = self.history if first is None else [row for row in self.history if row[0] < first]
        return {
            "args": {"write_png": self.write_png},
            "attributes": {
                "epochs": sorted([step, epoch] for step, epoch in self.epochs.items()),
                # Unknown rates (steps taken before this callback observed them) are left out: a missing step is one.
                "history": [row for row in stored if not any(math.isnan(lr) for lr in row[1:])],
                "recompute_from": first,
                "schedule": self._record,
            },
        }


def _schedule_record(scheduler) -> dict | None:
    """An hf_lrsched scheduler's record of its schedule (name, resolved options, base rates), or None."""
    if not isinstance(scheduler, ScheduleLR):
        return None
    record = scheduler.state_dict().get("_schedule")
    return None if record is None else json.loads(json.dumps(record))  # as a checkpoint stores it


def stage_starts(scheduler) -> list[int]:
    """The first optimizer steps of a run's stages after the first (`new_stage`), for the plot; none for a scheduler
    that is not ours. Scheduler step `t_k` is the rate of optimizer step `t_k + 1`."""
    if not isinstance(scheduler, ScheduleLR):
        return []
    return [stage["start"] + 1 for stage in scheduler.stages[1:]]


def write_lr_curve(
    history: list[list[float]],
    output_dir: str,
    *,
    write_png: bool = True,
    names: Sequence[str] | None = None,
    stages: Sequence[int] = (),
    scheduler: LRScheduler | None = None,
) -> list[str]:
    """
    Write `history` (rows of `[step, lr of group 0, lr of group 1, ...]`) as `lr_schedule.csv`, and as
    `lr_schedule.png` when `write_png` is set and matplotlib is installed. Returns the paths written.

    The CSV's columns are `step,lr[,lr_group_1,...]`: `lr` is group 0, as the trackers' `learning_rate`. With
    `names` (one readable name per param group, as [`build_param_groups`] names them), several groups are written as
    the trackers log them: `step,lr,lr/<name of group 0>,lr/<name of group 1>,...` (`lr` repeats group 0), and the
    PNG's legend names each group. `stages` (optimizer steps) marks where a new stage of the run begins. A group
    added to the optimizer during training has `nan` before it was added.

    Given the run's `scheduler`, the names and stages default to its own: its optimizer's group names (where
    [`build_param_groups`] set them) and the first step of each stage after the first (`new_stage`).

    ```python
    history.append([step, *(group["lr"] for group in optimizer.param_groups)])  # before optimizer.step()
    ...
    write_lr_curve(history, output_dir, scheduler=lr_scheduler)
    ```

    Args:
        history (`list[list[float]]`):
            One row per optimizer step: the step (from 1), then the rate each param group used.
        output_dir (`str`):
            The folder to write into (created if needed).
        write_png (`bool`, *optional*, defaults to `True`):
            Also draw `lr_schedule.png` when matplotlib can be imported.
        names (`Sequence[str]`, *optional*):
            One name per param group, for the CSV's columns and the legend.
        stages (`Sequence[int]`, *optional*, defaults to `()`):
            The first optimizer step of each stage after the first, marked on the plot.
        scheduler (`torch.optim.lr_scheduler.LRScheduler`, *optional*):
            The run's scheduler: `names` and `stages` default to its own.

    Returns:
        `list[str]`: the paths written.
    """
    os.makedirs(output_dir, exist_ok=True)
    num_groups = max(len(row) for row in history) - 1
    if scheduler is not None:
        names = names if names is not None else _group_names(getattr(scheduler, "optimizer", None), num_groups)
        stages = stages or stage_starts(scheduler)
    # A group added to the optimizer during training (`add_param_group`) has no rate before it was added: nan.
    history = [[*row, *[math.nan] * (num_groups + 1 - len(row))] for row in history]
    if names is not None and len(names) != num_groups:
        raise ValueError(f"`names` has {len(names)} names for {num_groups} param groups.")
    if names is not None and num_groups > 1:
        header = ["step", "lr"] + [f"lr/{name}" for name in names]
        history = [[row[0], row[1], *row[1:]] for row in history]
    else:
        header = ["step", "lr"] + [f"lr_group_{i}" for i in range(1, num_groups)]
    csv_path = os.path.join(output_dir, CSV_NAME)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    for row in history:
        writer.writerow([int(row[0])] + [repr(lr) for lr in row[1:]])
    write_file(csv_path, lambda f: f.write(text.getvalue().encode("utf-8")))  # renamed into place: never truncated
    written = [csv_path]
    if write_png and importlib.util.find_spec("matplotlib") is None:
        logger.info("matplotlib is not installed: the learning-rate curve is written as CSV only.")
    elif write_png:
        from .plot import Curve, plot_lr_curves

        steps = [int(row[0]) for row in history]
        first = 2 if names is not None and num_groups > 1 else 1  # the column of group 0's own rates
        labels = ["lr"] if num_groups == 1 else list(names or (f"param group {i}" for i in range(num_groups)))
        curves = [
            Curve(labels[i], steps, [row[first + i] for row in history], stages=stages) for i in range(num_groups)
        ]
        png_path = os.path.join(output_dir, PNG_NAME)
        plot_lr_curves(curves, png_path, title="Learning rate per optimizer step")
        written.append(png_path)
    return written


class SnapshotCallback(TrainerCallback):
    """
    Saves the model at the end of every cycle of the schedule, as `<output_dir>/snapshot-<global_step>` (a folder that
    `from_pretrained` loads, with the tokenizer or processor when the Trainer has one): after the last optimizer step
    before each restart, and after step `T`. For a schedule without restarts, that is once, at `T`. These are the
    models of SGDR (Loshchilov & Hutter 2017) and of snapshot ensembles (Huang et al. 2017): each is taken where the
    learning rate is at a floor.

    The cycle ends come from [`describe`] of the Trainer's scheduler, so they are exact for every schedule of
    hf_lrsched (for any other scheduler: once, at the last step). Only the main process writes; a snapshot is written
    into a temporary folder and renamed into place, so a kill never leaves a partial one; and a resumed run neither
    writes a snapshot twice nor misses one: the snapshots up to its checkpoint are behind it, those after it ahead.

    Use it with [`LRSchedTrainer`] or any trainer with [`LRSchedMixin`]:

    ```python
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=train_dataset, callbacks=[SnapshotCallback()])
    ```
    """

    def __init__(self) -> None:
        self.cycle_ends: set[int] = set()
        self.saved: list[str] = []

    def on_train_begin(self, args, state, control, lr_scheduler=None, **kwargs):
        if isinstance(lr_scheduler, ScheduleLR):
            self.cycle_ends = set(describe(lr_scheduler).cycle_ends)
        else:
            self.cycle_ends = {state.max_steps}

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if state.global_step not in self.cycle_ends or not state.is_world_process_zero or model is None:
            return
        path = os.path.join(args.output_dir, f"snapshot-{state.global_step}")
        tmp = f"{path}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        if processing_class is not None and hasattr(processing_class, "save_pretrained"):
            processing_class.save_pretrained(tmp)
        replace_folder(tmp, path)  # a snapshot left by an interrupted run past its last checkpoint: the same step
        self.saved.append(path)
        logger.info(f"Saved the snapshot at the end of a cycle: {path}")


def _group_names(optimizer, num_groups: int) -> list[str] | None:
    """Each param group's readable name (see [`group_labels`]) when the optimizer's groups carry names and match the
    curve's columns, else None (the columns stay `lr_group_<i>`)."""
    groups = getattr(optimizer, "param_groups", None)
    if not groups or len(groups) != num_groups or not any(isinstance(g.get("name"), str) for g in groups):
        return None
    return group_labels(groups)
