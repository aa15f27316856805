"""Deterministic seeds derived from arbitrary values, as DomainBed derives them."""

from __future__ import annotations

import hashlib


def seed_hash(*values: object) -> int:
    """An integer in [0, 2**31) from the MD5 of ``str(values)``; stable across processes."""
    text = str(values)
    return int(hashlib.md5(text.encode("utf-8")).hexdigest(), 16) % (2**31)
