"""The run directory: created writable, or an old one moved aside (never deleted)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from dgsamp.errors import UserError


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
