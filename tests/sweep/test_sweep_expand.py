"""Sweep YAML loading and expansion: grid, seeded random, W&B's argument formats, errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from dgsamp.errors import UserError
from dgsamp.sweep.config import load_sweep_config
from dgsamp.sweep.expand import expand_sweep, train_argv
from dgsamp.sweep.jobs import job_id_of
from dgsamp.sweep.plan import parse_overrides, plan_sweep


def write_sweep(tmp_path: Path, body: str, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


GRID = """
    name: tiny
    program: dgsamp
    method: grid
    metric: {name: ood_acc, goal: maximize}
    command:
      - ${env}
      - ${program}
      - train
      - --energy=none
      - ${args}
    parameters:
      dataset: {value: PACSMini}
      algorithm: {values: [ERM, DANN]}
      gradsamp: {values: ["off", periodic]}
      test_envs: {values: [0, 3]}
"""


def test_grid_expands_every_combination_in_wandb_flag_format(tmp_path):
    jobs = expand_sweep(load_sweep_config(write_sweep(tmp_path, GRID)))
    assert len(jobs) == 2 * 2 * 2
    assert jobs[0].argv == (
        "--energy=none", "--dataset=PACSMini", "--algorithm=ERM", "--gradsamp=off", "--test_envs=0",
    )
    assert jobs[-1].argv[1:] == ("--dataset=PACSMini", "--algorithm=DANN", "--gradsamp=periodic",
                                 "--test_envs=3")
    assert len({job.job_id for job in jobs}) == 8
    combos = {(j.params["algorithm"], j.params["gradsamp"], j.params["test_envs"]) for j in jobs}
    assert combos == {(a, g, t) for a in ("ERM", "DANN") for g in ("off", "periodic") for t in (0, 3)}


def test_job_id_is_a_stable_hash_of_the_argv():
    argv = ("--dataset=PACS", "--test_envs=1")
    assert job_id_of(argv) == job_id_of(list(argv))
    assert len(job_id_of(argv)) == 20
    assert job_id_of(argv) != job_id_of(("--test_envs=1", "--dataset=PACS"))
    # sha256('["--a=1"]'): the same name on every machine and Python version
    assert job_id_of(("--a=1",)) == "31bc68b249b00ccdc732"


def test_macros_format_values_as_wandb_agent_does():
    point = {"lr": 0.001, "freeze_bn": True, "ssprop_interleave": False, "test_envs": 2}
    assert train_argv(("${args}",), point) == [
        "--lr=0.001", "--freeze_bn=True", "--ssprop_interleave=False", "--test_envs=2"]
    assert train_argv(("${args_no_equals}",), point) == [
        "--lr", "0.001", "--freeze_bn", "True", "--ssprop_interleave", "False", "--test_envs", "2"]
    assert train_argv(("--x=1", "${args_no_boolean_flags}"), point) == [
        "--x=1", "--lr=0.001", "--freeze_bn", "--test_envs=2"]


RANDOM = """
    method: random
    command: [dgsamp, train, "${args}"]
    parameters:
      lr: {distribution: log_uniform_values, min: 1.0e-5, max: 1.0e-3}
      batch_size: {values: [16, 32, 64]}
      weight_decay: {distribution: uniform, min: 0.0, max: 0.1}
      steps: {min: 2, max: 5}
      lam: {distribution: q_uniform, min: 0, max: 10, q: 2}
      kind: {values: [a, b], probabilities: [0.2, 0.8]}
"""


def test_random_draws_are_seeded_and_inside_their_distributions(tmp_path):
    config = load_sweep_config(write_sweep(tmp_path, RANDOM))
    first = expand_sweep(config, count=40, seed=7)
    again = expand_sweep(config, count=40, seed=7)
    other = expand_sweep(config, count=40, seed=8)
    assert [j.argv for j in first] == [j.argv for j in again]
    assert [j.argv for j in first] != [j.argv for j in other]
    assert len(first) == 40  # continuous draws never collide
    for job in first:
        p = job.params
        assert 1e-5 <= p["lr"] <= 1e-3 and isinstance(p["lr"], float)
        assert p["batch_size"] in (16, 32, 64)
        assert 0.0 <= p["weight_decay"] <= 0.1
        assert isinstance(p["steps"], int) and 2 <= p["steps"] <= 5  # int min/max: int_uniform
        assert p["lam"] in (0, 2, 4, 6, 8, 10)
        assert p["kind"] in ("a", "b")
    assert {j.params["steps"] for j in first} == {2, 3, 4, 5}
    # log-uniform: about half of the draws below the geometric midpoint 1e-4
    below = sum(j.params["lr"] < 1e-4 for j in first)
    assert 8 <= below <= 32


def test_random_duplicates_collapse_to_one_job(tmp_path):
    path = write_sweep(tmp_path, """
        method: random
        command: [dgsamp, train, "${args}"]
        parameters:
          algorithm: {values: [ERM, DANN]}
    """)
    jobs = expand_sweep(load_sweep_config(path), count=30, seed=0)
    assert sorted(j.params["algorithm"] for j in jobs) == ["DANN", "ERM"]


def test_random_needs_a_count_and_bayes_points_to_wandb_agent(tmp_path):
    config = load_sweep_config(write_sweep(tmp_path, RANDOM))
    with pytest.raises(UserError, match="--count"):
        expand_sweep(config)
    bayes = load_sweep_config(write_sweep(tmp_path, RANDOM.replace("random", "bayes"), "b.yaml"))
    with pytest.raises(UserError, match="wandb agent"):
        expand_sweep(bayes, count=3)


def test_grid_refuses_distributions(tmp_path):
    config = load_sweep_config(write_sweep(tmp_path, RANDOM.replace("random", "grid")))
    with pytest.raises(UserError, match="grid search needs"):
        expand_sweep(config)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("method: grid\nparameters: {a: {value: 1}}\n", "command"),
        ("method: grid\ncommand: [dgsamp, list, '${args}']\nparameters: {a: {value: 1}}\n", "train"),
        ("method: grid\ncommand: [dgsamp, train]\nparameters: {a: {value: 1}}\n", "exactly one"),
        ("method: grid\ncommand: [dgsamp, train, '${args_json}']\nparameters: {a: {value: 1}}\n",
         "exactly one"),
        ("method: nope\ncommand: [dgsamp, train, '${args}']\nparameters: {a: {value: 1}}\n", "method"),
        ("method: grid\ncommand: [dgsamp, train, '${args}']\nparameters: {}\n", "non-empty"),
        ("method: grid\ncommand: [dgsamp, train, '${args}']\nparameters: {a: {values: []}}\n", "values"),
        ("method: grid\ncommand: [dgsamp, train, '${args}']\nparameters: {a: {valeu: 1}}\n", "unknown keys"),
        ("method: grid\ncommand: [dgsamp, train, '${args}']\nparameters: {a: {parameters: {b: {value: 1}}}}\n",
         "nested"),
        ("method: grid\ncommand: [dgsamp, train, '${args}']\nparameters: {a: 1}\n", "mapping"),
        ("method: grid\nprogramme: x\ncommand: [dgsamp, train, '${args}']\nparameters: {a: {value: 1}}\n",
         "unknown top-level"),
        ("method: [grid\n", "not valid YAML"),
    ],
)
def test_invalid_sweep_files_raise_one_line_user_errors(tmp_path, body, message):
    path = write_sweep(tmp_path, body)
    with pytest.raises(UserError, match=message) as error:
        load_sweep_config(path)
    assert "\n" not in str(error.value)


def test_overrides_become_constant_parameters_and_change_the_jobs(tmp_path):
    path = write_sweep(tmp_path, GRID)
    assert parse_overrides(["epochs=3", "data_dir=/data/x", "lr=1e-4", "gradsamp=off", "x="]) == {
        "epochs": 3, "data_dir": "/data/x", "lr": 1e-4, "gradsamp": "off", "x": ""}
    with pytest.raises(UserError, match="NAME=VALUE"):
        parse_overrides(["epochs"])
    plain = plan_sweep(path, tmp_path / "out")
    fixed = plan_sweep(path, tmp_path / "out", overrides={"algorithm": "ERM", "epochs": 3})
    assert len(plain.jobs) == 8 and len(fixed.jobs) == 4
    assert all("--algorithm=ERM" in j.argv and "--epochs=3" in j.argv for j in fixed.jobs)


def test_planned_job_adds_output_dir_group_and_wandb_mode_outside_the_hash(tmp_path):
    plan = plan_sweep(write_sweep(tmp_path, GRID), tmp_path / "out")
    job = plan.jobs[0]
    planned = plan.planned(job, wandb_mode="offline")
    assert planned.job_dir == tmp_path / "out" / job.job_id
    assert planned.argv[: len(job.argv)] == job.argv
    assert planned.argv[len(job.argv):] == (
        f"--output_dir={planned.job_dir}", "--wandb_group=tiny", "--wandb=offline")
    assert plan.planned(job).argv[-1] == "--wandb_group=tiny"
