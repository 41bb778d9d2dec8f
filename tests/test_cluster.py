"""GPU workers and SLURM: the resources each job asks for (dry runs), and the default workflow
with tiny settings run through the SLURM profile on a real cluster (`.ci/slurm up`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import tiny_default_config

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"
GPU_RULES = {"train", "tune", "tune_valence_arousal", "distill"}


def _snakemake(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _planned_resources(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, resources) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"\n(?=\[.*\]\nrule )|\n(?=rule )", output):
        rule = re.search(r"^rule (\w+):", block, flags=re.MULTILINE)
        resources = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        if rule and resources:
            jobs.append((rule.group(1), dict(item.split("=", 1) for item in resources.group(1).split(", "))))
    return jobs


def _write_config(path: Path, **top: object) -> Path:
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config.update(top)
    path.write_text(yaml.safe_dump(config))
    return path


def test_gpus_mark_train_and_tune_jobs_and_evaluate_only_when_configured(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "gpus.yaml", gpus=2, resources={"tune": {"gpu": False}})
    result = _snakemake("-n", "--cores", "4", "--resources", "gpu=2", "--configfile", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = _planned_resources(result.stdout)
    assert {rule for rule, _ in jobs} >= GPU_RULES | {"evaluate"}
    for rule, resources in jobs:
        assert (resources.get("gpu") == "1") == (rule in GPU_RULES - {"tune"}), (rule, resources)

    config = _write_config(tmp_path / "eval-gpu.yaml", gpus=1, resources={"evaluate": {"gpu": True}})
    result = _snakemake("-n", "-p", "--cores", "4", "--configfile", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert all(res.get("gpu") == "1" for rule, res in _planned_resources(result.stdout) if rule == "evaluate")
    hidden = [line for line in result.stdout.splitlines() if "CUDA_VISIBLE_DEVICES=" in line]
    assert all("kerascv_emotion ensemble " in line for line in hidden)  # every other TensorFlow job claims a GPU


def test_slurm_profile_plans_every_job_with_its_slurm_resources(tmp_path: Path) -> None:
    config = _write_config(tmp_path / "slurm.yaml", gpus=1, resources={
        "default": {"mem_mb": 2000, "runtime": 30, "account": "lab"},
        "train": {"mem_mb": 16000, "runtime": 600, "partition": "gpu"}})
    result = _snakemake("-n", "--workflow-profile", str(PROFILE), "--configfile", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [(rule, res) for rule, res in _planned_resources(result.stdout) if rule != "all"]
    assert len(jobs) == 31 and {rule for rule, _ in jobs} >= GPU_RULES
    for rule, res in jobs:
        expected = {"mem_mb": "16000", "runtime": "600", "slurm_partition": "gpu"} if rule == "train" else \
            {"mem_mb": "2000", "runtime": "30"}
        assert {key: res.get(key) for key in expected} == expected, (rule, res)
        assert res["slurm_account"] == "lab"
        assert ("slurm_partition" in res) == (rule == "train")
        assert (res.get("gpu") == "1") == (rule in GPU_RULES), (rule, res)


def _slurm_is_up() -> bool:
    if shutil.which("sinfo") is None:
        return False
    states = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
    return states.returncode == 0 and bool(re.search(r"idle|mix|alloc", states.stdout))


def _slurm_jobs(job_ids: list[str]) -> dict[str, dict[str, str]]:
    """Comment (rule and wildcards), state, start and end time of finished jobs still held by squeue."""
    out = subprocess.run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", "%i|%k|%T|%S|%e"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return {job_id: {"comment": comment, "state": state, "start": start, "end": end}
            for job_id, comment, state, start, end in (line.split("|") for line in out.splitlines())}


@pytest.mark.slurm
@pytest.mark.skipif(not _slurm_is_up(), reason="no SLURM cluster is up here; `.ci/slurm up` (root) starts one, as CI does")
def test_default_workflow_runs_as_slurm_jobs_with_one_gpu_each(tmp_path: Path) -> None:
    # two fake GPUs (TensorFlow finds none and runs on the CPU); one thread a job so that two
    # jobs fit on a 2-CPU node at once
    config = tiny_default_config(bootstrap=50, gpus=2, threads_per_job=1,
                                 resources={"default": {"mem_mb": 1000, "runtime": 20}})
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(config))
    result = _snakemake("--workflow-profile", str(PROFILE), "--configfile", str(small), "--slurm-keep-successful-logs",
                        cwd=tmp_path, timeout=1500)
    assert result.returncode == 0, result.stderr[-5000:]
    results = tmp_path / "results"
    for name in config["datasets"]:
        assert (results / name / "comparison" / "comparison.html").is_file()

    # every job (all but the target rule `all`) ran as a SLURM job and completed
    logs = sorted((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    planned = int(re.search(r"^total\s+(\d+)$", result.stdout + result.stderr, flags=re.MULTILINE).group(1))
    assert len(logs) == planned - 1, [str(p) for p in logs]
    jobs = _slurm_jobs([log.stem for log in logs])
    assert len(jobs) == len(logs) and all(job["state"] == "COMPLETED" for job in jobs.values()), jobs

    # GPU jobs that overlapped in time saw different CUDA_VISIBLE_DEVICES (recorded in config.json).
    # Whether two overlap is SLURM's scheduling, so it is not required here (that would race the
    # scheduler); distinct claims of simultaneous jobs are pinned with held locks in test_devices.py.
    gpu_jobs = []
    for job in jobs.values():
        match = re.match(r"rule_(\w+?)_wildcards_([^_]+)_(.+)$", job["comment"])
        if match and match.group(1) in GPU_RULES:
            rule, dataset, arch = match.groups()
            run = arch + {"train": "", "tune": "-tuned", "tune_valence_arousal": "-va", "distill": ""}[rule]
            run_config = json.loads((results / dataset / run / "config.json").read_text())
            gpu_jobs.append((job["start"], job["end"], run_config["devices"]["cuda_visible_devices"]))
    assert len(gpu_jobs) == 5
    assert all(gpu in ("0", "1") for _, _, gpu in gpu_jobs), gpu_jobs
    overlapping = [(a, b) for i, a in enumerate(gpu_jobs) for b in gpu_jobs[i + 1:] if a[0] < b[1] and b[0] < a[1]]
    assert all(a[2] != b[2] for a, b in overlapping), overlapping
