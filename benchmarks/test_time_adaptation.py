"""Measure test-time adaptation over short ERM runs: gain over the selected model, adaptation
energy and FLOPs, per method (the BENCHMARKS.md section "Test-time adaptation").

    OMP_NUM_THREADS=1 python benchmarks/test_time_adaptation.py --root /tmp/tta \\
        --dataset RotatedMNIST --data_dir ../shared/data --steps 600 --seeds 0 1 2 \\
        --methods t3a tent_bn shot_im pseudo_label

Trains (unless done) one ERM run per trial seed with ``--keep_checkpoints selected``, runs
``dgsamp adapt`` for every method on each, one process at a time, and prints a markdown
table: test-domain accuracy of the selected model, the adapted accuracy, the gain (mean ±
standard error over the seeds), adaptation energy (J; n/a where no meter reads) and FLOPs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path


def dgsamp(*argv: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run([sys.executable, "-m", "dgsamp", *argv], check=True, env=env)


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    variance = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(variance / len(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--dataset", default="RotatedMNIST")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--test_env", type=int, default=0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=["t3a", "tent_bn", "shot_im", "pseudo_label"])
    parser.add_argument("--train", nargs=argparse.REMAINDER, default=["--protocol", "domainbed2020", "--steps", "600"],
                        help="the rest: dgsamp train flags of the runs")
    args = parser.parse_args()
    data = ["--data_dir", args.data_dir] if args.data_dir else []
    rows: dict[str, dict[str, list[float]]] = {}
    for seed in args.seeds:
        run = args.root / f"erm_t{seed}"
        if not (run / "done").exists():
            dgsamp("train", "--dataset", args.dataset, *data, "--algorithm", "ERM", "--test_envs", str(args.test_env),
                   "--trial_seed", str(seed), "--keep_checkpoints", "selected", "--energy", "auto",
                   "--progress", "lines", "--output_dir", str(run), *args.train)
        for method in args.methods:
            out = args.root / f"{method}_t{seed}"
            dgsamp("adapt", str(run), "--method", method, "--output_dir", str(out), "--energy", "auto")
            line = json.loads((out / "results.jsonl").read_text().splitlines()[0])
            spec = line["args"]["adaptation"]
            row = rows.setdefault(method, {"source": [], "adapted": [], "energy": [], "flops": [], "seconds": []})
            row["source"].append(100 * spec["source_ood_acc"])
            row["adapted"].append(100 * line["ood_acc"])
            row["energy"].append(line["adapt_energy_j"])
            row["flops"].append(line["adapt_flops"])
            row["seconds"].append(line["adapt_seconds"])
    print("| method | selected ERM (%) | adapted (%) | gain (pts) | adapt energy (J) | adapt FLOPs | adapt s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method, row in rows.items():
        gains = [a - s for a, s in zip(row["adapted"], row["source"], strict=True)]
        cells = [f"{m:.1f} ± {e:.1f}" for m, e in (mean_se(row["source"]), mean_se(row["adapted"]), mean_se(gains))]
        energy = "n/a" if None in row["energy"] else f"{mean_se(row['energy'])[0]:.0f}"
        print(f"| {method} | {' | '.join(cells)} | {energy} | {mean_se(row['flops'])[0]:.3g} | "
              f"{mean_se(row['seconds'])[0]:.0f} |")


if __name__ == "__main__":
    main()
