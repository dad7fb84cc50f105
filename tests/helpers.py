"""Shared test helpers: throw-away optimizers, unwrapped schedules, and tiny real BERT models and data for Trainer
runs, built locally (nothing downloaded)."""

import atexit
import contextlib
import csv
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

from hf_lrsched import LRSchedTrainingArguments, schedule_multipliers

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
LR = 1e-3

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
        assert a == pytest.approx(e, abs=tol), (
            f"step {step}: got {a}, expected {e}\nactual:   {actual}\nexpected: {expected}"
        )


# ---- Trainer runs -------------------------------------------------------------------------------------------


def make_args(tmp_path, **overrides):
    defaults = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        learning_rate=LR,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        seed=0,
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    defaults.update(overrides)
    return LRSchedTrainingArguments(**defaults)


def expected_rates(name, kwargs, num_training_steps, num_warmup_steps, base_lr=LR):
    """The rate Trainer logs at step k is the one the k-th optimizer step used: base * lambda(k - 1)."""
    curve = schedule_multipliers(name, num_warmup_steps, num_training_steps, lr=base_lr, **kwargs)
    return {k: base_lr * curve[k - 1] for k in range(1, num_training_steps + 1)}


def read_curve(output_dir):
    with open(os.path.join(output_dir, "lr_schedule.csv"), newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], {int(row[0]): [float(x) for x in row[1:]] for row in rows[1:]}


# ---- the example scripts, launched -------------------------------------------------------------------------


# What every run of an example in the tests has: no Hub, one torch thread, no tokenizer threads.
EXAMPLE_ENV = {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def example_env() -> dict[str, str]:
    """This process's environment for a run of an example, with no fault of an earlier test (`GLUE_FAULT`)."""
    return {k: v for k, v in os.environ.items() if k != "GLUE_FAULT"} | EXAMPLE_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script, num_processes, args, check=True):
    """`accelerate launch` on the CPU: one process, or two with the shipped `cpu_2proc.yaml` config."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", **EXAMPLE_ENV}  # GLUE_FAULT passes: tests/glue_driver.py reads it
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if num_processes == 1:
        command += [
            "--cpu",
            "--num_processes",
            "1",
            "--num_machines",
            "1",
            "--mixed_precision",
            "no",
            "--dynamo_backend",
            "no",
        ]
    else:
        assert num_processes == 2
        command += [
            "--config_file",
            str(EXAMPLES / "accelerate_configs" / "cpu_2proc.yaml"),
            "--main_process_port",
            str(free_port()),
        ]
    result = subprocess.run(
        command + [str(script)] + [str(a) for a in args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
    return result


def read_lr_csv(output_dir):
    with open(Path(output_dir) / "lr_schedule.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["step", "lr"]
    return [(int(step), float(lr)) for step, lr in rows[1:]]


def results(output_dir):
    return json.loads((Path(output_dir) / "all_results.json").read_text())


def data_args(tiny_model_dir, csv_files):
    """The tiny model and the small CSV files, as glue.py (and the benchmarks that launch it) take them."""
    return [
        "--model_name_or_path",
        tiny_model_dir,
        "--train_file",
        csv_files / "train.csv",
        "--validation_file",
        csv_files / "validation.csv",
    ]


def common_args(tiny_model_dir, csv_files, output_dir):
    return [
        *data_args(tiny_model_dir, csv_files),
        "--max_length",
        "16",
        "--output_dir",
        output_dir,
        "--learning_rate",
        "1e-3",
        "--seed",
        "7",
    ]


def cycles_of(scheduler):
    """The `Cycles` of the restarts phase of a `cosine_with_growing_restarts` scheduler (its exact starts `B_i`)."""
    return scheduler.lr_lambdas[0].keywords["plan"].phases[0].args[4]


class _ExampleServer:
    """`tests/glue_driver.py --serve`, started once per test process: it imports the examples, then forks a fresh
    child process for each `run_examples` call."""

    process: subprocess.Popen | None = None
    requests = 0

    @classmethod
    def run(cls, request: dict, timeout: float) -> int:
        if cls.process is None or cls.process.poll() is not None:
            cls.process = subprocess.Popen(
                [sys.executable, ROOT / "tests" / "glue_driver.py", "--serve"],
                env=example_env(),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group: the server and a child still running stop together
            )
            atexit.register(cls.stop, cls.process)
        process = cls.process
        cls.requests += 1
        request = {**request, "id": cls.requests}
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                if not selector.select(timeout):
                    raise TimeoutError(f"tests/glue_driver.py: no answer in {timeout} s; its output:\n{tail(request)}")
            answer = process.stdout.readline()
            if not answer:
                raise RuntimeError(f"tests/glue_driver.py --serve exited with {process.wait()}:\n{tail(request)}")
            answer = json.loads(answer)
            assert answer["id"] == request["id"], f"answer {answer} to request {request['id']}"
        except BaseException:  # out of step with the server (a timeout, an interrupt): the next call starts anew
            cls.stop(process)
            raise
        return answer["rc"]

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        if process.returncode is None:  # not reaped yet: its process group id is still its own
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdin.close()
        process.stdout.close()


def tail(request: dict) -> str:
    log = Path(request["log"])
    return log.read_text()[-4000:] if log.is_file() else "(none)"


def run_examples(argv, *, script="glue", fault=None, expect=0, fresh=False):
    """An example's `main` (`glue`, `glue_snapshots`, `glue_trainer`, `trl_sft`) over each argument list in `argv`,
    one after the other in one fresh process, with `fault` injected (`GLUE_FAULT`); returns the process and each run's
    `{"rc", "stderr"}`. The process is forked by `tests/glue_driver.py --serve`, which imported the examples once for
    all the tests of this test process; with `fresh`, it is a new interpreter (`python tests/glue_driver.py`), which
    imports them itself and has a hash seed of its own. With `expect` (an exit status), every run must end with it
    and without a traceback."""
    runs = [[str(a) for a in args] for args in argv]
    work = Path(runs[0][runs[0].index("--output_dir") + 1]).parent
    spec, out, log = (work / f".{name}-{os.getpid()}" for name in ("runs.json", "results.json", "log.txt"))
    spec.write_text(json.dumps(runs))
    out.unlink(missing_ok=True)
    env = example_env()
    if fresh:
        env |= {"GLUE_SCRIPT": script, **({"GLUE_FAULT": fault} if fault else {})}
        process = subprocess.run(
            [sys.executable, ROOT / "tests" / "glue_driver.py", spec, out],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
    else:
        request = {"runs": str(spec), "results": str(out), "log": str(log), "script": script, "fault": fault}
        returncode = _ExampleServer.run({**request, "env": env}, timeout=600)
        output = log.read_text()
        process = subprocess.CompletedProcess(["tests/glue_driver.py", script], returncode, output, output)
    done = json.loads(out.read_text()) if out.is_file() else []
    if expect is not None:
        assert process.returncode == 0 and len(done) == len(runs), process.stderr[-4000:]
        for result in done:
            assert result["rc"] == expect, result["stderr"][-4000:]
            assert "Traceback" not in result["stderr"], result["stderr"][-4000:]
    return process, done
