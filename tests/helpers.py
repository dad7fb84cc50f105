"""Shared test helpers: throw-away optimizers, unwrapped schedules, and tiny real BERT models and data for Trainer
runs, built locally (nothing downloaded)."""

import pytest
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


def make_optimizer(lr=10.0, groups=None, cls=torch.optim.AdamW, **kwargs):
    """An optimizer over throw-away parameters; `groups` is a list of base learning rates, one per param group."""
    if groups is None:
        return cls([torch.nn.Parameter(torch.zeros(1))], lr=lr, **kwargs)
    return cls([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": g} for g in groups], lr=lr, **kwargs)


def unwrap_schedule(scheduler, num_steps):
    """The learning rate of the first param group before each of `num_steps` optimizer steps (as Trainer logs it)."""
    lrs = []
    for _ in range(num_steps):
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.optimizer.step()
        scheduler.step()
    return lrs


def assert_list_close(actual, expected, tol=1e-2):
    assert len(actual) == len(expected)
    for step, (a, e) in enumerate(zip(actual, expected)):
        assert a == pytest.approx(e, abs=tol), f"step {step}: got {a}, expected {e}\nactual:   {actual}\nexpected: {expected}"
