"""Supervised fine-tuning with TRL's `SFTTrainer` and an hf_lrsched schedule: the config mixin and the trainer mixin.

    pip install -e ".[trl]"
    python examples/trl_sft.py --output_dir outputs/trl_sft --max_steps 40 --use_cpu \
        --lr_schedule wsd --lr_schedule_kwargs '{"decay_ratio": 0.2, "decay_type": "1-sqrt"}' --warmup_steps 4

Every `SFTConfig` option works as in TRL (its defaults are kept: learning rate 2e-5, `logging_steps` 10, ...), plus
`--lr_schedule`, `--lr_schedule_kwargs`, `--auto_warmup` and `--save_lr_curve`. TRL's default `bf16=True` needs a
GPU with bf16 (or `--use_cpu`, which trains in float32 on the CPU).

So that it runs anywhere, offline, the model is a tiny Llama built from a config and the tokenizer is trained on the
data here with `tokenizers`; for a real run, load yours with `AutoModelForCausalLM.from_pretrained(...)` and
`AutoTokenizer.from_pretrained(...)` instead.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from datasets import Dataset
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import HfArgumentParser, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from trl import SFTConfig, SFTTrainer

from hf_lrsched import LRSchedArguments, LRSchedMixin

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # glue_checkpoints, beside this file
from glue_checkpoints import ResumeError, close_process_group, trainer_checkpoint_problem


@dataclass
class SFTConfigWithSchedule(LRSchedArguments, SFTConfig):
    """`SFTConfig` with hf_lrsched's fields; the mixin goes first."""


class LRSchedSFTTrainer(LRSchedMixin, SFTTrainer):
    """`SFTTrainer` that builds its schedule through hf_lrsched; the mixin goes first."""


def toy_data() -> Dataset:
    return Dataset.from_dict({"text": [f"the quick brown fox number {i} jumps over the lazy dog" for i in range(256)]})


def toy_model_and_tokenizer(texts: list[str]):
    raw = Tokenizer(models.WordLevel(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>"
    )
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=64,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlamaForCausalLM(config), tokenizer


def parse_args(argv: list[str] | None = None) -> SFTConfigWithSchedule:
    (args,) = HfArgumentParser(SFTConfigWithSchedule).parse_args_into_dataclasses(argv)
    return args


def train(args: SFTConfigWithSchedule) -> LRSchedSFTTrainer:
    checkpoint = args.resume_from_checkpoint
    if checkpoint:  # refused now, by name, not as a traceback after the model is built
        problem = trainer_checkpoint_problem(checkpoint)
        if problem:
            raise ResumeError(f"cannot resume from {checkpoint}: {problem}.")
    dataset = toy_data()
    model, tokenizer = toy_model_and_tokenizer(dataset["text"])
    trainer = LRSchedSFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    try:
        # writes output_dir/lr_schedule.csv (and .png): the rate of every step, per param group
        trainer.train(resume_from_checkpoint=checkpoint)
    except ValueError as error:
        if "Cannot resume" not in str(error):  # hf_lrsched's resume check; anything else is not the user's
            raise
        raise ResumeError(f"Cannot resume from {checkpoint}: {error}") from None
    return trainer


def main(argv: list[str] | None = None) -> int:
    """Parse and train; a bad argument or a checkpoint that cannot be resumed is one line on stderr and exit status
    2, as in glue.py."""
    try:
        args = parse_args(argv)
    except (ValueError, TypeError, ArithmeticError) as error:
        print(f"trl_sft.py: error: {error}", file=sys.stderr)
        return 2
    try:
        train(args)
    except ResumeError as error:
        print(f"trl_sft.py: error: {error}", file=sys.stderr)
        return 2
    finally:
        close_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
