"""``--protocol domainbed2020`` draws random hparams as DomainBed's 7df6f06 did.

The expected values were produced by running ``random_hparams`` of DomainBed's
``domainbed/hparams_registry.py`` at commit 7df6f06 (the code of the 2020-10-06 result
tables) with ``seed_hash(hparams_seed, trial_seed=0)``, and are recorded here as numbers.
"""

from __future__ import annotations

import pytest

from dgsamp.config import parse_run_config
from dgsamp.hparams import resolve_hparams
from dgsamp.hparams_domainbed2020 import ALGORITHMS_2020
from dgsamp.registry import ALGORITHMS, DATASETS
from tests.helpers import REPO

# (algorithm, dataset, hparams_seed) -> 7df6f06's values (a subset of the keys: all it draws)
DOMAINBED_7DF6F06 = {
    ("ERM", "ColoredMNIST", 1): dict(resnet_dropout=0.1, lr=0.00027601856421396065, batch_size=479,
                                     weight_decay=0.0),
    ("ERM", "PACS", 2): dict(resnet_dropout=0.0, lr=1.9041073434446342e-05, batch_size=9,
                             weight_decay=0.0006566989842279891),
    ("DANN", "ColoredMNIST", 1): dict(
        resnet_dropout=0.1, lr=0.00027601856421396065, batch_size=479, weight_decay=0.0,
        lr_g=0.0006812498337484924, lr_d=0.000368174699448583, weight_decay_g=0.0, weight_decay_d=1.382924839229532e-06,
        d_steps_per_g_step=3, grad_penalty=0.03707081594783109, beta1=0.0, mlp_width=294, mlp_depth=3,
        mlp_dropout=0.0, **{"lambda": 1.756049971126408}),
    ("DANN", "DomainNet", 3): dict(
        resnet_dropout=0.5, lr=6.166705009429313e-05, batch_size=12, weight_decay=3.4412812120883604e-06,
        lr_g=4.488911651430837e-05, lr_d=7.298453422421504e-05, weight_decay_g=0.0031977391858436085,
        weight_decay_d=0.0021011330310867038, d_steps_per_g_step=1, grad_penalty=5.4230168686444395,
        beta1=0.0, mlp_width=80, mlp_depth=3, mlp_dropout=0.1, **{"lambda": 0.10589590932084614}),
    ("Mixup", "PACS", 1): dict(resnet_dropout=0.1, lr=5.0781288859686544e-05, batch_size=44,
                               weight_decay=0.00046410133598234803, mixup_alpha=0.1),
    ("ARM", "PACS", 1): dict(resnet_dropout=0.1, lr=5.0781288859686544e-05, batch_size=8,
                             weight_decay=0.00046410133598234803),
    ("IRM", "ColoredMNIST", 2): dict(resnet_dropout=0.0, lr=7.463145419468418e-05, batch_size=13,
                                     weight_decay=0.0, irm_lambda=1682.865924829106, irm_penalty_anneal_iters=250),
}


@pytest.mark.parametrize("key", sorted(DOMAINBED_7DF6F06))
def test_draws_equal_domainbed_7df6f06(key):
    algorithm, dataset, hparams_seed = key
    drawn = resolve_hparams(ALGORITHMS.get(algorithm), DATASETS.get(dataset).SMALL_IMAGES, hparams_seed,
                            dataset=dataset, registry="domainbed2020", algorithm=algorithm)
    expected = DOMAINBED_7DF6F06[key]
    assert {name: drawn[name] for name in expected} == pytest.approx(expected, rel=1e-15)
    assert all(type(drawn[name]) is type(value) for name, value in expected.items())


def test_hparams_7df6f06_did_not_have_keep_their_defaults():
    drawn = resolve_hparams(ALGORITHMS.get("DANN"), True, 1, dataset="ColoredMNIST", registry="domainbed2020",
                            algorithm="DANN")
    defaults = resolve_hparams(ALGORITHMS.get("DANN"), True, 0, dataset="ColoredMNIST")
    assert drawn["nonlinear_classifier"] == defaults["nonlinear_classifier"] is False
    assert drawn["lr_schedule"] == "constant"


def test_the_protocol_picks_the_registry_and_explicit_hparams_still_win():
    base = ["--dataset", "ColoredMNIST", "--data_dir", str(REPO), "--algorithm", "ERM", "--test_envs", "0",
            "--hparams_seed", "1"]
    old = parse_run_config([*base, "--protocol", "domainbed2020"]).hparams
    new = parse_run_config([*base, "--protocol", "domainbed2024"]).hparams
    assert old["lr"] == pytest.approx(0.00027601856421396065, rel=1e-15) and old["batch_size"] == 479
    assert new["lr"] != old["lr"]  # one RandomState per name since 987b75e
    assert parse_run_config([*base, "--lr", "0.01"]).hparams["lr"] == 0.01


def test_algorithms_after_2020_draw_per_name_under_either_registry():
    fish = ALGORITHMS.get("Fish")
    assert "Fish" not in ALGORITHMS_2020
    assert resolve_hparams(fish, False, 3, dataset="PACS", registry="domainbed2020", algorithm="Fish") == \
        resolve_hparams(fish, False, 3, dataset="PACS")


def test_every_2020_algorithm_is_registered():
    assert set(ALGORITHMS_2020) <= set(ALGORITHMS.names())
