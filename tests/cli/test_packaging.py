"""The wheel installs everything under ``dgsamp`` (never a top-level ``datasets``) with the mini set."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_maps_algorithms_and_datasets_under_dgsamp(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("dgsamp-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level <= {"dgsamp", next(n.split("/")[0] for n in names if ".dist-info/" in n)}
    for module in ("dgsamp/algorithms/erm.py", "dgsamp/algorithms/dann.py", "dgsamp/datasets/images.py",
                   "dgsamp/datasets/mnist.py", "dgsamp/commands/train.py", "dgsamp/sweep/__init__.py",
                   "dgsamp/cli.py"):
        assert module in names
    images = [n for n in names if n.startswith("dgsamp/embedded/pacs_mini/PACS/") and n.endswith(".jpg")]
    assert len(images) == 700
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "dgsamp = dgsamp.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
