"""The bad-input catalogue: each user mistake exits with code 2 and one line, no traceback."""

from __future__ import annotations

import os
import shutil

import pytest

from tests.helpers import TINY_RUN, run_cli


def assert_one_line_error(completed, expected: str) -> None:
    assert completed.returncode == 2, (completed.returncode, completed.stderr)
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert "Traceback" not in completed.stderr
    assert expected in lines[0], lines[0]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--dataset", "Nope"], "unknown dataset 'Nope'; known:"),
        (["--algorithm", "Nope"], "unknown algorithm 'Nope'; known:"),
        (["--backbone", "not_a_model"], "unknown backbone 'not_a_model'"),
        (["--plugin", "/no/such/plugin.py"], "plugin file not found"),
        (["--test_envs", "4"], "out of range"),
        (["--test_envs", "0", "1", "2", "3"], "leave at least one"),
        (["--hparams", "{lr: 1"], "--hparams is not valid JSON"),
        (["--hparams", '{"no_such_hparam": 1}'], "unknown hparam 'no_such_hparam'"),
        (["--gradsamp", "periodic", "--gradsamp_period", "1"], "--gradsamp_period must be at least 2"),
        (["--gradsamp", "periodic", "--gradsamp_warmup", "1"], "--gradsamp_warmup must be at least 2"),
        (["--epochs", "zero"], "invalid int value"),
        (["--lr", "-1"], "lr must be positive"),
        (["--no_such_flag", "1"], "unrecognized arguments"),
    ],
)
def test_bad_flags(tmp_path, argv, expected):
    completed = run_cli("train", *TINY_RUN, "--output_dir", str(tmp_path / "run"), *argv)
    assert_one_line_error(completed, expected)


def test_missing_data_dir_says_where_and_how(tmp_path):
    completed = run_cli("train", *TINY_RUN, "--dataset", "PACS", "--data_dir", str(tmp_path / "nothing"),
                        "--output_dir", str(tmp_path / "run"))
    assert_one_line_error(completed, "PACS")
    assert str(tmp_path / "nothing") in completed.stderr


def test_corrupt_image_names_the_file(tmp_path, shared_data):
    root = tmp_path / "data"
    shutil.copytree(shared_data / "pacs_mini" / "PACS", root / "PACS")
    victim = sorted((root / "PACS" / "cartoon" / "dog").iterdir())[0]
    victim.write_bytes(b"\xff\xd8 this is not a jpeg")
    completed = run_cli("train", *TINY_RUN, "--dataset", "PACS", "--data_dir", str(root),
                        "--output_dir", str(tmp_path / "run"))
    assert_one_line_error(completed, victim.name)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere; chmod cannot make a dir unwritable")
def test_unwritable_output_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    completed = run_cli("train", *TINY_RUN, "--output_dir", str(locked / "run"))
    assert_one_line_error(completed, "not writable")


def test_output_dir_that_is_a_file(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    completed = run_cli("train", *TINY_RUN, "--output_dir", str(target / "run"))
    assert_one_line_error(completed, "not writable")
