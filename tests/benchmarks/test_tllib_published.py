"""tllib's published DA tables: the transcription checks itself against tllib's own averages.

Expected literals were read in thuml/Transfer-Learning-Library
examples/domain_adaptation/image_classification/README.md @ c4aa59e (line noted).
"""

import itertools
import re

import pytest

from benchmarks.tllib_published import ORIGINAL_PAPER, PUBLISHED, VISDA2017_PER_CLASS
from dgsamp.config.tllib_recipe import METHODS, PER_METHOD

# Avg is printed to 0.1, so it is within 0.05 of the mean of the printed tasks (half-up rounding)
ROUNDING = 0.05 + 1e-9
# README line 149: BSP's per-class values average to 80.57 but its Mean reads 80.5; tllib
# averaged unrounded values, whose rounding can move the mean by another 0.05.
PUBLISHED_INCONSISTENT = {("VisDA2017", "bsp")}

DOMAINS = {"Office31": ["A", "D", "W"], "OfficeHome": ["Ar", "Cl", "Pr", "Rw"],
           "DomainNet": ["c", "p", "r", "s"]}
VISDA_CLASSES = ["plane", "bcycl", "bus", "car", "horse", "knife", "mcycl", "person", "plant",
                 "sktbrd", "train", "truck"]


def _rows():
    for dataset, rows in PUBLISHED.items():
        for method, row in rows.items():
            yield dataset, method, row


@pytest.mark.parametrize(("dataset", "method", "row"), list(_rows()))
def test_avg_is_the_mean_of_the_tasks(dataset, method, row):
    tasks = [acc for task, acc in row.items() if task != "Avg"]
    if len(tasks) == 1:
        assert "Avg" not in row
        return
    assert abs(sum(tasks) / len(tasks) - row["Avg"]) <= ROUNDING


@pytest.mark.parametrize("method", list(VISDA2017_PER_CLASS))
def test_visda_mean_is_the_mean_of_the_classes(method):
    row = VISDA2017_PER_CLASS[method]
    assert list(row) == [*VISDA_CLASSES, "Mean", "Avg"]
    mean = sum(row[c] for c in VISDA_CLASSES) / len(VISDA_CLASSES)
    tolerance = 2 * ROUNDING if ("VisDA2017", method) in PUBLISHED_INCONSISTENT else ROUNDING
    assert abs(mean - row["Mean"]) <= tolerance
    assert PUBLISHED["VisDA2017"][method] == {"Synthetic->Real": row["Mean"]}


def test_tasks_are_every_ordered_pair_of_domains():
    for dataset, domains in DOMAINS.items():
        expected = {f"{s}->{t}" for s, t in itertools.permutations(domains, 2)} | {"Avg"}
        for method, row in PUBLISHED[dataset].items():
            assert set(row) == expected, (dataset, method)
            assert all(re.fullmatch(r"[A-Za-z]+->[A-Za-z]+", t) for t in row if t != "Avg")
    assert len(PUBLISHED["OfficeHome"]["erm"]) == 12 + 1


def test_accuracies_are_percentages():
    for dataset, method, row in _rows():
        assert all(0.0 < acc <= 100.0 for acc in row.values()), (dataset, method)
    for dataset, rows in ORIGINAL_PAPER.items():
        assert set(rows) <= set(PUBLISHED[dataset])


@pytest.mark.parametrize(("dataset", "method", "task", "value"), [
    ("Office31", "dann", "A->W", 91.4),  # README.md line 100
    ("Office31", "afn", "Avg", 88.6),  # line 107
    ("OfficeHome", "mcc", "Avg", 72.4),  # line 126
    ("OfficeHome", "erm", "Pr->Cl", 36.7),  # line 116
    ("DomainNet", "mdd", "Avg", 51.8),  # line 169
    ("VisDA2017", "mdd", "Synthetic->Real", 82.0),  # line 155
])
def test_spot_values(dataset, method, task, value):
    assert PUBLISHED[dataset][method][task] == value


def test_every_published_row_has_a_recipe():
    for dataset, method, _ in _rows():
        assert method in METHODS
        assert dataset in PER_METHOD[method], (dataset, method)
