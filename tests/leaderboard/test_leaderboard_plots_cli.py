"""``--plot`` PNGs and the command itself, run as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dgsamp.leaderboard.plots import pareto_front, write_plots
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard, selected_runs
from tests.helpers import REPO
from tests.leaderboard.fixtures import records_for, run_args, write_run


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory) -> Path:
    """PACS, test domains alone, 2 trial seeds: ERM, ERM + GradSamp, its skip control."""
    root = tmp_path_factory.mktemp("small")
    variants = {"erm": {}, "gs": dict(gradsamp="periodic"),
                "skip": dict(gradsamp="periodic", gradsamp_dist="skip")}
    for name, spec in variants.items():
        for test_env in range(4):
            for trial_seed in (0, 1):
                args = run_args("PACS", (test_env,), 0, trial_seed, "ERM", **spec)
                quality = {"erm": 0.0, "gs": 0.01, "skip": -0.02}[name]
                write_run(root / f"{name}_te{test_env}_t{trial_seed}",
                          records_for(args, quality, 4, measured=True))
    return root


def assert_real_image(path: Path, size=(640, 480)) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == size
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    assert pixels.std() > 0
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 1


def test_pareto_front_keeps_points_nothing_beats():
    points = [(10, 70.0), (7, 69.0), (7, 66.0), (6, 69.4), (12, 69.0), (5, 60.0)]
    assert pareto_front(points) == [5, 3, 0]
    assert pareto_front([(1, 1.0)]) == [0]


def test_plots_are_real_images(small_runs, tmp_path):
    run_set = load_runs([small_runs])
    lb = build_leaderboard(run_set, RULES["training_domain"])
    runs = selected_runs(lb)
    assert len(runs) == 3 * 4 * 2
    written = write_plots(lb, runs[:3], tmp_path / "plots")
    names = sorted(p.relative_to(tmp_path / "plots").as_posix() for p in written)
    assert names[-1] == "tradeoff_PACS_dgsamp_resnet18_domain_generalization.png"
    assert len([n for n in names if n.startswith("runs/")]) == 3
    for path in written:
        assert_real_image(path)


def test_plots_of_a_domainbed_run_without_energy(shared_data, tmp_path):
    run_set = load_runs([shared_data / "domainbed_test_sweep"])
    lb = build_leaderboard(run_set, RULES["oracle"])
    written = write_plots(lb, run_set.runs[:1], tmp_path)
    assert [p.parent.name for p in written] == ["runs"]  # no cost: no trade-off figure
    assert_real_image(written[0])


def cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dgsamp.commands.leaderboard", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_cli_writes_tables_atomically(small_runs, tmp_path):
    out = tmp_path / "board.json"
    result = cli(str(small_runs), "--selection", "oracle", "--format", "json",
                 "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    data = json.loads(out.read_text())
    assert data["selection"]["key"] == "oracle"
    labels = [row["label"] for row in data["tables"][0]["rows"]]
    assert labels == ["ERM", "ERM + GradSamp(K=3, layer)", "ERM + GradSamp(K=3, skip)"]
    assert [c["kind"] for c in data["tables"][0]["controls"]] == ["skip", "fewer_epochs"]
    assert [p.name for p in tmp_path.iterdir()] == ["board.json"]  # no temp file left


def test_cli_plots(small_runs, tmp_path):
    runs = [str(small_runs / f"{name}_te{env}_t0") for name in ("erm", "gs") for env in range(4)]
    result = cli(*runs, "--format", "csv", "--plot", str(tmp_path / "figs"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("selection,section,dataset")
    figures = sorted((tmp_path / "figs").rglob("*.png"))
    assert len(figures) == 1 + 8 and "wrote 9 figures" in result.stderr
    assert (tmp_path / "figs" / "tradeoff_PACS_dgsamp_resnet18_domain_generalization.png").exists()
    for figure in figures:
        assert_real_image(figure)


def test_cli_markdown_on_stdout_names_the_rule(small_runs):
    result = cli(str(small_runs), "--selection", "leave_one_out")
    assert result.returncode == 0, result.stderr
    assert "model selection: leave-one-domain-out cross-validation" in result.stdout
    assert "| ERM | — | — | — | — | — |" in result.stdout  # no paired runs: nothing selected


def test_cli_bad_input_is_one_line_and_exit_2(small_runs, tmp_path):
    result = cli(str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"dgsamp: error: run directory not found: {tmp_path / 'absent'}; "
        "pass a folder of run directories"]
    empty = cli(str(tmp_path))
    assert empty.returncode == 2 and "no runs found" in empty.stderr
    unwritable = cli(str(small_runs), "--output", str(tmp_path / "no" / "such" / "dir" / "x.md"))
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr


def test_register_adds_the_subcommand():
    import argparse

    from dgsamp.commands import leaderboard

    parser = argparse.ArgumentParser()
    leaderboard.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["leaderboard", "a", "b", "--format", "domainbed"])
    assert (args.dirs, args.format, args.selection) == (["a", "b"], "domainbed",
                                                        "training_domain")
    assert args.func is leaderboard.run
