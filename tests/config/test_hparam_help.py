"""--help describes the hparams of the algorithm being trained; records rebuild their config."""

from __future__ import annotations

import json

import pytest

from dgsamp.cli import main
from dgsamp.config import RunConfig, parse_run_config
from dgsamp.config.hparam_flags import search_range
from dgsamp.hparams import HParam


def help_text(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit):
        main(["train", *argv, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_help_for_dann_shows_danns_lambda_and_hides_other_algorithms_hparams(capsys):
    text = help_text(capsys, ["--algorithm", "DANN"])
    assert "hyperparameters of DANN" in text
    # DANN declares lambda: default 1.0, valid >= 0, drawn as 10**U(-2, 2) (algorithms/dann.py)
    assert "--lambda FLOAT adversarial weight λ (DomainBed's name) (default 1.0; valid: at least 0;" in text
    assert "1000.0" not in text.rsplit("--lambda FLOAT", 1)[1].split(" --", 1)[0]
    assert "--lr_d" in text and "--ema " not in text  # Transfer's/Fishr's hparams are not DANN's


def test_help_without_algorithm_names_every_user_of_a_shared_name(capsys):
    text = help_text(capsys, [])
    entry = text.rsplit("--lambda FLOAT", 1)[1].split(" --", 1)[0]  # the option's entry, after the usage
    assert "CDANN, DANN: adversarial weight λ (DomainBed's name) (default 1.0)" in entry
    assert "Fishr:" in entry and "(default 1000.0)" in entry


def test_search_range_is_what_the_sampler_draws():
    spec = HParam(1.0, lambda r: 10 ** r.uniform(-2, 2), "x")
    low, high = (float(v) for v in search_range(spec).split(" to "))
    assert 0.01 <= low < 0.02 and 80 < high <= 100  # 200 draws of 10**U(-2, 2) reach near both ends
    assert search_range(HParam("adam", lambda r: "adam", "x")) == "fixed at 'adam'"


def test_a_bad_hparams_json_value_is_refused_even_when_a_flag_replaces_it(capsys):
    code = main(["train", "--dataset", "PACSMini", "--hparams", '{"lr": -1}', "--lr", "0.001",
                 "--output_dir", "/tmp/never-written"])
    assert code == 2 and "lr must be positive, got -1" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["--dataset", "PACSMini", "--algorithm", "CORAL", "--gradsamp", "periodic", "--epochs", "6"],
    ["--protocol", "tllib", "--dataset", "Office31", "--algorithm", "DANN", "--source", "A", "--target", "W"],
])
def test_a_results_lines_args_rebuild_the_same_config(argv):
    config = parse_run_config([*argv, "--output_dir", "/tmp/never-written"])
    record = json.loads(json.dumps(config.to_dict()))  # as a results line stores it
    rebuilt = RunConfig.from_record(record["args"], record["hparams"])
    assert rebuilt == config and rebuilt.job_id == config.job_id
