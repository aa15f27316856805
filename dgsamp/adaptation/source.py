"""The finished run a test-time adaptation starts from, and the weights of its selected model.

    source = read_source("runs/erm0")     # one-line UserError when it cannot be adapted

A source is a finished dgsamp run (``results.jsonl``, ``summary.json``, ``done``) trained
with ``--keep_checkpoints selected``: its ``selected_model.pt`` holds the model that
training-domain validation selects (:func:`dgsamp.tracking.schema.best_training_domain_record`),
and its epoch and step must be those of the selected results line. A DiWA ensemble
(``dgsamp ensemble --method diwa_*``) is a source too: its one model is in ``model.pt``.
Only files are read here; nothing is built.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgsamp.errors import UserError
from dgsamp.leaderboard.runs import DONE_FILE, RESULTS_FILE, read_results_file
from dgsamp.tracking import schema
from dgsamp.tracking.adaptation_naming import ARG_ADAPTATION
from dgsamp.tracking.ensemble_naming import ARG_ENSEMBLE, EOA
from dgsamp.training.selected_model import SELECTED_MODEL_FILE

SUMMARY_FILE = "summary.json"
MODEL_FILE = "model.pt"


@dataclass(frozen=True)
class Source:
    """A run to adapt: its args and hparams (those it was built with), the selected results
    line, its summary and the selected model's weights."""

    path: Path
    args: dict[str, Any]
    hparams: dict[str, Any]
    build_args: dict[str, Any]  # what rebuilds the network (an ensemble's: its first member's)
    build_hparams: dict[str, Any]
    selected: dict[str, Any]
    last: dict[str, Any]
    summary: dict[str, Any]
    state: dict[str, Tensor]

    @property
    def job_id(self) -> str:
        return str(self.summary[schema.JOB_ID])

    @property
    def test_envs(self) -> tuple[int, ...]:
        return tuple(int(env) for env in self.args[schema.ARG_TEST_ENVS])


def _load(path: Path) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
        reason = " ".join(str(error).split())[:160]
        raise UserError(f"{path} is unreadable ({type(error).__name__}: {reason}); retrain that run") from None


def _first_member(run_dir: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """args and hparams of an ensemble's first member (what its averaged weights fit)."""
    member_dirs = spec.get("member_dirs") or []
    records = read_results_file(Path(member_dirs[0]) / RESULTS_FILE, []) if member_dirs else []
    if not records or not isinstance(records[0].get(schema.ARGS), dict):
        raise UserError(f"{run_dir} is an ensemble whose members are gone ({member_dirs[:1]}); "
                        "its network cannot be rebuilt without them")
    return records[0][schema.ARGS], records[0].get(schema.HPARAMS) or {}


def read_source(path: str | Path) -> Source:
    """The run at ``path``, checked as the module docstring says."""
    run_dir = Path(path)
    if not (run_dir / RESULTS_FILE).is_file():
        raise UserError(f"{run_dir} is not a run directory (no {RESULTS_FILE}); pass a finished run's directory")
    records = read_results_file(run_dir / RESULTS_FILE, [])
    args = records[0].get(schema.ARGS) if records else None
    if not isinstance(args, dict):
        raise UserError(f"{run_dir} has no results line with args; it is not a dgsamp run")
    if ARG_ADAPTATION in args:
        raise UserError(f"{run_dir} is already a test-time adaptation; adapt the run it came from")
    missing = [name for name in (DONE_FILE, SUMMARY_FILE) if not (run_dir / name).is_file()]
    if missing:
        raise UserError(f"{run_dir} is not a finished run (no {missing[0]}); let it finish first")
    try:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{run_dir / SUMMARY_FILE} is unreadable ({error}); retrain that run") from None
    hparams = records[0].get(schema.HPARAMS) or {}
    test_envs = [int(env) for env in args[schema.ARG_TEST_ENVS]]
    selected, _ = schema.best_training_domain_record(records, test_envs)
    ensemble = args.get(ARG_ENSEMBLE)
    if isinstance(ensemble, dict):
        if ensemble.get("method") == EOA:
            raise UserError(f"{run_dir} is an EoA ensemble (several models' mean logits), which has no one model "
                            "to adapt: adapt its members, or a DiWA ensemble")
        build_args, build_hparams = _first_member(run_dir, ensemble)
        saved = _load(run_dir / MODEL_FILE) if (run_dir / MODEL_FILE).is_file() else None
        if saved is None:
            raise UserError(f"{run_dir} has no {MODEL_FILE}; rebuild the ensemble")
        state = saved["state_dict"]
    else:
        build_args, build_hparams = args, hparams
        if not (run_dir / SELECTED_MODEL_FILE).is_file():
            raise UserError(f"{run_dir} kept no {SELECTED_MODEL_FILE}; train it with --keep_checkpoints selected "
                            "to adapt the model that model selection picks")
        saved = _load(run_dir / SELECTED_MODEL_FILE)
        kept = (saved.get(schema.EPOCH), saved.get(schema.STEP))
        if kept != (selected[schema.EPOCH], selected[schema.STEP]):
            raise UserError(f"{run_dir / SELECTED_MODEL_FILE} holds epoch {kept[0]} but model selection picks epoch "
                            f"{selected[schema.EPOCH]} of results.jsonl; the run directory was changed, retrain it")
        state = saved["state_dict"]
    return Source(run_dir.resolve(), args, hparams, build_args, build_hparams, dict(selected), records[-1],
                  summary, state)
