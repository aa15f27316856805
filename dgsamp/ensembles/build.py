"""Build, evaluate and write one ensemble of finished runs (``dgsamp ensemble``).

    summary = build_ensemble(["runs/a", "runs/b"], "eoa", "runs/erm_eoa")

1. find the members and refuse, in one line, any that cannot form the ensemble
   (:mod:`dgsamp.ensembles.members`), and an output directory holding something else;
2. read their weights (DiWA: refuse different architectures) — all before any data is read;
3. rebuild the splits of the members' trial seed (the lowest when they differ) and
   evaluate, metered as evaluation:
   - ``eoa``: every member's evaluated model, logits averaged (:class:`LogitEnsemble`);
   - ``diwa_uniform``: one model with the mean of all members' weights;
   - ``diwa_greedy``: members sorted by their training-domain validation accuracy, each
     kept iff the averaged model's validation accuracy (mean out-split accuracy of the
     training domains) does not drop (:func:`greedy_select`), then the average of the kept;
4. write ``results.jsonl`` (one line, :mod:`dgsamp.ensembles.record`), ``summary.json``,
   for DiWA ``model.pt`` (the averaged weights, like a run's), then ``done``.

The job id is a hash of the method and the candidates' job ids: the same command on the
same runs finds its directory done and does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from dgsamp.ensembles.evaluation_setup import EvaluationSetup
from dgsamp.ensembles.logit_ensemble import LogitEnsemble
from dgsamp.ensembles.members import MODEL_FILE, SUMMARY_FILE, Member, check_members, find_members
from dgsamp.ensembles.record import ensemble_args, ensemble_record
from dgsamp.ensembles.weight_average import average_states, check_same_structure, greedy_select
from dgsamp.errors import UserError
from dgsamp.leaderboard.runs import DONE_FILE, RESULTS_FILE
from dgsamp.metering.energy import EnergyMeter
from dgsamp.tracking import schema
from dgsamp.tracking.ensemble_naming import DIWA_GREEDY, EOA, LABELS, WEIGHT_AVERAGING
from dgsamp.tracking.records import summarize
from dgsamp.training.run_dir import finished_job_id
from dgsamp.utils.atomic import atomic_write, atomic_write_json, atomic_write_jsonl

OWN_FILES = {RESULTS_FILE, SUMMARY_FILE, MODEL_FILE, DONE_FILE}


def ensemble_job_id(method: str, candidates: Sequence[Member]) -> str:
    """md5 of the method and the sorted job ids of every run considered."""
    text = json.dumps([method, sorted(member.job_id for member in candidates)])
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def check_output_dir(output_dir: Path, job_id: str) -> bool:
    """True when ``output_dir`` already holds this ensemble, finished; refuse anything else but
    an empty directory or an unfinished ensemble."""
    if output_dir.exists() and not output_dir.is_dir():
        raise UserError(f"--output_dir {output_dir} is a file; pass a directory")
    if not output_dir.exists():
        return False
    finished = finished_job_id(output_dir)
    if finished == job_id:
        return True
    if finished is not None:
        raise UserError(f"{output_dir} holds another finished run; choose another --output_dir")
    others = sorted(path.name for path in output_dir.iterdir()
                    if path.name not in OWN_FILES and not path.name.endswith(".tmp"))
    if others:
        raise UserError(f"{output_dir} holds other files ({others[0]}); choose an empty --output_dir")
    return False


def build_ensemble(
    paths: Sequence[str | Path],
    method: str,
    output_dir: str | Path,
    where: Mapping[str, Any] | None = None,
    device: str = "auto",
    data_dir: str | None = None,
    eval_batch_size: int | None = None,
    energy: str = "auto",
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Build the ``method`` ensemble of the runs in ``paths`` into ``output_dir``; its summary."""
    log = log or (lambda line: print(f"dgsamp: {line}", file=sys.stderr))
    if method not in LABELS:
        raise UserError(f"unknown ensemble method '{method}'; choose one of {', '.join(LABELS)}")
    notes: list[str] = []
    candidates = find_members(paths, where, notes)
    notes += check_members(candidates, method)
    out = Path(output_dir)
    job_id = ensemble_job_id(method, candidates)
    if check_output_dir(out, job_id):
        log(f"already done: {out}")
        return json.loads((out / SUMMARY_FILE).read_text())
    created = missing_dirs(out.absolute())
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --output_dir {out}: {error.strerror}") from None
    try:
        return _evaluate_and_write(candidates, states_of(candidates, method), method, out, job_id, notes,
                                   device, data_dir, eval_batch_size, energy, log)
    except BaseException:
        for directory in created:  # a failed ensemble leaves no empty directory behind
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def missing_dirs(path: Path) -> list[Path]:
    """``path`` and its ancestors that do not exist yet, deepest first."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def states_of(candidates: Sequence[Member], method: str) -> list[Mapping[str, torch.Tensor]]:
    """The members' weights; DiWA refuses different architectures."""
    states = [member.load_state() for member in candidates]
    if method in WEIGHT_AVERAGING:
        check_same_structure(states, [str(member.path) for member in candidates])
    return states


def _evaluate_and_write(candidates: Sequence[Member], states: Sequence[Mapping[str, torch.Tensor]], method: str,
                        out: Path, job_id: str, notes: list[str], device: str,
                        data_dir: str | None, eval_batch_size: int | None, energy: str,
                        log: Callable[[str], None]) -> dict[str, Any]:
    """Steps 3 and 4 of the module docstring, into the existing ``out``."""
    for note in notes:
        log(f"warning: {note}")
    trial_seed = min(member.trial_seed for member in candidates)
    first = candidates[0]
    setup = EvaluationSetup.from_args({**first.args, schema.ARG_TRIAL_SEED: trial_seed}, first.hparams, device,
                                      data_dir, eval_batch_size)
    meter = EnergyMeter(energy, [setup.device])
    selection = None
    try:
        with meter.phase("eval") as reading:
            if method == EOA:
                members = candidates
                model = LogitEnsemble([setup.build_algorithm(m.args, m.hparams, s)
                                       for m, s in zip(candidates, states, strict=True)])
            else:
                model = setup.build_algorithm(first.args, first.hparams, states[0])
                members, selection = candidates, None
                if method == DIWA_GREEDY:
                    members, selection = _greedy(candidates, states, model, setup)
                    log(f"diwa_greedy kept {len(members)} of {len(candidates)} runs")
                by_id = {member.job_id: state for member, state in zip(candidates, states, strict=True)}
                model.load_state_dict(average_states([by_id[member.job_id] for member in members]))
            evaluation = setup.evaluate(model)
    finally:
        meter.close()
    args = ensemble_args(members, candidates, method, out, trial_seed, selection)
    record = ensemble_record(members, args, evaluation.accuracies, reading.joules, reading.seconds)
    summary = summarize([record], job_id, [int(env) for env in args[schema.ARG_TEST_ENVS]])
    _write(out, record, summary, model if method in WEIGHT_AVERAGING else None, args, record[schema.HPARAMS])
    return summary


def _greedy(candidates: Sequence[Member], states: Sequence[Mapping[str, torch.Tensor]], model: torch.nn.Module,
            setup: EvaluationSetup) -> tuple[list[Member], list[dict[str, Any]]]:
    """DiWA's greedy selection: the kept members and one entry per candidate tried."""
    order = sorted(range(len(candidates)), key=lambda i: -candidates[i].validation_accuracy)  # stable on ties

    def validation_accuracy(indices: list[int]) -> float:
        model.load_state_dict(average_states([states[i] for i in indices]))
        accuracies = setup.evaluate(model, setup.validation_splits).accuracies
        return sum(accuracies.values()) / len(accuracies)

    result = greedy_select(order, validation_accuracy)
    trace = [{"job_id": candidates[step.candidate].job_id,
              "member_val_acc": candidates[step.candidate].validation_accuracy,
              "average_val_acc": step.score, "kept": step.kept} for step in result.steps]
    return [candidates[i] for i in result.selected], trace


def _write(out: Path, record: dict[str, Any], summary: dict[str, Any], model: torch.nn.Module | None,
           args: dict[str, Any], hparams: dict[str, Any]) -> None:
    """results.jsonl, summary.json, model.pt (weight averages only), then ``done`` (atomic writes)."""
    try:
        (out / DONE_FILE).unlink(missing_ok=True)
        atomic_write_jsonl(out / RESULTS_FILE, [record])
        if model is not None:
            state = {"state_dict": model.state_dict(), "args": args, "hparams": hparams}
            atomic_write(out / MODEL_FILE, lambda handle: torch.save(state, handle))
        atomic_write_json(out / SUMMARY_FILE, summary)
        (out / DONE_FILE).touch()
    except OSError as error:
        raise UserError(f"cannot write the ensemble to {out}: {error.strerror}") from None
