"""hf_lrsched inside TRL and PEFT: the config mixin in front of TRL's configs, the trainer mixin in front of
`SFTTrainer` and `DPOTrainer` (a tiny Llama built from a config, a tokenizer trained here with `tokenizers`, nothing
from the Hub), LoRA with two param groups, and every group's rate reaching the trackers."""

import copy
import json
import os
from dataclasses import dataclass

import pytest
import torch
import yaml
from datasets import Dataset
from transformers import HfArgumentParser, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from hf_lrsched import LRSchedArguments, LRSchedMixin, LRSchedTrainer, LRSchedTrainingArguments, schedule_multipliers

from .helpers import expected_rates, logged_learning_rates, make_args, read_curve, tiny_bert, tiny_dataset

trl = pytest.importorskip("trl", reason="TRL is an extra: pip install -e '.[trl]'")
peft = pytest.importorskip("peft", reason="PEFT is an extra: pip install -e '.[trl]'")

from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer  # noqa: E402

TEXTS = [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(64)]


@dataclass
class SFTConfigWithSchedule(LRSchedArguments, SFTConfig):
    pass


@dataclass
class DPOConfigWithSchedule(LRSchedArguments, DPOConfig):
    pass


class LRSchedSFTTrainer(LRSchedMixin, SFTTrainer):
    pass


class LRSchedDPOTrainer(LRSchedMixin, DPOTrainer):
    pass


@pytest.fixture(scope="module")
def tokenizer():
    """A word-level tokenizer trained here on the test corpus with the `tokenizers` library."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        TEXTS + ["the the the"], trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"])
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )


def tiny_llama(tokenizer, seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config)


# TRL's configs default to bf16=True, which fails on a CPU-only machine: every config here sets it off.
CPU = dict(bf16=False, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True)


def test_the_config_mixin_keeps_trl_defaults_and_parses_both_libraries_dict_fields(tmp_path):
    plain = SFTConfig(output_dir=str(tmp_path), use_cpu=True)  # bf16=True (TRL's default) needs use_cpu on a CPU
    ours = SFTConfigWithSchedule(output_dir=str(tmp_path), use_cpu=True)
    for name in ("learning_rate", "logging_steps", "activation_checkpointing", "bf16", "max_length"):
        assert getattr(ours, name) == getattr(plain, name), name
    argv = [
        "--output_dir",
        str(tmp_path),
        "--lr_schedule",
        "cosine_with_growing_restarts",
        "--lr_schedule_kwargs",
        '{"num_cycles": 2, "min_lr": 1e-6}',
        "--model_init_kwargs",
        '{"dtype": "float32"}',
        "--bf16",
        "false",
    ]
    (cli,) = HfArgumentParser(SFTConfigWithSchedule).parse_args_into_dataclasses(argv)
    config = {
        "output_dir": str(tmp_path),
        "lr_schedule": "wsd",
        "lr_schedule_kwargs": {"decay_ratio": 0.1},
        "model_init_kwargs": {"dtype": "float32"},
        "bf16": False,
    }
    (tmp_path / "c.json").write_text(json.dumps(config))
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    (from_json,) = HfArgumentParser(SFTConfigWithSchedule).parse_json_file(str(tmp_path / "c.json"))
    (from_yaml,) = HfArgumentParser(SFTConfigWithSchedule).parse_yaml_file(str(tmp_path / "c.yaml"))
    assert cli.lr_schedule_kwargs == {"num_cycles": 2, "min_lr": 1e-6}
    assert cli.model_init_kwargs == from_json.model_init_kwargs == from_yaml.model_init_kwargs == {"dtype": "float32"}
    assert from_json.lr_schedule_kwargs == from_yaml.lr_schedule_kwargs == {"decay_ratio": 0.1}
    assert cli.learning_rate == plain.learning_rate  # TRL's 2e-5, not transformers' 5e-5
    assert "lr_schedule_kwargs" in SFTConfigWithSchedule._VALID_DICT_FIELDS
    assert set(SFTConfig._VALID_DICT_FIELDS) < set(SFTConfigWithSchedule._VALID_DICT_FIELDS)


def test_a_bad_schedule_fails_at_parse_time_with_the_schedule_message(tmp_path):
    with pytest.raises(ValueError, match="Did you mean 'warmup_cosine'"):
        SFTConfigWithSchedule(output_dir=str(tmp_path), use_cpu=True, lr_schedule="warmup_cosin")
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_cycle'"):
        DPOConfigWithSchedule(
            output_dir=str(tmp_path),
            use_cpu=True,
            lr_schedule="cosine_with_growing_restarts",
            lr_schedule_kwargs={"num_cycle": 2},
        )


@pytest.mark.parametrize(
    "bases",
    ["SFTConfig, LRSchedArguments", "LRSchedTrainingArguments, SFTConfig", "SFTConfig, LRSchedTrainingArguments"],
)
def test_the_wrong_order_fails_at_class_creation_and_names_the_right_one(bases):
    with pytest.raises(TypeError, match=r"class Config\(LRSchedArguments, SFTConfig\)"):
        exec(
            f"class Config({bases}): pass",
            {
                "SFTConfig": SFTConfig,
                "LRSchedArguments": LRSchedArguments,
                "LRSchedTrainingArguments": LRSchedTrainingArguments,
            },
        )


def test_plain_lrsched_arguments_given_to_an_sft_trainer_say_what_to_do(tmp_path, tokenizer):
    args = LRSchedTrainingArguments(
        output_dir=str(tmp_path), lr_schedule="warmup_cosine", use_cpu=True, report_to="none"
    )
    with pytest.raises(TypeError, match=r"MyConfig\(LRSchedArguments, SFTConfig\)"):
        LRSchedSFTTrainer(
            model=tiny_llama(tokenizer),
            args=args,
            train_dataset=Dataset.from_dict({"text": TEXTS}),
            processing_class=tokenizer,
        )


@pytest.mark.slow
def test_sft_trainer_follows_the_schedule_at_every_step(tmp_path, tokenizer):
    kwargs = {"num_cycles": 2, "cycle_mult": 1.5, "cycle_decay": 0.8, "min_lr": 1e-5}
    args = SFTConfigWithSchedule(
        output_dir=str(tmp_path),
        max_steps=12,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        warmup_steps=2,
        max_length=32,
        **CPU,
        lr_schedule="cosine_with_growing_restarts",
        lr_schedule_kwargs=kwargs,
    )
    trainer = LRSchedSFTTrainer(
        model=tiny_llama(tokenizer),
        args=args,
        train_dataset=Dataset.from_dict({"text": TEXTS}),
        processing_class=tokenizer,
    )
    trainer.train()
    logged = logged_learning_rates(trainer)
    assert logged == pytest.approx(
        expected_rates("cosine_with_growing_restarts", kwargs, 12, 2, base_lr=1e-3), rel=1e-12
    )
    assert trainer.lr_scheduler.get_last_lr() == pytest.approx([1e-5, 1e-5])  # SFTTrainer: decay and no-decay groups


@pytest.mark.slow
def test_dpo_trainer_follows_the_schedule_at_every_step(tmp_path, tokenizer):
    pairs = Dataset.from_dict(
        {
            "prompt": [f"the quick brown fox number {i}" for i in range(32)],
            "chosen": [" jumps over the lazy dog"] * 32,
            "rejected": [" the the the"] * 32,
        }
    )
    kwargs = {"num_decay_steps": 3, "decay_type": "1-sqrt"}
    args = DPOConfigWithSchedule(
        output_dir=str(tmp_path),
        max_steps=8,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        warmup_steps=2,
        **CPU,
        lr_schedule="wsd",
        lr_schedule_kwargs=kwargs,
    )
    model = tiny_llama(tokenizer)
    trainer = LRSchedDPOTrainer(
        model=model, ref_model=copy.deepcopy(model), args=args, train_dataset=pairs, processing_class=tokenizer
    )
    trainer.train()
    assert logged_learning_rates(trainer) == pytest.approx(
        expected_rates("wsd", kwargs, 8, 2, base_lr=1e-3), rel=1e-12
    )


@pytest.mark.slow
def test_lora_with_two_param_groups_reaches_the_absolute_floor_in_both(tmp_path):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        tiny_bert(),
        LoraConfig(r=4, target_modules=["query", "value"], modules_to_save=["classifier"], task_type="SEQ_CLS"),
    )
    adapters = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" in n]
    head = [p for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n]
    assert adapters and head
    optimizer = torch.optim.AdamW([{"params": adapters, "lr": 1e-3}, {"params": head, "lr": 1e-2}])
    kwargs = {"min_lr": 1e-5}
    args = make_args(
        tmp_path,
        max_steps=12,
        warmup_steps=3,
        lr_schedule="warmup_cosine",
        lr_schedule_kwargs=kwargs,
        report_to=["tensorboard"],
    )
    trainer = LRSchedTrainer(model=model, args=args, train_dataset=tiny_dataset(), optimizers=(optimizer, None))
    trainer.train()
    assert trainer.lr_scheduler.get_last_lr() == pytest.approx([1e-5, 1e-5])  # step T: both groups on the floor
    header, curve = read_curve(args.output_dir)
    assert header == ["step", "lr", "lr_group_1"]
    for column, base in enumerate((1e-3, 1e-2)):
        expected = schedule_multipliers("warmup_cosine", 3, 12, lr=base, **kwargs)
        assert [curve[k][column] for k in range(1, 13)] == pytest.approx([base * m for m in expected[:12]], rel=1e-12)
    # Every group's rate reaches the trackers, grouped under learning_rate/.
    logged = [entry for entry in trainer.state.log_history if "learning_rate" in entry]
    assert all(e["learning_rate/group_0"] == e["learning_rate"] for e in logged)
    assert [e["learning_rate/group_1"] for e in logged] == pytest.approx(
        [curve[k][1] for k in range(1, 13)], rel=1e-12
    )
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # transformers 5 writes TensorBoard events under output_dir/runs/.
    found = [root for root, _, files in os.walk(args.output_dir) for f in files if "tfevents" in f]
    events = EventAccumulator(found[0])
    events.Reload()
    assert {"train/learning_rate/group_0", "train/learning_rate/group_1"} <= set(events.Tags()["scalars"])


@pytest.mark.slow
def test_the_documented_sft_example_runs_as_written(tmp_path):
    """The command in `examples/trl_sft.py`'s docstring (shown on the docs' TRL page), with a temporary output dir."""
    import re
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    doc = (root / "examples" / "trl_sft.py").read_text().split('"""')[1]
    command = re.search(r"^\s+(python examples/trl_sft\.py .*?[^\\])$", doc, re.S | re.M).group(1)
    argv = shlex.split(command.replace("\\\n", " "))[2:]
    argv[argv.index("--output_dir") + 1] = str(tmp_path)
    subprocess.run(
        [sys.executable, root / "examples" / "trl_sft.py", *argv, "--report_to", "none"],
        check=True,
        cwd=root,
        capture_output=True,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    _header, curve = read_curve(tmp_path)
    kwargs = {"decay_ratio": 0.2, "decay_type": "1-sqrt"}
    expected = schedule_multipliers("wsd", 4, 40, lr=2e-5, **kwargs)  # TRL's default learning rate, 2e-5
    assert [curve[k][0] for k in range(1, 41)] == pytest.approx([2e-5 * m for m in expected[:40]], rel=1e-12)
