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

Domain adaptation runs have their own rules (``adaptation_selection``); ``get_rule``
finds both kinds.

Ties: within a run the earliest record wins; between hyperparameter groups the lowest
``hparams_seed`` wins (DomainBed's order there depends on the file system).

A run's candidate records are those that evaluated the same kind of model as its last
record (``evaluated_model``, :func:`~dgsamp.tracking.schema.same_model_records`): an SMA
run is picked among its averaged epochs, a SWAD run is its final averaged model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dgsamp.leaderboard.runs import Run, group_runs
from dgsamp.tracking import schema
from dgsamp.tracking.schema import best_training_domain_record


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
            record, val = best_training_domain_record(run.records, (test_env,))
            if best is None or val > best.val_acc:
                best = Choice(val, record[schema.env_in_acc(test_env)], run, record[schema.STEP])
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
            for record in schema.same_model_records(run.records):
                step = record[schema.STEP]
                if run.test_envs == (test_env,):
                    test_records.setdefault(step, []).append((run, record))
                elif len(run.test_envs) == 2:
                    (val_env,) = set(run.test_envs) - {test_env}
                    held_out.setdefault(step, {})[val_env] = record[schema.env_in_acc(val_env)]
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
                best = Choice(val, record[schema.env_in_acc(test_env)], run, step)
        return best


class TestDomainOracle(SelectionRule):
    key = "oracle"
    name = "test-domain validation set (oracle)"

    def hparams_choice(self, test_env: int, runs: Sequence[Run]) -> Choice | None:
        last: tuple[Run, dict] | None = None
        for run in _single_test_env_runs(test_env, runs):
            for record in run.records:
                if last is None or record[schema.STEP] >= last[1][schema.STEP]:
                    last = (run, record)
        if last is None:
            return None
        run, record = last
        return Choice(record[schema.env_out_acc(test_env)], record[schema.env_in_acc(test_env)],
                      run, record[schema.STEP])


RULES: dict[str, SelectionRule] = {
    rule.key: rule for rule in (TrainingDomainValidation(), LeaveOneDomainOut(), TestDomainOracle())
}
