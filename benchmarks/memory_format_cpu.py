"""Convolutions on the CPU: contiguous (NCHW) against channels_last (NHWC) memory layout.

dgsamp lays image-shaped inputs and the model out channels_last on every device
(``dgsamp.data.transforms.preferred_memory_format``). This measures what that buys on the
CPU, for the two networks CPU runs use: DomainBed's MNIST CNN on ColoredMNIST-shaped input
(2 x 28 x 28, 2 domains x 64 per update, DomainBed's default) and timm's
``tf_efficientnet_lite0`` at 64 px (3 domains x 32). For each layout: seconds per Adam update
(forward, backward, step) and milliseconds per evaluated example (no grad, batches of 256,
dgsamp's default ``--eval_batch_size``), median of ``--repeats`` timed runs after a warm-up.

    OMP_NUM_THREADS=1 python benchmarks/memory_format_cpu.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import timm
import torch
from torch import nn

from dgsamp.backbones.mnist_cnn import MNISTCNN

CASES: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int], int, int]] = {
    # name: (model, input shape, examples per update, classes)
    "mnist_cnn ColoredMNIST 2x28x28": (lambda: nn.Sequential(MNISTCNN(2), nn.Linear(128, 2)), (2, 28, 28), 128, 2),
    "tf_efficientnet_lite0 3x64x64": (lambda: timm.create_model("tf_efficientnet_lite0", num_classes=7),
                                      (3, 64, 64), 96, 7),
}


def median_seconds(work: Callable[[], None], repeats: int) -> float:
    work()  # warm-up: oneDNN primitive creation, allocator
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(build: Callable[[], nn.Module], shape: tuple[int, int, int], batch: int, classes: int,
            layout: torch.memory_format, repeats: int, eval_batch: int) -> dict[str, float]:
    torch.manual_seed(0)
    model = build().to(memory_format=layout)
    x = torch.randn(batch, *shape).contiguous(memory_format=layout)
    y = torch.randint(0, classes, (batch,))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def update() -> None:
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    x_eval = torch.randn(eval_batch, *shape).contiguous(memory_format=layout)

    def evaluate() -> None:
        with torch.no_grad():
            model(x_eval)

    model.train()
    update_s = median_seconds(update, repeats)
    model.eval()
    eval_s = median_seconds(evaluate, repeats)
    return {"update_s": round(update_s, 4), "eval_ms_per_example": round(1000 * eval_s / eval_batch, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eval_batch", type=int, default=256)
    args = parser.parse_args()
    results = {"torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.processor()
               or platform.machine(), "cases": {}}
    for name, (build, shape, batch, classes) in CASES.items():
        row = {layout_name: measure(build, shape, batch, classes, layout, args.repeats, args.eval_batch)
               for layout_name, layout in (("contiguous", torch.contiguous_format),
                                           ("channels_last", torch.channels_last))}
        row["update_speedup"] = round(row["contiguous"]["update_s"] / row["channels_last"]["update_s"], 2)
        row["eval_speedup"] = round(row["contiguous"]["eval_ms_per_example"]
                                    / row["channels_last"]["eval_ms_per_example"], 2)
        results["cases"][name] = row
        print(name, json.dumps(row), flush=True)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
