"""GPU claims of parallel jobs (devices.claim_gpu): fake GPUs, only the assignment is checked."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]

# one job: say it is ready, wait for the go file, claim a GPU of 2, report it, hold it until
# its stdin is closed (the test decides when a GPU comes free; no timing is assumed)
JOB = """
import json, logging, os, sys, time
from pathlib import Path
from kerascv_emotion.devices import claim_gpu
logging.basicConfig(format="%(message)s")
go, lock_dir = Path(sys.argv[1]), sys.argv[2]
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
gpu = claim_gpu(2, lock_dir)
print(json.dumps({"gpu": gpu, "env": os.environ["CUDA_VISIBLE_DEVICES"]}), flush=True)
sys.stdin.read()
"""
WAIT_S = 60  # bound on each wait for a job's next line (a hang fails instead)


def _start_jobs(count: int, lock_dir: Path, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    """``count`` jobs released at the same instant, once every one of them is up."""
    go = lock_dir.parent / "go"
    jobs = [subprocess.Popen([sys.executable, "-c", JOB, str(go), str(lock_dir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(count)]
    for job in jobs:
        assert job.stdout is not None and job.stdout.readline() == "ready\n"
    go.touch()
    return jobs


def _readable(streams: list[IO[str]], timeout: float) -> list[IO[str]]:
    return select.select(streams, [], [], timeout)[0]


def _release(job: subprocess.Popen[str]) -> None:
    """Let ``job`` exit (and so free its GPU)."""
    assert job.stdin is not None and job.stderr is not None
    job.stdin.close()
    assert job.wait(timeout=WAIT_S) == 0, job.stderr.read()


def test_jobs_starting_at_the_same_instant_get_different_gpus_and_a_third_waits(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    env["PYTHONPATH"] = str(REPO)
    jobs = _start_jobs(3, tmp_path / "locks", env)
    try:
        claims: dict[int, dict] = {}  # job index -> its claim, for the two that hold a GPU
        outputs = [job.stdout for job in jobs if job.stdout is not None]
        while len(claims) < 2:
            ready = _readable([out for i, out in enumerate(outputs) if i not in claims], WAIT_S)
            assert ready, f"no second claim in {WAIT_S} s: {claims}"
            for out in ready:
                claims[outputs.index(out)] = json.loads(out.readline())
        assert sorted(c["gpu"] for c in claims.values()) == [0, 1]
        assert all(c["env"] == str(c["gpu"]) for c in claims.values())
        (third,) = (job for i, job in enumerate(jobs) if i not in claims)
        assert third.stdout is not None and third.stderr is not None
        assert _readable([third.stderr], WAIT_S), "the third job neither claimed nor said it waits"
        assert "all 2 GPUs are claimed" in third.stderr.readline()
        assert not _readable([third.stdout], 0)  # both GPUs are still held

        freed, kept = claims.items()
        _release(jobs[freed[0]])
        assert _readable([third.stdout], WAIT_S), f"the third job did not take GPU {freed[1]['gpu']}"
        assert json.loads(third.stdout.readline()) == freed[1]  # the freed GPU, and only it visible
        for job in (jobs[kept[0]], third):
            _release(job)
    finally:
        for job in jobs:
            job.kill()
            job.wait()


def test_a_gpu_set_by_the_scheduler_is_kept(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="1")
    claim = json.loads(_start_jobs(1, tmp_path / "locks", env)[0].communicate(timeout=60)[0])
    assert claim["gpu"] is None and claim["env"] == "1"
    assert not (tmp_path / "locks").exists()  # no lock taken
