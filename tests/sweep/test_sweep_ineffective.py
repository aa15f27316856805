"""Sweeps crossing a flag with values under which it does nothing: the flag is dropped from
those jobs (one summary line), job identity ignores it, and real mistakes still refuse."""

from __future__ import annotations

from pathlib import Path

import yaml

from dgsamp.cli import main
from dgsamp.sweep.plan import plan_sweep


def write_sweep(tmp_path: Path, name: str, parameters: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "program": "dgsamp", "method": "grid",
        "command": ["${env}", "${program}", "train", "${args}"],
        "parameters": {"dataset": {"value": "PACSMini"}, "epochs": {"value": 4}, **parameters},
    }))
    return path


MIXED = {"gradsamp": {"values": ["off", "periodic"]}, "gradsamp_period": {"values": [2, 3, 4]}}


def test_launch_drops_the_flag_where_it_has_no_effect_and_merges_the_jobs(tmp_path, capsys):
    sweep = write_sweep(tmp_path, "mixed", MIXED)
    assert main(["sweep", "launch", str(sweep), "--output_dir", str(tmp_path / "out"), "--dry_run"]) == 0
    out = capsys.readouterr().out.splitlines()
    # 2 x 3 = 6 grid points; the 3 with gradsamp off lose gradsamp_period and become one job
    assert out[0] == "dropped --gradsamp_period from 3 of 6 jobs where it has no effect without --gradsamp periodic"
    assert out[1].startswith("mixed: 4 jobs,")
    commands = [line for line in out if line.startswith("dgsamp train ")]
    assert len(commands) == 4 and sum("--gradsamp_period" in line for line in commands) == 3
    off_alone = plan_sweep(write_sweep(tmp_path, "off", {"gradsamp": {"value": "off"}}), tmp_path / "o")
    mixed = plan_sweep(sweep, tmp_path / "out")
    assert mixed.jobs[0].job_id == off_alone.jobs[0].job_id  # identity does not depend on the dropped flag
    assert mixed.jobs[0].argv == ("--dataset=PACSMini", "--epochs=4", "--gradsamp=off")


def test_a_value_invalid_where_the_flag_applies_still_refuses_the_sweep(tmp_path, capsys):
    sweep = write_sweep(tmp_path, "bad", {"gradsamp": {"values": ["off", "periodic"]},
                                          "gradsamp_period": {"values": [1]}})
    assert main(["sweep", "launch", str(sweep), "--output_dir", str(tmp_path / "out"), "--dry_run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gradsamp_period must be an integer >= 2" in err[0], err


def test_a_flag_without_effect_in_every_job_refuses_the_sweep(tmp_path, capsys):
    sweep = write_sweep(tmp_path, "never", {"gradsamp": {"value": "off"}, "gradsamp_period": {"values": [3, 4]}})
    assert main(["sweep", "launch", str(sweep), "--output_dir", str(tmp_path / "out"), "--dry_run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--gradsamp_period has no effect in any job" in err[0], err


def test_negative_count_and_zero_parallel_refuse_before_writing(tmp_path, capsys):
    sweep = write_sweep(tmp_path, "mixed", MIXED)
    out = tmp_path / "out"
    assert main(["sweep", "launch", str(sweep), "--output_dir", str(out), "--count", "-1", "--dry_run"]) == 2
    assert "--count must be at least 1, got -1" in capsys.readouterr().err
    assert main(["sweep", "launch", str(sweep), "--output_dir", str(out), "--max_parallel", "0"]) == 2
    assert "--max_parallel must be at least 1, got 0" in capsys.readouterr().err
    assert not out.exists()  # no job.json written
