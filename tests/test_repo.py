"""Repository promises: README's set-up commands and .ci/run agree; packaging keeps
Snakemake (and AGPL albumentationsx) out of the library's own dependencies."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL)
    return [line for block in blocks[:2] for line in block.splitlines() if line and not line.startswith("#")]


def test_readme_opens_with_main_job_and_test_commands() -> None:
    main_job, tests = _readme_commands()[:2]
    assert "snakemake --cores 4" in main_job and '.[workflow]' in main_job
    assert tests.startswith("pip install") and tests.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    tests = _readme_commands()[1]
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci


def test_library_dependencies_exclude_workflow_and_agpl() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "snakemake" not in core
    assert "albumentationsx" not in " ".join(core.split()) and "albumentations>=2.0,<2.1" in core
    assert any("snakemake" in d for d in project["optional-dependencies"]["workflow"])
    assert project["scripts"]["kerascv-emotion"] == "kerascv_emotion.cli:main"
