"""Run records read from directories: dgsamp runs and DomainBed runs, mixed.

A run is one directory holding ``results.jsonl`` (one JSON record per evaluation) and,
when it finished, an empty ``done`` marker. dgsamp and DomainBed write the same keys for
what the leaderboard needs (``args.{dataset,algorithm,test_envs,hparams_seed,trial_seed}``,
``step``, ``env{i}_in_acc``, ``env{i}_out_acc``); dgsamp adds energy and FLOPs fields.
A DomainBed run has none of them: its energy is unmeasured and GradSamp/ssProp are off.

Like DomainBed's ``collect_results``, every record of every run counts, finished or not;
a line that is not complete JSON (the torn last line of a run that was killed while
writing) is skipped with a warning.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError

RESULTS_FILE = "results.jsonl"
DONE_FILE = "done"
REQUIRED_ARGS = ("dataset", "algorithm", "test_envs", "hparams_seed", "trial_seed")
MNIST_DATASETS = ("ColoredMNIST", "RotatedMNIST")
DEFAULT_GRADSAMP_WARMUP = 2


@dataclass(frozen=True, order=True)
class Variant:
    """What makes two runs different methods: algorithm + GradSamp + ssProp + length.

    Fields that do not apply are ``None`` (e.g. ``gradsamp_period`` when GradSamp is
    off or random), so that equal methods compare equal whatever else the args hold.
    """

    algorithm: str
    gradsamp: str = "off"
    gradsamp_period: int | None = None
    gradsamp_prob: float | None = None
    gradsamp_warmup: int | None = None
    gradsamp_dist: str | None = None
    gradsamp_scale: float | None = None
    gradsamp_allow_consecutive: bool | None = None
    ssprop: str = "off"
    ssprop_keep: float | None = None
    ssprop_keep_min: float | None = None
    ssprop_warmup: int | None = None
    ssprop_interleave: bool | None = None
    epochs: int | None = None

    @property
    def uses_gradsamp(self) -> bool:
        return self.gradsamp != "off"

    @property
    def uses_ssprop(self) -> bool:
        return self.ssprop != "off"

    @property
    def is_plain(self) -> bool:
        """Plain backprop: neither GradSamp nor ssProp."""
        return not self.uses_gradsamp and not self.uses_ssprop

    @property
    def is_skip_control(self) -> bool:
        return self.uses_gradsamp and self.gradsamp_dist == "skip"

    def base_label(self) -> str:
        """Human label without the length, e.g. ``ERM + GradSamp(K=3, layer)``."""
        parts = [self.algorithm]
        if self.uses_gradsamp:
            if self.gradsamp == "periodic":
                schedule = f"K={_num(self.gradsamp_period)}"
            elif self.gradsamp == "random":
                schedule = f"p={_num(self.gradsamp_prob)}"
            else:
                schedule = self.gradsamp
            inner = [schedule, str(self.gradsamp_dist)]
            if self.gradsamp_scale not in (None, 1, 1.0):
                inner.append(f"s={_num(self.gradsamp_scale)}")
            if self.gradsamp_warmup not in (None, DEFAULT_GRADSAMP_WARMUP):
                inner.append(f"warmup={self.gradsamp_warmup}")
            if self.gradsamp_allow_consecutive:
                inner.append("consecutive")
            parts.append(f"GradSamp({', '.join(inner)})")
        if self.uses_ssprop:
            keep = _num(self.ssprop_keep)
            if self.ssprop_keep_min is not None:
                keep = f"{keep}→{_num(self.ssprop_keep_min)}"
            inner = [self.ssprop, f"keep={keep}"]
            if self.ssprop_warmup:
                inner.append(f"warmup={self.ssprop_warmup}")
            if self.ssprop_interleave:
                inner.append("interleave")
            parts.append(f"ssProp({', '.join(inner)})")
        return " + ".join(parts)


def _num(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def variant_from_args(args: dict[str, Any]) -> Variant:
    """The :class:`Variant` of a run from its ``args`` (DomainBed args give a plain one)."""
    gradsamp = str(args.get("gradsamp") or "off")
    ssprop = str(args.get("ssprop") or "off")
    fields: dict[str, Any] = {"algorithm": str(args["algorithm"]), "gradsamp": gradsamp,
                              "ssprop": ssprop, "epochs": args.get("epochs")}
    if gradsamp != "off":
        dist = str(args.get("gradsamp_dist") or "layer")
        fields.update(
            gradsamp_period=args.get("gradsamp_period") if gradsamp == "periodic" else None,
            gradsamp_prob=args.get("gradsamp_prob") if gradsamp == "random" else None,
            gradsamp_warmup=args.get("gradsamp_warmup"),
            gradsamp_dist=dist,
            gradsamp_scale=args.get("gradsamp_scale") if dist == "element" else None,
            gradsamp_allow_consecutive=bool(args.get("gradsamp_allow_consecutive")),
        )
    if ssprop != "off":
        fields.update(
            ssprop_keep=args.get("ssprop_keep"),
            ssprop_keep_min=None if ssprop == "constant" else args.get("ssprop_keep_min"),
            ssprop_warmup=args.get("ssprop_warmup") or 0,
            ssprop_interleave=bool(args.get("ssprop_interleave")),
        )
    return Variant(**fields)


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
        return str(self.args["dataset"])

    @property
    def test_envs(self) -> tuple[int, ...]:
        return tuple(int(env) for env in self.args["test_envs"])

    @property
    def hparams_seed(self) -> int:
        return int(self.args["hparams_seed"])

    @property
    def trial_seed(self) -> int:
        return int(self.args["trial_seed"])

    @property
    def task(self) -> str:
        return str(self.args.get("task") or "domain_generalization")

    @property
    def variant(self) -> Variant:
        return variant_from_args(self.args)

    @property
    def backbone(self) -> str:
        """dgsamp's ``args.backbone`` (None: the dataset's default); for DomainBed, the
        network its hparams imply (ResNet-50, ResNet-18 or its MNIST CNN)."""
        if self.args.get("backbone"):
            return str(self.args["backbone"])
        if self.source != "domainbed":
            return default_backbone(self.dataset)
        if self.dataset in MNIST_DATASETS:
            return "mnist_cnn"
        return "resnet18" if self.hparams.get("resnet18") else "resnet50"

    @property
    def num_envs(self) -> int:
        """Number of domains: consecutive ``env{i}_out_acc`` keys in the first record."""
        return count_envs(self.records[0])

    @property
    def last(self) -> dict[str, Any]:
        return self.records[-1]

    @property
    def total_train_energy_J(self) -> float | None:
        """Training energy of the whole run (cumulative at its last record); None if unmeasured."""
        return _finite_or_none(self.last.get("cum_train_energy_J"))

    @property
    def total_train_flops(self) -> float | None:
        return _finite_or_none(self.last.get("cum_train_flops"))

    @property
    def backprop_epochs(self) -> int | None:
        value = self.last.get("backprop_epochs")
        return None if value is None else int(value)


@functools.cache
def default_backbone(dataset: str) -> str:
    """The registered dataset's DEFAULT_BACKBONE, or "default" when it is not known here."""
    try:
        from dgsamp.registry import DATASETS

        return str(getattr(DATASETS.get(dataset), "DEFAULT_BACKBONE", "default"))
    except Exception:  # an unknown dataset must not stop the leaderboard
        return "default"


def _finite_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def count_envs(record: dict[str, Any]) -> int:
    count = 0
    while f"env{count}_out_acc" in record:
        count += 1
    return count


@dataclass
class RunSet:
    """The runs found plus what was skipped and why (printed by the CLI as warnings)."""

    runs: list[Run] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def num_records(self) -> int:
        return sum(len(run.records) for run in self.runs)


def read_results_file(path: Path, warnings: list[str]) -> list[dict[str, Any]]:
    """Complete JSON lines of one results.jsonl; a torn or corrupt line is skipped."""
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
        if isinstance(record, dict):
            records.append(record)
        else:
            warnings.append(f"{path}:{number}: not a JSON object; line skipped")
    return records


def run_from_records(
    path: str, records: list[dict[str, Any]], done: bool, warnings: list[str], source: str = ""
) -> Run | None:
    """Build a :class:`Run`, or None (with a warning) when the records cannot be used."""
    if not records:
        warnings.append(f"{path}: no records; run skipped")
        return None
    args = records[0].get("args")
    if not isinstance(args, dict):
        warnings.append(f"{path}: first record has no 'args'; run skipped")
        return None
    missing = [key for key in REQUIRED_ARGS if key not in args]
    if missing:
        warnings.append(f"{path}: args lack {', '.join(missing)}; run skipped")
        return None
    usable = []
    for record in records:
        if "step" in record and "env0_in_acc" in record and "env0_out_acc" in record:
            usable.append(record)
    if not usable:
        warnings.append(f"{path}: no record has step/env0_in_acc/env0_out_acc; run skipped")
        return None
    if not source:
        source = "dgsamp" if "cum_train_flops" in usable[0] or "epoch_kind" in usable[0] \
            else "domainbed"
    hparams = records[0].get("hparams") or {}
    return Run(path, args, hparams, tuple(usable), done, source)


def find_run_dirs(root: Path) -> list[Path]:
    """Every directory under (or equal to) ``root`` that holds a results.jsonl."""
    if (root / RESULTS_FILE).is_file():
        return [root]
    return sorted(path.parent for path in root.rglob(RESULTS_FILE) if path.is_file())


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
        hparams = config.pop("hparams", {}) or {}
        records = []
        for row in wandb_run.scan_history():
            if "env0_in_acc" in row and "step" in row:
                records.append({**row, "args": config, "hparams": hparams})
        done = getattr(wandb_run, "state", "") == "finished"
        run = run_from_records(f"wandb:{project}/{wandb_run.id}", records, done,
                               result.warnings, source="wandb")
        if run is not None:
            result.runs.append(run)
    if not result.runs:
        raise UserError(f"no runs with env0_in_acc history found in W&B project '{project}'")
    return result


def group_runs(runs: Sequence[Run], key) -> dict[Any, list[Run]]:
    """Runs grouped by ``key(run)``, groups in first-seen order, runs in input order."""
    groups: dict[Any, list[Run]] = {}
    for run in runs:
        groups.setdefault(key(run), []).append(run)
    return groups
