"""Random hyperparameters as DomainBed drew them for its published 2020 tables (commit 7df6f06).

DomainBed's sweeps seed each run's draws with ``s = seed_hash(hparams_seed, trial_seed)``.
Since commit 987b75e every hyperparameter has its own ``RandomState(seed_hash(s, name))``
(``dgsamp.hparams``); at 7df6f06, the code of ``domainbed/results/2020_10_06_7df6f06``,
a single ``RandomState(s)`` drew them all, in the order of ``_hparams`` in
``domainbed/hparams_registry.py``. The same seeds therefore name different values in the
two registries, and a run that wants to sit beside a 2020 row with ``--hparams_seed N``
must replay the old sequence, draw for draw, including draws whose value is thrown away
(``resnet_dropout`` on MNIST, ARM's ``batch_size``).

The sequence, with U = ``uniform`` and "small" = RotatedMNIST, ColoredMNIST (and Debug28):

    resnet_dropout  choice{0, 0.1, 0.5}
    lr              10^U(-4.5, -2.5) small, else 10^U(-5, -3.5)
    batch_size      2^U(3, 9) small, 2^U(3, 5) DomainNet, else 2^U(3, 5.5)   (int; ARM: 8)
    weight_decay    0 small (no draw), else 10^U(-6, -2)
    then the algorithm's own, e.g. DANN/CDANN: lr_g, lr_d, [weight_decay_g], lambda,
    weight_decay_d, d_steps_per_g_step, grad_penalty, beta1, mlp_width, mlp_depth, mlp_dropout.

7df6f06's search spaces equal today's except Mixup's ``mixup_alpha`` = 10^U(-1, -1) = 0.1.
Only the 14 algorithms of the 2020 tables have a 2020 sequence; every hparam the sequence
does not draw keeps its default (7df6f06 did not have it), except where a later hparam
chose between 7df6f06's behaviour and a newer one: :data:`DEFAULTS_2020` holds the value
that selects 7df6f06's (MLDG's ``n_meta_test`` = 0, its random pairs of domains).
"""

from __future__ import annotations

from typing import Any

import numpy as np

SMALL_IMAGES_2020 = ("Debug28", "RotatedMNIST", "ColoredMNIST")
DEFAULTS_2020 = {"MLDG": {"n_meta_test": 0}}  # hparams added after 7df6f06: the value that behaves as it did
ALGORITHMS_2020 = ("ERM", "IRM", "GroupDRO", "Mixup", "MLDG", "CORAL", "MMD", "DANN", "CDANN", "MTL",
                   "SagNet", "ARM", "VREx", "RSC")


def _log_uniform(r: np.random.RandomState, low: float, high: float) -> float:
    return float(10 ** r.uniform(low, high))


def _adversarial(r: np.random.RandomState, small: bool) -> dict[str, Any]:
    """DANN and CDANN's draws, in 7df6f06's order."""
    drawn: dict[str, Any] = {}
    lr_range = (-4.5, -2.5) if small else (-5, -3.5)
    drawn["lr_g"] = _log_uniform(r, *lr_range)
    drawn["lr_d"] = _log_uniform(r, *lr_range)
    drawn["weight_decay_g"] = 0.0 if small else _log_uniform(r, -6, -2)
    drawn["lambda"] = _log_uniform(r, -2, 2)
    drawn["weight_decay_d"] = _log_uniform(r, -6, -2)
    drawn["d_steps_per_g_step"] = int(2 ** r.uniform(0, 3))
    drawn["grad_penalty"] = _log_uniform(r, -2, 1)
    drawn["beta1"] = float(r.choice([0.0, 0.5]))
    drawn["mlp_width"] = int(2 ** r.uniform(6, 10))
    drawn["mlp_depth"] = int(r.choice([3, 4, 5]))
    drawn["mlp_dropout"] = float(r.choice([0.0, 0.1, 0.5]))
    return drawn


def _own(algorithm: str, r: np.random.RandomState) -> dict[str, Any]:
    """The draws of the other 2020 algorithms' own hparams (none for ERM and ARM)."""
    if algorithm == "RSC":
        return {"rsc_f_drop_factor": float(r.uniform(0, 0.5)), "rsc_b_drop_factor": float(r.uniform(0, 0.5))}
    if algorithm == "SagNet":
        return {"sag_w_adv": _log_uniform(r, -2, 1)}
    if algorithm == "IRM":
        return {"irm_lambda": _log_uniform(r, -1, 5), "irm_penalty_anneal_iters": int(10 ** r.uniform(0, 4))}
    if algorithm == "Mixup":
        return {"mixup_alpha": _log_uniform(r, -1, -1)}
    if algorithm == "GroupDRO":
        return {"groupdro_eta": _log_uniform(r, -3, -1)}
    if algorithm in ("MMD", "CORAL"):
        return {"mmd_gamma": _log_uniform(r, -1, 1)}
    if algorithm == "MLDG":
        return {"mldg_beta": _log_uniform(r, -1, 1)}
    if algorithm == "MTL":
        return {"mtl_ema": float(r.choice([0.5, 0.9, 0.99, 1.0]))}
    if algorithm == "VREx":
        return {"vrex_lambda": _log_uniform(r, -1, 5), "vrex_penalty_anneal_iters": int(10 ** r.uniform(0, 4))}
    return {}


def draws_2020(algorithm: str, dataset: str, seed: int) -> dict[str, Any]:
    """7df6f06's ``random_hparams(algorithm, dataset, seed)`` values (seed = seed_hash(hparams_seed,
    trial_seed)), for an algorithm in :data:`ALGORITHMS_2020`; keys are dgsamp's (= DomainBed's) names."""
    if algorithm not in ALGORITHMS_2020:
        raise ValueError(f"{algorithm} is not in DomainBed's 2020 registry")
    r = np.random.RandomState(seed)
    small = dataset in SMALL_IMAGES_2020
    drawn: dict[str, Any] = {"resnet_dropout": float(r.choice([0.0, 0.1, 0.5]))}
    if small:
        drawn["lr"] = _log_uniform(r, -4.5, -2.5)
        drawn["batch_size"] = int(2 ** r.uniform(3, 9))
    else:
        drawn["lr"] = _log_uniform(r, -5, -3.5)
        drawn["batch_size"] = int(2 ** r.uniform(3, 5 if dataset == "DomainNet" else 5.5))
        if algorithm == "ARM":
            drawn["batch_size"] = 8
    drawn["weight_decay"] = 0.0 if small else _log_uniform(r, -6, -2)
    if algorithm in ("DANN", "CDANN"):
        drawn.update(_adversarial(r, small))
    else:
        drawn.update(_own(algorithm, r))
    return drawn
