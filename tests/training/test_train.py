"""End-to-end training through the real CLI on real images (the embedded PACS mini set)."""

from __future__ import annotations

import json

from dgsamp.registry import ALGORITHMS
from tests.helpers import TINY_RUN, read_results, run_cli, train_in_process, without_timing


def test_train_subprocess_leaves_results_model_and_done(tmp_path):
    run_dir = tmp_path / "run"
    completed = run_cli("train", *TINY_RUN, "--algorithm", "CORAL", "--test_envs", "1", "--output_dir", str(run_dir))
    assert completed.returncode == 0, completed.stderr
    assert "ood_acc" in completed.stdout and "env0_in" in completed.stdout
    records = read_results(run_dir)
    assert [r["epoch"] for r in records] == [1, 2]
    assert [r["step"] for r in records] == [1, 3]  # DomainBed's: the index of the last update
    assert all(r["args"]["protocol"] == "dgsamp" for r in records)
    for record in records:
        for env in range(4):
            assert 0.0 <= record[f"env{env}_in_acc"] <= 1.0
            assert 0.0 <= record[f"env{env}_out_acc"] <= 1.0
        assert record["ood_acc"] == record["env1_in_acc"]
        assert record["args"]["algorithm"] == "CORAL" and record["hparams"]["batch_size"] == 8
        assert record["epoch_kind"] == "backprop" and record["train_flops"] > 0
        assert record["loss"] > 0 and "penalty" in record
    assert (run_dir / "done").is_file() and (run_dir / "model.pt").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["backprop_epochs"] == 2 and summary["gradsamp_epochs"] == 0
    assert summary["total_train_flops"] == records[-1]["cum_train_flops"]


def test_same_command_twice_gives_the_same_numbers(tmp_path):
    assert train_in_process(tmp_path / "a", "--algorithm", "DANN", "--seed", "3") == 0
    assert train_in_process(tmp_path / "b", "--algorithm", "DANN", "--seed", "3") == 0
    first, second = read_results(tmp_path / "a"), read_results(tmp_path / "b")
    assert [without_timing(r) for r in first] == [without_timing(r) for r in second]
    assert train_in_process(tmp_path / "c", "--algorithm", "DANN", "--seed", "4") == 0
    assert [without_timing(r) for r in read_results(tmp_path / "c")] != [without_timing(r) for r in first]


def test_plugin_algorithm_registers_with_its_own_hparam_flag(tmp_path):
    plugin = tmp_path / "my_alg.py"
    plugin.write_text(
        "import torch\n"
        "import torch.nn.functional as F\n"
        "from dgsamp.algorithms.base import Algorithm, make_optimizer\n"
        "from dgsamp.hparams import HParam\n"
        "from dgsamp.registry import register_algorithm\n\n"
        "@register_algorithm('SmoothERM')\n"
        "class SmoothERM(Algorithm):\n"
        "    HPARAMS = {'smoothing': HParam(0.1, lambda r: r.uniform(0, 0.3), 'label smoothing')}\n"
        "    def __init__(self, featurizer, num_classes, num_domains, hparams):\n"
        "        super().__init__(featurizer, num_classes, num_domains, hparams)\n"
        "        self.optimizer = make_optimizer(self.parameters(), hparams)\n"
        "    def update(self, minibatches, unlabeled=None):\n"
        "        x = torch.cat([x for x, _ in minibatches]); y = torch.cat([y for _, y in minibatches])\n"
        "        loss = F.cross_entropy(self.predict(x), y, label_smoothing=self.hparams['smoothing'])\n"
        "        self.optimizer.zero_grad(); loss.backward(); self.optimizer.step()\n"
        "        return {'loss': loss.detach()}\n"
    )
    listed = run_cli("list", "algorithms", "--plugin", str(plugin))
    assert listed.returncode == 0 and "SmoothERM" in listed.stdout.split()
    run_dir = tmp_path / "run"
    completed = run_cli("train", *TINY_RUN, "--plugin", str(plugin), "--algorithm", "SmoothERM",
                        "--smoothing=0.25", "--output_dir", str(run_dir))
    assert completed.returncode == 0, completed.stderr
    assert read_results(run_dir)[0]["hparams"]["smoothing"] == 0.25


def test_list_shows_registries():
    completed = run_cli("list")
    assert completed.returncode == 0
    for name in ("ERM", "CORAL", "DANN", "PACS", "OfficeHome", "RotatedMNIST", "mnist_cnn", "tf_efficientnet_lite0"):
        assert name in completed.stdout
    assert len(ALGORITHMS.names()) >= 6


def test_hparams_json_and_flags_combine_flags_win(tmp_path):
    run_dir = tmp_path / "run"
    code = train_in_process(run_dir, "--hparams", '{"lr": 0.001, "weight_decay": 0.01}', "--lr=0.002")
    assert code == 0
    hparams = read_results(run_dir)[0]["hparams"]
    assert hparams["lr"] == 0.002 and hparams["weight_decay"] == 0.01
