"""Read an offline W&B run back from its ``.wandb`` file (W&B ships no public reader).

The file is W&B's transaction log, a LevelDB-style log:

    file header   7 bytes: b":W&B", magic 0xBEE1 (uint16 LE), version 0 (uint8)
    blocks        32 KiB each; a record never straddles a block without being split
    record        crc32 (uint32 LE) | length (uint16 LE) | type (uint8) | payload
                  type FULL=1, or FIRST=2 / MIDDLE=3 / LAST=4 fragments of one payload;
                  crc32 = zlib.crc32(type byte + payload); a block tail shorter than
                  7 bytes is zero padding
    payload       a protobuf ``wandb.proto.wandb_internal_pb2.Record`` (wandb's own message)

Only the framing is parsed here; the payloads are decoded with wandb's protobuf classes.
A torn record at the end of the file (the writer was killed) ends the read quietly.

    run = read_offline_run(run_dir)        # run_dir/wandb/offline-run-*/run-<id>.wandb
    run.config, run.history, run.summary
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dgsamp.errors import UserError
from dgsamp.tracking.wandb_sink import RUN_ID_FILE, WANDB_DIR

FILE_HEADER = struct.Struct("<4sHB")
FILE_IDENT, FILE_MAGIC, FILE_VERSION = b":W&B", 0xBEE1, 0
RECORD_HEADER = struct.Struct("<IHB")
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
INTERNAL_HISTORY_KEYS = {"_timestamp", "_runtime", "_wandb"}


class CorruptWandbFile(ValueError):
    """A record whose checksum or fragment order is wrong."""


@dataclass
class OfflineRun:
    """What a run logged: its config, one dict per history row (with ``_step``), its summary.

    ``config`` and ``summary`` leave out W&B's internal keys (``_wandb``, ``_runtime``, ...);
    history rows keep ``_step`` and drop ``_timestamp`` and ``_runtime``.
    """

    run_id: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def iter_payloads(path: Path) -> Iterator[bytes]:
    """The payload of every complete record of a ``.wandb`` file, in order."""
    data = Path(path).read_bytes()
    if len(data) < FILE_HEADER.size:
        raise CorruptWandbFile(f"{path}: shorter than the W&B file header")
    ident, magic, version = FILE_HEADER.unpack_from(data, 0)
    if (ident, magic, version) != (FILE_IDENT, FILE_MAGIC, FILE_VERSION):
        raise CorruptWandbFile(f"{path}: not a W&B transaction log (header {data[:7]!r})")
    position = FILE_HEADER.size
    pending: bytearray | None = None
    while position + RECORD_HEADER.size <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < RECORD_HEADER.size:
            position += left_in_block  # zero padding at the end of a block
            continue
        checksum, length, kind = RECORD_HEADER.unpack_from(data, position)
        start = position + RECORD_HEADER.size
        if start + length > len(data):
            return  # torn last record
        payload = data[start : start + length]
        if zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF != checksum:
            if checksum == 0 and length == 0 and kind == 0:
                position += left_in_block  # zero-filled tail of a block
                continue
            raise CorruptWandbFile(f"{path}: bad checksum at byte {position}")
        position = start + length
        if kind == FULL:
            yield payload
        elif kind == FIRST:
            pending = bytearray(payload)
        elif kind in (MIDDLE, LAST) and pending is not None:
            pending += payload
            if kind == LAST:
                yield bytes(pending)
                pending = None
        else:
            raise CorruptWandbFile(f"{path}: record type {kind} out of order at byte {position}")


def iter_records(path: Path):
    """Every record of a ``.wandb`` file as a ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    for payload in iter_payloads(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        yield record


def read_wandb_file(path: Path, into: OfflineRun | None = None) -> OfflineRun:
    """Fold one ``.wandb`` file's run, config, history and summary records into a run."""
    run = into or OfflineRun()
    for record in iter_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id = record.run.run_id or run.run_id
            _apply_items(run.config, record.run.config.update, record.run.config.remove)
        elif kind == "config":
            _apply_items(run.config, record.config.update, record.config.remove)
        elif kind == "history":
            row: dict[str, Any] = {}
            _apply_items(row, record.history.item, [])
            if "_step" not in row and record.history.HasField("step"):
                row["_step"] = record.history.step.num
            run.history.append({k: v for k, v in row.items() if k not in INTERNAL_HISTORY_KEYS})
        elif kind == "summary":
            _apply_items(run.summary, record.summary.update, record.summary.remove)
    run.config.pop("_wandb", None)
    run.summary = {k: v for k, v in run.summary.items() if not k.startswith("_")}
    return run


def read_offline_run(run_dir: str | Path) -> OfflineRun:
    """The offline W&B run of a dgsamp run directory, all restarts of it merged in order."""
    run_dir = Path(run_dir)
    wandb_dir = run_dir / WANDB_DIR
    stored_id = wandb_dir / RUN_ID_FILE
    run_id = stored_id.read_text().strip() if stored_id.exists() else None
    directories = [d for d in wandb_dir.glob("offline-run-*") if _offline_dir_key(d, run_id)]
    directories.sort(key=lambda d: _offline_dir_key(d, run_id))
    files = [file for directory in directories for file in sorted(directory.glob("run-*.wandb"))]
    if not files:
        raise UserError(f"no offline W&B run under {wandb_dir}; was the run started with --wandb offline?")
    run = OfflineRun()
    for file in files:
        read_wandb_file(file, into=run)
    return run


def _offline_dir_key(directory: Path, run_id: str | None) -> tuple[str, int] | None:
    """``offline-run-<time>-<id>[-<n>]`` -> (time, n) if it belongs to ``run_id`` (any if None).

    W&B adds ``-<n>`` when a restart falls in the same second as the previous start.
    """
    parts = directory.name.split("-")
    if len(parts) not in (4, 5) or parts[:2] != ["offline", "run"]:
        return None
    if run_id is not None and parts[3] != run_id:
        return None
    suffix = int(parts[4]) if len(parts) == 5 and parts[4].isdigit() else 0
    return parts[2], suffix


def _apply_items(target: dict[str, Any], updates, removes) -> None:
    """Apply protobuf ``{key | nested_key, value_json}`` items to a (nested) dict."""
    for item in updates:
        path = list(item.nested_key) or [item.key]
        node = target
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(item.value_json)
    for item in removes:
        path = list(item.nested_key) or [item.key]
        node = target
        for part in path[:-1]:
            node = node.get(part, {})
        node.pop(path[-1], None)
