"""The learning-rate curve across resumes from checkpoints that the curve callback did not write: a plain
`Trainer`'s, or one saved with `save_lr_curve=False`. The next save works, and no row is made up: the steps that no
one observed are written as unknown (`nan`), never as the rates the new schedule would have given them."""

import json
import math

import pytest
from transformers import Trainer, TrainingArguments

from hf_lrsched import LRSchedTrainer

from .helpers import LR, expected_rates, logged_learning_rates, make_args, read_curve, tiny_bert, tiny_dataset


def plain_checkpoint(tmp_path, max_steps=10, save_steps=5):
    """A plain `Trainer` run (transformers' cosine) with a checkpoint every `save_steps`: no LRCurveCallback state."""
    args = TrainingArguments(
        output_dir=str(tmp_path / "plain"),
        max_steps=max_steps,
        warmup_steps=2,
        learning_rate=LR,
        lr_scheduler_type="cosine",
        logging_steps=1,
        report_to="none",
        save_strategy="steps",
        save_steps=save_steps,
        use_cpu=True,
        per_device_train_batch_size=4,
        disable_tqdm=True,
    )
    trainer = Trainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    trainer.train()
    checkpoint = tmp_path / "plain" / f"checkpoint-{save_steps}"
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert "LRCurveCallback" not in state["stateful_callbacks"]
    return checkpoint, logged_learning_rates(trainer)


def assert_unknown_then_observed(output_dir, resumed_at, observed):
    _, curve = read_curve(output_dir)
    assert sorted(curve) == list(range(1, max(observed) + 1))
    for step in range(1, resumed_at + 1):
        assert all(math.isnan(lr) for lr in curve[step]), (step, curve[step])
    assert {step: curve[step][0] for step in observed} == pytest.approx(observed, rel=1e-12)


@pytest.mark.slow
def test_a_plain_trainer_checkpoint_resumes_and_saves_again(tmp_path):
    checkpoint, plain = plain_checkpoint(tmp_path)
    # The same schedule (lr_schedule unset: transformers' cosine), the curve on: the checkpoint at step 10 is saved.
    args = make_args(
        tmp_path, max_steps=10, warmup_steps=2, lr_scheduler_type="cosine", save_strategy="steps", save_steps=5
    )
    resumed = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    resumed.train(resume_from_checkpoint=str(checkpoint))
    saved = json.loads((tmp_path / "out" / "checkpoint-10" / "trainer_state.json").read_text())
    assert "LRCurveCallback" in saved["stateful_callbacks"]
    after = {step: lr for step, lr in logged_learning_rates(resumed).items() if step > 5}
    assert after == pytest.approx({step: plain[step] for step in range(6, 11)}, rel=1e-12)
    assert_unknown_then_observed(args.output_dir, 5, after)


@pytest.mark.slow
def test_a_checkpoint_saved_without_the_curve(tmp_path):
    # Our schedule, save_lr_curve=False, then resumed with the curve on: the first 4 steps were not observed.
    common = dict(max_steps=12, warmup_steps=3, lr_schedule="warmup_cosine", save_strategy="steps", save_steps=4)
    first = LRSchedTrainer(
        model=tiny_bert(), args=make_args(tmp_path, save_lr_curve=False, **common), train_dataset=tiny_dataset()
    )
    first.train()
    resumed = LRSchedTrainer(model=tiny_bert(), args=make_args(tmp_path / "r", **common), train_dataset=tiny_dataset())
    resumed.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))  # saves at 8 and 12
    expected = expected_rates("warmup_cosine", {}, 12, 3)
    assert_unknown_then_observed(tmp_path / "r" / "out", 4, {k: expected[k] for k in range(5, 13)})
    # ... and a resume from the resumed run's checkpoint keeps the unknown steps unknown and the rest exact.
    again = LRSchedTrainer(model=tiny_bert(), args=make_args(tmp_path / "a", **common), train_dataset=tiny_dataset())
    again.train(resume_from_checkpoint=str(tmp_path / "r" / "out" / "checkpoint-8"))
    assert_unknown_then_observed(tmp_path / "a" / "out", 4, {k: expected[k] for k in range(5, 13)})


@pytest.mark.slow
def test_another_schedule_never_rewrites_the_past(tmp_path):
    # transformers' cosine for 5 steps, then resumed as wsd: the first 5 rates were cosine's, and only a refusal or
    # unknown rows are true; rows computed from wsd would show rates that were never used.
    checkpoint, _ = plain_checkpoint(tmp_path)
    args = make_args(
        tmp_path, max_steps=10, warmup_steps=2, lr_schedule="wsd", lr_schedule_kwargs={"num_decay_steps": 3}
    )
    resumed = LRSchedTrainer(model=tiny_bert(), args=args, train_dataset=tiny_dataset())
    try:
        resumed.train(resume_from_checkpoint=str(checkpoint))
    except ValueError as error:  # refused: then nothing is written
        assert "record" in str(error)
        assert not (tmp_path / "out" / "lr_schedule.csv").exists()
        return
    wsd = expected_rates("wsd", {"num_decay_steps": 3}, 10, 2)
    assert_unknown_then_observed(args.output_dir, 5, {k: wsd[k] for k in range(6, 11)})


@pytest.mark.slow
def test_a_grown_wsd_run_recomputes_its_past_exactly(tmp_path):
    # A wsd run grown from its stable phase: its past is recomputed from the new schedule (the resume check proved
    # it equal), bit for bit the rows of the first run.
    common = dict(warmup_steps=2, lr_schedule="wsd", save_strategy="steps", save_steps=4)
    short = LRSchedTrainer(
        model=tiny_bert(),
        args=make_args(tmp_path, max_steps=12, lr_schedule_kwargs={"num_decay_steps": 4}, **common),
        train_dataset=tiny_dataset(),
    )
    short.train()
    grown = LRSchedTrainer(
        model=tiny_bert(),
        args=make_args(tmp_path / "g", max_steps=20, lr_schedule_kwargs={"num_decay_steps": 4}, **common),
        train_dataset=tiny_dataset(),
    )
    grown.train(resume_from_checkpoint=str(tmp_path / "out" / "checkpoint-4"))
    _, first = read_curve(tmp_path / "out")
    _, curve = read_curve(tmp_path / "g" / "out")
    assert sorted(curve) == list(range(1, 21))
    assert {k: curve[k] for k in range(1, 5)} == {k: first[k] for k in range(1, 5)}
