"""The examples' arguments: checked when parsed (before any model is loaded), naming the option; a config file's
string is never a boolean; and `glue_trainer.py` and `trl_sft.py` answer a bad argument or a checkpoint they cannot
resume as `glue.py` does, with one line and exit status 2."""

import json
import os
import shutil
import subprocess
import sys

import pytest

import glue  # examples/ is on the path: `pythonpath` in pyproject.toml
import glue_snapshots
import glue_trainer
from .helpers import EXAMPLE_ENV, EXAMPLES, ROOT, common_args, run_examples

BBC = ["--task_name", "bbc_news"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--lr_schedule", "reduce_lr_on_plateau"], "`lr_schedule` 'reduce_lr_on_plateau' builds a ReduceLROnPlateau"),
        (["--lr_schedule", "greedy"], "`lr_schedule` 'greedy' builds a GreedyLR, stepped with a metric"),
        (
            ["--lr_schedule", "inverse_sqrt", "--lr_schedule_kwargs", '{"timescale": 0}'],
            "`timescale` must be in (0, inf), got 0.0.",
        ),
        (
            ["--lr_schedule", "polynomial", "--lr_schedule_kwargs", '{"power": -1}'],
            "`power` must be in (0, inf), got -1.0.",
        ),
        (
            ["--lr_schedule", "linear", "--max_train_steps", "10", "--num_warmup_steps", "12"],
            "`num_warmup_steps` must be an integer in [0, 10] (at most num_training_steps, for 'linear'), got 12.",
        ),
        (["--weight_decay", "-1"], "`weight_decay` must be a finite number >= 0, got -1.0"),
        (["--weight_decay", "nan"], "`weight_decay` must be a finite number >= 0, got nan"),
        # the library's own checks, as LRSchedTrainingArguments makes them
        (
            ["--lr_schedule", "linear", "--lr_param_groups", '[{"pattern": "bias", "min_lr": 0.0}]'],
            "`lr_param_groups[0]` sets `min_lr`=0.0, which only the schedules of hf_lrsched follow",
        ),
        (
            ["--lr_schedule", "linear", "--lr_resume", "new_stage"],
            "`new_stage` starts a schedule of hf_lrsched as a new stage of a run; 'linear' is a `transformers`",
        ),
    ],
)
def test_options_the_loop_cannot_train_with_are_refused_when_parsed(argv, message):
    with pytest.raises(ValueError) as info:
        glue.parse_args(BBC + argv)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--report_to", "nonsense"], "`report_to` 'nonsense' is not a tracker; use one or more of ['all', 'none'"),
        (["--snapshot_ensemble", "0"], "`snapshot_ensemble` must be a number of snapshots >= 1, got 0."),
        (["--snapshot_ensemble", "2", "--save_snapshots", "false"], "`snapshot_ensemble` needs the snapshots"),
        (["--weight_decay", "-1"], "`weight_decay` must be a finite number >= 0, got -1.0"),  # glue.py's checks too
    ],
)
def test_glue_snapshots_refuses_its_own_bad_options_when_parsed(argv, message):
    with pytest.raises(ValueError) as info:
        glue_snapshots.parse_args(BBC + argv)
    assert message in str(info.value)


def test_the_schedules_next_to_those_limits_parse():
    for argv in (
        ["--lr_schedule", "polynomial", "--max_train_steps", "10", "--num_warmup_steps", "9"],
        # warmup as long as the run: the library holds polynomial at its end level (no division by T - W = 0)
        ["--lr_schedule", "polynomial", "--max_train_steps", "10", "--num_warmup_steps", "10"],
        ["--lr_schedule", "linear", "--max_train_steps", "10", "--num_warmup_steps", "10"],
        ["--lr_schedule", "inverse_sqrt", "--lr_schedule_kwargs", '{"timescale": 5}'],
        ["--weight_decay", "0"],
    ):
        glue.parse_args(BBC + argv)
    glue_snapshots.parse_args(BBC + ["--report_to", "tensorboard,wandb"])


@pytest.mark.slow
def test_a_parse_time_refusal_exits_2_before_the_model_loads(tmp_path):
    result = subprocess.run(
        [sys.executable, EXAMPLES / "glue.py", "--model_name_or_path", tmp_path / "no-such-model"]
        + ["--train_file", "a.csv", "--validation_file", "b.csv", "--output_dir", tmp_path / "out"]
        + ["--lr_schedule", "reduce_lr_on_plateau"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "glue.py: error: `lr_schedule` 'reduce_lr_on_plateau'" in result.stderr
    assert not (tmp_path / "out").exists()


def write_config(tmp_path, suffix, config):
    path = tmp_path / f"config{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(config))
    else:
        path.write_text("".join(f"{key}: {json.dumps(value)}\n" for key, value in config.items()))
    return str(path)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_config_files_strings_are_read_as_the_command_line_reads_them(tmp_path, suffix):
    config = {
        "task_name": "bbc_news",
        "overwrite_output_dir": "false",
        "save_snapshots": "no",
        "with_tracking": "false",
        "per_device_train_batch_size": "8",
        "learning_rate": "1e-4",
    }
    _, _, args = glue_snapshots.parse_args([write_config(tmp_path, suffix, config)])
    assert (args.overwrite_output_dir, args.save_snapshots, args.with_tracking) == (False, False, False)
    assert (args.per_device_train_batch_size, args.learning_rate) == (8, 1e-4)
    config.update(overwrite_output_dir="TRUE", save_snapshots="y", with_tracking=True)
    _, _, args = glue_snapshots.parse_args([write_config(tmp_path, suffix, config)])
    assert (args.overwrite_output_dir, args.save_snapshots, args.with_tracking) == (True, True, True)
    # glue_trainer.py reads its files the same way
    *_, snapshots = glue_trainer.parse_args(
        [write_config(tmp_path, suffix, {"task_name": "bbc_news", "save_snapshots": "no", "output_dir": "x"})]
    )
    assert snapshots.save_snapshots is False


@pytest.mark.parametrize(
    "config,message",
    [
        ({"save_snapshots": "maybe"}, "`save_snapshots` must be a boolean: true or false"),
        ({"overwrite_output_dir": 2}, "`overwrite_output_dir` must be a boolean"),
        ({"per_device_train_batch_size": 4.5}, "`per_device_train_batch_size` must be a whole number, got 4.5"),
        ({"per_device_train_batch_size": True}, "`per_device_train_batch_size` must be a number or a string, not a"),
        ({"max_train_steps": "ten"}, "`max_train_steps` must be a whole number, got 'ten'"),
        ({"learning_rate": "fast"}, "`learning_rate` must be a number, got 'fast'"),
    ],
)
def test_a_config_files_wrong_types_are_refused_naming_the_file_and_option(tmp_path, config, message):
    path = write_config(tmp_path, ".json", {"task_name": "bbc_news", **config})
    with pytest.raises(ValueError) as info:
        glue_snapshots.parse_args([path])
    assert message in str(info.value) and path in str(info.value)


def test_a_config_files_choice_is_checked_as_the_command_lines_is(tmp_path):
    path = write_config(tmp_path, ".yaml", {"task_name": "bbc_news", "lr_resume": "new-stage"})
    with pytest.raises(ValueError, match="`lr_resume` must be 'identical' or 'new_stage', got 'new-stage'"):
        glue.parse_args([path])


# ---- glue_trainer.py and trl_sft.py: exit 2 with a message ----------------------------------------------------------


def run_script(script, argv):
    result = subprocess.run(
        [sys.executable, EXAMPLES / script] + [str(a) for a in argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **EXAMPLE_ENV},
    )
    return result


def assert_refused(result, script, *parts):
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-4000:]
    assert f"{script}: error: " in result.stderr
    for part in parts:
        assert part in result.stderr, result.stderr[-2000:]


def check_resume_refusals(script, args, checkpoint, changed, tmp_path):
    """A missing checkpoint, a truncated scheduler.pt and a resume with other schedule options: one line, exit 2 (the
    three runs in one process: tests/glue_driver.py)."""
    missing = tmp_path / "no-such-checkpoint"
    damaged = tmp_path / "damaged"
    shutil.copytree(checkpoint, damaged)
    scheduler = damaged / "scheduler.pt"
    scheduler.write_bytes(scheduler.read_bytes()[:64])
    argv = [args + ["--resume_from_checkpoint", missing], args + ["--resume_from_checkpoint", damaged]]
    argv.append(changed + ["--resume_from_checkpoint", checkpoint])
    _, (first, second, third) = run_examples(argv, script=script.removesuffix(".py"), expect=2)
    messages = (
        f"cannot resume from {missing}: the checkpoint {missing} does not exist",
        f"the file {scheduler} is damaged or truncated",
        f"Cannot resume from {checkpoint}: Cannot resume this schedule from the saved state",
    )
    for result, message in zip((first, second, third), messages):
        assert f"{script}: error: " in result["stderr"] and message in result["stderr"], result["stderr"][-2000:]


@pytest.mark.slow
def test_glue_trainer_refuses_bad_arguments_and_checkpoints_with_exit_2(tmp_path, tiny_model_dir, csv_files):
    out = tmp_path / "out"
    base = common_args(tiny_model_dir, csv_files, out) + [
        "--max_steps",
        "4",
        "--per_device_train_batch_size",
        "8",
        "--save_steps",
        "2",
        "--report_to",
        "none",
        "--use_cpu",
        "--lr_schedule",
        "warmup_cosine",
        "--warmup_steps",
        "1",
    ]
    # The script itself, as a user runs it: its own exit status.
    assert_refused(run_script("glue_trainer.py", base + ["--lr_schedule", "warmup_cosin"]), "glue_trainer.py")
    run_examples([base], script="glue_trainer")
    changed = base + ["--warmup_steps", "2"]  # step 1, already taken, would get another rate
    check_resume_refusals("glue_trainer.py", base, out / "checkpoint-2", changed, tmp_path)


@pytest.mark.slow
def test_trl_sft_refuses_bad_arguments_and_checkpoints_with_exit_2(tmp_path):
    out = tmp_path / "out"
    base = ["--output_dir", out, "--max_steps", "4", "--save_steps", "2", "--use_cpu", "--report_to", "none"]
    base += ["--lr_schedule", "wsd", "--lr_schedule_kwargs", '{"decay_ratio": 0.5}', "--warmup_steps", "1"]
    assert_refused(
        run_script("trl_sft.py", base + ["--lr_schedule_kwargs", '{"decay_ratio": 2}']), "trl_sft.py", "decay_ratio"
    )
    run_examples([base], script="trl_sft")
    changed = base + ["--warmup_steps", "2"]  # step 1, already taken, would get another rate
    check_resume_refusals("trl_sft.py", base, out / "checkpoint-2", changed, tmp_path)


def test_numbers_that_yaml_reads_as_strings_are_numbers_in_the_schedules_options(tmp_path):
    path = tmp_path / "config.yaml"  # PyYAML reads 1e-2 (no dot) as the string '1e-2'
    path.write_text("task_name: bbc_news\nlr_schedule_kwargs:\n  min_lr_ratio: 1e-2\n")
    assert glue.parse_args([str(path)])[2].lr_schedule_kwargs == {"min_lr_ratio": 0.01}


def test_the_parse_time_check_of_an_epoch_run_does_not_log_a_capped_auto_warmup_of_a_length_it_will_not_have(caplog):
    from hf_lrsched import warmup

    warmup._warning_once.cache_clear()
    argv = BBC + ["--num_warmup_steps", "auto", "--lr_schedule_kwargs", '{"max_auto_warmup_ratio": 0.001}']
    with caplog.at_level("WARNING", logger="hf_lrsched.warmup"):
        glue.parse_args(argv)  # epochs: checked at 10**6 stand-in steps, where 2,000 steps would be capped at 1,000
        assert not [r for r in caplog.records if r.name == "hf_lrsched.warmup"]
        glue.parse_args(argv + ["--max_train_steps", "1000"])  # the real length: the cap is said
    assert "= 0.001 * 1000 = 1 steps" in caplog.text
