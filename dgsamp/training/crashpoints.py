"""A test hook that parks a run at a named moment so a test can SIGKILL it exactly there.

    DGSAMP_TEST_PAUSE_AT=checkpoint:3 python -m dgsamp train ...

When the run reaches point ``checkpoint`` of epoch 3 it writes ``RUN_DIR/.paused-checkpoint-3``
and sleeps until it is killed. Points:

- ``train``: after the first update of the epoch (mid-training)
- ``eval``: inside the evaluation phase, before any accuracy is computed
- ``checkpoint``: the new checkpoint is fully written to its temp file, not yet renamed

Used only by tests/test_resume.py; with the variable unset (always, outside tests) a call
costs one environment lookup.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ENV_VAR = "DGSAMP_TEST_PAUSE_AT"
POINTS = ("train", "eval", "checkpoint")


def pause_here(point: str, epoch: int, run_dir: Path) -> None:
    """Sleep forever if ``DGSAMP_TEST_PAUSE_AT`` names ``point:epoch``; else return at once."""
    if os.environ.get(ENV_VAR) != f"{point}:{epoch}":
        return
    (Path(run_dir) / f".paused-{point}-{epoch}").touch()
    while True:
        time.sleep(60)
