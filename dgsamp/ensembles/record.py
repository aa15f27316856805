"""The one results line of an ensemble, in the results schema (``dgsamp.tracking.schema``).

An ensemble is written as a run that has one evaluation and no training of its own:

- ``args``: the members' args where all members agree, null where they do not, then
  ``output_dir``, ``trial_seed`` (whose splits it was evaluated on), ``hparams_seed`` 0 and
  ``ensemble`` = ``{method, members, member_dirs, candidates[, selection]}``;
  ``hparams``: the hyperparameters all members share;
- accuracies of every split of the ensemble's model, ``ood_acc``; ``loss`` null;
  ``epoch_kind`` ``"ensemble"``; ``evaluated_model`` the method (``eoa``, ``diwa_uniform``,
  ``diwa_greedy``); ``epoch``/``step``: the members' last;
- cost: training energy, FLOPs and seconds are the **sums over the members** (what the
  ensemble cost to train): ``train_energy_J = cum_train_energy_J = sum_k E_k`` (null when
  any member's is), ``train_flops = cum_train_flops = sum_k F_k``, ``<kind>_epochs`` summed;
  ``eval_energy_J``/``eval_seconds``: this command's evaluations (greedy selection included);
  ``epoch_seconds``: the members' wall seconds plus this command's; ``energy_source``: the
  members' meter (``mixed`` when they differ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dgsamp.ensembles.members import Member
from dgsamp.tracking import schema as k
from dgsamp.tracking.ensemble_naming import ARG_ENSEMBLE, ENSEMBLE_KIND

MIXED = "mixed"


def _shared(values: Sequence[Mapping[str, Any]], keep_differing: bool) -> dict[str, Any]:
    """Keys of the first mapping with the value every mapping agrees on; differing ones set to
    None (``keep_differing``) or left out."""
    shared = {}
    for key, value in values[0].items():
        if all(other.get(key) == value for other in values[1:]):
            shared[key] = value
        elif keep_differing:
            shared[key] = None
    return shared


def ensemble_args(members: Sequence[Member], candidates: Sequence[Member], method: str, output_dir: str | Path,
                  trial_seed: int, selection: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``args`` of the ensemble's line (see the module docstring)."""
    spec: dict[str, Any] = {
        "method": method,
        "members": [member.job_id for member in members],
        "member_dirs": [str(member.path) for member in members],
        "candidates": [member.job_id for member in candidates],
    }
    if selection is not None:
        spec["selection"] = selection
    return {**_shared([member.args for member in members], keep_differing=True),
            "output_dir": str(output_dir), k.ARG_TRIAL_SEED: trial_seed, k.ARG_HPARAMS_SEED: 0,
            ARG_ENSEMBLE: spec}


def _sum_or_none(values: Sequence[Any]) -> float | None:
    return None if any(value is None for value in values) else float(sum(values))


def ensemble_record(members: Sequence[Member], args: Mapping[str, Any], accuracies: Mapping[str, float],
                    eval_joules: float | None, eval_seconds: float) -> dict[str, Any]:
    """The ensemble's results line; ``accuracies``: ``env{i}_{in,out}_acc`` of its model."""
    test_envs = [int(env) for env in args[k.ARG_TEST_ENVS]]
    energy = _sum_or_none([member.last.get(k.CUM_TRAIN_ENERGY_J) for member in members])
    flops = sum(int(member.last.get(k.CUM_TRAIN_FLOPS) or 0) for member in members)
    counters: dict[str, int] = {}
    for member in members:
        for key, value in k.epoch_counters(member.last).items():
            counters[key] = counters.get(key, 0) + int(value)
    sources = {member.last.get(k.ENERGY_SOURCE) for member in members}
    weights = {member.last.get(k.WEIGHTS) for member in members}
    return {
        k.ARGS: dict(args),
        k.HPARAMS: _shared([member.hparams for member in members], keep_differing=False),
        k.EPOCH: max(int(member.last[k.EPOCH]) for member in members),
        k.STEP: max(int(member.last[k.STEP]) for member in members),
        **accuracies,
        k.OOD_ACC: k.mean_test_accuracy(accuracies, test_envs),
        k.LOSS: None,
        k.EPOCH_KIND: ENSEMBLE_KIND,
        k.EVALUATED_MODEL: args[ARG_ENSEMBLE]["method"],
        k.TRAIN_ENERGY_J: energy,
        k.EVAL_ENERGY_J: eval_joules,
        k.ENERGY_SOURCE: sources.pop() if len(sources) == 1 else MIXED,
        k.TRAIN_FLOPS: flops,
        k.TRAIN_SECONDS: sum(float(member.summary.get(k.TRAIN_SECONDS) or 0.0) for member in members),
        k.EVAL_SECONDS: eval_seconds,
        k.EPOCH_SECONDS: sum(float(member.summary.get(k.WALL_SECONDS) or 0.0) for member in members) + eval_seconds,
        k.CUM_TRAIN_ENERGY_J: energy,
        k.CUM_TRAIN_FLOPS: flops,
        **counters,
        k.WEIGHTS: weights.pop() if len(weights) == 1 else MIXED,
    }
