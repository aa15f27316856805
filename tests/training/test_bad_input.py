"""The bad-input catalogue: each user mistake exits with code 2 and one line, no traceback."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest

from dgsamp.cli import main
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
        (["--gradsamp", "periodic", "--gradsamp_period", "1"], "--gradsamp_period must be an integer >= 2"),
        (["--gradsamp", "periodic", "--gradsamp_warmup", "1"], "--gradsamp_warmup must be an integer >= 2"),
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


# ------------------------------------------------------------------ issue 7 additions
# These go through dgsamp.cli.main in-process (the same function `python -m dgsamp` exits
# with), which is faster than a subprocess; test_sweep_yaml_that_is_not_yaml_subprocess
# checks one of them end to end in a real process.
def assert_main_one_line_error(argv: list[str], capsys, expected: str) -> str:
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert expected in lines[0], lines[0]
    return lines[0]


def mnist_root_with(tmp_path, shared_data, name: str, data: bytes):
    """A copy of MNIST/raw where ``name`` holds ``data``; the other files link to the real ones."""
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for real in (shared_data / "MNIST" / "raw").iterdir():
        if real.name != name:
            (raw / real.name).symlink_to(real)
    (raw / name).write_bytes(data)
    return raw.parents[1]


@pytest.mark.parametrize("how", ["gzip stream cut", "idx body cut"])
def test_truncated_mnist_idx_file_names_the_file(tmp_path, shared_data, capsys, how):
    name = "train-images-idx3-ubyte.gz"
    real = shared_data / "MNIST" / "raw" / name
    if how == "gzip stream cut":
        data = real.read_bytes()[: 64 * 1024]
    else:  # a valid gzip of an idx file whose header promises 60000 images but holds 100
        with gzip.open(real, "rb") as handle:
            data = gzip.compress(handle.read(16 + 28 * 28 * 100))
    root = mnist_root_with(tmp_path, shared_data, name, data)
    line = assert_main_one_line_error(
        ["train", *TINY_RUN, "--dataset", "RotatedMNIST", "--backbone", "mnist_cnn", "--data_dir", str(root),
         "--output_dir", str(tmp_path / "run")],
        capsys, name,
    )
    assert "download it again" in line


SWEEP_COMMAND = "command:\n  - ${env}\n  - ${program}\n  - train\n  - ${args}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("method: grid\nparameters: [1, 2\n  : - :\n", "is not valid YAML"),
        ("method: grid\n\tparameters: {lr: {value: 1}}\n", "is not valid YAML"),
        (b"\xff\xfe\x00 binary junk", "is not valid YAML"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("", "must be a YAML mapping"),
        ("method: hyperband\nparameters:\n  lr: {values: [0.1]}\n" + SWEEP_COMMAND, "method must be one of"),
        ("method: grid\nparameters:\n  lr: {values: 0.1}\n" + SWEEP_COMMAND, "'values' must be a non-empty list"),
        ("method: grid\nparameters:\n  lr: {vals: [0.1]}\n" + SWEEP_COMMAND, "has unknown keys ['vals']"),
        ("method: grid\nparameters: {}\n" + SWEEP_COMMAND, "'parameters' must be a non-empty mapping"),
        ("method: grid\nsearch: grid\nparameters:\n  lr: {value: 1}\n" + SWEEP_COMMAND, "unknown top-level keys"),
        ("method: grid\nparameters:\n  lr: {value: 1}\ncommand: dgsamp train\n", "'command' must be a list"),
        ("method: grid\nparameters:\n  lr: {value: 1}\ncommand:\n  - train\n", "exactly one of"),
        ("method: grid\nrun_cap: -1\nparameters:\n  lr: {value: 1}\n" + SWEEP_COMMAND, "run_cap must be"),
    ],
    ids=["flow-error", "tab-indent", "binary", "list", "empty", "method", "values-scalar", "unknown-spec-key",
         "no-parameters", "top-level-key", "command-string", "no-args-macro", "run-cap"],
)
def test_bad_sweep_yaml(tmp_path, capsys, text, expected):
    sweep = tmp_path / "bad.yaml"
    if isinstance(text, bytes):
        sweep.write_bytes(text)
    else:
        sweep.write_text(text)
    line = assert_main_one_line_error(
        ["sweep", "launch", str(sweep), "--output_dir", str(tmp_path / "sweep")], capsys, expected
    )
    assert str(sweep) in line
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").iterdir())


def test_sweep_yaml_that_is_not_yaml_subprocess(tmp_path):
    sweep = tmp_path / "bad.yaml"
    sweep.write_text("method: grid\nparameters: [1, 2\n")
    completed = run_cli("sweep", "launch", str(sweep), "--output_dir", str(tmp_path / "sweep"))
    assert_one_line_error(completed, "is not valid YAML")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux sysfs")
def test_output_dir_under_sysfs_is_not_writable_even_for_root(tmp_path, capsys):
    # sysfs refuses mkdir to every user, root included, unlike a chmod-ed directory
    assert_main_one_line_error(
        ["train", *TINY_RUN, "--output_dir", "/sys/dgsamp-test-run"], capsys, "not writable"
    )
    assert not Path("/sys/dgsamp-test-run").exists()
