"""benchmarks/da_validators.py: its ``--smoke`` mode end to end (a real ``dgsamp train`` DA
run on the embedded PACSMini, 2 epochs x 3 steps at 32 px, read back by the leaderboard),
its resumability and the order in which a deadline cuts the plan."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

from tests.helpers import REPO

COLUMNS = ["source_val", "entropy", "im", "snd", "dev", "target_oracle"]


def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("da_validators")


def test_smoke_prints_every_validator_beside_the_oracle_and_resumes(tmp_path, monkeypatch, capsys):
    done = subprocess.run([sys.executable, "benchmarks/da_validators.py", "--smoke", "--runs_dir", str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| method |"))
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    assert cells[2:8] == COLUMNS and [f"gap {name}" for name in COLUMNS[:5]] == cells[8:13]
    row = [cell.strip() for cell in next(line for line in lines if line.startswith("| DANN |")).strip("|").split("|")]
    assert row[1] == "1"  # one trial seed
    accuracies = [float(re.fullmatch(r"(\d+\.\d) ± (\d+\.\d)", cell).group(1)) for cell in row[2:8]]
    assert all(0.0 <= value <= 100.0 for value in accuracies)
    # the oracle is the best target accuracy over the evaluations, so no rule's choice beats it
    assert all(float(gap) >= 0.0 for gap in row[8:13])
    assert (tmp_path / "smoke" / "DANN_s0" / "done").exists()

    script = load_script(monkeypatch)
    options = script.parse_args(["--smoke", "--runs_dir", str(tmp_path)])
    script.launch(script.planned_runs(options), tmp_path, parallel=2, deadline=None)
    assert "start" not in capsys.readouterr().out  # a finished run directory is skipped


def test_a_deadline_cuts_the_other_seeds_last(monkeypatch):
    script = load_script(monkeypatch)
    runs = script.planned_runs(script.parse_args(["--best", "CDAN"]))
    order = [f"{run.group}/{run.name}" for run in runs]
    main, later = script.MNIST_FIRST, script.MNIST_LATER
    assert len(main) == 8 and len(later) == 9
    assert order[:8] == [f"mnist/{m}_s0" for m in main]
    assert order[8:13] == [f"pacs/{m}_s0" for m in script.PACS_METHODS]
    assert order[13:15] == ["gradsamp/CDAN_gradsamp_s0", "gradsamp/CDAN_skip_s0"]
    assert order[15:24] == [f"mnist/{m}_s0" for m in later]  # every method once first
    assert order[24:40] == [f"mnist/{m}_s{seed}" for seed in (1, 2) for m in main]
    assert order[40:44] == ["gradsamp/CDAN_gradsamp_s1", "gradsamp/CDAN_skip_s1",
                            "gradsamp/CDAN_gradsamp_s2", "gradsamp/CDAN_skip_s2"]
    assert order[44:54] == [f"pacs/{m}_s{seed}" for seed in (1, 2) for m in script.PACS_METHODS]
    assert order[54:] == [f"mnist/{m}_s{seed}" for seed in (1, 2) for m in later]  # every method 3 seeds, last
    assert len(order) == 17 * 3 + 6 + 5 * 3
    gradsamp = [run for run in runs if run.group == "gradsamp"]
    assert all(run.args[run.args.index("--algorithm") + 1] == "CDAN" for run in gradsamp)
    assert all(run.args[run.args.index("--gradsamp_period") + 1] == "3" for run in gradsamp)
    assert sum("skip" in run.args for run in gradsamp) == 3
    adda = [run for run in runs if run.name.startswith("ADDA_")]  # pre-training cut to the first epoch
    assert len(adda) == 3 and all(run.args[run.args.index("--pretrain_steps") + 1] == "40" for run in adda)
    assert not any("--pretrain_steps" in run.args for run in runs if not run.name.startswith("ADDA_"))
    only_pacs = script.planned_runs(script.parse_args(["--groups", "pacs", "--pacs_seeds", "1"]))
    assert [run.name for run in only_pacs] == [f"{m}_s0" for m in script.PACS_METHODS]
