"""Every file in sweeps/: valid for W&B's sweep-config schema, every job accepted by ``dgsamp train``.

W&B's JSON schema is the one of the ``sweeps`` package (W&B's sweep engine) kept in
tests/data with its provenance; jsonschema validates against it the way that engine does.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import timm
import yaml

from dgsamp.config import parse_run_config
from dgsamp.modes.gradsamp.schedule import GradSampSchedule
from dgsamp.registry import BACKBONES
from dgsamp.sweep.config import load_sweep_config
from dgsamp.sweep.expand import expand_sweep
from tests.helpers import REPO

SWEEP_FILES = sorted((REPO / "sweeps").glob("*.yaml"))
SCHEMA = json.loads((Path(__file__).parent / "wandb_sweep_config_schema.json").read_text())
RANDOM_DRAWS = 25


def wandb_validator() -> jsonschema.Draft7Validator:
    """Draft 7 with the two custom formats W&B's sweep engine registers ("float", "integer")."""
    formats = jsonschema.FormatChecker()
    formats.checks("float")(lambda value: isinstance(value, float))
    formats.checks("integer")(lambda value: isinstance(value, int))
    return jsonschema.Draft7Validator(SCHEMA, format_checker=formats)


def test_the_sweeps_folder_holds_the_flagship_experiments():
    names = {path.stem for path in SWEEP_FILES}
    assert {"pacs_backprop", "pacs_gradsamp", "officehome_backprop", "officehome_gradsamp",
            "rotated_mnist", "pacs_mini"} <= names


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_sweep_file_passes_wandb_schema(path):
    errors = sorted(wandb_validator().iter_errors(yaml.safe_load(path.read_text())), key=str)
    assert not errors, f"{path.name}: " + "; ".join(error.message for error in errors)


def test_the_schema_check_rejects_what_wandb_rejects():
    validator = wandb_validator()
    good = yaml.safe_load(SWEEP_FILES[0].read_text())
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "method": "annealing"})
    assert not validator.is_valid({**good, "parameters": {"lr": {"valeus": [1]}}})
    assert not validator.is_valid({**good, "metric": {"goal": "maximize"}})


@pytest.mark.parametrize("path", SWEEP_FILES, ids=lambda p: p.name)
def test_every_job_of_every_sweep_is_accepted_by_dgsamp_train(path):
    config = load_sweep_config(path)
    jobs = expand_sweep(config, count=RANDOM_DRAWS if config.method == "random" else None, seed=0)
    assert jobs
    for job in jobs:
        run_config = parse_run_config([*job.argv, "--output_dir=/tmp/never-written"])  # as dgsamp train does
        backbone = run_config.model.backbone
        assert backbone in BACKBONES or timm.is_model(backbone), backbone
    assert len({job.job_id for job in jobs}) == len(jobs)


def grid(path: str):
    config = load_sweep_config(REPO / "sweeps" / path)
    return expand_sweep(config)


@pytest.mark.parametrize(("dataset", "domains"), [("pacs", 4), ("officehome", 4)])
def test_flagship_gradsamp_sweeps_pair_every_setting_with_its_skip_control(dataset, domains):
    jobs = grid(f"{dataset}_gradsamp.yaml")
    settings = {(j.params["algorithm"], j.params["gradsamp_period"], j.params["test_envs"],
                 j.params["trial_seed"], j.params["gradsamp_dist"]) for j in jobs}
    expected = {(a, k, t, s, d) for a in ("ERM", "CORAL", "DANN") for k in (2, 3, 4)
                for t in range(domains) for s in (0, 1, 2) for d in ("layer", "skip")}
    assert settings == expected
    assert all(j.params["gradsamp"] == "periodic" for j in jobs)


@pytest.mark.parametrize(("dataset", "domains"), [("pacs", 4), ("officehome", 4)])
def test_flagship_backprop_sweeps_hold_the_baseline_and_the_fewer_epochs_controls(dataset, domains):
    gradsamp = grid(f"{dataset}_gradsamp.yaml")
    backprop = grid(f"{dataset}_backprop.yaml")
    epochs = {j.params["epochs"] for j in gradsamp}
    assert len(epochs) == 1
    (total,) = epochs
    controls = set()
    for job in gradsamp:
        p = job.params
        schedule = GradSampSchedule("periodic", period=p["gradsamp_period"], warmup=p["gradsamp_warmup"])
        controls.add(sum(schedule.kind(e) == "backprop" for e in range(1, total + 1)))
    assert {j.params["epochs"] for j in backprop} == {total} | controls
    settings = {(j.params["algorithm"], j.params["test_envs"], j.params["trial_seed"]) for j in backprop}
    assert settings == {(a, t, s) for a in ("ERM", "CORAL", "DANN") for t in range(domains) for s in (0, 1, 2)}
    assert all(j.params["gradsamp"] == "off" for j in backprop)


def test_the_laptop_sweep_has_four_small_jobs():
    jobs = grid("pacs_mini.yaml")
    assert len(jobs) == 4
    assert {j.params["dataset"] for j in jobs} == {"PACSMini"}
