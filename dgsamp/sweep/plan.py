"""From a sweep file and an output directory to job directories and their states.

``plan_sweep`` expands the YAML (after ``--set`` overrides) into jobs, checks each as
``dgsamp train`` would (dropping flags where they have no effect: ``ineffective``); each job's directory
is ``output_dir/<job id>`` and its command adds, outside the hashed argv, the
``--output_dir`` of that directory, the sweep's W&B group, and an optional W&B mode.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError
from dgsamp.sweep.config import SweepConfig, load_sweep_config
from dgsamp.sweep.expand import SweepJob, expand_sweep
from dgsamp.sweep.ineffective import drop_ineffective_flags
from dgsamp.sweep.jobs import JobLock, JobState, job_state
from dgsamp.sweep.launchers import PlannedJob

INCOMPLETE_ASIDE = "_incomplete"


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    config: SweepConfig
    output_dir: Path
    jobs: list[SweepJob]
    notes: list[str] = dataclasses.field(default_factory=list)  # flags dropped where they have no effect

    def job_dir(self, job: SweepJob) -> Path:
        return self.output_dir / job.job_id

    def planned(self, job: SweepJob, wandb_mode: str | None = None) -> PlannedJob:
        """The job with the flags the launcher adds: output dir, W&B group, W&B mode."""
        extra = [f"--output_dir={self.job_dir(job)}"]
        if not any(token.startswith("--wandb_group") for token in job.argv):
            extra.append(f"--wandb_group={self.config.name}")
        if wandb_mode is not None:
            extra.append(f"--wandb={wandb_mode}")
        return PlannedJob(self.job_dir(job), (*job.argv, *extra))

    def job_states(self) -> list[tuple[SweepJob, JobState]]:
        """Every job with its state, in sweep order."""
        return [(job, job_state(self.job_dir(job))) for job in self.jobs]

    def states(self) -> dict[JobState, list[SweepJob]]:
        """The jobs grouped by state (sweep order within each group)."""
        grouped: dict[JobState, list[SweepJob]] = {state: [] for state in JobState}
        for job, state in self.job_states():
            grouped[state].append(job)
        return grouped


def parse_overrides(assignments: list[str] | None) -> dict[str, Any]:
    """``["data_dir=/data/pacs", "epochs=3"]`` -> ``{"data_dir": "/data/pacs", "epochs": 3}``.

    A value is read as JSON when it is JSON (numbers, true/false, lists), else kept as text:
    ``gradsamp=off`` stays the string "off" (YAML would have made it False).
    """
    overrides: dict[str, Any] = {}
    for assignment in assignments or []:
        name, sep, text = assignment.partition("=")
        if not sep or not name:
            raise UserError(f"--set expects NAME=VALUE, got {assignment!r}")
        try:
            overrides[name] = json.loads(text)
        except ValueError:
            overrides[name] = text
    return overrides


def plan_sweep(
    sweep_file: str | Path,
    output_dir: str | Path,
    count: int | None = None,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
) -> SweepPlan:
    """Load, override (each override becomes a constant parameter) and expand a sweep."""
    config = load_sweep_config(sweep_file)
    if overrides:
        parameters = dict(config.parameters)
        parameters.update({name: {"value": value} for name, value in overrides.items()})
        config = dataclasses.replace(config, parameters=parameters)
    jobs, notes = drop_ineffective_flags(expand_sweep(config, count=count, seed=seed), sweep_file)
    return SweepPlan(config, Path(output_dir), jobs, notes)


def set_incomplete_aside(plan: SweepPlan, delete: bool) -> tuple[list[Path], Path | None]:
    """Move (or, with ``delete``, remove) every incomplete job directory of the sweep.

    A job whose lock is held (running) is never touched: the lock is taken for the move.
    Returns the directories handled and where they were moved (None when deleted).
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = None if delete else plan.output_dir / INCOMPLETE_ASIDE / stamp
    handled = []
    for job in plan.states()[JobState.INCOMPLETE]:
        job_dir = plan.job_dir(job)
        lock = JobLock(job_dir)
        if not lock.try_acquire():
            continue  # started since we looked: leave it alone
        try:
            if job_state_locked_incomplete(job_dir):
                if aside is None:
                    shutil.rmtree(job_dir)
                else:
                    aside.mkdir(parents=True, exist_ok=True)
                    job_dir.rename(aside / job_dir.name)
                handled.append(job_dir)
        finally:
            lock.release()
    return handled, aside


def job_state_locked_incomplete(job_dir: Path) -> bool:
    """While we hold the lock: still there and still without ``done``."""
    return job_dir.is_dir() and not (job_dir / "done").exists()
