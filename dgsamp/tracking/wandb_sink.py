"""Weights & Biases as a sink for the per-epoch records (results.jsonl stays the source of truth).

    sink = WandbSink("offline", "dgsamp", None, "pacs-sweep", ["erm"], config, run_dir, job_id)
    sink.log_epoch(record)     # one history row per epoch, W&B step = epoch
    sink.finish(summary)       # run summary, then close the run

``mode="disabled"`` never imports wandb. Any W&B failure (wandb missing, no API key in
online mode, an init error, a full disk) prints ONE warning line to stderr and turns the
sink off: training goes on and results.jsonl is complete either way.

W&B files live in ``run_dir/wandb``; the run id is kept in ``run_dir/wandb/dgsamp_run_id``
so a run restarted in the same directory continues the same W&B run (``resume="allow"``).
Under ``wandb agent`` the agent's run id (``WANDB_RUN_ID``) wins, so the run joins its sweep.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dgsamp import __version__
from dgsamp.tracking import schema
from dgsamp.utils.atomic import atomic_write_text

MODES = ("disabled", "offline", "online")
WANDB_DIR = "wandb"  # under the run directory
RUN_ID_FILE = "dgsamp_run_id"  # under WANDB_DIR


def run_metadata() -> dict[str, Any]:
    """dgsamp's version and, when dgsamp runs from a git checkout, its commit and dirty flag."""
    metadata: dict[str, Any] = {"dgsamp_version": __version__, "git_commit": None, "git_dirty": None}
    source = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return metadata
    metadata.update(git_commit=commit or None, git_dirty=bool(changes))
    return metadata


def new_run_id() -> str:
    """A W&B-style run id: 8 random lowercase letters and digits."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def history_row(record: dict[str, Any]) -> dict[str, Any]:
    """The W&B history row of one results.jsonl record.

    Every int/float metric (bools as 0/1; nulls left out, so a GradSamp epoch has no loss),
    every string field (``epoch_kind``, ``energy_source``, a training mode's own fields) but
    the backbone's ``weights`` (in the config), and, for every kind of epoch
    besides backprop that the record counts (``<kind>_epochs``), ``is_<kind>_epoch`` (0/1,
    e.g. ``is_gradsamp_epoch``) for plotting; nested ``args``/``hparams`` go to the config,
    not the history.
    """
    row: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, bool):
            row[key] = int(value)
        elif isinstance(value, int | float) or (isinstance(value, str) and key != schema.WEIGHTS):
            row[key] = value
    if schema.EPOCH_KIND in record:
        for counter in schema.epoch_counters(record):
            kind = schema.kind_of_counter(counter)
            if kind != schema.BACKPROP:
                row[schema.is_kind_epoch(kind)] = int(record[schema.EPOCH_KIND] == kind)
    return row


class WandbSink:
    """Mirror of results.jsonl into a W&B run; a no-op when disabled or after any failure."""

    def __init__(
        self,
        mode: str,
        project: str | None,
        entity: str | None,
        group: str | None,
        tags: list[str],
        config: dict[str, Any],
        run_dir: Path,
        job_id: str,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"W&B mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.run_dir = Path(run_dir)
        self.run = None
        self.active = mode != "disabled"
        if not self.active:
            return
        with self._guard("could not start the W&B run"):
            self.run = self._start(project, entity, group, tags, config, job_id)

    @property
    def wandb_dir(self) -> Path:
        return self.run_dir / WANDB_DIR

    def _start(self, project, entity, group, tags, config, job_id):
        import wandb

        self.wandb_dir.mkdir(parents=True, exist_ok=True)
        run_id = self._run_id()
        full_config = {**run_metadata(), **config, schema.JOB_ID: job_id}
        run = wandb.init(
            mode=self.mode, project=project, entity=entity, group=group, tags=list(tags) or None,
            config=full_config, dir=str(self.run_dir), id=run_id, resume="allow",
            name=self.run_dir.name, allow_val_change=True,
            settings=wandb.Settings(silent=True, console="off"),
        )
        atomic_write_text(self.wandb_dir / RUN_ID_FILE, run.id + "\n")
        where = f"sync with: wandb sync {Path(run.dir).parent}" if self.mode == "offline" else run.url
        print(f"W&B {self.mode} run {run.id}: {where}", file=sys.stderr)
        return run

    def _run_id(self) -> str:
        stored = self.wandb_dir / RUN_ID_FILE
        if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
            return os.environ["WANDB_RUN_ID"]
        if stored.exists():
            return stored.read_text().strip()
        return new_run_id()

    def log_epoch(self, record: dict[str, Any]) -> None:
        """One history row at W&B step ``record["epoch"]``."""
        if not self.active:
            return
        with self._guard("could not log an epoch to W&B"):
            self.run.log(history_row(record), step=int(record[schema.EPOCH]), commit=True)

    def finish(self, summary: dict[str, Any]) -> None:
        """Write ``summary`` into the run summary and close the run (uploads, online)."""
        if not self.active:
            return
        with self._guard("could not finish the W&B run"):
            import wandb

            self.run.summary.update(dict(summary))
            self.run.finish()
            # wandb 0.31 writes the .wandb file asynchronously; teardown waits until it is
            # complete on disk, so a finished run can be read back (or synced) at once
            wandb.teardown()
        self.active = False

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        try:
            yield
        except Exception as error:  # W&B is a sink: nothing it does may stop training
            self._disable(f"{what}: {type(error).__name__}: {error}")

    def _disable(self, reason: str) -> None:
        reason = " ".join(str(reason).split())
        print(f"dgsamp: warning: W&B logging turned off ({reason}); "
              f"results.jsonl in {self.run_dir} is unaffected", file=sys.stderr)
        self.active = False
        run, self.run = self.run, None
        if run is not None:
            with contextlib.suppress(Exception):
                run.finish(exit_code=1)
            with contextlib.suppress(Exception):
                import wandb

                wandb.teardown()  # flush what was logged before the failure
