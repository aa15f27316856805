"""Job locks across real processes, job states, ``sweep status`` and ``sweep delete_incomplete``."""

from __future__ import annotations

import argparse
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dgsamp.commands import sweep as sweep_command
from dgsamp.sweep.jobs import (
    JobLock,
    JobState,
    is_locked,
    job_state,
    log_launch,
    read_job_argv,
    read_launches,
    write_job_record,
)
from dgsamp.sweep.plan import plan_sweep

HOLD_LOCK = textwrap.dedent("""
    import sys
    from dgsamp.sweep.jobs import JobLock
    lock = JobLock(sys.argv[1])
    print("locked" if lock.try_acquire() else "busy", flush=True)
    sys.stdin.read()   # hold until the test closes our stdin or kills us
""")


def hold_lock_in_another_process(job_dir: Path) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(job_dir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    return process, process.stdout.readline().strip()


def test_a_lock_held_by_another_process_is_exclusive_and_dies_with_it(tmp_path):
    job_dir = tmp_path / "job"
    holder, answer = hold_lock_in_another_process(job_dir)
    try:
        assert answer == "locked"
        assert is_locked(job_dir)
        assert job_state(job_dir) is JobState.RUNNING
        assert not JobLock(job_dir).try_acquire()
        second, answer = hold_lock_in_another_process(job_dir)
        second.kill()
        second.wait()
        assert answer == "busy"
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the lock
        holder.wait()
    assert not is_locked(job_dir)
    assert job_state(job_dir) is JobState.INCOMPLETE
    with JobLock(job_dir) as lock:
        assert lock.try_acquire()
        assert is_locked(job_dir)  # a probe from the same process is refused too
    assert not is_locked(job_dir)


def test_job_states_and_records(tmp_path):
    job_dir = tmp_path / "abc"
    assert job_state(job_dir) is JobState.NOT_LAUNCHED
    write_job_record(job_dir, ["--dataset=PACS"], "sweeps/x.yaml")
    write_job_record(job_dir, ["--changed"], "sweeps/x.yaml")  # the first record is kept
    assert read_job_argv(job_dir) == ["--dataset=PACS"]
    assert job_state(job_dir) is JobState.INCOMPLETE
    log_launch(job_dir, "local", 123)
    log_launch(job_dir, "slurm", 456)
    assert [(entry["launcher"], entry["pid"]) for entry in read_launches(job_dir)] == [
        ("local", 123), ("slurm", 456)]
    (job_dir / "done").touch()
    assert job_state(job_dir) is JobState.DONE


SWEEP = """
    name: states
    method: grid
    command: [dgsamp, train, "${args}"]
    parameters:
      dataset: {value: PACSMini}
      test_envs: {values: [0, 1, 2, 3]}
"""


def run_sweep_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sweep_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture
def sweep_with_every_state(tmp_path):
    """A 4-job sweep: job 0 done, job 1 running (locked by another process), job 2 incomplete."""
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(textwrap.dedent(SWEEP))
    out = tmp_path / "out"
    plan = plan_sweep(sweep_file, out)
    dirs = [plan.job_dir(job) for job in plan.jobs]
    for job, job_dir in zip(plan.jobs[:3], dirs):
        write_job_record(job_dir, job.argv, str(sweep_file))
        (job_dir / "results.jsonl").write_text("{}\n")
    (dirs[0] / "done").touch()
    holder, answer = hold_lock_in_another_process(dirs[1])
    assert answer == "locked"
    yield sweep_file, out, dirs
    holder.kill()
    holder.wait()


def test_status_counts_every_state(sweep_with_every_state, capsys):
    sweep_file, out, _ = sweep_with_every_state
    assert run_sweep_command(["sweep", "status", str(sweep_file), "--output_dir", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "states: 4 jobs: done 1, running 1, incomplete 1, not launched 1")


def test_delete_incomplete_moves_aside_only_incomplete_jobs(sweep_with_every_state, capsys):
    sweep_file, out, dirs = sweep_with_every_state
    assert run_sweep_command(["sweep", "delete_incomplete", str(sweep_file), "--output_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"incomplete: {dirs[2]}" in printed
    assert "1 incomplete job directories moved to" in printed
    assert dirs[0].is_dir() and dirs[1].is_dir() and not dirs[2].exists()
    moved = list((out / "_incomplete").glob(f"*/{dirs[2].name}"))
    assert len(moved) == 1 and (moved[0] / "results.jsonl").read_text() == "{}\n"
    assert run_sweep_command(["sweep", "status", str(sweep_file), "--output_dir", str(out)]) == 0
    assert "not launched 2" in capsys.readouterr().out


def test_delete_incomplete_with_delete_removes_for_good(sweep_with_every_state, capsys):
    sweep_file, out, dirs = sweep_with_every_state
    run_sweep_command(["sweep", "delete_incomplete", str(sweep_file), "--output_dir", str(out), "--delete"])
    assert "1 incomplete job directories deleted" in capsys.readouterr().out
    assert not dirs[2].exists() and not (out / "_incomplete").exists()
    assert dirs[1].is_dir()  # running: untouched


def test_dry_run_lists_commands_and_starts_nothing(sweep_with_every_state, capsys):
    sweep_file, out, dirs = sweep_with_every_state
    assert run_sweep_command(["sweep", "launch", str(sweep_file), "--output_dir", str(out), "--dry_run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "states: 4 jobs, 1 done, 1 running elsewhere, 2 to run"
    assert lines[1:] == [
        f"dgsamp train --dataset=PACSMini --test_envs={env} --output_dir={dirs[env]} --wandb_group=states"
        for env in (2, 3)
    ]
    assert not dirs[3].exists()
