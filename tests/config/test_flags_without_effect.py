"""One parse-and-validate path: flags that cannot have an effect, impossible schedules and
batches that cannot fit are refused with one line, before any work (and by sweep launch
before any job starts)."""

from __future__ import annotations

import pytest
import yaml

from dgsamp.config import RunConfig, parse_run_config
from dgsamp.errors import UserError
from tests.helpers import TINY_RUN, run_cli


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--ssprop_keep", "0.3"], "--ssprop_keep has no effect without --ssprop constant|linear|cosine|bar"),
        (["--ssprop", "constant", "--ssprop_keep_min", "0.1"], "--ssprop_keep_min has no effect without --ssprop "
         "linear|cosine|bar"),
        (["--gradsamp_period", "4"], "--gradsamp_period has no effect without --gradsamp periodic"),
        (["--gradsamp", "random", "--gradsamp_period", "4"], "--gradsamp_period has no effect without --gradsamp "
         "periodic"),
        (["--gradsamp", "periodic", "--gradsamp_scale", "0.5"], "--gradsamp_scale has no effect without "
         "--gradsamp_dist element"),
        (["--gradsamp", "periodic", "--gradsamp_allow_consecutive"], "--gradsamp_allow_consecutive has no effect"),
        (["--gradsamp", "periodic", "--epochs", "2"], "--gradsamp periodic samples no epoch of this 2-epoch run"),
        (["--gradsamp", "periodic", "--gradsamp_warmup", "5", "--epochs", "5"], "samples no epoch"),
        (["--gradsamp", "random", "--gradsamp_prob", "0", "--epochs", "5"], "samples no epoch"),
        (["--ssprop", "constant", "--ssprop_warmup", "3", "--epochs", "3"], "keeps every epoch of this 3-epoch "
         "run dense"),
        (["--ssprop", "constant", "--ssprop_keep", "1.0"], "keeps every epoch"),
        (["--ssprop", "linear", "--ssprop_keep", "0.2", "--ssprop_keep_min", "0.5"], "--ssprop_keep_min must be in"),
        (["--test_envs", "0", "0"], "--test_envs names domain 0 twice"),
        (["--gradsamp", "periodic", "--gradsamp_period", "1", "--epochs", "6"], "--gradsamp_period must be an "
         "integer >= 2"),
    ],
)
def test_refused_with_one_line(argv, expected):
    with pytest.raises(UserError) as error:
        parse_run_config(["--dataset", "PACSMini", "--epochs", "4", *argv])
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_mode_options_are_typed_defaulted_and_in_the_flat_args():
    config = parse_run_config(["--gradsamp", "periodic", "--epochs", "6", "--ssprop", "cosine"])
    assert isinstance(config, RunConfig) and config.active_modes == ["gradsamp", "ssprop"]
    assert config.modes["gradsamp"]["gradsamp_period"] == 3 and config.modes["ssprop"]["ssprop_keep_min"] == 0.2
    assert config.args["gradsamp_period"] == 3 and config.args["test_envs"] == [0]
    with pytest.raises(TypeError):
        config.modes["gradsamp"]["gradsamp_period"] = 4  # frozen
    off = parse_run_config(["--gradsamp", "off"])
    assert off.active_modes == [] and off.job_id == parse_run_config([]).job_id


def test_a_batch_that_cannot_fit_fails_before_training_naming_the_flag(tmp_path):
    run_dir = tmp_path / "run"
    completed = run_cli("train", *TINY_RUN, "--batch_size", "100000000", "--output_dir", str(run_dir))
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgsamp: error: --batch_size 100000000 does not fit"), lines
    assert "use --batch_size" in lines[0] and not run_dir.exists()


def test_sweep_launch_refuses_a_job_that_train_would_refuse_before_starting_any(tmp_path):
    sweep = {
        "name": "bad", "program": "dgsamp", "method": "grid",
        "command": ["${env}", "${program}", "train", "${args}"],
        "parameters": {"dataset": {"value": "PACSMini"}, "epochs": {"value": 4},
                       "gradsamp": {"values": ["periodic"]}, "gradsamp_period": {"values": [3, 1]}},
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(sweep))
    completed = run_cli("sweep", "launch", str(path), "--output_dir", str(tmp_path / "out"))
    assert completed.returncode == 2
    assert "--gradsamp_period must be an integer >= 2" in completed.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
