"""Each benchmark script stays runnable (tiny sizes, no timing asserted), and the README's summary is the one the
committed results give."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import data_args

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def run(script, *args):
    result = subprocess.run(
        [sys.executable, BENCHMARKS / script, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow
def test_overhead_quick(tmp_path):
    run("overhead.py", "--quick", "--out-dir", tmp_path)
    data = json.loads((tmp_path / "overhead.json").read_text())
    assert {row["schedule"] for row in data["steps"]} >= {
        "transformers cosine",
        "warmup_cosine",
        "growing restarts, 3 cycles",
    }
    assert all(row["us_per_step"] > 0 for row in data["steps"])
    assert "| param groups |" in (tmp_path / "overhead.md").read_text()
    assert {row["schedule"] for row in data["steps"]} >= {"wsd, 1-sqrt decay over the last 20%"}


@pytest.mark.slow
def test_startup_runs(tmp_path):
    run("startup.py", "--rounds", 1, "--out-dir", tmp_path)
    data = json.loads((tmp_path / "startup.json").read_text())
    assert set(data["wall"]) >= {"hf-lrsched --help", "hf-lrsched list"} and set(data["imports"]) == {"show", "list"}
    assert all(seconds > 0 for seconds in data["wall"].values())


@pytest.mark.slow
def test_throughput_smoke(tmp_path, tiny_model_dir, csv_files):
    data = data_args(tiny_model_dir, csv_files)
    run("throughput.py", "--rounds", 1, "--steps", 12, "--out-dir", tmp_path, *data)
    rows = json.loads((tmp_path / "throughput.json").read_text())["rows"]
    assert next(r["schedule"] for r in rows) == "cosine" and rows[0]["ratio"] == 1.0


@pytest.mark.slow
def test_quality_smoke(tmp_path, tiny_model_dir, csv_files):  # apart from throughput's: the two run side by side
    data = data_args(tiny_model_dir, csv_files)
    run(
        "quality.py",
        "--quick",
        "--schedules",
        "cosine",
        "warmup_cosine (auto)",
        "--max_length",
        16,
        "--eval-steps",
        5,
        "--out-dir",
        tmp_path,
        *data,
    )
    quality = json.loads((tmp_path / "quality.json").read_text())
    rows = quality["results"]["20 steps"]
    assert set(rows) == {"cosine", "warmup_cosine (auto)"}
    assert all(len(r["accuracy"]) == 1 and 0 <= r["accuracy"][0] <= 1 for r in rows.values())
    assert (tmp_path / "quality_loss_20_steps.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "quality_runs").glob("*.json"))) == 2  # kept, so a rerun resumes


@pytest.mark.slow
def test_readme_summary_is_generated_from_the_results():
    result = subprocess.run([sys.executable, BENCHMARKS / "summarize.py", "--check"], cwd=ROOT)
    assert result.returncode == 0, "README.md's benchmark block is stale: run python benchmarks/summarize.py"


def test_wsd_text_for_three_budgets_is_the_committed_results_and_reads_for_two(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import wsd

    committed = json.loads((BENCHMARKS / "results" / "wsd.json").read_text())
    plan, spent = wsd.describe_plan(
        committed["budgets"], committed["decays"], committed["branch_points"], committed["optimizer_steps_per_seed"]
    )
    markdown = (BENCHMARKS / "results" / "wsd.md").read_text()
    assert plan in markdown and spent in markdown, (plan, spent)
    assert wsd.plan([20, 40, 80]) == ([4, 8, 16], [16, 32, 64], 16)  # a checkpoint at every branch point
    assert wsd.plan([10, 20]) == ([2, 4], [8, 16], 8)
    plan, spent = wsd.describe_plan([10, 20], [2, 4], [8, 16], {"wsd": 22, "cosine": 30})
    assert "and a cooldown of 2 steps branched from its stable checkpoint at step 8;" in plan
    assert spent == (
        "Optimizer steps spent per seed for both budgets: wsd 22 (the trunk plus one cooldown), cosine 30 (two runs): "
        "wsd spends 27% fewer."
    )


@pytest.mark.slow
def test_wsd_smoke(tmp_path, tiny_model_dir, csv_files):
    data = data_args(tiny_model_dir, csv_files)
    # Two budgets (the benchmark's three, less one): a trunk of 20 steps, a branch at step 8 cooled down in 2.
    run("wsd.py", "--seeds", 1, "--budgets", 10, 20, "--max_length", 16, "--out-dir", tmp_path, *data)
    result = json.loads((tmp_path / "wsd.json").read_text())
    assert result["decays"] == [2, 4] and result["branch_points"] == [8, 16]
    assert result["optimizer_steps_per_seed"] == {"wsd": 22, "cosine": 30}
    markdown = (tmp_path / "wsd.md").read_text()
    assert "a cooldown of 2 steps branched from its stable checkpoint at step 8;" in markdown
    assert "for both budgets: wsd 22 (the trunk plus one cooldown), cosine 30 (two runs)" in markdown
    for name in ("wsd", "cosine"):
        assert set(result["results"][name]) == {"10", "20"}
        assert all(0 <= acc <= 1 for r in result["results"][name].values() for acc in r["accuracy"])

    # Each branch ran as a resume of the trunk: its curve is the trunk's up to the branch point, then its cooldown.
    def curve(run_dir):
        lines = (tmp_path / "wsd_runs" / run_dir / "lr_schedule.csv").read_text().splitlines()[1:]
        return [float(line.split(",")[1]) for line in lines]

    trunk, branch = curve("wsd-trunk-seed1"), curve("wsd-branch10-seed1")
    assert len(branch) == 10 and branch[:8] == trunk[:8] and branch[-1] < trunk[9]
    assert not list((tmp_path / "wsd_runs" / "wsd-trunk-seed1").glob("step_*"))  # checkpoints removed
    assert (tmp_path / "wsd.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_stability_smoke(tmp_path, tiny_model_dir):
    run("stability.py", "--quick", "--max_length", 16, "--model_name_or_path", tiny_model_dir, "--out-dir", tmp_path)
    data = json.loads((tmp_path / "stability.json").read_text())
    assert set(data["results"]) == {"constant (no warmup)", "warmup_cosine"}
    for row in data["results"].values():
        assert row["runs"] == 2 and row["band"] and row["band_ratio"] >= 1 and 0 <= row["failed_seeds"] <= 2
    assert 0.2 < data["majority_share"] < 0.3  # BBC News: five topics, the largest about 23%
    assert (tmp_path / "stability.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list((tmp_path / "stability_runs").glob("*.json"))) == 4  # cached per run


@pytest.mark.slow
def test_snapshots_smoke(tmp_path, tiny_model_dir, csv_files):
    data = data_args(tiny_model_dir, csv_files)
    run("snapshots.py", "--quick", "--max_length", 16, "--out-dir", tmp_path, *data)
    result = json.loads((tmp_path / "snapshots.json").read_text())
    assert result["cycle_ends"] == [5, 7, 12]  # W = 4, D = 8 in 3 cycles growing x2: B = 0, 1, 3, 8
    seed = result["per_seed"][0]
    assert [s["step"] for s in seed["snapshots"]] == [5, 7, 12] and set(seed["cosine"]) == {"5", "7", "12"}
    for metrics in (seed["ensemble_last_2"], seed["ensemble_last_3"]):
        assert 0 <= metrics["accuracy"] <= 1 and metrics["nll"] > 0 and 0 <= metrics["ece"] <= 1
    assert (tmp_path / "snapshots.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_groups_smoke(tmp_path, tiny_model_dir):
    run("groups.py", "--quick", "--max_length", 16, "--model_name_or_path", tiny_model_dir, "--out-dir", tmp_path)
    data = json.loads((tmp_path / "groups.json").read_text())
    assert data["complete"] and data["runs_done"] == data["runs_planned"] == 3
    rows = data["results"]["32 articles, peak 0.0003"]
    assert set(rows) == {"warmup_cosine", "layer decay 0.8", "embeddings frozen, then warmed in"}
    assert all(len(r["accuracy"]) == 1 and 0 <= r["accuracy"][0] <= 1 for r in rows.values())
    assert rows["warmup_cosine"]["paired_change"] is None and rows["layer decay 0.8"]["paired_change"] is not None
    # Each plan reached the Trainer's optimizer: layer decay made one group per layer, the rule its own frozen group.
    runs = {p.stem: json.loads(p.read_text()) for p in (tmp_path / "groups_runs").glob("*.json")}
    assert len(runs) == 3  # cached per run, so a rerun resumes
    base, decay = runs["warmup_cosine-32-lr0.0003-seed1"], runs["layer_decay_0.8-32-lr0.0003-seed1"]
    frozen = runs["embeddings_frozen_then_warmed_in-32-lr0.0003-seed1"]
    assert base["lowest_base_lr"] == pytest.approx(3e-4) and base["latest_start"] == 0
    assert decay["lowest_base_lr"] == pytest.approx(3e-4 * 0.8**2)  # the embeddings of a 1-layer BERT: gamma^(L+1)
    assert frozen["latest_start"] == 1 and frozen["groups"] > base["groups"]  # round(25% of 3 steps)
    assert all(r["steps"] == 3 for r in runs.values())
    assert "PARTIAL" not in (tmp_path / "groups.md").read_text()
    assert (tmp_path / "groups.png").read_bytes()[:4] == b"\x89PNG"
