"""Deterministic seeds derived from arbitrary values, as DomainBed derives them."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_hash(*values: object) -> int:
    """An integer in [0, 2**31) from the MD5 of ``str(values)``; stable across processes."""
    text = str(values)
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % (2**31)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (initialisation uses them)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
