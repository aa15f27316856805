"""The .wandb record reader on files written by wandb itself: blocks, fragments, damage."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest

from dgsamp.leaderboard.wandb_offline_reader import (
    BLOCK_SIZE,
    RECORD_HEADER,
    CorruptWandbFile,
    iter_payloads,
    read_offline_run,
    read_wandb_file,
)
from dgsamp.tracking.wandb_sink import WandbSink

LONG_NOTE = "".join(f"{i:06d}," for i in range(12_000))  # 84 KB: fragments over 3+ blocks


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory) -> Path:
    """A real offline run: a config value longer than two 32 KiB blocks, then 40 epochs."""
    run_dir = tmp_path_factory.mktemp("run")
    sink = WandbSink("offline", "dgsamp-tests", None, None, [], {"note": LONG_NOTE}, run_dir, "job")
    for epoch in range(1, 41):
        sink.log_epoch({"epoch": epoch, "ood_acc": epoch / 40, "epoch_kind": "backprop"})
    sink.finish({"final_ood_acc": 1.0})
    return run_dir


def wandb_file(run_dir: Path) -> Path:
    (file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    return file


def frame_types(path: Path) -> list[int]:
    """Record types in file order (a test-side walk of the framing, for the assertions)."""
    data, position, kinds = path.read_bytes(), 7, []
    while position + RECORD_HEADER.size <= len(data):
        if BLOCK_SIZE - position % BLOCK_SIZE < RECORD_HEADER.size:
            position += BLOCK_SIZE - position % BLOCK_SIZE
            continue
        _, length, kind = RECORD_HEADER.unpack_from(data, position)
        kinds.append(kind)
        position += RECORD_HEADER.size + length
    return kinds


def test_a_payload_split_over_blocks_is_reassembled(offline_run):
    path = wandb_file(offline_run)
    assert path.stat().st_size > 2 * BLOCK_SIZE
    kinds = frame_types(path)
    assert 2 in kinds and 3 in kinds and 4 in kinds  # FIRST, MIDDLE, LAST fragments exist
    run = read_offline_run(offline_run)
    assert run.config["note"] == LONG_NOTE
    assert [row["epoch"] for row in run.history] == list(range(1, 41))
    assert run.history[-1]["ood_acc"] == 1.0 and run.summary["final_ood_acc"] == 1.0


def test_a_torn_last_record_ends_the_read_quietly(offline_run, tmp_path):
    copy = tmp_path / "torn.wandb"
    data = wandb_file(offline_run).read_bytes()
    copy.write_bytes(data[:-5])
    complete = list(iter_payloads(wandb_file(offline_run)))
    assert list(iter_payloads(copy)) == complete[:-1]


def test_a_damaged_payload_is_reported_not_misread(offline_run, tmp_path):
    data = bytearray(wandb_file(offline_run).read_bytes())
    data[7 + RECORD_HEADER.size + 3] ^= 0xFF  # inside the first record's payload
    copy = tmp_path / "damaged.wandb"
    copy.write_bytes(bytes(data))
    with pytest.raises(CorruptWandbFile, match="bad checksum"):
        read_wandb_file(copy)


def test_a_file_that_is_not_a_wandb_log_is_refused(tmp_path):
    other = tmp_path / "other.wandb"
    other.write_bytes(struct.pack("<4sHB", b"LDB!", 0xBEE1, 0) + b"\0" * 20)
    with pytest.raises(CorruptWandbFile, match="not a W&B transaction log"):
        read_wandb_file(other)


def test_a_run_dir_without_offline_run_is_a_user_error(tmp_path, offline_run):
    from dgsamp.errors import UserError

    with pytest.raises(UserError, match="--wandb offline"):
        read_offline_run(tmp_path)
    # a copied run directory reads the same (nothing depends on absolute paths)
    shutil.copytree(offline_run, tmp_path / "copy")
    assert read_offline_run(tmp_path / "copy").history == read_offline_run(offline_run).history
