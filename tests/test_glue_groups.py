"""examples/glue.py with an LR plan: layer-wise decay and rules by name give every param group its own rate, the
same on 1 and 2 processes, as the contract says; a resume keeps them, and one under another plan is refused."""

import json

import pytest
from transformers import AutoModelForSequenceClassification

from hf_lrsched import build_param_groups, schedule_multipliers

from .helpers import EXAMPLES, common_args, launch, results, run_examples

pytestmark = pytest.mark.slow

RULES = [
    {"pattern": "classifier", "lr_mult": 10, "name": "classifier"},
    {"pattern": "embeddings", "start_step": 4, "warmup_steps": 4, "name": "embeddings"},
]
PLAN = ["--lr_layer_decay", "0.8", "--lr_param_groups", json.dumps(RULES)]
STEPS = ["--per_device_train_batch_size", "4", "--max_train_steps", "12", "--num_warmup_steps", "3"]


def read_groups_csv(output_dir):
    lines = (output_dir / "lr_schedule.csv").read_text().splitlines()
    header = lines[0].split(",")
    return header, {int(row.split(",")[0]): [float(v) for v in row.split(",")[1:]] for row in lines[1:]}


def expected(tiny_model_dir, lr=1e-3, steps=12, warmup=3):
    """The contract: group g at optimizer step k uses base_g * lambda(k - 1) * r_g(k - 1)."""
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model_dir)
    groups = build_param_groups(model, lr, 0.01, layer_decay=0.8, rules=RULES)
    curve = schedule_multipliers("warmup_cosine", warmup, steps)

    def ramp(t, group):
        start, length = group["start_step"] or 0, group["warmup_steps"] or 0
        return 0.0 if t < start else min(1.0, (t - start) / length) if length else 1.0

    return groups, {k: [g["lr"] * curve[k - 1] * ramp(k - 1, g) for g in groups] for k in range(1, steps + 1)}


def test_glue_py_gives_each_group_its_planned_rate_on_one_and_two_processes(tmp_path, tiny_model_dir, csv_files):
    one, two = tmp_path / "one", tmp_path / "two"
    out, _ = run_examples([common_args(tiny_model_dir, csv_files, one) + STEPS + PLAN])
    assert "param groups: embeddings" in out.stdout and "classifier.head 0.01" in out.stdout
    two_steps = [*STEPS]
    two_steps[1] = "2"  # the same global batch of 4 over 2 processes
    launch(EXAMPLES / "glue.py", 2, common_args(tiny_model_dir, csv_files, two) + two_steps + PLAN)
    header, rates = read_groups_csv(one)
    groups, want = expected(tiny_model_dir)
    assert header[:2] == ["step", "lr"] and len(header) == 2 + len(groups)  # lr (group 0), then every group by name
    assert sorted(rates) == list(range(1, 13))
    for k, row in rates.items():
        assert row[1:] == pytest.approx(want[k], rel=1e-12, abs=1e-18), k
    assert read_groups_csv(two) == (header, rates)  # identical per-group rates whatever the number of processes
    assert any(column.startswith("lr/embeddings") for column in header)
    assert results(one)["completed_steps"] == 12


def test_a_resume_keeps_the_groups_and_another_plan_is_refused(tmp_path, tiny_model_dir, csv_files):
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    save = ["--checkpointing_steps", "5"]
    other = [*PLAN]
    other[1] = "0.9"
    runs = [
        common_args(tiny_model_dir, csv_files, full) + STEPS + PLAN + save,
        common_args(tiny_model_dir, csv_files, resumed) + STEPS + PLAN + ["--resume_from_checkpoint", full / "step_5"],
        common_args(tiny_model_dir, csv_files, tmp_path / "other")
        + STEPS
        + other
        + ["--resume_from_checkpoint", full / "step_5"],
    ]
    _, (_, _, refused) = run_examples(runs, expect=None)  # glue.main three times, in one fresh process
    assert read_groups_csv(resumed) == read_groups_csv(full)
    assert refused["rc"] == 2 and "Traceback" not in refused["stderr"], refused["stderr"][-3000:]
    assert "base learning rate of param group" in refused["stderr"]
