"""The README's commands are the ones CI runs, and the package declares what it promises."""

import re
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[1]


def readme_commands():
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```bash\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command in readme_commands()
    assert ci_command.endswith("python -m pytest")


def test_core_requirements_are_torch_and_transformers_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert sorted(re.split(r"[<>=!~ ]", dep)[0] for dep in project["dependencies"]) == ["torch", "transformers"]
    assert project["requires-python"] == ">=3.10"
    assert {"examples", "docs", "dev"} <= set(project["optional-dependencies"])


def test_public_api_is_importable():
    import hf_lrsched

    for name in hf_lrsched.__all__:
        assert getattr(hf_lrsched, name) is not None
