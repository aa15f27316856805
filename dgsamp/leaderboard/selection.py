"""DomainBed's three model-selection rules (Gulrajani & Lopez-Paz, ICLR 2021, Sec. 3).

All three answer the same question for one (dataset, method, test domain t, trial seed):
which hyperparameters and which checkpoint would a practitioner pick, and what is the
test accuracy of that pick? The test accuracy of a record is always the in-split
accuracy of domain t, ``env{t}_in_acc``. The runs considered are those whose
``test_envs`` contain t, grouped by ``hparams_seed``; each rule scores every group with a
validation accuracy ``val`` and keeps the group with the highest ``val``.

- training-domain validation: only runs with ``test_envs == [t]``; each record's
  ``val = mean_{i != t} env{i}_out_acc``; the run's pick is its record with the highest
  ``val`` (early stopping).
- leave-one-domain-out cross-validation: needs, at the same ``step``, the run with
  ``test_envs == [t]`` and, for every other domain j, the run with
  ``test_envs == {t, j}``; ``val = sum_{j != t} env{j}_in_acc(run {t, j}) / (n - 1)``.
  A step missing any of them is not a candidate. The pick is the best step.
- test-domain validation (oracle): only runs with ``test_envs == [t]``; the LAST record
  (highest ``step``, no early stopping) with ``val = env{t}_out_acc``.

Ties: within a run the earliest record wins; between hyperparameter groups the lowest
``hparams_seed`` wins (DomainBed's order there depends on the file system).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dgsamp.errors import UserError
from dgsamp.tracking.runs import Run, count_envs, group_runs


@dataclass(frozen=True)
class Choice:
    """A selected checkpoint: its validation and test accuracy (fractions) and its run."""

    val_acc: float
    test_acc: float
    run: Run
    step: int


class SelectionRule:
    """Scores the runs of one hyperparameter group for one test domain."""

    key = ""
    name = ""

    def hparams_choice(self, test_env: int, runs: Sequence[Run]) -> Choice | None:
        raise NotImplementedError

    def select(self, test_env: int, runs: Sequence[Run]) -> Choice | None:
        """Best hyperparameter group among ``runs`` (all contain ``test_env``)."""
        best: Choice | None = None
        by_hparams = group_runs(runs, lambda run: run.hparams_seed)
        for hparams_seed in sorted(by_hparams):
            choice = self.hparams_choice(test_env, by_hparams[hparams_seed])
            if choice is not None and (best is None or choice.val_acc > best.val_acc):
                best = choice
        return best


def _single_test_env_runs(test_env: int, runs: Sequence[Run]) -> list[Run]:
    return [run for run in runs if run.test_envs == (test_env,)]


class TrainingDomainValidation(SelectionRule):
    key = "training_domain"
    name = "training-domain validation set"

    def hparams_choice(self, test_env: int, runs: Sequence[Run]) -> Choice | None:
        best: Choice | None = None
        for run in _single_test_env_runs(test_env, runs):
            for record in run.records:
                val_keys = [f"env{i}_out_acc" for i in range(count_envs(record)) if i != test_env]
                val = sum(record[key] for key in val_keys) / len(val_keys)
                if best is None or val > best.val_acc:
                    best = Choice(val, record[f"env{test_env}_in_acc"], run, record["step"])
        return best


class LeaveOneDomainOut(SelectionRule):
    key = "leave_one_out"
    name = "leave-one-domain-out cross-validation"

    def hparams_choice(self, test_env: int, runs: Sequence[Run]) -> Choice | None:
        # step -> the single-test-env records at that step, and held-out accuracies
        test_records: dict[int, list[tuple[Run, dict]]] = {}
        held_out: dict[int, dict[int, float]] = {}
        num_envs = 0
        for run in runs:
            num_envs = num_envs or run.num_envs
            for record in run.records:
                step = record["step"]
                if run.test_envs == (test_env,):
                    test_records.setdefault(step, []).append((run, record))
                elif len(run.test_envs) == 2:
                    (val_env,) = set(run.test_envs) - {test_env}
                    held_out.setdefault(step, {})[val_env] = record[f"env{val_env}_in_acc"]
                else:
                    test_records.setdefault(step, [])
        best: Choice | None = None
        steps = list(dict.fromkeys([*test_records, *held_out]))
        for step in steps:
            candidates = test_records.get(step, [])
            if len(candidates) != 1:
                continue
            accs = held_out.get(step, {})
            others = [env for env in range(num_envs) if env != test_env]
            if any(env not in accs for env in others):
                continue
            val = sum(accs[env] for env in others) / (num_envs - 1)
            run, record = candidates[0]
            if best is None or val > best.val_acc:
                best = Choice(val, record[f"env{test_env}_in_acc"], run, step)
        return best


class TestDomainOracle(SelectionRule):
    key = "oracle"
    name = "test-domain validation set (oracle)"

    def hparams_choice(self, test_env: int, runs: Sequence[Run]) -> Choice | None:
        last: tuple[Run, dict] | None = None
        for run in _single_test_env_runs(test_env, runs):
            for record in run.records:
                if last is None or record["step"] >= last[1]["step"]:
                    last = (run, record)
        if last is None:
            return None
        run, record = last
        return Choice(record[f"env{test_env}_out_acc"], record[f"env{test_env}_in_acc"],
                      run, record["step"])


RULES: dict[str, SelectionRule] = {
    rule.key: rule for rule in (TrainingDomainValidation(), LeaveOneDomainOut(), TestDomainOracle())
}


def get_rule(key: str) -> SelectionRule:
    try:
        return RULES[key]
    except KeyError:
        raise UserError(f"unknown selection rule '{key}'; choose one of {', '.join(RULES)}") \
            from None
