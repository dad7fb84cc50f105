"""The examples, launched for real: `accelerate launch` with 1 and 2 processes on a tiny BERT saved to disk with a
tiny tokenizer and small CSV files. The learning rate per optimizer step must not depend on the process count."""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hf_lrsched import schedule_multipliers

import glue  # examples/ is on the path: `pythonpath` in pyproject.toml
import glue_data
from .helpers import EXAMPLES, ROOT, common_args, launch, read_lr_csv, results, run_examples

pytestmark = pytest.mark.slow


SCHEDULE = [
    "--lr_schedule",
    "cosine_with_growing_restarts",
    "--lr_schedule_kwargs",
    '{"num_cycles": 2, "cycle_mult": 2.0, "min_lr": 1e-5, "restart_warmup_steps": 1}',
    "--num_warmup_steps",
    "0.2",
]


@pytest.mark.parametrize(
    "mode,one,two",
    [
        # epochs, no accumulation: 50 rows, global batch 8 -> 7 optimizer steps per epoch, 2 epochs
        (
            "epochs",
            ["--per_device_train_batch_size", "8", "--num_train_epochs", "2"],
            ["--per_device_train_batch_size", "4", "--num_train_epochs", "2"],
        ),
        # max_train_steps with gradient accumulation: global batch 2 x 2 x 2 = 8, 10 steps over two epochs
        (
            "max_steps+accumulation",
            ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--max_train_steps", "10"],
            ["--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "2", "--max_train_steps", "10"],
        ),
    ],
)
def test_learning_rate_is_identical_on_one_and_two_processes(tmp_path, tiny_model_dir, csv_files, mode, one, two):
    out1, out2 = tmp_path / "p1", tmp_path / "p2"
    run_examples([common_args(tiny_model_dir, csv_files, out1) + SCHEDULE + one + ["--eval_steps", 5]])
    launch(EXAMPLES / "glue.py", 2, common_args(tiny_model_dir, csv_files, out2) + SCHEDULE + two)
    r1, r2 = results(out1), results(out2)
    assert (r1["num_processes"], r2["num_processes"]) == (1, 2)
    assert r1["total_batch_size"] == r2["total_batch_size"] == 8
    steps = 14 if mode == "epochs" else 10
    assert r1["completed_steps"] == r2["completed_steps"] == r1["max_train_steps"] == steps

    lrs1, lrs2 = read_lr_csv(out1), read_lr_csv(out2)
    assert lrs1 == lrs2  # bit for bit
    warmup = r1["num_warmup_steps"]
    assert warmup == -(-steps // 5)  # ceil(0.2 * steps)
    expected = schedule_multipliers(
        "cosine_with_growing_restarts",
        warmup,
        steps,
        lr=1e-3,
        num_cycles=2,
        cycle_mult=2.0,
        min_lr=1e-5,
        restart_warmup_steps=1,
    )
    assert lrs1 == [(k, pytest.approx(1e-3 * expected[k - 1], rel=1e-12)) for k in range(1, steps + 1)]
    # after the last step the schedule stands on its floor, on both
    assert r1["final_lr"] == r2["final_lr"] == pytest.approx(1e-5, rel=1e-12)
    # --eval_steps 5 evaluates every 5 steps and at each epoch's end (7 steps per epoch); the loss of every step
    assert [e["step"] for e in r1["eval_history"]] == ([5, 7, 10, 14] if mode == "epochs" else [5, 7, 10])
    assert r1["eval_history"][-1]["accuracy"] == r1["eval_accuracy"]
    with open(out1 / "train_loss.csv", newline="") as f:
        assert [int(row["step"]) for row in csv.DictReader(f)] == list(range(1, steps + 1))


def read_csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_resume_mid_epoch_continues_exactly_and_keeps_every_record(tmp_path, tiny_model_dir, csv_files):
    # 50 rows, batch 4, accumulation 2: 13 batches -> 7 optimizer steps per epoch; step 3 is mid-epoch.
    args = SCHEDULE + [
        "--per_device_train_batch_size",
        "4",
        "--gradient_accumulation_steps",
        "2",
        "--max_train_steps",
        "12",
        "--checkpointing_steps",
        "3",
        "--eval_steps",
        "2",
    ]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    checkpoint = full / "step_3"
    run_examples(  # glue.main twice, in one fresh process: the whole run, then a run resumed from its step 3
        [
            common_args(tiny_model_dir, csv_files, full) + args,
            common_args(tiny_model_dir, csv_files, resumed) + args + ["--resume_from_checkpoint", checkpoint],
        ]
    )
    assert (checkpoint / "hf_lrsched_checkpoint.json").is_file()
    assert any(name.startswith("custom_checkpoint") for name in os.listdir(checkpoint))  # the scheduler's state
    # Every record of the resumed run equals the uninterrupted run's, the rows before the resume included.
    assert read_lr_csv(resumed) == read_lr_csv(full)
    assert read_csv_rows(resumed / "train_loss.csv") == read_csv_rows(full / "train_loss.csv")
    assert len(read_csv_rows(full / "train_loss.csv")) == 13
    assert results(resumed)["eval_history"] == results(full)["eval_history"]
    assert [entry["step"] for entry in results(full)["eval_history"]] == [2, 4, 6, 7, 8, 10, 12]
    assert results(resumed)["completed_steps"] == 12
    assert results(resumed)["final_lr"] == results(full)["final_lr"]
    # The same batches in the same order after the skip (and the optimizer's state restored): the same weights.
    from safetensors.torch import load_file

    a, b = load_file(full / "model.safetensors"), load_file(resumed / "model.safetensors")
    assert all(a[k].equal(b[k]) for k in a)


def test_resumes_that_would_bend_the_curve_or_cannot_read_the_checkpoint_exit_2(tmp_path, tiny_model_dir, csv_files):
    args = SCHEDULE + ["--per_device_train_batch_size", "8", "--max_train_steps", "6", "--checkpointing_steps", "4"]
    run_examples([common_args(tiny_model_dir, csv_files, tmp_path / "first") + args])
    checkpoint = tmp_path / "first" / "step_4"

    # A truncated metadata file, and a truncated model file.
    damaged_meta, damaged_weights = tmp_path / "damaged_meta", tmp_path / "damaged_weights"
    for copy in (damaged_meta, damaged_weights):
        shutil.copytree(checkpoint, copy)
    meta = damaged_meta / "hf_lrsched_checkpoint.json"
    meta.write_text(meta.read_text()[:40])
    weights = damaged_weights / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    resumes = [
        (["--learning_rate", "2e-3"], checkpoint),  # another peak rate
        (["--lr_schedule_kwargs", '{"num_cycles": 3, "cycle_mult": 2.0, "min_lr": 1e-5}'], checkpoint),
        ([], damaged_meta),
        ([], damaged_weights),
    ]
    argv = [
        common_args(tiny_model_dir, csv_files, tmp_path / f"resume{i}")
        + args
        + extra
        + ["--resume_from_checkpoint", src]
        for i, (extra, src) in enumerate(resumes)
    ]
    _, (lr, kwargs, damaged, truncated) = run_examples(argv, expect=2)  # glue.main, in one fresh process
    # Another peak rate: the option is named, and the first step whose rate would change.
    assert "Cannot resume from" in lr["stderr"] and "--learning_rate 0.001 -> 0.002" in lr["stderr"]
    assert "4 steps already taken" in lr["stderr"]
    assert "--lr_schedule_kwargs" in kwargs["stderr"] and "num_cycles 2 -> 3" in kwargs["stderr"]
    assert f"the checkpoint file {meta} is damaged or truncated" in damaged["stderr"]
    assert f"the file {weights} is damaged or truncated" in truncated["stderr"]


def test_a_wsd_run_grows_from_a_stable_checkpoint_and_not_from_its_decay(tmp_path, tiny_model_dir, csv_files):
    schedule = [
        "--lr_schedule",
        "wsd",
        "--lr_schedule_kwargs",
        '{"num_decay_steps": 4}',
        "--num_warmup_steps",
        "2",
        "--per_device_train_batch_size",
        "8",
        "--checkpointing_steps",
        "4",
    ]
    trunk = common_args(tiny_model_dir, csv_files, tmp_path / "trunk") + schedule + ["--max_train_steps", "10"]
    # stable until step 6: step_4 is stable, step_8 is in the decay
    grow = ["--max_train_steps", "14", "--resume_from_checkpoint"]
    grown = (
        common_args(tiny_model_dir, csv_files, tmp_path / "grown") + schedule + grow + [tmp_path / "trunk" / "step_4"]
    )
    no = common_args(tiny_model_dir, csv_files, tmp_path / "no") + schedule + grow + [tmp_path / "trunk" / "step_8"]
    _, done = run_examples([trunk, grown, no], expect=None)  # glue.main three times, in one fresh process
    assert [result["rc"] for result in done] == [0, 0, 2], done
    expected = schedule_multipliers("wsd", 2, 14, lr=1e-3, num_decay_steps=4)
    assert read_lr_csv(tmp_path / "grown") == [
        (k, pytest.approx(1e-3 * expected[k - 1], rel=1e-15)) for k in range(1, 15)
    ]
    assert read_lr_csv(tmp_path / "grown")[:4] == read_lr_csv(tmp_path / "trunk")[:4]
    stderr = done[2]["stderr"]
    assert "Traceback" not in stderr
    assert "--max_train_steps 10 -> 14" in stderr and "had begun its decay at step 6" in stderr


def test_resume_with_another_process_count_stops_with_a_clear_error(tmp_path, tiny_model_dir, csv_files):
    """A 1-process checkpoint resumed on 2 processes: both processes refuse it with the message, neither waits."""
    args = SCHEDULE + ["--max_train_steps", "4", "--checkpointing_steps", "2"]
    run_examples(
        [common_args(tiny_model_dir, csv_files, tmp_path / "one") + args + ["--per_device_train_batch_size", 8]]
    )
    two = common_args(tiny_model_dir, csv_files, tmp_path / "two") + args + ["--per_device_train_batch_size", 4]
    result = launch(
        EXAMPLES / "glue.py", 2, two + ["--resume_from_checkpoint", tmp_path / "one" / "step_2"], check=False
    )
    assert result.returncode != 0
    assert result.stderr.count("glue.py: error: Cannot resume from") == 2, result.stderr[-3000:]  # one per process
    assert "it was saved with num_processes=1, this run has num_processes=2" in result.stderr


def test_a_non_empty_output_dir_is_refused_unless_overwritten(tmp_path, tiny_model_dir, csv_files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "all_results.json").write_text("{}")
    # A schedule of transformers' with a ratio of warmup: all_results.json gives its warmup in steps, ceil(0.5 * 3).
    argv = common_args(tiny_model_dir, csv_files, out)
    argv += ["--max_train_steps", "3", "--lr_schedule", "linear", "--num_warmup_steps", "0.5"]
    _, (refused, overwritten) = run_examples([argv, argv + ["--overwrite_output_dir"]], expect=None)
    assert refused["rc"] == 2 and "Traceback" not in refused["stderr"]
    assert (
        f"the output directory {str(out)!r} is not empty" in refused["stderr"]
        and "--overwrite_output_dir" in refused["stderr"]
    )
    assert overwritten["rc"] == 0, overwritten["stderr"][-3000:]
    assert results(out)["completed_steps"] == 3 and results(out)["num_warmup_steps"] == 2


def test_glue_trainer_with_python_and_accelerate_launch(tmp_path, tiny_model_dir, csv_files):
    args = common_args(tiny_model_dir, csv_files, tmp_path / "py") + [
        "--lr_schedule",
        "exponential_warmup_cosine",
        "--warmup_steps",
        "3",
        "--max_steps",
        "8",
        "--per_device_train_batch_size",
        "8",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--eval_strategy",
        "epoch",
        "--save_strategy",
        "no",
        "--use_cpu",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    subprocess.run(
        [sys.executable, EXAMPLES / "glue_trainer.py"] + [str(a) for a in args],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=600,
    )
    two_args = [str(a).replace(str(tmp_path / "py"), str(tmp_path / "two")) for a in args]
    two_args[two_args.index("--per_device_train_batch_size") + 1] = "4"
    launch(EXAMPLES / "glue_trainer.py", 2, two_args)
    one, two = results(tmp_path / "py"), results(tmp_path / "two")
    assert (one["num_processes"], two["num_processes"]) == (1, 2)
    assert "eval_accuracy" in one and "eval_f1_macro" in one

    def curve(output_dir):
        with open(Path(output_dir) / "lr_schedule.csv", newline="") as f:
            return [(int(r["step"]), float(r["lr"])) for r in csv.DictReader(f)]

    expected = schedule_multipliers("exponential_warmup_cosine", 3, 8)
    assert curve(tmp_path / "py") == curve(tmp_path / "two")
    assert curve(tmp_path / "py") == [(k, pytest.approx(1e-3 * expected[k - 1], rel=1e-12)) for k in range(1, 9)]


def test_hub_tasks_fail_fast_offline_and_name_the_alternative(tmp_path):
    # Each script's `main` in a process of its own with HF_HUB_OFFLINE set (run_examples); the scripts' own exit
    # status through `python script.py` is tested in test_glue_args.py.
    for script, extra in (("glue", []), ("glue_trainer", ["--use_cpu"])):
        _, (result,) = run_examples(
            [["--task_name", "mrpc", "--output_dir", tmp_path / script, *extra]], script=script, expect=2
        )
        assert "needs the Hugging Face Hub, which cannot be reached (HF_HUB_OFFLINE is set)" in result["stderr"]
        assert "--task_name bbc_news" in result["stderr"]


def test_bad_arguments_exit_2_with_the_message(tmp_path):
    argv = ["--task_name", "bbc_news", "--lr_schedule", "warmup_cosin", "--output_dir", tmp_path / "out"]
    _, (result,) = run_examples([argv], expect=2)
    assert "Unknown schedule name 'warmup_cosin'. Did you mean 'warmup_cosine'" in result["stderr"]


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--task_name", "bbc_news", "--num_warmup_steps", "1.5"], "`num_warmup_steps` must be a whole number"),
        (["--task_name", "bbc_news", "--num_warmup_steps", "soon"], "a ratio in [0, 1), or 'auto'; got 'soon'"),
        (
            ["--task_name", "bbc_news", "--lr_schedule_kwargs", "{num_cycles: 2}"],
            "`lr_schedule_kwargs` is not valid JSON (Expecting property name enclosed in double quotes at character 1): "
            "'{num_cycles: 2}'",
        ),
        (["--task_name", "bbc_news", "--lr_schedule_kwargs", "[2]"], "`lr_schedule_kwargs` must be a JSON object"),
        (
            ["--task_name", "bbc_news", "--lr_schedule_kwargs", '{"last_epoch": 3}'],
            "`lr_schedule_kwargs` must not contain 'last_epoch'",
        ),
        (
            ["--task_name", "bbc_news", "--checkpointing_steps", "0"],
            "`checkpointing_steps` must be a number of steps >= 1",
        ),
        (["--task_name", "bbc_news", "--num_train_epochs", "inf"], "`num_train_epochs` must be a finite number > 0"),
        (["--task_name", "bbc_news", "--num_train_epochs", "nan"], "`num_train_epochs` must be a finite number > 0"),
        (
            [
                "--task_name",
                "bbc_news",
                "--lr_schedule",
                "cosine_with_growing_restarts",
                "--lr_schedule_kwargs",
                '{"num_cycle": 2}',
            ],
            "unexpected keyword argument 'num_cycle'. Did you mean 'num_cycles'",
        ),
        (
            ["--task_name", "bbc_news", "--lr_schedule_kwargs", '{"min_lr_ratio": 2}'],
            "`min_lr_ratio` must be in [0, 1)",
        ),
        (
            [
                "--task_name",
                "bbc_news",
                "--max_train_steps",
                "5",
                "--lr_schedule",
                "cosine_with_growing_restarts",
                "--lr_schedule_kwargs",
                '{"num_cycles": 10}',
            ],
            "`num_cycles`=10 with cycle_mult=2.0 does not fit",
        ),
        (
            ["--task_name", "bbc_news", "--learning_rate", "1e-5", "--lr_schedule_kwargs", '{"min_lr": 1e-4}'],
            "`min_lr`=0.0001 must be below the base learning rate",
        ),
        (
            ["--task_name", "bbc_news", "--gradient_accumulation_steps", "0"],
            "`gradient_accumulation_steps` must be >= 1",
        ),
        (["--task_name", "bbc_news", "--checkpointing_steps", "often"], "`checkpointing_steps` must be"),
        (["--train_file", "a.csv"], "both `--train_file` and `--validation_file`"),
        (["--train_file", "a.txt", "--validation_file", "b.csv"], "must be .csv, .json or .jsonl"),
    ],
)
def test_argument_errors(argv, message):
    with pytest.raises((ValueError, TypeError)) as info:
        glue.parse_args(argv)
    assert message in str(info.value)


@pytest.mark.parametrize(
    "name,text,message",
    [
        ("empty.yaml", "", "must hold a mapping of argument names to values; it is empty"),
        ("list.yaml", "- task_name: bbc_news\n", "it is a list"),
        ("bad.yaml", "task_name: [bbc\n", "is not valid YAML"),
        ("bad.json", '{"task_name": ', "is not valid JSON"),
        ("missing.yaml", None, "cannot read the config file"),
    ],
)
def test_config_file_errors_name_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as info:
        glue.parse_args([str(path)])
    assert message in str(info.value) and str(path) in str(info.value)


def test_warmup_forms_are_checked_when_parsed():
    for value in ("auto", "0.06", "10", "0"):
        assert glue.parse_args(["--task_name", "bbc_news", "--num_warmup_steps", value])[2].num_warmup_steps == value
    with pytest.raises(ValueError, match="`num_warmup_steps` must be a whole number of steps, a ratio in"):
        glue.parse_args(["--task_name", "bbc_news", "--num_warmup_steps", "1.5"])


def test_config_files_parse():
    for path in sorted((EXAMPLES / "configs").glob("*.yaml")):
        script = glue if "trainer" not in path.name else __import__("glue_trainer")
        _model_args, data_args, *_ = script.parse_args([str(path)])
        assert data_args.task_name == "bbc_news", path


@pytest.mark.parametrize("name", ["cpu_2proc", "multi_gpu", "multi_node", "deepspeed_zero2", "fsdp"])
def test_accelerate_configs_load(name):
    """The configs for hardware this machine lacks are checked as far as they can be: accelerate loads them."""
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(EXAMPLES / "accelerate_configs" / f"{name}.yaml"))
    expected = {
        "cpu_2proc": "MULTI_GPU",
        "multi_gpu": "MULTI_GPU",
        "multi_node": "MULTI_GPU",
        "deepspeed_zero2": "DEEPSPEED",
        "fsdp": "FSDP",
    }[name]
    assert config.distributed_type.value == expected
    assert config.num_processes >= 2
    assert name in (EXAMPLES / "README.md").read_text()


class TestOfflineMetrics:
    """The local definitions, pinned on inputs small enough to check by hand."""

    def test_accuracy_and_f1(self):
        # tp = 2, fp = 1, fn = 0, tn = 1: accuracy 3/4, F1 = 2 * 2 / (2 * 2 + 1 + 0) = 0.8
        for task in ("mrpc", "qqp"):
            assert glue_data.glue_metrics(task, [1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx(
                {"accuracy": 0.75, "f1": 0.8}
            )
        for task in ("sst2", "rte", "qnli", "mnli", "wnli"):
            assert glue_data.glue_metrics(task, [1, 0, 1, 1], [1, 0, 0, 1]) == {"accuracy": 0.75}

    def test_matthews_correlation(self):
        # (tp tn - fp fn) / sqrt((tp + fp)(tp + fn)(tn + fp)(tn + fn)) = (2 - 0) / sqrt(3 * 2 * 2 * 1)
        result = glue_data.glue_metrics("cola", [1, 0, 1, 1], [1, 0, 0, 1])
        assert result == pytest.approx({"matthews_correlation": 2 / 12**0.5})

    def test_pearson_and_spearman(self):
        assert glue_data.glue_metrics("stsb", [1.0, 2.0, 3.0], [1.0, 3.0, 2.0]) == pytest.approx(
            {"pearson": 0.5, "spearmanr": 0.5}
        )
        assert glue_data.glue_metrics("stsb", [0.5, 1.0, 4.0], [1.0, 2.0, 3.0])["spearmanr"] == pytest.approx(1.0)

    def test_bbc_news_macro_f1(self):
        # class 0: P = 1, R = 1/2, F1 = 2/3; class 1: P = 1/2, R = 1, F1 = 2/3; class 2: F1 = 1
        result = glue_data.glue_metrics("bbc_news", [0, 1, 1, 2], [0, 0, 1, 2])
        assert result == pytest.approx({"accuracy": 0.75, "f1_macro": (2 / 3 + 2 / 3 + 1) / 3})

    def test_offline_the_metric_is_local(self, monkeypatch):
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        from huggingface_hub import constants

        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
        metric = glue_data.Metric("mrpc")
        assert metric.source == "local"
        assert metric.compute([1, 0], [1, 1]) == pytest.approx({"accuracy": 0.5, "f1": 2 / 3})


def test_bbc_news_split_is_seeded_stratified_80_20():
    data = glue_data.read_bbc_news(42)
    train, validation = data["train"], data["validation"]
    assert (len(train), len(validation)) == (1700, 425)  # 2,225 files less 100 word-for-word repeats
    assert train.features["label"].names == list(glue_data.BBC_NEWS_TOPICS)
    for label in range(5):
        n_train, n_val = train["label"].count(label), validation["label"].count(label)
        assert abs(n_val - 0.2 * (n_train + n_val)) <= 1
    assert not set(train["text"]) & set(validation["text"])  # held out for real
    assert len(set(train["text"])) == len(train)
    assert glue_data.read_bbc_news(42)["validation"]["text"] == validation["text"]
    assert glue_data.read_bbc_news(7)["validation"]["text"] != validation["text"]
