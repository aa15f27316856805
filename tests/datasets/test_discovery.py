"""Built-in packages import every module they hold, so a new file registers itself.

``dgsamp.algorithms`` and ``dgsamp.datasets`` keep no list of their modules: their
``__init__`` imports whatever ``pkgutil`` finds beside it. These tests check that against
the files on disk, and that a module added to such a package is registered with no other
edit (in a subprocess, on a package written to a temporary directory).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dgsamp.algorithms
import dgsamp.datasets
from dgsamp.registry import ALGORITHMS, DATASETS
from tests.helpers import REPO


@pytest.mark.parametrize(("folder", "package"), [("algorithms", "dgsamp.algorithms"), ("datasets", "dgsamp.datasets")])
def test_every_file_of_the_package_is_imported(folder, package):
    files = sorted(path.stem for path in (REPO / folder).glob("*.py") if not path.stem.startswith("_"))
    assert files, f"no modules found in {folder}/"
    missing = [stem for stem in files if f"{package}.{stem}" not in sys.modules]
    assert not missing, f"{folder}/ modules not imported by {package}: {missing}"


def test_exports_stay_the_base_classes():
    from dgsamp.algorithms.base import Algorithm
    from dgsamp.datasets.base import MultiDomainDataset

    assert dgsamp.algorithms.Algorithm is Algorithm
    assert dgsamp.datasets.MultiDomainDataset is MultiDomainDataset


def test_each_registered_class_lives_in_its_package():
    for name in ("ERM", "DANN", "ARM", "VREx"):
        assert ALGORITHMS.get(name).__module__.startswith("dgsamp.algorithms.")
    for name in ("PACS", "PACSMini", "ColoredMNIST"):
        assert DATASETS.get(name).__module__.startswith("dgsamp.datasets.")


def test_a_new_module_in_a_discovering_package_registers_itself(tmp_path: Path):
    package = tmp_path / "probe_methods"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent("""
        from dgsamp.registry import import_submodules
        IMPORTED = import_submodules(__name__, __path__)
    """))
    (package / "zeta.py").write_text(textwrap.dedent("""
        from dgsamp.algorithms.erm import ERM
        from dgsamp.registry import register_algorithm

        @register_algorithm("DiscoveryProbeZeta")
        class Zeta(ERM):
            pass
    """))
    (package / "alpha.py").write_text("VALUE = 1\n")
    (package / "_private.py").write_text("raise RuntimeError('a private module is not imported')\n")
    script = textwrap.dedent("""
        import probe_methods
        from dgsamp.registry import ALGORITHMS
        print(probe_methods.IMPORTED)
        print(ALGORITHMS.get("DiscoveryProbeZeta").__module__)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    imported, module = result.stdout.splitlines()
    assert imported == "['probe_methods.alpha', 'probe_methods.zeta']"
    assert module == "probe_methods.zeta"
