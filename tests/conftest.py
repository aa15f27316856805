"""Shared fixtures: paths to the real data in ../shared/data and a small torch thread budget."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import shared_data_dir

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests that use it are skipped, with the path, when it is absent."""
    return shared_data_dir()
