"""Overhead of energy metering (and of FLOP counting) on training speed.

    python benchmarks/energy_overhead.py --device cuda --steps 100 --rounds 5

Runs blocks of ``--steps`` training steps in four ways, interleaved round by round so
drift (clocks, temperature) hits all alike:

- ``plain``: no metering
- ``phase_per_epoch``: one ``meter.phase`` around the block (what the trainer does)
- ``phase_per_step``: one phase around every step (a deliberately bad worst case)
- ``flops_per_step``: every step under ``count_flops`` (why the trainer counts few steps)

Reports the median seconds per block and the overhead relative to ``plain`` in percent
(the issue's target: < 1% for ``phase_per_epoch``). Prints one JSON object. Not run by tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

import torch
from toy_training import add_toy_arguments, make_toy_training

from dgsamp.metering.energy import EnergyMeter
from dgsamp.metering.flops import count_flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_toy_arguments(parser)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    toy = make_toy_training(args)
    device, step = toy.device, toy.step
    meter = EnergyMeter(args.energy, [device])

    def plain() -> None:
        for _ in range(args.steps):
            step()

    def phase_per_epoch() -> None:
        with meter.phase("train"):
            plain()

    def phase_per_step() -> None:
        for _ in range(args.steps):
            with meter.phase("step"):
                step()

    def flops_per_step() -> None:
        for _ in range(args.steps):
            count_flops(step)

    variants: dict[str, Callable[[], None]] = {
        "plain": plain,
        "phase_per_epoch": phase_per_epoch,
        "phase_per_step": phase_per_step,
        "flops_per_step": flops_per_step,
    }
    plain()  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, run in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            run()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds[name].append(time.perf_counter() - start)
    meter.close()

    medians = {name: statistics.median(values) for name, values in seconds.items()}
    base = medians["plain"]
    print(json.dumps({
        "benchmark": "energy_overhead",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "backbone": args.backbone, "batch": args.batch, "image_size": args.image_size,
        "steps_per_block": args.steps, "rounds": args.rounds,
        "energy_source": meter.source,
        "seconds_median": medians,
        "seconds_all": seconds,
        "overhead_percent": {name: 100.0 * (m - base) / base for name, m in medians.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
