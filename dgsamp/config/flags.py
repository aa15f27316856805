"""The ``dgsamp train`` flags: run settings, each training mode's options, tracking, one flag per hparam.

Flags use DomainBed's underscore style and accept ``--name=value`` (the form W&B's
``${args}`` macro writes). Hyperparameter flags default to None ("not overridden"): the
hparams registry fills them in from ``--hparams_seed``.
"""

from __future__ import annotations

import argparse

from dgsamp.backbones.factory import PRETRAINED_CHOICES
from dgsamp.backbones.featurizers import BOTTLENECK_KINDS
from dgsamp.config.hparam_flags import add_hparam_arguments, all_hparam_specs, parse_bool
from dgsamp.config.presets import DEFAULT_PROTOCOL, PROTOCOLS
from dgsamp.data.splits import TASKS
from dgsamp.errors import UserError
from dgsamp.metering.energy import ENERGY_SOURCES
from dgsamp.modes.base import TrainingMode
from dgsamp.registry import MODES

WANDB_MODES = ("disabled", "offline", "online")


def add_train_arguments(parser: argparse.ArgumentParser, algorithm: str | None = None) -> None:
    """Every flag of ``dgsamp train`` (call after plugins are loaded: hparam flags come last);
    ``algorithm``: the ``--algorithm`` given, whose hparams the help text describes."""
    run = parser.add_argument_group("run")
    run.add_argument("--dataset", default="PACSMini", help="registered dataset name (dgsamp list datasets)")
    run.add_argument("--data_dir", default=None, help="folder holding the dataset in DomainBed's layout")
    run.add_argument("--algorithm", default="ERM", help="registered algorithm (dgsamp list algorithms)")
    run.add_argument("--backbone", default=None, help="timm model name or registered backbone; default: the dataset's")
    run.add_argument("--test_envs", type=int, nargs="+", default=None,
                     help="indices of the held-out test domains (default 0)")
    run.add_argument("--task", choices=TASKS, default=None,
                     help="domain_adaptation also feeds unlabeled batches from the test domains' in-splits "
                     "(default domain_generalization; --source/--target imply domain_adaptation)")
    run.add_argument("--source", nargs="+", default=None, metavar="DOMAIN",
                     help="DA: labelled source domain(s), by name, short name or index (e.g. A or amazon); "
                     "default with --target: every other domain")
    run.add_argument("--target", nargs="+", default=None, metavar="DOMAIN",
                     help="DA: unlabeled target domain(s): their training split feeds the adaptation, "
                     "accuracy is reported on them")
    run.add_argument("--hparams", default=None, help='JSON dict of hparam overrides, e.g. \'{"lr": 1e-4}\'')
    run.add_argument("--hparams_seed", type=int, default=0, help="0: defaults; other: a seeded random draw")
    run.add_argument("--trial_seed", type=int, default=0, help="seeds the in/out split (DomainBed)")
    run.add_argument("--seed", type=int, default=None,
                     help="seeds initialisation, batches and augmentation; default: a hash of dataset, "
                     "algorithm, test_envs, hparams_seed and trial_seed (as DomainBed's sweeps set it)")
    run.add_argument("--protocol", choices=tuple(PROTOCOLS), default=DEFAULT_PROTOCOL,
                     help="preset of every protocol setting below (docs/protocol.md); flags given "
                     "explicitly win. domainbed2020: DomainBed's published tables; domainbed2024: "
                     "DomainBed since ERM++; dgsamp: epochs, joint passes, clean evaluation; tllib: tllib's DA recipe")
    run.add_argument("--steps", type=int, default=None,
                     help="training length in updates, evaluated as DomainBed does (every --checkpoint_freq "
                     "steps); default under the domainbed presets: the dataset's N_STEPS (5001)")
    run.add_argument("--checkpoint_freq", type=int, default=None,
                     help="with --steps: evaluate after step s when s %% checkpoint_freq == 0; "
                     "default: the dataset's CHECKPOINT_FREQ (100 MNIST, 300 images, 1000 DomainNet)")
    run.add_argument("--epochs", type=int, default=None,
                     help="training length in epochs instead of steps (default 5 under --protocol dgsamp)")
    run.add_argument("--steps_per_epoch", type=int, default=None,
                     help="with --epochs; default: one pass over the largest training domain's in-split")
    run.add_argument("--holdout_fraction", type=float, default=0.2, help="out-split fraction per domain")
    run.add_argument("--uda_holdout_fraction", type=float, default=None,
                     help="share of each test domain's in-split set aside unlabeled (DomainBed's uda split; "
                     "under --protocol dgsamp only for domain_adaptation, where 0 means the whole in-split)")
    run.add_argument("--featurizer_passes", choices=("joint", "per_domain"), default=None,
                     help="CORAL, MMD, GroupDRO, Mixup: one featurizer call per domain as DomainBed "
                     "(per_domain: BatchNorm statistics per domain) or one on all domains (joint)")
    run.add_argument("--eval_augmentation", choices=("none", "train_domains"), default=None,
                     help="train_domains: evaluate the training domains' in/out splits through the training "
                     "augmentation, as DomainBed's image datasets do; none: every split clean")
    run.add_argument("--output_dir", default=None,
                     help="run directory (results.jsonl, checkpoint, done); default: runs/<job id>, "
                     "a hash of the arguments, so every distinct run gets its own")
    run.add_argument("--no_resume", action="store_true",
                     help="start over: an existing run directory is moved aside, never deleted")
    run.add_argument("--plugin", action="append", default=[], metavar="FILE.py",
                     help="import a file that registers algorithms/datasets/backbones (repeatable)")

    model = parser.add_argument_group("backbone")
    model.add_argument("--pretrained", choices=PRETRAINED_CHOICES, default="auto",
                       help="auto: packaged ImageNet weights (tf_efficientnet_lite*), else timm's or "
                       "torchvision's cache, else timm's download, else stop; hub: timm's download only; "
                       "none: random init on purpose")
    model.add_argument("--pretrained_file", default=None,
                       help="local checkpoint loaded into the backbone (timm, torchvision or dgsamp format)")
    model.add_argument("--freeze_bn", nargs="?", const=True, type=parse_bool, default=None, metavar="BOOL",
                       help="keep BatchNorm statistics frozen (--freeze_bn or --freeze_bn true/false; "
                       "default: the protocol's)")
    model.add_argument("--resolution", type=int, default=None, help="square input side; default: the backbone's")
    model.add_argument("--transforms", choices=("domainbed", "tllib"), default=None,
                       help="image transforms: domainbed (crop 0.7-1, flip, colour jitter, grayscale) or tllib "
                       "(decode at 256/224 of the resolution, crop 0.08-1 + flip; centre crop to evaluate); "
                       "default: the protocol's")
    model.add_argument("--bottleneck", choices=BOTTLENECK_KINDS, default=None,
                       help="layers between the featurizer and the classifier (tllib's bottleneck); "
                       "default: the protocol's (none, except --protocol tllib)")
    model.add_argument("--bottleneck_width", type=int, default=None, help="the bottleneck's width (default 256)")

    system = parser.add_argument_group("system")
    system.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    system.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 autocast on CUDA")
    system.add_argument("--data_cache", choices=("auto", "cpu", "gpu"), default="auto",
                        help="decode every image once into a uint8 tensor kept on the GPU or the CPU; "
                        "auto: the GPU when training on one")
    system.add_argument("--num_workers", type=int, default=2, help="threads that decode images once")
    system.add_argument("--eval_batch_size", type=int, default=256)
    system.add_argument("--deterministic", action="store_true",
                        help="CUDA: deterministic cuDNN kernels, no autotuning (slower); "
                        "CPU runs are always deterministic")
    system.add_argument("--compile", action="store_true",
                        help="torch.compile the featurizer (CUDA; measure before relying on it)")
    system.add_argument("--progress", choices=("auto", "bar", "lines"), default="auto",
                        help="tqdm bar on a terminal (auto) or plain log lines")

    hparam_names = set(all_hparam_specs())
    for name in MODES.in_registration_order():
        mode = MODES.get(name)
        clash = sorted(hparam_names & set(mode.OPTIONS))
        if clash:
            raise UserError(f"training mode '{name}' declares --{clash[0]}, which is already a hyperparameter "
                            "flag of a registered algorithm; rename the mode's option")
        add_mode_arguments(parser, mode)

    tracking = parser.add_argument_group("energy and tracking")
    tracking.add_argument("--energy", choices=ENERGY_SOURCES, default="auto",
                          help="energy meter; auto picks the best available, none skips metering")
    tracking.add_argument("--wandb", choices=WANDB_MODES, default=None,
                          help="Weights & Biases mode; default: online under `wandb agent` "
                          "(WANDB_SWEEP_ID set), else disabled")
    tracking.add_argument("--wandb_project", default="dgsamp")
    tracking.add_argument("--wandb_entity", default=None)
    tracking.add_argument("--wandb_group", default=None, help="a sweep's runs share a group")
    tracking.add_argument("--wandb_tags", nargs="*", default=[])
    tracking.add_argument("--keep_checkpoints", choices=("none", "selected"), default="none",
                          help="selected: also keep the weights of the model training-domain validation "
                          "selects (selected_model.pt), which `dgsamp adapt` needs")

    add_hparam_arguments(parser, algorithm)


def add_mode_arguments(parser: argparse.ArgumentParser, mode: type[TrainingMode]) -> None:
    """A training mode's flags, from its declared options. Unset flags parse to None so
    that RunConfig can tell a default from a value given on purpose."""
    doc = (mode.__doc__ or mode.NAME).strip().splitlines()[0].rstrip(".")
    group = parser.add_argument_group(f"training mode {mode.NAME}: {doc}")
    for name, option in mode.OPTIONS.items():
        help_text = f"{option.help} (default {option.default!r})"
        if option.value_type is bool:
            group.add_argument(f"--{name}", action="store_true", default=None, help=help_text)
        else:
            group.add_argument(f"--{name}", type=option.value_type, choices=option.choices, default=None,
                               metavar=None if option.choices else option.value_type.__name__.upper(),
                               help=help_text)


def mode_option_names() -> set[str]:
    """Every flag declared by a registered training mode."""
    return {option for name in MODES.in_registration_order() for option in MODES.get(name).OPTIONS}

