"""Deep Embedded Validation (DEV): the source validation risk, importance-weighted to the target.

You, Wang, Long and Wang, ICML 2019, "Towards Accurate Model Selection in Deep Unsupervised
Domain Adaptation". Lower is better. With featurizer outputs of the labelled source
training set ``S[N_s, D]``, the unlabelled target ``T[N_t, D]`` and the source validation set
``V[N_v, D]`` with per-example losses ``loss[N_v]`` (e.g. cross-entropy):

1. a domain classifier ``g`` tells S (label 0) from T (label 1);
2. density ratio on the validation set:  w_i = (N_s / N_t) * g(V_i) / (1 - g(V_i))
   ~ p_target(V_i) / p_source(V_i);
3. weighted losses  l_i = w_i * loss_i  (their mean estimates the target risk);
4. control variate: E[w] = 1, so  eta = -Cov(l, w) / Var(w)  (unbiased, ddof 1) and
   DEV = mean(l) + eta * mean(w) - eta, which has lower variance than mean(l).

It assumes covariate shift in feature space: the same p(y | features) in both domains, and
every target feature region seen in the source (otherwise w explodes).

The authors' code (thuml/Deep-Embedded-Validation ``dev.py`` @ abf9c96: ``get_weight``,
``get_dev_risk``) fits an sklearn MLP whose weight decay is picked from nine values by the
accuracy on a random 20 % hold-out. Here the domain classifier is an L2-regularised logistic
regression on standardised features, fitted full-batch by L-BFGS from zero in float64:
deterministic (no seed involved), and on the device the features are on.
"""

from __future__ import annotations

import math

import torch

DEFAULT_L2 = 1e-3
"""Weight of (1/2)||theta||^2 added to the mean logistic loss (standardised features)."""


def _as_matrix(name: str, features: torch.Tensor) -> torch.Tensor:
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError(f"{name} must be [N, D] with N >= 1; got {tuple(features.shape)}")
    return features.double()


def domain_density_ratio(
    source_train_features: torch.Tensor,
    target_features: torch.Tensor,
    source_val_features: torch.Tensor,
    l2: float = DEFAULT_L2,
    max_iter: int = 200,
) -> torch.Tensor:
    """Steps 1-2: ``w[N_v]`` (float64), ``w_i = (N_s / N_t) * exp(theta . v_i + b)``.

    ``theta . x + b`` is the fitted log-odds of "target" for a standardised feature row,
    so exp of it is g / (1 - g). Standardisation uses the mean and standard deviation of
    S and T together (a column with no spread is left unscaled).
    """
    source = _as_matrix("source_train_features", source_train_features)
    target = _as_matrix("target_features", target_features)
    validation = _as_matrix("source_val_features", source_val_features)
    if not source.shape[1] == target.shape[1] == validation.shape[1]:
        raise ValueError("source_train, target and source_val features must have the same width")
    pooled = torch.cat([source, target])
    mean = pooled.mean(dim=0)
    std = pooled.std(dim=0, correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    inputs = (pooled - mean) / std
    is_target = torch.cat([torch.zeros(len(source)), torch.ones(len(target))]).to(inputs)

    theta = torch.zeros(inputs.shape[1], dtype=torch.float64, device=inputs.device, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, device=inputs.device, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [theta, bias], lr=1.0, max_iter=max_iter, tolerance_grad=1e-12,
        tolerance_change=1e-15, history_size=20, line_search_fn="strong_wolfe",
    )

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        log_odds = inputs @ theta + bias
        loss = torch.nn.functional.binary_cross_entropy_with_logits(log_odds, is_target)
        loss = loss + 0.5 * l2 * theta.square().sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    with torch.no_grad():
        log_odds = ((validation - mean) / std) @ theta + bias
        return torch.exp(log_odds + math.log(len(source) / len(target)))


def dev_risk(weights: torch.Tensor, losses: torch.Tensor) -> float:
    """Steps 3-4: DEV = mean(l) + eta * (mean(w) - 1), l = w * loss, eta = -Cov(l, w) / Var(w).

    ``weights[N_v]`` and ``losses[N_v]``, N_v >= 2. When the weights are constant to float64
    precision there is nothing for the control variate to correct: eta = 0.
    """
    if weights.ndim != 1 or weights.shape != losses.shape or weights.shape[0] < 2:
        raise ValueError(
            f"need weights [N] and losses [N] with N >= 2; got {tuple(weights.shape)} and {tuple(losses.shape)}"
        )
    w = weights.double()
    weighted = w * losses.double().to(w.device)
    mean_w = w.mean()
    var_w = w.var(correction=1)
    covariance = ((weighted - weighted.mean()) * (w - mean_w)).sum() / (len(w) - 1)
    if var_w <= torch.finfo(torch.float64).eps * mean_w.square():
        eta = torch.zeros((), dtype=torch.float64, device=w.device)
    else:
        eta = -covariance / var_w
    return (weighted.mean() + eta * mean_w - eta).item()


def deep_embedded_validation(
    source_train_features: torch.Tensor,
    source_val_features: torch.Tensor,
    source_val_losses: torch.Tensor,
    target_features: torch.Tensor,
    l2: float = DEFAULT_L2,
) -> float:
    """DEV of one model from its features and source validation losses (shapes above)."""
    weights = domain_density_ratio(source_train_features, target_features, source_val_features, l2=l2)
    return dev_risk(weights, source_val_losses)
