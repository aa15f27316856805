"""DA tasks (--source/--target), --protocol tllib resolved per dataset and method, job ids kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dgsamp.cli import main
from dgsamp.config import parse_run_config
from dgsamp.hparams import NEUTRAL_HPARAMS
from tests.helpers import REPO

OFFICE31 = ["--dataset", "Office31", "--output_dir", "/tmp/never-written"]


def test_domains_by_name_short_name_or_index_are_one_task():
    spellings = (["--source", "A", "--target", "W"], ["--source", "amazon", "--target", "webcam"],
                 ["--source", "0", "--target", "2"], ["--source", "a", "--target", "WEBCAM"])
    configs = [parse_run_config([*OFFICE31, "--protocol", "tllib", "--algorithm", "DANN", *s]) for s in spellings]
    assert {c.job_id for c in configs} == {configs[0].job_id}
    data = configs[0].data
    assert (data.source, data.target, data.test_envs, data.task, data.task_label) == \
        ((0,), (2,), (2,), "domain_adaptation", "A→W")
    args = configs[0].args
    assert (args["source"], args["target"], args["task_label"]) == ([0], [2], "A→W")


def test_target_alone_takes_every_other_domain_and_multi_source_labels():
    config = parse_run_config([*OFFICE31, "--protocol", "tllib", "--algorithm", "DANN", "--target", "D"])
    assert config.data.source == (0, 2) and config.data.task_label == "A+W→D"


def test_dg_runs_record_no_task_and_keep_their_job_ids():
    # job ids recorded by running dgsamp 5cead55 (before DA tasks and tllib's hparams existed)
    dg = parse_run_config(["--dataset", "PACSMini", "--algorithm", "ERM", "--test_envs", "0", "--output_dir", "x"])
    assert dg.job_id == "d328060014781c0814e932dfbd073484"
    assert (dg.args["source"], dg.args["target"], dg.args["task_label"]) == (None, None, None)
    assert {k: dg.hparams[k] for k in NEUTRAL_HPARAMS} == NEUTRAL_HPARAMS
    da = parse_run_config(["--protocol", "dgsamp", "--dataset", "PACSMini", "--algorithm", "DANN", "--task",
                           "domain_adaptation", "--test_envs", "3", "--output_dir", "x"])
    assert da.job_id == "056d8e69bc61e18776ae3c3e7aec6b99"
    assert da.data.task_label == "A+C+P→S" and da.data.source is None


def test_tllib_preset_reads_the_method_script_for_the_dataset():
    dann = parse_run_config([*OFFICE31, "--protocol", "tllib", "--algorithm", "DANN", "--source", "A", "--target", "W"])
    # examples/domain_adaptation/image_classification/dann.sh@c4aa59e:3 (Office31: -i default 1000, --epochs 20)
    assert (dann.schedule.epochs, dann.schedule.steps_per_epoch, dann.schedule.steps) == (20, 1000, None)
    assert dann.model.implementation == "DANN_tllib" and dann.model.backbone == "resnet50.tv_in1k"
    assert (dann.model.bottleneck, dann.model.bottleneck_width) == ("bn_relu", 256)
    # dann.py@c4aa59e argparse: --lr 0.01, --wd 1e-3, --momentum 0.9, --lr-gamma 0.001, --lr-decay 0.75, -b 32
    expected = {"optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-3, "momentum": 0.9, "nesterov": True,
                "backbone_lr_mult": 0.1, "lr_schedule": "inverse_decay", "lr_gamma": 0.001, "lr_decay": 0.75,
                "batch_size": 32, "trade_off": 1.0}
    assert {k: dann.hparams[k] for k in expected} == expected
    # erm.sh@c4aa59e:11: OfficeHome -i 500 --epochs 5; erm.py: lr 0.001, lr-gamma 0.0003, no bottleneck
    erm = parse_run_config(["--dataset", "OfficeHome", "--output_dir", "x", "--protocol", "tllib", "--algorithm",
                            "ERM", "--source", "Ar", "--target", "Cl"])
    assert (erm.schedule.epochs, erm.schedule.steps_per_epoch, erm.model.bottleneck) == (5, 500, "none")
    assert (erm.hparams["lr"], erm.hparams["lr_gamma"]) == (0.001, 0.0003)
    # dann.sh@c4aa59e:25: VisDA2017 with ResNet-101, --epochs 30
    visda = parse_run_config(["--dataset", "VisDA2017", "--output_dir", "x", "--protocol", "tllib", "--algorithm",
                              "DANN", "--source", "train", "--target", "validation"])
    assert (visda.model.backbone, visda.schedule.epochs, visda.data.task_label) == \
        ("resnet101.tv_in1k", 30, "Synthetic→Real")
    # mcd.py@c4aa59e: SGD without Nesterov, momentum 0 on the backbone-free call, constant lr
    mcd = parse_run_config([*OFFICE31, "--protocol", "tllib", "--algorithm", "MCD", "--source", "A", "--target", "W"])
    assert (mcd.hparams["lr_schedule"], mcd.hparams["nesterov"], mcd.model.bottleneck) == ("constant", False, "none")


def test_cdan_uses_tllibs_multilinear_map_choice():
    # cdan.sh@c4aa59e: Office31 without --randomized (full map); DomainNet --randomized --randomized-dim 51200
    office = parse_run_config([*OFFICE31, "--protocol", "tllib", "--algorithm", "CDAN", "--source", "A", "--target", "W"])
    assert office.hparams["multilinear_map"] == "full"
    domainnet = parse_run_config(["--dataset", "DomainNet", "--output_dir", "x", "--protocol", "tllib", "--algorithm",
                                  "CDAN", "--source", "c", "--target", "p"])
    assert (domainnet.hparams["multilinear_map"], domainnet.hparams["randomized_dim"]) == ("randomized", 51200)


def test_explicit_flags_win_over_the_tllib_preset():
    config = parse_run_config([*OFFICE31, "--protocol", "tllib", "--algorithm", "DANN", "--source", "A", "--target",
                               "W", "--lr", "0.003", "--epochs", "2", "--bottleneck", "none"])
    assert (config.hparams["lr"], config.schedule.epochs, config.model.bottleneck) == (0.003, 2, "none")


@pytest.mark.parametrize(("argv", "message"), [
    (["--source", "A", "--target", "A"], "--source and --target both name domain art_painting"),
    (["--source", "Q", "--target", "S"], "--source Q: PACSMini has no such domain"),
    (["--source", "A", "--target", "S", "--test_envs", "1"], "--test_envs and --source/--target both name"),
    (["--algorithm", "MCD"], "MCD adapts to unlabeled target data"),
    (["--source", "P"], "--source needs --target"),
    (["--source", "P", "--target", "S", "--task", "domain_generalization"], "drop --task domain_generalization"),
    (["--protocol", "dgsamp", "--bottleneck_width", "64"], "--bottleneck_width has no effect"),
    (["--lr_gamma", "0.01"], "hparam lr_gamma has no effect unless lr_schedule is inverse_decay"),
    (["--protocol", "tllib", "--source", "P", "--target", "S", "--algorithm", "DANN", "--lambda", "2"],
     "unknown hparam 'lambda' for algorithm TllibDANN"),
])
def test_bad_da_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "PACSMini", *argv, "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_da_only_method_without_target_stops_in_the_real_cli(tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "dgsamp", "train", "--dataset", "PACSMini", "--algorithm", "CDAN",
                           "--output_dir", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "CDAN adapts to unlabeled target data" in done.stderr and not out.exists()
