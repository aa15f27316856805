"""Small helpers shared by tests: repo paths, the real data in ../shared/data, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_data_dir(*parts: str) -> Path:
    """``../shared/data/PARTS``, or skip the calling test when it is absent (a fresh clone)."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found: {path} (../shared/data beside the repo)")
    return path


TINY_RUN = [  # dgsamp's own protocol: epochs, joint passes, clean evaluation (docs/protocol.md)
    "--protocol", "dgsamp",
    "--dataset", "PACSMini", "--backbone", "test_efficientnet", "--resolution", "32",
    "--pretrained", "none", "--epochs", "2", "--steps_per_epoch", "2", "--batch_size", "8",
    "--progress", "lines", "--energy", "auto",
]


def run_cli(*argv: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python -m dgsamp ARGV`` in a real subprocess, with one torch thread."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_SILENT": "true"}
    return subprocess.run(
        [sys.executable, "-m", "dgsamp", *argv], capture_output=True, text=True,
        cwd=cwd, env=env, timeout=timeout,
    )


def train_in_process(output_dir: Path, *extra: str) -> int:
    """``dgsamp train TINY_RUN --output_dir OUTPUT_DIR EXTRA`` in this process."""
    from dgsamp.cli import main  # imported here: conftest imports this module

    return main(["train", *TINY_RUN, "--output_dir", str(output_dir), *extra])


def read_results(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]


def without_timing(record: dict) -> dict:
    """A record minus wall-clock and energy fields, which no two runs share."""
    drop = ("seconds", "energy_J")
    return {k: v for k, v in record.items() if not any(part in k for part in drop) and k != "args"}


def run_whole_and_killed(argv: list[str], root: Path, pause: str = "train:3") -> tuple[Path, Path]:
    """``dgsamp train ARGV`` twice under ROOT: ``whole`` uninterrupted, ``killed`` SIGKILLed at the
    crash point ``pause`` and started again (it must resume); both with one torch thread, so the
    float sums are the same. Returns (whole, killed) run directories."""
    import signal
    import time

    command = [sys.executable, "-m", "dgsamp", "train", *argv]
    whole, killed = root / "whole", root / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    assert subprocess.run([*command, "--output_dir", str(whole)], capture_output=True, env=env).returncode == 0
    process = subprocess.Popen([*command, "--output_dir", str(killed)], env={**env, "DGSAMP_TEST_PAUSE_AT": pause},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = killed / f".paused-{pause.replace(':', '-')}"
    deadline = time.monotonic() + 300  # a guard against a hung child, not a timing assertion
    while not marker.exists():
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = subprocess.run([*command, "--output_dir", str(killed)], capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    return whole, killed
