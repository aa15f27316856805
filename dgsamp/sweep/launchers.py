"""Run sweep jobs: parallel local processes, or submitit (local executor or Slurm).

Every job runs ``python -m dgsamp.cli train <argv> --output_dir=<job dir>`` with its log in
``job_dir/out.txt`` and ``err.txt``, under the job's lock (see ``jobs.JobLock``): a worker
that cannot take the lock skips the job, and a worker that takes it re-checks ``done``
first, so two workers on one sweep directory never run the same job. A job directory
without ``done`` is rerun with the same ``--output_dir``; the trainer resumes from its
checkpoint.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError
from dgsamp.sweep.jobs import DONE_MARKER, JobLock, log_launch
from dgsamp.utils.dir_lock import INHERITED_FD_VAR

POLL_SECONDS = 0.2


@dataclass(frozen=True)
class PlannedJob:
    """A job ready to start: its directory and the full ``dgsamp train`` flags."""

    job_dir: Path
    argv: tuple[str, ...]


@dataclass
class LaunchReport:
    """What one launch did, by job directory name."""

    finished: list[str] = field(default_factory=list)
    failed: dict[str, int | str] = field(default_factory=dict)  # name -> exit code or reason
    skipped_done: list[str] = field(default_factory=list)
    skipped_running: list[str] = field(default_factory=list)
    submitted: list[str] = field(default_factory=list)  # slurm: handed to the scheduler

    def lines(self) -> list[str]:
        parts = [
            f"finished {len(self.finished)}", f"failed {len(self.failed)}",
            f"already done {len(self.skipped_done)}",
            f"running elsewhere {len(self.skipped_running)}",
        ]
        if self.submitted:
            parts.append(f"submitted {len(self.submitted)}")
        lines = [", ".join(parts)]
        lines += [f"  failed: {name} ({why}); log: {name}/err.txt" for name, why in self.failed.items()]
        return lines


def train_command(argv: tuple[str, ...] | list[str]) -> list[str]:
    return [sys.executable, "-m", "dgsamp.cli", "train", *argv]


def visible_gpus() -> list[str]:
    """GPU ids to hand out one per job: CUDA_VISIBLE_DEVICES if set, else every CUDA device."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [gpu.strip() for gpu in declared.split(",") if gpu.strip() and gpu.strip() != "-1"]
    try:
        import torch
    except ImportError:
        return []
    return [str(index) for index in range(torch.cuda.device_count())]


def start_train_process(
    job: PlannedJob, lock: JobLock, launcher: str, gpu: str | None = None, threads: int | None = None
) -> subprocess.Popen:
    """Start the training process; it inherits the lock (named in ``DGSAMP_LOCK_FD``, so
    ``dgsamp train`` knows it holds it), and the job stays locked while it lives."""
    assert lock.fd is not None
    env = {**os.environ, INHERITED_FD_VAR: str(lock.fd)}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    if threads is not None and "OMP_NUM_THREADS" not in os.environ:
        env["OMP_NUM_THREADS"] = str(threads)
    with open(job.job_dir / "out.txt", "ab") as out, open(job.job_dir / "err.txt", "ab") as err:
        process = subprocess.Popen(
            train_command(job.argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
            env=env, pass_fds=(lock.fd,), start_new_session=True,
        )
    log_launch(job.job_dir, launcher, process.pid, gpu)
    return process


def run_locally(jobs: list[PlannedJob], max_parallel: int, gpus: list[str] | None = None) -> LaunchReport:
    """Run ``jobs`` as subprocesses, at most ``max_parallel`` at once and one per GPU if any."""
    if max_parallel < 1:
        raise UserError(f"--max_parallel must be at least 1, got {max_parallel}")
    gpus = visible_gpus() if gpus is None else gpus
    slots = min(max_parallel, len(gpus)) if gpus else max_parallel
    threads = None if gpus else max(1, (os.cpu_count() or 1) // slots)
    free_gpus = deque(gpus)
    pending = deque(jobs)
    running: dict[subprocess.Popen, tuple[PlannedJob, JobLock, str | None]] = {}
    report = LaunchReport()
    try:
        while pending or running:
            while pending and len(running) < slots:
                job = pending.popleft()
                lock = _claim(job, report)
                if lock is None:
                    continue
                gpu = free_gpus.popleft() if gpus else None
                process = start_train_process(job, lock, "local", gpu, threads)
                running[process] = (job, lock, gpu)
            for process in [p for p in running if p.poll() is not None]:
                job, lock, gpu = running.pop(process)
                lock.release()
                if gpu is not None:
                    free_gpus.append(gpu)
                _record_exit(job, process.returncode, report)
            if running:
                time.sleep(POLL_SECONDS)
    finally:  # interrupted (Ctrl-C): stop our children; their job dirs stay incomplete
        for process, (_, lock, _) in running.items():
            process.terminate()
            process.wait()
            lock.release()
    return report


def _claim(job: PlannedJob, report: LaunchReport) -> JobLock | None:
    """Take the job's lock and check it still needs running; None if it does not."""
    name = job.job_dir.name
    if (job.job_dir / DONE_MARKER).exists():
        report.skipped_done.append(name)
        return None
    lock = JobLock(job.job_dir)
    if not lock.try_acquire():
        report.skipped_running.append(name)
        return None
    if (job.job_dir / DONE_MARKER).exists():  # finished by another worker just before
        lock.release()
        report.skipped_done.append(name)
        return None
    return lock


def _record_exit(job: PlannedJob, returncode: int, report: LaunchReport) -> None:
    name = job.job_dir.name
    if returncode == 0 and (job.job_dir / DONE_MARKER).exists():
        report.finished.append(name)
    else:
        report.failed[name] = returncode if returncode != 0 else "exited 0 without a done marker"


def run_job_locked(job_dir: str, argv: list[str], launcher: str) -> str:
    """Run one job in this process's worker slot (the function submitit pickles and runs).

    Returns ``finished``, ``done`` (nothing to do), ``running elsewhere`` or ``failed (code)``.
    """
    job = PlannedJob(Path(job_dir), tuple(argv))
    report = LaunchReport()
    lock = _claim(job, report)
    if lock is None:
        return "done" if report.skipped_done else "running elsewhere"
    try:
        process = start_train_process(job, lock, launcher)
        process.wait()
    finally:
        lock.release()
    _record_exit(job, process.returncode, report)
    return "finished" if report.finished else f"failed ({next(iter(report.failed.values()))})"


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    time_min: int = 60
    gpus_per_job: int = 1
    cpus_per_job: int | None = None
    mem_gb: float | None = None

    def executor_parameters(self, max_parallel: int, job_name: str) -> dict[str, Any]:
        """submitit AutoExecutor parameters: one task per job, an array of at most max_parallel."""
        parameters: dict[str, Any] = {
            "name": job_name,
            "timeout_min": self.time_min,
            "gpus_per_node": self.gpus_per_job,
            "tasks_per_node": 1,
            "nodes": 1,
            "slurm_array_parallelism": max_parallel,
        }
        if self.partition:
            parameters["slurm_partition"] = self.partition
        if self.cpus_per_job:
            parameters["cpus_per_task"] = self.cpus_per_job
        if self.mem_gb:
            parameters["mem_gb"] = self.mem_gb
        return parameters


def make_executor(cluster: str, folder: Path, parameters: dict[str, Any]):
    """A submitit AutoExecutor for ``cluster`` ("local" or "slurm") with ``parameters``."""
    try:
        import submitit
    except ImportError:
        raise UserError("the submitit launchers need submitit: pip install 'dgsamp[slurm]'") from None
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
    except RuntimeError as error:  # no srun on this machine
        raise UserError(f"cannot use --launcher slurm here: {error}") from None
    executor.update_parameters(**parameters)
    return executor


def run_with_submitit_local(jobs: list[PlannedJob], max_parallel: int, folder: Path) -> LaunchReport:
    """Run ``jobs`` through submitit's local executor, at most ``max_parallel`` at once; waits."""
    executor = make_executor("local", folder, {"timeout_min": 24 * 60, "gpus_per_node": 0})
    pending = deque(jobs)
    running: dict[Any, PlannedJob] = {}
    report = LaunchReport()
    while pending or running:
        while pending and len(running) < max_parallel:
            job = pending.popleft()
            submitted = executor.submit(run_job_locked, str(job.job_dir), list(job.argv), "submitit_local")
            running[submitted] = job
        for submitted in [j for j in running if j.done()]:
            _record_outcome(running.pop(submitted), _outcome(submitted), report)
        if running:
            time.sleep(POLL_SECONDS)
    return report


def submit_to_slurm(
    jobs: list[PlannedJob], max_parallel: int, folder: Path, options: SlurmOptions, job_name: str
) -> tuple[LaunchReport, list[str]]:
    """Submit ``jobs`` as one Slurm job array and return at once with the Slurm job ids."""
    report = LaunchReport()
    if not jobs:
        return report, []
    executor = make_executor("slurm", folder, options.executor_parameters(max_parallel, job_name))
    submitted = executor.map_array(
        run_job_locked,
        [str(job.job_dir) for job in jobs],
        [list(job.argv) for job in jobs],
        ["slurm"] * len(jobs),
    )
    report.submitted = [job.job_dir.name for job in jobs]
    return report, [j.job_id for j in submitted]


def _outcome(submitted) -> str:
    try:
        return submitted.result()
    except Exception as error:  # the job's Python process itself failed
        return f"failed ({type(error).__name__}: {error})"


def _record_outcome(job: PlannedJob, outcome: str, report: LaunchReport) -> None:
    name = job.job_dir.name
    if outcome == "finished":
        report.finished.append(name)
    elif outcome == "done":
        report.skipped_done.append(name)
    elif outcome == "running elsewhere":
        report.skipped_running.append(name)
    else:
        report.failed[name] = outcome
