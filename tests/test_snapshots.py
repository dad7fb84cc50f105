"""`describe` and `SnapshotCallback`: a Trainer run with restarts saves exactly the cycle-end snapshots, loadable; a
resumed run does not duplicate them; a 2-process run saves once; `glue_snapshots.py --snapshot_ensemble`."""

import os

import pytest
import torch
from transformers import BertForSequenceClassification, TrainerCallback

from hf_lrsched import LRSchedTrainer, SnapshotCallback, describe, get_schedule

from .helpers import (
    EXAMPLES,
    common_args,
    launch,
    make_args,
    make_optimizer,
    results,
    run_examples,
    tiny_bert,
    tiny_dataset,
)


def test_describe_names_the_restarts_cycle_ends_and_floors():
    scheduler = get_schedule(
        "cosine_with_growing_restarts",
        make_optimizer(groups=[1e-3, 1e-2]),
        4,
        32,
        num_cycles=3,
        cycle_mult=2.0,
        min_lr=1e-5,
    )
    info = describe(scheduler)
    assert (info.name, info.num_training_steps, info.num_warmup_steps, info.num_cycles) == (
        "cosine_with_growing_restarts",
        32,
        4,
        3,
    )
    assert info.restarts == [8, 16] and info.cycle_ends == [8, 16, 32]  # D = 28: B = 0, 4, 12, 28
    assert info.base_lrs == (1e-3, 1e-2) and info.min_lrs == pytest.approx((1e-5, 1e-5))
    plain = describe(get_schedule("warmup_cosine", make_optimizer(), 5, 50, min_lr_ratio=0.1))
    assert plain.restarts == [] and plain.cycle_ends == [50] and plain.min_lrs == pytest.approx((1.0,))
    free = describe(
        get_schedule("cosine_with_growing_restarts", make_optimizer(), 0, 25, first_cycle_steps=10, cycle_mult=1.0)
    )
    assert free.num_cycles == 3 and free.cycle_ends == [10, 20, 25]  # the last cycle is cut at T
    with pytest.raises(TypeError, match="built by hf_lrsched"):
        describe(get_schedule("linear", make_optimizer(), 5, 50))


def snapshot_trainer(tmp_path, out="out", **overrides):
    args = make_args(
        tmp_path / out,
        max_steps=20,
        warmup_steps=2,
        lr_schedule="cosine_with_growing_restarts",
        lr_schedule_kwargs={"num_cycles": 3, "cycle_mult": 1.5},
        **overrides,
    )
    return LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(), callbacks=[SnapshotCallback()])


def snapshots(output_dir):
    return sorted(int(name.split("-")[1]) for name in os.listdir(output_dir) if name.startswith("snapshot-"))


@pytest.mark.slow
def test_a_trainer_run_saves_exactly_the_cycle_end_snapshots_loadable(tmp_path):
    trainer = snapshot_trainer(tmp_path)
    trainer.train()
    ends = describe(trainer.lr_scheduler).cycle_ends
    assert len(ends) == 3 and ends[-1] == 20
    assert snapshots(trainer.args.output_dir) == ends
    last = BertForSequenceClassification.from_pretrained(os.path.join(trainer.args.output_dir, "snapshot-20"))
    assert all(torch.equal(a, b) for a, b in zip(last.state_dict().values(), trainer.model.state_dict().values()))
    first = BertForSequenceClassification.from_pretrained(os.path.join(trainer.args.output_dir, f"snapshot-{ends[0]}"))
    assert not torch.equal(first.classifier.weight, last.classifier.weight)
    assert not any(name.endswith(".tmp") for name in os.listdir(trainer.args.output_dir))


class StopAt(TrainerCallback):
    """Ends training after step `step`, as a kill right after a checkpoint would."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


@pytest.mark.slow
def test_a_resumed_run_neither_duplicates_nor_misses_a_snapshot(tmp_path):
    first = snapshot_trainer(tmp_path, save_strategy="steps", save_steps=10)
    first.add_callback(StopAt(10))
    first.train()
    ends = describe(first.lr_scheduler).cycle_ends  # [?, 11, 20]: one end before the checkpoint at 10, two after
    output = first.args.output_dir
    before = [step for step in ends if step <= 10]
    assert snapshots(output) == before and before and len(before) < len(ends)
    written = {step: os.stat(os.path.join(output, f"snapshot-{step}")).st_mtime_ns for step in before}
    callback = SnapshotCallback()
    resumed = LRSchedTrainer(model=tiny_bert(), args=first.args, train_dataset=tiny_dataset(), callbacks=[callback])
    resumed.train(resume_from_checkpoint=os.path.join(output, "checkpoint-10"))
    assert snapshots(output) == ends
    assert [int(path.rsplit("-", 1)[1]) for path in callback.saved] == [step for step in ends if step > 10]
    assert all(os.stat(os.path.join(output, f"snapshot-{s}")).st_mtime_ns == written[s] for s in before)


@pytest.mark.slow
def test_two_processes_save_each_snapshot_once(tmp_path, tiny_model_dir, csv_files):
    args = common_args(tiny_model_dir, csv_files, tmp_path / "two") + [
        "--lr_schedule",
        "cosine_with_growing_restarts",
        "--lr_schedule_kwargs",
        '{"num_cycles": 2, "cycle_mult": 1.0}',
        "--warmup_steps",
        "2",
        "--max_steps",
        "10",
        "--per_device_train_batch_size",
        "4",
        "--report_to",
        "none",
        "--save_strategy",
        "no",
        "--save_snapshots",
    ]
    result = launch(EXAMPLES / "glue_trainer.py", 2, args)
    assert snapshots(tmp_path / "two") == [6, 10], result.stderr[-2000:]
    assert results(tmp_path / "two")["num_processes"] == 2


@pytest.mark.slow
def test_glue_snapshots_saves_snapshots_and_evaluates_their_ensemble_and_resumes_without_losing_them(
    tmp_path, tiny_model_dir, csv_files
):
    schedule = [
        "--lr_schedule",
        "cosine_with_growing_restarts",
        "--lr_schedule_kwargs",
        '{"num_cycles": 3, "cycle_mult": 1.0}',
        "--num_warmup_steps",
        "0",
        "--max_train_steps",
        "9",
        "--per_device_train_batch_size",
        "8",
        "--snapshot_ensemble",
        "2",
        "--checkpointing_steps",
        "4",
    ]
    resumed_args = common_args(tiny_model_dir, csv_files, tmp_path / "resumed") + schedule
    # glue_snapshots.main twice, in one fresh process: the whole run, then one resumed from its step 4
    run_examples(
        [
            common_args(tiny_model_dir, csv_files, tmp_path / "full") + schedule,
            resumed_args + ["--resume_from_checkpoint", tmp_path / "full" / "step_4"],
        ],
        script="glue_snapshots",
    )
    full = results(tmp_path / "full")
    assert [s["step"] for s in full["snapshots"]] == [3, 6, 9] and snapshots(tmp_path / "full") == [3, 6, 9]
    assert full["snapshots"][-1]["accuracy"] == full["eval_accuracy"]  # the last snapshot is the final model
    ensemble = full["snapshot_ensemble"]
    assert ensemble["k"] == 2 and ensemble["steps"] == [6, 9]
    assert 0 <= ensemble["accuracy"] <= 1 and ensemble["nll"] > 0 and 0 <= ensemble["ece"] <= 1
    assert "eval_ece" in full
    # The resumed run (from step 4: one snapshot behind it) reports the same snapshots and the same ensemble.
    resumed = results(tmp_path / "resumed")
    assert [s["step"] for s in resumed["snapshots"]] == [3, 6, 9]
    assert resumed["snapshots"][0]["path"] == full["snapshots"][0]["path"]  # the snapshot from before the resume
    assert snapshots(tmp_path / "resumed") == [6, 9]
    assert resumed["snapshot_ensemble"] == {**full["snapshot_ensemble"]}


@pytest.mark.slow
def test_glue_snapshots_logs_every_steps_loss_and_each_groups_rate_to_tensorboard(tmp_path, tiny_model_dir, csv_files):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "tracked"
    argv = common_args(tiny_model_dir, csv_files, out) + [
        "--max_train_steps",
        "6",
        "--per_device_train_batch_size",
        "8",
        "--num_warmup_steps",
        "2",
        "--lr_layer_decay",
        "0.5",
        "--save_snapshots",
        "false",
        "--with_tracking",
        "--report_to",
        "tensorboard",
    ]
    run_examples([argv], script="glue_snapshots")
    run_dir = out / "hf_lrsched_glue"  # the scalars; the hyperparameters are a run of their own below it
    found = [run_dir / f for f in os.listdir(run_dir) if "tfevents" in f]
    assert len(found) == 1, found
    events = EventAccumulator(str(found[0]))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert [e.step for e in events.Scalars("train_loss")] == [1, 2, 3, 4, 5, 6]
    # Every param group's rate, under its name, equal to the rate lr_schedule.csv records for the step.
    with open(out / "lr_schedule.csv") as f:
        header, *rows = [line.strip().split(",") for line in f]
    for column, name in enumerate(header):
        if name.startswith("lr/"):
            logged = [e.value for e in events.Scalars(name)]
            assert logged == pytest.approx([float(row[column]) for row in rows], rel=1e-6), name
    assert {"lr/embeddings", "lr/head"} <= set(tags) and "eval_accuracy" in tags
    assert not any(name.startswith("snapshot-") for name in os.listdir(out))  # --save_snapshots false
