"""The README's custom-algorithm example works exactly as printed."""

from __future__ import annotations

import re

from tests.helpers import REPO, TINY_RUN, read_results, run_cli

README = REPO / "README.md"


def test_readme_plugin_example_trains(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if block.startswith("# my_alg.py"))
    assert 15 <= len(example.strip().splitlines()) <= 35  # "a complete ~20-line custom algorithm"
    plugin = tmp_path / "my_alg.py"
    plugin.write_text(example)
    run_dir = tmp_path / "run"
    completed = run_cli("train", *TINY_RUN, "--plugin", str(plugin), "--algorithm", "SmoothERM",
                        "--smoothing", "0.2", "--output_dir", str(run_dir))
    assert completed.returncode == 0, completed.stderr
    records = read_results(run_dir)
    assert records[-1]["hparams"]["smoothing"] == 0.2 and records[-1]["loss"] > 0
