"""Reproduce DomainBed's published table rows with dgsamp and print both side by side.

    python benchmarks/reproduce_domainbed.py --data_dir /data \\
        --datasets RotatedMNIST ColoredMNIST --algorithms ERM CORAL DANN --trials 1 \\
        --protocol domainbed2020 --output_dir runs/reproduce     # on a GPU: 9 runs at once
    python benchmarks/reproduce_domainbed.py --smoke --data_dir ../shared/data --output_dir /tmp/smoke

Every (dataset, algorithm, test domain, trial seed) is one ``dgsamp train`` run with
default hyperparameters (``--hparams_seed 0``) under the protocol preset; finished runs
are skipped on a second call. The dgsamp numbers are DomainBed's training-domain
validation selection over those runs (``dgsamp leaderboard``'s rule), mean ± standard
error over trial seeds; the published numbers are DomainBed's full sweep (20 random
hparams × 3 trials), so with default hparams and one trial a gap of a point is expected.

Sizing (RotatedMNIST + ColoredMNIST × ERM, CORAL, DANN: 27 runs of 5,001 steps, each
evaluating all 70,000 digits 51 times): meant for one GPU with ``--max_parallel 9`` (three
waves of nine processes sharing it); on a CPU use ``--steps`` and say so.

``--smoke`` checks the whole path on the CPU in seconds: the datasets are built from the
first 150 MNIST training digits and 25 test digits (a reduced copy of the idx files written under the output dir),
every run trains 3 steps, and runs go in this process one after another.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

from reproduce_kit import fmt, run_jobs

from dgsamp.leaderboard.runs import load_runs
from dgsamp.leaderboard.selection import RULES
from dgsamp.leaderboard.tables import build_leaderboard

# DomainBed, domainbed/results/2020_10_06_7df6f06/results.tex at commit 8b6787bd69edde5842bd5cb1c011b61b94401279
# ("Result files for full sweep", 2020-10-06), "Model selection: training-domain validation set":
# (mean, standard error) in % per test domain, then the Avg column.
PUBLISHED_SOURCE = ("facebookresearch/DomainBed domainbed/results/2020_10_06_7df6f06/results.tex "
                    "@ 8b6787b, training-domain validation set")
PUBLISHED: dict[str, dict[str, tuple[list[tuple[float, float]], float]]] = {
    "ColoredMNIST": {
        "ERM": ([(71.7, 0.1), (72.9, 0.2), (10.0, 0.1)], 51.5),
        "CORAL": ([(71.6, 0.3), (73.1, 0.1), (9.9, 0.1)], 51.5),
        "DANN": ([(71.4, 0.9), (73.1, 0.1), (10.0, 0.0)], 51.5),
    },
    "RotatedMNIST": {
        "ERM": ([(95.9, 0.1), (98.9, 0.0), (98.8, 0.0), (98.9, 0.0), (98.9, 0.0), (96.4, 0.0)], 98.0),
        "CORAL": ([(95.8, 0.3), (98.8, 0.0), (98.9, 0.0), (99.0, 0.0), (98.9, 0.1), (96.4, 0.2)], 98.0),
        "DANN": ([(95.0, 0.5), (98.9, 0.1), (99.0, 0.0), (99.0, 0.1), (98.9, 0.0), (96.3, 0.2)], 97.8),
    },
}
SMOKE_DIGITS = 150
MNIST_FILES = {  # idx file stem -> header size in bytes, bytes per item
    "train-images-idx3-ubyte": (16, 784), "train-labels-idx1-ubyte": (8, 1),
    "t10k-images-idx3-ubyte": (16, 784), "t10k-labels-idx1-ubyte": (8, 1),
}


def smoke_mnist(source: Path, target: Path, digits: int = SMOKE_DIGITS) -> Path:
    """A copy of ``source/MNIST/raw`` holding the first ``digits`` train and ``digits // 6`` test digits."""
    raw = target / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for stem, (header, size) in MNIST_FILES.items():
        count = digits if stem.startswith("train") else digits // 6
        path = source / "MNIST" / "raw" / stem
        data = gzip.decompress(path.with_suffix(".gz").read_bytes()) if not path.exists() else path.read_bytes()
        head = bytearray(data[:header])
        head[4:8] = count.to_bytes(4, "big")
        (raw / stem).write_bytes(bytes(head) + data[header:header + count * size])
    return target


def job_argv(args: argparse.Namespace, dataset: str, algorithm: str, env: int, trial: int, data_dir: Path) -> list[str]:
    argv = ["train", "--protocol", args.protocol, "--dataset", dataset, "--data_dir", str(data_dir),
            "--algorithm", algorithm, "--test_envs", str(env), "--trial_seed", str(trial), "--hparams_seed", "0",
            "--device", args.device, "--energy", "none", "--progress", "lines",
            "--output_dir", str(args.output_dir / dataset / algorithm / f"env{env}_trial{trial}")]
    if args.steps is not None:
        argv += ["--steps", str(args.steps)]
    if args.checkpoint_freq is not None:
        argv += ["--checkpoint_freq", str(args.checkpoint_freq)]
    return argv


def comparison(args: argparse.Namespace) -> tuple[str, list[dict]]:
    """Markdown: per dataset, a row per algorithm, 'dgsamp (published, gap)' per test domain."""
    leaderboard = build_leaderboard(load_runs([args.output_dir]), RULES["training_domain"])
    lines, rows = [], []
    for table in leaderboard.tables:
        published = PUBLISHED.get(table.dataset, {})
        lines += ["", f"### {table.dataset} · protocol {table.protocol} · {table.backbone} · training-domain "
                  "validation · dgsamp (DomainBed published, gap)", "",
                  "| Algorithm | " + " | ".join([*table.env_names, "Avg"]) + " |",
                  "|---" * (len(table.env_names) + 2) + "|"]
        for row in table.rows:
            reference = published.get(row.variant.algorithm)
            cells = []
            for index, cell in enumerate(row.cells):
                text = fmt(cell.mean, cell.err)
                if reference is not None and cell.mean is not None:
                    mean, err = reference[0][index]
                    text += f" ({mean:.1f} ± {err:.1f}, {cell.mean - mean:+.1f})"
                cells.append(text)
            avg = "—" if row.avg is None else f"{row.avg:.1f}"
            if reference is not None and row.avg is not None:
                avg += f" ({reference[1]:.1f}, {row.avg - reference[1]:+.1f})"
            lines.append(f"| {row.label} | " + " | ".join([*cells, avg]) + " |")
            rows.append({"dataset": table.dataset, "algorithm": row.label, "protocol": table.protocol,
                         "dgsamp": [[c.mean, c.err, c.n] for c in row.cells], "dgsamp_avg": row.avg,
                         "published": reference[0] if reference else None,
                         "published_avg": reference[1] if reference else None,
                         "selected_steps": sorted({c.step for c in row.choices})})
    lines += ["", f"Published: {PUBLISHED_SOURCE}."]
    return "\n".join(lines) + "\n", rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", type=Path, required=True, help="the folder holding MNIST/raw")
    parser.add_argument("--datasets", nargs="+", default=["RotatedMNIST", "ColoredMNIST"])
    parser.add_argument("--algorithms", nargs="+", default=["ERM", "CORAL", "DANN"])
    parser.add_argument("--trials", type=int, default=1, help="trial seeds 0..N-1")
    parser.add_argument("--protocol", default="domainbed2020")
    parser.add_argument("--steps", type=int, default=None, help="default: the protocol's (5,001)")
    parser.add_argument("--checkpoint_freq", type=int, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max_parallel", type=int, default=None,
                        help="runs at once as processes; 1: in this process, one by one; default 9 on CUDA, else 1")
    parser.add_argument("--output_dir", type=Path, default=Path("runs/reproduce_domainbed"))
    parser.add_argument("--smoke", action="store_true", help="CPU, 3 steps, 175 digits: checks the path only")
    args = parser.parse_args(argv)
    data_dir = args.data_dir
    if args.smoke:
        data_dir = smoke_mnist(args.data_dir, args.output_dir / "smoke_data")
        args.steps, args.checkpoint_freq, args.device, args.max_parallel = 3, 2, "cpu", 1
    from dgsamp.registry import DATASETS

    if args.max_parallel is None:
        import torch

        args.max_parallel = 9 if torch.cuda.is_available() and args.device != "cpu" else 1
    jobs = [job_argv(args, dataset, algorithm, env, trial, data_dir)
            for dataset in args.datasets for algorithm in args.algorithms
            for env in range(len(DATASETS.get(dataset).ENVIRONMENTS)) for trial in range(args.trials)]
    start = time.perf_counter()
    outcomes = run_jobs(jobs, args.max_parallel, in_process=args.max_parallel <= 1)
    wall = time.perf_counter() - start
    failed = [job for job, (code, _) in zip(jobs, outcomes) if code != 0]
    text, rows = comparison(args)
    print(text)
    print(f"{len(jobs)} runs in {wall:.0f} s wall ({max(s for _, s in outcomes):.0f} s the longest); "
          f"{len(failed)} failed")
    (args.output_dir / "comparison.json").write_text(json.dumps(
        {"argv": sys.argv[1:] if argv is None else argv, "wall_seconds": wall, "rows": rows,
         "run_seconds": [s for _, s in outcomes], "published_source": PUBLISHED_SOURCE}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
