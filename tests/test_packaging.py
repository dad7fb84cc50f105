"""The README's commands are the ones CI runs, and the package declares what it promises."""

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
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


def test_readme_works_as_the_pypi_description():
    """PyPI shows the README without the repository around it: every link and image must be absolute."""
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)\s]+)\)", text)  # [text](target)
    targets += re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, flags=re.M)  # [name]: target
    targets += re.findall(r'\b(?:src|href)="([^"]+)"', text)  # <img src="...">
    assert len(targets) >= 7, targets
    relative = [t for t in targets if not t.startswith(("https://", "#"))]
    assert not relative, f"relative links in README.md break on PyPI: {relative}"
    assert "https://raw.githubusercontent.com/hf-lrsched/hf_lrsched/main/docs/assets/schedules.png" in text
    # a user installs from an index, not only from a clone
    installs = [line for block in readme_commands() for line in block.splitlines() if line.startswith("pip install")]
    assert "pip install hf_lrsched" in [line.split("#")[0].strip() for line in installs], installs


def test_metadata_names_the_license_urls_pythons_and_one_accelerate_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().split()[:3] == ["Apache", "License", "Version"]
    assert {"Homepage", "Source"} <= set(project["urls"])
    assert all(url.startswith("https://github.com/hf-lrsched/hf_lrsched") for url in project["urls"].values())
    # every Python from requires-python's floor to the newest tested one, and no deprecated License classifier
    versions = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    assert versions == ["3.10", "3.11", "3.12", "3.13"]
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]
    # accelerate is pinned once, in [trainer]; the other extras take it from there
    extras = project["optional-dependencies"]
    pins = [(extra, dep) for extra, deps in extras.items() for dep in deps if dep.startswith("accelerate")]
    assert pins == [("trainer", "accelerate>=1.1")], pins
    assert "hf_lrsched[trainer]" in extras["examples"]


@pytest.mark.slow
def test_sdist_and_wheel_carry_the_license_and_pass_twine_check(tmp_path):
    """Build as a release would (`python -m build`) and check both files as PyPI renders them."""
    build = subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (sdist,) = tmp_path.glob("hf_lrsched-*.tar.gz")
    (wheel,) = tmp_path.glob("hf_lrsched-*.whl")
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(sdist), str(wheel)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    license_text = (ROOT / "LICENSE").read_text()
    with tarfile.open(sdist) as archive:
        root = sdist.name.removesuffix(".tar.gz")
        assert archive.extractfile(f"{root}/LICENSE").read().decode() == license_text
    with zipfile.ZipFile(wheel) as archive:
        (dist_info,) = {name.split("/")[0] for name in archive.namelist() if ".dist-info/" in name}
        assert archive.read(f"{dist_info}/licenses/LICENSE").decode() == license_text
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    headers = metadata.split("\n\n", 1)[0]
    assert "License-Expression: Apache-2.0" in headers and "License-File: LICENSE" in headers
    assert "Description-Content-Type: text/markdown" in headers
    assert "Project-URL: Source, https://github.com/hf-lrsched/hf_lrsched" in headers
    assert "Classifier: Programming Language :: Python :: 3.13" in headers
    assert metadata.split("\n\n", 1)[1].strip() == (ROOT / "README.md").read_text().strip()
