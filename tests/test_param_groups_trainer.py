"""LR plans (`lr_layer_decay`, `lr_param_groups`) in real training runs: `Trainer`, TRL's `SFTTrainer` and PEFT's
LoRA build the plan's param groups with the optimizer that `optim` selects, and every group's logged rate is the
contract's `base_g * lambda_g(t) * r_g(t)` at every step, computed here independently of `build_param_groups` and of
the scheduler; a resume keeps the rates, a resume under another plan is refused, and a group added to the optimizer
during training follows the schedule."""

import json
import math
import os
import re

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, TrainerCallback

from hf_lrsched import (
    LRSchedMixin,
    LRSchedTrainer,
    ResumeMismatchError,
    build_param_groups,
    describe,
    get_schedule,
    schedule_multipliers,
)

from .helpers import LR, TINY_BERT, make_args, read_curve, tiny_dataset

T, W = 10, 2
SCHEDULE, KWARGS = "warmup_cosine", {"min_lr_ratio": 0.1}
GAMMA = 0.8
# Three rules: a head at 10x with its own absolute floor and weight decay, embeddings frozen for 3 steps then ramped
# in over 4, the attention projections at half rate decaying to 0.
RULES = [
    {"pattern": r"classifier\.", "name": "classifier", "lr_mult": 10.0, "min_lr": 1e-5, "weight_decay": 0.1},
    {"pattern": r"\.embeddings\.", "name": "emb", "lr_mult": 2.0, "start_step": 3, "warmup_steps": 4},
    {"pattern": r"attention\.self\.", "name": "attn", "lr_mult": 0.5, "min_lr_ratio": 0.0},
]
BERT_LAYERS = {"embeddings": r"\.embeddings\.", "layer": r"\.encoder\.layer\.(\d+)\."}


def tiny_bert(num_layers=2, seed=0):
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**{**TINY_BERT, "num_hidden_layers": num_layers}))


def expected_plan(name, *, lr, weight_decay, rules, gamma, num_layers, layers, schedule_kwargs):
    """What the contract gives parameter `name`: its base rate, floor options, start, ramp and weight decay."""
    rule = next((rule for rule in rules if re.search(rule["pattern"], name)), {})
    layer_match = re.search(layers["layer"], name)
    if layer_match:
        layer = int(layer_match.group(1)) + 1
    elif re.search(layers["embeddings"], name):
        layer = 0
    else:
        layer = num_layers + 1
    factor = 1.0 if gamma is None else gamma ** (num_layers + 1 - layer)
    base = lr * rule.get("lr_mult", 1.0) * factor
    floor = {key: rule[key] for key in ("min_lr", "min_lr_ratio") if key in rule} or schedule_kwargs
    decays = not (name.endswith("bias") or re.search(r"LayerNorm|layernorm|(?:^|\.)norm\.", name))
    return {
        "base": base,
        "floor": tuple(sorted(floor.items())),
        "start": rule.get("start_step", 0),
        "ramp": rule.get("warmup_steps", 0),
        "weight_decay": rule.get("weight_decay", weight_decay) if decays else 0.0,
    }


def ramp(t, start, steps):
    """The contract's r_g(t): 0 before the group's start, then linear to 1 over its own warmup."""
    if t < start:
        return 0.0
    return min(1.0, (t - start) / steps) if steps else 1.0


def expected_rates(plan, num_training_steps, num_warmup_steps, schedule=SCHEDULE):
    """`{step: rate}` of one group: Trainer logs at step k the rate of scheduler step k - 1."""
    multipliers = schedule_multipliers(
        schedule, num_warmup_steps, num_training_steps, lr=plan["base"], **dict(plan["floor"])
    )
    return {
        k: plan["base"] * multipliers[k - 1] * ramp(k - 1, plan["start"], plan["ramp"])
        for k in range(1, num_training_steps + 1)
    }


def check_every_group_follows_its_plan(trainer, model, num_training_steps, num_warmup_steps, **plan_options):
    """Each param group holds parameters of one plan, with its weight decay, and logs `learning_rate/<name>` equal
    to the contract's rate at every step; returns the expected rates per group label."""
    names = {id(param): name for name, param in model.named_parameters()}
    trainable = {name for name, param in model.named_parameters() if param.requires_grad}
    groups = trainer.optimizer.param_groups
    seen = [names[id(param)] for group in groups for param in group["params"]]
    assert sorted(seen) == sorted(trainable)  # every trainable parameter in exactly one group
    logged = [entry for entry in trainer.state.log_history if "learning_rate" in entry]
    assert [entry["step"] for entry in logged] == list(range(1, num_training_steps + 1))
    expected = {}
    for group in groups:
        plans = {json.dumps(expected_plan(names[id(p)], **plan_options)) for p in group["params"]}
        assert len(plans) == 1, (group["name"], plans)  # a group never mixes two plans
        plan = json.loads(plans.pop())
        assert group["weight_decay"] == plan["weight_decay"], group["name"]
        rates = expected_rates(plan, num_training_steps, num_warmup_steps)
        assert [entry[f"learning_rate/{group['name']}"] for entry in logged] == pytest.approx(
            [rates[k] for k in range(1, num_training_steps + 1)], rel=1e-12, abs=1e-18
        ), group["name"]
        expected[group["name"]] = rates
    assert [entry["learning_rate"] for entry in logged] == [
        entry[f"learning_rate/{groups[0]['name']}"] for entry in logged
    ]
    return expected


def bert_plan(**overrides):
    defaults = dict(
        lr=LR, weight_decay=0.01, rules=RULES, gamma=GAMMA, num_layers=2, layers=BERT_LAYERS, schedule_kwargs=KWARGS
    )
    return {**defaults, **overrides}


def plan_args(tmp_path, **overrides):
    defaults = dict(
        max_steps=T,
        warmup_steps=W,
        weight_decay=0.01,
        lr_schedule=SCHEDULE,
        lr_schedule_kwargs=KWARGS,
        lr_layer_decay=GAMMA,
        lr_param_groups=RULES,
    )
    return make_args(tmp_path, **{**defaults, **overrides})


@pytest.mark.slow
def test_trainer_run_gives_every_group_its_planned_rate_at_every_step(tmp_path):
    model = tiny_bert()
    args = plan_args(tmp_path, report_to=["tensorboard"])
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset())
    trainer.train()
    assert type(trainer.optimizer.optimizer) is torch.optim.AdamW  # `optim`'s default, through the accelerate wrapper
    expected = check_every_group_follows_its_plan(trainer, model, T, W, **bert_plan())
    assert len(expected) >= 8  # 3 rules x layers x decay / no decay, merged where identical
    # The frozen-then-warmed embeddings, the 10x head on its own floor, and a layer below the head by gamma.
    emb, head = expected["emb.embeddings"], expected["classifier.head"]
    assert [emb[k] for k in range(1, 5)] == [0.0] * 4 and 0 < emb[5] < emb[6] < emb[7]  # frozen, then ramped in
    assert head[T] > 1e-5 and trainer.optimizer.param_groups[-1]["lr"] == pytest.approx(1e-5)  # t = T: the floor
    # The curve: one column per group, named as the trackers name it; `lr` is group 0.
    header, curve = read_curve(args.output_dir)
    labels = [group["name"] for group in trainer.optimizer.param_groups]
    assert header == ["step", "lr"] + [f"lr/{label}" for label in labels]
    for column, label in enumerate(labels, start=1):
        assert [curve[k][column] for k in range(1, T + 1)] == pytest.approx(
            [expected[label][k] for k in range(1, T + 1)], rel=1e-12, abs=1e-18
        )
    # Every group's rate reaches TensorBoard under its name (transformers 5 writes events under output_dir/runs/).
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found = [root for root, _, files in os.walk(args.output_dir) for f in files if "tfevents" in f]
    events = EventAccumulator(found[0])
    events.Reload()
    assert {f"train/learning_rate/{label}" for label in labels} <= set(events.Tags()["scalars"])
    info = describe(trainer.lr_scheduler)
    assert [group["name"] for group in info.groups] == labels
    assert info.groups[0]["start_step"] == 3 and info.groups[0]["warmup_steps"] == 4
    assert info.groups[-1]["floor"] == pytest.approx(1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("optim", ["adamw_torch", "adafactor", "sgd", "adagrad", "rmsprop"])
def test_the_plan_reaches_the_optimizer_that_optim_selects(tmp_path, optim):
    from transformers import Trainer

    model = tiny_bert()
    args = plan_args(tmp_path, optim=optim, max_steps=6, warmup_steps=1, save_lr_curve=False)
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset(24))
    trainer.train()
    optimizer_cls, _ = Trainer.get_optimizer_cls_and_kwargs(args, model)
    assert type(trainer.optimizer.optimizer) is optimizer_cls
    for group in trainer.optimizer.optimizer.param_groups:  # the plan keys survive inside the optimizer
        assert {"name", "lr_mult", "min_lr", "min_lr_ratio", "start_step", "warmup_steps"} <= set(group)
    check_every_group_follows_its_plan(trainer, model, 6, 1, **bert_plan())


@pytest.mark.slow
def test_layer_decay_under_a_transformers_scheduler(tmp_path):
    """Rates by name and layer-wise decay need no schedule of ours: `lr_scheduler_type` scales each group's base."""
    model = tiny_bert()
    rules = [{"pattern": r"classifier\.", "lr_mult": 4.0}]
    args = make_args(tmp_path, max_steps=6, warmup_steps=2, lr_scheduler_type="linear", lr_layer_decay=0.5,
                     lr_param_groups=rules, save_lr_curve=False)  # fmt: skip
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset(24))
    trainer.train()
    names = {id(param): name for name, param in model.named_parameters()}
    linear = schedule_multipliers("linear", 2, 6)
    for index, group in enumerate(trainer.optimizer.param_groups):
        plan = expected_plan(
            names[id(group["params"][0])], **bert_plan(rules=rules, gamma=0.5, weight_decay=0.0, schedule_kwargs={})
        )
        logged = [entry[f"learning_rate/{group['name']}"] for entry in trainer.state.log_history if "loss" in entry]
        assert logged == pytest.approx([plan["base"] * linear[k] for k in range(6)], rel=1e-12), index


def test_a_group_floor_or_start_needs_a_schedule_of_ours(tmp_path):
    start = [{"pattern": "classifier", "start_step": 2}]
    with pytest.raises(ValueError, match=r"`lr_param_groups\[0\]` sets `start_step`=2.*lr_scheduler_type"):
        make_args(tmp_path, max_steps=6, lr_param_groups=start)
    with pytest.raises(ValueError, match=r"sets `min_lr`=0.0.*`lr_schedule`='linear'"):
        make_args(tmp_path, max_steps=6, lr_schedule="linear", lr_param_groups=[{"pattern": "x", "min_lr": 0.0}])
    make_args(tmp_path, max_steps=6, lr_scheduler_type="linear", lr_param_groups=[{"pattern": "x", "lr_mult": 2.0}])
    # The same plan given as an optimizer, with `lr_scheduler_type`: refused when the scheduler is built.
    model = tiny_bert()
    optimizer = torch.optim.AdamW(build_param_groups(model, LR, rules=start), lr=LR)
    args = make_args(tmp_path, max_steps=6)
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset(), optimizers=(optimizer, None))
    with pytest.raises(ValueError, match=r"Param group 1 \(rule_0\) sets `start_step`=2.*LambdaLR"):
        trainer.create_scheduler(6)
    # Without a plan, the optimizer is transformers' own: its two groups, which carry no plan.
    trainer = LRSchedTrainer(model=tiny_bert(), args=make_args(tmp_path, max_steps=4), train_dataset=tiny_dataset())
    assert ["name" in group for group in trainer.create_optimizer().param_groups] == [False, False]


def test_a_deepspeed_optimizer_and_a_plan_are_refused_naming_what_to_remove(tmp_path):
    config = {"optimizer": {"type": "AdamW", "params": {"lr": 1e-3}}, "train_micro_batch_size_per_gpu": 4}
    for plan in ({"lr_layer_decay": 0.9}, {"lr_param_groups": [{"pattern": "classifier", "lr_mult": 10.0}]}):
        option = next(iter(plan))
        with pytest.raises(
            ValueError, match=rf"own optimizer \(type 'AdamW'\).*Remove the 'optimizer' section.*`{option}`"
        ):
            make_args(tmp_path, lr_schedule="warmup_cosine", max_steps=10, deepspeed=config, **plan)
    path = tmp_path / "ds.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match="own optimizer"):
        make_args(tmp_path, max_steps=10, deepspeed=str(path), lr_layer_decay=0.9)


class _GroupsFactory:
    """An optimizer factory (as `Trainer` takes Muon or Dion): it builds its own param groups from the model."""

    def __call__(self):
        return lambda model, **kwargs: torch.optim.SGD(model.parameters(), **kwargs)


class _WarmupSGD(torch.optim.SGD):
    """An optimizer that reads `warmup_steps` from every param group, as the schedule-free ones do."""

    def __init__(self, params, lr=1e-3, warmup_steps=0):
        torch.optim.Optimizer.__init__(self, params, {"lr": lr, "warmup_steps": warmup_steps, "momentum": 0,
                                                      "dampening": 0, "weight_decay": 0, "nesterov": False,
                                                      "maximize": False, "foreach": None, "differentiable": False,
                                                      "fused": None})  # fmt: skip


@pytest.mark.parametrize(
    "cls_and_kwargs, match",
    [((_GroupsFactory, {}), "builds its own param groups"), ((_WarmupSGD, {"lr": LR}), r"reads \['warmup_steps'\]")],
)
def test_an_optimizer_that_cannot_take_the_plan_is_refused(tmp_path, cls_and_kwargs, match):
    args = plan_args(tmp_path)
    trainer = LRSchedTrainer(
        model=tiny_bert(), args=args, train_dataset=tiny_dataset(), optimizer_cls_and_kwargs=cls_and_kwargs
    )
    with pytest.raises(ValueError, match=match):
        trainer.create_optimizer()


@pytest.mark.slow
def test_resume_keeps_every_group_rate_and_another_layer_decay_is_refused(tmp_path):
    common = dict(max_steps=T, save_strategy="steps", save_steps=4)
    full = LRSchedTrainer(model=tiny_bert(), args=plan_args(tmp_path / "full", **common), train_dataset=tiny_dataset())
    full.train()
    labels = [group["name"] for group in full.optimizer.param_groups]
    uninterrupted = {e["step"]: e for e in full.state.log_history if "learning_rate" in e}
    checkpoint = tmp_path / "full" / "out" / "checkpoint-4"  # mid-ramp of the embeddings (start 3, ramp 4)

    resumed = LRSchedTrainer(
        model=tiny_bert(seed=1), args=plan_args(tmp_path / "resumed", **common), train_dataset=tiny_dataset()
    )
    resumed.train(resume_from_checkpoint=str(checkpoint))
    after = {e["step"]: e for e in resumed.state.log_history if "learning_rate" in e and e["step"] > 4}
    assert sorted(after) == list(range(5, T + 1))
    for step, entry in after.items():
        assert [entry[f"learning_rate/{label}"] for label in labels] == [
            uninterrupted[step][f"learning_rate/{label}"] for label in labels
        ]  # bit for bit
    assert read_curve(tmp_path / "resumed" / "out") == read_curve(tmp_path / "full" / "out")

    other = LRSchedTrainer(
        model=tiny_bert(seed=1),
        args=plan_args(tmp_path / "other", lr_layer_decay=0.9, **common),
        train_dataset=tiny_dataset(),
    )
    with pytest.raises(ResumeMismatchError, match=r"base learning rate of param group 0 0\.001024\d* -> 0\.001458\d*"):
        other.train(resume_from_checkpoint=str(checkpoint))


class _UnfreezeHead(TrainerCallback):
    """Adds the (frozen) classifier to the optimizer as a new param group after optimizer step `at`."""

    def __init__(self, model, at, lr):
        self.model, self.at, self.lr = model, at, lr

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        if state.global_step == self.at:
            params = list(self.model.classifier.parameters())
            for param in params:
                param.requires_grad_(True)
            optimizer.add_param_group({"params": params, "lr": self.lr, "name": "late_head"})


@pytest.mark.slow
def test_a_group_added_during_training_follows_the_schedule_from_its_own_rate(tmp_path):
    model = tiny_bert()
    for param in model.classifier.parameters():
        param.requires_grad_(False)
    args = make_args(tmp_path, max_steps=T, warmup_steps=W, lr_schedule=SCHEDULE, lr_schedule_kwargs=KWARGS)
    trainer = LRSchedTrainer(
        model=model, args=args, train_dataset=tiny_dataset(), callbacks=[_UnfreezeHead(model, at=4, lr=5e-3)]
    )
    trainer.train()  # before: torch's "zip() argument 2 is shorter than argument 1"
    multipliers = schedule_multipliers(SCHEDULE, W, T, **KWARGS)
    logged = {e["step"]: e for e in trainer.state.log_history if "learning_rate" in e}
    assert "learning_rate/late_head" not in logged[4]
    # The scheduler adopts the group at its next step (after optimizer step 5, which uses the group's `lr` as
    # added): from then on, the group's own base rate times the schedule.
    assert [logged[k]["learning_rate/late_head"] for k in range(6, T + 1)] == pytest.approx(
        [5e-3 * multipliers[k - 1] for k in range(6, T + 1)], rel=1e-12
    )
    assert [logged[k]["learning_rate/group_0"] for k in range(1, T + 1)] == pytest.approx(
        [LR * multipliers[k - 1] for k in range(1, T + 1)], rel=1e-12
    )
    header, curve = read_curve(args.output_dir)
    assert header == ["step", "lr", "lr/group_0", "lr/group_1", "lr/late_head"]
    assert all(math.isnan(curve[k][3]) for k in range(1, 5)) and curve[T][3] == pytest.approx(
        5e-3 * multipliers[T - 1]
    )


def test_describe_lists_every_group_plan():
    model = tiny_bert()
    groups = build_param_groups(model, LR, 0.01, layer_decay=GAMMA, rules=RULES)
    scheduler = get_schedule(SCHEDULE, torch.optim.AdamW(groups, lr=LR), W, T, **KWARGS)
    info = describe(scheduler)  # group 0 (the embeddings) has its own start: before, a KeyError
    assert info.groups[0] == {
        "name": "emb.embeddings",
        "base_lr": pytest.approx(LR * 2.0 * GAMMA**3),
        "floor": pytest.approx(0.1 * LR * 2.0 * GAMMA**3),
        "start_step": 3,
        "warmup_steps": 4,
    }
    by_name = {group["name"]: group for group in info.groups}
    assert by_name["classifier.head"]["floor"] == pytest.approx(1e-5)  # the rule's own absolute floor
    assert by_name["attn.layer_1"]["floor"] == 0.0 and by_name["attn.layer_1"]["base_lr"] == pytest.approx(
        LR * 0.5 * GAMMA
    )
    assert [group["base_lr"] for group in info.groups] == list(info.base_lrs)


# ---- TRL and PEFT ------------------------------------------------------------------------------------------

LLAMA_LAYERS = {"embeddings": r"\.embed_tokens\.", "layer": r"\.layers\.(\d+)\."}
LLAMA_RULES = [
    {"pattern": r"lm_head\.", "name": "lm_head", "lr_mult": 5.0, "min_lr": 1e-5},
    {"pattern": r"embed_tokens\.", "name": "emb", "start_step": 2, "warmup_steps": 3},
    {"pattern": r"self_attn\.", "name": "attn", "lr_mult": 0.5, "min_lr_ratio": 0.0},
]
TEXTS = [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(64)]


@pytest.fixture(scope="module")
def word_tokenizer():
    """A word-level tokenizer trained here with the `tokenizers` library."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(TEXTS, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


@pytest.mark.slow
def test_sft_trainer_gives_every_group_its_planned_rate_at_every_step(tmp_path, word_tokenizer):
    pytest.importorskip("trl", reason="TRL is an extra: pip install -e '.[trl]'")
    from dataclasses import dataclass

    from datasets import Dataset
    from transformers import LlamaConfig, LlamaForCausalLM
    from trl import SFTConfig, SFTTrainer

    from hf_lrsched import LRSchedArguments

    @dataclass
    class Config(LRSchedArguments, SFTConfig):
        pass

    class Trainer(LRSchedMixin, SFTTrainer):
        pass

    torch.manual_seed(0)
    tokenizer = word_tokenizer
    model = LlamaForCausalLM(
        LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                    pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                    eos_token_id=tokenizer.eos_token_id)
    )  # fmt: skip
    args = Config(
        output_dir=str(tmp_path),
        max_steps=T,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        warmup_steps=W,
        weight_decay=0.05,
        max_length=32,
        bf16=False,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        disable_tqdm=True,
        lr_schedule=SCHEDULE,
        lr_schedule_kwargs=KWARGS,
        lr_layer_decay=0.7,
        lr_param_groups=LLAMA_RULES,
    )
    trainer = Trainer(
        model=model, args=args, train_dataset=Dataset.from_dict({"text": TEXTS}), processing_class=tokenizer
    )
    trainer.train()
    plan = dict(lr=1e-3, weight_decay=0.05, rules=LLAMA_RULES, gamma=0.7, num_layers=2, layers=LLAMA_LAYERS,
                schedule_kwargs=KWARGS)  # fmt: skip
    expected = check_every_group_follows_its_plan(trainer, model, T, W, **plan)
    assert {"emb.embeddings", "attn.layer_0", "attn.layer_1", "lm_head.head", "head.no_decay"} <= set(expected)


@pytest.mark.slow
def test_lora_rules_match_the_adapters(tmp_path):
    pytest.importorskip("peft", reason="PEFT is an extra: pip install -e '.[trl]'")
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        tiny_bert(),
        LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"], task_type="SEQ_CLS"),
    )
    rules = [
        {"pattern": r"\.lora_B\.", "name": "lora_B", "lr_mult": 16.0},
        {"pattern": r"\.lora_A\.", "name": "lora_A", "start_step": 2, "warmup_steps": 2},
        {"pattern": r"classifier\.modules_to_save\.", "name": "head", "lr_mult": 5.0, "min_lr": 1e-5},
    ]
    args = plan_args(tmp_path, lr_param_groups=rules, lr_layer_decay=0.9, save_lr_curve=False)
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset())
    trainer.train()
    expected = check_every_group_follows_its_plan(trainer, model, T, W, **bert_plan(rules=rules, gamma=0.9))
    assert set(expected) == {
        "lora_A.layer_0", "lora_B.layer_0", "lora_A.layer_1", "lora_B.layer_1", "head.head", "head.head.no_decay"
    }  # fmt: skip
