"""Energy counters behind ``EnergyMeter``: NVML (GPU), Zeus (optional library), RAPL (CPU).

Every reader measures an interval: ``token = reader.begin()`` ... ``reader.end(token)``
returns the joules spent per device (or domain) in between. A reader that cannot work
raises ``EnergyUnavailable`` with the reason, at construction or on a failed read.

- NVML: ``nvmlDeviceGetTotalEnergyConsumption`` (mJ since the driver loaded; Volta and
  newer) of every GPU the run uses. CUDA numbers devices after CUDA_VISIBLE_DEVICES (and,
  by default, fastest first), NVML by PCI bus order, so each CUDA device is matched to its
  NVML device by UUID, else by PCI bus id, else by position in CUDA_VISIBLE_DEVICES.
- Zeus: ``zeus.monitor.ZeusMonitor`` windows (``pip install dgsamp[zeus]``).
- RAPL: ``/sys/class/powercap/intel-rapl:N/energy_uj`` of each CPU package (sub-domains
  ``intel-rapl:N:M`` are parts of a package and are skipped; so is ``psys``). The counter wraps
  at ``max_energy_range_uj``; one wrap per interval is corrected, more cannot be seen.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch


class EnergyUnavailable(Exception):
    """This energy source cannot measure here; the message says why."""


# ---------------------------------------------------------------- NVML


@dataclass(frozen=True)
class CudaIdentity:
    """What identifies CUDA device ``index`` to NVML."""

    index: int
    uuid: str | None = None  # any spelling: 'GPU-5e1d...', '5e1d...-...'
    pci_bus_id: str | None = None  # 'dddd:bb:dd.f' or NVML's 'dddddddd:bb:dd.f'


def cuda_identities(devices: list[torch.device]) -> list[CudaIdentity]:
    """UUID and PCI bus id of each CUDA device, from ``torch.cuda.get_device_properties``."""
    identities = []
    for device in devices:
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        uuid = getattr(props, "uuid", None)
        pci = None
        if all(hasattr(props, a) for a in ("pci_domain_id", "pci_bus_id", "pci_device_id")):
            pci = f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
        identities.append(CudaIdentity(index, None if uuid is None else str(uuid), pci))
    return identities


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def normalize_uuid(uuid: str) -> str:
    """'GPU-5E1D-...' and '5e1d...' compare equal: lower case, no prefix, no dashes."""
    text = uuid.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    return text.replace("-", "")


def normalize_pci(bus_id: str) -> tuple[int, int, int] | None:
    """(domain, bus, device) of '0000:3b:00.0' or '00000000:3B:00.0'."""
    match = re.fullmatch(r"([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)(\.[0-9a-fA-F]+)?", bus_id.strip())
    if match is None:
        return None
    return int(match[1], 16), int(match[2], 16), int(match[3], 16)


def map_cuda_to_nvml(identities: list[CudaIdentity], nvml: ModuleType) -> list[int]:
    """NVML index of each CUDA device (NVML must be initialised)."""
    nvml_uuids, nvml_pcis = [], []
    for j in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(j)
        nvml_uuids.append(normalize_uuid(_text(nvml.nvmlDeviceGetUUID(handle))))
        nvml_pcis.append(normalize_pci(_text(nvml.nvmlDeviceGetPciInfo(handle).busId)))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    mapping = []
    for identity in identities:
        found = None
        if identity.uuid is not None and normalize_uuid(identity.uuid) in nvml_uuids:
            found = nvml_uuids.index(normalize_uuid(identity.uuid))
        elif identity.pci_bus_id is not None and normalize_pci(identity.pci_bus_id) in nvml_pcis:
            found = nvml_pcis.index(normalize_pci(identity.pci_bus_id))
        elif identity.uuid is None and identity.pci_bus_id is None:
            found = _position_in_visible_devices(identity.index, visible, len(nvml_uuids))
        if found is None:
            raise EnergyUnavailable(f"CUDA device {identity.index} is not among the NVML devices")
        mapping.append(found)
    return mapping


def _position_in_visible_devices(index: int, visible: str | None, count: int) -> int | None:
    """Last resort without UUID/PCI: CUDA_VISIBLE_DEVICES='2,0' maps cuda:0 to NVML 2."""
    if visible is None:
        return index if index < count else None
    entries = [e.strip() for e in visible.split(",") if e.strip()]
    if index < len(entries) and entries[index].isdigit():
        return int(entries[index])
    return None


class NvmlReader:
    """Cumulative GPU energy counters of the run's CUDA devices, read through NVML."""

    source = "nvml"

    def __init__(self, nvml: ModuleType, identities: list[CudaIdentity]) -> None:
        self._nvml = nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as error:
            raise EnergyUnavailable(f"NVML does not start ({error})") from None
        try:
            indices = map_cuda_to_nvml(identities, nvml)
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(j) for j in indices]
            self.labels = [f"cuda:{identity.index}" for identity in identities]
            self.nvml_indices = indices
            self.begin()  # fails now if the counter is not supported (pre-Volta, some vGPUs)
        except (nvml.NVMLError, EnergyUnavailable) as error:
            nvml.nvmlShutdown()
            raise EnergyUnavailable(f"NVML energy counter unreadable ({error})") from None

    def begin(self) -> list[int]:
        try:
            return [int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self._handles]
        except self._nvml.NVMLError as error:
            raise EnergyUnavailable(f"NVML read failed ({error})") from None

    def end(self, token: list[int]) -> dict[str, float]:
        now = self.begin()
        return {label: (b - a) / 1000.0 for label, a, b in zip(self.labels, token, now)}

    def close(self) -> None:
        with contextlib.suppress(self._nvml.NVMLError):
            self._nvml.nvmlShutdown()


def open_nvml(cuda_devices: list[torch.device]) -> NvmlReader:
    if not cuda_devices:
        raise EnergyUnavailable("this run uses no CUDA device")
    try:
        import pynvml
    except ImportError:
        raise EnergyUnavailable("nvidia-ml-py is not installed (pip install dgsamp[nvml])") from None
    return NvmlReader(pynvml, cuda_identities(cuda_devices))


# ---------------------------------------------------------------- Zeus


class ZeusReader:
    """Measurement windows of the optional Zeus library (GPU, and CPU where it reads RAPL)."""

    source = "zeus"

    def __init__(self, gpu_indices: list[int]) -> None:
        try:
            from zeus.monitor import ZeusMonitor
        except ImportError:
            raise EnergyUnavailable(
                "the Zeus library is not installed (pip install dgsamp[zeus])"
            ) from None
        try:
            self._monitor = ZeusMonitor(gpu_indices=gpu_indices)
        except Exception as error:  # Zeus raises its own types for missing GPUs/RAPL
            raise EnergyUnavailable(f"Zeus cannot measure here ({error})") from None
        self._windows = 0

    def begin(self) -> str:
        self._windows += 1
        name = f"dgsamp-{self._windows}"
        self._monitor.begin_window(name)
        return name

    def end(self, token: str) -> dict[str, float]:
        measurement = self._monitor.end_window(token)
        joules = {f"gpu{i}": float(e) for i, e in (measurement.gpu_energy or {}).items()}
        cpu = getattr(measurement, "cpu_energy", None) or {}
        joules.update({f"cpu{i}": float(e) for i, e in cpu.items()})
        return joules

    def close(self) -> None:
        pass


def open_zeus(cuda_devices: list[torch.device]) -> ZeusReader:
    indices = [d.index if d.index is not None else torch.cuda.current_device() for d in cuda_devices]
    return ZeusReader(indices)


# ---------------------------------------------------------------- RAPL

RAPL_ROOT = Path("/sys/class/powercap")


class RaplReader:
    """CPU package energy counters (µJ) from the Linux powercap interface."""

    source = "rapl"

    def __init__(self, root: Path = RAPL_ROOT) -> None:
        self.domains = [
            d for d in sorted(Path(root).glob("intel-rapl:*"))
            if re.fullmatch(r"intel-rapl:\d+", d.name) and _is_package(d)
        ]
        if not self.domains:
            raise EnergyUnavailable(f"no RAPL package domain under {root}")
        self.labels = [_read_text(d / "name", d.name) for d in self.domains]
        try:
            self.ranges = [int((d / "max_energy_range_uj").read_text()) for d in self.domains]
            for d in self.domains:
                int((d / "energy_uj").read_text())
        except (OSError, ValueError) as error:
            raise EnergyUnavailable(
                f"RAPL counters under {root} are not readable ({error}); reading them usually "
                "needs root since Linux restricted energy_uj"
            ) from None

    def begin(self) -> list[int]:
        try:
            return [int((d / "energy_uj").read_text()) for d in self.domains]
        except (OSError, ValueError) as error:
            raise EnergyUnavailable(f"RAPL read failed ({error})") from None

    def end(self, token: list[int]) -> dict[str, float]:
        now = self.begin()
        joules = {}
        for label, start, stop, wrap in zip(self.labels, token, now, self.ranges):
            delta = stop - start if stop >= start else stop + wrap - start
            joules[label] = delta / 1e6
        return joules

    def close(self) -> None:
        pass


def _read_text(path: Path, default: str) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return default


def _is_package(domain: Path) -> bool:
    """A top-level domain that is a CPU package (not 'psys', which includes other parts)."""
    name = _read_text(domain / "name", "package")
    return name.startswith("package")


def open_rapl(root: Path = RAPL_ROOT) -> RaplReader:
    return RaplReader(root)
