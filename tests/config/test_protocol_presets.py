"""``--protocol``: each preset's settings per dataset, explicit flags on top, bad values refused."""

from __future__ import annotations

import pytest

from dgsamp.backbones.factory import create_backbone
from dgsamp.cli import main
from dgsamp.config import parse_run_config
from dgsamp.config.presets import PROTOCOLS, markdown_table
from tests.helpers import REPO

COMMITS = {"2020": "7df6f06", "2024": "3dfdc8e"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # DomainBed's datasets.py N_STEPS / CHECKPOINT_FREQ; 2020: evaluate at s % F == 0 only
        (["--dataset", "PACS", "--algorithm", "CORAL"],
         dict(protocol="domainbed2020", backbone="resnet50.tv_in1k", steps=5001, checkpoint_freq=300,
              evaluate_last_step=False, epochs=17, freeze_bn=True, featurizer_passes="per_domain",
              eval_augmentation="train_domains", unlabeled_split="uda", uda_holdout_fraction=0.0)),
        (["--dataset", "PACS", "--protocol", "domainbed2024"],  # ERM passes all domains at once anyway
         dict(backbone="resnet50.ram_in1k", steps=5001, checkpoint_freq=300, evaluate_last_step=True,
              epochs=18, freeze_bn=False, featurizer_passes="joint", eval_augmentation="train_domains")),
        (["--dataset", "DomainNet", "--algorithm", "GroupDRO"],
         dict(checkpoint_freq=1000, epochs=6, featurizer_passes="per_domain")),
        (["--dataset", "ColoredMNIST", "--algorithm", "Mixup"],  # MNIST CNN: GroupNorm, no augmentation
         dict(backbone="mnist_cnn", steps=5001, checkpoint_freq=100, epochs=51, freeze_bn=False,
              featurizer_passes="per_domain", eval_augmentation="none")),
        (["--dataset", "PACSMini"],  # offline: packaged weights, a short budget (documented)
         dict(backbone="tf_efficientnet_lite0", steps=51, checkpoint_freq=10, epochs=6, freeze_bn=True)),
        (["--dataset", "PACS", "--protocol", "dgsamp", "--algorithm", "MMD"],  # the behaviour before presets
         dict(backbone="tf_efficientnet_lite0", steps=None, checkpoint_freq=None, epochs=5, freeze_bn=False,
              featurizer_passes="joint", eval_augmentation="none", unlabeled_split="test_in")),
    ],
)
def test_presets_set_every_protocol_setting(argv, expected):
    config = parse_run_config(argv)
    assert {name: config.args[name] for name in expected} == expected
    assert config.args["protocol"] == config.schedule.protocol  # what results lines record


def test_bare_train_is_domainbed2020_and_explicit_flags_win():
    assert parse_run_config([]).schedule.protocol == "domainbed2020"
    config = parse_run_config([
        "--dataset", "PACS", "--algorithm", "CORAL", "--backbone", "resnet18", "--freeze_bn", "false",
        "--featurizer_passes", "joint", "--eval_augmentation", "none", "--checkpoint_freq", "1000",
    ])
    assert (config.model.backbone, config.model.freeze_bn, config.model.featurizer_passes, config.data.eval_augmentation) == \
        ("resnet18", False, "joint", "none")
    assert (config.schedule.steps, config.schedule.checkpoint_freq, config.schedule.epochs) == (5001, 1000, 6)
    epochs = parse_run_config(["--dataset", "PACS", "--epochs", "3", "--steps_per_epoch", "7"])
    assert (epochs.schedule.steps, epochs.schedule.checkpoint_freq, epochs.schedule.epochs, epochs.schedule.steps_per_epoch) == (None, None, 3, 7)
    steps = parse_run_config(["--protocol", "dgsamp", "--dataset", "VLCS", "--steps", "1000"])
    assert (steps.schedule.steps, steps.schedule.checkpoint_freq, steps.schedule.epochs) == (1000, 300, 5)  # 0, 300, 600, 900, 999
    assert parse_run_config(["--protocol", "dgsamp", "--freeze_bn"]).model.freeze_bn is True
    assert parse_run_config(["--protocol", "domainbed2024", "--task", "domain_adaptation",
                             "--uda_holdout_fraction", "0.2"]).data.uda_holdout_fraction == 0.2
    same = ["--dataset", "PACS", "--epochs", "3"]
    assert parse_run_config(same).job_id != parse_run_config([*same, "--protocol", "domainbed2024"]).job_id


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--protocol", "domainbed2021"], "argument --protocol: invalid choice: 'domainbed2021'"),
        (["--steps", "0"], "--steps must be at least 1, got 0"),
        (["--steps", "ten"], "argument --steps: invalid int value"),
        (["--checkpoint_freq", "0"], "--checkpoint_freq must be at least 1, got 0"),
        (["--steps", "100", "--epochs", "2"], "--steps and --epochs both set the training length"),
        (["--protocol", "dgsamp", "--checkpoint_freq", "5"], "--checkpoint_freq has no effect when training is "
                                                             "counted in epochs"),
        (["--steps_per_epoch", "3"], "--steps_per_epoch has no effect when training is counted in steps"),
        (["--uda_holdout_fraction", "1.5"], "--uda_holdout_fraction must be in [0, 1), got 1.5"),
        (["--protocol", "dgsamp", "--uda_holdout_fraction", "0.2"], "--uda_holdout_fraction has no effect without"),
        (["--task", "domain_adaptation"], "give --uda_holdout_fraction > 0"),
        (["--featurizer_passes", "per_domain"], "--featurizer_passes per_domain has no effect on ERM"),
        (["--featurizer_passes", "each"], "argument --featurizer_passes: invalid choice: 'each'"),
        (["--eval_augmentation", "always"], "argument --eval_augmentation: invalid choice: 'always'"),
        (["--eval_augmentation", "train_domains", "--data_augmentation", "false"],
         "--eval_augmentation train_domains has no effect: augmentation is off"),
        (["--dataset", "ColoredMNIST", "--eval_augmentation", "train_domains"], "ColoredMNIST is not augmented"),
        (["--freeze_bn", "maybe"], "argument --freeze_bn: expected true or false, got 'maybe'"),
        (["--dataset", "RotatedMNIST", "--freeze_bn"], "--freeze_bn has no effect on backbone mnist_cnn"),
    ],
)
def test_bad_protocol_flags_are_one_line_and_exit_2(tmp_path, capsys, argv, expected):
    run_dir = tmp_path / "run"
    assert main(["train", "--output_dir", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and expected in err, err
    assert not run_dir.exists()


def test_docs_show_every_preset_setting_and_its_source():
    docs = (REPO / "docs" / "protocol.md").read_text()
    assert markdown_table() in docs, "docs/protocol.md lacks the current presets table (presets.markdown_table)"
    for protocol in PROTOCOLS.values():
        assert set(protocol.settings) == set(PROTOCOLS["dgsamp"].settings)
    table = markdown_table()
    assert all(commit in table for commit in COMMITS.values())


def test_a_bare_pacsmini_run_needs_no_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = parse_run_config(["--dataset", "PACSMini", "--algorithm", "ERM", "--test_envs", "0"])
    assert (config.schedule.protocol, config.model.backbone, config.model.pretrained) == ("domainbed2020", "tf_efficientnet_lite0", "auto")
    backbone = create_backbone(config.model.backbone, (3, 224, 224), config.model.pretrained, None,
                               config.model.resolution, config.model.freeze_bn)
    assert backbone.weights == "packaged" and backbone.featurizer.freeze_bn
