"""benchmarks/device_evidence.py (issue 16): its CPU smoke mode end to end, the statistics,
NVML arithmetic and capped subprocesses it reports with, and its GPU branches against a fake
NVML, so the script cannot rot between the sessions that get a device."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO

BENCHMARKS = REPO / "benchmarks"
PARTS = ("a_cuda_tests", "b_throughput", "c_energy", "d_gradsamp")


@pytest.fixture
def evidence(monkeypatch):
    """The script's modules, imported the way it runs (benchmarks/ first on sys.path)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    names = ("evidence_kit", "evidence_parts", "device_evidence")
    return argparse.Namespace(**{name: importlib.import_module(name) for name in names})


def is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_smoke_run_writes_every_part_with_its_fields(tmp_path):
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "device_evidence.py"), "--smoke", "--out", str(out),
         "--work_dir", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=400,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    parts = {name: json.loads((out / f"{name}.json").read_text()) for name in PARTS}
    for name, part in parts.items():
        assert part["complete"] is True and part["reason"] is None, (name, part.get("reason"), part.get("traceback"))
        assert part["targets"] and all("met" in t or "skipped" in t for t in part["targets"].values()), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == "smoke" and summary["cuda"] is False and list(summary["parts"]) == list(PARTS)

    tests = parts["a_cuda_tests"]
    assert tests["skipped"] == "no CUDA"
    assert {"tests/algorithms/test_algorithms.py", "tests/data/test_augment.py"} <= set(tests["marked_files"])
    assert tests["collected_cuda_tests"] >= 2  # the marker is registered and selects tests

    (result,) = parts["b_throughput"]["backbones"].values()
    assert result["rc"] == 0
    for key in ("domainbed_images_per_s", "dgsamp_images_per_s", "model_only_images_per_s",
                "dgsamp_vs_domainbed", "dgsamp_vs_model_only"):
        assert is_number(result[key]) and result[key] > 0, key

    energy = parts["c_energy"]
    assert energy["skipped"] == "no CUDA" and energy["train_rc"] == 0
    assert [e["epoch"] for e in energy["epochs"]] == [1, 2]
    # each epoch's progress line was found: it places NVML's sampled power on the GPU (its
    # pattern once missed the "(step N)" part and left every ratio empty, 2026-12-04 H200 run)
    assert energy["epoch_lines_found"] == [1, 2]
    assert all(is_number(e["train_seconds"]) and e["train_energy_J"] is None for e in energy["epochs"])
    medians = energy["overhead"]["seconds_median"]
    assert set(medians) == {"plain", "phase_per_epoch", "phase_per_step", "flops_per_step"}
    assert all(is_number(v) and v > 0 for v in medians.values())

    gradsamp = parts["d_gradsamp"]
    runs = {run["arm"]: run for run in gradsamp["runs"]}
    assert set(runs) == {"off", "periodic", "skip", "fewer"} and all(r["rc"] == 0 for r in runs.values())
    assert runs["off"]["epochs"] == runs["periodic"]["epochs"] == 3
    assert runs["periodic"]["gradsamp_epochs"] == runs["skip"]["gradsamp_epochs"] == 1
    assert runs["fewer"]["epochs"] == runs["periodic"]["backprop_epochs"] == 2
    # equal compute: the GradSamp run and both controls count the same training FLOPs
    assert runs["periodic"]["total_train_flops"] == runs["skip"]["total_train_flops"] == runs["fewer"]["total_train_flops"]
    for run in runs.values():
        assert 0 <= run["selected_ood_acc"] <= 1 and 0 <= run["final_ood_acc"] <= 1
    versus_off = gradsamp["stats"]["paired"]["periodic_vs_off"]
    assert versus_off["flops_saved_percent"]["mean"] == pytest.approx(100 / 3, abs=0.5)
    assert is_number(versus_off["selected_ood_acc_change_pp"]["mean"])
    assert versus_off["energy_saved_J"]["n"] == 0  # no energy on this CPU: never a made-up number


def test_a_part_stopped_at_its_cap_is_written_as_incomplete(tmp_path):
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / "device_evidence.py"), "--smoke", "--out", str(out),
         "--parts", "b_throughput", "--cap_throughput", "2", "--work_dir", str(tmp_path / "work")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    part = json.loads((out / "b_throughput.json").read_text())
    assert part["complete"] is False and "time cap" in part["reason"] and part["seconds"] < 15
    assert all(entry["timed_out"] for entry in part["backbones"].values())
    assert all(target["met"] is None for target in part["targets"].values())  # missing, not missed
    assert list(json.loads((out / "summary.json").read_text())["parts"]) == ["b_throughput"]


def test_device_profile_training_commands_parse(evidence, tmp_path):
    """The GPU profile's ``dgsamp train`` flags are never run here: dgsamp's parser checks them."""
    from dgsamp.cli import build_parser

    driver, parts = evidence.device_evidence, evidence.evidence_parts
    profile = driver.PROFILES["device"]
    args = argparse.Namespace(smoke=False, device="cuda", data_dir=str(tmp_path))
    ctx = driver.Context(args, profile, tmp_path, tmp_path, True, None)
    commands = [ctx.train_command(tmp_path, *profile["energy_train"])]
    arms = {arm: ctx.train_command(tmp_path, *profile["gradsamp_train"], "--epochs", "6", *flags)
            for arm, flags in parts.ARM_FLAGS.items()}
    for command in [*commands, *arms.values()]:
        parsed = build_parser().parse_args(command[3:])
        assert parsed.device == "cuda" and parsed.data_dir == str(tmp_path) and parsed.energy == "nvml"
    skip = build_parser().parse_args(arms["skip"][3:])
    assert (skip.gradsamp, skip.gradsamp_period, skip.gradsamp_dist) == ("periodic", 3, "skip")


def test_mean_se_and_paired_differences(evidence):
    kit = evidence.evidence_kit
    assert kit.mean_se([1.0, 2.0, 3.0]) == {"n": 3, "missing": 0, "mean": 2.0, "se": pytest.approx(1 / math.sqrt(3))}
    assert kit.mean_se([4.0, None, float("nan")]) == {"n": 1, "missing": 2, "mean": 4.0, "se": None}
    diff = kit.paired({0: 10.0, 1: 14.0, 2: 9.0}, {0: 8.0, 1: 10.0, 3: 1.0})  # seeds 0 and 1 only
    assert diff["n"] == 2 and diff["mean"] == 3.0 and diff["se"] == pytest.approx(1.0)


def test_gradsamp_statistics_pair_each_control_by_seed(evidence):
    def run(energy, acc, flops):
        return {"total_train_energy_J": energy, "selected_ood_acc": acc, "final_ood_acc": acc,
                "total_train_flops": flops, "train_seconds": 1.0}

    results = {
        "off": {0: run(100.0, 0.90, 6), 1: run(120.0, 0.92, 6)},
        "periodic": {0: run(70.0, 0.89, 4), 1: run(90.0, 0.90, 4)},
        "skip": {0: run(72.0, 0.91, 4), 1: run(86.0, 0.92, 4)},
        "fewer": {0: run(68.0, 0.90, 4)},
    }
    stats = evidence.evidence_parts.gradsamp_statistics(results)
    off = stats["paired"]["periodic_vs_off"]
    assert off["energy_saved_J"]["mean"] == pytest.approx(30.0) and off["energy_saved_J"]["se"] == pytest.approx(0.0)
    assert off["energy_saved_percent"]["mean"] == pytest.approx((30 + 25) / 2)
    assert off["flops_saved_percent"]["mean"] == pytest.approx(100 / 3)
    assert off["selected_ood_acc_change_pp"]["mean"] == pytest.approx(-1.5)
    skip = stats["paired"]["periodic_vs_skip"]["selected_ood_acc_change_pp"]
    assert skip["mean"] == pytest.approx(-2.0) and skip["se"] == pytest.approx(0.0)
    fewer = stats["paired"]["periodic_vs_fewer"]
    assert fewer["energy_saved_J"] == {"n": 1, "missing": 0, "mean": -2.0, "se": None}
    assert stats["arms"]["off"]["total_train_energy_J"]["mean"] == pytest.approx(110.0)


class FakeNvml:
    """Just what the sampler calls, like nvidia-ml-py's pynvml: a GPU drawing a steady 250 W."""

    def __init__(self, watts: float = 250.0) -> None:
        self.watts, self.start = watts, time.monotonic()

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return b"Fake H200"

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return 700_000

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return int(self.watts * 1000)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: int) -> int:
        return int((time.monotonic() - self.start) * self.watts * 1000)


def test_trainer_energy_is_checked_against_sampled_power_and_the_counter(evidence, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    parts = evidence.evidence_parts
    sampler = parts.PowerSampler()
    sampler.samples = [(t / 10, 250.0) for t in range(0, 301)]  # 30 s at 250 W, every 0.1 s
    records = [  # each epoch: 8 s of training then 2 s of evaluation, printed at 10, 20, 30 s
        {"epoch": e, "epoch_kind": "backprop", "energy_source": "nvml", "train_energy_J": joules,
         "train_seconds": 8.0, "eval_energy_J": 500.0, "epoch_seconds": 10.0}
        for e, joules in ((1, 2000.0), (2, 2000.0), (3, 2000.0))
    ]
    epochs = parts.epoch_energy(records, {1: 10.0, 2: 20.0, 3: 30.0}, sampler)
    assert [e["nvml_sampled_train_J"] for e in epochs] == [pytest.approx(2000.0)] * 3
    assert all(e["mean_train_W"] == pytest.approx(250.0) for e in epochs)
    good = parts.plausibility(epochs, 7600.0, sampler.stats(), sampler.power_limit_W())
    assert all(good["checks"].values()), good
    records[1]["train_energy_J"] = 6000.0  # three times what the GPU drew
    bad = parts.plausibility(parts.epoch_energy(records, {1: 10.0, 2: 20.0, 3: 30.0}, sampler), 7600.0,
                             sampler.stats(), 700.0)
    assert bad["checks"] == {"power_in_range": True, "within_30pct_of_sampled": False, "not_above_counter": False}


def process_is_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (exited, or a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_capped_child_is_stopped_with_its_process_group(evidence):
    """The child outlives its cap: it is reported timed out, ended by SIGTERM, and the
    grandchild it started (same process group) is ended with it."""
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('up', p.pid, flush=True); time.sleep(60)")
    done = evidence.evidence_kit.run_command([sys.executable, "-c", code], timeout=3, cwd=REPO)
    assert done.timed_out and done.rc == -signal.SIGTERM
    word, grandchild = done.stdout().split()
    assert word == "up"
    deadline = time.monotonic() + 30  # a guard against a hung process, not a timing assertion
    while not process_is_gone(int(grandchild)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process_is_gone(int(grandchild)), f"grandchild {grandchild} survived its process group's kill"


def test_junit_and_report_parsing(evidence, tmp_path):
    xml = tmp_path / "junit.xml"
    xml.write_text(
        '<testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4">'
        '<testcase classname="tests.a" name="test_ok"/><testcase classname="tests.a" name="test_ok2"/>'
        '<testcase classname="tests.a" name="test_bad"><failure message="boom"/></testcase>'
        '<testcase classname="tests.b" name="test_gpu"><skipped message="needs a CUDA device"/></testcase>'
        "</testsuite></testsuites>"
    )
    counts = evidence.device_evidence.junit_counts(xml)
    assert (counts["passed"], counts["failures"], counts["skipped"]) == (2, 1, 1)
    assert counts["not_passed"] == ["tests.a::test_bad: failure", "tests.b::test_gpu: skipped"]
    printed = 'epoch 1 ...\n{\n  "a": {"b": 1}\n}\n'
    assert evidence.evidence_kit.last_json_object(printed) == {"a": {"b": 1}}


def test_gpu_branches_run_against_a_fake_nvml(evidence, monkeypatch, tmp_path):
    """The parts' CUDA/NVML code paths on this CPU: pytest without -m skips, real NVML calls
    answered by a fake; every check then reads as missed, never as met."""
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml())
    driver = evidence.device_evidence
    monkeypatch.setattr(driver, "DEVICE_SENSITIVE_TESTS", ("tests/metering/test_energy.py",))
    args = argparse.Namespace(smoke=True, device="cpu", data_dir=str(tmp_path))
    with (tmp_path / "children.log").open("w") as log:
        ctx = driver.Context(args, driver.PROFILES["smoke"], tmp_path, tmp_path, True, log)
        for name in ("a_cuda_tests", "c_energy"):
            part = evidence.evidence_kit.Part(tmp_path, name, 200)
            driver.RUNNERS[name](ctx, part)
            assert part.data["complete"], (name, part.data["reason"], part.data.get("traceback"))
    tests = json.loads((tmp_path / "a_cuda_tests.json").read_text())
    marked = tests["runs"]["cuda_marked"]
    assert marked["rc"] == 0 and marked["skipped"] >= 2 and marked["passed"] == 0
    assert tests["runs"]["device_sensitive"]["passed"] > 0
    assert tests["targets"]["cuda_tests_pass"]["met"] is False  # skipped tests are no evidence
    energy = json.loads((tmp_path / "c_energy.json").read_text())
    assert energy["gpu"] == "Fake H200" and energy["sampled_power"]["count"] > 0
    assert energy["targets"]["nvml_train_energy_non_null"]["met"] is False  # the CPU run measured nothing
    assert energy["targets"]["nvml_energy_plausible"]["met"] is False
    assert "skipped" in energy["targets"]["metering_overhead_le_1pct"]
