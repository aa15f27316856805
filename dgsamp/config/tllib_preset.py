"""``--protocol tllib``: tllib's unsupervised-DA recipe (thuml/Transfer-Learning-Library @ c4aa59e).

Every setting is a rule of the dataset and the algorithm, read from
``dgsamp.config.tllib_recipe`` (each value there carries the file and line it came from):
the method's ``.sh`` line for the dataset when tllib has one (Office31, OfficeHome,
VisDA2017, DomainNet), else the method script's argparse defaults, else what all scripts share.

- backbone ResNet-50 with torchvision's ImageNet weights (ResNet-101 where the script says
  so: VisDA-2017, DomainNet), BatchNorm trained, one featurizer pass over all domains;
- the method's bottleneck after the pooled features (``Linear -> BatchNorm1d -> ReLU``, 256
  wide, for DANN/CDAN/BSP/ADDA/FixMatch; DAN's and JAN's with dropout; MCD, AFN and MDD
  build their own heads);
- SGD (momentum 0.9, Nesterov, the script's weight decay) at the script's lr, the backbone at
  0.1x, annealed every step as ``lr * (1 + lr_gamma * step) ** -lr_decay`` (MCD, AFN: constant);
- epochs of ``iters_per_epoch`` steps (1000, or 500 where a script says ``-i 500``), each
  followed by an evaluation; 32 source + 32 target examples per step (MCC: 36);
- the whole target domain is the unlabeled training data (``unlabeled_split`` test_in);
- the name DANN stands for tllib's DANN (``DANN_tllib``: 1024-unit BatchNorm discriminator,
  warm-start gradient reversal); every other name is its own implementation.

An algorithm tllib does not have (CORAL, MMD, ...) takes DANN's script settings; a dataset
tllib has no line for (PACS, RotatedMNIST, ...) takes the script's argparse defaults and keeps
the dataset's fixed backbone where it has one (MNIST CNN, PACSMini's EfficientNet-Lite0).
"""

from __future__ import annotations

from typing import Any

from dgsamp.config.preset import Protocol, Setting
from dgsamp.config.tllib_recipe import (
    COMMON,
    EXAMPLES,
    METHOD_DEFAULTS,
    PER_METHOD,
    TLLIB_COMMIT,
    TLLIB_REPO,
    TllibSetting,
    tllib_settings,
)
from dgsamp.registry import DATASETS

TLLIB_METHOD = {
    "ERM": "erm", "DANN": "dann", "DANN_tllib": "dann", "DAN": "dan", "JAN": "jan", "CDAN": "cdan",
    "CDAN_E": "cdan", "MCD": "mcd", "AFN": "afn", "DANN_BSP": "bsp", "CDAN_BSP": "bsp", "MDD": "mdd",
    "MCC": "mcc", "ADDA": "adda", "FixMatch": "fixmatch",
}
"""dgsamp's algorithm name -> the tllib script whose settings it runs with."""

IMPLEMENTATIONS = {"DANN": "DANN_tllib"}
"""Names that stand for another registered implementation under this preset."""

OWN_HEADS = ("mcd", "afn", "mdd")  # their algorithm files build tllib's bottleneck and heads
BOTTLENECKS = {
    (): "none",
    ("Linear", "BatchNorm1d", "ReLU"): "bn_relu",
    ("Linear", "ReLU", "Dropout(0.5)"): "relu_dropout",
    ("Linear", "BatchNorm1d", "ReLU", "Dropout(0.5)"): "bn_relu_dropout",
}
WHERE = f"{TLLIB_REPO} {EXAMPLES}/<method>.sh and <method>.py @ {TLLIB_COMMIT[:7]}"


def recipe(dataset_class: type, algorithm: str) -> dict[str, TllibSetting]:
    """tllib's settings for this dataset and algorithm (see the module docstring for fallbacks)."""
    method = TLLIB_METHOD.get(algorithm, "dann")
    names = [name for name in DATASETS.names() if DATASETS.get(name) is dataset_class]
    dataset = next((name for name in names if name in PER_METHOD[method]), None)
    if dataset is None:
        return {**COMMON, **METHOD_DEFAULTS[method]}
    return tllib_settings(method, dataset)


def _value(dataset_class: type, algorithm: str, name: str, default: Any = None) -> Any:
    setting = recipe(dataset_class, algorithm).get(name)
    return default if setting is None else setting.value


def _epochs(dataset_class: type, algorithm: str = "") -> int:
    """the script's --epochs for the dataset (argparse default otherwise)"""
    return int(_value(dataset_class, algorithm, "epochs"))


def _iters_per_epoch(dataset_class: type, algorithm: str = "") -> int:
    """the script's --iters-per-epoch (1000, or 500 with -i 500)"""
    return int(_value(dataset_class, algorithm, "iters_per_epoch"))


def _backbone(dataset_class: type, algorithm: str = "") -> str:
    """the dataset's FIXED_BACKBONE, else the script's -a: resnet50.tv_in1k or resnet101.tv_in1k"""
    if dataset_class.FIXED_BACKBONE:
        return dataset_class.FIXED_BACKBONE
    arch = _value(dataset_class, algorithm, "arch", "resnet50")
    return f"{arch}.tv_in1k"


def _bottleneck(dataset_class: type, algorithm: str = "") -> str:
    """the method's bottleneck layers (MCD, AFN, MDD: built by the method)"""
    if TLLIB_METHOD.get(algorithm, "dann") in OWN_HEADS:
        return "none"
    return BOTTLENECKS[tuple(_value(dataset_class, algorithm, "bottleneck", ()))]


def _bottleneck_width(dataset_class: type, algorithm: str = "") -> int:
    """the script's --bottleneck-dim (256 by default; 0 without a bottleneck)"""
    if _bottleneck(dataset_class, algorithm) == "none":
        return 0
    return int(_value(dataset_class, algorithm, "bottleneck_dim", 256))


def _implementation(dataset_class: type, algorithm: str = "") -> str | None:
    """DANN -> DANN_tllib; other names unchanged"""
    return IMPLEMENTATIONS.get(algorithm)


def tllib_hparams(dataset_class: type, algorithm: str = "") -> dict[str, Any]:
    """lr, weight decay, SGD momentum and Nesterov, 0.1x backbone lr, inverse-decay schedule,
    batch size and trade-off of the method's script"""
    values = recipe(dataset_class, algorithm)
    inverse = "lr_gamma" in values
    hparams: dict[str, Any] = {
        "optimizer": "sgd", "lr": values["lr"].value, "weight_decay": values["weight_decay"].value,
        "momentum": values["momentum"].value, "nesterov": bool(values["nesterov"].value),
        "backbone_lr_mult": values["backbone_lr_mult"].value, "batch_size": values["batch_size"].value,
        "lr_schedule": "inverse_decay" if inverse else "constant",
    }
    if inverse:
        hparams.update(lr_gamma=values["lr_gamma"].value, lr_decay=values["lr_decay"].value)
    if "randomized" in values:  # CDAN: tllib's --randomized flag, else the full multilinear map
        hparams["multilinear_map"] = "randomized" if values["randomized"].value else "full"
        hparams["randomized_dim"] = values["randomized_dim"].value
    for name in ("trade_off", "bottleneck_dim"):  # MCD, AFN and MDD size their own heads
        if name in values and TLLIB_METHOD.get(algorithm, "dann") in (OWN_HEADS if name == "bottleneck_dim" else
                                                                     TLLIB_METHOD.values()):
            hparams[name] = values[name].value
    return hparams


TLLIB_PROTOCOL = Protocol(
    "tllib",
    "tllib's unsupervised domain adaptation recipe (thuml/Transfer-Learning-Library @ c4aa59e)",
    {
        "steps": Setting(None, WHERE, "counted in epochs of iters_per_epoch steps"),
        "epochs": Setting(_epochs, WHERE, "e.g. DANN: Office31 20, OfficeHome 30, VisDA2017 30"),
        "checkpoint_freq": Setting(None, WHERE, "evaluation after every epoch"),
        "evaluate_last_step": Setting(True, WHERE),
        "backbone": Setting(_backbone, COMMON["pretrained_weights"].source, COMMON["pretrained_weights"].note),
        "freeze_bn": Setting(False, f"{EXAMPLES}/dann.py@{TLLIB_COMMIT[:7]}", "BatchNorm trained"),
        "featurizer_passes": Setting("joint", COMMON["sampling"].source,
                                     "source and target batches concatenated through one pass"),
        "eval_augmentation": Setting("none", COMMON["val_transform"].source, "evaluation is never augmented"),
        "unlabeled_split": Setting("test_in", COMMON["evaluation"].source,
                                   "the target's whole training split is the unlabeled data"),
        "hparams_registry": Setting("domainbed", WHERE, "method hparams as declared; the preset's hparams below win"),
        "steps_per_epoch": Setting(_iters_per_epoch, WHERE, "1000; 500 where the .sh says -i 500"),
        "bottleneck": Setting(_bottleneck, f"tllib/alignment/dann.py@{TLLIB_COMMIT[:7]}:115",
                              "Linear -> BatchNorm1d -> ReLU (DANN, CDAN, BSP, ADDA, FixMatch)"),
        "bottleneck_width": Setting(_bottleneck_width, WHERE, "256; 1024 on DomainNet and for MCC"),
        "implementation": Setting(_implementation, f"tllib/alignment/dann.py@{TLLIB_COMMIT[:7]}",
                                  "DANN is tllib's DANN (DANN_tllib)"),
        "transforms": Setting("tllib", COMMON["train_resizings"].source,
                              "resize 256, random resized crop 224 (scale 0.08-1) + flip; evaluation: centre crop 224"),
        "hparams": Setting(tllib_hparams, f"{EXAMPLES}/dann.py@{TLLIB_COMMIT[:7]}:79",
                           "SGD, Nesterov, wd, lr, 0.1x backbone, lr*(1+g*i)^-0.75, batch 32, trade-off"),
    },
)
