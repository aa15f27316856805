"""The wheel installs everything under ``dgsamp`` (never a top-level ``datasets``) with the mini set.

The wheel is built from a copy of the sources, so a stale ``build/`` in the checkout can
neither hide nor add a module, and the checkout's ``build/`` and egg-info stay untouched.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO

# setup.cfg's package_dir: source folder -> its place in the wheel
PACKAGE_DIRS = {"dgsamp": "dgsamp", "algorithms": "dgsamp/algorithms", "datasets": "dgsamp/datasets"}
BUILD_FILES = ("setup.cfg", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A clean copy of what the wheel is built from (no caches, no build/, no egg-info)."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_FILES:
        shutil.copy2(REPO / name, source / name)
    for folder in PACKAGE_DIRS:
        shutil.copytree(REPO / folder, source / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return source


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    """The wheel pip builds from ``source``."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True, capture_output=True, cwd=out,
    )
    return next(out.glob("dgsamp-*.whl"))


def source_modules(root: Path) -> set[str]:
    """Every ``.py`` file of the source tree at ``root``, named by its path inside the wheel."""
    modules = set()
    for folder, target in PACKAGE_DIRS.items():
        for path in (root / folder).rglob("*.py"):
            if "__pycache__" not in path.parts:
                modules.add(f"{target}/{path.relative_to(root / folder).as_posix()}")
    return modules


def test_wheel_maps_algorithms_and_datasets_under_dgsamp(wheel):
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


def test_wheel_ships_every_source_module_and_nothing_else(wheel, source):
    """A subpackage forgotten in setup.cfg's ``packages`` list is missing from the wheel."""
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".py")}
    expected = source_modules(source)
    missing = sorted(expected - shipped)
    extra = sorted(shipped - expected)
    assert not missing, f"not in the wheel (add their packages to setup.cfg's packages): {missing}"
    assert not extra, f"in the wheel but not in the source tree: {extra}"
    assert {"dgsamp/modes/gradsamp/__init__.py", "dgsamp/algorithms/base.py"} <= shipped
