"""Every Python block of the README and the docs runs as written.

The blocks of one page run in order in one namespace (a later block may use what an earlier one defined), in a
temporary directory (their `output_dir="out"` lands there). The only names a page may use without defining them are
the ones its setup note states, `model` and `train_dataset` ("yours"): each block starts with a fresh tiny BERT for
sequence classification as `model` and 64 rows as `train_dataset`, whatever an earlier block called `model`.
A block that only includes a file of the repository (`--8<-- "examples/glue.py:schedule"`) is not run here, since
the examples' own tests run that file; the include must resolve, to the file and, where named, its section.
"""

import re
import sys
from pathlib import Path

import pytest

from .helpers import ROOT, tiny_bert, tiny_dataset

PAGES = [ROOT / "README.md", ROOT / "examples" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::(\w+))?"$')


def blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text(encoding="utf-8"))


def test_every_page_is_found_and_has_its_blocks():
    found = {page.relative_to(ROOT).as_posix(): len(blocks(page)) for page in PAGES}
    assert found["README.md"] >= 2 and found["docs/index.md"] >= 4 and found["docs/trl.md"] >= 4, found


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if blocks(p)], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_python_blocks_run_as_written(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["snippet.py"])  # a block that parses the command line gets an empty one
    namespace: dict = {"__name__": "__snippet__"}
    for index, code in enumerate(blocks(page)):
        namespace.update(model=tiny_bert(), train_dataset=tiny_dataset(64))
        include = INCLUDE.match(code.strip())
        if include:
            path, section = include.groups()
            text = (ROOT / path).read_text(encoding="utf-8")
            assert section is None or f"--8<-- [start:{section}]" in text, f"{path} has no section {section!r}"
            continue
        try:
            exec(compile(code, f"{page.name}, block {index + 1}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"{page.relative_to(ROOT)}, Python block {index + 1} fails:\n{code}") from error
