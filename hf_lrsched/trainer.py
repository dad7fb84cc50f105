"""`LRSchedMixin` and `LRSchedTrainer`: `Trainer.create_scheduler` building hf_lrsched schedules by name."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from transformers import Trainer
from transformers.utils import is_sagemaker_mp_enabled

from .callbacks import LRCurveCallback
from .training_args import build_lr_scheduler, check_lr_schedule, check_training_length, uses_lrsched

__all__ = ["LRSchedMixin", "LRSchedTrainer"]


if TYPE_CHECKING:  # the mixin's attributes and `super()` calls are those of the Trainer it is mixed into
    _TrainerBase = Trainer
else:
    _TrainerBase = object


class LRSchedMixin(_TrainerBase):
    """
    Makes any [`~transformers.Trainer`] subclass build its learning-rate schedule through hf_lrsched when its
    arguments are [`LRSchedTrainingArguments`] with `lr_schedule` (or `auto_warmup`) set:

    ```python
    class MySFTTrainer(LRSchedMixin, SFTTrainer):
        pass
    ```

    Put the mixin first, so that its `create_scheduler` comes before the Trainer's. It honours the upstream
    contract: an existing `self.lr_scheduler` (passed in `optimizers=` or already created) is left alone and returned,
    a plain `TrainingArguments` (or `lr_schedule` unset) defers to `super().create_scheduler`, and
    `_created_lr_scheduler` is set when a scheduler is built. The schedule's options are validated again with the
    real number of training steps. With `save_lr_curve` (the default) it also adds an [`LRCurveCallback`].
    """

    def __init__(self, *args, **kwargs):
        try:
            super().__init__(*args, **kwargs)
        except TypeError as error:
            if "unexpected keyword argument" in str(error) and any(
                f"'{name}'" in str(error)
                for name in ("lr_schedule", "lr_schedule_kwargs", "auto_warmup", "save_lr_curve")
            ):
                raise TypeError(
                    f"{type(self).__name__} rebuilt its arguments as its own config class, which has no hf_lrsched "
                    f"fields ({error}). Put the fields in front of that config class instead: "
                    "`@dataclass class MyConfig(LRSchedArguments, SFTConfig): pass` (for TRL's SFTTrainer; likewise "
                    "DPOConfig, GRPOConfig, ...), and pass `MyConfig(...)` as `args`."
                ) from error
            raise
        if getattr(self.args, "save_lr_curve", False) and not any(
            isinstance(callback, LRCurveCallback) for callback in self.callback_handler.callbacks
        ):
            self.add_callback(LRCurveCallback())
        self._check_schedule_for_epochs()

    def _check_schedule_for_epochs(self) -> None:
        """In epoch mode (no `max_steps`), check the schedule against the real step count as soon as the train set's
        length gives it, rather than inside `train()`: the count is computed as `Trainer` computes it."""
        args = self.args
        if not uses_lrsched(args) or args.max_steps > 0 or self.lr_scheduler is not None:
            return
        check_training_length(args)  # the arguments may have changed since they were parsed
        if getattr(getattr(args, "accelerator_config", None), "split_batches", False):
            return  # each process gets a slice of every batch: the count is checked when training starts
        dataset = getattr(self, "train_dataset", None)
        try:
            num_rows = len(dataset)  # type: ignore[arg-type]
        except TypeError:  # no dataset yet, or an iterable one: checked when training starts
            return
        batch_size = self._train_batch_size
        batches = num_rows // batch_size if args.dataloader_drop_last else math.ceil(num_rows / batch_size)
        batches = math.ceil(batches / max(1, args.world_size))  # each process gets its share of the batches
        steps_per_epoch = max(math.ceil(batches / args.gradient_accumulation_steps), 1)
        num_training_steps = math.ceil(args.num_train_epochs * steps_per_epoch)
        if num_training_steps < 1:
            return
        check_lr_schedule(args, num_training_steps)

    def _get_learning_rate(self) -> float:
        # Called right after the optimizer step, before the scheduler moves on: the rates this step used.
        if self.optimizer is not None:
            self._group_learning_rates = [float(group["lr"]) for group in self.optimizer.param_groups]
        return super()._get_learning_rate()

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """`Trainer.log`, plus the rate of every param group when there are several: `learning_rate/group_<i>` next
        to the Trainer's `learning_rate` (group 0), so that TensorBoard and W&B draw them side by side."""
        rates = getattr(self, "_group_learning_rates", None)
        if "learning_rate" in logs and rates and len(rates) > 1:
            logs = {**logs, **{f"learning_rate/group_{i}": rate for i, rate in enumerate(rates)}}
        super().log(logs, *args, **kwargs)

    def create_scheduler(
        self, num_training_steps: int, optimizer: torch.optim.Optimizer | None = None
    ) -> torch.optim.lr_scheduler.LRScheduler:
        """
        Set up the scheduler: an hf_lrsched schedule when `args.lr_schedule` (or `args.auto_warmup`) is set,
        `transformers`' otherwise. The optimizer must have been set up before, or be passed.

        Args:
            num_training_steps (`int`):
                The number of training (optimizer) steps to do.
            optimizer (`torch.optim.Optimizer`, *optional*):
                The optimizer to schedule; defaults to `self.optimizer`.

        Returns:
            `torch.optim.lr_scheduler.LRScheduler`: the learning rate scheduler instance.
        """
        if self.lr_scheduler is not None or not uses_lrsched(self.args):
            return super().create_scheduler(num_training_steps, optimizer)
        if optimizer is None:
            if is_sagemaker_mp_enabled():
                import smdistributed.modelparallel.torch as smp  # type: ignore[import-not-found]

                optimizer = self.optimizer.optimizer if smp.state.cfg.fp16 else self.optimizer  # type: ignore[union-attr]
            else:
                optimizer = self.optimizer
        if optimizer is None:
            raise ValueError("`create_scheduler` needs an optimizer: call `create_optimizer()` first, or pass one.")
        self.lr_scheduler = build_lr_scheduler(self.args, optimizer, num_training_steps)
        self._created_lr_scheduler = True
        return self.lr_scheduler


class LRSchedTrainer(LRSchedMixin, Trainer):
    """A [`~transformers.Trainer`] that builds hf_lrsched schedules by name; see [`LRSchedMixin`]."""
