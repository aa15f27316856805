"""Golden files: the leaderboard of the fixture runs, for every selection rule and format.

The runs are written by ``leaderboard_fixtures.write_fixture_runs`` (several algorithms,
trial seeds, GradSamp on/off, the skip and fewer-epochs controls, missing runs, a killed
run with a torn last line, a dataset without energy). Regenerate after an intended change
with ``DGSAMP_UPDATE_GOLDEN=1 pytest tests/leaderboard/test_leaderboard_golden.py`` and review
the diff: in that mode each golden test rewrites its file and is skipped (it checks nothing).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

from dgsamp.leaderboard.render import FORMATTERS, render
from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard
from tests.leaderboard.fixtures import write_fixture_runs

GOLDEN = Path(__file__).parent / "golden"
EXTENSIONS = {"markdown": "md", "latex": "tex", "csv": "csv", "json": "json", "domainbed": "txt"}
UPDATE = os.environ.get("DGSAMP_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    root = write_fixture_runs(tmp_path_factory.mktemp("leaderboard"))
    with contextlib.chdir(root):  # relative run paths keep the golden files machine-free
        return load_runs(["pacs", "vlcs"])


@pytest.mark.parametrize("fmt", list(FORMATTERS))
@pytest.mark.parametrize("rule", list(RULES))
def test_golden(fixture_runs, rule, fmt):
    text = render(build_leaderboard(fixture_runs, RULES[rule]), fmt)
    path = GOLDEN / f"leaderboard_{rule}.{EXTENSIONS[fmt]}"
    if UPDATE:
        previous = path.read_text(encoding="utf-8") if path.exists() else None
        path.write_text(text, encoding="utf-8")
        pytest.skip(f"DGSAMP_UPDATE_GOLDEN=1: {path.name} "
                    f"{'unchanged' if previous == text else 'rewritten; review the diff'}")
    assert path.exists(), f"{path} missing; run with DGSAMP_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(encoding="utf-8")


def test_every_table_names_its_selection_rule(fixture_runs):
    for rule in RULES.values():
        lb = build_leaderboard(fixture_runs, rule)
        markdown = render(lb, "markdown")
        headings = [line for line in markdown.splitlines() if line.startswith("#")]
        assert len(headings) >= len(lb.tables) + len(lb.averages)
        assert all(rule.name in heading for heading in headings)
        domainbed = render(lb, "domainbed")
        headers = [line for line in domainbed.splitlines() if line.startswith("--------")]
        assert headers and all(f"model selection method: {rule.name}" in h for h in headers)
        assert render(lb, "latex").count(rule.name) >= len(lb.tables) + len(lb.averages)
        assert all(row.startswith(rule.key) for row in render(lb, "csv").splitlines()[1:])
