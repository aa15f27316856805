"""One results.jsonl line per epoch, and the run's summary.

A record holds DomainBed's keys (``epoch``, ``step``, ``env{i}_in_acc``, ``env{i}_out_acc``,
``args``, ``hparams``), the epoch's mean losses, which model was evaluated
(``evaluated_model``), the fields the training modes add (e.g. ``ssprop_keep``), and the
energy accounting: ``epoch_kind``, measured
``train_energy_J``/``eval_energy_J`` (None when unmeasured), counted ``train_flops``,
seconds, and running totals. Key names: :mod:`dgsamp.tracking.schema`; see
docs/results-format.md.
"""

from __future__ import annotations

from typing import Any

from dgsamp.tracking import schema as k
from dgsamp.tracking.schema import best_training_domain_record


def make_record(
    *,
    base: dict[str, Any],
    previous: dict[str, Any] | None,
    epoch: int,
    step: int,
    test_envs: list[int],
    kind: str,
    epoch_kinds: tuple[str, ...],
    mode_fields: dict[str, Any],
    losses: dict[str, float],
    flops: int,
    accuracies: dict[str, float],
    train_joules: float | None,
    eval_joules: float | None,
    energy_source: str,
    train_seconds: float,
    eval_seconds: float,
    epoch_seconds: float,
    scores: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """The record of one finished epoch; ``previous`` is the last record (None at epoch 1).

    ``epoch_kinds``: every kind of epoch a registered mode can plan besides backprop (each
    gets a running ``<kind>_epochs`` count); ``mode_fields``: what the modes add;
    ``scores``: a domain-adaptation run's validation scores (``ADAPTATION_SCORE_KEYS``).
    """
    previous = previous or {}
    cum_energy = previous.get(k.CUM_TRAIN_ENERGY_J, 0.0) if previous else 0.0
    cum_energy = None if train_joules is None or cum_energy is None else cum_energy + train_joules
    return {
        **base,
        k.EPOCH: epoch,
        k.STEP: step,
        **accuracies,
        k.OOD_ACC: k.mean_test_accuracy(accuracies, test_envs),
        **(scores or {}),
        **losses,
        k.EPOCH_KIND: kind,
        k.EVALUATED_MODEL: k.ONLINE,  # a mode that evaluates its own model says so in mode_fields
        **mode_fields,
        k.TRAIN_ENERGY_J: train_joules,
        k.EVAL_ENERGY_J: eval_joules,
        k.ENERGY_SOURCE: energy_source,
        k.TRAIN_FLOPS: flops,
        k.TRAIN_SECONDS: train_seconds,
        k.EVAL_SECONDS: eval_seconds,
        k.EPOCH_SECONDS: epoch_seconds,
        k.CUM_TRAIN_ENERGY_J: cum_energy,
        k.CUM_TRAIN_FLOPS: previous.get(k.CUM_TRAIN_FLOPS, 0) + flops,
        **{k.epochs_of_kind(name): previous.get(k.epochs_of_kind(name), 0) + (kind == name)
           for name in (k.BACKPROP, *epoch_kinds)},
    }


def summarize(records: list[dict[str, Any]], job_id: str, test_envs: list[int]) -> dict[str, Any]:
    """Totals over the run (summary.json and the W&B summary)."""
    last = records[-1]
    eval_energy = [r[k.EVAL_ENERGY_J] for r in records]
    return {
        k.JOB_ID: job_id,
        k.EPOCHS: last[k.EPOCH],
        k.FINAL_OOD_ACC: last[k.OOD_ACC],
        k.SELECTED_OOD_ACC: selected_ood_acc(records, test_envs),
        k.TOTAL_TRAIN_ENERGY_J: last[k.CUM_TRAIN_ENERGY_J],
        k.TOTAL_EVAL_ENERGY_J: None if None in eval_energy else sum(eval_energy),
        k.ENERGY_SOURCE: last[k.ENERGY_SOURCE],
        k.TOTAL_TRAIN_FLOPS: last[k.CUM_TRAIN_FLOPS],
        **k.epoch_counters(last),
        k.WEIGHTS: last.get(k.WEIGHTS),
        k.TRAIN_SECONDS: sum(r[k.TRAIN_SECONDS] for r in records),
        k.WALL_SECONDS: sum(r[k.EPOCH_SECONDS] for r in records),
    }


def selected_ood_acc(records: list[dict[str, Any]], test_envs: list[int]) -> float:
    """OOD accuracy at the epoch the training-domain validation rule picks (the
    leaderboard's rule, :func:`~dgsamp.tracking.schema.best_training_domain_record`,
    applied within this one run)."""
    record, _ = best_training_domain_record(records, test_envs)
    return record[k.OOD_ACC]
