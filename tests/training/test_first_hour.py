"""A newcomer's first hour (issue 23): what `dgsamp train` says it will do, and the run
directory mistakes it answers with one line and exit 2 before any work."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dgsamp.backbones.pretrained import load_checkpoint_file
from dgsamp.backbones.weights import find_weights, unreachable_reason
from dgsamp.config import parse_run_config
from dgsamp.errors import UserError
from dgsamp.training.describe import describe_run
from tests.helpers import TINY_RUN, read_results, run_cli, train_in_process

ONE_STEP = ["--epochs", "1", "--steps_per_epoch", "1"]


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ------------------------------------------------------------------ the line before any work
def weights_of(config):
    return find_weights(config.model.backbone, config.model.pretrained, config.model.pretrained_file)


def test_describe_names_domains_length_backbone_weights_and_device():
    dg = parse_run_config(["--dataset", "PACSMini", "--protocol", "domainbed2024", "--test_envs", "1", "3",
                           "--device", "cpu"])
    # PACS domains in DomainBed's order: art_painting, cartoon, photo, sketch; PACSMini: 51 steps, every 10
    assert describe_run(dg, weights_of(dg)) == ("train PACSMini: test domains cartoon, sketch (DG), protocol domainbed2024, "
                                "51 steps evaluated every 10, ERM on backbone tf_efficientnet_lite0 "
                                "(weights: packaged), device cpu")
    da = parse_run_config(["--protocol", "dgsamp", "--task", "domain_adaptation", "--algorithm", "DANN",
                           "--test_envs", "2", "--epochs", "3", "--steps_per_epoch", "4",
                           "--backbone", "test_efficientnet", "--pretrained", "none", "--device", "cpu"])
    assert describe_run(da, weights_of(da)) == ("train PACSMini: source art_painting, cartoon, sketch -> target photo (DA), "
                                "protocol dgsamp, 3 epochs of 4 steps, DANN on backbone test_efficientnet "
                                "(weights: none (random init)), device cpu")


def test_the_line_comes_first_in_a_log(tmp_path, capsys):
    assert train_in_process(tmp_path / "run", *ONE_STEP) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("train PACSMini: test domain art_painting (DG), protocol dgsamp, 1 epoch of 1 steps")
    assert out[1].startswith("epoch 1 (step 0)")


def test_an_unreachable_host_is_known_at_once():
    import socket

    with socket.socket() as server:  # a port that was free a moment ago: nobody listens there
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
    assert "cannot reach 127.0.0.1:" in unreachable_reason(f"http://127.0.0.1:{port}/weights.pth")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert unreachable_reason(f"http://127.0.0.1:{server.getsockname()[1]}/x") is None


# ------------------------------------------------------------------ run directory mistakes
def test_output_dir_dot_with_no_resume_moves_the_old_run_aside(tmp_path, monkeypatch, capsys):
    run_dir = tmp_path / "here"
    run_dir.mkdir()
    (run_dir / "results.jsonl").write_text('{"old": 1}\n')
    monkeypatch.chdir(run_dir)
    assert train_in_process(Path("."), *ONE_STEP, "--no_resume") == 0
    asides = list(tmp_path.glob("here.old-*"))
    assert len(asides) == 1 and (asides[0] / "results.jsonl").read_text() == '{"old": 1}\n'
    assert len(read_results(run_dir)) == 1 and (run_dir / "done").exists()


def test_an_unrelated_non_empty_dir_is_refused(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("my thesis")
    assert train_in_process(tmp_path, *ONE_STEP) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--output_dir" in line and "notes.txt" in line and "--no_resume" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] and notes.read_text() == "my thesis"


def test_a_refused_run_leaves_no_directory_behind(tmp_path, capsys):
    run_dir = tmp_path / "a" / "b"
    assert train_in_process(run_dir, "--data_dir", str(tmp_path)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("dgsamp: error: --data_dir has no effect with --dataset PACSMini")
    assert not (tmp_path / "a").exists()


def test_a_second_train_on_the_same_dir_is_refused_while_the_first_runs(tmp_path):
    run_dir = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DGSAMP_TEST_PAUSE_AT": "train:1"}
    first = subprocess.Popen([sys.executable, "-m", "dgsamp", "train", *TINY_RUN, "--output_dir", str(run_dir)],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300  # a guard against a hung child, not a timing assertion
        while not (run_dir / ".paused-train-1").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        second = run_cli("train", *TINY_RUN, "--output_dir", str(run_dir))
        assert second.returncode == 2
        line = one_error_line(second.stderr)
        assert f"another dgsamp train is running in {run_dir}" in line and str(first.pid) in line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert train_in_process(run_dir) == 0  # the lock died with the process: the run resumes


NAN_FROM_THE_START = '''
from dgsamp.algorithms.erm import ERM
from dgsamp.registry import register_algorithm


@register_algorithm("NaNInputsFromTheStart")
class NaNInputsFromTheStart(ERM):
    def update(self, minibatches, unlabeled=None):
        return super().update([(x * float("nan"), y) for x, y in minibatches], unlabeled)
'''


def test_divergence_before_any_checkpoint_does_not_claim_one(tmp_path):
    plugin = tmp_path / "nan.py"
    plugin.write_text(NAN_FROM_THE_START)
    completed = run_cli("train", *TINY_RUN, "--plugin", str(plugin), "--algorithm", "NaNInputsFromTheStart",
                        "--output_dir", str(tmp_path / "run"))
    assert completed.returncode == 2
    line = one_error_line(completed.stderr)
    assert "non-finite training loss 'loss' in epoch 1" in line and "no checkpoint was written" in line
    assert "last good checkpoint" not in line


@pytest.mark.parametrize(("content", "says"), [(b"a,b\n1,2\n", "it starts with a,b"), (b"", "it is empty")])
def test_a_pretrained_file_that_is_no_checkpoint(tmp_path, content, says):
    path = tmp_path / "weights.txt"
    path.write_bytes(content)
    with pytest.raises(UserError) as error:
        load_checkpoint_file(torch.nn.Linear(2, 2), path)
    assert "is not a PyTorch checkpoint" in str(error.value) and says in str(error.value)
