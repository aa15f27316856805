"""tllib's unsupervised-DA recipe as data: what ``--protocol tllib`` reproduces.

The Transfer-Learning-Library (thuml/Transfer-Learning-Library, commit c4aa59e, 2024-03-23)
trains every method with one script, ``examples/domain_adaptation/image_classification/<m>.py``,
and publishes its tables from the command lines in ``<m>.sh``. This module stores both as
:class:`TllibSetting` s (a value and the ``file@commit:line`` it was read from):

- :data:`COMMON`: what every script shares (``utils.py``, ``tllib/modules/classifier.py``):
  ImageNet ResNet, resize 256 -> random resized crop 224 -> flip, SGD with Nesterov momentum,
  the backbone at 0.1x the learning rate, ``lr_i = lr * (1 + lr_gamma * i) ** (-lr_decay)``
  stepped every iteration, evaluation on the target after every epoch of ``iters_per_epoch``.
- :data:`METHOD_DEFAULTS`: each script's argparse defaults and the model and optimiser it
  builds where they differ from :data:`COMMON` (MCD and AFN: constant lr, no Nesterov).
- :data:`PER_METHOD`: the flags each ``.sh`` passes for the ResNet single-source tasks of
  Office31, OfficeHome, VisDA2017 and DomainNet (names as tllib spells them).

:func:`tllib_setting` looks a name up in that order: method x dataset, method, common.
Names are tllib's argparse ``dest`` names (``--wd`` is stored as ``weight_decay``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dgsamp.errors import UserError

TLLIB_REPO = "thuml/Transfer-Learning-Library"
TLLIB_COMMIT = "c4aa59eb565650a552b809411601d0589efbbfe4"  # "Update README.md", 2024-03-23
EXAMPLES = "examples/domain_adaptation/image_classification"

METHODS = ("erm", "dann", "dan", "jan", "cdan", "mcd", "afn", "bsp", "mdd", "mcc", "adda", "fixmatch")
DATASETS = ("Office31", "OfficeHome", "VisDA2017", "DomainNet")


@dataclass(frozen=True)
class TllibSetting:
    """One value of tllib's recipe and where it was read: ``"path@c4aa59e:line"``."""

    value: Any
    source: str
    note: str = ""


def _at(path: str, line: int, value: Any, note: str = "") -> TllibSetting:
    return TllibSetting(value, f"{path}@{TLLIB_COMMIT[:7]}:{line}", note)


def _ex(file: str, line: int, value: Any, note: str = "") -> TllibSetting:
    """A value read in the examples folder (a method script, ``utils.py`` or a ``.sh``)."""
    return _at(f"{EXAMPLES}/{file}", line, value, note)


def _args(method: str, **defaults: tuple[int, Any]) -> dict[str, TllibSetting]:
    """``name=(line, default)`` of ``<method>.py``'s argparse."""
    return {name: _ex(f"{method}.py", line, value) for name, (line, value) in defaults.items()}


def _sh(method: str, line: int, **flags: Any) -> dict[str, TllibSetting]:
    """The flags one command line of ``<method>.sh`` passes (every task of the group alike)."""
    return {name: _ex(f"{method}.sh", line, value) for name, value in flags.items()}


_CLASSIFIER = "tllib/modules/classifier.py"
_RESNET = "tllib/vision/models/resnet.py"
_INVERSE_DECAY = "lr * (1 + lr_gamma * i) ** (-lr_decay), i counts iterations (LambdaLR)"

COMMON: Mapping[str, TllibSetting] = {
    "pretrained_weights": _at(_RESNET, 56, "torchvision ImageNet-1k (model_urls)",
                              "torchvision 0.8.2's resnet50-19c8e357 / resnet101-5d3b4d8f: "
                              "timm resnet50.tv_in1k / resnet101.tv_in1k"),
    "pool": _at(_CLASSIFIER, 54, "AdaptiveAvgPool2d(1) + Flatten"),
    "bottleneck": _at(_CLASSIFIER, 60, (), "no bottleneck unless the method's classifier adds one"),
    "head": _at(_CLASSIFIER, 68, "Linear(features_dim, num_classes)"),
    "backbone_lr_mult": _at(_CLASSIFIER, 93, 0.1, "bottleneck, head and discriminators at 1.0x"),
    "optimizer": _ex("dann.py", 79, "SGD"),
    "nesterov": _ex("dann.py", 80, True),
    "lr_schedule": _ex("dann.py", 81, _INVERSE_DECAY,
                       "the factor multiplies each group's lr: backbone_lr_mult or 1.0"),
    "train_resizings": _ex("utils.py", 154, {
        "default": "Resize(256) -> RandomResizedCrop(224, scale, ratio)",
        "cen.crop": "Resize(256) -> CenterCrop(224)",
        "ran.crop": "Resize(256) -> RandomCrop(224)",
        "res.": "Resize(resize_size)"}, "ResizeImage(256) resizes to 256x256 (aspect not kept)"),
    "val_transform": _ex("utils.py", 203, "Resize(256) -> CenterCrop(224)", "--val-resizing default"),
    "val_resizing": _ex("utils.py", 196, "default"),
    "scale": _ex("utils.py", 144, (0.08, 1.0)),
    "ratio": _ex("utils.py", 144, (3 / 4, 4 / 3)),
    "resize_size": _ex("utils.py", 145, 224, "used by the 'res.' resizing only"),
    "no_hflip": _ex("dann.py", 216, False, "RandomHorizontalFlip after the crop; every script alike"),
    "norm_mean": _ex("utils.py", 145, (0.485, 0.456, 0.406)),
    "norm_std": _ex("utils.py", 146, (0.229, 0.224, 0.225)),
    "no_pool": _ex("dann.py", 230, False, "every script alike"),
    "scratch": _ex("dann.py", 232, False, "every script alike: ImageNet weights"),
    "seed": _ex("dann.py", 256, None, "every script alike; the .sh files pass one"),
    "per_class_eval": _ex("dann.py", 258, False, "every script alike; VisDA2017 passes it"),
    "drop_last": _ex("dann.py", 61, True, "source and target loaders, shuffled, batch_size each"),
    "sampling": _ex("dann.py", 67, "ForeverDataIterator over source and over target",
                    "an epoch is iters_per_epoch steps, not a pass over the data"),
    "evaluation": _ex("dann.py", 120, "target accuracy after every epoch",
                      "mean per-class accuracy with --per-class-eval"),
    "model_selection": _ex("dann.py", 124, "best epoch by target accuracy, then test",
                           "val is the target domain (utils.py:82); test = val except DomainNet's "
                           "test split (utils.py:85): a target-oracle selection"),
}

_BN_BOTTLENECK = ("Linear", "BatchNorm1d", "ReLU")
_DANN_GRL = {"alpha": 1.0, "lo": 0.0, "hi": 1.0, "max_iters": 1000}
_NO_SCHEDULE = "constant (no scheduler)"

# What a method's script builds where it differs from COMMON: classifier, optimiser, extras.
_STRUCTURE: dict[str, dict[str, TllibSetting]] = {
    "erm": {"bottleneck": _ex("erm.py", 68, (), "tllib.modules.classifier.Classifier")},
    "dann": {
        "bottleneck": _at("tllib/alignment/dann.py", 115, _BN_BOTTLENECK),
        "discriminator_hidden": _ex("dann.py", 76, 1024, "Linear-BN-ReLU x2 -> Linear(1)"),
        "grl": _at("tllib/alignment/dann.py", 62, _DANN_GRL, "warm start, stepped every call"),
    },
    "dan": {
        "bottleneck": _at("tllib/alignment/dan.py", 127, ("Linear", "ReLU", "Dropout(0.5)")),
        "kernels": _ex("dan.py", 83, "GaussianKernel(alpha=2**k) for k in -3..1"),
    },
    "jan": {
        "bottleneck": _at("tllib/alignment/jan.py", 119,
                          ("Linear", "BatchNorm1d", "ReLU", "Dropout(0.5)")),
        "kernels": _ex("jan.py", 84, "features: GaussianKernel(alpha=2**k), k in -3..1; "
                                     "predictions: GaussianKernel(sigma=0.92)"),
    },
    "cdan": {
        "bottleneck": _at("tllib/alignment/cdan.py", 191, _BN_BOTTLENECK),
        "discriminator_hidden": _ex("cdan.py", 81, 1024,
                                    "input features_dim * num_classes (randomized_dim with -r)"),
        "grl": _at("tllib/alignment/cdan.py", 86, _DANN_GRL),
    },
    "mcd": {
        "heads": _at("tllib/alignment/mcd.py", 70, (
            "Dropout(0.5)", "Linear", "BatchNorm1d", "ReLU", "Dropout(0.5)", "Linear",
            "BatchNorm1d", "ReLU", "Linear"), "two such heads on the pooled backbone"),
        "backbone_lr_mult": _ex("mcd.py", 80, 1.0, "the backbone has its own optimiser at lr"),
        "nesterov": _ex("mcd.py", 80, False),
        "momentum": _ex("mcd.py", 80, 0.0, "backbone; the two heads use 0.9 (mcd.py:84)"),
        "weight_decay": _ex("mcd.py", 80, 0.0005, "hard-coded for backbone and heads"),
        "lr_schedule": _ex("mcd.py", 79, _NO_SCHEDULE),
    },
    "afn": {
        "bottleneck": _at("tllib/normalization/afn.py", 116, (
            "Linear", "BatchNorm1d", "ReLU", "Dropout(dropout_p)"),
            "num_blocks blocks; dropout output scaled by sqrt(1 - p) in training"),
        "backbone_lr_mult": _at("tllib/normalization/afn.py", 137, 1.0),
        "nesterov": _ex("afn.py", 80, False),
        "momentum": _at("tllib/normalization/afn.py", 138, 0.9,
                        "bottleneck and head only; the backbone has none, --momentum is unused"),
        "lr_schedule": _ex("afn.py", 79, _NO_SCHEDULE),
    },
    "bsp": {
        "bottleneck": _at("tllib/alignment/bsp.py", 58, _BN_BOTTLENECK),
        "discriminator_hidden": _ex("bsp.py", 77, 1024),
        "grl": _at("tllib/alignment/dann.py", 62, _DANN_GRL),
        "source_pretraining": _ex("bsp.py", 113, True,
                                  "ERM on the source for pretrain_epochs at pretrain_lr first"),
    },
    "mdd": {
        "bottleneck": _at("tllib/alignment/mdd.py", 334,
                          ("Linear", "BatchNorm1d", "ReLU", "Dropout(0.5)")),
        "heads": _at("tllib/alignment/mdd.py", 344, ("Linear(width)", "ReLU", "Dropout(0.5)", "Linear"),
                     "main and adversarial head alike; width = bottleneck_dim (mdd.py:75)"),
        "grl": _at("tllib/alignment/mdd.py", 324,
                   {"alpha": 1.0, "lo": 0.0, "hi": 0.1, "max_iters": 1000}),
    },
    "mcc": {"bottleneck": _at("tllib/self_training/mcc.py", 82, _BN_BOTTLENECK)},
    "adda": {
        "bottleneck": _at("tllib/alignment/adda.py", 47, _BN_BOTTLENECK),
        "source_pretraining": _ex("adda.py", 88, True,
                                  "ERM on the source for pretrain_epochs at pretrain_lr; the "
                                  "source model is then frozen"),
        "optimize_head": _ex("adda.py", 129, False, "the target head stays the source head"),
        "discriminator_hidden": _ex("adda.py", 121, 1024),
        "grl": _ex("adda.py", 124, {"alpha": 1.0, "lo": 0.0, "hi": 2.0, "max_iters": 1000}),
    },
    "fixmatch": {
        "bottleneck": _ex("fixmatch.py", 36, _BN_BOTTLENECK),
        "source_scale": _ex("fixmatch.py", 67, (0.08, 1.0), "--scale sets the target views only"),
        "target_views": _ex("fixmatch.py", 80, ("weak", "strong"),
                            "strong adds RandAugment auto_augment (fixmatch.py:79)"),
    },
}

_ARGPARSE: dict[str, dict[str, TllibSetting]] = {
    "erm": _args("erm", train_resizing=(135, "default"), scale=(139, (0.08, 1.0)),
        arch=(150, "resnet18"), batch_size=(159, 32), lr=(162, 0.001), lr_gamma=(164, 0.0003),
        lr_decay=(165, 0.75), momentum=(166, 0.9), weight_decay=(168, 0.0005), epochs=(172, 20),
        iters_per_epoch=(174, 500)),
    "dann": _args("dann", train_resizing=(208, "default"), scale=(212, (0.08, 1.0)),
        arch=(223, "resnet18"), bottleneck_dim=(228, 256), trade_off=(233, 1.0),
        batch_size=(236, 32), lr=(239, 0.01), lr_gamma=(241, 0.001), lr_decay=(242, 0.75),
        momentum=(243, 0.9), weight_decay=(245, 0.001), epochs=(250, 20),
        iters_per_epoch=(252, 1000)),
    "dan": _args("dan", train_resizing=(205, "default"), scale=(209, (0.08, 1.0)),
        arch=(220, "resnet18"), bottleneck_dim=(225, 256), non_linear=(230, False),
        trade_off=(232, 1.0), batch_size=(235, 32), lr=(238, 0.003), lr_gamma=(240, 0.0003),
        lr_decay=(241, 0.75), momentum=(242, 0.9), weight_decay=(244, 0.0005), epochs=(248, 20),
        iters_per_epoch=(250, 500)),
    "jan": _args("jan", train_resizing=(222, "default"), scale=(226, (0.08, 1.0)),
        arch=(237, "resnet18"), bottleneck_dim=(242, 256), linear=(247, False),
        adversarial=(249, False), trade_off=(251, 1.0), batch_size=(254, 32), lr=(257, 0.003),
        lr_gamma=(259, 0.0003), lr_decay=(260, 0.75), momentum=(261, 0.9),
        weight_decay=(263, 0.0005), epochs=(267, 20), iters_per_epoch=(269, 500)),
    "cdan": _args("cdan", train_resizing=(219, "default"), scale=(223, (0.08, 1.0)),
        arch=(234, "resnet18"), bottleneck_dim=(239, 256), randomized=(244, False),
        randomized_dim=(246, 1024), entropy=(248, False), trade_off=(249, 1.0),
        batch_size=(252, 32), lr=(255, 0.01), lr_gamma=(257, 0.001), lr_decay=(258, 0.75),
        momentum=(259, 0.9), weight_decay=(260, 0.001), epochs=(265, 20),
        iters_per_epoch=(267, 1000)),
    "mcd": _args("mcd", train_resizing=(304, "default"), scale=(308, (0.08, 1.0)),
        arch=(319, "resnet18"), bottleneck_dim=(324, 1024), trade_off=(328, 1.0),
        trade_off_entropy=(330, 0.01), num_k=(332, 4), batch_size=(335, 32), lr=(338, 0.001),
        epochs=(342, 20), iters_per_epoch=(344, 1000)),
    "afn": _args("afn", train_resizing=(210, "ran.crop"), arch=(221, "resnet18"),
        num_blocks=(229, 1), bottleneck_dim=(230, 1000), dropout_p=(231, 0.5), batch_size=(234, 32),
        lr=(237, 0.001), momentum=(239, 0.9), weight_decay=(241, 0.0005),
        trade_off_norm=(244, 0.05), trade_off_entropy=(246, None), delta=(248, 1), epochs=(251, 20),
        iters_per_epoch=(253, 500)),
    "bsp": _args("bsp", train_resizing=(238, "default"), scale=(240, (0.08, 1.0)),
        arch=(253, "resnet18"), bottleneck_dim=(260, 256), trade_off=(265, 1.0),
        trade_off_bsp=(267, 0.0002), batch_size=(270, 32), lr=(273, 0.003),
        pretrain_lr=(275, 0.001), lr_gamma=(276, 0.001), lr_decay=(277, 0.75), momentum=(278, 0.9),
        weight_decay=(280, 0.001), epochs=(285, 20), pretrain_epochs=(287, 3),
        iters_per_epoch=(289, 1000)),
    "mdd": _args("mdd", train_resizing=(210, "default"), scale=(214, (0.08, 1.0)),
        arch=(222, "resnet18"), bottleneck_dim=(227, 1024), margin=(231, 4.0), trade_off=(232, 1.0),
        batch_size=(235, 32), lr=(238, 0.004), lr_gamma=(240, 0.0002), lr_decay=(241, 0.75),
        momentum=(242, 0.9), weight_decay=(243, 0.0005), epochs=(247, 20),
        iters_per_epoch=(249, 1000)),
    "mcc": _args("mcc", train_resizing=(204, "default"), scale=(208, (0.08, 1.0)),
        arch=(219, "resnet18"), bottleneck_dim=(224, 256), temperature=(229, 2.5),
        trade_off=(230, 1.0), batch_size=(233, 36), lr=(236, 0.005), lr_gamma=(238, 0.001),
        lr_decay=(239, 0.75), momentum=(240, 0.9), weight_decay=(241, 0.001), epochs=(246, 20),
        iters_per_epoch=(248, 1000)),
    "adda": _args("adda", train_resizing=(245, "default"), scale=(249, (0.08, 1.0)),
        arch=(260, "resnet18"), bottleneck_dim=(267, 256), batch_size=(273, 32), lr=(276, 0.001),
        pretrain_lr=(278, 0.001), lr_gamma=(279, 0.0003), lr_decay=(280, 0.75), momentum=(281, 0.9),
        weight_decay=(283, 0.001), epochs=(288, 20), pretrain_epochs=(290, 3),
        iters_per_epoch=(292, 1000)),
    "fixmatch": _args("fixmatch", train_resizing=(261, "default"), scale=(265, (0.5, 1.0)),
        auto_augment=(275, "rand-m10-n2-mstd2"), arch=(278, "resnet18"), bottleneck_dim=(283, 1024),
        trade_off=(288, 1.0), batch_size=(291, 32), unlabeled_batch_size=(294, 32),
        threshold=(296, 0.9), lr=(298, 0.003), lr_gamma=(300, 0.0004), lr_decay=(301, 0.75),
        momentum=(302, 0.9), weight_decay=(304, 0.001), epochs=(309, 20),
        iters_per_epoch=(311, 1000)),
}

# argparse defaults, then what the script builds (the structure wins where both name a thing).
METHOD_DEFAULTS: Mapping[str, Mapping[str, TllibSetting]] = {
    method: {**_ARGPARSE[method], **_STRUCTURE[method]} for method in METHODS
}

_MCD_CENTER_CROP = _ex("mcd.sh", 27, True, "mcd.py defines no --center-crop: argparse rejects the line")

# The flags of each .sh for the ResNet single-source tasks (fixmatch.sh has no DomainNet).
PER_METHOD: Mapping[str, Mapping[str, Mapping[str, TllibSetting]]] = {
    "erm": {
        "Office31": _sh("erm", 3, arch="resnet50", epochs=5, seed=0),
        "OfficeHome": _sh("erm", 11, arch="resnet50", epochs=5, iters_per_epoch=500, seed=0),
        "VisDA2017": _sh("erm", 25, arch="resnet101", epochs=20, iters_per_epoch=1000, seed=0,
            per_class_eval=True, train_resizing="cen.crop"),
        "DomainNet": _sh("erm", 29, arch="resnet101", epochs=20, iters_per_epoch=2500, seed=0,
            lr=0.01),
    },
    "dann": {
        "Office31": _sh("dann", 3, arch="resnet50", epochs=20, seed=1),
        "OfficeHome": _sh("dann", 11, arch="resnet50", epochs=30, seed=0),
        "VisDA2017": _sh("dann", 25, arch="resnet101", epochs=30, seed=0, per_class_eval=True,
            train_resizing="cen.crop"),
        "DomainNet": _sh("dann", 29, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0),
    },
    "dan": {
        "Office31": _sh("dan", 3, arch="resnet50", epochs=20, seed=0),
        "OfficeHome": _sh("dan", 11, arch="resnet50", epochs=20, iters_per_epoch=500, seed=0),
        "VisDA2017": _sh("dan", 25, arch="resnet101", epochs=20, iters_per_epoch=500, seed=0,
            per_class_eval=True, train_resizing="cen.crop"),
        "DomainNet": _sh("dan", 29, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0),
    },
    "jan": {
        "Office31": _sh("jan", 3, arch="resnet50", epochs=20, seed=0),
        "OfficeHome": _sh("jan", 11, arch="resnet50", epochs=20, seed=0),
        "VisDA2017": _sh("jan", 25, arch="resnet101", epochs=20, iters_per_epoch=500, seed=0,
            per_class_eval=True, train_resizing="cen.crop"),
        "DomainNet": _sh("jan", 29, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0),
    },
    "cdan": {
        "Office31": _sh("cdan", 3, arch="resnet50", epochs=20, seed=2),
        "OfficeHome": _sh("cdan", 11, arch="resnet50", epochs=30, seed=0),
        "VisDA2017": _sh("cdan", 25, arch="resnet101", epochs=30, seed=0, per_class_eval=True,
            train_resizing="cen.crop"),
        "DomainNet": _sh("cdan", 30, arch="resnet101", bottleneck_dim=1024, randomized=True,
            randomized_dim=51200, epochs=30, iters_per_epoch=2500, seed=0),
    },
    "mcd": {
        "Office31": _sh("mcd", 5, arch="resnet50", epochs=20, seed=0, iters_per_epoch=500,
            trade_off=10.0),
        "OfficeHome": _sh("mcd", 13, arch="resnet50", epochs=20, iters_per_epoch=500, seed=0,
            trade_off=30.0),
        "VisDA2017": {**_sh("mcd", 27, arch="resnet101", epochs=20, seed=0, iters_per_epoch=500,
                            per_class_eval=True, train_resizing="cen.crop"),
                      "center_crop": _MCD_CENTER_CROP},
        "DomainNet": _sh("mcd", 31, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0, trade_off=120.0),
    },
    "afn": {
        "Office31": _sh("afn", 3, arch="resnet50", trade_off_entropy=0.1, epochs=20, seed=1),
        "OfficeHome": _sh("afn", 11, arch="resnet50", epochs=20, seed=0),
        "VisDA2017": _sh("afn", 25, arch="resnet101", delta=0.3, batch_size=36, epochs=10,
            iters_per_epoch=1000, seed=0, per_class_eval=True, train_resizing="cen.crop"),
        "DomainNet": _sh("afn", 29, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0, trade_off_norm=0.01, lr=0.002),
    },
    "bsp": {
        "Office31": _sh("bsp", 3, arch="resnet50", epochs=20, seed=1),
        "OfficeHome": _sh("bsp", 11, arch="resnet50", epochs=30, seed=0),
        "VisDA2017": _sh("bsp", 25, arch="resnet101", epochs=30, seed=0, per_class_eval=True,
            train_resizing="cen.crop"),
        "DomainNet": _sh("bsp", 29, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0),
    },
    "mdd": {
        "Office31": _sh("mdd", 3, arch="resnet50", epochs=20, bottleneck_dim=1024, seed=1),
        "OfficeHome": _sh("mdd", 11, arch="resnet50", epochs=30, bottleneck_dim=2048, seed=0),
        "VisDA2017": _sh("mdd", 25, arch="resnet101", epochs=30, bottleneck_dim=1024, seed=0,
            train_resizing="cen.crop", per_class_eval=True, batch_size=36),
        "DomainNet": _sh("mdd", 29, arch="resnet101", epochs=40, iters_per_epoch=5000,
            bottleneck_dim=2048, seed=0, lr=0.004),
    },
    "mcc": {
        "Office31": _sh("mcc", 3, arch="resnet50", epochs=20, iters_per_epoch=500, seed=2,
            bottleneck_dim=1024),
        "OfficeHome": _sh("mcc", 11, arch="resnet50", epochs=30, seed=0, bottleneck_dim=2048),
        "VisDA2017": _sh("mcc", 25, arch="resnet101", epochs=30, seed=0, lr=0.002,
            per_class_eval=True, temperature=3.0, train_resizing="cen.crop"),
        "DomainNet": _sh("mcc", 29, arch="resnet101", epochs=30, batch_size=32,
            iters_per_epoch=2500, temperature=2.0, lr=0.005, bottleneck_dim=2048, trade_off=10.0,
            seed=0),
    },
    "adda": {
        "Office31": _sh("adda", 3, arch="resnet50", epochs=20, seed=1),
        "OfficeHome": _sh("adda", 11, arch="resnet50", epochs=30, seed=0),
        "VisDA2017": _sh("adda", 25, arch="resnet101", epochs=30, seed=0, per_class_eval=True,
            train_resizing="cen.crop"),
        "DomainNet": _sh("adda", 29, arch="resnet101", bottleneck_dim=1024, epochs=30,
            iters_per_epoch=2500, seed=0),
    },
    "fixmatch": {
        "Office31": _sh("fixmatch", 3, arch="resnet50", lr=0.001, bottleneck_dim=256,
            unlabeled_batch_size=96, epochs=20, seed=0),
        "OfficeHome": _sh("fixmatch", 11, arch="resnet50", lr=0.003, bottleneck_dim=1024, epochs=20,
            seed=0),
        "VisDA2017": _sh("fixmatch", 25, arch="resnet101", train_resizing="cen.crop", lr=0.003,
            threshold=0.8, bottleneck_dim=2048, epochs=20, unlabeled_batch_size=64, seed=0,
            per_class_eval=True),
    },
}


def tllib_setting(method: str, dataset: str, name: str) -> TllibSetting:
    """``name`` for ``method`` on ``dataset``: the .sh flag, else the script's default, else common.

    Raises UserError for a method, dataset or name tllib's recipe does not have.
    """
    per_dataset = _method_on(method, dataset)
    for layer in (per_dataset, METHOD_DEFAULTS[method], COMMON):
        if name in layer:
            return layer[name]
    raise UserError(f"tllib's {method} recipe has no setting {name!r}; "
                    f"known: {', '.join(sorted(tllib_settings(method, dataset)))}")


def tllib_settings(method: str, dataset: str) -> dict[str, TllibSetting]:
    """Every setting of ``method`` on ``dataset``, resolved in :func:`tllib_setting`'s order."""
    return {**COMMON, **METHOD_DEFAULTS[method], **_method_on(method, dataset)}


def _method_on(method: str, dataset: str) -> Mapping[str, TllibSetting]:
    if method not in PER_METHOD:
        raise UserError(f"tllib has no recipe for method {method!r}; choose one of {', '.join(METHODS)}")
    if dataset not in PER_METHOD[method]:
        raise UserError(f"tllib's {method}.sh has no {dataset!r} line; it covers "
                        f"{', '.join(PER_METHOD[method])} (datasets: {', '.join(DATASETS)})")
    return PER_METHOD[method][dataset]
