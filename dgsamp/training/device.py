"""Which device a run uses, and the backend settings that go with it."""

from __future__ import annotations

import torch

from dgsamp.config.run_config import SystemConfig
from dgsamp.errors import UserError


def build_device(system: SystemConfig) -> torch.device:
    """The run's device, checked against the precision, with its backends configured."""
    device = resolve_device(system.device)
    if system.precision == "bf16" and device.type != "cuda":
        raise UserError("--precision bf16 needs a CUDA device; use --precision fp32 on the CPU")
    configure_backends(device, system.deterministic)
    return device


def resolve_device(name: str) -> torch.device:
    """``auto`` -> the first CUDA GPU if any, else the CPU; a named device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UserError(f"--device {name} asked for, but no CUDA GPU is visible; use --device cpu")
        if device.index is not None and device.index >= count:
            raise UserError(f"--device {name}: only {count} CUDA GPU(s) are visible (cuda:0..cuda:{count - 1})")
    elif device.type != "cpu":
        raise UserError(f"--device {name}: dgsamp runs on cpu or cuda")
    return device


def configure_backends(device: torch.device, deterministic: bool) -> None:
    """CUDA: autotuned cuDNN and TF32 matmuls (fast), or deterministic kernels on request.

    CPU runs are deterministic either way (same arguments and seeds, same numbers).
    """
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic
    torch.set_float32_matmul_precision("highest" if deterministic else "high")
