"""Real `Trainer` runs: the learning rate logged at every optimizer step is the schedule's, through epochs,
gradient accumulation, checkpoints and resumes, with several param groups."""

import json
import os

import pytest
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

import hf_lrsched.trainer
from hf_lrsched import (
    LRCurveCallback,
    LRSchedMixin,
    LRSchedTrainer,
    LRSchedTrainingArguments,
    describe,
    schedule_multipliers,
)

from .helpers import LR, expected_rates, logged_learning_rates, make_args, read_curve, tiny_bert, tiny_dataset

SCHEDULES = {
    "warmup_cosine": dict(min_lr_ratio=0.1),
    "exponential_warmup_cosine": dict(warmup_start_ratio=0.05),
    "cosine_with_growing_restarts": dict(num_cycles=3, cycle_mult=1.5, cycle_decay=0.7, restart_warmup_steps=1),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", SCHEDULES)
def test_logged_rate_is_the_schedule_over_max_steps(tmp_path, name):
    args = make_args(tmp_path, max_steps=20, warmup_steps=4, lr_schedule=name, lr_schedule_kwargs=SCHEDULES[name])
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates(name, SCHEDULES[name], 20, 4), rel=1e-12)
    assert trainer.lr_scheduler.last_epoch == 20
    assert trainer._created_lr_scheduler


@pytest.mark.slow
@pytest.mark.parametrize("name", SCHEDULES)
def test_logged_rate_is_the_schedule_over_epochs(tmp_path, name):
    # 40 rows / batch 4 = 10 optimizer steps per epoch, 2 epochs; warmup as a ratio (transformers 5): ceil(0.15 * 20).
    args = make_args(
        tmp_path, num_train_epochs=2, warmup_steps=0.15, lr_schedule=name, lr_schedule_kwargs=SCHEDULES[name]
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(40))
    trainer.train()
    assert trainer.state.max_steps == 20
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates(name, SCHEDULES[name], 20, 3), rel=1e-12)


@pytest.mark.slow
def test_gradient_accumulation_steps_the_schedule_once_per_optimizer_step(tmp_path):
    # 64 rows / batch 4 = 16 batches, accumulated by 4: 4 optimizer steps per epoch, 3 epochs.
    name, kwargs = "cosine_with_growing_restarts", dict(num_cycles=2, cycle_mult=1.0)
    args = make_args(
        tmp_path,
        num_train_epochs=3,
        gradient_accumulation_steps=4,
        warmup_steps=2,
        lr_schedule=name,
        lr_schedule_kwargs=kwargs,
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(64))
    trainer.train()
    assert trainer.state.global_step == trainer.state.max_steps == 12
    assert trainer.lr_scheduler.last_epoch == 12
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates(name, kwargs, 12, 2), rel=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_step", [3, 12])  # mid-warmup (W = 5) and mid-cycle (cycle 1 runs 9..16)
def test_resume_from_checkpoint_continues_exactly(tmp_path, checkpoint_step):
    name, kwargs = (
        "cosine_with_growing_restarts",
        dict(num_cycles=3, cycle_mult=1.0, restart_warmup_steps=2, min_lr=1e-5),
    )
    common = dict(
        max_steps=26, warmup_steps=5, lr_schedule=name, lr_schedule_kwargs=kwargs, save_strategy="steps", save_steps=3
    )
    full = LRSchedTrainer(model=tiny_bert(), args=make_args(tmp_path / "full", **common), train_dataset=tiny_dataset())
    full.train()
    uninterrupted = logged_learning_rates(full)
    assert uninterrupted == pytest.approx(expected_rates(name, kwargs, 26, 5), rel=1e-12)

    checkpoint = tmp_path / "full" / "out" / f"checkpoint-{checkpoint_step}"
    assert (checkpoint / "scheduler.pt").is_file()
    resumed = LRSchedTrainer(
        model=tiny_bert(seed=1), args=make_args(tmp_path / "resumed", **common), train_dataset=tiny_dataset()
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    after = {step: lr for step, lr in logged_learning_rates(resumed).items() if step > checkpoint_step}
    assert sorted(after) == list(range(checkpoint_step + 1, 27))
    assert after == {step: uninterrupted[step] for step in after}  # bit for bit
    # The curve written at the end covers the whole run, the steps before the checkpoint included.
    header, curve = read_curve(tmp_path / "resumed" / "out")
    assert sorted(curve) == list(range(1, 27))
    assert (header, curve) == read_curve(tmp_path / "full" / "out")  # bit for bit, the steps before the resume too
    # ... while a checkpoint stores no curve: its size does not grow with the number of steps.
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    stored = state["stateful_callbacks"]["LRCurveCallback"]
    assert stored["attributes"]["epochs"] == [] and stored["attributes"]["history"] == []
    assert stored["attributes"]["recompute_from"] == 1  # every row follows from the schedule it records
    assert stored["attributes"]["schedule"]["name"] == name


@pytest.mark.slow
def test_two_param_groups_with_an_absolute_floor(tmp_path):
    model = tiny_bert()
    head = [p for n, p in model.named_parameters() if n.startswith("classifier")]
    body = [p for n, p in model.named_parameters() if not n.startswith("classifier")]
    optimizer = torch.optim.AdamW([{"params": body, "lr": 1e-3}, {"params": head, "lr": 1e-2}], lr=1e-3)
    name, kwargs = "warmup_cosine", dict(min_lr=1e-5)
    args = make_args(tmp_path, max_steps=16, warmup_steps=4, lr_schedule=name, lr_schedule_kwargs=kwargs)
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset(), optimizers=(optimizer, None))
    trainer.train()
    header, curve = read_curve(args.output_dir)
    assert header == ["step", "lr", "lr_group_1"]
    for base, column in ((1e-3, 0), (1e-2, 1)):
        multipliers = schedule_multipliers(name, 4, 16, lr=base, **kwargs)
        assert [curve[k][column] for k in range(1, 17)] == pytest.approx(
            [base * m for m in multipliers[:16]], rel=1e-12
        )
    assert curve[5] == pytest.approx([1e-3, 1e-2])  # the peak: each group at its own rate
    assert trainer.lr_scheduler.get_last_lr() == pytest.approx([1e-5, 1e-5])  # step T: both on the absolute floor
    assert logged_learning_rates(trainer)[16] == pytest.approx(curve[16][0])


@pytest.mark.slow
def test_auto_warmup_from_the_command_line(tmp_path):
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(LRSchedTrainingArguments).parse_args_into_dataclasses(
        [
            "--output_dir",
            str(tmp_path / "out"),
            "--max_steps",
            "30",
            "--learning_rate",
            str(LR),
            "--logging_steps",
            "1",
            "--report_to",
            "none",
            "--use_cpu",
            "--per_device_train_batch_size",
            "4",
            "--adam_beta2",
            "0.8",
            "--lr_schedule",
            "warmup_cosine",
            "--auto_warmup",
            "--lr_schedule_kwargs",
            '{"max_auto_warmup_ratio": 0.5}',
        ]
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    # beta2 = 0.8: W = ceil(2 / 0.2) = 10 steps, under the cap 0.5 * 30.
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates("warmup_cosine", {}, 30, 10), rel=1e-12)


@pytest.mark.slow
def test_auto_warmup_with_a_transformers_schedule(tmp_path):
    args = make_args(tmp_path, max_steps=30, adam_beta2=0.8, lr_scheduler_type="linear", auto_warmup=True)
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates("linear", {}, 30, 3), rel=1e-12)  # cap 10%


class CountingTrainer(Trainer):
    """Another Trainer subclass with behaviour of its own, as TRL's trainers are."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        self.loss_calls = getattr(self, "loss_calls", 0) + 1
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)


class CountingLRSchedTrainer(LRSchedMixin, CountingTrainer):
    pass


@pytest.mark.slow
def test_mixin_composes_with_another_trainer_subclass(tmp_path):
    name, kwargs = "exponential_warmup_cosine", dict(min_lr_ratio=0.2)
    args = make_args(tmp_path, max_steps=12, warmup_steps=3, lr_schedule=name, lr_schedule_kwargs=kwargs)
    trainer = CountingLRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    assert trainer.loss_calls == 12
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates(name, kwargs, 12, 3), rel=1e-12)


@pytest.mark.slow
def test_plain_training_arguments_defer_to_transformers(tmp_path):
    args = TrainingArguments(
        output_dir=str(tmp_path),
        max_steps=10,
        warmup_steps=2,
        learning_rate=LR,
        logging_steps=1,
        report_to="none",
        use_cpu=True,
        lr_scheduler_type="cosine",
        per_device_train_batch_size=4,
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    assert logged_learning_rates(trainer) == pytest.approx(expected_rates("cosine", {}, 10, 2), rel=1e-12)
    assert not any(isinstance(cb, LRCurveCallback) for cb in trainer.callback_handler.callbacks)


@pytest.mark.slow
def test_unset_lr_schedule_keeps_lr_scheduler_type(tmp_path):
    args = make_args(
        tmp_path,
        max_steps=10,
        warmup_steps=2,
        lr_scheduler_type="cosine_with_restarts",
        lr_scheduler_kwargs={"num_cycles": 2},
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    expected = expected_rates("cosine_with_restarts", {"num_cycles": 2}, 10, 2)
    assert logged_learning_rates(trainer) == pytest.approx(expected, rel=1e-12)


def test_an_existing_scheduler_is_left_alone(tmp_path):
    model = tiny_bert()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    constant = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 0.5)
    args = make_args(tmp_path, max_steps=5, lr_schedule="warmup_cosine")
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset(), optimizers=(optimizer, constant))
    assert trainer.create_scheduler(5) is constant
    trainer.train()
    assert set(logged_learning_rates(trainer).values()) == {LR / 2}


def test_create_scheduler_contract(tmp_path):
    args = make_args(tmp_path, max_steps=40, warmup_steps=4, lr_schedule="cosine_with_growing_restarts")
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    other = torch.optim.SGD(trainer.model.parameters(), lr=0.5)
    scheduler = trainer.create_scheduler(40, optimizer=other)
    assert scheduler is trainer.lr_scheduler and scheduler.optimizer is other and trainer._created_lr_scheduler
    assert trainer.create_scheduler(40) is scheduler  # built once, then returned as is


def test_too_few_steps_fail_when_the_trainer_is_built_in_epoch_mode(tmp_path):
    # No max_steps: the step count is known once the train set is, so the Trainer refuses at construction.
    args = make_args(
        tmp_path, num_train_epochs=1, lr_schedule="cosine_with_growing_restarts", lr_schedule_kwargs={"num_cycles": 8}
    )
    with pytest.raises(ValueError, match=r"num_cycles`=8.*does not fit into the 4 decay steps"):
        LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(16))  # 16 rows / batch 4: 4 steps
    # With gradient accumulation and 2 epochs: 16 rows / 4 = 4 batches, / 2 = 2 steps an epoch, 4 steps in all.
    args = make_args(
        tmp_path,
        num_train_epochs=2,
        gradient_accumulation_steps=2,
        lr_schedule="cosine_with_growing_restarts",
        lr_schedule_kwargs={"num_cycles": 5, "cycle_mult": 1.0},
    )
    with pytest.raises(ValueError, match=r"num_cycles`=5.*does not fit into the 4 decay steps"):
        LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(16))
    args = make_args(
        tmp_path,
        num_train_epochs=2,
        gradient_accumulation_steps=2,
        lr_schedule="cosine_with_growing_restarts",
        lr_schedule_kwargs={"num_cycles": 4, "cycle_mult": 1.0},
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(16))
    trainer.train()
    assert trainer.state.max_steps == 4  # the count the construction-time check used


@pytest.mark.slow
def test_a_resume_with_other_schedule_options_stops_before_any_step(tmp_path):
    name = "cosine_with_growing_restarts"
    common = dict(max_steps=20, warmup_steps=2, save_strategy="steps", save_steps=10, lr_schedule=name)
    first = LRSchedTrainer(
        model=tiny_bert(),
        args=make_args(tmp_path, **common, lr_schedule_kwargs={"num_cycles": 3}),
        train_dataset=tiny_dataset(),
    )
    first.train()
    checkpoint = tmp_path / "out" / "checkpoint-10"

    class StepCounter(TrainerCallback):
        steps = 0

        def on_step_end(self, args, state, control, **kwargs):
            StepCounter.steps += 1

    resumed = LRSchedTrainer(
        model=tiny_bert(),
        args=make_args(tmp_path / "other", **common, lr_schedule_kwargs={"num_cycles": 4}),
        train_dataset=tiny_dataset(),
        callbacks=[StepCounter()],
    )
    with pytest.raises(ValueError, match=r"Cannot resume.*num_cycles 3 -> 4.*10 steps already taken"):
        resumed.train(resume_from_checkpoint=str(checkpoint))
    assert StepCounter.steps == 0


@pytest.mark.slow
def test_curve_files_and_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    name, kwargs = "cosine_with_growing_restarts", dict(num_cycles=2, cycle_mult=2.0)
    args = make_args(
        tmp_path, max_steps=15, warmup_steps=3, lr_schedule=name, lr_schedule_kwargs=kwargs, report_to=["tensorboard"]
    )
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    header, curve = read_curve(args.output_dir)
    # One column per param group: the Trainer's AdamW puts parameters with and without weight decay apart.
    assert header == ["step", "lr"] + [f"lr_group_{i}" for i in range(1, len(trainer.optimizer.param_groups))]
    assert {step: lrs[0] for step, lrs in curve.items()} == pytest.approx(logged_learning_rates(trainer), rel=1e-12)
    with open(os.path.join(args.output_dir, "lr_schedule.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    # transformers 5 writes TensorBoard events under output_dir/runs/ (or $TENSORBOARD_LOGGING_DIR).
    events = [os.path.join(root, f) for root, _, files in os.walk(args.output_dir) for f in files if "tfevents" in f]
    accumulator = EventAccumulator(os.path.dirname(events[0]))
    accumulator.Reload()
    scalars = {event.step: event.value for event in accumulator.Scalars("train/learning_rate")}
    assert scalars == pytest.approx(logged_learning_rates(trainer), rel=1e-6)  # TensorBoard stores float32


def test_no_curve_when_disabled(tmp_path):
    args = make_args(tmp_path, max_steps=3, lr_schedule="warmup_cosine", save_lr_curve=False)
    trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    assert not os.path.exists(os.path.join(args.output_dir, "lr_schedule.csv"))


class _StopAfterFirstStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        control.should_training_stop = True


@pytest.mark.parametrize("sp_size", [1, 2])
def test_the_epoch_mode_check_uses_the_step_count_of_train(tmp_path, monkeypatch, sp_size):
    # The construction-time check asks the Trainer for the step count (its train dataloader and
    # `set_initial_training_values`) instead of a formula of its own. 18 rows / batch 4 = 5 batches (the last short),
    # accumulated by 2: 3 optimizer steps an epoch, ceil(1.5 * 3) = 5 in all. With sequence parallelism (a Trainer
    # whose `get_sp_size` says 2, as accelerate's parallelism config would) the Trainer counts every batch twice:
    # 10, 5 steps an epoch, 8 in all, where dividing the batches by `world_size` (1) gave 5 and refused 8 cycles.
    counts = []
    check = hf_lrsched.trainer.check_lr_schedule
    monkeypatch.setattr(hf_lrsched.trainer, "check_lr_schedule", lambda args, n: (counts.append(n), check(args, n))[1])

    class SequenceParallelTrainer(LRSchedTrainer):
        def get_sp_size(self):
            return sp_size

    args = make_args(
        tmp_path,
        num_train_epochs=1.5,
        gradient_accumulation_steps=2,
        lr_schedule="cosine_with_growing_restarts",
        lr_schedule_kwargs={"num_cycles": 8 if sp_size == 2 else 5, "cycle_mult": 1.0},
    )
    callbacks = [_StopAfterFirstStep()] if sp_size > 1 else []  # no real sequence-parallel loader to run through
    trainer = SequenceParallelTrainer(
        model=tiny_bert(), args=args, train_dataset=tiny_dataset(18), callbacks=callbacks
    )
    expected = 8 if sp_size == 2 else 5
    assert counts == [expected]  # checked once, at construction
    assert trainer.accelerator._dataloaders == []  # the loader built to count is not left registered with accelerate
    trainer.train()
    assert trainer.state.max_steps == expected and describe(trainer.lr_scheduler).num_training_steps == expected
    if sp_size == 1:
        assert trainer.state.global_step == expected


@pytest.mark.parametrize("length", [dict(max_steps=8), dict(num_train_epochs=2)])
def test_the_capped_auto_warmup_is_logged_once_per_run(tmp_path, caplog, length):
    # The schedule is built when the arguments are parsed, when the Trainer is built (epoch mode) and when it trains:
    # the cap is said once. beta2 = 0.9 asks for ceil(2 / 0.1) = 20 warmup steps, capped at 0.1 * 8 = 0.
    from hf_lrsched import warmup

    warmup._warning_once.cache_clear()  # once per process: other tests may have logged the same message
    with caplog.at_level("WARNING", logger="hf_lrsched.warmup"):
        args = make_args(tmp_path, lr_schedule="warmup_cosine", auto_warmup=True, adam_beta2=0.9, **length)
        trainer = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset(16))
        trainer.train()
    assert trainer.state.max_steps == 8
    capped = [r for r in caplog.records if r.name == "hf_lrsched.warmup" and "capped at" in r.getMessage()]
    assert len(capped) == 1, [r.getMessage() for r in capped]
    assert "= 0.1 * 8 = 0 steps" in capped[0].getMessage()
