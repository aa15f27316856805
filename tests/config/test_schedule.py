"""Training counted in steps: DomainBed's evaluation points and step numbers, exactly.

``domainbed_steps`` re-states DomainBed's train.py loop (``for step in range(n_steps)``,
evaluate when ``step % checkpoint_freq == 0``, and since ed96f0f also when
``step == n_steps - 1``); the schedule and real runs must record exactly those steps.
"""

from __future__ import annotations

import pytest

from dgsamp.cli import main
from dgsamp.config.protocol import epoch_schedule, evaluation_steps, step_schedule
from tests.helpers import TINY_RUN, read_results

# TINY_RUN without its epoch budget and protocol: the tests below count in steps
STEP_RUN = [token for index, token in enumerate(TINY_RUN)
            if token not in ("--epochs", "--steps_per_epoch", "--protocol")
            and TINY_RUN[index - 1] not in ("--epochs", "--steps_per_epoch", "--protocol")]


def domainbed_steps(n_steps: int, checkpoint_freq: int, last_step: bool) -> list[int]:
    return [step for step in range(n_steps)
            if step % checkpoint_freq == 0 or (last_step and step == n_steps - 1)]


@pytest.mark.parametrize(("n_steps", "freq"), [(5001, 100), (5001, 300), (5001, 1000), (51, 10), (7, 3),
                                               (6, 4), (1, 1), (1, 5), (2, 1), (300, 300), (301, 300)])
@pytest.mark.parametrize("last_step", [False, True])
def test_evaluation_points_and_record_steps_are_domainbeds(n_steps, freq, last_step):
    expected = domainbed_steps(n_steps, freq, last_step)
    assert evaluation_steps(n_steps, freq, last_step) == expected
    schedule = step_schedule(n_steps, freq, last_step)
    assert schedule.record_steps() == expected
    assert schedule.epochs == len(expected) and schedule.total_steps == expected[-1] + 1
    assert schedule.epoch_steps[0] == 1 and all(steps <= freq for steps in schedule.epoch_steps[1:])


def test_epoch_schedule_records_the_index_of_each_epochs_last_update():
    schedule = epoch_schedule(3, 4)
    assert schedule.epoch_steps == (4, 4, 4) and schedule.record_steps() == [3, 7, 11]
    assert schedule.steps_of(2) == 4 and schedule.total_steps == 12


@pytest.fixture(scope="module")
def step_runs(tmp_path_factory):
    """Tiny PACSMini runs counted in steps: 2020 rule, 2024 rule with GradSamp, same without eval augmentation."""
    root = tmp_path_factory.mktemp("steps")
    common = [*STEP_RUN, "--algorithm", "CORAL", "--steps", "6"]
    runs = {
        "2020": ["--protocol", "domainbed2020", "--checkpoint_freq", "4"],
        "2024": ["--protocol", "domainbed2024", "--checkpoint_freq", "2", "--gradsamp", "periodic"],
        "2024_clean": ["--protocol", "domainbed2024", "--checkpoint_freq", "2", "--gradsamp", "periodic",
                       "--eval_augmentation", "none"],
    }
    for name, extra in runs.items():
        assert main(["train", *common, "--output_dir", str(root / name), *extra]) == 0
    return {name: read_results(root / name) for name in runs}


def test_runs_record_domainbeds_steps_and_their_protocol(step_runs):
    first = step_runs["2020"]
    assert [r["step"] for r in first] == [0, 4]  # 7df6f06: no evaluation at step 5
    assert [r["epoch"] for r in first] == [1, 2]
    args = first[0]["args"]
    assert (args["protocol"], args["steps"], args["checkpoint_freq"], args["freeze_bn"]) == \
        ("domainbed2020", 6, 4, True)
    assert (args["featurizer_passes"], args["eval_augmentation"]) == ("per_domain", "train_domains")
    later = step_runs["2024"]
    assert [r["step"] for r in later] == [0, 2, 4, 5]  # epochs of 1, 2, 2 and 1 updates
    assert [r["epoch_kind"] for r in later] == ["backprop", "backprop", "gradsamp", "backprop"]
    assert later[0]["args"]["protocol"] == "domainbed2024" and later[0]["args"]["freeze_bn"] is False


def test_augmented_evaluation_touches_the_training_domains_only(step_runs):
    augmented, clean = step_runs["2024"], step_runs["2024_clean"]
    for with_aug, without in zip(augmented, clean):  # training is identical, evaluation differs
        assert with_aug["env0_in_acc"] == without["env0_in_acc"]  # test domain 0: always clean
        assert with_aug["env0_out_acc"] == without["env0_out_acc"]
        assert with_aug.get("loss") == without.get("loss")
    train_keys = [f"env{env}_{part}_acc" for env in (1, 2, 3) for part in ("in", "out")]
    assert any(a[key] != c[key] for a, c in zip(augmented, clean) for key in train_keys)
