"""Energy metering: truthful 'unavailable' on this CPU machine, UserErrors for impossible
requests, RAPL arithmetic, and NVML's CUDA-to-NVML device mapping.

NVML cannot exist here (no GPU, no driver library), so its tests use a fake NVML module
that behaves like nvidia-ml-py's ``pynvml``. RAPL does not exist on this machine either
(no /sys/class/powercap), so its tests build a powercap tree in a temporary directory;
the code reads it with the same file reads it uses on /sys.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from dgsamp.errors import UserError
from dgsamp.metering.energy import EnergyMeter
from dgsamp.metering.readers import (
    CudaIdentity,
    EnergyUnavailable,
    NvmlReader,
    RaplReader,
    map_cuda_to_nvml,
    normalize_pci,
    normalize_uuid,
)


def _rapl_readable_here() -> bool:
    try:
        RaplReader()
    except EnergyUnavailable:
        return False
    return True


def test_auto_on_this_machine_reports_what_it_can_truthfully() -> None:
    meter = EnergyMeter("auto")
    with meter.phase("train") as reading:
        sum(i * i for i in range(20000))
    meter.close()
    assert reading.seconds > 0
    nothing_measurable = (
        not torch.cuda.is_available()
        and importlib.util.find_spec("zeus") is None
        and not _rapl_readable_here()
    )
    if nothing_measurable:
        assert meter.source == reading.source == "unavailable"
        assert reading.joules is None  # never 0, never an estimate
        assert any(r.startswith("rapl:") for r in meter.reasons)
    else:
        assert meter.source in ("nvml", "zeus", "rapl")
        assert isinstance(reading.joules, float) and reading.joules >= 0


def test_none_measures_nothing() -> None:
    with EnergyMeter("none") as meter, meter.phase("eval") as reading:
        pass
    assert meter.source == "unavailable" and reading.joules is None and reading.seconds >= 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_explicit_nvml_without_gpu_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--energy nvml"):
        EnergyMeter("nvml")
    with pytest.raises(UserError, match="no CUDA device"):
        EnergyMeter("nvml", [torch.device("cpu")])


@pytest.mark.skipif(importlib.util.find_spec("zeus") is not None, reason="zeus is installed")
def test_explicit_zeus_without_the_library_says_how_to_install_it() -> None:
    with pytest.raises(UserError, match=r"pip install dgsamp\[zeus\]"):
        EnergyMeter("zeus")


def test_unknown_source_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--energy 'joulemeter'"):
        EnergyMeter("joulemeter")


# ---------------------------------------------------------------- RAPL on a built powercap tree


def _domain(root: Path, name: str, label: str, energy: int, max_range: int = 1_000_000) -> Path:
    d = root / name
    d.mkdir()
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def test_rapl_sums_packages_handles_wrap_and_skips_subdomains(tmp_path: Path) -> None:
    pkg0 = _domain(tmp_path, "intel-rapl:0", "package-0", 900_000)
    pkg1 = _domain(tmp_path, "intel-rapl:1", "package-1", 1_000)
    core = _domain(tmp_path, "intel-rapl:0:0", "core", 5)
    psys = _domain(tmp_path, "intel-rapl:2", "psys", 7)
    meter = EnergyMeter("rapl", rapl_root=tmp_path)
    assert meter.source == "rapl"
    with meter.phase("train") as reading:
        (pkg0 / "energy_uj").write_text("100000\n")  # wrapped: 900000 -> 1000000 -> 100000
        (pkg1 / "energy_uj").write_text("3501000\n")  # beyond max range is fine: no wrap
        (core / "energy_uj").write_text("999999\n")
        (psys / "energy_uj").write_text("999999\n")
    assert reading.joules_by_device == pytest.approx({"package-0": 0.2, "package-1": 3.5})
    assert reading.joules == pytest.approx(3.7)
    assert reading.source == "rapl"


def test_rapl_unreadable_or_missing_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no RAPL package domain"):
        EnergyMeter("rapl", rapl_root=tmp_path / "absent")
    d = tmp_path / "intel-rapl:0"
    d.mkdir()
    (d / "name").write_text("package-0")
    (d / "max_energy_range_uj").write_text("10")
    (d / "energy_uj").mkdir()  # unreadable as a file (root reads any mode, so no chmod)
    with pytest.raises(UserError, match="not readable"):
        EnergyMeter("rapl", rapl_root=tmp_path)
    auto = EnergyMeter("auto", devices=[], rapl_root=tmp_path)
    if importlib.util.find_spec("zeus") is None:
        assert auto.source == "unavailable"


# ---------------------------------------------------------------- NVML through a fake module


class FakeNvml:
    """Mimics pynvml: devices in PCI order, bytes UUIDs as old versions return them."""

    class NVMLError(Exception):
        pass

    def __init__(self, devices: list[dict]) -> None:
        self.devices = devices
        self.initialised = 0

    def nvmlInit(self) -> None:
        self.initialised += 1

    def nvmlShutdown(self) -> None:
        self.initialised -= 1

    def nvmlDeviceGetCount(self) -> int:
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, j: int) -> int:
        return j

    def nvmlDeviceGetUUID(self, handle: int) -> bytes:
        return self.devices[handle]["uuid"].encode()

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:
        return SimpleNamespace(busId=self.devices[handle]["bus"].encode())

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        energy = self.devices[handle]["mJ"]
        if energy is None:
            raise self.NVMLError("Not Supported")
        return energy


def _three_gpus() -> FakeNvml:
    return FakeNvml([
        {"uuid": "GPU-aaaaaaaa-0000-0000-0000-000000000000", "bus": "00000000:1A:00.0", "mJ": 1_000},
        {"uuid": "GPU-bbbbbbbb-0000-0000-0000-000000000000", "bus": "00000000:3B:00.0", "mJ": 2_000},
        {"uuid": "GPU-cccccccc-0000-0000-0000-000000000000", "bus": "00000000:5C:00.0", "mJ": 3_000},
    ])


def test_nvml_mapping_by_uuid_follows_cuda_visible_devices_order() -> None:
    nvml = _three_gpus()
    # CUDA_VISIBLE_DEVICES=2,0: cuda:0 is NVML device 2, cuda:1 is NVML device 0.
    # torch spells the UUID without the 'GPU-' prefix.
    identities = [
        CudaIdentity(0, "cccccccc-0000-0000-0000-000000000000", "0000:5c:00.0"),
        CudaIdentity(1, "aaaaaaaa-0000-0000-0000-000000000000", "0000:1a:00.0"),
    ]
    assert map_cuda_to_nvml(identities, nvml) == [2, 0]


def test_nvml_mapping_falls_back_to_pci_then_visible_devices(monkeypatch) -> None:
    nvml = _three_gpus()
    assert map_cuda_to_nvml([CudaIdentity(0, None, "0000:3b:00.0")], nvml) == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,1")
    assert map_cuda_to_nvml([CudaIdentity(0), CudaIdentity(1)], nvml) == [2, 1]
    with pytest.raises(EnergyUnavailable):
        map_cuda_to_nvml([CudaIdentity(0, "GPU-dddddddd", "0000:99:00.0")], nvml)


def test_nvml_reader_reports_each_cuda_device_in_joules_through_the_meter() -> None:
    nvml = _three_gpus()
    identities = [CudaIdentity(0, "GPU-cccccccc-0000-0000-0000-000000000000"),
                  CudaIdentity(1, "GPU-aaaaaaaa-0000-0000-0000-000000000000")]
    reader = NvmlReader(nvml, identities)
    assert reader.nvml_indices == [2, 0]
    meter = EnergyMeter.from_reader(reader)
    with meter.phase("train") as reading:
        nvml.devices[2]["mJ"] += 150_000  # cuda:0 spent 150 J
        nvml.devices[0]["mJ"] += 25_500  # cuda:1 spent 25.5 J
        nvml.devices[1]["mJ"] += 99_000_000  # not used by this run
        time.sleep(0.01)
    assert reading.joules_by_device == {"cuda:0": 150.0, "cuda:1": 25.5}
    assert reading.joules == 175.5 and reading.source == "nvml"
    assert reading.seconds >= 0.01
    meter.close()
    assert nvml.initialised == 0


def test_nvml_without_energy_counter_is_unavailable_and_shuts_down() -> None:
    nvml = _three_gpus()
    nvml.devices[1]["mJ"] = None
    with pytest.raises(EnergyUnavailable, match="Not Supported"):
        NvmlReader(nvml, [CudaIdentity(0, "bbbbbbbb-0000-0000-0000-000000000000")])
    assert nvml.initialised == 0


def test_nvml_failing_mid_run_leaves_the_phase_unmeasured() -> None:
    nvml = _three_gpus()
    reader = NvmlReader(nvml, [CudaIdentity(0, "GPU-aaaaaaaa-0000-0000-0000-000000000000")])
    with EnergyMeter.from_reader(reader) as meter, meter.phase("eval") as reading:
        nvml.devices[0]["mJ"] = None
    assert reading.joules is None and "Not Supported" in (reading.error or "")


def test_identifier_normalisation() -> None:
    assert normalize_uuid("GPU-5E1D-AB") == normalize_uuid("5e1dab") == "5e1dab"
    assert normalize_pci("00000000:3B:00.0") == normalize_pci("0000:3b:00.0") == (0, 0x3B, 0)
    assert normalize_pci("nonsense") is None
