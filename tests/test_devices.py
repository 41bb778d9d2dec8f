"""GPU claims of parallel jobs (devices.claim_gpu): fake GPUs, only the assignment is checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# one job: say it is ready, wait for the go file, claim a GPU of 2, report it, hold it for HOLD_S
JOB = """
import json, os, sys, time
from pathlib import Path
from kerascv_emotion.devices import claim_gpu
go, hold, lock_dir = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
gpu = claim_gpu(2, lock_dir)
print(json.dumps({"gpu": gpu, "claimed": time.time(), "env": os.environ["CUDA_VISIBLE_DEVICES"]}), flush=True)
time.sleep(hold)
"""
HOLD_S = 3.0


def _start_jobs(count: int, lock_dir: Path, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    """``count`` jobs released at the same instant, once every one of them is up."""
    go = lock_dir.parent / "go"
    jobs = [subprocess.Popen([sys.executable, "-c", JOB, str(go), str(HOLD_S), str(lock_dir)],
                             stdout=subprocess.PIPE, text=True, env=env) for _ in range(count)]
    for job in jobs:
        assert job.stdout is not None and job.stdout.readline() == "ready\n"
    go.touch()
    return jobs


def test_jobs_starting_at_the_same_instant_get_different_gpus_and_a_third_waits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = str(REPO)
    jobs = _start_jobs(3, tmp_path / "locks", env)
    claims = sorted((json.loads(job.communicate(timeout=60)[0]) for job in jobs), key=lambda c: c["claimed"])
    first, second, third = claims
    assert {first["gpu"], second["gpu"]} == {0, 1}
    assert [c["env"] for c in claims] == [str(c["gpu"]) for c in claims]
    # the third waited until one of the first two exited, then took its GPU
    assert third["gpu"] in (0, 1)
    assert third["claimed"] - first["claimed"] >= HOLD_S - 0.5


def test_a_gpu_set_by_the_scheduler_is_kept(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="1")
    claim = json.loads(_start_jobs(1, tmp_path / "locks", env)[0].communicate(timeout=60)[0])
    assert claim["gpu"] is None and claim["env"] == "1"
    assert not (tmp_path / "locks").exists()  # no lock taken
