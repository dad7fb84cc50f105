"""`examples/glue.py` resumed, for real: from every kind of checkpoint, from damaged and mixed ones, after a full disk,
and after kills at random points, a resumed run's records equal the uninterrupted run's, dropout on."""

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import BertConfig, BertForSequenceClassification

from .helpers import EXAMPLES, ROOT, TINY_BERT, common_args, launch, results, run_examples

pytestmark = pytest.mark.slow

RUNTIME_FIELDS = ("train_runtime_s", "train_samples_per_second")
# 50 rows, batch 4: 13 batches, so 13 optimizer steps per epoch; 20 steps end in the second epoch.
STEPS = ["--per_device_train_batch_size", "4", "--max_train_steps", "20", "--checkpointing_steps", "1"]
SCHEDULE = ["--lr_schedule", "warmup_cosine", "--num_warmup_steps", "3", "--eval_steps", "5"]


@pytest.fixture(scope="module")
def dropout_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny BERT of `tiny_model_dir` with dropout on (0.1 everywhere), as the real MiniLM has it."""
    path = tmp_path_factory.mktemp("tiny-bert-dropout")
    for name in os.listdir(tiny_model_dir):
        if name.startswith("tokenizer") or name.endswith(".txt"):
            shutil.copy(tiny_model_dir / name, path / name)
    BertForSequenceClassification(BertConfig(**TINY_BERT)).save_pretrained(path)  # BERT's dropout of 0.1
    return path


def run_glue(argv, fault=None, expect=0, script="glue"):
    return run_examples(argv, fault=fault, expect=expect, script=script)


def records(output_dir):
    """Everything a run writes about itself, the runtime fields aside, and its weights."""
    output_dir = Path(output_dir)
    summary = {k: v for k, v in results(output_dir).items() if k not in RUNTIME_FIELDS}
    weights = load_file(output_dir / "model.safetensors")
    return {
        "lr_schedule.csv": (output_dir / "lr_schedule.csv").read_text(),
        "train_loss.csv": (output_dir / "train_loss.csv").read_text(),
        "all_results.json": summary,
        "weights": {k: v.tolist() for k, v in weights.items()},
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, dropout_model_dir, csv_files):
    """20 steps with dropout, a checkpoint after every step and an evaluation every 5 (and at each epoch's end), in a
    new interpreter: the resumed runs it is compared with are forked from the example server, so the comparison
    crosses a real process boundary (another hash seed, nothing shared)."""
    out = tmp_path_factory.mktemp("glue") / "full"
    run_examples([common_args(dropout_model_dir, csv_files, out) + STEPS + SCHEDULE], fresh=True)
    return out


def args_for(model_dir, csv_files, out, *extra):
    return common_args(model_dir, csv_files, out) + STEPS + SCHEDULE + list(extra)


def test_resumed_from_any_checkpoint_a_dropout_run_writes_the_uninterrupted_runs_records(
    tmp_path, uninterrupted, dropout_model_dir, csv_files
):
    full = records(uninterrupted)
    assert [e["step"] for e in full["all_results.json"]["eval_history"]] == [5, 10, 13, 15, 20]
    assert full["all_results.json"]["completed_steps"] == 20
    # 5, 10, 15: an evaluation step; 13: the end of the first epoch; 3: mid-epoch, mid-warmup; 20: the last step,
    # as after a kill during the final writes (nothing left to train: no 21st step).
    starts = (3, 5, 10, 13, 15, 20)
    outs = {k: tmp_path / f"from_{k}" for k in starts}
    run_glue(
        [
            args_for(dropout_model_dir, csv_files, outs[k], "--resume_from_checkpoint", uninterrupted / f"step_{k}")
            for k in starts
        ]
    )
    for k in starts:
        assert records(outs[k]) == full, f"resumed from step {k}"


def test_an_epoch_run_resumed_from_its_last_checkpoint_keeps_its_final_evaluation(tmp_path, tiny_model_dir, csv_files):
    args = common_args(tiny_model_dir, csv_files, tmp_path / "epochs") + [
        "--per_device_train_batch_size",
        "8",
        "--num_train_epochs",
        "1",
        "--checkpointing_steps",
        "epoch",
    ]
    resumed = [a if a != tmp_path / "epochs" else tmp_path / "resumed" for a in args]
    checkpoint = tmp_path / "epochs" / "epoch_0"
    run_glue([args, resumed + ["--resume_from_checkpoint", checkpoint]])
    first, again = results(tmp_path / "epochs"), results(tmp_path / "resumed")
    assert first["completed_steps"] == again["completed_steps"] == 7
    assert "eval_accuracy" in first and "eval_loss" in first
    assert {k: v for k, v in again.items() if k not in RUNTIME_FIELDS} == {
        k: v for k, v in first.items() if k not in RUNTIME_FIELDS
    }
    assert again["train_samples_per_second"] is None  # nothing trained


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_damaged_stale_and_mixed_checkpoints_are_refused_naming_the_file(
    tmp_path, uninterrupted, dropout_model_dir, csv_files
):
    source, other = uninterrupted / "step_9", uninterrupted / "step_4"
    cases = {}

    def case(name, edit):
        folder = tmp_path / name
        shutil.copytree(source, folder)
        edit(folder)
        cases[name] = folder

    def edit_meta(**changes):
        def edit(folder):
            meta = json.loads((folder / "hf_lrsched_checkpoint.json").read_text())
            meta.update(changes)
            (folder / "hf_lrsched_checkpoint.json").write_text(json.dumps(meta))

        return edit

    rng = "random_states_0.pkl"
    case("rng_missing", lambda f: (f / rng).unlink())
    case("rng_truncated", lambda f: (f / rng).write_bytes((f / rng).read_bytes()[:200]))
    case("rng_stale", lambda f: shutil.copy(other / rng, f / rng))
    for part in ("custom_checkpoint_0.pkl", "optimizer.bin", "model.safetensors", "hf_lrsched_checkpoint.json"):
        case(f"mixed_{part}", lambda f, part=part: shutil.copy(other / part, f / part))
    case("steps_negative", edit_meta(completed_steps=-3))
    case("steps_beyond", edit_meta(completed_steps=25))
    case("steps_true", edit_meta(completed_steps=True))
    case("steps_other", edit_meta(completed_steps=8))
    case("lr_history_text", edit_meta(lr_history="abc"))
    names = list(cases)
    _, done = run_glue(
        [
            args_for(dropout_model_dir, csv_files, tmp_path / f"out_{n}", "--resume_from_checkpoint", cases[n])
            for n in names
        ],
        expect=2,
    )
    said = {name: result["stderr"] for name, result in zip(names, done)}
    meta = "hf_lrsched_checkpoint.json"
    expected = {
        "rng_missing": [f"the file {cases['rng_missing'] / rng} is missing"],
        "rng_truncated": [f"the file {cases['rng_truncated'] / rng} is damaged or truncated"],
        "rng_stale": [f"the file {cases['rng_stale'] / rng}", "copied from another checkpoint"],
        "mixed_custom_checkpoint_0.pkl": [
            f"the file {cases['mixed_custom_checkpoint_0.pkl'] / 'custom_checkpoint_0.pkl'} is of another step",
            "it records 4, the checkpoint 9",
        ],
        "mixed_optimizer.bin": [f"the file {cases['mixed_optimizer.bin'] / 'optimizer.bin'} is of another step"],
        "mixed_model.safetensors": [
            f"the file {cases['mixed_model.safetensors'] / 'model.safetensors'} is not the one this checkpoint",
        ],
        f"mixed_{meta}": [f"its metadata {cases[f'mixed_{meta}'] / meta} records step 4"],
        "steps_negative": [f"{cases['steps_negative'] / meta} is damaged or was edited", "got -3"],
        "steps_beyond": ["it records 25 completed steps, more than this run's 20"],
        "steps_true": [f"{cases['steps_true'] / meta} is damaged or was edited", "got True"],
        "steps_other": [f"{cases['steps_other'] / meta} is damaged or was edited", "`lr_history`"],
        "lr_history_text": [f"{cases['lr_history_text'] / meta} is damaged or was edited", "`lr_history`"],
    }
    for name, parts in expected.items():
        for part in parts:
            assert part in said[name], (name, said[name])
        assert not (tmp_path / f"out_{name}" / "all_results.json").exists()


def test_a_full_disk_exits_2_naming_the_path_and_keeps_the_last_good_checkpoint(tmp_path, tiny_model_dir, csv_files):
    out = tmp_path / "out"
    args = common_args(tiny_model_dir, csv_files, out) + [
        "--per_device_train_batch_size",
        "8",
        "--max_train_steps",
        "6",
        "--checkpointing_steps",
        "2",
    ]
    run_glue([args])
    before = {name: digest(out / "step_4" / name) for name in os.listdir(out / "step_4")}
    # Again from step 2, over the same directory, where no file may grow past 30 kB: step 4's model (19 kB) is
    # written, its optimizer state (54 kB) fails for real, as torch.save fails on a full disk.
    _, (result,) = run_glue([args + ["--resume_from_checkpoint", out / "step_2"]], fault="fsize:30000", expect=2)
    assert f"glue.py: error: cannot write {out / 'step_4.tmp'}: RuntimeError" in result["stderr"]
    assert "bytes free). The files written before it (the last complete checkpoint among them)" in result["stderr"]
    assert {name: digest(out / "step_4" / name) for name in os.listdir(out / "step_4")} == before
    assert not (out / "step_4.tmp").exists() and not (out / "step_4.old").exists()
    run_glue([args + ["--resume_from_checkpoint", out / "step_4"]])  # the kept checkpoint still resumes


def test_a_read_only_output_directory_exits_2_before_training(tmp_path, tiny_model_dir, csv_files):
    out = tmp_path / "ro"
    _, (result,) = run_glue(
        [common_args(tiny_model_dir, csv_files, out) + ["--max_train_steps", "2"]], fault="erofs", expect=2
    )
    assert f"cannot write {out / '.write_test'}: Read-only file system" in result["stderr"]


def test_snapshots_are_recorded_relative_to_a_run_directory_that_may_move(tmp_path, tiny_model_dir, csv_files):
    first, moved = tmp_path / "first", tmp_path / "moved"
    args = common_args(tiny_model_dir, csv_files, first) + [
        "--per_device_train_batch_size",
        "8",
        "--max_train_steps",
        "8",
        "--lr_schedule",
        "cosine_with_growing_restarts",
        "--lr_schedule_kwargs",
        '{"num_cycles": 2, "cycle_mult": 1.0}',
        "--num_warmup_steps",
        "0",
        "--checkpointing_steps",
        "5",
        "--snapshot_ensemble",
        "2",
    ]
    run_glue([args], script="glue_snapshots")
    shutil.move(first, moved)
    resumed = [moved if a == first else a for a in args]
    (moved / "all_results.json").unlink()
    run_glue([resumed + ["--resume_from_checkpoint", moved / "step_5"]], script="glue_snapshots")
    summary = results(moved)
    assert [s["path"] for s in summary["snapshots"]] == ["snapshot-4", "snapshot-8"]
    assert summary["snapshot_ensemble"]["steps"] == [4, 8]


def latest_checkpoint(output_dir):
    """The newest complete checkpoint (`step_N` with its metadata), as a person resuming after a kill picks it."""
    found = [
        p
        for p in Path(output_dir).glob("step_*")
        if p.name.split("_")[1].isdigit() and (p / "hf_lrsched_checkpoint.json").is_file()
    ]
    return max(found, key=lambda p: int(p.name.split("_")[1]), default=None)


def test_killed_at_random_points_and_resumed_until_done_a_dropout_run_ends_as_the_uninterrupted_one(
    tmp_path, uninterrupted, dropout_model_dir, csv_files
):
    """Kills at random file writes (a torch.save left half written among them) and optimizer steps: each time, resume
    from the newest complete checkpoint, until the run finishes; then every record equals the uninterrupted run's."""
    out = tmp_path / "killed"
    # A step with its checkpoint is 9 events (the step, 4 state files, the metadata and 3 renames): each attempt
    # dies after 5 to 60 of them, before its first checkpoint or past a few, at a write or at a step.
    rnd = random.Random(19)
    points = [rnd.randint(5, 60) for _ in range(6)]
    kills = 0
    for attempt in range(len(points) + 1):
        checkpoint = latest_checkpoint(out)
        extra = ["--resume_from_checkpoint", checkpoint] if checkpoint else ["--overwrite_output_dir"]
        fault = f"kill:{points[attempt]}" if attempt < len(points) else None
        process, done = run_glue([args_for(dropout_model_dir, csv_files, out, *extra)], fault=fault, expect=None)
        if process.returncode == 137:
            kills += 1
            continue
        assert process.returncode == 0 and done == [{"rc": 0, "stderr": done[0]["stderr"]}], process.stderr[-3000:]
        break
    else:
        pytest.fail("the run never finished")
    assert kills >= 3
    assert records(out) == records(uninterrupted)


def test_two_processes_resume_exactly_with_dropout(tmp_path, dropout_model_dir, csv_files):
    """Each process's random states are in the checkpoint (written into `step_N.tmp`, renamed by the main process);
    the checkpoint resumes on 2 processes, and is refused on 1 (the other direction, 1 to 2, has a test of its own)."""
    args = SCHEDULE + ["--per_device_train_batch_size", "4", "--max_train_steps", "10", "--checkpointing_steps", "1"]
    launch(EXAMPLES / "glue.py", 2, common_args(dropout_model_dir, csv_files, tmp_path / "full") + args)
    assert (tmp_path / "full" / "step_4" / "random_states_1.pkl").is_file()
    one = common_args(dropout_model_dir, csv_files, tmp_path / "one") + args + ["--per_device_train_batch_size", 8]
    _, (refused,) = run_examples([one + ["--resume_from_checkpoint", tmp_path / "full" / "step_4"]], expect=2)
    assert "glue.py: error: Cannot resume from" in refused["stderr"]
    assert "it was saved with num_processes=2, this run has num_processes=1" in refused["stderr"]
    assert not (tmp_path / "one" / "all_results.json").exists()
    launch(
        EXAMPLES / "glue.py",
        2,
        common_args(dropout_model_dir, csv_files, tmp_path / "resumed")
        + args
        + ["--resume_from_checkpoint", tmp_path / "full" / "step_4"],
    )
    assert records(tmp_path / "resumed") == records(tmp_path / "full")


def test_an_epoch_run_too_short_for_its_schedule_exits_2_once_its_length_is_known(tmp_path, tiny_model_dir, csv_files):
    # 50 rows, batch 8: 7 steps, fewer than linear's 8 warmup steps; known only once the data loader is built
    argv = common_args(tiny_model_dir, csv_files, tmp_path / "out") + [
        "--per_device_train_batch_size",
        "8",
        "--num_train_epochs",
        "1",
        "--lr_schedule",
        "linear",
        "--num_warmup_steps",
        "8",
    ]
    _, (result,) = run_glue([argv], expect=2)
    assert "glue.py: error: `num_warmup_steps` must be an integer in [0, 7]" in result["stderr"], result["stderr"]
    assert "Traceback" not in result["stderr"] and not (tmp_path / "out" / "all_results.json").exists()


def test_a_write_that_fails_on_one_of_two_processes_stops_both_with_exit_2(
    tmp_path, tiny_model_dir, csv_files, monkeypatch
):
    """The main process's optimizer state (54 kB) cannot be written (no file may grow past 30 kB); the other process,
    whose own random states (15 kB) are written, must not wait for it at a barrier: both end with the message."""
    out = tmp_path / "out"
    argv = common_args(tiny_model_dir, csv_files, out) + [
        "--per_device_train_batch_size",
        "4",
        "--max_train_steps",
        "4",
        "--checkpointing_steps",
        "2",
    ]
    spec, results_file = tmp_path / "runs.json", tmp_path / "results.json"
    spec.write_text(json.dumps([[str(a) for a in argv]]))
    monkeypatch.setenv("GLUE_FAULT", "fsize:30000")
    launch(ROOT / "tests" / "glue_driver.py", 2, [spec, results_file])
    for path in (results_file, tmp_path / "results.json.1"):
        (result,) = json.loads(path.read_text())
        assert result["rc"] == 2 and "Traceback" not in result["stderr"], result["stderr"][-3000:]
        assert f"glue.py: error: cannot write {out / 'step_2.tmp'}: RuntimeError" in result["stderr"]
    assert not (out / "step_2").exists() and not (out / "step_2.tmp").exists()
