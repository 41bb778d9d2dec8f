"""The workflow's code: `snakefmt --check` and `snakemake --lint` find nothing but the lints
listed (and justified) in ALLOWED_LINTS."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "workflow/rules"]

# Lints that are wrong for this workflow, by title, and why. Each must still occur (the test
# fails when one is fixed, so the list only shrinks) and only for rules.
ALLOWED_LINTS = {
    "Specify a conda environment or container for each rule.":
        "every rule runs the kerascv-emotion CLI of the interpreter that runs Snakemake, whose "
        "environment is the package's own (pip install -e '.[workflow]'): a per-rule conda "
        "environment or container would be a second copy of it that the CLI call does not use",
    "Shell command directly uses variable CLI from outside of the rule":
        "CLI is `<sys.executable> -m kerascv_emotion`, an interpreter path and no input of the "
        "results: as a param (or in the shell text) it would rerun every job whenever the "
        "workflow runs from another virtual environment",
}


def test_workflow_is_snakefmt_formatted() -> None:
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "--diff", *WORKFLOW_FILES],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]


def _lints(output: str) -> list[tuple[str, str]]:
    """(subject, title) of each finding of `snakemake --lint`'s text output: subject
    `rule NAME` or `snakefile PATH`."""
    found, subject = [], None
    for line in output.splitlines():
        header = re.match(r"Lints for (rule \S+|snakefile \S+?)(?: \(.*\))?:$", line)
        if header:
            subject = header.group(1)
            continue
        item = re.match(r" {4}\* (.+):$", line)
        if item:
            assert subject is not None, output[-3000:]
            found.append((subject, item.group(1)))
    return found


def test_snakemake_lint_finds_only_the_allowed_lints(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--lint",
                             "--configfile", str(REPO / "config.yaml")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    lints = _lints(output)
    assert lints or (result.returncode == 0 and "Congratulations" in output), output[-3000:]
    unexpected = [(subject, title) for subject, title in lints
                  if title not in ALLOWED_LINTS or not subject.startswith("rule ")]
    assert not unexpected, unexpected
    assert {title for _, title in lints} == set(ALLOWED_LINTS), "an allowed lint is fixed: remove it"
