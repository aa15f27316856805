"""Reproduce tllib's published DA accuracies with dgsamp and print both side by side.

    python benchmarks/reproduce_tllib.py --methods DANN CDAN --dataset Office31 \\
        --tasks A→W D→W W→D A→D D→A W→A --data_dir DIR --seeds 0 1 2 \\
        --max_parallel 4 --device cuda --output_dir runs/reproduce_tllib   # on a GPU
    python benchmarks/reproduce_tllib.py --smoke --output_dir /tmp/smoke     # CPU, seconds

Every (method, task, seed) is one ``python -m dgsamp train --protocol tllib --source S
--target T --trial_seed SEED`` process (tllib's recipe for the dataset and method:
docs/protocol.md), ``--max_parallel`` at a time; a run directory that holds a finished run
is skipped, so a second call resumes. Tasks are written ``A→W`` (or ``A->W``); without
``--tasks`` every task of tllib's table for the dataset runs.

The table gives, per method and task, dgsamp's target accuracy (mean ± standard error over
seeds, %; VisDA-2017: mean per-class accuracy) under two selections: ``target_oracle``, the
epoch with the best target accuracy (what tllib reports), and ``source_val``, the epoch with
the best source validation accuracy (a real model selection), each beside tllib's published
number and the difference. ``Avg`` is the mean over the tasks run; where those are not all of
tllib's tasks, the published side is the mean of the same tasks' published numbers.

Refused before any work (one line, exit code 2): a dataset, method or task that tllib
publishes no number for (``benchmarks/tllib_published.py``), and a ``--data_dir`` without the
dataset (``dgsamp data download Office31 --data_dir DIR`` fetches it).

``--smoke`` checks the whole path on the CPU: PACSMini (embedded), DANN, photo→sketch, 2
epochs of 2 steps at 32 px; tllib has no PACS table, so each cell reads "no published row".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from reproduce_kit import fmt, is_finished, output_dir_of, run_jobs
from tllib_published import PUBLISHED, SOURCE

from dgsamp.errors import UserError

SELECTIONS = ("target_oracle", "source_val")
SMOKE = {"dataset": "PACSMini", "methods": ["DANN"], "tasks": ["photo→sketch"]}
SMOKE_FLAGS = ["--epochs", "2", "--steps_per_epoch", "2", "--resolution", "32",  # a tiny random backbone:
               "--backbone", "test_efficientnet", "--pretrained", "none", "--batch_size", "8"]  # the path, not accuracy
NO_ROW = "no published row"


@dataclass(frozen=True)
class Task:
    """One DA task: ``source``/``target`` as given (names, short names), ``key`` as tllib's tables write it."""

    source: str
    target: str

    @staticmethod
    def parse(text: str) -> Task:
        source, arrow, target = text.replace("->", "→").partition("→")
        if not arrow or not source or not target:
            raise UserError(f"--tasks {text}: write a task as SOURCE→TARGET (or SOURCE->TARGET), e.g. A→W")
        return Task(source, target)

    @property
    def key(self) -> str:
        return f"{self.source}->{self.target}"

    def label(self, dataset: str) -> str:
        """The task's column name as ``dgsamp train`` records it (``A→W``; PACS photo→sketch: ``P→S``)."""
        from dgsamp.config.domains import domain_index, task_label
        from dgsamp.registry import DATASETS

        dataset_class = DATASETS.get(dataset)
        source, target = (domain_index(self.source, dataset_class, "--source"),
                          domain_index(self.target, dataset_class, "--target"))
        return task_label(dataset_class, [source], [target])


def tllib_method(method: str) -> str | None:
    """The tllib script whose published row a dgsamp method is compared with (``--protocol tllib``'s map)."""
    from dgsamp.config.tllib_preset import TLLIB_METHOD

    return TLLIB_METHOD.get(method)


def published_row(dataset: str, method: str) -> dict[str, float] | None:
    """tllib's published ``{task key: accuracy, "Avg": ...}`` for the method, None when tllib has none."""
    name = tllib_method(method)
    return PUBLISHED.get(dataset, {}).get(name) if name else None


def check_request(dataset: str, methods: list[str], tasks: list[Task], data_dir: Path | None) -> None:
    """Refuse what tllib publishes no number for, and a data folder without the dataset."""
    from dgsamp.registry import ALGORITHMS, DATASETS

    if dataset not in PUBLISHED:
        raise UserError(f"tllib publishes no table for --dataset {dataset}; choose one of {', '.join(PUBLISHED)}")
    for method in methods:
        if method not in ALGORITHMS:
            raise UserError(f"--methods {method}: no such algorithm; `dgsamp list algorithms` lists them")
        if published_row(dataset, method) is None:
            having = [m for m in ALGORITHMS.names() if published_row(dataset, m) is not None]
            raise UserError(f"tllib publishes no {dataset} row for {method}; methods with one: {', '.join(having)}")
    known = [key for key in next(iter(PUBLISHED[dataset].values())) if key != "Avg"]
    for task in tasks:
        if task.key not in known:
            raise UserError(f"tllib publishes no {dataset} task {task.source}→{task.target}; its tasks: "
                            f"{', '.join(key.replace('->', '→') for key in known)}")
    folder = DATASETS.get(dataset).DATASET_DIR
    if data_dir is None or not (data_dir / folder).is_dir():
        where = "no --data_dir given" if data_dir is None else f"{data_dir / folder} not found"
        raise UserError(f"{dataset} data: {where}; run `dgsamp data download {dataset} --data_dir DIR` "
                        "and pass --data_dir DIR")


def job_argv(args: argparse.Namespace, method: str, task: Task, seed: int) -> list[str]:
    """``dgsamp train`` for one (method, task, seed) under ``--protocol tllib``."""
    run_dir = args.output_dir / args.dataset / method / f"{task.source}_to_{task.target}_seed{seed}"
    argv = ["train", "--protocol", "tllib", "--dataset", args.dataset, "--algorithm", method,
            "--source", task.source, "--target", task.target, "--trial_seed", str(seed), "--hparams_seed", "0",
            "--device", args.device, "--energy", args.energy, "--progress", "lines", "--output_dir", str(run_dir)]
    if args.data_dir is not None:
        argv += ["--data_dir", str(args.data_dir)]
    return argv + (SMOKE_FLAGS if args.smoke else [])


def dgsamp_rows(run_dirs: list[Path], methods: list[str]) -> list[dict]:
    """Per method and selection: ``{"method", "selection", "cells": {task label: (mean, err, n)}}``
    from the finished runs' target accuracy at the point each selection picks."""
    from dgsamp.leaderboard.adaptation_selection import ADAPTATION_RULES
    from dgsamp.leaderboard.runs import load_runs
    from dgsamp.leaderboard.tables import build_leaderboard

    existing = [path for path in run_dirs if (path / "results.jsonl").is_file()]
    runs = load_runs(existing) if existing else None
    rows = []
    for method in methods:
        for selection in SELECTIONS:
            cells: dict[str, tuple[float | None, float | None, int]] = {}
            if runs is not None:
                for table in build_leaderboard(runs, ADAPTATION_RULES[selection]).tables:
                    for row in table.rows:
                        if row.variant.algorithm == method:
                            for label, cell in zip(table.env_names, row.cells, strict=True):
                                cells[label] = (cell.mean, cell.err, cell.n)
            rows.append({"method": method, "selection": selection, "cells": cells})
    return rows


def _compared(mean: float | None, err: float | None, published: float | None) -> str:
    text = fmt(mean, err)
    if published is None:
        return f"{text} ({NO_ROW})"
    return f"{text} ({published:.1f}, {mean - published:+.1f})" if mean is not None else f"{text} ({published:.1f})"


def comparison_table(dataset: str, tasks: list[Task], rows: list[dict]) -> str:
    """Markdown: a row per (method, selection), per task 'dgsamp mean ± err (tllib, difference)', then Avg."""
    every_task = dataset in PUBLISHED and {t.key for t in tasks} == {
        key for key in next(iter(PUBLISHED[dataset].values())) if key != "Avg"}
    avg_name = "Avg" if every_task else f"Avg ({len(tasks)} task{'s' if len(tasks) != 1 else ''})"
    lines = [f"### {dataset} · protocol tllib · target accuracy (%): dgsamp mean ± err over seeds "
             "(tllib published, dgsamp − tllib)", "",
             "| Method | Selection | " + " | ".join([*(t.label(dataset) for t in tasks), avg_name]) + " |",
             "|---" * (len(tasks) + 3) + "|"]
    for row in rows:
        published = published_row(dataset, row["method"])
        cells, means, references = [], [], []
        for task in tasks:
            mean, err, _ = row["cells"].get(task.label(dataset), (None, None, 0))
            reference = None if published is None else published.get(task.key)
            cells.append(_compared(mean, err, reference))
            means.append(mean)
            references.append(reference)
        avg = None if None in means else sum(means) / len(means)
        reference_avg = None
        if published is not None:
            reference_avg = published.get("Avg") if every_task else sum(references) / len(references)
        avg_text = "—" if avg is None else f"{avg:.1f}"
        avg_text += f" ({NO_ROW})" if reference_avg is None else (
            f" ({reference_avg:.1f}, {avg - reference_avg:+.1f})" if avg is not None else f" ({reference_avg:.1f})")
        lines.append(f"| {row['method']} | {row['selection']} | " + " | ".join([*cells, avg_text]) + " |")
    compared = sorted({f"{row['method']} ← {tllib_method(row['method'])}.py" for row in rows
                       if published_row(dataset, row["method"]) is not None})
    lines += ["", f"tllib published: {SOURCE} (tllib reports the best target accuracy over epochs, "
              "i.e. target_oracle; source_val is a selection that reads no target label)."]
    if compared:
        lines.append(f"Rows compared with tllib's script: {', '.join(compared)}.")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=None,
                        help="dgsamp algorithm names, e.g. DANN CDAN MDD (default: DANN)")
    parser.add_argument("--dataset", default="Office31", help="Office31, OfficeHome, VisDA2017 or DomainNet")
    parser.add_argument("--tasks", nargs="+", default=None, help="A→W ... (default: every task of tllib's table)")
    parser.add_argument("--data_dir", type=Path, default=None, help="the folder holding the dataset's folder")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="trial seeds, one run per task each")
    parser.add_argument("--max_parallel", type=int, default=1, help="dgsamp train processes at once")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--energy", default="auto", help="dgsamp train --energy")
    parser.add_argument("--output_dir", type=Path, default=Path("runs/reproduce_tllib"))
    parser.add_argument("--smoke", action="store_true",
                        help="CPU: PACSMini, DANN, photo→sketch, 2 epochs of 2 steps at 32 px (checks the path)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.smoke:
            args.dataset, args.data_dir, args.device, args.energy = SMOKE["dataset"], None, "cpu", "none"
            args.methods = args.methods or SMOKE["methods"]
            tasks = [Task.parse(text) for text in SMOKE["tasks"]]
        else:
            args.methods = args.methods or ["DANN"]
            if args.tasks is None and args.dataset in PUBLISHED:
                args.tasks = [key for key in next(iter(PUBLISHED[args.dataset].values())) if key != "Avg"]
            tasks = [Task.parse(text) for text in args.tasks or []]
            check_request(args.dataset, args.methods, tasks, args.data_dir)
    except UserError as error:
        print(f"reproduce_tllib.py: error: {error}", file=sys.stderr)
        return 2
    jobs = [job_argv(args, method, task, seed) for method in args.methods for task in tasks for seed in args.seeds]
    already = sum(is_finished(job) for job in jobs)
    start = time.perf_counter()
    outcomes = run_jobs(jobs, args.max_parallel)
    wall = time.perf_counter() - start
    failed = [job for job, (code, _) in zip(jobs, outcomes, strict=True) if code != 0]
    rows = dgsamp_rows([output_dir_of(job) for job in jobs], args.methods)
    print(comparison_table(args.dataset, tasks, rows))
    print(f"{len(jobs)} runs ({already} already finished, skipped) in {wall:.0f} s wall; {len(failed)} failed")
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "comparison.json").write_text(json.dumps(
        {"argv": sys.argv[1:] if argv is None else argv, "dataset": args.dataset,
         "tasks": [task.label(args.dataset) for task in tasks], "wall_seconds": wall, "rows": rows,
         "published": {method: published_row(args.dataset, method) for method in args.methods},
         "published_source": SOURCE}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
