"""``ENVIRONMENT_SHORT_NAMES``: DomainBed's table column names, declared on each dataset class."""

from __future__ import annotations

import pytest

from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.datasets.images import PACS, PACSMini
from dgsamp.registry import DATASETS

# DomainBed's column headers (domainbed/scripts/collect_results.py prints ENVIRONMENTS).
DOMAINBED_COLUMNS = {
    "ColoredMNIST": ["+90%", "+80%", "-90%"],
    "RotatedMNIST": ["0", "15", "30", "45", "60", "75"],
    "VLCS": ["C", "L", "S", "V"],
    "PACS": ["A", "C", "P", "S"],
    "OfficeHome": ["A", "C", "P", "R"],
    "TerraIncognita": ["L100", "L38", "L43", "L46"],
    "DomainNet": ["clip", "info", "paint", "quick", "real", "sketch"],
}


@pytest.mark.parametrize("name", sorted(DOMAINBED_COLUMNS))
def test_domainbed_datasets_declare_domainbeds_column_names(name):
    expected = DOMAINBED_COLUMNS[name]
    assert expected == DATASETS.get(name).ENVIRONMENT_SHORT_NAMES


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_registered_dataset_has_one_unique_short_name_per_environment(name):
    cls = DATASETS.get(name)
    short = cls.ENVIRONMENT_SHORT_NAMES
    assert len(short) == len(cls.ENVIRONMENTS) and len(set(short)) == len(short)
    assert all(isinstance(column, str) and column for column in short)


def test_subclasses_inherit_or_default_to_their_environments():
    assert PACSMini.ENVIRONMENT_SHORT_NAMES == PACS.ENVIRONMENT_SHORT_NAMES  # same domains
    assert MultiDomainDataset.ENVIRONMENT_SHORT_NAMES == []

    class Plugin(MultiDomainDataset):
        ENVIRONMENTS = ["north", "south"]

    class Renamed(PACS):
        ENVIRONMENTS = ["a", "b"]

    assert Plugin.ENVIRONMENT_SHORT_NAMES == ["north", "south"]
    assert Plugin.ENVIRONMENT_SHORT_NAMES is not Plugin.ENVIRONMENTS  # a copy
    assert Renamed.ENVIRONMENT_SHORT_NAMES == ["a", "b"]  # not PACS's four


def test_a_short_name_count_that_differs_from_the_environments_is_refused():
    with pytest.raises(TypeError, match="1 ENVIRONMENT_SHORT_NAMES for 2 ENVIRONMENTS"):

        class Broken(MultiDomainDataset):
            ENVIRONMENTS = ["north", "south"]
            ENVIRONMENT_SHORT_NAMES = ["N"]
