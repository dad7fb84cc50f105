"""The code is linted, formatted and typed as `pyproject.toml` says: `ruff check`, `ruff format --check` and
`mypy` (on `hf_lrsched`, which ships `py.typed`) each pass, so that CI fails on a lapse."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize(
    "command", [["ruff", "check", "."], ["ruff", "format", "--check", "."]], ids=["ruff check", "ruff format"]
)
def test_clean(command):
    result = subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout[-6000:]}{result.stderr[-2000:]}"


@pytest.mark.slow
def test_mypy_passes_and_the_public_names_have_their_real_types(tmp_path):
    """`mypy` on the package (pyproject.toml's settings) passes; in the same run, a user's file sees the real types
    of the public names, which the package imports lazily (its `TYPE_CHECKING` imports)."""
    user = tmp_path / "user_code.py"
    user.write_text(
        "from hf_lrsched import LRSchedTrainer, describe\nreveal_type(LRSchedTrainer)\nreveal_type(describe)\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "hf_lrsched", str(user)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    # By file name: mypy's cache may report the notes of an unchanged file under the path it had in an earlier run.
    notes = [line for line in result.stdout.splitlines() if "user_code.py:" in line]
    problems = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert result.returncode == 0 and not problems and len(notes) == 2, output[-6000:]
    assert "hf_lrsched.trainer.LRSchedTrainer" in notes[0], output
    assert "-> hf_lrsched.schedule_info.ScheduleInfo" in notes[1], output


def test_every_public_name_resolves_to_what_it_names():
    import inspect

    import hf_lrsched
    import hf_lrsched.schedule_info  # a submodule import must not shadow the function `describe`

    for name in hf_lrsched.__all__:
        assert not inspect.ismodule(getattr(hf_lrsched, name)), name
    assert callable(hf_lrsched.describe) and set(hf_lrsched.__all__) <= set(dir(hf_lrsched))


def test_the_public_name_lists_agree():
    """`__init__`'s three lists of public names (the lazy table, the `TYPE_CHECKING` imports, `__all__`) name the same
    names: a new public name added to one and not the others fails here."""
    import ast

    import hf_lrsched

    tree = ast.parse((ROOT / "hf_lrsched" / "__init__.py").read_text())
    typed = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level == 1
        for alias in node.names
    }
    assert set(hf_lrsched._LAZY) == typed == set(hf_lrsched.__all__)


def documented_names() -> set[str]:
    """Every name the API reference documents (`::: hf_lrsched.x.y`), and the package's `__all__`."""
    import re

    import hf_lrsched

    names = {f"hf_lrsched.{name}" for name in hf_lrsched.__all__}
    for page in (ROOT / "docs").rglob("*.md"):
        names |= set(re.findall(r"^::: (hf_lrsched[\w.]*)", page.read_text(encoding="utf-8"), flags=re.M))
    return names


def test_the_examples_use_only_documented_names_of_hf_lrsched():
    """The examples are what users copy: they import nothing that the API reference does not document (a name
    documented with its module, `::: hf_lrsched.atomic`, counts)."""
    import ast

    documented, used = documented_names(), set()
    for script in sorted((ROOT / "examples").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("hf_lrsched"):
                used |= {(script.name, f"{node.module}.{alias.name}") for alias in node.names}
            elif isinstance(node, ast.Import):
                used |= {(script.name, a.name) for a in node.names if a.name.startswith("hf_lrsched.")}
    assert used, "the examples import nothing of hf_lrsched?"
    private = sorted(
        (script, name)
        for script, name in used
        if name.rsplit(".", 1)[-1].startswith("_")
        or (name not in documented and name.rsplit(".", 1)[0] not in documented - {"hf_lrsched"})
    )
    assert not private, f"undocumented names imported by the examples: {private}"
