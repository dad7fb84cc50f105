"""Stages: a run's plan changed on purpose (the contract's "Stages"). A scheduler built with `new_stage=True` keeps
the loaded state's stages as the past and starts at the state's step, resolved over the steps left, from the rate
the run had reached; a state whose last stage is this schedule continues; every other resume is checked as before."""

from __future__ import annotations

import io
import math

import pytest
import torch

from hf_lrsched import LRSchedTrainer, ResumeMismatchError, describe, get_schedule
from hf_lrsched.phases import multipliers

from .helpers import (
    common_args,
    logged_learning_rates,
    make_args,
    make_optimizer,
    read_curve,
    read_lr_csv,
    run_examples,
    tiny_bert,
    tiny_dataset,
)

LR = 1e-3
FIRST = dict(num_warmup_steps=10, num_training_steps=60, min_lr_ratio=0.1)  # warmup_cosine over 60 steps
SECOND = dict(num_warmup_steps=5, num_training_steps=75, phases=[{"shape": "1-sqrt"}], min_lr_ratio=0.1)


def run(scheduler, steps):
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return rates


def saved(scheduler) -> dict:
    buffer = io.BytesIO()
    torch.save({"scheduler": scheduler.state_dict(), "optimizer": scheduler.optimizer.state_dict()}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)  # the record is plain values


def resume(state, name, groups=None, **kwargs):
    optimizer = make_optimizer(lr=LR) if groups is None else make_optimizer(groups=groups)
    scheduler = get_schedule(name, optimizer, **kwargs)
    optimizer.load_state_dict(state["optimizer"])  # the order of a real resume: the optimizer, then the scheduler
    scheduler.load_state_dict(state["scheduler"])
    return scheduler


def contract_second_stage(t, reached, start=40, warmup=5, total=75, floor=0.1):
    """The contract for the second stage: a linear warmup from the reached level s to 1 over 5 steps, then a 1-sqrt
    decay to the floor over the 30 steps left, evaluated at the stage's own step t - t_k."""
    local = t - start
    if local < warmup:
        return LR * (reached + (1 - reached) * local / warmup)
    if t >= total:
        return LR * floor
    u = (local - warmup) / (total - start - warmup)
    return LR * (floor + (1 - floor) * (1 - math.sqrt(u)))


def test_a_new_stage_starts_from_the_rate_reached_and_follows_its_own_phases():
    first = get_schedule("warmup_cosine", make_optimizer(lr=LR), **FIRST)
    before = run(first, 40)
    reached = first.get_last_lr()[0]  # the rate of step 40 under the first plan
    second = resume(saved(first), "phases", new_stage=True, **SECOND)
    assert second.last_epoch == 40 and second.get_last_lr() == [reached]  # no jump
    after = run(second, 36)
    level = reached / LR
    assert after == pytest.approx([contract_second_stage(t, level) for t in range(40, 76)], rel=1e-12, abs=1e-18)
    # The whole run's curve: the first plan's rates before step 40, the new stage's after.
    curve = [LR * fn for fn in multipliers(second.lr_lambdas[0], 75)]
    assert curve[:40] == pytest.approx(before, rel=1e-15) and curve[40:75] == pytest.approx(after[:35], rel=1e-15)
    stages = describe(second).stages
    assert [(s["start"], s["name"]) for s in stages] == [(0, "warmup_cosine"), (40, "phases")]
    assert stages[1]["options"]["num_training_steps"] == 35  # resolved over the steps left: T - t_k


def test_the_same_stages_continue_exactly_and_other_pasts_are_refused():
    first = get_schedule("warmup_cosine", make_optimizer(lr=LR), **FIRST)
    run(first, 40)
    second = resume(saved(first), "phases", new_stage=True, **SECOND)
    run(second, 10)
    state = saved(second)
    uninterrupted = run(second, 26)
    for flag in (True, False):  # a state whose last stage is this schedule continues, asked for or not
        again = resume(state, "phases", new_stage=flag, **SECOND)
        assert [s["start"] for s in describe(again).stages] == [0, 40]
        assert run(again, 26) == uninterrupted
    with pytest.raises(
        ResumeMismatchError,
        match=r"param group 0 had learning rate .* at step 41.*the saved run's last stage started at step 40",
    ):
        resume(state, "warmup_cosine", **FIRST)  # the first plan alone does not reproduce steps 40..49
    other = dict(SECOND, phases=[{"shape": "linear"}])
    with pytest.raises(ResumeMismatchError, match="at step 1,"):
        resume(state, "phases", **other)  # without new_stage, this schedule alone must reproduce the whole past


def test_a_new_stage_without_warmup_starts_its_first_phase_where_the_run_was():
    first = get_schedule("wsd", make_optimizer(lr=LR), 5, 100, num_decay_steps=20, min_lr_ratio=0.05)
    run(first, 90)  # in the decay, which had begun at step 80
    reached = first.get_last_lr()[0]
    longer = resume(
        saved(first),
        "wsd",
        new_stage=True,
        num_warmup_steps=0,
        num_training_steps=200,
        num_decay_steps=50,
        min_lr_ratio=0.05,
    )
    rates = run(longer, 110)
    assert rates[0] == reached  # the stable phase of the new stage holds the reached level: nothing jumps
    assert rates[:60] == [reached] * 60 and rates[60] == pytest.approx(reached)
    floor = LR * 0.05  # then a cosine from the reached level down to the floor over the last 50 steps
    assert rates[-1] == pytest.approx(floor + (reached - floor) * 0.5 * (1 + math.cos(math.pi * 49 / 50)), rel=1e-9)


def test_an_explicit_start_is_honoured():
    first = get_schedule("warmup_cosine", make_optimizer(lr=LR), **FIRST)
    run(first, 40)
    rewarm = resume(saved(first), "phases", new_stage=True, warmup_start_ratio=0.5, **SECOND)
    assert rewarm.get_last_lr() == [pytest.approx(0.5 * LR)]  # a warmup from half the peak, asked for
    restart = dict(SECOND, num_warmup_steps=0, phases=[{"shape": "cosine", "from": 1.0}])
    jump = resume(saved(first), "phases", new_stage=True, **restart)
    assert jump.get_last_lr() == [LR]  # the first phase's `from`, given: a restart at the peak


def test_new_stage_is_refused_where_it_cannot_be():
    first = get_schedule("warmup_cosine", make_optimizer(lr=LR), **FIRST)
    run(first, 40)
    with pytest.raises(ResumeMismatchError, match="no step is left"):
        resume(saved(first), "phases", new_stage=True, **dict(SECOND, num_training_steps=40))
    with pytest.raises(ValueError, match="`new_stage` starts a schedule of hf_lrsched"):
        get_schedule("cosine", make_optimizer(lr=LR), 5, 50, new_stage=True)
    with pytest.raises(TypeError, match="`new_stage` must be True or False"):
        get_schedule("warmup_cosine", make_optimizer(lr=LR), 5, 50, new_stage="yes")


def test_two_param_groups_each_start_from_their_own_rate():
    groups = [1e-3, 1e-2]
    first = get_schedule("warmup_cosine", make_optimizer(groups=groups), 10, 60, min_lr=1e-5)
    run(first, 30)
    reached = first.get_last_lr()
    second = resume(
        saved(first),
        "phases",
        groups=groups,
        new_stage=True,
        num_warmup_steps=4,
        num_training_steps=50,
        phases=[{"shape": "linear"}],
        min_lr=1e-5,
    )
    assert second.get_last_lr() == reached
    second.optimizer.step()
    second.step()
    assert second.get_last_lr() == pytest.approx([r + (g - r) / 4 for r, g in zip(reached, groups)], rel=1e-12)


@pytest.mark.slow
def test_a_trainer_run_killed_at_40_and_resumed_as_a_new_stage(tmp_path):
    """A `Trainer` run of 40 steps of warmup_cosine over 60, stopped at 40 (checkpoint written, process gone), resumed
    as a new stage that re-warms for 5 steps and decays with 1-sqrt over 30 more: every logged rate is the
    contract's, the written curve covers both stages."""

    class Kill(Exception):
        pass

    from transformers import TrainerCallback

    class KillAfter(TrainerCallback):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 40:
                raise Kill  # the checkpoint of step 40 is on disk; the run dies before step 41

    first_args = make_args(
        tmp_path / "run",
        max_steps=60,
        warmup_steps=10,
        lr_schedule="warmup_cosine",
        lr_schedule_kwargs={"min_lr_ratio": 0.1},
        save_strategy="steps",
        save_steps=40,
    )
    first = LRSchedTrainer(model=tiny_bert(), args=first_args, train_dataset=tiny_dataset(), callbacks=[KillAfter()])
    with pytest.raises(Kill):
        first.train()
    before = logged_learning_rates(first)
    assert sorted(before) == list(range(1, 41))
    reached_level = get_schedule("warmup_cosine", make_optimizer(lr=1.0), 10, 60, min_lr_ratio=0.1).lr_lambdas[0](40)

    second_args = make_args(
        tmp_path / "run",
        max_steps=75,
        warmup_steps=5,
        lr_schedule="phases",
        lr_schedule_kwargs={"phases": [{"shape": "1-sqrt"}], "min_lr_ratio": 0.1},
        lr_resume="new_stage",
    )
    lr = second_args.learning_rate
    second = LRSchedTrainer(model=tiny_bert(), args=second_args, train_dataset=tiny_dataset())
    second.train(resume_from_checkpoint=str(tmp_path / "run" / "out" / "checkpoint-40"))
    logged = logged_learning_rates(second)  # the checkpoint's log history, then the resumed steps
    assert sorted(logged) == list(range(1, 76)) and {step: logged[step] for step in before} == before
    after = {step: rate for step, rate in logged.items() if step > 40}
    # Trainer logs at global step k the rate of scheduler step k - 1.
    for step, rate in after.items():
        assert rate == pytest.approx(contract_second_stage(step - 1, reached_level) / LR * lr, rel=1e-12), step
    _, curve = read_curve(tmp_path / "run" / "out")
    assert sorted(curve) == list(range(1, 76))
    assert {step: curve[step][0] for step in range(1, 41)} == pytest.approx(before, rel=1e-12)
    assert {step: curve[step][0] for step in range(41, 76)} == pytest.approx(after, rel=1e-12)
    # A resume without `lr_resume="new_stage"` from the same checkpoint is refused before any step.
    plain = LRSchedTrainer(
        model=tiny_bert(),
        args=make_args(
            tmp_path / "other",
            max_steps=75,
            warmup_steps=5,
            lr_schedule="phases",
            lr_schedule_kwargs={"phases": [{"shape": "1-sqrt"}], "min_lr_ratio": 0.1},
        ),
        train_dataset=tiny_dataset(),
    )
    with pytest.raises(ResumeMismatchError, match="new stage"):
        plain.train(resume_from_checkpoint=str(tmp_path / "run" / "out" / "checkpoint-40"))


@pytest.mark.slow
def test_glue_py_resumed_as_a_new_stage(tmp_path, tiny_model_dir, csv_files):
    """examples/glue.py: 40 steps of warmup_cosine planned for 60 (the checkpoint of step 40), resumed with
    `--lr_resume new_stage` as a 5-step re-warm and a 1-sqrt decay over the 30 steps after it: every rate written is
    the contract's, the first 40 those the first run used; without `--lr_resume new_stage` the resume exits 2."""
    first = tmp_path / "first"
    common = ["--per_device_train_batch_size", "4", "--checkpointing_steps", "40"]
    first_args = common + ["--max_train_steps", "60", "--num_warmup_steps", "10"]
    first_args += ["--lr_schedule_kwargs", '{"min_lr_ratio": 0.1}']
    second_args = common + [
        "--max_train_steps",
        "75",
        "--num_warmup_steps",
        "5",
        "--lr_schedule",
        "phases",
        "--lr_schedule_kwargs",
        '{"phases": [{"shape": "1-sqrt"}], "min_lr_ratio": 0.1}',
        "--resume_from_checkpoint",
        first / "step_40",
    ]
    second = tmp_path / "second"
    _, (ran, refused, staged) = run_examples(  # glue.main three times, in one fresh process
        [
            common_args(tiny_model_dir, csv_files, first) + first_args,
            common_args(tiny_model_dir, csv_files, tmp_path / "refused") + second_args,
            common_args(tiny_model_dir, csv_files, second) + second_args + ["--lr_resume", "new_stage"],
        ],
        expect=None,
    )
    assert ran["rc"] == 0 and staged["rc"] == 0, ran["stderr"][-3000:] + staged["stderr"][-3000:]
    assert refused["rc"] == 2 and "Traceback" not in refused["stderr"], refused["stderr"][-3000:]
    assert "lr_resume='new_stage'" in refused["stderr"]
    used = dict(read_lr_csv(first))
    curve = dict(read_lr_csv(second))
    assert sorted(curve) == list(range(1, 76))
    assert {step: curve[step] for step in range(1, 41)} == {step: used[step] for step in range(1, 41)}
    reached = get_schedule("warmup_cosine", make_optimizer(lr=1.0), 10, 60, min_lr_ratio=0.1).lr_lambdas[0](40)
    for step in range(41, 76):  # optimizer step k used the rate of scheduler step k - 1
        assert curve[step] == pytest.approx(contract_second_stage(step - 1, reached), rel=1e-12), step


def test_a_new_stage_keeps_each_param_groups_own_plan():
    def optimizer():
        return torch.optim.AdamW(
            [
                {"params": [torch.zeros(1, requires_grad=True)], "lr": 1e-3},
                {"params": [torch.zeros(1, requires_grad=True)], "lr": 1e-4, "start_step": 50, "min_lr": 5e-6},
            ]
        )

    first = get_schedule("warmup_cosine", optimizer(), 10, 60, min_lr_ratio=0.1)
    run(first, 40)
    second = get_schedule("phases", optimizer(), 5, 75, phases=[{"shape": "1-sqrt"}], min_lr_ratio=0.1, new_stage=True)
    state = saved(first)
    second.optimizer.load_state_dict(state["optimizer"])
    second.load_state_dict(state["scheduler"])
    groups = describe(second).groups
    assert [(g["start_step"], g["floor"]) for g in groups] == [(0, pytest.approx(1e-4)), (50, 5e-6)]
    assert second.lr_lambdas[1](45) == 0.0  # still frozen until its start step, in the new stage too
    assert second.lr_lambdas[1](1000) * 1e-4 == pytest.approx(5e-6)  # its own floor


def test_the_written_curve_marks_where_a_new_stage_began(tmp_path, monkeypatch):
    import hf_lrsched.plot
    from hf_lrsched.callbacks import stage_starts, write_lr_curve

    first = get_schedule("warmup_cosine", make_optimizer(lr=LR), **FIRST)
    run(first, 40)
    second = resume(saved(first), "phases", new_stage=True, **SECOND)
    assert stage_starts(second) == [41] and stage_starts(first) == []  # optimizer step 41 uses scheduler step 40
    drawn = []
    monkeypatch.setattr(hf_lrsched.plot, "plot_lr_curves", lambda curves, path, title: drawn.extend(curves))
    history = [[step, LR * second.lr_lambdas[0](step - 1)] for step in range(1, 76)]
    write_lr_curve(history, str(tmp_path), stages=stage_starts(second))
    assert [curve.stages for curve in drawn] == [[41]]


def test_a_new_stage_from_a_state_saved_before_any_step_is_the_whole_run():
    state = saved(get_schedule("warmup_cosine", make_optimizer(lr=LR), **FIRST))
    staged = resume(state, "phases", new_stage=True, **SECOND)
    assert [(stage["start"], stage["name"]) for stage in staged.stages] == [(0, "phases")]
    assert run(staged, 75) == run(get_schedule("phases", make_optimizer(lr=LR), **SECOND), 75)
