"""Cost of one GradSamp step versus one backprop epoch (time, and energy where measurable).

    python benchmarks/gradsamp_step.py --backbone resnet10t --steps 50 --device cuda

A backprop epoch here is ``--steps`` Adam updates on random images of ``--image-size``
(data loading excluded, so the comparison favours backprop); a GradSamp epoch is one
``GradSampler.step`` (layer, element) plus the ``record`` every epoch does. Prints one JSON
object to stdout. Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from datetime import UTC, datetime

import torch
from toy_training import add_toy_arguments, make_toy_training

from dgsamp.metering.energy import EnergyMeter
from dgsamp.modes.gradsamp.sampler import GradSampler, make_generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_toy_arguments(parser, steps_help="updates per backprop epoch")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    toy = make_toy_training(args)
    device, params = toy.device, toy.params
    meter = EnergyMeter(args.energy, [device])
    generator = make_generator(device, 0)

    def backprop_epoch() -> None:
        for _ in range(args.steps):
            toy.step()

    samplers = {dist: GradSampler(params, dist=dist) for dist in ("layer", "element", "skip")}

    def gradsamp_epoch(dist: str) -> None:
        samplers[dist].step(generator)
        samplers[dist].record()

    backprop_epoch()  # warm-up (cuDNN autotune, allocator)
    for sampler in samplers.values():
        sampler.record()
        sampler.record()
    results: dict[str, list[tuple[float, float | None]]] = {"backprop": []}
    results.update({f"gradsamp_{d}": [] for d in samplers})
    for _ in range(args.repeats):
        with meter.phase("backprop") as reading:
            backprop_epoch()
        results["backprop"].append((reading.seconds, reading.joules))
        for dist in samplers:
            with meter.phase(dist) as reading:
                gradsamp_epoch(dist)
            results[f"gradsamp_{dist}"].append((reading.seconds, reading.joules))
    meter.close()

    def summary(rows: list[tuple[float, float | None]]) -> dict[str, float | None]:
        joules = [j for _, j in rows if j is not None]
        return {
            "seconds_median": statistics.median(s for s, _ in rows),
            "joules_median": statistics.median(joules) if joules else None,
        }

    out = {name: summary(rows) for name, rows in results.items()}
    backprop_s = out["backprop"]["seconds_median"]
    print(json.dumps({
        "benchmark": "gradsamp_step",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "backbone": args.backbone,
        "parameters": sum(p.numel() for p in params),
        "batch": args.batch, "image_size": args.image_size, "steps_per_epoch": args.steps,
        "energy_source": meter.source,
        "results": out,
        "gradsamp_layer_time_fraction_of_backprop_epoch": out["gradsamp_layer"]["seconds_median"] / backprop_s,
    }, indent=2))


if __name__ == "__main__":
    main()
