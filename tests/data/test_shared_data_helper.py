"""``shared_data_dir``: tests that need ../shared/data skip, naming the path, when it is absent."""

from __future__ import annotations

import pytest

from tests import helpers


def test_present_data_is_returned_and_absent_data_skips(tmp_path, monkeypatch):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    monkeypatch.setattr(helpers, "SHARED_DATA", tmp_path)
    assert helpers.shared_data_dir() == tmp_path
    assert helpers.shared_data_dir("MNIST", "raw") == tmp_path / "MNIST" / "raw"
    with pytest.raises(pytest.skip.Exception, match=r"real data not found: .*pacs128"):
        helpers.shared_data_dir("pacs128")
    monkeypatch.setattr(helpers, "SHARED_DATA", tmp_path / "absent")
    with pytest.raises(pytest.skip.Exception, match=r"not found: .*absent"):
        helpers.shared_data_dir()


def test_repo_is_the_checkout_root():
    assert (helpers.REPO / "setup.cfg").is_file() and (helpers.REPO / "tests" / "helpers.py").is_file()
