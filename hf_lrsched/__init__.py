"""hf_lrsched: learning-rate warmup and cosine schedules for Hugging Face Transformers, done right.

Every schedule is a picklable `torch.optim.lr_scheduler.LambdaLR` built from a module-level function bound with
`functools.partial`; one registry selects any of them, or any `transformers` scheduler, by name.
"""

from .describe import ScheduleInfo, describe
from .registry import (
    available_schedules,
    get_schedule,
    get_schedule_factory,
    register_schedule,
    schedule_description,
    schedule_multipliers,
)
from .schedules import (
    ScheduleLR,
    get_cosine_with_growing_restarts_schedule,
    get_exponential_warmup_cosine_schedule,
    get_warmup_cosine_schedule,
    get_wsd_schedule,
    resolve_auto_warmup_steps,
)

__version__ = "0.1.0"

# The Trainer layer imports `transformers.Trainer` (and so `accelerate`): loaded on first use only, so that the
# schedules themselves need nothing but torch and transformers.
_LAZY = {
    "LRSchedArguments": "training_args",
    "LRSchedTrainingArguments": "training_args",
    "LRSchedMixin": "trainer",
    "LRSchedTrainer": "trainer",
    "LRCurveCallback": "callbacks",
    "SnapshotCallback": "callbacks",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "LRCurveCallback",
    "LRSchedMixin",
    "LRSchedArguments",
    "LRSchedTrainer",
    "LRSchedTrainingArguments",
    "ScheduleInfo",
    "SnapshotCallback",
    "ScheduleLR",
    "available_schedules",
    "describe",
    "get_cosine_with_growing_restarts_schedule",
    "get_exponential_warmup_cosine_schedule",
    "get_schedule",
    "get_schedule_factory",
    "get_warmup_cosine_schedule",
    "get_wsd_schedule",
    "register_schedule",
    "resolve_auto_warmup_steps",
    "schedule_description",
    "schedule_multipliers",
]
