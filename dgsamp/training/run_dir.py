"""The run directory: checked to hold this run (or none), created writable, or an old one moved
aside (never deleted).

A directory that holds files but no dgsamp run (no results, checkpoint, summary or sweep job
record) is refused: training into it would mix the run with unrelated files. ``--no_resume``
moves whatever it holds aside into ``<dir>.old-<time>`` (the lock file stays: the running
process holds it).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError
from dgsamp.training.checkpoint import CHECKPOINT_NAME, load_checkpoint
from dgsamp.utils.dir_lock import LOCK_FILE

RUN_FILES = frozenset({"results.jsonl", CHECKPOINT_NAME, "summary.json", "done", "failed.json", "model.pt",
                       "job.json", "wandb"})  # any of them: a dgsamp run (job.json: a sweep job not yet started)


def entries(run_dir: Path) -> list[Path]:
    """What ``run_dir`` holds besides the lock file."""
    return sorted(path for path in run_dir.iterdir() if path.name != LOCK_FILE)


def check_holds_a_run_or_nothing(run_dir: Path) -> None:
    """Refuse a ``run_dir`` holding visible files none of which dgsamp writes (hidden files,
    such as the lock and temp files of interrupted atomic writes, do not count)."""
    found = [path for path in entries(run_dir) if not path.name.startswith(".")] if run_dir.is_dir() else []
    if found and not any(path.name in RUN_FILES for path in found):
        raise UserError(
            f"--output_dir {run_dir} holds {len(found)} other file(s) (e.g. {found[0].name}) and no dgsamp run; "
            "pick a new or empty directory, or pass --no_resume to move its contents aside"
        )


def aside_path(run_dir: Path) -> Path:
    """A new ``<dir>.old-<time>[-n]`` beside ``run_dir`` (``.`` works too: its real name is used)."""
    real = run_dir.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = real.with_name(f"{real.name}.old-{stamp}")
    counter = 1
    while aside.exists():  # never move into (or over) an earlier aside
        aside, counter = real.with_name(f"{real.name}.old-{stamp}-{counter}"), counter + 1
    return aside


def prepare_run_dir(output_dir: str | Path, no_resume: bool) -> Path:
    """Create ``output_dir``; with ``no_resume`` first move what it holds to ``<dir>.old-<time>``."""
    run_dir = Path(output_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"output dir {run_dir} is not writable: it is a file")
    if no_resume and run_dir.is_dir() and entries(run_dir):
        aside = aside_path(run_dir)
        aside.mkdir()
        for path in entries(run_dir):  # the lock file stays with the process that holds it
            shutil.move(str(path), aside / path.name)
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
    check_holds_a_run_or_nothing(run_dir)
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
