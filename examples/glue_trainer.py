"""Fine-tune BERT on a GLUE task (or BBC News, or your own files) with `LRSchedTrainer` and an hf_lrsched schedule.

The same tasks as `glue.py`, through the `Trainer` integration: every `TrainingArguments` field plus `lr_schedule`,
`lr_schedule_kwargs`, `auto_warmup` and `save_lr_curve`, from the command line or one YAML/JSON file.

    python examples/glue_trainer.py --task_name bbc_news --output_dir outputs/bbc_trainer \
        --lr_schedule exponential_warmup_cosine --warmup_steps 0.1 --num_train_epochs 1

    python examples/glue_trainer.py examples/configs/bbc_news_trainer.yaml

    ACCELERATE_USE_CPU=1 accelerate launch --config_file examples/accelerate_configs/cpu_2proc.yaml \
        examples/glue_trainer.py examples/configs/bbc_news_trainer.yaml
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np
from transformers import DataCollatorWithPadding, set_seed

from hf_lrsched import LRSchedTrainer, LRSchedTrainingArguments, SnapshotCallback

import glue_data
from glue_checkpoints import ResumeError, RunError, close_process_group, trainer_checkpoint_problem
from glue_data import (
    DataArguments,
    HubUnavailableError,
    Metric,
    ModelArguments,
    label_info,
    load_model_and_tokenizer,
    load_raw_datasets,
    tokenize_datasets,
    write_json,
)


@dataclass
class SnapshotArguments:
    save_snapshots: bool = field(
        default=False,
        metadata={"help": "Save the model at the end of every cycle of the schedule as <output_dir>/snapshot-<step>."},
    )


def parse_args(argv: list[str] | None = None):
    return glue_data.parse_args((ModelArguments, DataArguments, LRSchedTrainingArguments, SnapshotArguments), argv)


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: LRSchedTrainingArguments,
    snapshot_args: SnapshotArguments | None = None,
) -> dict:
    checkpoint = training_args.resume_from_checkpoint
    if checkpoint:  # refused now, by name, not as a traceback after the model is loaded
        problem = trainer_checkpoint_problem(checkpoint)
        if problem:
            raise ResumeError(f"cannot resume from {checkpoint}: {problem}.")
    set_seed(training_args.seed)
    with training_args.main_process_first(desc="loading the data"):
        raw = load_raw_datasets(data_args)
    is_regression, label_list = label_info(data_args, raw)
    model, tokenizer = load_model_and_tokenizer(
        model_args, data_args, 1 if is_regression else len(label_list), label_list
    )
    with training_args.main_process_first(desc="tokenizing"):
        processed = tokenize_datasets(raw, tokenizer, data_args, label_list, is_regression)
    metric = Metric(data_args.task_name)

    def compute_metrics(prediction):
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        predictions = np.squeeze(logits) if is_regression else np.argmax(logits, axis=-1)
        return metric.compute(predictions, prediction.label_ids)

    trainer = LRSchedTrainer(
        model=model,
        args=training_args,
        train_dataset=processed["train"],
        eval_dataset=processed["validation"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[SnapshotCallback()] if snapshot_args and snapshot_args.save_snapshots else None,
    )
    try:
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
    except ValueError as error:
        if "Cannot resume" not in str(error):  # hf_lrsched's resume check; anything else is not the user's
            raise
        raise ResumeError(f"Cannot resume from {checkpoint}: {error}") from None
    metrics = {
        **train_result.metrics,
        **trainer.evaluate(),
        "metrics_source": metric.source,
        "num_processes": training_args.world_size,
        "final_lr": trainer.lr_scheduler.get_last_lr()[0],
    }
    trainer.save_model()
    if trainer.is_world_process_zero():
        write_json(os.path.join(training_args.output_dir, "all_results.json"), metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    """Parse, train and write; a bad argument, a checkpoint that cannot be resumed or the Hub offline is one line on
    stderr and exit status 2, as in glue.py."""
    try:
        parsed = parse_args(argv)
    except (ValueError, TypeError, ArithmeticError) as error:
        print(f"glue_trainer.py: error: {error}", file=sys.stderr)
        return 2
    try:
        train(*parsed)
    except (HubUnavailableError, RunError) as error:
        print(f"glue_trainer.py: error: {error}", file=sys.stderr)
        return 2
    finally:
        close_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
