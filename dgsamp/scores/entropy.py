"""Scores from the target domain's predicted class probabilities alone.

For logits ``z[N, K]``, ``p_i = softmax(z_i)`` and ``H(q) = -sum_k q_k log q_k`` (nats;
``0 log 0 = 0``). Everything is computed in float64.
"""

from __future__ import annotations

import torch


def _probabilities(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.ndim != 2 or logits.shape[0] == 0:
        raise ValueError(f"need logits [N, K] with N >= 1; got {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.double(), dim=1)
    return log_p.exp(), log_p


def _entropy_rows(p: torch.Tensor) -> torch.Tensor:
    """``H(p_i)`` for each row of ``p[N, K]`` -> ``[N]``."""
    return -torch.special.xlogy(p, p).sum(dim=1)


def mean_entropy(logits: torch.Tensor) -> float:
    """(1/N) sum_i H(p_i): the average uncertainty of the target predictions. Lower is better.

    Morerio et al., ICLR 2018 ("Minimal-Entropy Correlation Alignment for Unsupervised Deep
    Domain Adaptation") validate on the entropy of the target predictions. It assumes
    confident predictions are right: a model that collapses every example onto one class
    scores best (0), which :func:`information_maximization` guards against.
    """
    p, _ = _probabilities(logits)
    return _entropy_rows(p).mean().item()


def information_maximization(logits: torch.Tensor) -> float:
    """H(p_bar) - (1/N) sum_i H(p_i), with p_bar = (1/N) sum_i p_i. Higher is better.

    Between 0 and log K: high when each prediction is confident (small H(p_i)) and the
    predictions are spread over the classes (large H(p_bar)). It is the negative of the IM
    loss of SHOT (Liang et al., ICML 2020, "Do We Really Need to Access the Source Data?"),
    used as a validator by Musgrave et al., ECCV 2022 ("Benchmarking Validation Methods for
    Unsupervised Domain Adaptation"). It assumes the target classes are roughly balanced.
    """
    p, _ = _probabilities(logits)
    return (_entropy_rows(p.mean(dim=0, keepdim=True))[0] - _entropy_rows(p).mean()).item()
