"""Model selection for domain-adaptation runs: label-free validators, and tllib's target oracle.

A DA run trains on labelled source domains and unlabeled target domains; its test accuracy
at an evaluation point is the target's, ``mean_t env{t}_in_acc`` (``env{t}_in_mpca``, mean
per-class accuracy, where the run recorded it: VisDA-2017). A rule scores every evaluation
point of a run, keeps the best point (direction from ``dgsamp.scores.SCORES``; the earliest
on a tie) and, across the hyperparameter groups (``hparams_seed``) of the same variant,
task and trial seed, the best group (the lowest ``hparams_seed`` on a tie), as DomainBed's
rules do. Scores are read from the results lines (``dgsamp.training.adaptation_scores``):

- ``source_val``: ``source_val_acc`` (max); assumes source and target are close.
- ``entropy``: ``target_entropy`` (min); ``im``: ``target_im`` (max); ``snd``:
  ``target_snd`` (max); ``dev``: ``target_dev`` (min) — see ``ScoreSpec.assumes``.
- ``target_oracle``: the target accuracy itself (max), what tllib reports (the best target
  accuracy over epochs). It reads target labels, so it is not a model selection.

Under DomainBed's rules a DA run is selected by their reading on its domains:
``training_domain`` by the mean ``env{s}_out_acc`` of its sources (computed from the
accuracies, so runs that predate ``source_val_acc`` work), ``oracle`` by the mean
``env{t}_out_acc`` of its targets at its last evaluation; ``leave_one_out`` has no DA
reading.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dgsamp.errors import UserError
from dgsamp.leaderboard.runs import Run, group_runs
from dgsamp.leaderboard.selection import Choice
from dgsamp.tracking import schema

Domains = tuple[tuple[int, ...], tuple[int, ...]]  # (sources, targets)
Score = Callable[[Mapping[str, Any], Domains], "float | None"]


def run_domains(run: Run) -> Domains:
    """``(sources, targets)`` of a DA run (``schema.adaptation_domains``; without
    ``args.source`` every evaluated domain outside ``test_envs`` is a source)."""
    envs = schema.evaluated_envs(run.records[0])
    return schema.adaptation_domains(run.args, max(envs) + 1 if envs else 0)


def target_accuracy(record: Mapping[str, Any], targets: Sequence[int]) -> float:
    """Mean over the targets of ``env{t}_in_mpca`` when recorded, else ``env{t}_in_acc``."""
    values = [record.get(schema.env_in_mpca(t), record[schema.env_in_acc(t)]) for t in targets]
    return sum(values) / len(values)


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def recorded(key: str) -> Score:
    """The score a results line holds under ``key`` (None when absent or not finite)."""
    return lambda record, domains: _finite(record.get(key))


@dataclass(frozen=True)
class AdaptationRule:
    """How DA runs are selected: ``score(record, (sources, targets))``, better in ``direction``.

    ``spec``: the ``dgsamp.scores.SCORES`` entry whose direction applies (None: higher is
    better); ``recorded_key``: the results key the rule needs (a run without it is refused);
    ``last_only``: only a run's last evaluation is a candidate (DomainBed's oracle).
    """

    key: str
    name: str
    score: Score
    spec: str | None = None
    recorded_key: str | None = None
    last_only: bool = False

    @property
    def direction(self) -> Literal["max", "min"]:
        from dgsamp.scores import SCORES  # imports torch: only once a table is built

        return SCORES[self.spec].direction if self.spec else "max"

    def better(self, a: float, b: float) -> bool:
        return a > b if self.direction == "max" else a < b

    def run_choice(self, run: Run) -> Choice | None:
        """The run's best evaluation point; None when no point has a score."""
        domains = run_domains(run)
        records = schema.same_model_records(run.records)
        if self.last_only:
            records = [max(reversed(records), key=lambda record: record[schema.STEP])]
        best: Choice | None = None
        for record in records:
            value = self.score(record, domains)
            if value is not None and (best is None or self.better(value, best.val_acc)):
                best = Choice(value, target_accuracy(record, domains[1]), run, record[schema.STEP])
        return best

    def select(self, runs: Sequence[Run]) -> Choice | None:
        """The best point over ``runs`` of one (variant, task, trial seed), every hparams group."""
        best: Choice | None = None
        by_hparams = group_runs(runs, lambda run: run.hparams_seed)
        for hparams_seed in sorted(by_hparams):
            for run in by_hparams[hparams_seed]:
                choice = self.run_choice(run)
                if choice is not None and (best is None or self.better(choice.val_acc, best.val_acc)):
                    best = choice
        return best


def _validator(key: str, recorded_key: str, name: str) -> AdaptationRule:
    return AdaptationRule(key, name, recorded(recorded_key), key, recorded_key)


ADAPTATION_RULES: dict[str, AdaptationRule] = {rule.key: rule for rule in (
    AdaptationRule("source_val", "source validation accuracy", recorded(schema.SOURCE_VAL_ACC),
                   recorded_key=schema.SOURCE_VAL_ACC),
    _validator("entropy", schema.TARGET_ENTROPY, "target entropy (lowest)"),
    _validator("im", schema.TARGET_IM, "target information maximisation (highest)"),
    _validator("snd", schema.TARGET_SND, "target soft neighbourhood density (highest)"),
    _validator("dev", schema.TARGET_DEV, "deep embedded validation (lowest)"),
    AdaptationRule("target_oracle", "target oracle (uses target labels)",
                   lambda record, domains: target_accuracy(record, domains[1])),
)}
"""The ``--selection`` values for DA runs."""

DOMAINBED_READINGS: dict[str, AdaptationRule] = {
    "training_domain": AdaptationRule(
        "training_domain", "training-domain validation set (source out splits)",
        lambda record, domains: schema.source_validation_accuracy(record, domains[0])),
    "oracle": AdaptationRule(
        "oracle", "test-domain validation set (oracle: target out splits, last checkpoint)",
        lambda record, domains: sum(record[schema.env_out_acc(t)] for t in domains[1]) / len(domains[1]),
        last_only=True),
}
"""DomainBed's rules read on DA runs (``leave_one_out`` has no reading)."""


def adaptation_rule(rule: Any) -> AdaptationRule | None:
    """The rule DA runs are selected by under ``--selection rule.key`` (None: not applicable)."""
    return rule if isinstance(rule, AdaptationRule) else DOMAINBED_READINGS.get(rule.key)


def _some(paths: Sequence[str]) -> str:
    shown = ", ".join(paths[:3])
    return shown if len(paths) <= 3 else f"{shown} and {len(paths) - 3} more"


def check_recorded(rule: AdaptationRule, runs: Sequence[Run]) -> None:
    """Refuse, before any table, runs that ``rule`` cannot select: DG runs, and runs none of
    whose records holds ``rule.recorded_key`` (written before dgsamp recorded the scores)."""
    if rule.recorded_key is not None:
        lacking = [run.path for run in runs if not any(rule.recorded_key in r for r in run.records)]
        if lacking:
            raise UserError(
                f"--selection {rule.key} needs {rule.recorded_key}, which runs in {_some(lacking)} did not record "
                f"(domain generalization runs, or DA runs from before dgsamp recorded it); leave them out or "
                f"use --selection training_domain"
            )
    generalization = [run.path for run in runs if run.task != schema.DOMAIN_ADAPTATION]
    if generalization:
        raise UserError(
            f"--selection {rule.key} selects domain adaptation runs, but runs in {_some(generalization)} are "
            f"domain generalization runs; leave them out or use --selection training_domain, leave_one_out or oracle"
        )


def task_label(run: Run, dataset_class: type | None) -> str:
    """The task's column name: ``args.task_label`` as the run recorded it; else the label
    ``dgsamp train`` would write (``dgsamp.config.domains.task_label``: ``A→W``, Office-Home's
    ``Ar→Cl`` as tllib's tables read) when ``dataset_class`` is registered and has the
    domains; else ``env0→env2``. Several sources or targets are joined with ``+``."""
    label = run.args.get(schema.ARG_TASK_LABEL)
    if label:
        return str(label)
    sources, targets = run_domains(run)
    if dataset_class is not None and max((*sources, *targets)) < len(dataset_class.ENVIRONMENTS):
        from dgsamp.config import domains  # imports torch: only once a DA table is built

        return domains.task_label(dataset_class, sources, targets)
    return "+".join(f"env{env}" for env in sources) + "→" + "+".join(f"env{env}" for env in targets)
