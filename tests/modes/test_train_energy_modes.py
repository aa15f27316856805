"""GradSamp, its skip control and ssProp through the real trainer: epoch kinds, FLOPs, energy fields."""

from __future__ import annotations

import torch

from tests.helpers import read_results, train_in_process


def final_weights(run_dir) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False)["state_dict"]


def test_gradsamp_epochs_follow_the_schedule_and_cost_no_training_flops(tmp_path):
    run_dir = tmp_path / "gs"
    assert train_in_process(run_dir, "--epochs", "6", "--gradsamp", "periodic", "--gradsamp_period", "3") == 0
    records = read_results(run_dir)
    assert [r["epoch_kind"] for r in records] == ["backprop", "backprop", "gradsamp"] * 2
    for record in records:
        if record["epoch_kind"] == "gradsamp":
            assert record["train_flops"] == 0 and "loss" not in record
        else:
            assert record["train_flops"] > 0 and record["loss"] > 0
        # this CPU machine has no energy counter: fields are null, never 0 or an estimate
        assert record["train_energy_J"] is None and record["eval_energy_J"] is None
        assert record["energy_source"] == "unavailable"
    assert records[-1]["backprop_epochs"] == 4 and records[-1]["gradsamp_epochs"] == 2
    assert records[2]["step"] == records[1]["step"] + (records[1]["step"] - records[0]["step"])


def test_skip_control_equals_training_fewer_epochs(tmp_path):
    """With a constant LR, a skip epoch touches neither data nor weights: after epochs 1, 2, (3
    skipped), 4 the model is bit-identical to a plain 3-epoch run's."""
    skip_dir, short_dir = tmp_path / "skip", tmp_path / "short"
    assert train_in_process(skip_dir, "--epochs", "4", "--gradsamp", "periodic", "--gradsamp_period", "3",
                            "--gradsamp_dist", "skip", "--seed", "5") == 0
    assert train_in_process(short_dir, "--epochs", "3", "--seed", "5") == 0
    skip_records = read_results(skip_dir)
    assert skip_records[2]["epoch_kind"] == "gradsamp" and skip_records[2]["train_flops"] == 0
    for key in ("env0_in_acc", "env1_out_acc", "env3_in_acc"):
        assert skip_records[2][key] == skip_records[1][key]  # the skip epoch changed nothing
    skipped, short = final_weights(skip_dir), final_weights(short_dir)
    assert skipped.keys() == short.keys()
    assert all(torch.equal(skipped[name], short[name]) for name in skipped)
    assert skip_records[-1]["cum_train_flops"] == read_results(short_dir)[-1]["cum_train_flops"]


def test_ssprop_records_keep_rate_and_saves_counted_flops(tmp_path):
    dense_dir, sparse_dir = tmp_path / "dense", tmp_path / "sparse"
    assert train_in_process(dense_dir, "--epochs", "2") == 0
    assert train_in_process(sparse_dir, "--epochs", "2", "--ssprop", "constant", "--ssprop_keep", "0.25",
                            "--ssprop_interleave") == 0
    dense, sparse = read_results(dense_dir), read_results(sparse_dir)
    assert [r["ssprop_keep"] for r in dense] == [1.0, 1.0]
    assert [r["ssprop_keep"] for r in sparse] == [1.0, 0.25]  # interleaved: dense, then sparse
    assert sparse[0]["train_flops"] == dense[0]["train_flops"]
    assert sparse[1]["train_flops"] < dense[1]["train_flops"]
