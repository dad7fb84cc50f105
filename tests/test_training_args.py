"""`LRSchedTrainingArguments` from the command line, JSON and YAML; errors at parse time; DeepSpeed."""

import json
import math
import re
import types
from typing import ClassVar

import pytest
import torch
import yaml
from transformers import HfArgumentParser

from hf_lrsched import LRSchedTrainer, LRSchedTrainingArguments

from .helpers import tiny_bert, tiny_dataset

KWARGS = {"num_cycles": 4, "cycle_mult": 1.5, "min_lr": 1e-6, "restart_warmup_steps": 2}


def parse(argv):
    return HfArgumentParser(LRSchedTrainingArguments).parse_args_into_dataclasses(args=argv)[0]


def test_command_line(tmp_path):
    args = parse(
        [
            "--output_dir",
            str(tmp_path),
            "--lr_schedule",
            "cosine_with_growing_restarts",
            "--lr_schedule_kwargs",
            json.dumps(KWARGS),
            "--warmup_steps",
            "0.05",
        ]
    )
    assert args.lr_schedule == "cosine_with_growing_restarts"
    assert args.lr_schedule_kwargs == KWARGS
    assert args.warmup_steps == 0.05 and args.get_warmup_steps(1000) == 50


def test_json_and_yaml_files_and_to_dict_round_trip(tmp_path):
    config = {
        "output_dir": str(tmp_path),
        "lr_schedule": "exponential_warmup_cosine",
        "lr_schedule_kwargs": {"warmup_exp_rate": 3.0, "min_lr_ratio": 0.1},
        "warmup_steps": 100,
        "learning_rate": 3e-5,
    }
    (tmp_path / "args.json").write_text(json.dumps(config))
    (tmp_path / "args.yaml").write_text(yaml.safe_dump(config))
    parser = HfArgumentParser(LRSchedTrainingArguments)
    (from_json,) = parser.parse_json_file(str(tmp_path / "args.json"))
    (from_yaml,) = parser.parse_yaml_file(str(tmp_path / "args.yaml"))
    for args in (from_json, from_yaml):
        assert args.lr_schedule == "exponential_warmup_cosine"
        assert args.lr_schedule_kwargs == {"warmup_exp_rate": 3.0, "min_lr_ratio": 0.1}
        as_dict = args.to_dict()
        assert as_dict["lr_schedule"] == "exponential_warmup_cosine"
        assert as_dict["lr_schedule_kwargs"] == {"warmup_exp_rate": 3.0, "min_lr_ratio": 0.1}
        assert json.loads(args.to_json_string())["lr_schedule_kwargs"] == {"warmup_exp_rate": 3.0, "min_lr_ratio": 0.1}
    # what to_dict() gives back parses again to the same fields
    (again,) = parser.parse_dict(
        {k: v for k, v in from_json.to_dict().items() if k in ("output_dir", "lr_schedule", "lr_schedule_kwargs")}
    )
    assert again.lr_schedule_kwargs == from_json.lr_schedule_kwargs


def test_auto_warmup_flag(tmp_path):
    args = parse(["--output_dir", str(tmp_path), "--lr_schedule", "warmup_cosine", "--auto_warmup"])
    assert args.auto_warmup is True


@pytest.mark.parametrize(
    "argv,exception,pieces",
    [
        (
            ["--lr_schedule", "cosine_with_growing_restart"],
            ValueError,
            ["Unknown schedule name 'cosine_with_growing_restart'", "Did you mean 'cosine_with_growing_restarts'"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"min_lr_ratio": 1.5}'],
            ValueError,
            ["`min_lr_ratio` must be in [0, 1), got 1.5"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"num_cycles": 3}'],
            TypeError,
            ["'warmup_cosine' got an unexpected keyword argument 'num_cycles'"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"warmup_type": "exponentail"}'],
            ValueError,
            ["`warmup_type` must be one of", "Did you mean 'exponential'"],
        ),
        (
            ["--lr_schedule", "cosine_with_growing_restarts", "--lr_schedule_kwargs", '{"cycle_mult": 0.5}'],
            ValueError,
            ["`cycle_mult` must be in [1, inf), got 0.5"],
        ),
        (
            [
                "--lr_schedule",
                "cosine_with_growing_restarts",
                "--max_steps",
                "20",
                "--lr_schedule_kwargs",
                '{"num_cycles": 30}',
            ],
            ValueError,
            ["num_cycles`=30", "20 decay steps"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--max_steps", "20", "--warmup_steps", "30"],
            ValueError,
            ["`num_warmup_steps` must be an integer in [0, 20]", "got 30"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"min_lr": 1e-3}', "--learning_rate", "1e-4"],
            ValueError,
            ["`min_lr`=0.001 must be below the base learning rate", "lr=0.0001"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--auto_warmup", "--warmup_steps", "10"],
            ValueError,
            ["auto_warmup=True", "warmup_steps=10"],
        ),
        (["--lr_schedule_kwargs", '{"min_lr": 1e-6}'], ValueError, ["`lr_schedule` is not"]),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_scheduler_kwargs", '{"num_cycles": 2}'],
            ValueError,
            ["pass the options in `lr_schedule_kwargs`"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"min_lr": 1e-6'],
            ValueError,
            ["`lr_schedule_kwargs` is not valid JSON", "'{\"min_lr\": 1e-6'"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"last_epoch": 14}'],
            ValueError,
            ["`lr_schedule_kwargs` must not contain 'last_epoch'", "resume_from_checkpoint"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--lr_schedule_kwargs", '{"num_training_steps": 14}'],
            ValueError,
            ["must not contain 'num_training_steps'", "max_steps"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--auto_warmup", "--optim", "sgd"],
            ValueError,
            ["auto_warmup=True", "optim='sgd' has no betas"],
        ),
        (
            ["--lr_schedule", "warmup_cosine", "--auto_warmup", "--optim", "adafactor"],
            ValueError,
            ["optim='adafactor' has no betas"],
        ),
    ],
)
def test_bad_input_fails_at_parse_time(tmp_path, argv, exception, pieces):
    with pytest.raises(exception) as info:
        parse(["--output_dir", str(tmp_path)] + argv)
    for piece in pieces:
        assert piece in str(info.value), f"{piece!r} not in: {info.value}"


def test_plain_lr_scheduler_type_is_untouched(tmp_path):
    args = parse(["--output_dir", str(tmp_path), "--lr_scheduler_type", "cosine", "--warmup_steps", "0.1"])
    assert args.lr_schedule is None and args.lr_scheduler_type == "cosine"


class TestDeepSpeed:
    """DeepSpeed itself is not installed here: the config checks run before transformers loads it, and the path by
    which transformers' DeepSpeed integration asks the Trainer for a scheduler is driven directly."""

    DS_SCHEDULER: ClassVar[dict] = {
        "scheduler": {"type": "WarmupDecayLR", "params": {"warmup_num_steps": 10}},
        "zero_optimization": {"stage": 2},
    }

    @pytest.mark.parametrize("as_file", [False, True])
    def test_a_deepspeed_scheduler_and_lr_schedule_is_an_error(self, tmp_path, as_file):
        config = self.DS_SCHEDULER
        if as_file:
            (tmp_path / "ds.json").write_text(json.dumps(config))
            config = str(tmp_path / "ds.json")
        with pytest.raises(
            ValueError,
            match=r"DeepSpeed config defines its own scheduler \(type 'WarmupDecayLR'\).*"
            r"Remove the 'scheduler' section",
        ):
            LRSchedTrainingArguments(output_dir=str(tmp_path), deepspeed=config, lr_schedule="warmup_cosine")
        with pytest.raises(ValueError, match="instead of 'cosine with auto_warmup'"):
            LRSchedTrainingArguments(
                output_dir=str(tmp_path), deepspeed=config, lr_scheduler_type="cosine", auto_warmup=True
            )

    def test_without_a_deepspeed_scheduler_ours_is_built(self, tmp_path, monkeypatch):
        import accelerate.utils
        from accelerate.utils import deepspeed as accelerate_deepspeed
        from transformers.integrations.deepspeed import deepspeed_optim_sched

        # accelerate exports its DeepSpeed placeholders only when DeepSpeed is installed; they need nothing of it.
        monkeypatch.setattr(accelerate.utils, "DummyOptim", accelerate_deepspeed.DummyOptim, raising=False)
        monkeypatch.setattr(accelerate.utils, "DummyScheduler", accelerate_deepspeed.DummyScheduler, raising=False)

        args = LRSchedTrainingArguments(
            output_dir=str(tmp_path),
            max_steps=50,
            warmup_steps=5,
            report_to="none",
            use_cpu=True,
            lr_schedule="cosine_with_growing_restarts",
            lr_schedule_kwargs={"num_cycles": 2},
        )
        trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
        # A DeepSpeed config with its own optimizer and no scheduler: transformers hands DeepSpeed a callable that
        # asks the Trainer for its scheduler once DeepSpeed has built the optimizer.
        ds_config = types.SimpleNamespace(
            config={"optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}}, is_offload=lambda: False
        )
        _, dummy = deepspeed_optim_sched(trainer, ds_config, args, 50, list(trainer.model.parameters()))
        deepspeed_optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=1e-3)
        scheduler = dummy.lr_scheduler_callable(deepspeed_optimizer)
        assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) and scheduler.optimizer is deepspeed_optimizer
        assert scheduler.lr_lambdas[0].func.__name__ == "_get_phases_lr_lambda"
        assert scheduler.lr_lambdas[0](5) == 1.0 and scheduler.lr_lambdas[0](50) == 0.0


# ---- booleans from JSON and YAML, the training length, schedules and optimizers that cannot work as configured ----


@pytest.mark.parametrize(
    ("written", "expected"),
    [("false", False), ("no", False), ("F", False), ("0", False), ("true", True), ("Yes", True), (True, True)],
)
def test_booleans_written_as_strings_read_as_the_command_line_reads_them(tmp_path, written, expected):
    parser = HfArgumentParser(LRSchedTrainingArguments)
    config = {
        "output_dir": str(tmp_path),
        "lr_schedule": "warmup_cosine",
        "max_steps": 100,
        "auto_warmup": written,
        "save_lr_curve": written,
    }
    (tmp_path / "args.json").write_text(json.dumps(config))
    (tmp_path / "args.yaml").write_text(yaml.safe_dump(config))
    for (args,) in (
        parser.parse_json_file(str(tmp_path / "args.json")),
        parser.parse_yaml_file(tmp_path / "args.yaml"),
    ):
        assert args.auto_warmup is expected and args.save_lr_curve is expected


@pytest.mark.parametrize("option", ["auto_warmup", "save_lr_curve"])
@pytest.mark.parametrize("written", ["maybe", "", " true", 1, None, [True]])
def test_a_value_that_is_no_boolean_is_refused_by_name(tmp_path, option, written):
    with pytest.raises(ValueError, match=rf"`{option}` must be a boolean .*got {re.escape(repr(written))}"):
        HfArgumentParser(LRSchedTrainingArguments).parse_dict(
            {"output_dir": str(tmp_path), "lr_schedule": "warmup_cosine", option: written}
        )


@pytest.mark.parametrize(
    ("overrides", "pieces"),
    [
        ({"num_train_epochs": math.inf}, "`num_train_epochs` must be a finite number (or set `max_steps`), got inf"),
        ({"num_train_epochs": math.nan}, "`num_train_epochs` must be a finite number (or set `max_steps`), got nan"),
        ({"gradient_accumulation_steps": 0}, "`gradient_accumulation_steps` must be an integer >= 1, got 0"),
        ({"per_device_train_batch_size": 0}, "`per_device_train_batch_size` must be an integer >= 1, got 0"),
    ],
)
def test_a_training_length_with_no_step_count_is_refused_by_name(tmp_path, overrides, pieces):
    # transformers' Trainer constructs with these and fails inside train() with an OverflowError, a ValueError about
    # NaN or a ZeroDivisionError; the schedule needs the step count, so they are refused at parse time ...
    with pytest.raises(ValueError, match=re.escape(pieces)):
        LRSchedTrainingArguments(output_dir=str(tmp_path), lr_schedule="warmup_cosine", **overrides)
    # ... and when the Trainer is built with arguments changed after parsing, with the same message.
    args = LRSchedTrainingArguments(output_dir=str(tmp_path), lr_schedule="warmup_cosine", use_cpu=True)
    for key, value in overrides.items():
        setattr(args, key, value)
    with pytest.raises(ValueError, match=re.escape(pieces)):
        LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(16))


@pytest.mark.parametrize("name", ["reduce_lr_on_plateau", "greedy"])
def test_metric_driven_schedules_need_evaluation(tmp_path, name):
    with pytest.raises(ValueError, match=rf"`lr_schedule`='{name}' lowers .*`eval_strategy` is 'no'"):
        LRSchedTrainingArguments(output_dir=str(tmp_path), lr_schedule=name, max_steps=4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["reduce_lr_on_plateau", "greedy"])
def test_metric_driven_schedules_step_on_the_loss_by_default(tmp_path, name):
    # As TrainingArguments does for lr_scheduler_type: metric_for_best_model defaults to the loss, lower is better.
    args = LRSchedTrainingArguments(
        output_dir=str(tmp_path),
        lr_schedule=name,
        max_steps=4,
        eval_strategy="steps",
        eval_steps=2,
        per_device_train_batch_size=4,
        per_device_eval_batch_size=4,
        report_to="none",
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
    )
    assert args.metric_for_best_model == "loss" and args.greater_is_better is False
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(), eval_dataset=tiny_dataset(8))
    trainer.train()  # stepped the scheduler on eval_loss twice
    assert trainer.state.global_step == 4
    assert sum("eval_loss" in entry for entry in trainer.state.log_history) == 2


@pytest.mark.parametrize("optim", ["galore_adamw_layerwise", "galore_adafactor_layerwise", "apollo_adamw_layerwise"])
def test_layerwise_optimizers_are_refused(tmp_path, optim):
    with pytest.raises(ValueError, match=rf"`optim`='{optim}' steps one optimizer per parameter.*placeholder"):
        LRSchedTrainingArguments(
            output_dir=str(tmp_path), optim=optim, optim_target_modules=["attention"], lr_schedule="warmup_cosine"
        )


@pytest.mark.parametrize("optim", ["schedule_free_adamw", "schedule_free_sgd"])
def test_schedule_free_optimizers_do_not_warm_up_twice(tmp_path, optim):
    with pytest.raises(ValueError, match=rf"`optim`='{optim}' warms up by itself over `warmup_steps`=10"):
        LRSchedTrainingArguments(output_dir=str(tmp_path), optim=optim, warmup_steps=10, lr_schedule="wsd")
    # One warmup: the optimizer's own (lr_schedule without warmup), or RAdam's, which has none of its own.
    LRSchedTrainingArguments(output_dir=str(tmp_path), optim=optim, warmup_steps=0, lr_schedule="wsd")
    LRSchedTrainingArguments(output_dir=str(tmp_path), optim="schedule_free_radam", warmup_steps=10, lr_schedule="wsd")


def test_a_phase_list_from_yaml_with_numbers_pyyaml_reads_as_strings(tmp_path):
    """PyYAML reads `1e-2` (no dot) as a string, at any depth: the schedule's options get the numbers."""
    from transformers import HfArgumentParser

    config = tmp_path / "config.yaml"
    config.write_text(
        "output_dir: out\nmax_steps: 100\nlr_schedule: phases\nlr_schedule_kwargs:\n  min_lr_ratio: 1e-2\n"
        "  phases:\n    - {shape: constant, ratio: 5e-1}\n    - {shape: power, p: 4e-1, to: min}\n"
    )
    (args,) = HfArgumentParser(LRSchedTrainingArguments).parse_yaml_file(str(config))
    assert args.lr_schedule_kwargs == {
        "min_lr_ratio": 0.01,
        "phases": [{"shape": "constant", "ratio": 0.5}, {"shape": "power", "p": 0.4, "to": "min"}],
    }
