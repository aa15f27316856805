"""One line saying what ``dgsamp train`` is about to do, printed before any work:

    train PACS: test domain art_painting (DG), protocol domainbed2024, 5001 steps evaluated
    every 300, backbone resnet50.ram_in1k (weights: hub), device cpu

It goes where the progress goes: to stderr beside the progress bar on a terminal, to
stdout beside the per-epoch lines otherwise (a log, a sweep job's out.txt), so stderr of a
refused run stays its one error line.

Everything in it is read from the RunConfig, the registries and the weights choice the
build will use (``find_weights``, found once); nothing is loaded or downloaded.
"""

from __future__ import annotations

import sys

from dgsamp.backbones.weights import WeightsChoice
from dgsamp.config.run_config import RunConfig
from dgsamp.errors import UserError
from dgsamp.registry import DATASETS

DOMAIN_ADAPTATION = "domain_adaptation"


def describe_domains(config: RunConfig) -> str:
    """``test domain art_painting (DG)`` or ``source A, C -> target P (DA)``, by name."""
    names = list(DATASETS.get(config.data.dataset).ENVIRONMENTS)
    held_out = [names[env] if 0 <= env < len(names) else str(env) for env in config.data.test_envs]
    if config.data.task == DOMAIN_ADAPTATION:
        labelled = config.data.source  # --source; None: every domain that is not a target
        sources = [name for env, name in enumerate(names)
                   if (env in labelled if labelled is not None else env not in config.data.test_envs)]
        return f"source {', '.join(sources)} -> target {', '.join(held_out)} (DA)"
    plural = "s" if len(held_out) > 1 else ""
    return f"test domain{plural} {', '.join(held_out)} (DG)"


def describe_length(config: RunConfig) -> str:
    """``5001 steps evaluated every 300`` (step mode) or ``5 epochs of 20 steps`` (epoch mode)."""
    schedule = config.schedule
    if schedule.steps is not None:
        return f"{schedule.steps} steps evaluated every {schedule.checkpoint_freq}"
    per_epoch = f"{schedule.steps_per_epoch} steps" if schedule.steps_per_epoch else "one pass over the data"
    epochs = "1 epoch" if schedule.epochs == 1 else f"{schedule.epochs} epochs"
    return f"{epochs} of {per_epoch}"


def describe_device(config: RunConfig) -> str:
    """The device the run asks for, ``auto`` resolved as ``resolve_device`` resolves it."""
    from dgsamp.training.build import resolve_device

    try:
        return str(resolve_device(config.system.device))
    except UserError:
        return config.system.device  # the build refuses it with its own message


def describe_run(config: RunConfig, weights: WeightsChoice) -> str:
    """The one line (see the module docstring)."""
    backbone = config.model.backbone or "the dataset's default"
    return (f"train {config.data.dataset}: {describe_domains(config)}, protocol {config.schedule.protocol}, "
            f"{describe_length(config)}, {config.model.algorithm} on backbone {backbone} "
            f"(weights: {weights.describe()}), "
            f"device {describe_device(config)}")


def announce(line: str, progress: str) -> None:
    """Print ``line`` where the progress of style ``progress`` (bar, lines, auto) goes."""
    bar = progress == "bar" or (progress == "auto" and sys.stderr.isatty())
    print(line, file=sys.stderr if bar else sys.stdout, flush=True)
