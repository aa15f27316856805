"""``--featurizer_passes per_domain``: where DomainBed's ``update`` calls the featurizer once
per domain (CORAL, MMD, GroupDRO, Mixup once per mixed pair, MTL, ANDMask, SANDMask, IGA,
CausIRL_*, EQRM, Transfer's adversary), BatchNorm normalises each domain with its own batch
statistics; ``joint`` pools them in one call. Fish and MLDG step domain by domain whatever
the option, so they do not declare it.

The featurizer is Linear(3, 4) -> BatchNorm1d(4) in training mode. The expected CORAL
penalty is written from DomainBed's ``AbstractMMD.update`` with ``kernel_type="mean_cov"``:
features ``z_d = BN(W x_d + b)`` computed domain by domain, then
``mean((μ_a − μ_b)²) + mean((C_a − C_b)²)`` with unbiased covariances.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dgsamp.hparams import resolve_hparams
from dgsamp.registry import ALGORITHMS, create_algorithm


class CountingFeaturizer(nn.Module):
    """z = BatchNorm1d(Linear(x)), counting its calls: ``x[N, 3] -> z[N, 4]``."""

    n_outputs = 4

    def __init__(self) -> None:
        super().__init__()
        self.linear, self.norm, self.calls = nn.Linear(3, 4), nn.BatchNorm1d(4), 0

    def forward(self, x):
        self.calls += 1
        return self.norm(self.linear(x))


def build(name: str, per_domain: bool):
    torch.manual_seed(0)
    hparams = resolve_hparams(ALGORITHMS.get(name), True, 0, {"lr": 0.01})
    algorithm = create_algorithm(name, CountingFeaturizer(), 2, 2, hparams).train()
    algorithm.per_domain_passes = per_domain
    return algorithm


def domains():
    generator = torch.Generator().manual_seed(3)
    x_a = torch.randn(6, 3, generator=generator)
    x_b = 3 + 2 * torch.randn(6, 3, generator=generator)  # another mean and scale: BN statistics differ
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    return [(x_a, labels), (x_b, labels.flip(0))]


def coral_penalty(za, zb):
    def cov(z):
        centred = z - z.mean(0, keepdim=True)
        return centred.T @ centred / (len(z) - 1)

    return (za.mean(0) - zb.mean(0)).pow(2).mean() + (cov(za) - cov(zb)).pow(2).mean()


def test_coral_per_domain_penalty_is_domainbeds():
    batches = domains()
    algorithm = build("CORAL", per_domain=True)
    reference = CountingFeaturizer()
    reference.load_state_dict(algorithm.featurizer.state_dict())
    with torch.no_grad():
        expected = coral_penalty(*(reference(x) for x, _ in batches))
        pooled = coral_penalty(*reference(torch.cat([x for x, _ in batches])).split(6))
    assert not torch.allclose(expected, pooled)  # the two modes really differ here
    losses = algorithm.update(batches)
    torch.testing.assert_close(losses["penalty"], expected)
    assert algorithm.featurizer.calls == 2
    joint = build("CORAL", per_domain=False)
    torch.testing.assert_close(joint.update(batches)["penalty"], pooled)
    assert joint.featurizer.calls == 1


# Read from DomainBed's domainbed/algorithms.py @ 22002ea: the classes whose ``update`` runs
# ``self.featurizer``/``self.network``/``self.predict`` on one domain's x at a time.
DOMAINBED_PER_DOMAIN = {"CORAL", "MMD", "GroupDRO", "Mixup", "MTL", "ANDMask", "SANDMask", "IGA",
                        "CausIRL_CORAL", "CausIRL_MMD", "EQRM", "Transfer"}


def test_exactly_domainbeds_per_domain_algorithms_declare_the_option():
    builtin = {name for name in ALGORITHMS.names() if ALGORITHMS.get(name).__module__.startswith("dgsamp.")}
    declared = {name for name in builtin if ALGORITHMS.get(name).PER_DOMAIN_PASSES}
    assert declared == DOMAINBED_PER_DOMAIN


@pytest.mark.parametrize("name", sorted(DOMAINBED_PER_DOMAIN - {"Transfer"}))
def test_calls_per_step_follow_the_option(name):
    assert ALGORITHMS.get(name).PER_DOMAIN_PASSES
    for per_domain, calls in ((True, 2), (False, 1)):
        algorithm = build(name, per_domain)
        algorithm.update(domains())
        assert algorithm.featurizer.calls == calls, (name, per_domain)


def test_the_other_builtin_algorithms_pass_all_domains_at_once_like_domainbed():
    for name in ("ERM", "IRM", "VREx", "DANN", "CDANN"):
        assert not ALGORITHMS.get(name).PER_DOMAIN_PASSES, name
