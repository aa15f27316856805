"""Training progress: a tqdm bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from tqdm import tqdm

from dgsamp.tracking import schema as k


class Progress:
    """``epoch_steps[k]``: the updates of epoch ``k + 1`` (``dgsamp.config.protocol``)."""

    def __init__(self, style: str, epoch_steps: Sequence[int]) -> None:
        use_bar = style == "bar" or (style == "auto" and sys.stderr.isatty())
        self.bar = tqdm(total=sum(epoch_steps), unit="step", dynamic_ncols=True) if use_bar else None
        self.epoch_steps = tuple(epoch_steps)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def epoch_done(self, record: dict[str, Any]) -> None:
        accuracies = "  ".join(
            f"{key.removesuffix('_acc')} {record[key]:.3f}" for key in sorted(record) if k.is_env_acc(key)
        )
        energy = record[k.TRAIN_ENERGY_J]
        energy_text = "n/a" if energy is None else f"{energy:.0f} J"
        loss = record.get(k.LOSS)
        loss_text = "" if loss is None else f"loss {loss:.4f}  "
        line = (
            f"epoch {record[k.EPOCH]} (step {record[k.STEP]}) [{record[k.EPOCH_KIND]}]  {loss_text}{k.OOD_ACC} {record[k.OOD_ACC]:.4f}  "
            f"train energy {energy_text}  {record[k.EPOCH_SECONDS]:.1f}s\n    {accuracies}"
        )
        if self.bar is not None:
            if record[k.EPOCH_KIND] != k.BACKPROP:  # no steps ran: the bar jumps the epoch
                self.bar.update(self.epoch_steps[record[k.EPOCH] - 1])
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
