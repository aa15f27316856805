"""``dgsamp sweep launch`` end to end: real training subprocesses on the embedded PACSMini.

Every job trains a tiny timm test network at 32 px for a step or two, so the jobs are real
``dgsamp train`` runs that finish in seconds. Slurm cannot exist here: its test puts fake
``sbatch``/``srun`` executables on PATH (the only mocked part: the cluster) and checks the
submission script submitit generates from our parameters.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dgsamp.sweep.jobs import read_launches, write_job_record
from dgsamp.sweep.launchers import run_locally
from dgsamp.sweep.plan import parse_overrides, plan_sweep
from tests.helpers import REPO

pytestmark = pytest.mark.slow

PACS_MINI = REPO / "sweeps" / "pacs_mini.yaml"
TINY = [
    "backbone=test_efficientnet", "resolution=32", "pretrained=none", "epochs=3",
    "steps_per_epoch=2", "batch_size=8", "energy=none", "progress=lines", "num_workers=0",
]


def sets(*assignments: str) -> list[str]:
    return [token for assignment in (*TINY, *assignments) for token in ("--set", assignment)]


def dgsamp_command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "dgsamp", *argv]


def environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", **extra}


def run_dgsamp(*argv: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(dgsamp_command(*argv), capture_output=True, text=True, env=environment(**env),
                          cwd=REPO, timeout=600, stdin=subprocess.DEVNULL)


def job_dirs(out: Path, *assignments: str) -> list[Path]:
    plan = plan_sweep(PACS_MINI, out, overrides=parse_overrides([*TINY, *assignments]))
    return [plan.job_dir(job) for job in plan.jobs]


def results(job_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (job_dir / "results.jsonl").read_text().splitlines()]


def test_four_job_sweep_runs_to_completion_and_a_second_launch_starts_nothing(tmp_path):
    out = tmp_path / "sweep"
    first = run_dgsamp("sweep", "launch", str(PACS_MINI), "--output_dir", str(out),
                       "--max_parallel", "2", *sets())
    assert first.returncode == 0, first.stdout + first.stderr
    assert "pacs_mini: 4 jobs, 0 done, 0 running elsewhere, 4 to run" in first.stdout
    assert "finished 4, failed 0" in first.stdout

    dirs = job_dirs(out)
    assert sorted(path.name for path in out.iterdir()) == sorted(path.name for path in dirs)
    seen = set()
    for job_dir in dirs:
        assert (job_dir / "done").exists()
        records = results(job_dir)
        assert len(records) == 3  # epochs=3: GradSamp needs two epochs before a sampled one
        record = records[-1]
        seen.add((record["args"]["gradsamp"], tuple(record["args"]["test_envs"])))
        assert record["args"]["output_dir"] == str(job_dir)
        assert len(read_launches(job_dir)) == 1
        argv = json.loads((job_dir / "job.json").read_text())["argv"]
        assert f"--test_envs={record['args']['test_envs'][0]}" in argv
    assert seen == {("off", (0,)), ("off", (1,)), ("periodic", (0,)), ("periodic", (1,))}

    status = run_dgsamp("sweep", "status", str(PACS_MINI), "--output_dir", str(out), *sets())
    assert "4 jobs: done 4, running 0, incomplete 0, not launched 0" in status.stdout

    stamps = {d: (d / "results.jsonl").stat().st_mtime_ns for d in dirs}
    again = run_dgsamp("sweep", "launch", str(PACS_MINI), "--output_dir", str(out),
                       "--max_parallel", "2", *sets())
    assert again.returncode == 0, again.stderr
    assert "4 jobs, 4 done, 0 running elsewhere, 0 to run" in again.stdout
    assert "finished 0, failed 0" in again.stdout
    assert all(len(read_launches(d)) == 1 for d in dirs)
    assert stamps == {d: (d / "results.jsonl").stat().st_mtime_ns for d in dirs}


def test_a_job_killed_mid_run_shows_incomplete_and_the_next_launch_finishes_it(tmp_path):
    out = tmp_path / "sweep"
    one_job = sets("test_envs=0", "gradsamp=off", "epochs=4")
    (job_dir,) = job_dirs(out, "test_envs=0", "gradsamp=off", "epochs=4")
    launcher = subprocess.Popen(
        dgsamp_command("sweep", "launch", str(PACS_MINI), "--output_dir", str(out), *one_job),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(), cwd=REPO,
    )
    while not (job_dir / "results.jsonl").exists():  # wait for the first finished epoch
        assert launcher.poll() is None, launcher.communicate()
        time.sleep(0.05)
    (launch,) = read_launches(job_dir)
    os.kill(launch["pid"], signal.SIGKILL)
    stdout, _ = launcher.communicate(timeout=120)
    assert launcher.returncode == 1
    assert "finished 0, failed 1" in stdout and f"failed: {job_dir.name} (-9)" in stdout
    assert not (job_dir / "done").exists()

    status = run_dgsamp("sweep", "status", str(PACS_MINI), "--output_dir", str(out), *one_job)
    assert "1 jobs: done 0, running 0, incomplete 1, not launched 0" in status.stdout

    rerun = run_dgsamp("sweep", "launch", str(PACS_MINI), "--output_dir", str(out), *one_job)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 jobs, 0 done, 0 running elsewhere, 1 to run" in rerun.stdout
    assert "finished 1, failed 0" in rerun.stdout
    assert (job_dir / "done").exists()
    assert [record["epoch"] for record in results(job_dir)] == [1, 2, 3, 4]
    assert len(read_launches(job_dir)) == 2


def test_two_workers_on_one_sweep_directory_never_run_the_same_job(tmp_path):
    out = tmp_path / "sweep"
    two_jobs = sets("gradsamp=off")
    command = dgsamp_command("sweep", "launch", str(PACS_MINI), "--output_dir", str(out),
                             "--max_parallel", "1", *two_jobs)
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=environment(), cwd=REPO) for _ in range(2)]
    outputs = [worker.communicate(timeout=600)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], outputs
    for job_dir in job_dirs(out, "gradsamp=off"):
        assert (job_dir / "done").exists()
        assert len(read_launches(job_dir)) == 1, job_dir
    finished = sum(int(text.split("finished ")[1].split(",")[0]) for text in outputs)
    assert finished == 2


def test_local_launcher_gives_each_concurrent_job_its_own_gpu(tmp_path):
    """GPU ids are only handed out here (no GPU exists): each job gets its own CUDA_VISIBLE_DEVICES."""
    out = tmp_path / "sweep"
    plan = plan_sweep(PACS_MINI, out, overrides=parse_overrides([*TINY, "test_envs=0"]))
    planned = [plan.planned(job) for job in plan.jobs]
    for job, ready in zip(plan.jobs, planned):
        write_job_record(ready.job_dir, job.argv, str(PACS_MINI))
    report = run_locally(planned, max_parallel=4, gpus=["3", "5"])
    assert sorted(report.finished) == sorted(p.job_dir.name for p in planned) and not report.failed
    assert sorted(read_launches(p.job_dir)[0]["gpu"] for p in planned) == ["3", "5"]


def test_submitit_local_executor_runs_a_two_job_sweep(tmp_path):
    out = tmp_path / "sweep"
    two_jobs = sets("test_envs=1")
    result = run_dgsamp("sweep", "launch", str(PACS_MINI), "--output_dir", str(out),
                        "--launcher", "submitit_local", "--max_parallel", "2", *two_jobs)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "finished 2, failed 0" in result.stdout
    for job_dir in job_dirs(out, "test_envs=1"):
        assert (job_dir / "done").exists()
        assert [entry["launcher"] for entry in read_launches(job_dir)] == ["submitit_local"]
    assert any((out / "_submitit").iterdir())


FAKE_SBATCH = """#!/bin/sh
# Stands in for the Slurm cluster (none exists here): keep the script, answer like sbatch.
cp "$1" "{log}/submitted_$(ls {log} | wc -l).sh"
echo "Submitted batch job 4242"
"""


def test_slurm_submission_parameters(tmp_path):
    fake_bin, log = tmp_path / "bin", tmp_path / "sbatch_log"
    fake_bin.mkdir()
    log.mkdir()
    (fake_bin / "sbatch").write_text(FAKE_SBATCH.format(log=log))
    (fake_bin / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit only checks that it exists
    for tool in ("sbatch", "srun"):
        (fake_bin / tool).chmod(0o755)
    out = tmp_path / "sweep"
    result = run_dgsamp(
        "sweep", "launch", str(PACS_MINI), "--output_dir", str(out), "--launcher", "slurm",
        "--max_parallel", "3", "--slurm_partition", "gpu-short", "--slurm_time", "90",
        "--gpus_per_job", "1", "--cpus_per_job", "6", "--mem_gb", "24", *sets(),
        PATH=f"{fake_bin}:{os.environ['PATH']}",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "submitted 4" in result.stdout and "slurm job ids: 4242 (array of 4)" in result.stdout
    (script,) = log.iterdir()
    lines = set(script.read_text().splitlines())
    for expected in ("#SBATCH --partition=gpu-short", "#SBATCH --time=90", "#SBATCH --gpus-per-node=1",
                     "#SBATCH --array=0-3%3", "#SBATCH --cpus-per-task=6", "#SBATCH --mem=24GB",
                     "#SBATCH --ntasks-per-node=1", "#SBATCH --nodes=1", "#SBATCH --job-name=pacs_mini"):
        assert expected in lines, (expected, sorted(lines))
    for job_dir in job_dirs(out):  # argv recorded; nothing runs until Slurm starts the array
        assert json.loads((job_dir / "job.json").read_text())["argv"]
        assert not (job_dir / "done").exists() and read_launches(job_dir) == []
