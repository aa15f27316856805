"""Adapt finished runs at test time and write each as a run (``dgsamp adapt``).

    summaries = build_adaptations(["runs/erm0"], "t3a", "runs/erm0_t3a")

1. read every source (:func:`dgsamp.adaptation.source.read_source`) and the method's
   hparams (its published defaults, then ``--adapt_hparams``) — refusing, in one line,
   before any data is read;
2. per source: rebuild its splits and network (:class:`EvaluationSetup`), refuse a network
   the method cannot adapt, then run the method over every split's stream from the selected
   model (a fresh copy per split; :func:`adapt_on_stream`), metered as one ``adapt`` phase;
3. write ``results.jsonl`` (one line, :mod:`dgsamp.adaptation.record`), ``summary.json``,
   then ``done`` — into ``output_dir`` for one source, into ``output_dir/<source job id>``
   for each of several (each a run of its own, so the leaderboard averages trial seeds as
   it does for the sources).

The job id hashes the method, its hparams, batch size, stream seed and the source's job
id: the same command finds its directory done and does nothing. No file of a source run
is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dgsamp.adaptation.methods import METHODS
from dgsamp.adaptation.record import adaptation_record, adaptation_spec
from dgsamp.adaptation.source import SUMMARY_FILE, Source, read_source
from dgsamp.adaptation.stream import adapt_on_stream
from dgsamp.ensembles.build import check_output_dir, missing_dirs
from dgsamp.ensembles.evaluation_setup import EvaluationSetup
from dgsamp.errors import UserError
from dgsamp.leaderboard.runs import DONE_FILE, RESULTS_FILE
from dgsamp.metering.energy import EnergyMeter
from dgsamp.tracking import schema
from dgsamp.tracking.adaptation_naming import ADAPT_ENERGY_J, ADAPT_FLOPS, ADAPT_SECONDS, LABELS
from dgsamp.tracking.records import summarize
from dgsamp.utils.atomic import atomic_write_json, atomic_write_jsonl
from dgsamp.utils.seeding import seed_hash

DEFAULT_BATCH_SIZE = 32
"""The T3A repository's test batch size (``unsupervised_adaptation.py``), for every method."""


def method_hparams(method: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The method's defaults updated by ``given``; unknown names and wrong types refused."""
    if method not in METHODS:
        raise UserError(f"unknown adaptation method '{method}'; choose one of {', '.join(METHODS)}")
    defaults = METHODS[method].HPARAMS
    hparams = dict(defaults)
    for name, value in (given or {}).items():
        if name not in defaults:
            known = ", ".join(defaults) or "none"
            raise UserError(f"{method} has no hparam '{name}' (its hparams: {known})")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UserError(f"{method}'s hparam {name} must be a number, got {value!r}")
        hparams[name] = type(defaults[name])(value)
    if "steps" in hparams and hparams["steps"] < 1:
        raise UserError(f"{method}'s hparam steps must be at least 1, got {hparams['steps']}")
    return hparams


def adaptation_job_id(source: Source, method: str, hparams: Mapping[str, Any], batch_size: int, seed: int) -> str:
    text = json.dumps([method, dict(hparams), batch_size, seed, source.job_id], sort_keys=True)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def build_adaptations(paths: Sequence[str | Path], method: str, output_dir: str | Path,
                      given_hparams: Mapping[str, Any] | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
                      seed: int = 0, device: str = "auto", data_dir: str | None = None, energy: str = "auto",
                      log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """Adapt each run in ``paths`` with ``method``; one summary per source (module docstring)."""
    log = log or (lambda line: print(f"dgsamp: {line}", file=sys.stderr))
    hparams = method_hparams(method, given_hparams)
    if batch_size < 1:
        raise UserError(f"--batch_size must be at least 1, got {batch_size}")
    if not paths:
        raise UserError("pass at least one finished run directory")
    sources = [read_source(path) for path in paths]
    seen: dict[str, Path] = {}
    for source in sources:
        if source.job_id in seen:
            raise UserError(f"{seen[source.job_id]} and {source.path} are the same run; pass it once")
        seen[source.job_id] = source.path
    out = Path(output_dir)
    targets = [out] if len(sources) == 1 else [out / source.job_id for source in sources]
    job_ids = [adaptation_job_id(source, method, hparams, batch_size, seed) for source in sources]
    done = [check_output_dir(target, job_id) for target, job_id in zip(targets, job_ids, strict=True)]
    summaries = []
    for source, target, job_id, finished in zip(sources, targets, job_ids, done, strict=True):
        if finished:
            log(f"already done: {target}")
            summaries.append(json.loads((target / SUMMARY_FILE).read_text()))
            continue
        summaries.append(_adapt_one(source, method, hparams, batch_size, seed, target, job_id, device, data_dir,
                                    energy, log))
    return summaries


def _adapt_one(source: Source, method: str, hparams: Mapping[str, Any], batch_size: int, seed: int, out: Path,
               job_id: str, device: str, data_dir: str | None, energy: str,
               log: Callable[[str], None]) -> dict[str, Any]:
    setup = EvaluationSetup.from_args(source.build_args, source.build_hparams, device, data_dir)
    algorithm = setup.build_algorithm(source.build_args, source.build_hparams, source.state)
    method_class = METHODS[method]
    method_class.check_model(algorithm)
    created = missing_dirs(out.absolute())
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --output_dir {out}: {error.strerror}") from None
    try:
        meter = EnergyMeter(energy, [setup.device])
        accuracies, flops = {}, 0
        try:
            with meter.phase("adapt") as reading:
                for name, split in setup.data.eval_splits.items():
                    result = adapt_on_stream(lambda: method_class(algorithm, hparams), split, setup.transform,
                                             batch_size, seed_hash(seed, name), setup.autocast, setup.device)
                    accuracies[f"{name}_acc"] = result.accuracy
                    flops += result.flops
        finally:
            meter.close()
        spec = adaptation_spec(source, method, hparams, batch_size, seed, meter.source)
        record = adaptation_record(source, spec, out, accuracies, reading.joules, reading.seconds, flops)
        summary = {**summarize([record], job_id, list(source.test_envs)), ADAPT_ENERGY_J: reading.joules,
                   ADAPT_FLOPS: flops, ADAPT_SECONDS: reading.seconds}
        _write(out, record, summary)
    except BaseException:
        for directory in created:  # a failed adaptation leaves no empty directory behind
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise
    gain = record[schema.OOD_ACC] - float(source.selected.get(schema.OOD_ACC) or 0.0)
    log(f"{LABELS[method]} on {source.path.name}: ood_acc {record[schema.OOD_ACC]:.4f} ({gain:+.4f} over the "
        f"selected model), {flops:.3g} FLOPs")
    return summary


def _write(out: Path, record: dict[str, Any], summary: dict[str, Any]) -> None:
    """results.jsonl, summary.json, then ``done`` (atomic writes)."""
    try:
        (out / DONE_FILE).unlink(missing_ok=True)
        atomic_write_jsonl(out / RESULTS_FILE, [record])
        atomic_write_json(out / SUMMARY_FILE, summary)
        (out / DONE_FILE).touch()
    except OSError as error:
        raise UserError(f"cannot write the adaptation to {out}: {error.strerror}") from None
