"""Mean per-class accuracy at every evaluation of a dataset scored that way (VisDA-2017).

The formula is written out on a hand-made case where it differs from the overall accuracy;
then two real tiny runs: a dataset with ``ACCURACY = "mean_per_class"`` records
``env{i}_in_mpca``/``env{i}_out_mpca`` beside every accuracy, PACSMini records none.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch

from dgsamp.data.training_data import DomainTensors
from dgsamp.training.evaluation import evaluate
from tests.helpers import read_results, train_in_process


class GivenLogits(torch.nn.Module):
    """``predict(x) = x``: each input row is the logits the test chose (a parameter gives the device)."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.anchor


def logits_for(predictions: list[int], num_classes: int) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(predictions), num_classes).float()


def test_mean_per_class_accuracy_weighs_every_present_class_alike():
    # labels 0 0 0 0 1 2, predicted 0 0 0 1 0 2: class 0 3/4, class 1 0/1, class 2 1/1, class 3 absent
    labels, predicted = [0, 0, 0, 0, 1, 2], [0, 0, 0, 1, 0, 2]
    splits = {
        "env0_in": DomainTensors(logits_for(predicted, 4), torch.tensor(labels)),
        "env0_out": DomainTensors(logits_for([3, 3], 4), torch.tensor([3, 1])),  # class 3 1/1, class 1 0/1
        "env1_in": DomainTensors(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)),
    }
    evaluation = evaluate(GivenLogits(), splits, lambda x: x, batch_size=4, autocast=nullcontext(),
                          per_class_of=4)
    assert evaluation.accuracies["env0_in_acc"] == pytest.approx(4 / 6)
    assert evaluation.accuracies["env0_in_mpca"] == pytest.approx((3 / 4 + 0 / 1 + 1 / 1) / 3)
    assert evaluation.accuracies["env0_out_acc"] == pytest.approx(1 / 2)
    assert evaluation.accuracies["env0_out_mpca"] == pytest.approx((1 / 1 + 0 / 1) / 2)
    assert evaluation.accuracies["env1_in_mpca"] == 0.0  # an empty split, like its accuracy
    overall_only = evaluate(GivenLogits(), splits, lambda x: x, batch_size=4, autocast=nullcontext())
    assert not [key for key in overall_only.accuracies if key.endswith("_mpca")]
    assert overall_only.accuracies["env0_in_acc"] == pytest.approx(4 / 6)


PLUGIN = '''
from dgsamp.datasets.images import PACSMini
from dgsamp.registry import register_dataset


@register_dataset("PACSMiniPerClassTest")
class PACSMiniPerClass(PACSMini):
    ACCURACY = "mean_per_class"
'''


def test_runs_record_mean_per_class_accuracy_only_where_the_dataset_is_scored_so(tmp_path):
    plugin = tmp_path / "per_class_plugin.py"
    plugin.write_text(PLUGIN)
    assert train_in_process(tmp_path / "per_class", "--dataset", "PACSMiniPerClassTest",
                            "--plugin", str(plugin), "--test_envs", "3", "--epochs", "1") == 0
    assert train_in_process(tmp_path / "overall", "--test_envs", "3", "--epochs", "1") == 0
    for record in read_results(tmp_path / "per_class"):
        accuracies = sorted(key for key in record if key.endswith("_acc") and key.startswith("env"))
        assert len(accuracies) == 8
        for key in accuracies:
            assert 0.0 <= record[key.replace("_acc", "_mpca")] <= 1.0
    for record in read_results(tmp_path / "overall"):
        assert not [key for key in record if key.endswith("_mpca")]
