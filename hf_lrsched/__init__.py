"""hf_lrsched: learning-rate warmup and cosine schedules for Hugging Face Transformers, done right.

Every schedule is a picklable `torch.optim.lr_scheduler.LambdaLR` built from a module-level function bound with
`functools.partial`; one registry selects any of them, or any `transformers` scheduler, by name.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .callbacks import LRCurveCallback, SnapshotCallback
    from .param_groups import build_param_groups, parameter_layer_ids
    from .preview import schedule_multipliers
    from .registry import (
        available_schedules,
        get_schedule,
        get_schedule_factory,
        register_schedule,
        schedule_description,
        unregister_schedule,
    )
    from .schedule_info import ScheduleInfo, describe
    from .scheduler import ScheduleLR
    from .schedules import (
        get_cosine_with_growing_restarts_schedule,
        get_exponential_warmup_cosine_schedule,
        get_phases_schedule,
        get_warmup_cosine_schedule,
        get_wsd_schedule,
    )
    from .stages import ResumeMismatchError
    from .trainer import LRSchedMixin, LRSchedTrainer
    from .training_args import LRSchedArguments, LRSchedTrainingArguments
    from .warmup import resolve_auto_warmup_steps, resolve_num_warmup_steps

__version__ = "0.1.0"

# Each name is imported from its module on first use (as `transformers` does): `import hf_lrsched` costs nothing, a
# schedule laid out for a preview needs neither torch nor `transformers` (a `ScheduleLR` needs torch), and the
# Trainer layer (`transformers.Trainer`, and so `accelerate`) loads only when it is used. The `TYPE_CHECKING` imports
# above give type checkers and IDEs the real types; `__all__` below must list them for linters (tests/test_lint.py
# checks that the three lists agree).
_LAZY = {
    "ScheduleInfo": "schedule_info",
    "describe": "schedule_info",
    "schedule_multipliers": "preview",
    "available_schedules": "registry",
    "get_schedule": "registry",
    "get_schedule_factory": "registry",
    "register_schedule": "registry",
    "schedule_description": "registry",
    "unregister_schedule": "registry",
    "ResumeMismatchError": "stages",
    "ScheduleLR": "scheduler",
    "get_cosine_with_growing_restarts_schedule": "schedules",
    "get_exponential_warmup_cosine_schedule": "schedules",
    "get_phases_schedule": "schedules",
    "get_warmup_cosine_schedule": "schedules",
    "get_wsd_schedule": "schedules",
    "resolve_auto_warmup_steps": "warmup",
    "resolve_num_warmup_steps": "warmup",
    "LRSchedArguments": "training_args",
    "LRSchedTrainingArguments": "training_args",
    "LRSchedMixin": "trainer",
    "LRSchedTrainer": "trainer",
    "LRCurveCallback": "callbacks",
    "SnapshotCallback": "callbacks",
    "build_param_groups": "param_groups",
    "parameter_layer_ids": "param_groups",
}


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LRCurveCallback",
    "LRSchedArguments",
    "LRSchedMixin",
    "LRSchedTrainer",
    "LRSchedTrainingArguments",
    "ResumeMismatchError",
    "ScheduleInfo",
    "ScheduleLR",
    "SnapshotCallback",
    "available_schedules",
    "build_param_groups",
    "describe",
    "get_cosine_with_growing_restarts_schedule",
    "get_exponential_warmup_cosine_schedule",
    "get_phases_schedule",
    "get_schedule",
    "get_schedule_factory",
    "get_warmup_cosine_schedule",
    "get_wsd_schedule",
    "parameter_layer_ids",
    "register_schedule",
    "resolve_auto_warmup_steps",
    "resolve_num_warmup_steps",
    "schedule_description",
    "schedule_multipliers",
    "unregister_schedule",
]
