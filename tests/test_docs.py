"""The documentation builds strictly, its figures come from the library, and the reference covers every option."""

import dataclasses
import importlib.util
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import TrainingArguments

from hf_lrsched import (
    LRSchedTrainingArguments,
    get_cosine_with_growing_restarts_schedule,
    get_phases_schedule,
    get_warmup_cosine_schedule,
    get_wsd_schedule,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for page in (
        "index.html",
        "schedules/cosine_with_growing_restarts/index.html",
        "trainer/index.html",
        "accelerate/index.html",
        "configuration/index.html",
        "pitfalls/index.html",
        "api/index.html",
    ):
        assert (site / page).is_file(), page
    # the figures were drawn by the build, from the library, and each schedule page shows its own
    for figure in ("overview", "warmup_cosine", "exponential_warmup_cosine", "cosine_with_growing_restarts"):
        assert (site / "figures" / f"{figure}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "figures/cosine_with_growing_restarts.png"
        in (site / "schedules/cosine_with_growing_restarts/index.html").read_text()
    )
    # a benchmark's plot never replaces a schedule's figure of the same name (wsd.png is both)
    results = ROOT / "benchmarks" / "results"
    for png in results.glob("*.png"):
        assert (site / "figures" / f"benchmark_{png.name}").read_bytes() == png.read_bytes(), png.name
    assert (site / "figures" / "wsd.png").read_bytes() != (results / "wsd.png").read_bytes()
    assert "figures/benchmark_wsd.png" in (site / "benchmarks" / "index.html").read_text()
    # API pages are generated from the docstrings, whose transformers-style markup is rendered, not shown raw
    warmup_page = (site / "schedules" / "warmup_cosine" / "index.html").read_text()
    assert "The number of warmup steps" in warmup_page
    pages = {p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")}
    for name, html in pages.items():
        for raw in ("*optional*", "<em>optional</em>", "[`", "SCHEDULES.md", "int: int:"):
            assert raw not in html, f"{name} shows {raw!r} raw"
        # every docstring section is a table: "Returns:" after the Args was printed as text when no blank line was
        # left before it (17 sections on 9 pages)
        text = re.sub(r"<[^>]+>", "", html)
        raw = [m.group(0) for m in re.finditer(r"(Args|Returns|Raises):\n\s*(\S[^\n]*)", text) if m.group(2) != "Type"]
        assert not raw, f"{name} shows docstring sections as text: {raw[:3]}"
    # the formulas are math (KaTeX, vendored: the site renders offline), not code blocks
    assert "arithmatex" in warmup_page and "assets/katex/katex.min.js" in warmup_page
    assert (site / "assets" / "katex" / "fonts").is_dir()
    assert "<code>lambda(t) =" not in warmup_page and "lambda(t) = s + (1 - s) *" not in warmup_page
    # the build's own code is not published; included files are
    assert not list(site.rglob("*.py"))
    assert "toy_model_and_tokenizer" in pages["trl/index.html"]  # examples/trl_sft.py, included
    assert "register_for_checkpointing" in pages["accelerate/index.html"]
    assert "https://github.com/hf-lrsched/hf_lrsched" in pages["index.html"]
    # as a reader sees it: the Raises tables without raw backticks (they showed `ValueError`) and one exception a row,
    # no LaTeX inside code spans, ScheduleInfo documented once, search titles without LaTeX, no heading twice
    for name, html in pages.items():
        spans = re.findall(r"<code>([^<]*)</code>", re.sub(r"<pre.*?</pre>", "", html, flags=re.S))
        latex = [span for span in spans if re.search(r"[_^]\{|\\[a-z]+\{", span)]
        assert not latex, f"{name}: LaTeX in code spans {latex}"
    assert pages["api/index.html"].count('id="hf_lrsched.ScheduleInfo"') == 1
    assert 'id="hf_lrsched.schedule_info.ScheduleInfo"' not in pages["api/index.html"]
    raises = re.findall(r"Raises:</span>.*?</table>", pages["api/index.html"], flags=re.S)
    rows = [
        re.sub(r"<[^>]+>", "", row)
        for table in raises
        for row in re.findall(r"<tr class=.doc-section-item.>(.*?)</tr>", table, flags=re.S)
    ]
    assert len(rows) >= 7 and not [row for row in rows if "`" in row or re.search(r"\w+Error:", row)], rows
    titles = [doc["title"] for doc in json.loads((site / "search" / "search_index.json").read_text())["docs"]]
    assert not [title for title in titles if "\\(" in title or "\\[" in title or "$" in title]
    headings = re.findall(r"<h[1-6][^>]*>(.*?)<", pages["benchmarks/index.html"])
    assert len(headings) == len(set(headings)), headings


def test_readme_figure_is_the_scripts_overview(tmp_path):
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
    make_figures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_figures)
    path = make_figures.make_figure("overview", tmp_path / "overview.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    readme = (ROOT / "README.md").read_text()
    assert "docs/assets/schedules.png" in readme and (ROOT / "docs/assets/schedules.png").is_file()
    assert "python docs/make_figures.py --readme docs/assets/schedules.png" in readme
    # the committed figure is the script's, in today's style: the same size in pixels (an older style had another)
    committed = (ROOT / "docs/assets/schedules.png").read_bytes()
    assert committed[16:24] == path.read_bytes()[16:24], "re-draw it: python docs/make_figures.py --readme ..."


def test_configuration_reference_names_every_field_and_option():
    text = (ROOT / "docs" / "configuration.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", text))
    new_fields = {f.name for f in dataclasses.fields(LRSchedTrainingArguments)} - {
        f.name for f in dataclasses.fields(TrainingArguments)
    }
    assert new_fields == {
        "lr_schedule",
        "lr_schedule_kwargs",
        "auto_warmup",
        "save_lr_curve",
        "lr_layer_decay",
        "lr_param_groups",
        "lr_resume",
    }
    options = set()
    for factory in (
        get_warmup_cosine_schedule,
        get_cosine_with_growing_restarts_schedule,
        get_wsd_schedule,
        get_phases_schedule,
    ):
        options |= set(inspect.signature(factory).parameters)
    import glue_data  # examples/ is on the path: `pythonpath` in pyproject.toml
    import glue_snapshots

    example_fields = {
        f.name
        for cls in (glue_snapshots.SnapshotArguments, glue_data.DataArguments, glue_data.ModelArguments)
        for f in dataclasses.fields(cls)
    }
    missing = (new_fields | options | example_fields) - documented
    assert not missing, f"not in docs/configuration.md: {sorted(missing)}"
