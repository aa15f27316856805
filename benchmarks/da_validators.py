"""Label-free DA validators against the target oracle, measured (issues 20 and 21).

Launches ``python -m dgsamp train`` runs one after another (``--parallel`` at a time,
``OMP_NUM_THREADS=1`` each), skipping run directories that already hold ``done``, then
reads them back through ``dgsamp leaderboard --format json`` once per selection rule and
prints, per method: the target accuracy each rule picks (mean ± err over trial seeds, the
leaderboard's ``100 · std(a / sqrt(n))``), the mean gap oracle − rule in points (the same
seeds on both sides, so the gap of the means is the mean of the per-seed gaps) and the
training FLOPs relative to source-only (ERM), from the records' ``cum_train_flops``.

Groups (``--groups``, default all):
- ``mnist``: RotatedMNIST 0° → 75° through ``benchmarks/rotated_mnist_pair.py`` (the two
  domains alone, every 2nd digit), MNIST CNN from scratch, ``--protocol tllib`` with
  ``--lr`` / ``--backbone_lr_mult`` given (tllib's 0.01 and 0.1× are for ImageNet ResNets);
- ``gradsamp``: the ``--best`` method with ``--gradsamp periodic --gradsamp_period 3``
  against its skip control (``--gradsamp_dist skip``), same seeds;
- ``pacs``: PACSMini photo → sketch (embedded data), EfficientNet-Lite0.
``--smoke``: one method, one seed, 2 epochs × 3 steps on PACSMini at 32 px (a CPU check
that the pipeline and the printed columns work; its numbers mean nothing).

    python benchmarks/da_validators.py --runs_dir /tmp/da_validators --data_dir /work/shared/data
"""

from __future__ import annotations

import argparse
import calendar
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAIR_PLUGIN = REPO / "benchmarks" / "rotated_mnist_pair.py"
VALIDATORS = ["source_val", "entropy", "im", "snd", "dev"]
RULES = [*VALIDATORS, "target_oracle"]
MNIST_FIRST = ["ERM", "DANN", "CDANN", "CORAL", "MMD", "CDAN", "MCC", "DAN"]
MNIST_LATER = ["JAN", "CDAN_E", "DANN_BSP", "CDAN_BSP", "MCD", "AFN", "MDD", "ADDA", "FixMatch"]
PACS_METHODS = ["ERM", "DANN", "CORAL", "MMD", "CDAN"]


@dataclass(frozen=True)
class Run:
    """One ``dgsamp train`` command: ``group/name`` under the runs directory."""

    group: str
    name: str
    args: tuple[str, ...]

    def command(self, runs_dir: Path) -> list[str]:
        return [sys.executable, "-m", "dgsamp", "train", *self.args,
                "--output_dir", str(runs_dir / self.group / self.name), "--progress", "lines"]


def mnist_args(options: argparse.Namespace) -> tuple[str, ...]:
    return ("--plugin", str(PAIR_PLUGIN), "--dataset", "RotatedMNIST0to75", "--data_dir", options.data_dir,
            "--source", "0", "--target", "75", "--protocol", "tllib", "--energy", "auto",
            "--epochs", str(options.epochs), "--steps_per_epoch", str(options.steps_per_epoch),
            "--lr", str(options.lr), "--backbone_lr_mult", str(options.backbone_lr_mult))


def pacs_args(options: argparse.Namespace, resolution: int, epochs: int, steps: int) -> tuple[str, ...]:
    return ("--dataset", "PACSMini", "--source", "photo", "--target", "sketch", "--resolution", str(resolution),
            "--protocol", "tllib", "--energy", "auto", "--epochs", str(epochs), "--steps_per_epoch", str(steps))


def planned_runs(options: argparse.Namespace) -> list[Run]:
    """Every run of the chosen groups, in the order they start, so that a deadline cuts the least
    needed: seed 0 of the eight main methods, PACSMini seed 0, the GradSamp pair seed 0, seed 0
    of the other tllib methods (every method runs once before any runs twice), seeds 1 and 2 of
    the main methods, the GradSamp pairs of seeds 1 and 2, PACSMini's other seeds, then seeds
    1 and 2 of the other tllib methods (every method gets ``--seeds`` trial seeds)."""
    if options.smoke:
        return [Run("smoke", f"{options.smoke_method}_s0",
                    (*pacs_args(options, 32, 2, 3), "--algorithm", options.smoke_method, "--trial_seed", "0"))]
    mnist, pacs = mnist_args(options), pacs_args(options, options.pacs_resolution, options.epochs,
                                                 options.pacs_steps_per_epoch)
    gradsamp = (*mnist, "--gradsamp", "periodic", "--gradsamp_period", "3")
    seeds = range(options.seeds)

    def pair(seed: int) -> list[tuple]:
        return [("gradsamp", f"{options.best}_gradsamp", gradsamp, seed),
                ("gradsamp", f"{options.best}_skip", (*gradsamp, "--gradsamp_dist", "skip"), seed)]

    plan = (
        [("mnist", m, mnist, 0) for m in MNIST_FIRST]
        + [("pacs", m, pacs, 0) for m in PACS_METHODS]
        + pair(0)
        + [("mnist", m, mnist, 0) for m in MNIST_LATER]
        + [("mnist", m, mnist, seed) for seed in seeds[1:] for m in MNIST_FIRST]
        + [entry for seed in seeds[1:] for entry in pair(seed)]
        + [("pacs", m, pacs, seed) for seed in range(1, options.pacs_seeds) for m in PACS_METHODS]
        + [("mnist", m, mnist, seed) for seed in seeds[1:] for m in MNIST_LATER]
    )
    runs = []
    for group, name, base, seed in plan:
        if group in options.groups:
            algorithm = options.best if group == "gradsamp" else name
            own = method_args(algorithm, options) if group == "mnist" else ()
            runs.append(Run(group, f"{name}_s{seed}",
                            (*base, "--algorithm", algorithm, *own, "--trial_seed", str(seed))))
    return runs


def method_args(algorithm: str, options: argparse.Namespace) -> tuple[str, ...]:
    """Per-method flags of the short MNIST runs: ADDA's source-only pre-training (tllib: 3 of its
    epochs, 3,000 updates) is cut to the first of the 3 epochs, else it would never adapt."""
    if algorithm == "ADDA":
        return ("--pretrain_steps", str(options.steps_per_epoch))
    return ()


def launch(runs: list[Run], runs_dir: Path, parallel: int, deadline: float | None) -> None:
    """Run what is not done yet, ``parallel`` at a time; a run starts only before ``deadline``."""
    pending = [run for run in runs if not (runs_dir / run.group / run.name / "done").exists()]
    active: list[tuple[Run, subprocess.Popen, float]] = []
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    while pending or active:
        while pending and len(active) < parallel and (deadline is None or time.time() < deadline):
            run = pending.pop(0)
            log = runs_dir / run.group / f"{run.name}.log"
            log.parent.mkdir(parents=True, exist_ok=True)
            print(f"start {run.group}/{run.name}: {' '.join(run.command(runs_dir)[1:])}", flush=True)
            with log.open("a") as handle:
                process = subprocess.Popen(run.command(runs_dir), cwd=REPO, env=environment,
                                           stdout=handle, stderr=subprocess.STDOUT)
            active.append((run, process, time.time()))
        if deadline is not None and time.time() >= deadline:
            pending.clear()
        time.sleep(0.5)
        for entry in list(active):
            run, process, started = entry
            if process.poll() is not None:
                active.remove(entry)
                print(f"end {run.group}/{run.name}: exit {process.returncode} after {time.time() - started:.0f}s",
                      flush=True)


def leaderboard_json(group_dir: Path, rule: str) -> dict:
    """``dgsamp leaderboard GROUP_DIR --selection RULE --format json``, run in this process
    (one interpreter start instead of one per rule) through the CLI's own ``main``."""
    from dgsamp.cli import main as dgsamp_main

    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "table.json"
        finished = [str(done.parent) for done in sorted(group_dir.glob("*/done"))]  # not a run cut mid-way
        code = dgsamp_main(["leaderboard", *finished, "--selection", rule, "--format", "json",
                            "--output", str(output), "--plugin", str(PAIR_PLUGIN)])
        if code != 0:
            raise SystemExit(f"dgsamp leaderboard {group_dir} --selection {rule} exited {code}")
        return json.loads(output.read_text())


def rows_by_rule(group_dir: Path) -> dict[str, dict[str, dict]]:
    """``{rule: {row label: row}}`` from the leaderboard's JSON (one DA task per group)."""
    result = {}
    for rule in RULES:
        tables = leaderboard_json(group_dir, rule)["tables"]
        result[rule] = {row["label"]: row for table in tables for row in table["rows"]}
    return result


def cell(row: dict | None) -> str:
    if row is None or row["avg"] is None:
        return "—"
    only = row["cells"][0]
    return f"{only['mean']:.1f} ± {only['err']:.1f}"


def validator_table(group_dir: Path, reference: str = "ERM") -> str:
    """Markdown: a row per method, target accuracy under each rule, gaps to the oracle, FLOPs ratio."""
    rules = rows_by_rule(group_dir)
    oracle = rules["target_oracle"]
    base_flops = (oracle.get(reference) or {}).get("flops")
    head = ["method", "seeds", *VALIDATORS, "target_oracle", *(f"gap {v}" for v in VALIDATORS),
            f"FLOPs / {reference}"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    all_gaps: dict[str, list[float]] = {rule: [] for rule in VALIDATORS}
    for label, best in oracle.items():
        gaps = []
        for rule in VALIDATORS:
            row = rules[rule].get(label)
            if row is None or row["avg"] is None:
                gaps.append("—")
                continue
            all_gaps[rule].append(best["avg"] - row["avg"])
            gaps.append(f"{all_gaps[rule][-1]:.1f}")
        flops = f"{best['flops'] / base_flops:.2f}" if base_flops and best.get("flops") else "—"
        seeds = str(best["cells"][0]["n"])
        lines.append("| " + " | ".join([label, seeds, *(cell(rules[r].get(label)) for r in VALIDATORS),
                                          cell(best), *gaps, flops]) + " |")
    means = [f"{sum(g) / len(g):.1f}" if g else "—" for g in all_gaps.values()]
    lines.append("| " + " | ".join(["mean gap over methods", "", *[""] * 6, *means, ""]) + " |")
    return "\n".join(lines)


def gradsamp_table(group_dir: Path, plain_dir: Path, best: str) -> str:
    """Markdown: GradSamp, its skip control and plain backprop (the ``mnist`` group's ``best`` row):
    target accuracy under the oracle and source_val, training FLOPs and energy relative to plain."""
    rules = {rule: rows_by_rule_single(group_dir, rule) for rule in ("target_oracle", "source_val")}
    plain = {rule: rows_by_rule_single(plain_dir, rule).get(best) if any(plain_dir.glob("*/done")) else None
             for rule in rules}
    base = plain["target_oracle"]
    head = ["variant", "seeds", "target_oracle", "source_val", "FLOPs", "FLOPs / plain", "energy / plain"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    entries = [(f"{best} (plain backprop)", base, plain["source_val"])] if base else []
    entries += [(label, row, rules["source_val"].get(label)) for label, row in rules["target_oracle"].items()]
    for label, row, source_val in entries:
        flops = f"{row['flops'] / base['flops']:.2f}" if base and base.get("flops") else "—"
        energy = "n/a (unmeasured)" if row["energy_kJ"] is None or base is None or base["energy_kJ"] is None \
            else f"{row['energy_kJ'] / base['energy_kJ']:.2f}"
        lines.append("| " + " | ".join([label, str(row["cells"][0]["n"]), cell(row), cell(source_val),
                                          f"{row['flops']:.3g}", flops, energy]) + " |")
    return "\n".join(lines)


def rows_by_rule_single(group_dir: Path, rule: str) -> dict[str, dict]:
    tables = leaderboard_json(group_dir, rule)["tables"]
    return {row["label"]: row for table in tables for row in table["rows"]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs_dir", type=Path, default=Path("/tmp/dgsamp_da_validators"))
    parser.add_argument("--data_dir", default="/work/shared/data")
    parser.add_argument("--groups", nargs="+", default=["mnist", "gradsamp", "pacs"],
                        choices=["mnist", "gradsamp", "pacs"])
    parser.add_argument("--seeds", type=int, default=3, help="trial seeds of every MNIST method (and GradSamp)")
    parser.add_argument("--pacs_seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--steps_per_epoch", type=int, default=40)
    parser.add_argument("--pacs_steps_per_epoch", type=int, default=30)
    parser.add_argument("--pacs_resolution", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--backbone_lr_mult", type=float, default=1.0)
    parser.add_argument("--best", default="DANN", help="the method of the GradSamp row")
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--deadline", help="UTC HH:MM after which no run starts (the tables use what finished)")
    parser.add_argument("--tables_only", action="store_true", help="launch nothing; print the tables")
    parser.add_argument("--smoke", action="store_true", help="one method, 1 seed, 2 epochs x 3 steps, PACSMini 32 px")
    parser.add_argument("--smoke_method", default="DANN")
    return parser.parse_args(argv)


def deadline_timestamp(text: str | None) -> float | None:
    """``HH:MM`` UTC today as a Unix time (None: no deadline)."""
    if text is None:
        return None
    hours, minutes = (int(part) for part in text.split(":"))
    today = time.gmtime()
    return float(calendar.timegm((today.tm_year, today.tm_mon, today.tm_mday, hours, minutes, 0)))


def main(argv: list[str] | None = None) -> None:
    options = parse_args(argv)
    runs = planned_runs(options)
    if not options.tables_only:
        launch(runs, options.runs_dir, options.parallel, deadline_timestamp(options.deadline))
    for group in dict.fromkeys(run.group for run in runs):
        group_dir = options.runs_dir / group
        finished = len(list(group_dir.glob("*/done")))
        planned = sum(run.group == group for run in runs)
        if not finished:
            print(f"\n## {group}: no finished runs")
            continue
        print(f"\n## {group} ({group_dir}): {finished} finished runs of {planned} planned\n")
        if group == "gradsamp":
            print(gradsamp_table(group_dir, options.runs_dir / "mnist", options.best))
        else:
            print(validator_table(group_dir))


if __name__ == "__main__":
    main()
