"""GPU evidence in one prepared call (issue 16): CUDA tests, throughput, NVML energy, GradSamp.

    python benchmarks/device_evidence.py --data_dir .device/data --out "$OUT"    # on one GPU
    python benchmarks/device_evidence.py --device cpu --smoke --out /tmp/evidence  # CPU smoke

Runs four parts in a fixed order, each under its own time cap, each in child processes
(``dgsamp train`` through its CLI, the benchmark scripts beside this one, pytest):

- ``a_cuda_tests``: ``pytest -m cuda`` on the files holding CUDA-marked tests, then the
  test files that also parametrize over CUDA or read real NVML.
- ``b_throughput``: benchmarks/throughput_vs_domainbed.py per backbone (dgsamp's trainer vs
  a DomainBed-style PIL/DataLoader fp32 loop vs the model-only step, in one process).
- ``c_energy``: a short ``dgsamp train --energy nvml`` run, its per-epoch ``train_energy_J``
  against NVML's sampled power x time and energy counter; benchmarks/energy_overhead.py.
- ``d_gradsamp``: GradSamp (periodic K=3) vs off vs its skip control vs fewer epochs, per
  seed; measured training energy and OOD accuracy with mean, SE and paired differences.

Each part writes ``<part>.json`` into ``--out`` (default $OUT, else ./device_evidence_out),
rewritten as items finish; a part that reaches its cap stops its child and is written with
``"complete": false`` and the reason. ``summary.json`` gathers every target as met, missed
(with the measured numbers) or skipped; children's output goes to ``children.log``.
``--smoke`` uses tiny sizes (embedded PACSMini, a timm test model, a few steps); parts or
checks that need CUDA or NVML record ``"skipped": "no CUDA"``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evidence_context import REPO, Context
from evidence_kit import Part, now_iso, read_json
from evidence_parts import part_energy, part_gradsamp

BENCHMARKS = Path(__file__).resolve().parent
PARTS = ("a_cuda_tests", "b_throughput", "c_energy", "d_gradsamp")
# Test files that parametrize over "cuda" when it exists, or read the real meter (NVML there).
DEVICE_SENSITIVE_TESTS = ("tests/data/test_augment.py", "tests/metering/test_energy.py")

PROFILES: dict[str, dict[str, Any]] = {
    "device": {
        "caps": {"a_cuda_tests": 60, "b_throughput": 220, "c_energy": 110, "d_gradsamp": 175},  # H200 2026-12-04: 44, 2 x 103, 99, 163 s
        "run_cap": 60,
        "throughput": {"dataset": "PACS", "backbones": ["resnet50", "tf_efficientnet_lite0"],
                       "resolution": 224, "batch_size": 32, "steps": 200, "warmup": 20, "workers": 8},
        "energy_train": ["--dataset", "PACS", "--backbone", "resnet50", "--pretrained", "none",
                         "--resolution", "224", "--precision", "bf16", "--test_envs", "3",
                         "--epochs", "3", "--steps_per_epoch", "120", "--num_workers", "8",
                         "--energy", "nvml"],
        "energy_overhead": ["--backbone", "resnet50", "--batch", "32", "--image-size", "224",
                            "--steps", "25", "--rounds", "5", "--energy", "nvml"],
        "gradsamp_train": ["--dataset", "RotatedMNIST", "--backbone", "mnist_cnn", "--test_envs", "0",
                           "--energy", "nvml"],
        "gradsamp": {"epochs": 6, "steps": 200, "seeds": [0, 1]},
    },
    "smoke": {
        "caps": {"a_cuda_tests": 60, "b_throughput": 120, "c_energy": 120, "d_gradsamp": 240},
        "run_cap": 90,
        "throughput": {"dataset": "PACSMini", "backbones": ["test_efficientnet"],
                       "resolution": 32, "batch_size": 4, "steps": 3, "warmup": 1, "workers": 0},
        "energy_train": ["--dataset", "PACSMini", "--backbone", "test_efficientnet", "--pretrained", "none",
                         "--resolution", "32", "--batch_size", "4", "--test_envs", "0",
                         "--epochs", "2", "--steps_per_epoch", "2", "--energy", "auto"],
        "energy_overhead": ["--backbone", "test_efficientnet", "--batch", "4", "--image-size", "32",
                            "--steps", "2", "--rounds", "2", "--energy", "auto"],
        "gradsamp_train": ["--dataset", "PACSMini", "--backbone", "test_efficientnet", "--pretrained", "none",
                           "--resolution", "32", "--batch_size", "4", "--test_envs", "0", "--energy", "auto"],
        "gradsamp": {"epochs": 3, "steps": 2, "seeds": [0]},
    },
}


# ---------------------------------------------------------------- a: CUDA tests
def marked_test_files() -> list[str]:
    """Test files holding a ``@pytest.mark.cuda`` test, relative to the repo."""
    found = [p for p in sorted((REPO / "tests").rglob("test_*.py")) if "@pytest.mark.cuda" in p.read_text()]
    return [str(p.relative_to(REPO)) for p in found]


def junit_counts(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"junit": "missing"}
    suites = ET.parse(path).getroot()
    suite = suites if suites.tag == "testsuite" else suites.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} if suite is not None else {}
    counts["passed"] = counts.get("tests", 0) - counts.get("failures", 0) - counts.get("errors", 0) - counts.get("skipped", 0)
    counts["not_passed"] = [
        f"{case.get('classname')}::{case.get('name')}: {child.tag}"
        for case in suites.iter("testcase") for child in case if child.tag in ("failure", "error", "skipped")
    ][:30]
    return counts


def part_tests(ctx: Context, part: Part) -> None:
    files = marked_test_files()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    part.data["marked_files"] = files
    if not ctx.cuda:
        done = ctx.run([*pytest, "-m", "cuda", "--collect-only", *files], part.remaining(), "[a] ")
        match = re.search(r"(\d+)(?:/\d+)? tests? collected", done.stdout())
        part.data["collected_cuda_tests"] = int(match.group(1)) if match else None
        part.data["skipped"] = "no CUDA"
        part.skip_target("cuda_tests_pass", "every CUDA-marked test passes on the GPU", "no CUDA")
        return part.finish()
    runs: dict[str, Any] = {}
    part.data["runs"] = runs
    sensitive = [f for f in DEVICE_SENSITIVE_TESTS if (REPO / f).is_file()]
    for name, selection in (("cuda_marked", ["-m", "cuda", *files]), ("device_sensitive", sensitive)):
        xml = ctx.work / f"pytest_{name}.xml"
        done = ctx.run([*pytest, f"--junitxml={xml}", *selection], part.remaining(), "[a] ")
        runs[name] = {"selection": selection, "rc": done.rc, "seconds": round(done.seconds, 1),
                      **junit_counts(xml), "tail": done.tail(8).splitlines()}
        part.save()
        if done.timed_out:
            return part.finish(f"time cap of {part.cap_s} s reached during pytest {name}")
    marked = runs["cuda_marked"]
    met = all(r["rc"] == 0 for r in runs.values()) and marked.get("passed", 0) > 0 and marked.get("skipped", 1) == 0
    part.target("cuda_tests_pass", "every CUDA-marked test passes on the GPU (none skipped)",
                {name: {k: r.get(k) for k in ("rc", "passed", "failures", "errors", "skipped")}
                 for name, r in runs.items()}, met)
    part.finish()


# ---------------------------------------------------------------- b: throughput
def part_throughput(ctx: Context, part: Part) -> None:
    config = ctx.profile["throughput"]
    part.data.update(config=config, device=ctx.device, backbones={})
    backbones = config["backbones"]
    for i, backbone in enumerate(backbones):
        out_file = ctx.work / f"throughput_{backbone}.json"
        command = [sys.executable, str(BENCHMARKS / "throughput_vs_domainbed.py"), "--dataset", config["dataset"],
                   "--backbone", backbone, "--device", ctx.device, "--out", str(out_file),
                   *[f"--{k}={config[k]}" for k in ("resolution", "batch_size", "steps", "warmup", "workers")]]
        if config["dataset"] != "PACSMini":
            command += ["--data_dir", ctx.args.data_dir]
        done = ctx.run(command, part.remaining() / (len(backbones) - i), f"[b {backbone}] ")
        result = read_json(out_file) or {}
        entry = {**result, "rc": done.rc, "timed_out": done.timed_out}
        if done.rc != 0:
            entry["tail"] = done.tail(10).splitlines()
        part.data["backbones"][backbone] = entry
        vs_plain, vs_model = result.get("dgsamp_vs_domainbed"), result.get("dgsamp_vs_model_only")
        part.target(f"{backbone}_dgsamp_ge_2x_domainbed", "dgsamp images/s >= 2 x the DomainBed-style loop",
                    vs_plain, None if vs_plain is None else vs_plain >= 2.0)
        part.target(f"{backbone}_dgsamp_within_10pct_of_model_only", "dgsamp images/s >= 0.9 x model-only step",
                    vs_model, None if vs_model is None else vs_model >= 0.9)
        part.save()
        if part.remaining() <= 1 and i + 1 < len(backbones):
            return part.finish(f"time cap of {part.cap_s} s reached before {backbones[i + 1]}")
    incomplete = [f"{b} ({'time cap' if e['timed_out'] else 'exit ' + str(e['rc'])})"
                  for b, e in part.data["backbones"].items() if e["rc"] != 0]
    part.finish(f"did not finish: {', '.join(incomplete)}" if incomplete else None)


# ---------------------------------------------------------------- driver
RUNNERS: dict[str, Callable[[Context, Part], None]] = {
    "a_cuda_tests": part_tests, "b_throughput": part_throughput,
    "c_energy": part_energy, "d_gradsamp": part_gradsamp,
}


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def describe(name: str, data: dict[str, Any]) -> list[str]:
    state = "complete" if data.get("complete") else f"INCOMPLETE ({data.get('reason')})"
    lines = [f"[{name}] {state}, {data.get('seconds')} s" + (f"; skipped: {data['skipped']}" if "skipped" in data else "")]
    for target, entry in data.get("targets", {}).items():
        if "skipped" in entry:
            verdict = f"skipped ({entry['skipped']})"
        else:
            verdict = {True: "MET", False: "MISSED", None: "not measured"}[entry["met"]]
            if entry["met"] is not None:
                verdict += f"; measured {json.dumps(entry['measured'], default=str)[:300]}"
        lines.append(f"  {target}: {verdict}  [target: {entry['target']}]")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "device_evidence_out")
    parser.add_argument("--data_dir", default=".device/data", help="holds PACS/ and MNIST/ (stage-device)")
    parser.add_argument("--device", default=None, help="cuda (default) or cpu; --smoke defaults to cpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for the test suite")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset, run in the fixed order")
    parser.add_argument("--work_dir", default=None, help="run folders (default: a new temporary folder)")
    for name in PARTS:
        parser.add_argument(f"--cap_{name.split('_', 1)[1]}", type=float, default=None, help=f"seconds for {name}")
    parser.add_argument("--seeds", type=int, default=None, help="GradSamp trial seeds 0..N-1")
    parser.add_argument("--backbones", default=None, help="comma-separated backbones for b_throughput")
    args = parser.parse_args(argv)
    args.device = args.device or ("cpu" if args.smoke else "cuda")
    args.data_dir = str(Path(args.data_dir).resolve())  # children run in the repo root
    profile = json.loads(json.dumps(PROFILES["smoke" if args.smoke else "device"]))
    if args.seeds is not None:
        profile["gradsamp"]["seeds"] = list(range(args.seeds))
    if args.backbones:
        profile["throughput"]["backbones"] = args.backbones.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="device_evidence_"))
    work.mkdir(parents=True, exist_ok=True)
    cuda = args.device.startswith("cuda") and cuda_available()
    start, summary = time.monotonic(), {"started": now_iso(), "mode": "smoke" if args.smoke else "device",
                                         "device_requested": args.device, "cuda": cuda, "parts": {}}
    selected = [p for p in PARTS if p in args.parts.split(",")]
    with (out / "children.log").open("a") as log:
        ctx = Context(args, profile, out, work, cuda, log)
        for name in selected:
            cap = getattr(args, f"cap_{name.split('_', 1)[1]}") or profile["caps"][name]
            part = Part(out, name, cap, mode=summary["mode"])
            print(f"[{name}] started, cap {cap:.0f} s", flush=True)
            try:
                RUNNERS[name](ctx, part)
            except Exception as error:
                part.fail(error)
            summary["parts"][name] = {k: part.data.get(k) for k in ("complete", "reason", "seconds", "skipped", "targets")}
            print("\n".join(describe(name, part.data)), flush=True)
    summary["seconds"] = round(time.monotonic() - start, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"done in {summary['seconds']} s; JSON in {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
