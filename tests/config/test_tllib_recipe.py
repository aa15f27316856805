"""tllib's DA recipe as data: values read from thuml/Transfer-Learning-Library at c4aa59e.

Each expected literal below was read by hand in the file and line named beside it
(``examples/domain_adaptation/image_classification/`` is abbreviated ``ex/``).
"""

import re

import pytest

from dgsamp.config.tllib_recipe import (
    COMMON,
    DATASETS,
    METHOD_DEFAULTS,
    METHODS,
    PER_METHOD,
    tllib_setting,
    tllib_settings,
)
from dgsamp.errors import UserError

EX = "examples/domain_adaptation/image_classification"
SOURCE = re.compile(
    r"^(examples/domain_adaptation/image_classification|tllib(/\w+)*)/\w+\.(py|sh)@c4aa59e:[1-9]\d*$")

# (method, dataset, name, value, source file relative to ex/ or the repo root, line)
SPOT_CHECKS = [
    ("dann", "Office31", "arch", "resnet50", "ex/dann.sh", 3),
    ("dann", "Office31", "seed", 1, "ex/dann.sh", 3),
    ("dann", "OfficeHome", "epochs", 30, "ex/dann.sh", 11),
    ("dann", "VisDA2017", "arch", "resnet101", "ex/dann.sh", 25),
    ("dann", "VisDA2017", "train_resizing", "cen.crop", "ex/dann.sh", 25),
    ("dann", "VisDA2017", "per_class_eval", True, "ex/dann.sh", 25),
    ("dann", "DomainNet", "bottleneck_dim", 1024, "ex/dann.sh", 29),
    ("dann", "DomainNet", "iters_per_epoch", 2500, "ex/dann.sh", 29),
    ("erm", "Office31", "epochs", 5, "ex/erm.sh", 3),
    ("cdan", "DomainNet", "randomized_dim", 51200, "ex/cdan.sh", 30),
    ("mcd", "OfficeHome", "trade_off", 30.0, "ex/mcd.sh", 13),
    ("mcd", "OfficeHome", "iters_per_epoch", 500, "ex/mcd.sh", 13),
    ("mdd", "OfficeHome", "bottleneck_dim", 2048, "ex/mdd.sh", 11),
    ("mdd", "VisDA2017", "batch_size", 36, "ex/mdd.sh", 25),
    ("mcc", "DomainNet", "trade_off", 10.0, "ex/mcc.sh", 29),
    ("mcc", "DomainNet", "temperature", 2.0, "ex/mcc.sh", 29),
    ("afn", "VisDA2017", "delta", 0.3, "ex/afn.sh", 25),
    ("afn", "VisDA2017", "epochs", 10, "ex/afn.sh", 25),
    ("fixmatch", "Office31", "unlabeled_batch_size", 96, "ex/fixmatch.sh", 3),
    ("fixmatch", "Office31", "lr", 0.001, "ex/fixmatch.sh", 3),
    # argparse defaults, reached through the fallback
    ("dann", "Office31", "lr", 0.01, "ex/dann.py", 239),
    ("dann", "Office31", "lr_gamma", 0.001, "ex/dann.py", 241),
    ("dann", "Office31", "lr_decay", 0.75, "ex/dann.py", 242),
    ("dann", "Office31", "weight_decay", 1e-3, "ex/dann.py", 245),
    ("dann", "Office31", "iters_per_epoch", 1000, "ex/dann.py", 252),
    ("dann", "Office31", "bottleneck_dim", 256, "ex/dann.py", 228),
    ("dan", "Office31", "lr_gamma", 0.0003, "ex/dan.py", 240),
    ("jan", "Office31", "weight_decay", 0.0005, "ex/jan.py", 263),  # --wd, stored as weight_decay
    ("mdd", "Office31", "lr", 0.004, "ex/mdd.py", 238),
    ("mdd", "Office31", "margin", 4.0, "ex/mdd.py", 231),
    ("afn", "Office31", "train_resizing", "ran.crop", "ex/afn.py", 210),
    ("erm", "OfficeHome", "lr", 0.001, "ex/erm.py", 162),
    ("bsp", "Office31", "pretrain_epochs", 3, "ex/bsp.py", 287),
    # what the scripts build, and what they all share
    ("mcd", "Office31", "lr_schedule", "constant (no scheduler)", "ex/mcd.py", 79),
    ("afn", "Office31", "backbone_lr_mult", 1.0, "tllib/normalization/afn.py", 137),
    ("dann", "Office31", "backbone_lr_mult", 0.1, "tllib/modules/classifier.py", 93),
    ("dann", "Office31", "nesterov", True, "ex/dann.py", 80),
    ("dann", "Office31", "norm_mean", (0.485, 0.456, 0.406), "ex/utils.py", 145),
    ("erm", "Office31", "bottleneck", (), "ex/erm.py", 68),
]


@pytest.mark.parametrize(("method", "dataset", "name", "value", "file", "line"), SPOT_CHECKS)
def test_values_read_from_tllib(method, dataset, name, value, file, line):
    setting = tllib_setting(method, dataset, name)
    assert setting.value == value
    assert setting.source == f"{file.replace('ex/', EX + '/')}@c4aa59e:{line}"


def _every_setting():
    yield from COMMON.items()
    for defaults in METHOD_DEFAULTS.values():
        yield from defaults.items()
    for per_dataset in PER_METHOD.values():
        for flags in per_dataset.values():
            yield from flags.items()


def test_every_setting_names_its_file_commit_and_line():
    settings = list(_every_setting())
    assert len(settings) > 300
    for name, setting in settings:
        assert SOURCE.match(setting.source), (name, setting.source)
        assert name.isidentifier() and name == name.lower()


def test_methods_cover_the_four_datasets_but_fixmatch_on_domainnet():
    # fixmatch.sh@c4aa59e has Office31, OfficeHome and VisDA2017 lines only (lines 3, 11, 25)
    assert set(METHODS) == set(PER_METHOD) == set(METHOD_DEFAULTS)
    for method in METHODS:
        expected = set(DATASETS) - ({"DomainNet"} if method == "fixmatch" else set())
        assert set(PER_METHOD[method]) == expected, method


def test_lookup_falls_back_from_script_line_to_argparse_to_common():
    on_domainnet = tllib_setting("dann", "DomainNet", "bottleneck_dim")  # dann.sh:29 passes 1024
    on_office = tllib_setting("dann", "Office31", "bottleneck_dim")  # dann.sh:3 does not: 256
    assert (on_domainnet.value, on_office.value) == (1024, 256)
    assert on_domainnet.source.split("@")[0].endswith("dann.sh")
    assert on_office.source.split("@")[0].endswith("dann.py")
    assert tllib_setting("mcc", "Office31", "ratio") is COMMON["ratio"]
    # a method that overrides a common setting: AFN builds SGD without Nesterov (afn.py:80)
    assert tllib_setting("afn", "Office31", "nesterov").value is False
    assert COMMON["nesterov"].value is True


def test_all_settings_agree_with_the_lookup():
    for method in METHODS:
        for dataset in PER_METHOD[method]:
            for name, setting in tllib_settings(method, dataset).items():
                assert tllib_setting(method, dataset, name) is setting


@pytest.mark.parametrize(("method", "dataset", "name", "words"), [
    ("swad", "Office31", "lr", "no recipe for method 'swad'"),
    ("fixmatch", "DomainNet", "lr", "no 'DomainNet' line"),
    ("dann", "PACS", "lr", "no 'PACS' line"),
    ("dann", "Office31", "margin", "no setting 'margin'"),
])
def test_what_tllib_does_not_have_is_a_user_error(method, dataset, name, words):
    with pytest.raises(UserError, match=words):
        tllib_setting(method, dataset, name)
