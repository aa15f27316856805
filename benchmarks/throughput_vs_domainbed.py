"""Training throughput (images/s): dgsamp's trainer vs a plain DomainBed-style loop vs the
model alone, on the same device, model and batch (issues 6 and 16).

    python benchmarks/throughput_vs_domainbed.py --data_dir .device/data --backbone resnet50 \
        --resolution 224 --steps 200 --workers 8

1. ``domainbed``: PIL decoding and torchvision augmentation in DataLoader workers (one loader
   per domain, random sampling with replacement), fp32, Adam; ERM on 3 domains x batch.
2. ``dgsamp``: ``dgsamp train`` through its CLI in this process (decode once, GPU
   augmentation, bf16 autocast on CUDA, channels_last, fused Adam), train-phase images/s
   from the second epoch's ``train_seconds`` in results.jsonl (it includes the FLOP count of
   the epoch's first step: use --steps >= 100).
3. ``model_only``: the same forward+backward+step on one random batch already on the device
   (the ceiling for 1 and 2).
Prints one JSON object; ``--out FILE`` also writes it after every finished arm, so a run
stopped from outside keeps the arms it finished. Not run by the tests; results go to
BENCHMARKS.md (benchmarks/device_evidence.py runs it on a GPU).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, RandomSampler
from torchvision import transforms

from dgsamp.cli import main as dgsamp_main
from dgsamp.registry import create_dataset

ARMS = ("domainbed", "dgsamp", "model_only")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PILDomain(torch.utils.data.Dataset):
    """A domain's images decoded by PIL in the worker, then a torchvision transform."""

    def __init__(self, domain, transform) -> None:
        self.domain, self.transform = domain, transform

    def __len__(self) -> int:
        return len(self.domain)

    def __getitem__(self, index: int):
        image, label = self.domain[index]
        return self.transform(image), label


def make_model(backbone: str, num_classes: int, device: torch.device, channels_last: bool) -> torch.nn.Module:
    model = timm.create_model(backbone, num_classes=num_classes).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def domainbed_loop(args, device: torch.device) -> float:
    dataset = create_dataset(args.dataset, args.data_dir)
    augment = transforms.Compose([
        transforms.RandomResizedCrop(args.resolution, scale=(0.7, 1.0)),
        transforms.RandomHorizontalFlip(),
        transforms.ColorJitter(0.3, 0.3, 0.3, 0.3),
        transforms.RandomGrayscale(),
        transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    loaders = [
        iter(DataLoader(PILDomain(dataset[env], augment), batch_size=args.batch_size,
                        sampler=RandomSampler(range(len(dataset[env])), replacement=True, num_samples=10**8),
                        num_workers=args.workers, pin_memory=device.type == "cuda", drop_last=True))
        for env in (0, 1, 2)
    ]
    model = make_model(args.backbone, dataset.num_classes, device, channels_last=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-5)

    def step() -> None:
        batches = [next(loader) for loader in loaders]
        x = torch.cat([b[0] for b in batches]).to(device)
        y = torch.cat([b[1] for b in batches]).to(device)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()  # DomainBed logs loss.item() every step

    return timed(step, args, device)


def model_only(args, device: torch.device) -> float:
    channels_last = device.type == "cuda"
    model = make_model(args.backbone, 7, device, channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-5, fused=device.type == "cuda" or None)
    x = torch.randn(3 * args.batch_size, 3, args.resolution, args.resolution, device=device)
    x = x.to(memory_format=torch.channels_last) if channels_last else x
    y = torch.randint(0, 7, (3 * args.batch_size,), device=device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step() -> None:
        with autocast:
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return timed(step, args, device)


def timed(step: Callable[[], None], args, device: torch.device) -> float:
    for _ in range(args.warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    return 3 * args.batch_size * args.steps / (time.perf_counter() - start)


def dgsamp_trainer(args, device: torch.device) -> float:
    """``dgsamp train`` for 2 epochs of ``--steps``; images/s of epoch 2 (warm caches)."""
    with tempfile.TemporaryDirectory() as output_dir:
        argv = ["train", "--protocol", "dgsamp", "--dataset", args.dataset, "--test_envs", "3",
                "--backbone", args.backbone, "--pretrained", "none", "--resolution", str(args.resolution),
                "--batch_size", str(args.batch_size), "--epochs", "2", "--steps_per_epoch", str(args.steps),
                "--device", str(device), "--data_cache", "gpu" if device.type == "cuda" else "cpu",
                "--precision", "bf16" if device.type == "cuda" else "fp32", "--energy", "none",
                "--num_workers", str(max(1, args.workers)), "--wandb", "disabled",
                "--output_dir", output_dir, "--no_resume", "--progress", "lines"]
        if args.data_dir:
            argv[3:3] = ["--data_dir", args.data_dir]
        if dgsamp_main(argv) != 0:
            raise RuntimeError(f"dgsamp {' '.join(argv)} failed")
        lines = (Path(output_dir) / "results.jsonl").read_text().splitlines()
        last = json.loads(lines[-1])
        return 3 * args.batch_size * args.steps / last["train_seconds"]


MEASURE: dict[str, Callable[..., float]] = {
    "domainbed": domainbed_loop, "dgsamp": dgsamp_trainer, "model_only": model_only,
}


def ratio(results: dict, numerator: str, denominator: str) -> float | None:
    top, bottom = results.get(f"{numerator}_images_per_s"), results.get(f"{denominator}_images_per_s")
    return round(top / bottom, 3) if top and bottom else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None, help="folder holding PACS/ (none for PACSMini)")
    parser.add_argument("--dataset", default="PACS", help="PACS, or PACSMini for a smoke run")
    parser.add_argument("--backbone", default="resnet50")
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=32, help="per domain (3 domains)")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--out", default=None, help="JSON file rewritten after every arm")
    args = parser.parse_args()
    device = torch.device(args.device)
    results: dict = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "dataset": args.dataset, "backbone": args.backbone,
        "resolution": args.resolution, "images_per_step": 3 * args.batch_size,
        "steps": args.steps, "warmup": args.warmup, "workers": args.workers,
    }
    for arm in args.arms.split(","):
        start = time.perf_counter()
        results[f"{arm}_images_per_s"] = round(MEASURE[arm](args, device), 1)
        results[f"{arm}_seconds"] = round(time.perf_counter() - start, 1)
        results["dgsamp_vs_domainbed"] = ratio(results, "dgsamp", "domainbed")
        results["dgsamp_vs_model_only"] = ratio(results, "dgsamp", "model_only")
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
