"""``dgsamp adapt`` on real tiny PACSMini runs: the selected model is the one adapted, every
method is deterministic on the CPU, bad input is one line and exit 2, the source run's files
are never changed, and the leaderboard shows ``ERM + T3A``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from dgsamp.adaptation.methods import METHODS
from dgsamp.adaptation.stream import adapt_on_stream
from dgsamp.cli import main
from dgsamp.data.training_data import DomainTensors
from dgsamp.ensembles.evaluation_setup import EvaluationSetup
from dgsamp.tracking import schema
from dgsamp.tracking.adaptation_naming import ADAPT_ENERGY_J, ADAPT_FLOPS, ARG_ADAPTATION, LABELS
from dgsamp.training.selected_model import SELECTED_MODEL_FILE
from tests.helpers import read_results, run_cli, train_in_process

SPLITS = [f"env{env}_{part}" for env in range(4) for part in ("in", "out")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """``erm``: a tiny ERM run keeping its selected model; ``nonlinear``: one whose classifier
    is an MLP (T3A cannot wrap it)."""
    root = tmp_path_factory.mktemp("runs")
    assert train_in_process(root / "erm", "--keep_checkpoints", "selected", "--energy", "none") == 0
    assert train_in_process(root / "nonlinear", "--keep_checkpoints", "selected", "--energy", "none",
                            "--hparams", '{"nonlinear_classifier": true}') == 0
    return root


def file_hashes(run_dir: Path) -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(run_dir.iterdir())}


def test_selected_model_file_holds_the_model_training_domain_validation_selects(runs):
    records = read_results(runs / "erm")
    selected, _ = schema.best_training_domain_record(records, [0])
    saved = torch.load(runs / "erm" / SELECTED_MODEL_FILE, weights_only=True)
    assert (saved[schema.EPOCH], saved[schema.STEP]) == (selected[schema.EPOCH], selected[schema.STEP])
    setup = EvaluationSetup.from_args(records[0]["args"], records[0]["hparams"], "cpu")
    model = setup.build_algorithm(records[0]["args"], records[0]["hparams"], saved["state_dict"])
    accuracies = setup.evaluate(model).accuracies
    assert accuracies == {f"{split}_acc": selected[f"{split}_acc"] for split in SPLITS}


@pytest.fixture(scope="module")
def adapted(runs, tmp_path_factory) -> tuple[Path, dict[str, str], dict[str, str]]:
    """``dgsamp adapt`` of ``erm`` with t3a and tent, as subprocesses; the source's file hashes
    before and after."""
    root = tmp_path_factory.mktemp("adapted")
    before = file_hashes(runs / "erm")
    for method in ("t3a", "tent"):
        result = run_cli("adapt", str(runs / "erm"), "--method", method, "--output_dir", str(root / method),
                         "--energy", "none", "--device", "cpu")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"done: {LABELS[method]} ood_acc ")
    return root, before, file_hashes(runs / "erm")


def test_adapt_subprocess_writes_runs_the_leaderboard_labels(runs, adapted):
    root, before, after = adapted
    assert after == before  # no file of the source run changed
    for method in ("t3a", "tent"):
        assert sorted(path.name for path in (root / method).iterdir()) == ["done", "results.jsonl", "summary.json"]
        (line,) = read_results(root / method)
        spec = line["args"][ARG_ADAPTATION]
        source = read_results(runs / "erm")
        selected, _ = schema.best_training_domain_record(source, [0])
        assert spec["method"] == method and spec["source_job_id"] == json.loads(
            (runs / "erm" / "summary.json").read_text())[schema.JOB_ID]
        assert spec["hparams"] == METHODS[method].HPARAMS and spec["batch_size"] == 32
        assert (line[schema.EPOCH], line[schema.STEP]) == (selected[schema.EPOCH], selected[schema.STEP])
        assert all(0.0 <= line[f"{split}_acc"] <= 1.0 for split in SPLITS)
        assert line[schema.OOD_ACC] == line["env0_in_acc"]
        assert line[ADAPT_FLOPS] > 0 and line[ADAPT_ENERGY_J] is None  # --energy none: unmeasured, never 0
        assert line[schema.CUM_TRAIN_FLOPS] == source[-1][schema.CUM_TRAIN_FLOPS]
    tent_flops = read_results(root / "tent")[0][ADAPT_FLOPS]
    assert tent_flops > read_results(root / "t3a")[0][ADAPT_FLOPS]  # Tent also runs a backward
    board = run_cli("leaderboard", str(runs / "erm"), str(root / "t3a"), str(root / "tent"))
    assert board.returncode == 0, board.stderr
    labels = [row.split("|")[1].strip() for row in board.stdout.splitlines() if row.startswith("| ERM")]
    assert {"ERM", "ERM + T3A", "ERM + Tent"} <= set(labels)
    # the adaptation's own cost, beside the training cost the row shares with ERM (one run each)
    train_flops = source[-1][schema.CUM_TRAIN_FLOPS]
    for method in ("t3a", "tent"):
        flops = read_results(root / method)[0][ADAPT_FLOPS]
        assert (f"- ERM + {LABELS[method]}: adaptation energy n/a, {flops:.2e} FLOPs "
                f"(+{100 * flops / train_flops:.1f} % of training FLOPs) on top of training") in board.stdout
    rows = {row["label"]: row for row in json.loads(run_cli(
        "leaderboard", str(runs / "erm"), str(root / "t3a"), "--format", "json").stdout)["tables"][0]["rows"]}
    assert rows["ERM + T3A"]["adapt_flops"] == read_results(root / "t3a")[0][ADAPT_FLOPS]
    assert rows["ERM + T3A"]["adapt_energy_kJ"] is None and "adapt_flops" not in rows["ERM"]
    assert rows["ERM + T3A"]["flops"] == rows["ERM"]["flops"] == train_flops


def test_every_method_is_deterministic_on_the_cpu(runs):
    records = read_results(runs / "erm")
    args, hparams = records[0]["args"], records[0]["hparams"]
    setup = EvaluationSetup.from_args(args, hparams, "cpu")
    saved = torch.load(runs / "erm" / SELECTED_MODEL_FILE, weights_only=True)
    algorithm = setup.build_algorithm(args, hparams, saved["state_dict"])
    whole = setup.data.eval_splits["env0_in"]
    stream = DomainTensors(whole.x[:40], whole.y[:40])  # two batches of 32 and 8
    for method, cls in METHODS.items():
        results = [adapt_on_stream(lambda cls=cls: cls(algorithm, {}), stream, setup.transform, 32, 5,
                                   setup.autocast) for _ in range(2)]
        assert results[0] == results[1], method
        assert results[0].items == len(stream) and results[0].flops > 0


def refused(capsys, *argv: str) -> str:
    assert main(["adapt", *argv, "--energy", "none", "--device", "cpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dgsamp: error: ")
    return err


def test_bad_input_is_one_line_and_exit_2_and_leaves_nothing(runs, tmp_path, capsys):
    unfinished = shutil.copytree(runs / "erm", tmp_path / "unfinished")
    (unfinished / "done").unlink()
    assert "not a finished run" in refused(capsys, str(unfinished), "--method", "t3a",
                                           "--output_dir", str(tmp_path / "o1"))
    plain = shutil.copytree(runs / "erm", tmp_path / "plain")
    (plain / SELECTED_MODEL_FILE).unlink()
    assert "--keep_checkpoints selected" in refused(capsys, str(plain), "--method", "t3a",
                                                    "--output_dir", str(tmp_path / "o2"))
    assert "linear classifier" in refused(capsys, str(runs / "nonlinear"), "--method", "t3a",
                                          "--output_dir", str(tmp_path / "o3"))
    assert "has no hparam" in refused(capsys, str(runs / "erm"), "--method", "tent", "--adapt_hparams",
                                      '{"filter_K": 5}', "--output_dir", str(tmp_path / "o4"))
    stale = shutil.copytree(runs / "erm", tmp_path / "stale")
    saved = torch.load(stale / SELECTED_MODEL_FILE, weights_only=True)
    torch.save({**saved, schema.EPOCH: 99}, stale / SELECTED_MODEL_FILE)
    assert "retrain it" in refused(capsys, str(stale), "--method", "t3a", "--output_dir", str(tmp_path / "o5"))
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 6))


def test_a_done_adaptation_is_not_redone_and_an_adapted_run_is_not_adapted_again(runs, adapted, capsys):
    root = adapted[0]
    written = file_hashes(root / "t3a")
    assert main(["adapt", str(runs / "erm"), "--method", "t3a", "--output_dir", str(root / "t3a"),
                 "--energy", "none", "--device", "cpu"]) == 0
    assert file_hashes(root / "t3a") == written
    assert "already done" in capsys.readouterr().err
    assert "already a test-time adaptation" in refused(capsys, str(root / "t3a"), "--method", "tent",
                                                       "--output_dir", str(root / "again"))
    assert "holds another finished run" in refused(capsys, str(runs / "erm"), "--method", "t3a",
                                                   "--output_dir", str(root / "tent"))


def test_a_diwa_ensemble_is_adapted_through_its_averaged_weights_and_eoa_is_refused(runs, tmp_path, capsys):
    for method in ("diwa_uniform", "eoa"):
        assert main(["ensemble", str(runs / "erm"), "--method", method, "--output_dir", str(tmp_path / method),
                     "--energy", "none", "--device", "cpu"]) == 0
    assert main(["adapt", str(tmp_path / "diwa_uniform"), "--method", "bn_adapt", "--output_dir",
                 str(tmp_path / "diwa_bn"), "--energy", "none", "--device", "cpu"]) == 0
    (line,) = read_results(tmp_path / "diwa_bn")
    assert line["args"]["ensemble"]["method"] == "diwa_uniform" and line["args"][ARG_ADAPTATION]["method"] == "bn_adapt"
    board = run_cli("leaderboard", str(tmp_path / "diwa_bn"))
    assert "| ERM + DiWA-uniform(1) + BN-Adapt |" in board.stdout, board.stdout + board.stderr
    capsys.readouterr()  # the commands' own log lines
    assert "EoA ensemble" in refused(capsys, str(tmp_path / "eoa"), "--method", "t3a",
                                     "--output_dir", str(tmp_path / "eoa_t3a"))
