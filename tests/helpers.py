"""Tiny real BERT models and data for Trainer runs: built locally, nothing downloaded."""

import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

TINY_BERT = dict(
    vocab_size=64,
    hidden_size=16,
    num_hidden_layers=1,
    num_attention_heads=2,
    intermediate_size=32,
    max_position_embeddings=32,
    num_labels=2,
)


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    return BertForSequenceClassification(BertConfig(**TINY_BERT))


def tiny_dataset(num_rows: int = 64, length: int = 8, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, TINY_BERT["vocab_size"], (num_rows, length), generator=generator)
    labels = (input_ids[:, 0] % 2).tolist()  # learnable: the label is the parity of the first token
    return Dataset.from_dict(
        {"input_ids": input_ids.tolist(), "attention_mask": [[1] * length] * num_rows, "labels": labels}
    )


def logged_learning_rates(trainer) -> dict[int, float]:
    """`{step: learning_rate}` from the Trainer's log history (`logging_steps=1` logs every optimizer step)."""
    return {entry["step"]: entry["learning_rate"] for entry in trainer.state.log_history if "learning_rate" in entry}
