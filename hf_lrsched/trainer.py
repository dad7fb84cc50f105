"""`LRSchedMixin` and `LRSchedTrainer`: `Trainer.create_scheduler` building hf_lrsched schedules by name."""

from __future__ import annotations

import torch
from transformers import Trainer
from transformers.utils import is_sagemaker_mp_enabled

from .callbacks import LRCurveCallback
from .training_args import build_lr_scheduler, uses_lrsched

__all__ = ["LRSchedMixin", "LRSchedTrainer"]


class LRSchedMixin:
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
        super().__init__(*args, **kwargs)
        if getattr(self.args, "save_lr_curve", False) and not any(
            isinstance(callback, LRCurveCallback) for callback in self.callback_handler.callbacks
        ):
            self.add_callback(LRCurveCallback())

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
                import smdistributed.modelparallel.torch as smp

                optimizer = self.optimizer.optimizer if smp.state.cfg.fp16 else self.optimizer
            else:
                optimizer = self.optimizer
        self.lr_scheduler = build_lr_scheduler(self.args, optimizer, num_training_steps)
        self._created_lr_scheduler = True
        return self.lr_scheduler


class LRSchedTrainer(LRSchedMixin, Trainer):
    """A [`~transformers.Trainer`] that builds hf_lrsched schedules by name; see [`LRSchedMixin`]."""
