"""Variants come from the training-mode registry: a third-party mode gets leaderboard rows
and labels with no edit to dgsamp; runs written before it was registered are unchanged."""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path

import pytest

from dgsamp.leaderboard.render import render
from dgsamp.leaderboard.runs import Variant, load_runs, variant_from_args
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard, env_names, plain_baseline
from dgsamp.modes.base import Option, TrainingMode
from dgsamp.registry import MODES, register_mode
from tests.leaderboard.fixtures import records_for, run_args, write_fixture_runs, write_run

EMA = "lbtest_ema"  # not "ema": a real plugin of that name may be registered in the session
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def ema_mode():
    """A plugin mode registered for one test (and removed after it)."""

    class EmaMode(TrainingMode):
        OPTIONS = {
            EMA: Option(False, "keep an exponential moving average of the weights"),
            f"{EMA}_decay": Option(0.999, "decay of the average", applies=lambda o: bool(o[EMA])),
        }

    register_mode(EMA)(EmaMode)
    yield EmaMode
    MODES._entries.pop(EMA, None)


def test_builtin_variants_expose_their_modes():
    args = run_args("PACS", (0,), 0, 0, "ERM", gradsamp="periodic", ssprop="constant")
    variant = variant_from_args(args)
    assert variant.mode_names == ("gradsamp", "ssprop") and not variant.is_plain
    assert variant.mode("gradsamp") == {"gradsamp": "periodic", "gradsamp_period": 3,
                                        "gradsamp_warmup": 2, "gradsamp_dist": "layer"}
    assert list(variant.mode("ssprop")) == ["ssprop", "ssprop_keep", "ssprop_warmup",
                                            "ssprop_interleave"]  # declared order
    assert variant.base_label() == "ERM + GradSamp(K=3, layer) + ssProp(constant, keep=0.5)"
    assert variant.with_mode("ssprop", None) == variant_from_args({**args, "ssprop": "off"})
    assert plain_baseline(variant) == Variant("ERM", epochs=10)
    domainbed = variant_from_args({"algorithm": "ERM", "dataset": "VLCS"})
    assert domainbed.is_plain and domainbed.mode("gradsamp") is None
    assert domainbed.base_label() == "ERM"


def test_a_plugin_mode_gets_rows_and_labels(ema_mode, tmp_path):
    for name, extra in [("plain", {}), ("ema", {EMA: True, f"{EMA}_decay": 0.99})]:
        for test_env, trial_seed in itertools.product(range(4), (0, 1)):
            args = {**run_args("PACS", (test_env,), 0, trial_seed, "ERM"), **extra}
            quality = 0.01 if extra else 0.0
            write_run(tmp_path / f"{name}_te{test_env}_t{trial_seed}",
                      records_for(args, quality, 4, measured=True))
    lb = build_leaderboard(load_runs([tmp_path]), RULES["training_domain"])
    (table,) = lb.tables
    assert [row.label for row in table.rows] == ["ERM", f"ERM + {EMA}({EMA}_decay=0.99)"]
    ema_row = table.rows[1]
    assert ema_row.variant.mode(EMA) == {EMA: True, f"{EMA}_decay": 0.99}
    assert ema_row.energy_saved_pct is not None  # compared with the plain row of the table
    data = json.loads(render(lb, "json"))
    variant = data["tables"][0]["rows"][1]["variant"]
    assert (variant[EMA], variant[f"{EMA}_decay"], variant["gradsamp"]) == (True, 0.99, "off")
    assert data["tables"][0]["rows"][0]["variant"][f"{EMA}_decay"] is None


def test_runs_written_before_a_mode_was_registered_keep_their_rows(ema_mode, tmp_path):
    args = run_args("PACS", (0,), 0, 0, "ERM", gradsamp="periodic")
    assert EMA not in args and variant_from_args(args).mode(EMA) is None
    root = write_fixture_runs(tmp_path)
    with contextlib.chdir(root):
        lb = build_leaderboard(load_runs(["pacs", "vlcs"]), RULES["oracle"])
    for fmt, extension in [("markdown", "md"), ("domainbed", "txt"), ("latex", "tex")]:
        assert render(lb, fmt) == (GOLDEN / f"leaderboard_oracle.{extension}").read_text()


def test_column_names_come_from_the_dataset_registry():
    assert env_names("PACS", 4) == ["A", "C", "P", "S"]
    assert env_names("TerraIncognita", 4) == ["L100", "L38", "L43", "L46"]
    assert env_names("NoSuchDataset", 3) == ["env0", "env1", "env2"]
    assert env_names("PACS", 3) == ["env0", "env1", "env2"]  # runs disagree with the dataset
