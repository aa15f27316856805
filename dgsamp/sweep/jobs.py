"""Job directories of a sweep: names, argv records, locks and states.

    <sweep output_dir>/<job id>/     job id = first 20 hex digits of sha256(json(argv))
        job.json      {"argv": [...]} the ``dgsamp train`` flags (written atomically)
        .lock         flock()ed by the worker running the job, for the job's whole life
        launches.jsonl  one line per start: time, host, launcher, pid, gpu
        out.txt, err.txt, results.jsonl, checkpoint.pt, ...   the run itself
        done          written by ``dgsamp train`` when the run finished

A job is DONE when ``done`` exists, RUNNING when another process holds its lock,
INCOMPLETE when its directory exists otherwise, NOT_LAUNCHED when there is no directory.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import socket
import time
from pathlib import Path

from dgsamp.utils.atomic import atomic_write_json
from dgsamp.utils.dir_lock import LOCK_FILE, DirLock

JOB_RECORD = "job.json"
LAUNCH_LOG = "launches.jsonl"
DONE_MARKER = "done"


class JobState(enum.Enum):
    DONE = "done"
    RUNNING = "running"
    INCOMPLETE = "incomplete"
    NOT_LAUNCHED = "not launched"


def job_id_of(argv: tuple[str, ...] | list[str]) -> str:
    """A stable directory name for a job: sha256 of its argv as a JSON list, 20 hex digits."""
    return hashlib.sha256(json.dumps(list(argv)).encode("utf-8")).hexdigest()[:20]


JobLock = DirLock  # the job's lock is its run directory's lock: ``dgsamp train`` takes the same one


def is_locked(job_dir: Path) -> bool:
    """Whether some process holds the job's lock right now."""
    if not (Path(job_dir) / LOCK_FILE).exists():
        return False
    probe = JobLock(job_dir)
    if probe.try_acquire():
        probe.release()
        return False
    return True


def job_state(job_dir: Path) -> JobState:
    job_dir = Path(job_dir)
    if not job_dir.is_dir():
        return JobState.NOT_LAUNCHED
    if (job_dir / DONE_MARKER).exists():
        return JobState.DONE
    if is_locked(job_dir):
        return JobState.RUNNING
    return JobState.INCOMPLETE


def write_job_record(job_dir: Path, argv: tuple[str, ...] | list[str], sweep_file: str) -> None:
    """Store the job's argv (once; a rerun keeps the original record)."""
    job_dir.mkdir(parents=True, exist_ok=True)
    record = job_dir / JOB_RECORD
    if not record.exists():
        atomic_write_json(record, {"argv": list(argv), "sweep_file": sweep_file})


def read_job_argv(job_dir: Path) -> list[str] | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        return list(json.loads((Path(job_dir) / JOB_RECORD).read_text())["argv"])
    return None


def log_launch(job_dir: Path, launcher: str, pid: int, gpu: str | None = None) -> None:
    """Append one line (a single small O_APPEND write) to the job's launch history."""
    line = json.dumps(
        {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "host": socket.gethostname(),
         "launcher": launcher, "pid": pid, "gpu": gpu}
    ) + "\n"
    fd = os.open(Path(job_dir) / LAUNCH_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)


def read_launches(job_dir: Path) -> list[dict]:
    path = Path(job_dir) / LAUNCH_LOG
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
