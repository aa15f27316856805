"""What the ``reproduce_*`` scripts share: running ``dgsamp train`` jobs and writing a cell.

A job is the argv of ``dgsamp train`` (without the ``dgsamp``). ``run_jobs`` runs them in
this process one after another, or as ``python -m dgsamp`` processes, ``max_parallel`` at a
time; a job whose ``--output_dir`` already holds a finished run (its ``done`` marker) is
skipped, so a second call resumes where the first stopped.
"""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def output_dir_of(argv: list[str]) -> Path:
    """The ``--output_dir`` a job writes to."""
    return Path(argv[argv.index("--output_dir") + 1])


def is_finished(argv: list[str]) -> bool:
    """Whether the job's run directory holds a finished run (``dgsamp train`` wrote ``done``)."""
    return (output_dir_of(argv) / "done").exists()


def run_jobs(jobs: list[list[str]], max_parallel: int, in_process: bool = False) -> list[tuple[int, float]]:
    """(exit code, seconds) per job, in order; (0, 0.0) for a run that had already finished.

    ``in_process``: one by one through ``dgsamp.cli.main`` (no process start-up; ``max_parallel``
    is then ignored); otherwise ``max_parallel`` ``python -m dgsamp`` processes at a time, the
    last 2,000 characters of a failed one's stderr printed.
    """
    def in_this_process(argv: list[str]) -> tuple[int, float]:
        from dgsamp.cli import main

        start = time.perf_counter()
        return main(argv), time.perf_counter() - start

    def in_subprocess(argv: list[str]) -> tuple[int, float]:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "dgsamp", *argv], capture_output=True, text=True)
        if done.returncode:
            print(f"failed ({done.returncode}): dgsamp {' '.join(argv)}\n{done.stderr[-2000:]}", file=sys.stderr)
        return done.returncode, time.perf_counter() - start

    run = in_this_process if in_process else in_subprocess

    def unless_finished(argv: list[str]) -> tuple[int, float]:
        return (0, 0.0) if is_finished(argv) else run(argv)

    if in_process or max_parallel <= 1:
        return [unless_finished(argv) for argv in jobs]
    with ThreadPoolExecutor(max_parallel) as pool:
        return list(pool.map(unless_finished, jobs))


def fmt(mean: float | None, err: float | None) -> str:
    """``91.4 ± 0.3`` (percent), ``—`` for a missing cell."""
    return "—" if mean is None else f"{mean:.1f} ± {err:.1f}"
