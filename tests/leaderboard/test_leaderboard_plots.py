"""Figures checked on matplotlib's objects: error bars are the trial-seed standard errors,
axes carry plain numbers (no offset text), point labels overlap neither each other nor
the legend. (The PNG files themselves: test_leaderboard_plots_cli.py.)"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.text import Annotation

from dgsamp.leaderboard.plots import pick_unit, run_figure, standard_error, tradeoff_figure
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard
from tests.leaderboard.fixtures import write_fixture_runs


@pytest.fixture(scope="module")
def leaderboard(tmp_path_factory):
    """PACS (7 variants, several close together, energy measured) and VLCS (FLOPs only)."""
    root = write_fixture_runs(tmp_path_factory.mktemp("plots"))
    return build_leaderboard(load_runs([root]), RULES["training_domain"])


def error_bars(ax) -> tuple[list[float], list[float]]:
    """Half-lengths of the horizontal and the vertical error bars, in point order."""
    (container,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert container.has_xerr and container.has_yerr
    horizontal, vertical = [], []
    for collection in container.lines[2]:
        assert isinstance(collection, LineCollection)
        for (x0, y0), (x1, y1) in collection.get_segments():
            (vertical if x0 == x1 else horizontal).append((abs(y1 - y0) if x0 == x1 else abs(x1 - x0)) / 2)
    return horizontal, vertical


def expected_errors(row) -> tuple[float, float]:
    """SE over trial seeds (DomainBed's ddof-0 definition) of energy (kJ) and Avg (%)."""
    envs = sorted(row.trial_accs)
    seeds = set.intersection(*(set(row.trial_accs[env]) for env in envs))
    accs = [100 * np.mean([row.trial_accs[env][s] for env in envs]) for s in sorted(seeds)]
    energy = {}
    for choice in row.choices:
        energy.setdefault(choice.run.trial_seed, []).append(
            choice.run.records[-1]["cum_train_energy_J"] / 1000)
    per_seed = [np.mean(values) for values in energy.values()]
    return (float(np.std(per_seed, ddof=0) / np.sqrt(len(per_seed))),
            float(np.std(accs, ddof=0) / np.sqrt(len(accs))))


def test_error_bars_are_standard_errors_over_trial_seeds(leaderboard):
    pacs = leaderboard.tables[0]
    fig = tradeoff_figure(pacs, leaderboard.rule.name)
    (ax,) = fig.axes
    horizontal, vertical = error_bars(ax)
    expected = [expected_errors(row) for row in pacs.rows]
    assert horizontal == pytest.approx([e[0] for e in expected], rel=1e-9)
    assert vertical == pytest.approx([e[1] for e in expected], rel=1e-9)
    assert all(err > 0 for err in vertical)
    assert "kJ" in ax.get_xlabel()


def test_axes_have_no_offset_text(leaderboard):
    for table in leaderboard.tables:  # PACS: energy in kJ; VLCS: ~8e12 FLOPs in TFLOP
        fig = tradeoff_figure(table, leaderboard.rule.name)
        fig.canvas.draw()
        (ax,) = fig.axes
        assert ax.xaxis.get_offset_text().get_text() == ""
        assert ax.yaxis.get_offset_text().get_text() == ""
    assert "TFLOP" in ax.get_xlabel()
    assert all(float(t.get_text()) < 1000 for t in ax.get_xticklabels() if t.get_text())
    run = leaderboard.tables[1].rows[0].choices[0].run  # VLCS: cumulative FLOPs axis
    fig = run_figure(run)
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.yaxis.get_offset_text().get_text() == ""
        assert ax.xaxis.get_offset_text().get_text() == ""
    assert "TFLOP" in fig.axes[1].get_ylabel()


def test_point_labels_overlap_nothing(leaderboard):
    pacs = leaderboard.tables[0]
    fig = tradeoff_figure(pacs, leaderboard.rule.name)
    fig.canvas.draw()
    (ax,) = fig.axes
    labels = [text for text in ax.texts if isinstance(text, Annotation)]
    assert sorted(label.get_text() for label in labels) == sorted(row.label for row in pacs.rows)
    boxes = [label.get_window_extent() for label in labels]
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
    (legend,) = fig.legends
    legend_box = legend.get_window_extent()
    frame = ax.get_window_extent()
    for box in boxes:
        assert not box.overlaps(legend_box)
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
    assert not legend_box.overlaps(frame)  # the legend is outside the axes


def test_units_and_standard_error_helpers():
    assert pick_unit([7_000.0, 10_000.0], (("J", 1), ("kJ", 1e3), ("MJ", 1e6))) == ("kJ", 1e3)
    assert pick_unit([0.5], (("J", 1), ("kJ", 1e3))) == ("J", 1)
    assert standard_error([1.0]) == 0.0
    assert standard_error([1.0, 3.0]) == pytest.approx(np.std([1, 3]) / np.sqrt(2))


def crowded_table(count: int):
    """``count`` variants at nearly the same energy and accuracy (their labels must spread)
    and one far away, so that the crowd spans a few pixels."""
    from dgsamp.leaderboard.runs import Variant
    from dgsamp.leaderboard.tables import Cell, Row, Table

    rows = []
    for i in range(count + 1):
        far = i == count
        accs = {0: {0: 0.60 if far else 0.70 + 0.0001 * i, 1: 0.61 if far else 0.71}}
        cell = Cell.of(list(accs[0].values()))
        rows.append(Row(Variant(f"Algorithm{i}"), f"Algorithm{i} + a long method label",
                        [cell], cell.mean, [], accs, energy_kJ=20.0 if far else 10.0 + 0.01 * i))
    return Table("Toy", "resnet18", "domain_generalization", ["A"], rows)


@pytest.mark.parametrize("count", [2, 6, 9])
def test_crowded_labels_still_do_not_overlap(count):
    fig = tradeoff_figure(crowded_table(count), "rule")
    fig.canvas.draw()
    (ax,) = fig.axes
    boxes = [text.get_window_extent() for text in ax.texts if isinstance(text, Annotation)]
    assert len(boxes) == count + 1
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b)
