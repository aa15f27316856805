"""Protocol presets: ``--protocol domainbed2020 | domainbed2024 | dgsamp``, kept as data.

A preset is a set of :class:`Setting` s, each a value (or a rule of the dataset class, e.g.
DomainBed's ``N_STEPS`` per dataset) and where it comes from: a file and commit of
DomainBed (facebookresearch/DomainBed), or "dgsamp" for dgsamp's own choice.
``dgsamp.config.resolve`` applies the preset first and the flags given explicitly on top
(every flag a preset sets parses to None when it is not given), so explicit flags win.

- ``domainbed2020``: the code the published tables were produced with (2020-10-06 results,
  ``domainbed/results/2020_10_06_7df6f06``, commit 7df6f06).
- ``domainbed2024``: DomainBed's defaults since "Release ERM++" (July 2024, commit 3dfdc8e):
  timm ``resnet50.ram_in1k`` weights, BatchNorm trained, evaluation also at the last step.
- ``dgsamp``: dgsamp's behaviour before presets existed (epochs, joint featurizer passes,
  clean evaluation, transductive domain adaptation).

docs/protocol.md renders :data:`PROTOCOLS` as a table; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from dgsamp.config.preset import DGSAMP, Protocol, Setting, Source
from dgsamp.config.tllib_preset import TLLIB_PROTOCOL
from dgsamp.errors import UserError

COMMIT_2020 = "7df6f06a6f9062284812a3f174c306218932c5e4"  # code of the 2020-10-06 result tables
COMMIT_2024 = "3dfdc8effc4da6e4df763765755f588f02139302"  # "Release ERM++ (#1)", 2024-07-25
COMMIT_LAST_STEP = "ed96f0f139fda90af1d24e2c2c817509bf1d0d9f"  # "Evaluating on the last step too"
COMMIT_UDA = "b953488d4dcfcc76427f07958b133b87d24a48e5"  # "Added support for unsupervised domain adaptation."

DOMAINBED_PROTOCOLS = ("domainbed2020", "domainbed2024")
DA_PROTOCOLS = ("tllib",)
DEFAULT_PROTOCOL = "domainbed2020"


def _resnet50(tag: str) -> Callable[[type, str], str]:
    def rule(dataset_class: type, algorithm: str = "") -> str:
        return dataset_class.FIXED_BACKBONE or f"resnet50.{tag}"

    rule.__doc__ = f"the dataset's FIXED_BACKBONE (MNIST CNN, PACSMini's lite0), else resnet50.{tag}"
    return rule


def _n_steps(dataset_class: type, algorithm: str = "") -> int:
    """the dataset's N_STEPS"""
    return int(dataset_class.N_STEPS)


def _checkpoint_freq(dataset_class: type, algorithm: str = "") -> int:
    """the dataset's CHECKPOINT_FREQ"""
    return int(dataset_class.CHECKPOINT_FREQ)


def _dgsamp_backbone(dataset_class: type, algorithm: str = "") -> str:
    """the dataset's DEFAULT_BACKBONE"""
    return str(dataset_class.DEFAULT_BACKBONE)


def _no_extras(source: Source | str) -> dict[str, Setting]:
    """The settings only tllib's preset uses, at values that change nothing."""
    return {
        "steps_per_epoch": Setting(None, source, "one pass over the largest training domain (epoch mode)"),
        "bottleneck": Setting("none", source, "the classifier reads the featurizer's output"),
        "bottleneck_width": Setting(0, source),
        "implementation": Setting(None, source, "every algorithm name is its own implementation"),
        "hparams": Setting({}, source, "the hparams registry's defaults"),
        "transforms": Setting("domainbed", source, "DomainBed's augmentation (dgsamp.data.augment)"),
    }


def _domainbed(commit: str, last_step: Setting, backbone: Setting, freeze_bn: Setting) -> dict[str, Setting]:
    datasets, train = "domainbed/datasets.py", "domainbed/scripts/train.py"
    algorithms = "domainbed/algorithms.py"
    return {
        **_no_extras(Source("domainbed/networks.py", commit, "Featurizer -> Classifier")),
        "steps": Setting(_n_steps, Source(datasets, commit, "MultipleDomainDataset.N_STEPS = 5001"),
                         "5,001 steps for every DomainBed dataset"),
        "epochs": Setting(None, Source(train, commit, "--steps: DomainBed counts steps, not epochs")),
        "checkpoint_freq": Setting(
            _checkpoint_freq, Source(datasets, commit, "CHECKPOINT_FREQ: 100, 300 for image folders, 1000 DomainNet"),
            "MNIST 100; VLCS, PACS, OfficeHome, TerraIncognita 300; DomainNet 1000"),
        "evaluate_last_step": last_step,
        "backbone": backbone,
        "freeze_bn": freeze_bn,
        "featurizer_passes": Setting(
            "per_domain", Source(algorithms, commit, "update calls the featurizer on one domain's x at a time"),
            "CORAL, MMD, GroupDRO, Mixup (one pass per mixed pair), MTL and, in DomainBed's later code, ANDMask, "
            "SANDMask, IGA, CausIRL, EQRM, Transfer; the others pass all domains at once"),
        "eval_augmentation": Setting(
            "train_domains", Source(datasets, commit, "MultipleEnvironmentImageFolder: augment_transform if i not in test_envs"),
            "the training domains' in and out splits are evaluated through the training augmentation "
            "(image datasets with data_augmentation); test domains clean"),
        "unlabeled_split": Setting(
            "uda", Source(train, COMMIT_UDA if commit == COMMIT_2020 else commit,
                          "uda split: int(len(in) * uda_holdout_fraction) of each test domain's in-split"),
            "the uda part leaves the test in-split in both tasks and is evaluated as env{i}_uda; "
            "DA needs --uda_holdout_fraction > 0" + (" (7df6f06 had no DA task: DomainBed's later scheme)"
                                                      if commit == COMMIT_2020 else "")),
        "hparams_registry": Setting(
            "domainbed2020", Source("domainbed/hparams_registry.py", COMMIT_2020,
                                    "random_hparams: one RandomState(seed_hash(hparams_seed, trial_seed)) "
                                    "drawn in _hparams order"),
            "names, defaults and search spaces as today except Mixup's mixup_alpha (10^U(-1,-1) = 0.1); "
            "the same seeds give the 2020 sweep's values for its 14 algorithms; MLDG's n_meta_test = 0 "
            "(7df6f06's random pairs of domains); later algorithms draw one RandomState per name (987b75e)") if commit == COMMIT_2020 else Setting(
            "domainbed", Source("domainbed/hparams_registry.py", commit,
                                "names, defaults, search spaces; RandomState(seed_hash(seed, name)) per name")),
    }


PROTOCOLS: Mapping[str, Protocol] = MappingProxyType({
    "domainbed2020": Protocol(
        "domainbed2020",
        "the code of DomainBed's published tables (2020-10-06 results, commit 7df6f06)",
        _domainbed(
            COMMIT_2020,
            Setting(False, Source("domainbed/scripts/train.py", COMMIT_2020, "step % checkpoint_freq == 0"),
                    "with 5,001 steps, image datasets end at step 4800 (steps 4801-5000 are never evaluated)"),
            Setting(_resnet50("tv_in1k"), Source("domainbed/networks.py", COMMIT_2020,
                                                  "torchvision.models.resnet50(pretrained=True)"),
                    "torchvision's ImageNet weights (timm serves them as resnet50.tv_in1k)"),
            Setting(True, Source("domainbed/networks.py", COMMIT_2020, "ResNet.train() calls freeze_bn()"),
                    "BatchNorm statistics frozen (timm backbones; the MNIST CNN has GroupNorm)"),
        ),
    ),
    "domainbed2024": Protocol(
        "domainbed2024",
        "DomainBed's defaults since 'Release ERM++' (July 2024, commit 3dfdc8e)",
        _domainbed(
            COMMIT_2024,
            Setting(True, Source("domainbed/scripts/train.py", COMMIT_2024,
                                 "step % checkpoint_freq == 0 or step == n_steps - 1 (since ed96f0f)")),
            Setting(_resnet50("ram_in1k"), Source("domainbed/networks.py", COMMIT_2024,
                                                   "timm.create_model('resnet50.ram_in1k') when resnet50_augmix"),
                    "hparam resnet50_augmix defaults to True"),
            Setting(False, Source("domainbed/hparams_registry.py", COMMIT_2024, "_hparam('freeze_bn', False)"),
                    "BatchNorm trained"),
        ),
    ),
    "dgsamp": Protocol(
        "dgsamp",
        "dgsamp's own protocol (its behaviour before presets): epochs, joint passes, clean evaluation",
        {
            "steps": Setting(None, DGSAMP, "training length in epochs"),
            "epochs": Setting(5, DGSAMP, "one epoch = one pass over the largest training domain's in-split"),
            "checkpoint_freq": Setting(None, DGSAMP, "evaluation after every epoch"),
            "evaluate_last_step": Setting(True, DGSAMP, "with --steps: DomainBed's current rule"),
            "backbone": Setting(_dgsamp_backbone, DGSAMP, "PACS: tf_efficientnet_lite0; MNIST: mnist_cnn; others resnet50"),
            "freeze_bn": Setting(False, DGSAMP, "BatchNorm trained"),
            "featurizer_passes": Setting("joint", DGSAMP, "one featurizer call on all domains concatenated"),
            "eval_augmentation": Setting("none", DGSAMP, "out splits are validation data: never augmented"),
            "unlabeled_split": Setting(
                "test_in", DGSAMP, "DA: unlabeled batches from the test domains' whole in-split (transductive); "
                "--uda_holdout_fraction > 0 carves DomainBed's uda split instead"),
            "hparams_registry": Setting("domainbed", Source("domainbed/hparams_registry.py", COMMIT_2024,
                                                            "names, defaults, search spaces"), "as DomainBed"),
            **_no_extras(DGSAMP),
        },
    ),
    "tllib": TLLIB_PROTOCOL,
})


def get_protocol(name: str) -> Protocol:
    """The preset ``name``, or a one-line UserError listing the known ones."""
    if name not in PROTOCOLS:
        raise UserError(f"unknown --protocol '{name}'; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def describe(setting: Setting) -> str:
    """The setting's value as docs show it: a literal, or its rule's docstring."""
    if callable(setting.value):
        return (setting.value.__doc__ or setting.value.__name__).strip()
    return repr(setting.value) if setting.value is not None else "—"


SETTING_NAMES = {
    "steps": "training length",
    "epochs": "epochs (instead of steps)",
    "checkpoint_freq": "evaluation period (steps)",
    "evaluate_last_step": "also evaluate the last step",
    "backbone": "backbone and weights",
    "freeze_bn": "BatchNorm",
    "featurizer_passes": "featurizer passes",
    "eval_augmentation": "evaluation of training domains",
    "unlabeled_split": "DA unlabeled data",
    "hparams_registry": "hyperparameters",
    "steps_per_epoch": "epoch length (steps)",
    "bottleneck": "bottleneck after the featurizer",
    "bottleneck_width": "bottleneck width",
    "implementation": "implementation of the algorithm name",
    "hparams": "hparams the preset sets",
    "transforms": "image transforms",
}


def markdown_table() -> str:
    """docs/protocol.md's table: a row per setting, a column per preset, value and source."""

    def cell(setting: Setting) -> str:
        where = setting.source if isinstance(setting.source, str) else (
            f"`{setting.source.file}` @ `{setting.source.commit[:7]}`: {setting.source.what}")
        note = f" — {setting.note}" if setting.note else ""
        return f"**{describe(setting)}**{note}<br>*{where}*".replace("|", "\\|")

    names = list(PROTOCOLS)
    lines = [f"| setting (flag) | {' | '.join(names)} |", "|---" * (len(names) + 1) + "|"]
    for key, label in SETTING_NAMES.items():
        flag = f" (`--{key}`)" if key not in ("evaluate_last_step", "unlabeled_split", "hparams_registry",
                                              "implementation", "hparams") else ""
        lines.append(f"| {label}{flag} | " + " | ".join(cell(PROTOCOLS[n].settings[key]) for n in names) + " |")
    return "\n".join(lines) + "\n"
