"""Run records read from directories: dgsamp runs and DomainBed runs, mixed.

A run is one directory holding ``results.jsonl`` (one JSON record per evaluation) and,
when it finished, an empty ``done`` marker. dgsamp and DomainBed write the same keys for
what the leaderboard needs (``args.{dataset,algorithm,test_envs,hparams_seed,trial_seed}``,
``step``, ``env{i}_in_acc``, ``env{i}_out_acc``); dgsamp adds energy and FLOPs fields.
A DomainBed run has none of them: its energy is unmeasured and no training mode is on.
Key names come from :mod:`dgsamp.tracking.schema`.

Like DomainBed's ``collect_results``, every record of every run counts, finished or not;
a line that is not complete JSON (the torn last line of a run that was killed while
writing) is skipped with a warning.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError
from dgsamp.leaderboard.record_check import record_problem
from dgsamp.leaderboard.run_protocol import run_backbone, run_protocol
from dgsamp.leaderboard.variant import Variant, mode_class, variant_from_args
from dgsamp.tracking import schema

RESULTS_FILE = "results.jsonl"
DONE_FILE = "done"
REQUIRED_ARGS = schema.REQUIRED_ARGS


def is_usable(record: Mapping[str, Any]) -> bool:
    """A record the leaderboard can read: a ``step`` and some domain's ``env{i}_in_acc`` and
    ``env{i}_out_acc`` (a domain-adaptation run evaluates only its sources and targets, so
    domain 0 may be absent)."""
    return schema.STEP in record and any(schema.env_in_acc(env) in record for env in schema.evaluated_envs(record))


@dataclass(frozen=True)
class Run:
    """One run: its args, hyperparameters and records (file order)."""

    path: str
    args: dict[str, Any]
    hparams: dict[str, Any]
    records: tuple[dict[str, Any], ...]
    done: bool
    source: str  # "dgsamp", "domainbed" or "wandb"

    @property
    def dataset(self) -> str:
        return str(self.args[schema.ARG_DATASET])

    @property
    def test_envs(self) -> tuple[int, ...]:
        return tuple(int(env) for env in self.args[schema.ARG_TEST_ENVS])

    @property
    def hparams_seed(self) -> int:
        return int(self.args[schema.ARG_HPARAMS_SEED])

    @property
    def trial_seed(self) -> int:
        return int(self.args[schema.ARG_TRIAL_SEED])

    @property
    def task(self) -> str:
        return str(self.args.get(schema.ARG_TASK) or "domain_generalization")

    @functools.cached_property
    def variant(self) -> Variant:
        """The run's method; an averaging mode whose average was never evaluated (the last line
        reports the online model) is not part of it: the row must not claim the average."""
        variant = variant_from_args(self.args)
        for name in never_evaluated_modes(variant, self.last):
            variant = variant.with_mode(name, None)
        return variant

    @property
    def protocol(self) -> str:
        """The protocol preset (``run_protocol``: DomainBed's own runs are ``domainbed2020``)."""
        return run_protocol(self.args, self.hparams, self.source == "domainbed")

    @property
    def backbone(self) -> str:
        """The backbone (``run_protocol``: DomainBed's ResNet-50 is ``resnet50.tv_in1k``)."""
        return run_backbone(self.args, self.hparams, self.source == "domainbed")

    @property
    def num_envs(self) -> int:
        """Number of domains: consecutive ``env{i}_out_acc`` keys in the first record."""
        return schema.count_envs(self.records[0])

    @property
    def last(self) -> dict[str, Any]:
        return self.records[-1]

    @property
    def total_train_energy_J(self) -> float | None:
        """Training energy of the whole run (cumulative at its last record); None if unmeasured."""
        return _finite_or_none(self.last.get(schema.CUM_TRAIN_ENERGY_J))

    @property
    def total_train_flops(self) -> float | None:
        return _finite_or_none(self.last.get(schema.CUM_TRAIN_FLOPS))

    @property
    def backprop_epochs(self) -> int | None:
        value = self.last.get(schema.BACKPROP_EPOCHS)
        return None if value is None else int(value)


def never_evaluated_modes(variant: Variant, last: Mapping[str, Any]) -> list[str]:
    """Modes of ``variant`` that choose the evaluated model, when ``last`` (a run's last line)
    says the online model was evaluated (``evaluated_model``): their average never was."""
    if last.get(schema.EVALUATED_MODEL) != schema.ONLINE:
        return []
    return [name for name in variant.mode_names
            if getattr(mode_class(name), "CHOOSES_EVALUATED_MODEL", False)]


def _finite_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class RunSet:
    """The runs found plus what was skipped and why (printed by the CLI as warnings)."""

    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_records(self) -> int:
        return sum(len(run.records) for run in self.runs)


def read_results_file(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """Complete JSON lines of one results.jsonl; a torn or corrupt line, or one that breaks the
    results schema (``record_check``), is skipped with a warning naming the file and line."""
    records = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        warnings.append(f"{path}: cannot read ({error.strerror}); run skipped")
        return []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            warnings.append(f"{path}:{number}: incomplete JSON line skipped")
            continue
        if not isinstance(record, dict):
            warnings.append(f"{path}:{number}: not a JSON object; line skipped")
            continue
        problem = record_problem(record)
        if problem:
            warnings.append(f"{path}:{number}: {problem}; line skipped")
            continue
        records.append(record)
    return records


def run_from_records(
    path: str, records: list[dict[str, Any]], done: bool, warnings: list[str], source: str = ""
) -> Run | None:
    """Build a :class:`Run`, or None (with a warning) when the records cannot be used."""
    if not records:
        warnings.append(f"{path}: no records; run skipped")
        return None
    args = records[0].get(schema.ARGS)
    if not isinstance(args, dict):
        warnings.append(f"{path}: first record has no 'args'; run skipped")
        return None
    missing = [key for key in REQUIRED_ARGS if key not in args]
    if missing:
        warnings.append(f"{path}: args lack {', '.join(missing)}; run skipped")
        return None
    usable = []
    for record in records:
        if is_usable(record):
            usable.append(record)
    if not usable:
        warnings.append(f"{path}: no record has step and env{{i}}_in_acc/env{{i}}_out_acc; run skipped")
        return None
    if not source:
        dgsamp_keys = (schema.CUM_TRAIN_FLOPS, schema.EPOCH_KIND)
        source = "dgsamp" if any(key in usable[0] for key in dgsamp_keys) else "domainbed"
    hparams = records[0].get(schema.HPARAMS) or {}
    run = Run(path, args, hparams, tuple(usable), done, source)
    for name in never_evaluated_modes(variant_from_args(args), run.last):
        warnings.append(f"{path}: --{name} never evaluated its average (the last line reports the online "
                        "model); the run is counted without it")
    return run


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under (or equal to) ``root`` that holds a results.jsonl, following
    symbolic links to directories (each real directory is visited once, so a link cycle ends)."""
    if (root / RESULTS_FILE).is_file():
        return [root]
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders.clear()
            continue
        seen.add(real)
        if RESULTS_FILE in files and (Path(folder) / RESULTS_FILE).is_file():
            found.append(Path(folder))
    return sorted(found)


def load_runs(paths: Iterable[str | Path]) -> RunSet:
    """Read every run under each path (a run directory or a folder of runs, any depth)."""
    result = RunSet()
    for given in paths:
        root = Path(given)
        if not root.exists():
            raise UserError(f"run directory not found: {root}; pass a folder of run directories")
        if not root.is_dir():
            raise UserError(f"not a directory: {root}; pass a folder of run directories")
        try:
            run_dirs = find_run_dirs(root)
        except OSError as error:
            raise UserError(f"cannot read {root}: {error.strerror}; check its permissions") \
                from error
        if not run_dirs:
            result.warnings.append(f"{root}: no {RESULTS_FILE} found")
        for run_dir in run_dirs:
            records = read_results_file(run_dir / RESULTS_FILE, result.warnings)
            done = (run_dir / DONE_FILE).exists()
            run = run_from_records(str(run_dir), records, done, result.warnings)
            if run is not None:
                result.runs.append(run)
    if not result.runs:
        where = ", ".join(str(path) for path in paths)
        raise UserError(
            f"no runs found under {where}; each run directory needs a {RESULTS_FILE} "
            "with args and env{i}_in_acc/out_acc records"
        )
    return result


def load_wandb_runs(project: str, api: Any = None) -> RunSet:
    """Runs of a W&B project through the public API (``wandb.Api().runs(project)``).

    Each W&B run becomes one :class:`Run`: ``run.config`` is its args (``hparams`` inside
    it, if present, its hyperparameters) and every history row holding ``env0_in_acc``
    is one record. Needs network access to a W&B server, so it is not tested here.
    """
    if api is None:
        try:
            import wandb
        except ImportError as error:
            raise UserError("wandb is not installed; pip install wandb") from error
        try:
            api = wandb.Api()
        except Exception as error:  # wandb raises many types for auth/network problems
            raise UserError(f"cannot reach W&B ({error}); run `wandb login` or go online") \
                from error
    result = RunSet()
    try:
        wandb_runs = list(api.runs(project))
    except Exception as error:
        raise UserError(f"cannot list W&B project '{project}': {error}") from error
    for wandb_run in wandb_runs:
        config = dict(wandb_run.config)
        hparams = config.pop(schema.HPARAMS, {}) or {}
        records = []
        for row in wandb_run.scan_history():
            if is_usable(row):
                records.append({**row, schema.ARGS: config, schema.HPARAMS: hparams})
        done = getattr(wandb_run, "state", "") == "finished"
        run = run_from_records(f"wandb:{project}/{wandb_run.id}", records, done,
                               result.warnings, source="wandb")
        if run is not None:
            result.runs.append(run)
    if not result.runs:
        raise UserError(f"no runs with env{{i}}_in_acc history found in W&B project '{project}'")
    return result


def group_runs(runs: Sequence[Run], key) -> dict[Any, list[Run]]:
    """Runs grouped by ``key(run)``, groups in first-seen order, runs in input order."""
    groups: dict[Any, list[Run]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups
