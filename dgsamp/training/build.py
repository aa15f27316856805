"""Build a run from its RunConfig: inputs, algorithm, schedule, batches, modes, run dir, meters.

    run = build_run(config, existing, weights)     # everything the trainer's loop needs
    Trainer(run).run()

The device is built here (``build_device``), the data, backbone and transforms in
``dgsamp.training.inputs``; the evaluation of finished runs uses both. The global
RNGs are seeded before anything is built, as DomainBed seeds them first: building the device,
the meter, the dataset and the transforms draws nothing, so the backbone's initialisation
is the first draw. Everything that can refuse the run happens before the run directory is
touched, which is created last (W&B after it).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import torch

from dgsamp import __version__
from dgsamp.algorithms.base import Algorithm
from dgsamp.backbones.factory import Backbone
from dgsamp.backbones.weights import WeightsChoice
from dgsamp.config.protocol import Schedule, run_schedule
from dgsamp.config.run_config import RunConfig, SystemConfig
from dgsamp.data.training_data import DomainBatches, TrainingData
from dgsamp.data.transforms import Transforms
from dgsamp.datasets.base import MultiDomainDataset
from dgsamp.errors import UserError
from dgsamp.metering.energy import EnergyMeter
from dgsamp.modes.base import RunShape, TrainingMode
from dgsamp.registry import MODES
from dgsamp.tracking.wandb_sink import WandbSink
from dgsamp.training.inputs import build_algorithm, build_inputs
from dgsamp.training.memory import check_batch_fits
from dgsamp.training.run_dir import ExistingRun, prepare_run_dir
from dgsamp.utils.seeding import seed_everything, seed_hash


@dataclass
class BuiltRun:
    """What one run trains with; the trainer owns the loop, the evaluation points and the state."""

    config: RunConfig
    existing: ExistingRun
    device: torch.device
    meter: EnergyMeter
    dataset: MultiDomainDataset
    backbone: Backbone
    data: TrainingData
    algorithm: Algorithm
    transforms: Transforms
    schedule: Schedule
    generators: dict[str, torch.Generator]
    train_batches: list[DomainBatches]
    unlabeled_batches: list[DomainBatches]
    modes: list[TrainingMode]
    autocast: AbstractContextManager
    run_dir: Path
    wandb: WandbSink


def build_run(config: RunConfig, existing: ExistingRun, weights: WeightsChoice) -> BuiltRun:
    """Everything a run trains with; ``existing``: what ``open_run_dir`` found in the run
    directory; ``weights``: the backbone's starting weights, as the describe line named them."""
    device = build_device(config.system)
    seed_everything(config.seed)
    batches_seed, augment_seed = seed_hash(config.seed, "batches"), seed_hash(config.seed, "augment")
    meter = EnergyMeter(config.tracking.energy, [device])
    inputs = build_inputs(config, weights, device)
    data = inputs.data
    batch_size = int(config.hparams["batch_size"])
    # Batches are drawn where the data lives; augmentation runs on the device.
    generators = {
        "batches": torch.Generator(data.train[0].x.device).manual_seed(batches_seed),
        "augment": torch.Generator(device).manual_seed(augment_seed),
    }
    train_batches = [DomainBatches(d, batch_size, generators["batches"]) for d in data.train]
    target_batches = [DomainBatches(d, batch_size, generators["batches"]) for d in data.unlabeled]
    pass_steps = max(batches.steps_per_pass for batches in train_batches)  # a pass over the largest domain
    algorithm = build_algorithm(config, inputs)
    if config.system.compile:
        algorithm.featurizer.compile()
    unlabeled_batches = target_batches if algorithm.ADAPTS_TO_UNLABELED else []  # the others get no target data
    schedule = run_schedule(config.schedule, pass_steps)
    example = inputs.transforms.eval(data.train[0].x[:1].to(device), None)[0]
    check_batch_fits(algorithm.featurizer, example, batch_size, len(train_batches) + len(unlabeled_batches), device)

    shape = RunShape(config.schedule.epochs, config.seed, schedule.total_steps)
    for name in config.active_modes:  # again, now that the run's length in updates is known
        MODES.get(name).validate(config.modes[name], shape)
    modes = [MODES.get(name)(config.modes[name], shape) for name in config.active_modes]
    for mode in modes:
        mode.setup(algorithm, device)
    run_dir = prepare_run_dir(config.tracking.output_dir, config.tracking.no_resume)
    track = config.tracking
    wandb = WandbSink(track.wandb, track.wandb_project, track.wandb_entity, track.wandb_group, list(track.wandb_tags),
                      {**config.to_dict(), "dgsamp_version": __version__, "job_id": config.job_id,
                       "weights": inputs.backbone.weights}, run_dir, config.job_id)
    return BuiltRun(config, existing, device, meter, inputs.dataset, inputs.backbone, data, algorithm,
                    inputs.transforms, schedule, generators, train_batches, unlabeled_batches, modes, inputs.autocast,
                    run_dir, wandb)


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
