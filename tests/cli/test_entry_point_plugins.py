"""Installed packages register algorithms through the ``dgsamp.plugins`` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys


def test_installed_package_registers_through_entry_point(tmp_path):
    (tmp_path / "lab_algorithms.py").write_text(
        "from dgsamp.algorithms.erm import ERM\n"
        "from dgsamp.registry import register_algorithm\n\n"
        "@register_algorithm('LabERM')\n"
        "class LabERM(ERM):\n"
        "    '''ERM under another name, shipped by an installed package.'''\n"
    )
    dist_info = tmp_path / "lab_algorithms-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: lab-algorithms\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[dgsamp.plugins]\nlab = lab_algorithms\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    completed = subprocess.run([sys.executable, "-m", "dgsamp", "list", "algorithms"],
                               capture_output=True, text=True, env=env, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert "LabERM" in completed.stdout.split()
    without = subprocess.run([sys.executable, "-m", "dgsamp", "list", "algorithms"],
                             capture_output=True, text=True, timeout=300)
    assert "LabERM" not in without.stdout.split()
