import csv
import os

# One thread per process: the suite runs on as many workers as there are cores (`-n`), and the examples it launches
# run beside them; a second torch thread per process would only oversubscribe the cores (on 2 cores, the Trainer
# tests took 45 s with torch's default threads, 34 s with one). Set before torch is imported; inherited by every
# process the tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

from .helpers import TINY_BERT

# Nothing in the tests may reach the Hugging Face Hub: every model, tokenizer and data set is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_DISABLED", "true")

WORDS = [
    "good",
    "great",
    "fine",
    "nice",
    "happy",
    "bad",
    "awful",
    "poor",
    "sad",
    "ugly",
    "film",
    "plot",
    "the",
    "a",
    "was",
    "is",
    "very",
    "not",
    "movie",
    "acting",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A real BERT (tiny) with a real WordPiece tokenizer, saved like any model on the Hub."""
    path = tmp_path_factory.mktemp("tiny-bert")
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + WORDS + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
    vocab += [f"[unused{i}]" for i in range(TINY_BERT["vocab_size"] - len(vocab))]
    tokenizer = BertTokenizerFast(
        vocab={token: i for i, token in enumerate(vocab)}, model_max_length=TINY_BERT["max_position_embeddings"]
    )
    assert tokenizer("the film was good")["input_ids"] == [2, 17, 15, 19, 5, 3]  # real WordPiece ids, no [UNK]
    tokenizer.save_pretrained(path)
    # No dropout: then training is a function of the batches alone, and a resumed run that skipped exactly the
    # batches already seen ends with the same weights, bit for bit.
    config = BertConfig(**TINY_BERT, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, classifier_dropout=0.0)
    BertForSequenceClassification(config).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def csv_files(tmp_path_factory):
    """50 training rows (not a multiple of the batch: the last batch is short) and 16 validation rows."""
    path = tmp_path_factory.mktemp("data")
    positive, negative = WORDS[:5], WORDS[5:10]

    def rows(n, offset):
        out = []
        for i in range(n):
            label = (i + offset) % 2
            words = positive if label else negative
            out.append({"sentence": f"the film was very {words[i % 5]} {words[(i + 2) % 5]}", "label": label})
        return out

    for name, n, offset in (("train.csv", 50, 0), ("validation.csv", 16, 1)):
        with open(path / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["sentence", "label"])
            writer.writeheader()
            writer.writerows(rows(n, offset))
    return path
