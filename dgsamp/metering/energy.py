"""Measured energy per phase of a run (train, eval), or an honest 'unavailable'.

    meter = EnergyMeter("auto", [torch.device("cuda", 0)])
    with meter.phase("train") as reading:
        ...                                   # one epoch
    reading.joules, reading.seconds           # float | None, float
    meter.close()

Sources (``--energy``): ``nvml`` GPU energy counters, ``zeus`` the Zeus library, ``rapl``
CPU package counters, ``none`` measure nothing, ``auto`` the first that works of nvml (only
when the run uses a CUDA device), zeus, rapl. A source that cannot measure gives
``source == "unavailable"`` and ``joules is None`` — never 0 and never an estimate. An
explicitly requested source that cannot measure is a UserError.

Counters are read once at the start and once at the end of a phase, after synchronising
the run's CUDA devices, so queued kernels are billed to the phase that launched them.
The meter measures the whole device (or CPU package): other processes on it are included.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from dgsamp.errors import UserError
from dgsamp.metering.readers import (
    RAPL_ROOT,
    EnergyUnavailable,
    open_nvml,
    open_rapl,
    open_zeus,
)

ENERGY_SOURCES = ("auto", "nvml", "zeus", "rapl", "none")
UNAVAILABLE = "unavailable"


class EnergyReader(Protocol):
    source: str

    def begin(self) -> Any: ...

    def end(self, token: Any) -> dict[str, float]: ...

    def close(self) -> None: ...


@dataclass
class PhaseReading:
    """What one phase cost. ``joules`` is None when nothing was measured."""

    name: str
    source: str
    joules: float | None = None
    seconds: float = 0.0
    joules_by_device: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # why a read failed mid-run, if it did


class EnergyMeter:
    """Measures energy and wall time of named phases with one energy source."""

    def __init__(
        self,
        source: str = "auto",
        devices: Sequence[torch.device | str] | None = None,
        *,
        rapl_root: Path = RAPL_ROOT,
    ) -> None:
        if source not in ENERGY_SOURCES:
            raise UserError(
                f"--energy '{source}' is unknown; choose one of {', '.join(ENERGY_SOURCES)}"
            )
        self.requested = source
        self.cuda_devices = _cuda_devices(devices)
        self.reasons: list[str] = []  # why each tried source could not measure
        self._reader: EnergyReader | None = None
        if source == "none":
            self.reasons.append("none: energy measurement switched off (--energy none)")
        else:
            self._reader = self._open(source, rapl_root)
        self.source = self._reader.source if self._reader is not None else UNAVAILABLE

    @classmethod
    def from_reader(
        cls, reader: EnergyReader, devices: Sequence[torch.device | str] = ()
    ) -> EnergyMeter:
        """A meter over a reader built elsewhere (a custom source, or a test double)."""
        meter = cls.__new__(cls)
        meter.requested = reader.source
        meter.cuda_devices = _cuda_devices(devices)
        meter.reasons = []
        meter._reader = reader
        meter.source = reader.source
        return meter

    def _open(self, source: str, rapl_root: Path) -> EnergyReader | None:
        openers: dict[str, Callable[[], EnergyReader]] = {
            "nvml": lambda: open_nvml(self.cuda_devices),
            "zeus": lambda: open_zeus(self.cuda_devices),
            "rapl": lambda: open_rapl(rapl_root),
        }
        order = ["nvml", "zeus", "rapl"] if source == "auto" else [source]
        for name in order:
            try:
                return openers[name]()
            except EnergyUnavailable as reason:
                self.reasons.append(f"{name}: {reason}")
                if source != "auto":
                    raise UserError(
                        f"--energy {source} cannot measure here: {reason}; use --energy auto "
                        "(or none) to run without it"
                    ) from None
        return None

    @property
    def available(self) -> bool:
        return self._reader is not None

    @contextmanager
    def phase(self, name: str) -> Iterator[PhaseReading]:
        """Measure the block; the yielded reading is filled in when the block ends."""
        reading = PhaseReading(name=name, source=self.source)
        self._synchronize()
        token = self._begin(reading)
        start = time.perf_counter()
        try:
            yield reading
        finally:
            self._synchronize()
            reading.seconds = time.perf_counter() - start
            if token is not None and self._reader is not None:
                try:
                    per_device = self._reader.end(token)
                except EnergyUnavailable as error:
                    reading.error = str(error)
                else:
                    reading.joules_by_device = per_device
                    reading.joules = float(sum(per_device.values())) if per_device else None

    def _begin(self, reading: PhaseReading) -> Any:
        if self._reader is None:
            return None
        try:
            return self._reader.begin()
        except EnergyUnavailable as error:
            reading.error = str(error)
            return None

    def _synchronize(self) -> None:
        for device in self.cuda_devices:
            torch.cuda.synchronize(device)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> EnergyMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EnergyMeter(source={self.source!r}, requested={self.requested!r})"


def _cuda_devices(devices: Sequence[torch.device | str] | None) -> list[torch.device]:
    """The CUDA devices among ``devices``; None means the current CUDA device if there is one."""
    if devices is None:
        if not torch.cuda.is_available():
            return []
        return [torch.device("cuda", torch.cuda.current_device())]
    cuda = []
    for device in devices:
        device = torch.device(device)
        if device.type == "cuda":
            index = device.index if device.index is not None else torch.cuda.current_device()
            cuda.append(torch.device("cuda", index))
    return list(dict.fromkeys(cuda))
