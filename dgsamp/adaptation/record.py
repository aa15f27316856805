"""The one results line of a test-time adaptation, in the results schema (``dgsamp.tracking.schema``).

An adaptation is written as a run with one evaluation (the adapted model's) and no training
of its own:

- ``args``: the source run's args, then ``output_dir`` and ``adaptation`` = ``{method,
  hparams, batch_size, stream_seed, source_dir, source_job_id, source_epoch, source_step,
  source_ood_acc, energy_source}``; ``hparams``: the source run's;
- ``env{i}_{in,out}_acc``: accuracy of the online predictions on each split's stream
  (:mod:`dgsamp.adaptation.stream`), ``ood_acc``; ``loss`` null; ``epoch_kind``
  ``"adaptation"``; ``evaluated_model`` the method; ``epoch``/``step``: the selected model's;
- cost: training energy, FLOPs and seconds are the source run's totals (what it cost to
  train); ``adapt_energy_j`` / ``adapt_flops`` / ``adapt_seconds`` measure the adaptation
  alone, and ``eval_energy_J`` / ``eval_seconds`` hold the same reading (the adaptation is
  this line's evaluation).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dgsamp.adaptation.source import Source
from dgsamp.tracking import schema as k
from dgsamp.tracking.adaptation_naming import (
    ADAPT_ENERGY_J,
    ADAPT_FLOPS,
    ADAPT_SECONDS,
    ADAPTATION_KIND,
    ARG_ADAPTATION,
)


def adaptation_spec(source: Source, method: str, hparams: Mapping[str, Any], batch_size: int, seed: int,
                    energy_source: str) -> dict[str, Any]:
    """``args["adaptation"]`` (module docstring)."""
    return {"method": method, "hparams": dict(hparams), "batch_size": batch_size, "stream_seed": seed,
            "source_dir": str(source.path), "source_job_id": source.job_id,
            "source_epoch": source.selected[k.EPOCH], "source_step": source.selected[k.STEP],
            "source_ood_acc": source.selected.get(k.OOD_ACC), "energy_source": energy_source}


def adaptation_record(source: Source, spec: Mapping[str, Any], output_dir: str | Path,
                      accuracies: Mapping[str, float], joules: float | None, seconds: float,
                      flops: int) -> dict[str, Any]:
    """The adaptation's results line; ``accuracies``: ``env{i}_{in,out}_acc`` of the streams."""
    last, test_envs = source.last, list(source.test_envs)
    return {
        k.ARGS: {**source.args, "output_dir": str(output_dir), ARG_ADAPTATION: dict(spec)},
        k.HPARAMS: dict(source.hparams),
        k.EPOCH: source.selected[k.EPOCH],
        k.STEP: source.selected[k.STEP],
        **accuracies,
        k.OOD_ACC: k.mean_test_accuracy(accuracies, test_envs),
        k.LOSS: None,
        k.EPOCH_KIND: ADAPTATION_KIND,
        k.EVALUATED_MODEL: spec["method"],
        k.TRAIN_ENERGY_J: last.get(k.CUM_TRAIN_ENERGY_J),
        k.EVAL_ENERGY_J: joules,
        k.ENERGY_SOURCE: last.get(k.ENERGY_SOURCE),
        k.TRAIN_FLOPS: last.get(k.CUM_TRAIN_FLOPS),
        k.TRAIN_SECONDS: source.summary.get(k.TRAIN_SECONDS),
        k.EVAL_SECONDS: seconds,
        k.EPOCH_SECONDS: float(source.summary.get(k.WALL_SECONDS) or 0.0) + seconds,
        k.CUM_TRAIN_ENERGY_J: last.get(k.CUM_TRAIN_ENERGY_J),
        k.CUM_TRAIN_FLOPS: last.get(k.CUM_TRAIN_FLOPS),
        **k.epoch_counters(last),
        k.WEIGHTS: last.get(k.WEIGHTS),
        ADAPT_ENERGY_J: joules,
        ADAPT_FLOPS: flops,
        ADAPT_SECONDS: seconds,
    }
