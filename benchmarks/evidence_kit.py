"""Helpers of benchmarks/device_evidence.py: capped subprocesses, part files, statistics, NVML.

Nothing here imports torch or dgsamp, so the driver stays a thin orchestrator: every
measurement runs in a child process that can be stopped at its part's time cap.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Finished:
    """A child process's outcome: ``lines`` are (monotonic time read, text) pairs."""

    command: list[str]
    rc: int | None
    timed_out: bool
    seconds: float
    lines: list[tuple[float, str]] = field(default_factory=list)

    def tail(self, count: int = 15) -> str:
        return "\n".join(text for _, text in self.lines[-count:])

    def stdout(self) -> str:
        return "\n".join(text for _, text in self.lines)


def run_command(
    command: Sequence[str], *, timeout: float, cwd: Path, env: dict[str, str] | None = None,
    log: TextIO | None = None, prefix: str = "",
) -> Finished:
    """Run ``command`` (stderr merged into stdout), timestamping each line as it arrives.

    At ``timeout`` seconds the child's whole process group is terminated (then killed), so
    DataLoader workers and pytest children go too.
    """
    start = time.monotonic()
    if timeout <= 1:
        return Finished(list(command), None, True, 0.0)
    process = subprocess.Popen(
        list(command), cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True,
    )
    lines: list[tuple[float, str]] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append((time.monotonic(), line.rstrip("\n")))
            if log is not None:
                log.write(f"{prefix}{line}")
                log.flush()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed_out = False
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
                process.wait(timeout=grace)
                break
            except (ProcessLookupError, subprocess.TimeoutExpired):
                continue
    reader.join(timeout=5.0)
    return Finished(list(command), process.returncode, timed_out, time.monotonic() - start, lines)


class Part:
    """One part's JSON file, rewritten at the start, after each finished item and at the end,
    so whatever finished survives a cap or a kill from outside."""

    def __init__(self, out_dir: Path, name: str, cap_s: float, **fields: Any) -> None:
        self.path = out_dir / f"{name}.json"
        self.cap_s = cap_s
        self.started = time.monotonic()
        self.data: dict[str, Any] = {
            "part": name, "complete": False, "reason": "running (did not finish)",
            "started": now_iso(), "cap_s": cap_s, "seconds": 0.0, **fields, "targets": {},
        }
        self.save()

    def remaining(self) -> float:
        return self.cap_s - (time.monotonic() - self.started)

    def save(self) -> None:
        self.data["seconds"] = round(time.monotonic() - self.started, 1)
        try:
            text = json.dumps(self.data, indent=2, default=str, allow_nan=False)
        except ValueError:  # a NaN or inf from a child: still written (Python reads it back)
            text = json.dumps(self.data, indent=2, default=str)
        self.path.write_text(text)

    def target(self, name: str, target: str, measured: Any, met: bool | None) -> None:
        self.data["targets"][name] = {"target": target, "measured": measured, "met": met}

    def skip_target(self, name: str, target: str, reason: str) -> None:
        self.data["targets"][name] = {"target": target, "skipped": reason}

    def finish(self, reason: str | None = None) -> None:
        self.data["complete"], self.data["reason"] = reason is None, reason
        self.save()

    def fail(self, error: BaseException) -> None:
        self.data["traceback"] = traceback.format_exc(limit=5).splitlines()[-8:]
        self.finish(f"error: {type(error).__name__}: {error}")


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def mean_se(values: Sequence[Any]) -> dict[str, Any]:
    """Mean and standard error (sample SD / sqrt(n)) of the finite values; SE needs n >= 2."""
    kept = [v for v in (finite(x) for x in values) if v is not None]
    n = len(kept)
    mean = sum(kept) / n if n else None
    se = None
    if n >= 2 and mean is not None:
        se = math.sqrt(sum((v - mean) ** 2 for v in kept) / (n - 1) / n)
    return {"n": n, "missing": len(values) - n, "mean": mean, "se": se}


def paired(first: dict[Any, Any], second: dict[Any, Any]) -> dict[str, Any]:
    """Mean ± SE of ``first[k] - second[k]`` over the keys (seeds) both have finite values for."""
    diffs = []
    for key in first.keys() & second.keys():
        a, b = finite(first[key]), finite(second[key])
        if a is not None and b is not None:
            diffs.append(a - b)
    return mean_se(diffs)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.is_file() else None


def last_json_object(text: str) -> dict[str, Any] | None:
    """The last top-level JSON object printed in ``text`` (a benchmark's report)."""
    start = text.rfind("\n{")
    start = start + 1 if start >= 0 else (0 if text.startswith("{") else -1)
    if start < 0:
        return None
    try:
        return json.loads(text[start:])
    except json.JSONDecodeError:
        return None


class PowerSampler:
    """Polls NVML power (W) and reads the energy counter (J) of one GPU in a thread."""

    def __init__(self, index: int = 0, period_s: float = 0.05) -> None:
        import pynvml  # nvidia-ml-py, on the device image

        self.nvml = pynvml
        pynvml.nvmlInit()
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def name(self) -> str:
        name = self.nvml.nvmlDeviceGetName(self.handle)
        return name.decode() if isinstance(name, bytes) else str(name)

    def power_limit_W(self) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0
        except Exception:  # not supported on this GPU or in this VM
            return None

    def energy_J(self) -> float | None:
        """The GPU's energy counter (J), or None where NVML does not support it."""
        try:
            return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0
        except Exception:
            return None

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                watts = self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0
            except Exception:  # an unsupported reading leaves no samples, not a crash
                return
            self.samples.append((time.monotonic(), watts))
            self._stop.wait(self.period_s)

    def __enter__(self) -> PowerSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)

    def integrate_J(self, start: float, end: float) -> float | None:
        """Trapezoid integral of the sampled power over [start, end] (monotonic seconds)."""
        points = [(t, w) for t, w in self.samples if start <= t <= end]
        if len(points) < 2:
            return None
        return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in itertools.pairwise(points))

    def stats(self) -> dict[str, Any]:
        watts = [w for _, w in self.samples]
        if not watts:
            return {"count": 0}
        return {"count": len(watts), "min_W": min(watts), "mean_W": sum(watts) / len(watts),
                "max_W": max(watts), "period_s": self.period_s}

    def close(self) -> None:
        self.nvml.nvmlShutdown()
