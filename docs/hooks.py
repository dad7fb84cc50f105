"""MkDocs hooks: draw the documentation's figures from the library at every build (`docs/make_figures.py`), and put
the benchmark results that `benchmarks/` wrote (`benchmarks/results/*.md`, `*.png`) into the Benchmarks page."""

import importlib.util
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MARKER = re.compile(r"<!-- results: (\w+) -->")


def on_pre_build(config, **kwargs):
    figures = Path(config["docs_dir"]) / "figures"
    script = Path(__file__).parent / "make_figures.py"
    spec = importlib.util.spec_from_file_location("make_figures", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.make_all(figures)
    for png in RESULTS.glob("*.png"):  # prefixed: `wsd.png` is both a schedule's figure and a benchmark's plot
        shutil.copy(png, figures / f"benchmark_{png.name}")


def on_page_markdown(markdown, page, **kwargs):
    if page.file.src_uri != "benchmarks.md":
        return markdown

    def results(match):
        path = RESULTS / f"{match.group(1)}.md"
        if not path.is_file():
            return f"*`benchmarks/{match.group(1)}.py` has not been run yet: no results to show.*"
        # The page's own heading names the section: the file's title (for readers of benchmarks/results/) would
        # repeat it one level down.
        text = re.sub(r"\A#+ [^\n]*\n+", "", path.read_text())
        return re.sub(r"\]\(([\w.-]+\.png)\)", r"](figures/benchmark_\1)", text)

    return MARKER.sub(results, markdown)
