"""Training progress: a tqdm bar on a terminal, one plain line per epoch otherwise."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

from dgsamp.tracking import schema as k


class Progress:
    def __init__(self, style: str, epochs: int, steps_per_epoch: int) -> None:
        use_bar = style == "bar" or (style == "auto" and sys.stderr.isatty())
        self.bar = tqdm(total=epochs * steps_per_epoch, unit="step", dynamic_ncols=True) if use_bar else None
        self.steps_per_epoch = steps_per_epoch

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
            f"epoch {record[k.EPOCH]} [{record[k.EPOCH_KIND]}]  {loss_text}{k.OOD_ACC} {record[k.OOD_ACC]:.4f}  "
            f"train energy {energy_text}  {record[k.EPOCH_SECONDS]:.1f}s\n    {accuracies}"
        )
        if self.bar is not None:
            if record[k.EPOCH_KIND] != k.BACKPROP:  # no steps ran: the bar jumps the epoch
                self.bar.update(self.steps_per_epoch)
            self.bar.write(line)
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
