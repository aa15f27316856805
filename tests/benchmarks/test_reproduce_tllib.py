"""benchmarks/reproduce_tllib.py: its ``--smoke`` mode end to end (a real ``dgsamp train``
subprocess on PACSMini), the comparison table on hand-written runs against tllib's published
number (the differences worked out here), resuming, and the one-line refusals."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO

SCRIPT = REPO / "benchmarks" / "reproduce_tllib.py"


@pytest.fixture
def script(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("reproduce_tllib")


def test_smoke_runs_dann_on_pacs_mini_and_says_tllib_has_no_row(tmp_path, script, capsys):
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--output_dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "| Method | Selection | P→S | Avg (1 task) |" in done.stdout
    for selection in ("target_oracle", "source_val"):
        (line,) = [line for line in done.stdout.splitlines() if line.startswith(f"| DANN | {selection} |")]
        assert line.count("(no published row)") == 2 and "—" not in line
    assert "1 runs (0 already finished, skipped)" in done.stdout and "0 failed" in done.stdout
    run_dir = tmp_path / "PACSMini" / "DANN" / "photo_to_sketch_seed0"
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    args = records[-1]["args"]
    assert (args["protocol"], args["implementation"], args["task_label"]) == ("tllib", "DANN_tllib", "P→S")
    # a second call finds the run finished and only prints the table again
    assert script.main(["--smoke", "--output_dir", str(tmp_path)]) == 0
    assert "1 runs (1 already finished, skipped)" in capsys.readouterr().out


def write_office31_run(root: Path, seed: int, points: list[tuple[float, float]]) -> Path:
    """A finished DANN A→W run on Office31: per evaluation (target accuracy, source val accuracy)."""
    args = {"dataset": "Office31", "algorithm": "DANN", "implementation": "DANN_tllib", "protocol": "tllib",
            "backbone": "resnet50.tv_in1k", "task": "domain_adaptation", "test_envs": [2], "source": [0],
            "target": [2], "task_label": "A→W", "hparams_seed": 0, "trial_seed": seed, "epochs": len(points)}
    run_dir = root / "Office31" / "DANN" / f"A_to_W_seed{seed}"
    run_dir.mkdir(parents=True)
    lines = [{"args": args, "hparams": {}, "epoch": epoch, "step": 1000 * epoch - 1, "epoch_kind": "backprop",
              "env0_in_acc": 0.99, "env0_out_acc": source_val, "env2_in_acc": target, "env2_out_acc": target,
              "source_val_acc": source_val}
             for epoch, (target, source_val) in enumerate(points, start=1)]
    (run_dir / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    (run_dir / "done").write_text("")
    return run_dir


def test_table_sets_each_selection_beside_tllibs_published_number(tmp_path, script):
    runs = [write_office31_run(tmp_path, 0, [(0.88, 0.95), (0.92, 0.90)]),
            write_office31_run(tmp_path, 1, [(0.90, 0.93), (0.86, 0.97)])]
    task = script.Task.parse("A->W")
    rows = script.dgsamp_rows(runs, ["DANN"])
    table = script.comparison_table("Office31", [task], rows)
    published = 91.4  # tllib README.md line 100 (Office31, DANN, A→W)
    err = 100 * 0.01 / math.sqrt(2)  # population std of two seeds 0.02 apart, over sqrt(2)
    # target_oracle: best target accuracy per seed, .92 and .90 -> 91.0
    oracle = f"91.0 ± {err:.1f} ({published}, {91.0 - published:+.1f})"
    assert oracle == "91.0 ± 0.7 (91.4, -0.4)"
    assert f"| DANN | target_oracle | {oracle} | 91.0 ({published}, -0.4) |" in table
    # source_val: the best source validation point per seed, .95 -> .88 and .97 -> .86 -> 87.0
    assert f"| DANN | source_val | 87.0 ± 0.7 ({published}, {87.0 - published:+.1f}) | 87.0 (91.4, -4.4) |" in table
    assert "| Method | Selection | A→W | Avg (1 task) |" in table
    assert "Rows compared with tllib's script: DANN ← dann.py." in table
    everything = [script.Task.parse(key) for key in ("A→W", "D→W", "W→D", "A→D", "D→A", "W→A")]
    full = script.comparison_table("Office31", everything, rows)
    assert "| A→W | D→W | W→D | A→D | D→A | W→A | Avg |" in full
    assert "| DANN | target_oracle | 91.0 ± 0.7 (91.4, -0.4) | — (97.9) |" in full
    assert full.splitlines()[4].endswith("| — (86.1) |")  # tllib's printed Avg over the six tasks


@pytest.mark.parametrize(("argv", "message"), [
    (["--dataset", "PACS"], "tllib publishes no table for --dataset PACS; choose one of Office31,"),
    (["--dataset", "DomainNet", "--methods", "ADDA"], "tllib publishes no DomainNet row for ADDA; methods with"),
    (["--methods", "CORAL"], "tllib publishes no Office31 row for CORAL;"),
    (["--tasks", "A→C"], "tllib publishes no Office31 task A→C; its tasks: A→W, D→W, W→D, A→D, D→A, W→A"),
    (["--tasks", "AW"], "--tasks AW: write a task as SOURCE→TARGET"),
    (["--data_dir", "{tmp}/nowhere"], "Office31 data: {tmp}/nowhere/office31 not found; run `dgsamp data download"),
    ([], "Office31 data: no --data_dir given; run `dgsamp data download Office31 --data_dir DIR`"),
])
def test_refusals_are_one_line_and_exit_2_before_any_run(tmp_path, script, capsys, argv, message):
    argv = [part.replace("{tmp}", str(tmp_path)) for part in argv]
    assert script.main([*argv, "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("reproduce_tllib.py: error: " + message.replace("{tmp}", str(tmp_path)))
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()
