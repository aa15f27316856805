"""The toy training setup the micro-benchmarks share: a timm model on one random batch.

Data loading is left out on purpose, so the backprop step is as cheap as it can be.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F


def add_toy_arguments(parser: argparse.ArgumentParser, steps_help: str | None = None) -> None:
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help=steps_help)
    parser.add_argument("--energy", default="auto")


@dataclass
class ToyTraining:
    """``model`` (10 classes) with Adam on a fixed batch ``x`` [B, 3, S, S], ``y`` [B]."""

    device: torch.device
    model: torch.nn.Module
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    x: torch.Tensor
    y: torch.Tensor

    def step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(self.model(self.x), self.y).backward()
        self.optimizer.step()


def make_toy_training(args: argparse.Namespace) -> ToyTraining:
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = timm.create_model(args.backbone, num_classes=10).to(device).train()
    params = [p for p in model.parameters() if p.requires_grad]
    x = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    return ToyTraining(device, model, params, torch.optim.Adam(params, lr=1e-4), x, y)
