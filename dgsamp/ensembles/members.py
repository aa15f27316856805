"""Finished runs as ensemble members: found, filtered, and checked to belong together.

    members, notes = find_members(["runs/sweep"], where={"algorithm": "ERM", "model_ema": True})
    check_members(members, "eoa")          # one-line UserError when they cannot form an ensemble

A member is a run directory with ``results.jsonl``, ``done``, ``summary.json`` and
``model.pt``. Its model is the one its last results line reports: ``evaluated_state_dict``
of model.pt when a training mode evaluated its own average (EMA, SMA, SWAD), else the
online ``state_dict``. Every check here reads files only; nothing is built or evaluated.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dgsamp.errors import UserError
from dgsamp.leaderboard.runs import (
    DONE_FILE,
    RESULTS_FILE,
    find_run_dirs,
    read_results_file,
    variant_from_args,
)
from dgsamp.tracking import schema
from dgsamp.tracking.ensemble_naming import ARG_ENSEMBLE, DIWA_GREEDY, EOA, WEIGHT_AVERAGING

MODEL_FILE = "model.pt"
SUMMARY_FILE = "summary.json"
SAME_DATA = (schema.ARG_DATASET, schema.ARG_TEST_ENVS, schema.ARG_TASK, schema.ARG_PROTOCOL,
             "holdout_fraction", "uda_holdout_fraction", "unlabeled_split", "eval_augmentation")
SAME_NETWORK = (schema.ARG_BACKBONE, "resolution", schema.ARG_ALGORITHM)
SAME_LENGTH = (schema.ARG_EPOCHS, "steps")
SAME_INIT = ("seed", "pretrained", "pretrained_file")  # DiWA: one initialisation for all


@dataclass(frozen=True)
class Member:
    """One finished run: its args, hparams, last results line (the model model.pt holds) and summary."""

    path: Path
    args: dict[str, Any]
    hparams: dict[str, Any]
    last: dict[str, Any]
    summary: dict[str, Any]

    @property
    def job_id(self) -> str:
        return str(self.summary[schema.JOB_ID])

    @property
    def test_envs(self) -> tuple[int, ...]:
        return tuple(int(env) for env in self.args[schema.ARG_TEST_ENVS])

    @property
    def trial_seed(self) -> int:
        return int(self.args[schema.ARG_TRIAL_SEED])

    @property
    def evaluated_model(self) -> str:
        """``online``, or the averaging mode's model (``ema``, ``sma``, ``swad``)."""
        return str(self.last.get(schema.EVALUATED_MODEL, schema.ONLINE))

    @property
    def validation_accuracy(self) -> float:
        """Training-domain validation accuracy of the member's model: mean ``env{i}_out_acc``
        over the training domains of its last line (fraction)."""
        return schema.training_domain_accuracy(self.last, self.test_envs)

    def load_state(self) -> dict[str, Tensor]:
        """The weights of the model the last line reports (on the CPU)."""
        path = self.path / MODEL_FILE
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as error:
            reason = " ".join(str(error).split())[:160]
            raise UserError(f"{path} is unreadable ({type(error).__name__}: {reason}); retrain that run "
                            "or leave it out") from None
        return saved.get("evaluated_state_dict") or saved["state_dict"]


def parse_where(items: Sequence[str]) -> dict[str, Any]:
    """``["algorithm=ERM", "model_ema=true"]`` -> ``{"algorithm": "ERM", "model_ema": True}``
    (a value is read as JSON when it is JSON, else as text)."""
    where: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--where takes KEY=VALUE (an args key of the runs), got '{item}'")
        try:
            where[key] = json.loads(text)
        except json.JSONDecodeError:
            where[key] = text
    return where


def _matches(value: Any, wanted: Any) -> bool:
    """``args[key] == wanted``; a list arg such as ``test_envs`` also matches one element."""
    if isinstance(value, list) and not isinstance(wanted, list):
        return value == [wanted]
    return value == wanted


def _candidate_dirs(paths: Sequence[str | Path], notes: list[str]) -> list[Path]:
    """Run directories given, or found under the folders given; ensembles found in folders are skipped."""
    found: list[Path] = []
    for given in paths:
        root = Path(given)
        if not root.is_dir():
            raise UserError(f"run directory not found: {root}; pass finished run directories or folders of them")
        if (root / RESULTS_FILE).is_file():
            found.append(root)
            continue
        for run_dir in find_run_dirs(root):
            first = read_results_file(run_dir / RESULTS_FILE, [])[:1]
            if first and isinstance(first[0].get(schema.ARGS), dict) and ARG_ENSEMBLE in first[0][schema.ARGS]:
                notes.append(f"{run_dir} is an ensemble; skipped")
                continue
            found.append(run_dir)
    unique = list(dict.fromkeys(path.resolve() for path in found))
    if not unique:
        raise UserError(f"no {RESULTS_FILE} under {', '.join(map(str, paths))}; pass finished run directories")
    return unique


def _read_member(run_dir: Path, notes: list[str]) -> Member:
    records = read_results_file(run_dir / RESULTS_FILE, notes)
    args = records[0].get(schema.ARGS) if records else None
    if not isinstance(args, dict):
        raise UserError(f"{run_dir} has no results line with args; it is not a dgsamp run")
    if ARG_ENSEMBLE in args:
        raise UserError(f"{run_dir} is an ensemble; pass the runs it was built from")
    missing = [name for name in (DONE_FILE, SUMMARY_FILE, MODEL_FILE) if not (run_dir / name).is_file()]
    if missing:
        raise UserError(f"{run_dir} is not a finished run (no {missing[0]}); let it finish or leave it out")
    try:
        summary = json.loads((run_dir / SUMMARY_FILE).read_text())
    except (OSError, ValueError) as error:
        raise UserError(f"{run_dir / SUMMARY_FILE} is unreadable ({error}); retrain that run or leave it out") \
            from None
    return Member(run_dir, args, records[0].get(schema.HPARAMS) or {}, records[-1], summary)


def find_members(paths: Sequence[str | Path], where: Mapping[str, Any] | None = None,
                 notes: list[str] | None = None) -> list[Member]:
    """The finished runs in ``paths`` (run directories, or folders searched recursively) whose
    args match every ``where`` item, sorted by directory. Refuses unfinished runs and a run
    given twice; ``notes`` receives what was skipped."""
    notes = [] if notes is None else notes
    chosen = []
    for run_dir in _candidate_dirs(paths, notes):
        first = read_results_file(run_dir / RESULTS_FILE, [])[:1]
        args = first[0].get(schema.ARGS) if first else None
        if where and isinstance(args, dict) and not all(_matches(args.get(k), v) for k, v in where.items()):
            continue
        chosen.append(run_dir)
    if not chosen:
        wanted = " ".join(f"{key}={json.dumps(value)}" for key, value in (where or {}).items())
        raise UserError(f"no run under {', '.join(map(str, paths))} matches --where {wanted}")
    members = [_read_member(run_dir, notes) for run_dir in sorted(chosen)]
    seen: dict[str, Path] = {}
    for member in members:
        if member.job_id in seen:
            raise UserError(f"{seen[member.job_id]} and {member.path} are the same run (job {member.job_id}); "
                            "pass it once")
        seen[member.job_id] = member.path
    return members


def _first_difference(members: Sequence[Member], value) -> tuple[Member, Member, Any, Any] | None:
    for member in members[1:]:
        if value(member) != value(members[0]):
            return members[0], member, value(members[0]), value(member)
    return None


def _refuse(difference: tuple[Member, Member, Any, Any], what: str, hint: str) -> None:
    a, b, va, vb = difference
    raise UserError(f"cannot ensemble {a.path} and {b.path}: they differ in {what} ({va} vs {vb}); {hint}")


def check_members(members: Sequence[Member], method: str) -> list[str]:
    """Refuse, in one line, members that cannot form a ``method`` ensemble; return warnings.

    All methods: one dataset, test domains, task, protocol, data split settings, backbone,
    resolution, algorithm, length and training modes (so the ensemble is one leaderboard
    row). DiWA also needs one initialisation: the same ``seed`` (which draws every randomly
    initialised weight) and the same pretrained weights; ``diwa_greedy`` needs one trial
    seed (its validation split). Architectures are compared entry by entry when the weights
    are averaged (:func:`dgsamp.ensembles.weight_average.check_same_structure`).
    """
    together = "an ensemble's members share dataset, test domains, backbone, algorithm and training modes"
    for key in (*SAME_DATA, *SAME_NETWORK, *SAME_LENGTH):
        difference = _first_difference(members, lambda m, key=key: m.args.get(key))
        if difference:
            _refuse(difference, key, together)
    difference = _first_difference(members, lambda m: variant_from_args(m.args).base_label())
    if difference:
        _refuse(difference, "training modes", together)
    if method in WEIGHT_AVERAGING:
        hint = ("DiWA averages weights, so its members need one shared initialisation: train them with "
                "one --seed and the same pretrained weights (trial and hparams seeds may differ), or use --method eoa")
        for key in SAME_INIT:
            difference = _first_difference(members, lambda m, key=key: m.args.get(key))
            if difference:
                _refuse(difference, f"initialisations ({key})", hint)
        difference = _first_difference(members, lambda m: m.last.get(schema.WEIGHTS))
        if difference:
            _refuse(difference, "initialisations (weights)", hint)
    if method == DIWA_GREEDY:
        seeds = sorted({member.trial_seed for member in members})
        if len(seeds) > 1:
            raise UserError(
                f"--method diwa_greedy selects on the training domains' validation split, which needs one trial "
                f"seed; the runs have trial seeds {', '.join(map(str, seeds))}: pick one with --where trial_seed=N"
            )
    warnings = []
    online = [member for member in members if member.evaluated_model == schema.ONLINE]
    if method == EOA and online:
        warnings.append(f"{len(online)} of {len(members)} members evaluate their online weights, not a moving "
                        "average: EoA ensembles averaged models (train them with --sma or --model_ema)")
    seeds = sorted({member.trial_seed for member in members})
    if len(seeds) > 1:
        warnings.append(f"members come from trial seeds {', '.join(map(str, seeds))}: the ensemble is evaluated "
                        f"on the splits of trial seed {seeds[0]}, whose training-domain out-splits other members "
                        "trained on (its validation accuracy is optimistic; test domains are unaffected)")
    return warnings
