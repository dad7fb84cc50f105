"""`LRSchedArguments`, the fields that select an hf_lrsched schedule by name, as a mixin for any `TrainingArguments`
subclass (TRL's configs included), and `LRSchedTrainingArguments`, the mixin in front of `TrainingArguments`."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeGuard

import torch
from transformers import TrainingArguments

from ._validation import check_bool, numbers_from_strings
from .param_groups import (
    check_layer_decay,
    check_rules_for_schedule,
    has_param_group_plan,
    parse_param_group_rules,
)
from .preview import PROBE_TRAINING_STEPS, check_schedule
from .registry import check_reserved_schedule_kwargs, get_schedule, parse_schedule_kwargs
from .warmup import resolve_num_warmup_steps

__all__ = [
    "LRSchedArguments",
    "LRSchedTrainingArguments",
    "build_lr_scheduler",
    "parse_schedule_kwargs",
    "uses_lrsched",
]

#: `transformers`' schedulers that step on an evaluation metric (`metric_for_best_model`) rather than on the step.
METRIC_DRIVEN_SCHEDULES = ("reduce_lr_on_plateau", "greedy")
#: Schedule-free optimizers to which `transformers` passes `warmup_steps`, so that they warm up by themselves.
SELF_WARMING_OPTIMIZERS = ("schedule_free_adamw", "schedule_free_sgd")

if TYPE_CHECKING:  # the mixin's attributes are those of the TrainingArguments subclass it is put in front of
    _ArgumentsBase = TrainingArguments
else:
    _ArgumentsBase = object


@dataclass
class LRSchedArguments(_ArgumentsBase):
    """
    The fields that select an hf_lrsched schedule by name, as a mixin in front of any
    [`~transformers.TrainingArguments`] subclass: `transformers`' own, TRL's configs, yours.

    ```python
    from dataclasses import dataclass

    from trl import SFTConfig

    from hf_lrsched import LRSchedArguments


    @dataclass
    class SFTConfigWithSchedule(LRSchedArguments, SFTConfig):
        pass
    ```

    Put it first: the class keeps every default of the other base (TRL's learning rate, logging steps, ...), and
    `lr_schedule_kwargs` joins the other base's `_VALID_DICT_FIELDS`, so that both libraries' dict fields parse from
    JSON strings on the command line, from JSON and from YAML. The other order is refused when the class is created.
    [`LRSchedTrainingArguments`] is this mixin in front of `TrainingArguments`.

    `lr_schedule` takes any name of [`available_schedules`] (ours, `transformers`' and registered ones); when it is
    unset, `lr_scheduler_type` and `lr_scheduler_kwargs` behave exactly as in `transformers`. Warmup follows
    `transformers` 5: `warmup_steps` is a number of steps, or a ratio of the training steps when below 1;
    `auto_warmup` derives it from the optimizer's `beta2` instead.

    Args:
        lr_schedule (`str`, *optional*):
            The name of the schedule to build with [`get_schedule`], e.g. `"warmup_cosine"`,
            `"exponential_warmup_cosine"`, `"cosine_with_growing_restarts"` or `"wsd"`.
        lr_schedule_kwargs (`dict` or `str`, *optional*):
            The schedule's own options (`min_lr`, `num_cycles`, `cycle_mult`, ...); a JSON string on the command line.
        auto_warmup (`bool`, *optional*, defaults to `False`):
            Use `num_warmup_steps="auto"`: the warmup length derived from Adam's `beta2` (Ma & Yarats, 2019), capped
            at `max_auto_warmup_ratio` (a schedule option, 0.1 by default) of the training steps. Excludes
            `warmup_steps`, and needs an optimizer with betas (`optim` of the Adam family).
        save_lr_curve (`bool`, *optional*, defaults to `True`):
            Record the learning rate of every param group at every optimizer step and write it to `output_dir` at
            the end of training as `lr_schedule.csv` (and `lr_schedule.png` where matplotlib is installed).
        lr_layer_decay (`float`, *optional*):
            Layer-wise learning-rate decay `gamma` in `(0, 1]`: layer `l` of `L` (0 the embeddings, `L + 1` the head)
            trains at `gamma^(L + 1 - l)` times its rate (see [`build_param_groups`]).
        lr_resume (`str`, *optional*, defaults to `"identical"`):
            How `resume_from_checkpoint` treats the schedule. `"identical"`: the checkpoint's run must have used
            the rates this schedule gives at every step already taken, else the resume is refused
            ([`ResumeMismatchError`]). `"new_stage"`: the plan is changed on purpose (continued pretraining, a
            re-warm, a longer run after its decay began); the checkpoint's schedule is kept as the run's past and
            this one starts at the checkpoint's step as a new stage, over the steps left to `max_steps`, from the
            rate the run had reached (see [`ScheduleLR`]).
        lr_param_groups (`list[dict]` or `str`, *optional*):
            The LR plan's rules, in order, first match wins: dicts with a `pattern` (a regular expression searched in
            each parameter's name) and any of `name`, `lr_mult`, `weight_decay`, `min_lr`, `min_lr_ratio`,
            `start_step`, `warmup_steps` (see [`build_param_groups`]); a JSON string on the command line.

    `auto_warmup` and `save_lr_curve` written as strings in a JSON or YAML config are read as `HfArgumentParser`
    reads them on the command line (`"false"` is false); any other value is refused.

    An unknown name or invalid options raise in `__post_init__`, when the arguments are parsed, with the schedule's
    own message; so do settings under which the schedule cannot work: a training length with no step count
    (`num_train_epochs` infinite, `gradient_accumulation_steps` 0, ...), `reduce_lr_on_plateau` or `greedy` without
    evaluation (their `metric_for_best_model` defaults to the loss, as for `lr_scheduler_type`), a layer-wise
    optimizer (GaLore, APOLLO), or a schedule-free optimizer that would warm up a second time. Checks that depend
    on the number of training steps run at parse time when `max_steps` is set, when the Trainer is built in epoch
    mode, and again when the Trainer builds the schedule.
    """

    lr_schedule: str | None = field(
        default=None,
        metadata={
            "help": "An hf_lrsched schedule name (warmup_cosine, exponential_warmup_cosine, "
            "cosine_with_growing_restarts, wsd, any transformers scheduler name, or a registered one). "
            "Unset: lr_scheduler_type is used as in transformers."
        },
    )
    lr_schedule_kwargs: dict | str | None = field(
        default=None,
        metadata={"help": 'Options of the lr_schedule, as a JSON string, e.g. \'{"num_cycles": 3, "min_lr": 1e-6}\'.'},
    )
    auto_warmup: bool = field(
        default=False,
        metadata={"help": "Derive the warmup length from the optimizer's beta2 (num_warmup_steps='auto')."},
    )
    save_lr_curve: bool = field(
        default=True,
        metadata={"help": "Write the learning rate of every optimizer step to output_dir (CSV, and PNG if possible)."},
    )
    lr_layer_decay: float | None = field(
        default=None,
        metadata={
            "help": "Layer-wise LR decay gamma in (0, 1]: layer l of L (0 embeddings, L+1 head) gets gamma^(L+1-l)."
        },
    )
    lr_resume: str = field(
        default="identical",
        metadata={
            "help": "How a resume treats the schedule: 'identical' (the default) continues only a run whose past "
            "rates this schedule reproduces; 'new_stage' keeps the checkpoint's schedule as the run's past and starts "
            "this one as a new stage from the rate the run had reached.",
            "choices": ["identical", "new_stage"],
        },
    )
    lr_param_groups: list[dict] | str | None = field(
        default=None,
        metadata={
            "help": "Rules giving parts of the model their own rates, first match wins, as a JSON list, e.g. "
            '\'[{"pattern": "classifier", "lr_mult": 10}]\'; keys: pattern, name, lr_mult, weight_decay, min_lr, '
            "min_lr_ratio, start_step, warmup_steps."
        },
    )

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _check_base_order(cls)
        inherited = list(getattr(cls, "_VALID_DICT_FIELDS", []))
        if "lr_schedule_kwargs" not in inherited:
            cls._VALID_DICT_FIELDS = inherited + ["lr_schedule_kwargs"]

    def __post_init__(self):
        self._check_param_group_plan()
        self._check_lr_resume()
        # Before the parent's checks: it would parse our JSON with a bare JSONDecodeError, and with DeepSpeed it loads
        # the DeepSpeed config (and needs DeepSpeed installed).
        for option in ("auto_warmup", "save_lr_curve"):  # JSON and YAML configs skip the command line's conversion
            setattr(self, option, check_bool(option, getattr(self, option)))
        self.lr_schedule_kwargs = _convert_str_values(parse_schedule_kwargs(self.lr_schedule_kwargs))
        self._check_deepspeed_scheduler()
        if self.lr_schedule in METRIC_DRIVEN_SCHEDULES and self.metric_for_best_model is None:
            # As `TrainingArguments` does for `lr_scheduler_type`: these step on an evaluation metric, the loss by
            # default (set before the parent's checks, which derive `greater_is_better` from it).
            self.metric_for_best_model = "loss"
        super().__post_init__()
        check_reserved_schedule_kwargs(self.lr_schedule_kwargs)
        if self.auto_warmup and self.warmup_steps:
            raise ValueError(
                f"`auto_warmup=True` derives the warmup length from the optimizer; it excludes "
                f"warmup_steps={self.warmup_steps}. Set one of them."
            )
        if not uses_lrsched(self):
            if self.lr_schedule_kwargs:
                raise ValueError(
                    f"`lr_schedule_kwargs`={self.lr_schedule_kwargs} is set but `lr_schedule` is not; set "
                    "`lr_schedule`, or pass options of `lr_scheduler_type` in `lr_scheduler_kwargs`."
                )
            return
        if self.lr_schedule is not None and self.lr_scheduler_kwargs:
            raise ValueError(
                f"`lr_scheduler_kwargs`={self.lr_scheduler_kwargs} belong to `lr_scheduler_type`, which "
                f"`lr_schedule`={self.lr_schedule!r} replaces; pass the options in `lr_schedule_kwargs` instead."
            )
        if self.auto_warmup:
            self._check_optimizer_has_betas()
        check_training_length(self)
        self._check_metric_driven_schedule()
        self._check_optimizer()
        self._check_schedule()

    def _check_lr_resume(self) -> None:
        from ._validation import check_choice

        self.lr_resume = check_choice("lr_resume", self.lr_resume, ("identical", "new_stage"))

    def _check_param_group_plan(self) -> None:
        """The LR plan's rules and layer decay, checked when parsed (no model needed: a rule that matches no
        parameter is reported when the optimizer is built); a plan that the optimizer or the schedule configured
        with it would not follow is refused."""
        self.lr_param_groups = parse_param_group_rules(self.lr_param_groups, "lr_param_groups")
        if self.lr_layer_decay is not None:
            self.lr_layer_decay = check_layer_decay(self.lr_layer_decay, "lr_layer_decay")
        if not has_param_group_plan(self):
            return
        self._check_deepspeed_optimizer()
        check_rules_for_schedule(self.lr_param_groups, _transformers_schedule(self), "lr_param_groups")

    def _check_deepspeed_optimizer(self) -> None:
        """A DeepSpeed config with its own `optimizer` builds it from the whole model at one rate: an LR plan (param
        groups) cannot apply, so say which to remove."""
        config = _deepspeed_config(self.deepspeed)
        if isinstance(config, dict) and "optimizer" in config:
            kind = config["optimizer"].get("type", "?") if isinstance(config["optimizer"], dict) else "?"
            plan = " and ".join(
                f"`{name}`" for name in ("lr_layer_decay", "lr_param_groups") if getattr(self, name) is not None
            )
            raise ValueError(
                f"The DeepSpeed config defines its own optimizer (type {kind!r}), which DeepSpeed builds from all the "
                f"model's parameters at one learning rate: the param groups of {plan} cannot apply. Remove the "
                "'optimizer' section from the DeepSpeed config to use the plan (the Trainer then builds the "
                f"optimizer that `optim` selects, and DeepSpeed wraps it), or unset {plan}."
            )

    def _check_metric_driven_schedule(self) -> None:
        """`reduce_lr_on_plateau` and `greedy` step on an evaluation metric: refuse them without evaluation, as
        `TrainingArguments` does for `lr_scheduler_type` (which `lr_schedule` bypasses)."""
        if self.lr_schedule not in METRIC_DRIVEN_SCHEDULES:
            return
        if getattr(self.eval_strategy, "value", self.eval_strategy) == "no":
            raise ValueError(
                f"`lr_schedule`={self.lr_schedule!r} lowers the learning rate on an evaluation metric "
                f"(`metric_for_best_model`={self.metric_for_best_model!r}), but `eval_strategy` is 'no': set "
                "`eval_strategy` to 'steps' or 'epoch' (and pass an `eval_dataset`), or choose another schedule."
            )

    def _check_optimizer(self) -> None:
        """Optimizers that a schedule of ours cannot drive as configured: layer-wise ones (GaLore, APOLLO), which
        step one hidden optimizer per parameter, and the schedule-free ones that warm up by themselves."""
        optim = str(getattr(self.optim, "value", self.optim))
        if optim.endswith("layerwise"):
            raise ValueError(
                f"`optim`={optim!r} steps one optimizer per parameter inside backward and gives the Trainer only a "
                f"placeholder: `lr_schedule`={self.lr_schedule!r} (or `auto_warmup`) would drive the placeholder, and "
                "the real learning rate would stay constant. Use the optimizer without '_layerwise', or unset "
                "`lr_schedule` and `auto_warmup` (`lr_scheduler_type` builds one scheduler per parameter)."
            )
        if optim in SELF_WARMING_OPTIMIZERS and self.warmup_steps:
            raise ValueError(
                f"`optim`={optim!r} warms up by itself over `warmup_steps`={self.warmup_steps} (transformers passes "
                f"them to it), and `lr_schedule`={self.lr_schedule!r} would warm up over the same steps a second time. "
                "Set `warmup_steps=0` (with `auto_warmup=True` for 'schedule_free_adamw', to warm up through the "
                "schedule alone), or use 'schedule_free_radam', which has no warmup of its own."
            )

    def _check_schedule(self) -> None:
        """Build the schedule once on a throw-away optimizer, so that bad input fails now, not after model loading."""
        check_lr_schedule(self, self.max_steps if self.max_steps > 0 else None)  # None: epochs, not counted yet

    def _check_optimizer_has_betas(self) -> None:
        """`auto_warmup` needs Adam's beta2: refuse an `optim` without betas now, not inside `train()`."""
        from transformers import Trainer

        try:
            _, optimizer_kwargs = Trainer.get_optimizer_cls_and_kwargs(self)
        except (ImportError, ValueError, TypeError):  # needs a package or a model: checked when training starts
            return
        if "betas" not in optimizer_kwargs:
            optim = getattr(self.optim, "value", self.optim)
            raise ValueError(
                f"`auto_warmup=True` derives the warmup length from Adam's beta2, but optim={optim!r} has no betas; "
                "use an optimizer of the Adam family (adamw_torch, ...) or set `warmup_steps` instead."
            )

    def _check_deepspeed_scheduler(self) -> None:
        """A DeepSpeed config with its own `scheduler` wins over any Trainer-side schedule: say so, and stop."""
        if not self.deepspeed or not uses_lrsched(self):
            return
        config = self.deepspeed
        if isinstance(config, str):
            if config.lstrip().startswith("{"):
                config = json.loads(config)
            elif os.path.isfile(config):
                with open(config, encoding="utf-8") as f:
                    config = json.load(f)
            else:
                return  # the parent reports a missing file
        if isinstance(config, dict) and "scheduler" in config:
            kind = config["scheduler"].get("type", "?") if isinstance(config["scheduler"], dict) else "?"
            ours = (
                self.lr_schedule
                or f"{getattr(self.lr_scheduler_type, 'value', self.lr_scheduler_type)} with auto_warmup"
            )
            raise ValueError(
                f"The DeepSpeed config defines its own scheduler (type {kind!r}), which DeepSpeed runs instead of "
                f"{ours!r}: the two cannot both apply. "
                "Remove the 'scheduler' section from the DeepSpeed config to use the hf_lrsched schedule, or unset "
                "`lr_schedule` (and `auto_warmup`) to keep DeepSpeed's."
            )


def _transformers_schedule(args: LRSchedArguments) -> str | None:
    """The `transformers` scheduler that `args` select, in words, or None when the schedule is one of hf_lrsched's
    (or a registered one, or a name that the schedule's own check reports)."""
    if args.lr_schedule is None:
        name = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
        return f"`lr_scheduler_type`={name!r} (transformers' scheduler; `lr_schedule` is unset)"
    from .registry import get_schedule_entry

    try:
        entry = get_schedule_entry(args.lr_schedule)
    except (ValueError, TypeError):
        return None
    if entry.transformers_name is None:
        return None
    return f"`lr_schedule`={args.lr_schedule!r} (transformers' scheduler)"


def _deepspeed_config(value) -> dict | None:
    """The DeepSpeed config that `deepspeed` gives (a dict, a JSON string or a file path), or None where it cannot be
    read here (the parent reports a missing file)."""
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            return json.loads(value)
        if os.path.isfile(value):
            with open(value, encoding="utf-8") as f:
                return json.load(f)
        return None
    return value if isinstance(value, dict) else None


def check_training_length(args: TrainingArguments) -> None:
    """Refuse, by name, the values from which `Trainer` counts the training steps when no count can follow from
    them (`Trainer` itself fails inside `train()` with an `OverflowError` or a `ZeroDivisionError`)."""
    for option in ("gradient_accumulation_steps", "per_device_train_batch_size"):
        value = getattr(args, option)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{option}` must be an integer >= 1, got {value!r}.")
    epochs = args.num_train_epochs
    if args.max_steps <= 0 and (
        isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not math.isfinite(epochs)
    ):
        raise ValueError(
            f"`num_train_epochs` must be a finite number (or set `max_steps`), got {epochs!r}: the schedule needs "
            "the number of training steps."
        )


def _check_base_order(cls: type) -> None:
    """Refuse, at class creation, a base order in which a `TrainingArguments` subclass's defaults would be lost or
    our checks skipped, and say which order works."""
    mro = cls.__mro__
    ours = mro.index(LRSchedArguments) if LRSchedArguments in mro else None
    if ours is None:
        return
    bases = [b.__name__ for b in cls.__bases__]
    for base in mro[:ours]:
        if issubclass(base, TrainingArguments) and not issubclass(base, LRSchedArguments):
            raise TypeError(
                f"{cls.__name__}{tuple(bases)}: LRSchedArguments must come before {base.__name__} in the bases, or "
                f"its checks never run; write `class {cls.__name__}(LRSchedArguments, {base.__name__})`."
            )
    full = [b for b in mro if b is not cls and issubclass(b, LRSchedArguments) and issubclass(b, TrainingArguments)]
    for ours_full in full:
        for other in mro[mro.index(ours_full) + 1 :]:
            if issubclass(other, TrainingArguments) and other not in ours_full.__mro__:
                raise TypeError(
                    f"{cls.__name__}{tuple(bases)}: {ours_full.__name__} redeclares every TrainingArguments field, "
                    f"so {other.__name__}'s defaults would be silently replaced by transformers'. Use the mixin: "
                    f"`class {cls.__name__}(LRSchedArguments, {other.__name__})`."
                )


def _convert_str_values(kwargs: dict) -> dict:
    """Numbers and booleans given as strings as `TrainingArguments` converts them (`_convert_str_dict`), and numbers
    written as strings at any depth (PyYAML reads `1e-6` as a string; a `phases` list holds dicts): `"1e-2"` is
    0.01, `"3"` is 3; any other string (`"min"`, a shape) stays a string."""
    try:
        from transformers.training_args import _convert_str_dict
    except ImportError:  # pragma: no cover - a transformers without it
        converted = dict(kwargs)
    else:
        converted = _convert_str_dict(dict(kwargs))
    return numbers_from_strings(converted)


@dataclass
class LRSchedTrainingArguments(LRSchedArguments, TrainingArguments):
    """
    [`~transformers.TrainingArguments`] with the fields that select an hf_lrsched schedule by name: the
    [`LRSchedArguments`] mixin in front of `TrainingArguments`. For TRL's configs or another `TrainingArguments`
    subclass, put [`LRSchedArguments`] in front of that class instead.
    """


def uses_lrsched(args: TrainingArguments | LRSchedArguments) -> TypeGuard[LRSchedArguments]:
    """Whether the Trainer should build its schedule through hf_lrsched (`lr_schedule` or `auto_warmup` set)."""
    return getattr(args, "lr_schedule", None) is not None or bool(getattr(args, "auto_warmup", False))


def schedule_name_and_kwargs(args: LRSchedArguments) -> tuple[str, dict]:
    """The schedule name and options that `args` select: `lr_schedule`, or `lr_scheduler_type` for `auto_warmup`."""
    if args.lr_schedule is not None:
        return args.lr_schedule, parse_schedule_kwargs(args.lr_schedule_kwargs)
    name = getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)
    return str(name), parse_schedule_kwargs(args.lr_scheduler_kwargs, "lr_scheduler_kwargs")


def build_lr_scheduler(args: LRSchedArguments, optimizer: torch.optim.Optimizer, num_training_steps: int):
    """
    The scheduler that `args` select, for `num_training_steps` optimizer steps.

    Warmup is resolved as `transformers` resolves it (see [`resolve_num_warmup_steps`]: a number of steps, or a ratio
    below 1), or `"auto"` with `auto_warmup`.
    """
    name, kwargs = schedule_name_and_kwargs(args)
    if getattr(args, "lr_resume", "identical") == "new_stage":
        kwargs["new_stage"] = True
    return get_schedule(name, optimizer, _num_warmup_steps(args, num_training_steps), num_training_steps, **kwargs)


def check_lr_schedule(args: LRSchedArguments, num_training_steps: int | None) -> None:
    """Build the schedule that `args` select once on a throw-away optimizer with their betas: bad options fail now.
    `num_training_steps=None` (epochs, not counted yet) checks at `PROBE_TRAINING_STEPS`."""
    name, kwargs = schedule_name_and_kwargs(args)
    if getattr(args, "lr_resume", "identical") == "new_stage":
        kwargs["new_stage"] = True  # refused, with a message, for a schedule that records no stages
    warmup = _num_warmup_steps(args, num_training_steps or PROBE_TRAINING_STEPS)
    check_schedule(
        name, warmup, num_training_steps, lr=args.learning_rate, betas=(args.adam_beta1, args.adam_beta2), **kwargs
    )


def _num_warmup_steps(args: LRSchedArguments, num_training_steps: int):
    if getattr(args, "auto_warmup", False):
        return "auto"
    return resolve_num_warmup_steps(args.warmup_steps, num_training_steps, option="warmup_steps")
