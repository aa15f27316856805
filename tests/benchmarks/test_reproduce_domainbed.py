"""benchmarks/reproduce_domainbed.py: its ``--smoke`` mode end to end on real MNIST digits (a
175-digit copy, 3 steps per run), so the published comparison cannot rot between runs."""

from __future__ import annotations

import importlib
import json

from dgsamp.registry import DATASETS
from tests.helpers import REPO


def test_smoke_compares_every_test_domain_with_the_published_row(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    script = importlib.import_module("reproduce_domainbed")
    argv = ["--smoke", "--data_dir", str(shared_data), "--datasets", "ColoredMNIST",
            "--algorithms", "ERM", "--output_dir", str(tmp_path)]
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert "### ColoredMNIST · protocol domainbed2020 · mnist_cnn" in out
    assert "(71.7 ± 0.1, " in out and "(72.9 ± 0.2, " in out and "(10.0 ± 0.1, " in out
    assert "3 runs in" in out and "0 failed" in out
    rows = json.loads((tmp_path / "comparison.json").read_text())["rows"]
    assert [(row["dataset"], row["algorithm"]) for row in rows] == [("ColoredMNIST", "ERM")]
    assert set(script.PUBLISHED) == {"ColoredMNIST", "RotatedMNIST"}
    assert all(len(script.PUBLISHED[name][algorithm][0]) == len(DATASETS.get(name).ENVIRONMENTS)
               for name in script.PUBLISHED for algorithm in ("ERM", "CORAL", "DANN"))
    for row in rows:
        assert all(n == 1 for _, _, n in row["dgsamp"]) and row["selected_steps"] <= [0, 2]
    record = json.loads((tmp_path / "ColoredMNIST" / "ERM" / "env0_trial0" / "results.jsonl")
                        .read_text().splitlines()[-1])
    assert (record["step"], record["args"]["protocol"], record["args"]["steps"]) == (2, "domainbed2020", 3)
