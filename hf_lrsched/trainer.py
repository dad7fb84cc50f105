"""`LRSchedMixin` and `LRSchedTrainer`: `Trainer.create_scheduler` building hf_lrsched schedules by name."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import torch
from transformers import Trainer
from transformers.trainer_utils import has_length
from transformers.utils import is_sagemaker_mp_enabled

from .callbacks import LRCurveCallback
from .param_groups import PLAN_KEYS, SCHEDULE_PLAN_KEYS, build_param_groups, group_labels, has_param_group_plan
from .scheduler import ScheduleLR
from .training_args import build_lr_scheduler, check_lr_schedule, check_training_length, uses_lrsched

__all__ = ["LRSchedMixin", "LRSchedTrainer"]


if TYPE_CHECKING:  # the mixin's attributes and `super()` calls are those of the Trainer it is mixed into
    from .training_args import LRSchedArguments

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
        length gives it, rather than inside `train()`: the count is the one `train()` will use (see
        `_epoch_mode_max_steps`)."""
        args = self.args
        if not uses_lrsched(args) or args.max_steps > 0 or self.lr_scheduler is not None:
            return
        check_training_length(args)  # the arguments may have changed since they were parsed
        num_training_steps = self._epoch_mode_max_steps()
        if num_training_steps is not None:
            check_lr_schedule(args, num_training_steps)

    def _epoch_mode_max_steps(self) -> int | None:
        """The number of optimizer steps that `train()` will take, asked of the Trainer as `train()` asks it: its
        train dataloader (`get_train_dataloader`, which accelerate shards over the data-parallel processes only:
        tensor- and context-parallel ranks share their batches) and `set_initial_training_values` (which counts the
        sequence-parallel shards, and gradient accumulation). `None` where the count is known only when training
        starts: no train set, one without a length, an empty one, a sampler that reads the whole set to be set up
        (`group_by_length`, `batch_rebalance`), which would be read twice, or a loader that cannot be built yet."""
        dataset = getattr(self, "train_dataset", None)
        if dataset is None or not has_length(dataset) or len(dataset) == 0:
            return None
        if getattr(self.args, "train_sampling_strategy", "random") in ("group_by_length", "batch_rebalance"):
            return None
        if not hasattr(self, "set_initial_training_values"):  # pragma: no cover - a transformers without it
            return None
        try:
            with torch.random.fork_rng(devices=[]):  # on several processes, preparing the loader draws a seed
                dataloader = self.get_train_dataloader()
        except Exception:  # a subclass's loader that needs what `train()` sets up: `train()` reports and checks it
            return None
        registered = getattr(self.accelerator, "_dataloaders", None)  # `prepare` keeps every loader it prepares
        if isinstance(registered, list) and any(loader is dataloader for loader in registered):
            registered[:] = [loader for loader in registered if loader is not dataloader]  # counted, not trained on
        if not has_length(dataloader) or len(dataloader) == 0:
            return None
        max_steps = self.set_initial_training_values(self.args, dataloader)[-1]
        return max_steps if max_steps >= 1 else None

    def _get_learning_rate(self) -> float:
        # Called right after the optimizer step, before the scheduler moves on: the rates this step used.
        if self.optimizer is not None:
            self._group_learning_rates = [float(group["lr"]) for group in self.optimizer.param_groups]
        return super()._get_learning_rate()

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        """`Trainer.log`, plus the rate of every param group when there are several: `learning_rate/<name>` (the
        group's `name`, as [`build_param_groups`] sets it) or `learning_rate/group_<i>` next to the Trainer's
        `learning_rate` (group 0), so that TensorBoard and W&B draw them side by side."""
        rates = getattr(self, "_group_learning_rates", None)
        if "learning_rate" in logs and rates and len(rates) > 1:
            labels = group_labels(self.optimizer.param_groups if self.optimizer is not None else [{}] * len(rates))
            logs = {**logs, **{f"learning_rate/{label}": rate for label, rate in zip(labels, rates)}}
        super().log(logs, *args, **kwargs)

    def create_optimizer(self, model=None) -> torch.optim.Optimizer:
        """
        Set up the optimizer as `Trainer.create_optimizer` does, with the param groups of the LR plan when `args` set
        one (`lr_layer_decay` or `lr_param_groups`): [`build_param_groups`] from the model, `args.learning_rate`,
        `args.weight_decay` and `self.get_decay_parameter_names(model)`, given to the optimizer class that
        `args.optim` selects (`Trainer.get_optimizer_cls_and_kwargs`, or the `optimizer_cls_and_kwargs` passed to
        the Trainer). Each group keeps its own `lr` and `weight_decay`, and the plan keys (`name`, `lr_mult`, its
        floor, start and ramp) that the scheduler built next reads. Without a plan, or with an optimizer already set
        up, it defers to `super().create_optimizer`.

        Args:
            model (`torch.nn.Module`, *optional*):
                The model to optimize (the wrapped one under FSDP); defaults to `self.model`.

        Returns:
            `torch.optim.Optimizer`: the optimizer instance.

        Raises:
            `ValueError`: for an `optim` that builds its own param groups (GaLore, APOLLO, LOMO, layer-wise ones,
                Muon- or Dion-like factories) or reads a plan key as an option of its own (`warmup_steps` of the
                schedule-free optimizers): the plan could not apply.
        """
        if self.optimizer is not None or not has_param_group_plan(self.args):
            return super().create_optimizer() if model is None else super().create_optimizer(model)
        opt_model = self.model if model is None else model
        if opt_model is None:
            raise ValueError("`create_optimizer` needs a model to build the LR plan's param groups from.")
        args = cast("LRSchedArguments", self.args)
        groups = build_param_groups(
            opt_model,
            args.learning_rate,
            args.weight_decay,
            layer_decay=args.lr_layer_decay,
            rules=cast("list[dict] | None", args.lr_param_groups),  # a JSON string is parsed in `__post_init__`
            decay_parameters=self.get_decay_parameter_names(opt_model),
        )
        groups = _split_by_device_mesh(groups)
        if self.optimizer_cls_and_kwargs is not None:
            optimizer_cls, optimizer_kwargs = self.optimizer_cls_and_kwargs
        else:
            optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(args, opt_model)  # type: ignore[arg-type]
        optimizer_kwargs = dict(optimizer_kwargs)
        optim = getattr(args.optim, "value", args.optim)
        own = [key for key in ("params", "model", "optimizer_dict") if key in optimizer_kwargs]
        if own or not (isinstance(optimizer_cls, type) and issubclass(optimizer_cls, torch.optim.Optimizer)):
            raise ValueError(
                f"`optim`={optim!r} builds its own param groups ({', '.join(own) or 'an optimizer factory'}), so the "
                "LR plan of `lr_layer_decay`/`lr_param_groups` cannot apply. Use an optimizer that takes param "
                "groups (adamw_torch, adafactor, sgd, ...), or unset `lr_layer_decay` and `lr_param_groups`."
            )
        optimizer = optimizer_cls(groups, **optimizer_kwargs)
        clash = [key for key in PLAN_KEYS if key in optimizer.defaults]
        if clash:
            raise ValueError(
                f"`optim`={optim!r} ({optimizer_cls.__name__}) reads {clash} from every param group as options of its "
                "own, the keys in which the LR plan of `lr_layer_decay`/`lr_param_groups` records each group's plan. "
                "Use another optimizer with the plan, or unset `lr_layer_decay` and `lr_param_groups`."
            )
        self.optimizer = optimizer
        if "bitsandbytes" in str(optimizer_cls) and optimizer_kwargs.get("optim_bits") == 8:
            _embeddings_in_fp32(opt_model)  # as `Trainer.create_optimizer` does for 8-bit optimizers
        if is_sagemaker_mp_enabled():
            self.optimizer = _sagemaker_distributed_optimizer(self.optimizer)
        return self.optimizer

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
            created = self.lr_scheduler is None
            scheduler = super().create_scheduler(num_training_steps, optimizer)
            if created:
                _check_plan_is_followed(scheduler)
            return scheduler
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
        _check_plan_is_followed(self.lr_scheduler)
        return self.lr_scheduler


class LRSchedTrainer(LRSchedMixin, Trainer):
    """A [`~transformers.Trainer`] that builds hf_lrsched schedules by name; see [`LRSchedMixin`]."""


def _check_plan_is_followed(scheduler) -> None:
    """Refuse a scheduler that is not one of ours for param groups whose plan sets a floor, a start or a ramp: it
    would ignore them (a `transformers` or registered schedule multiplies every group by one curve)."""
    if isinstance(scheduler, ScheduleLR) or not hasattr(scheduler, "optimizer"):
        return
    for index, group in enumerate(scheduler.optimizer.param_groups):
        for key in SCHEDULE_PLAN_KEYS:
            value = group.get(key)
            if value is not None and (key.startswith("min_lr") or value):
                raise ValueError(
                    f"Param group {index} ({group.get('name', 'unnamed')}) sets `{key}`={value!r}, which only the "
                    f"schedules of hf_lrsched follow, but the scheduler is a {type(scheduler).__name__} that would "
                    "ignore it. Set `lr_schedule` to one of ours (warmup_cosine, wsd, phases, ...), or remove "
                    f"`{key}` from the plan."
                )


def _split_by_device_mesh(groups: list[dict]) -> list[dict]:
    """As `Trainer.create_optimizer` does: parameters on different device meshes (expert parallelism) cannot share
    a fused or foreach kernel call, so each group is split by mesh (the parts keep the group's plan and name)."""
    try:
        from transformers.trainer_optimizer import has_mixed_dtensor
    except ImportError:  # a transformers without expert parallelism
        return groups
    if not has_mixed_dtensor(p for group in groups for p in group["params"]):
        return groups
    from torch.distributed.tensor import DTensor

    split: list[dict] = []
    for group in groups:
        by_mesh: dict = {}
        for p in group["params"]:
            by_mesh.setdefault(p.device_mesh if isinstance(p, DTensor) else None, []).append(p)
        split.extend({**group, "params": params} for params in by_mesh.values())
    return split


def _embeddings_in_fp32(model: torch.nn.Module) -> None:
    """bitsandbytes' 8-bit optimizers keep embeddings in 32 bits, as `Trainer.create_optimizer` registers them."""
    import bitsandbytes  # type: ignore[import-not-found]

    manager = bitsandbytes.optim.GlobalOptimManager.get_instance()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            manager.register_module_override(module, "weight", {"optim_bits": 32})


def _sagemaker_distributed_optimizer(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """As `Trainer.create_optimizer` wraps the optimizer under SageMaker model parallelism."""
    import smdistributed.modelparallel.torch as smp  # type: ignore[import-not-found, unused-ignore]

    return smp.DistributedOptimizer(optimizer)
