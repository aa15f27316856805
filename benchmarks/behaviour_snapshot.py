"""Snapshot what a set of CPU runs compute, to show a refactor changed no number.

    python benchmarks/behaviour_snapshot.py snapshot OUT.json [--python PY] [--workdir DIR]
    python benchmarks/behaviour_snapshot.py compare BEFORE.json AFTER.json

``snapshot`` trains every command of ``COMMANDS`` (PACSMini, tiny resolution, two steps
per epoch: every algorithm, GradSamp layer/element/skip, ssProp schedules, domain
adaptation, and a resume after SIGKILL) with ``PY -m dgsamp train`` and keeps, per epoch,
what must not change: accuracies, losses, FLOPs, epoch kinds, keep rates, steps.
Timing and energy fields are dropped (they differ run to run). ``compare`` prints every
difference and exits 1 if there is one.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE = ["--protocol", "dgsamp", "--dataset", "PACSMini", "--test_envs", "0", "--resolution", "32", "--epochs", "4",
        "--steps_per_epoch", "2", "--batch_size", "8", "--progress", "lines", "--wandb", "disabled",
        "--energy", "none", "--num_workers", "1"]
ALGORITHMS = ["ERM", "CORAL", "DANN", "CDANN", "MMD", "Mixup", "GroupDRO", "VREx", "IRM"]
COMMANDS: dict[str, list[str]] = {
    **{f"alg-{name}": ["--algorithm", name] for name in ALGORITHMS},
    "gradsamp-layer": ["--algorithm", "ERM", "--gradsamp", "periodic", "--gradsamp_period", "3"],
    "gradsamp-element": ["--algorithm", "CORAL", "--gradsamp", "periodic", "--gradsamp_period", "3",
                         "--gradsamp_dist", "element", "--gradsamp_scale", "0.5"],
    "gradsamp-skip": ["--algorithm", "ERM", "--gradsamp", "periodic", "--gradsamp_period", "3",
                      "--gradsamp_dist", "skip"],
    "gradsamp-random": ["--algorithm", "ERM", "--gradsamp", "random", "--gradsamp_prob", "0.9",
                        "--gradsamp_allow_consecutive"],
    "ssprop-constant": ["--algorithm", "ERM", "--ssprop", "constant", "--ssprop_keep", "0.5"],
    "ssprop-linear-warmup": ["--algorithm", "ERM", "--ssprop", "linear", "--ssprop_keep", "0.8",
                             "--ssprop_keep_min", "0.2", "--ssprop_warmup", "1"],
    "ssprop-cosine-interleave": ["--algorithm", "ERM", "--ssprop", "cosine", "--ssprop_keep", "0.8",
                                 "--ssprop_keep_min", "0.2", "--ssprop_interleave"],
    "ssprop-bar+gradsamp": ["--algorithm", "DANN", "--ssprop", "bar", "--ssprop_keep", "0.6",
                            "--ssprop_keep_min", "0.3", "--gradsamp", "periodic", "--gradsamp_period", "3"],
    "da-DANN": ["--algorithm", "DANN", "--task", "domain_adaptation"],
    "da-CORAL": ["--algorithm", "CORAL", "--task", "domain_adaptation"],
    "cosine-lr": ["--algorithm", "ERM", "--lr_schedule", "cosine"],
}
RESUMED = {"resume-gradsamp": ["--algorithm", "ERM", "--gradsamp", "periodic", "--gradsamp_period", "3"]}
DROPPED = ("seconds", "energy", "args", "hparams", "weights")


def keep_key(key: str) -> bool:
    return not any(part in key for part in DROPPED)


def read_results(run_dir: Path) -> list[dict]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if keep_key(k)} for line in lines]


def train(python: str, extra: list[str], run_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    command = [python, "-m", "dgsamp", "train", *BASE, *extra, "--output_dir", str(run_dir)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen, name: str) -> None:
    _, stderr = process.communicate()
    if process.returncode != 0:
        sys.exit(f"{name} failed ({process.returncode}): {stderr.strip()[-500:]}")


def snapshot(out: Path, python: str, workdir: Path) -> None:
    results: dict[str, list[dict]] = {}
    for name, extra in COMMANDS.items():
        run_dir = workdir / name
        finish(train(python, extra, run_dir), name)
        results[name] = read_results(run_dir)
        print(f"{name}: {len(results[name])} epochs", flush=True)
    for name, extra in RESUMED.items():
        run_dir = workdir / name
        env = {**os.environ, "DGSAMP_TEST_PAUSE_AT": "train:4"}
        process = train(python, extra, run_dir, env)
        marker = run_dir / ".paused-train-4"
        while not marker.exists():
            if process.poll() is not None:
                sys.exit(f"{name} ended before its crash point")
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
        process.wait()
        finish(train(python, extra, run_dir), name)
        results[name] = read_results(run_dir)
        print(f"{name}: {len(results[name])} epochs after SIGKILL in epoch 4", flush=True)
    out.write_text(json.dumps(results, indent=1, sort_keys=True))


def compare(before_path: Path, after_path: Path) -> int:
    before = json.loads(before_path.read_text())
    after = json.loads(after_path.read_text())
    differences = 0
    for name in sorted(set(before) | set(after)):
        if before.get(name) != after.get(name):
            differences += 1
            print(f"DIFFERENT: {name}")
            for epoch, (old, new) in enumerate(zip(before.get(name, []), after.get(name, [])), 1):
                for key in sorted(set(old) | set(new)):
                    if old.get(key) != new.get(key):
                        print(f"  epoch {epoch} {key}: {old.get(key)!r} -> {new.get(key)!r}")
    print(f"{len(set(before) | set(after))} commands, {differences} different")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot")
    snap.add_argument("out", type=Path)
    snap.add_argument("--python", default=sys.executable)
    snap.add_argument("--workdir", type=Path, default=None)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.command == "compare":
        return compare(args.before, args.after)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="dgsamp-snapshot-"))
    snapshot(args.out, args.python, workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
