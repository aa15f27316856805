"""The run directory: checked to hold this run (or none), created writable, or an old one moved
aside (never deleted)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError
from dgsamp.training.checkpoint import load_checkpoint


def prepare_run_dir(output_dir: str | Path, no_resume: bool) -> Path:
    """Create ``output_dir``; with ``no_resume`` first move an existing one to ``<dir>.old-<time>``."""
    run_dir = Path(output_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output dir {run_dir} is not writable: it is a file")
    if no_resume and run_dir.is_dir() and any(run_dir.iterdir()):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = run_dir.with_name(f"{run_dir.name}.old-{stamp}")
        counter = 1
        while aside.exists():  # never move into (or over) an earlier aside
            aside, counter = run_dir.with_name(f"{run_dir.name}.old-{stamp}-{counter}"), counter + 1
        shutil.move(str(run_dir), aside)
        print(f"moved the previous run aside to {aside}")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise UserError(f"output dir {run_dir} is not writable: {error.strerror}") from None
    return run_dir


def finished_job_id(output_dir: str | Path) -> str | None:
    """The job id of a finished run in ``output_dir`` (its ``done`` marker exists), else None."""
    run_dir = Path(output_dir)
    if not (run_dir / "done").is_file():
        return None
    try:
        return json.loads((run_dir / "summary.json").read_text())["job_id"]
    except (OSError, ValueError, KeyError):
        return ""


@dataclass
class ExistingRun:
    """What ``output_dir`` already holds for this run: nothing, a checkpoint, or a finished run."""

    done: bool = False
    checkpoint: dict[str, Any] | None = None


def open_run_dir(output_dir: str | Path, job_id: str, no_resume: bool) -> ExistingRun:
    """Look at ``output_dir`` without changing it and refuse a different run's directory.

    The one identity check: a finished run is identified by its ``summary.json``, a run in
    progress by its checkpoint. With ``no_resume`` nothing is read (the directory will be
    moved aside by ``prepare_run_dir``).
    """
    run_dir = Path(output_dir)
    if no_resume or not run_dir.is_dir():
        return ExistingRun()
    finished = finished_job_id(run_dir)
    checkpoint = None if finished is not None else load_checkpoint(run_dir)
    found = finished if finished is not None else (checkpoint or {}).get("job_id")
    if found is not None and found != job_id:
        state = " (finished)" if finished is not None else ""
        raise UserError(
            f"{run_dir} holds a checkpoint of a different run{state}; pick another --output_dir "
            "or pass --no_resume to move it aside"
        )
    return ExistingRun(done=finished is not None, checkpoint=checkpoint)
