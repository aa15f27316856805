"""What every part of the device evidence needs: its options, folders, device and children.

Shared by ``device_evidence.py`` (which builds it) and ``evidence_parts.py`` (whose parts
take it), so neither imports the other.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from evidence_kit import Finished, run_command

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Context:
    """What every part needs: options, folders, the device and how to start children."""

    args: argparse.Namespace
    profile: dict[str, Any]
    out: Path
    work: Path
    cuda: bool
    log: TextIO

    @property
    def device(self) -> str:
        return self.args.device if self.cuda else "cpu"

    def env(self) -> dict[str, str]:
        env = {"PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled", "WANDB_SILENT": "true"}
        return {**env, "OMP_NUM_THREADS": "1"} if self.args.smoke else env

    def run(self, command: list[str], timeout: float, prefix: str) -> Finished:
        self.log.write(f"\n{prefix}$ {' '.join(command)}\n")
        return run_command(command, timeout=timeout, cwd=REPO, env=self.env(), log=self.log, prefix=prefix)

    def data_flags(self, flags: list[str]) -> list[str]:
        """``--data_dir`` unless the dataset is the embedded PACSMini."""
        return [] if "PACSMini" in flags else ["--data_dir", self.args.data_dir]

    def train_command(self, output_dir: Path, *flags: str) -> list[str]:
        """A ``dgsamp train`` child under the ``dgsamp`` protocol (epochs, as the modes count them)."""
        protocol = [] if "--protocol" in flags else ["--protocol", "dgsamp"]
        return [sys.executable, "-m", "dgsamp", "train", *protocol, *flags, *self.data_flags(list(flags)),
                "--device", self.device, "--output_dir", str(output_dir), "--no_resume",
                "--progress", "lines", "--wandb", "disabled"]
