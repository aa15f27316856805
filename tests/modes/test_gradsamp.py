"""GradSamp: the epoch schedule and the sampled update's distribution."""

from __future__ import annotations

import io
import itertools
import math

import pytest
import torch

from dgsamp.errors import UserError
from dgsamp.modes.gradsamp.sampler import GradSampler, make_generator
from dgsamp.modes.gradsamp.schedule import GradSampSchedule

torch.set_num_threads(1)

# ---------------------------------------------------------------- schedule


def _sampled(schedule: GradSampSchedule, epochs: int) -> list[int]:
    return [e for e in range(1, epochs + 1) if schedule.kind(e) == "gradsamp"]


def test_periodic_schedule_samples_every_kth_epoch_after_warmup() -> None:
    k3 = GradSampSchedule("periodic", period=3, prob=0.0, warmup=2, allow_consecutive=False, seed=0)
    assert _sampled(k3, 10) == [3, 6, 9]
    assert k3.counts(10) == (7, 3)
    assert k3.plan(4) == ["backprop", "backprop", "gradsamp", "backprop"]
    k2 = GradSampSchedule("periodic", period=2, prob=0.0, warmup=2, allow_consecutive=False, seed=0)
    assert _sampled(k2, 10) == [4, 6, 8, 10]  # epoch 2 is warm-up
    k4 = GradSampSchedule("periodic", period=4, prob=0.0, warmup=5, allow_consecutive=False, seed=0)
    assert _sampled(k4, 16) == [8, 12, 16]
    off = GradSampSchedule("off", period=3, prob=0.5, warmup=2, allow_consecutive=False, seed=0)
    assert _sampled(off, 20) == [] and off.counts(20) == (20, 0)


def test_random_schedule_is_seeded_warm_and_never_consecutive() -> None:
    args = dict(mode="random", period=3, prob=0.5, warmup=3, allow_consecutive=False)
    a = GradSampSchedule(**args, seed=7)
    sampled = _sampled(a, 2000)
    assert min(sampled) > 3
    assert all(later - earlier >= 2 for earlier, later in itertools.pairwise(sampled))
    # the same arguments give the same plan, in any query order (pure function of the epoch)
    b = GradSampSchedule(**args, seed=7)
    assert [b.kind(e) for e in range(2000, 0, -1)][::-1] == a.plan(2000)
    assert _sampled(GradSampSchedule(**args, seed=8), 2000) != sampled
    # with no-consecutive, a Markov chain: the sampled fraction tends to p / (1 + p) = 1/3
    fraction = len(sampled) / 1997
    assert abs(fraction - 1 / 3) < 0.04


def test_random_schedule_with_consecutive_allowed_samples_at_rate_p() -> None:
    s = GradSampSchedule("random", period=3, prob=0.5, warmup=2, allow_consecutive=True, seed=1)
    sampled = _sampled(s, 2002)
    assert any(later - earlier == 1 for earlier, later in itertools.pairwise(sampled))
    assert abs(len(sampled) / 2000 - 0.5) < 0.05
    assert s.counts(2002) == (2002 - len(sampled), len(sampled))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mode="sometimes"),
        dict(mode="periodic", period=1),
        dict(mode="periodic", warmup=1),
        dict(mode="random", warmup=0),
        dict(mode="random", prob=1.0),
        dict(mode="random", prob=-0.1),
    ],
)
def test_schedule_validation_raises_user_error(kwargs: dict) -> None:
    with pytest.raises(UserError):
        GradSampSchedule(**kwargs)


# ---------------------------------------------------------------- the sampled update


def _matches_normal(sample: torch.Tensor, mean: float, std: float, z: float = 6.0) -> bool:
    """Mean, std and the mass within one std all agree with N(mean, std²) within z standard
    errors. At z = 6 a correct sampler fails with probability ~1e-8."""
    x = sample.double().flatten()
    n = x.numel()
    mean_ok = abs(x.mean().item() - mean) < z * std / math.sqrt(n)
    std_ok = abs(x.std().item() - std) < z * std / math.sqrt(2 * (n - 1))
    inside = ((x - mean).abs() < std).double().mean().item()
    p = 0.682689492
    mass_ok = abs(inside - p) < z * math.sqrt(p * (1 - p) / n)
    return mean_ok and std_ok and mass_ok


def _uncorrelated(a: torch.Tensor, b: torch.Tensor, z: float = 6.0) -> bool:
    a, b = a.double().flatten(), b.double().flatten()
    corr = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    return abs(corr) < z / math.sqrt(a.numel())


def _two_epochs(shapes_and_deltas: list[tuple[tuple[int, ...], float, float]], seed: int = 0):
    """Parameters with recorded θ(e−2) and θ(e−1) = θ(e−2) + Δ, Δ ~ N(mean, std²) per tensor."""
    g = torch.Generator().manual_seed(seed)
    params, deltas = [], []
    for shape, mean, std in shapes_and_deltas:
        params.append(torch.nn.Parameter(torch.randn(shape, generator=g)))
        deltas.append(mean + std * torch.randn(shape, generator=g))
    return params, deltas


def _record_two(sampler: GradSampler, params, deltas) -> list[torch.Tensor]:
    sampler.record()  # θ(e−2)
    with torch.no_grad():
        for p, d in zip(params, deltas):
            p.add_(d)
    sampler.record()  # θ(e−1)
    return [p.detach().clone() for p in params]


def test_layer_mode_change_has_the_mean_and_std_of_delta_per_tensor() -> None:
    params, deltas = _two_epochs([((500, 500), 0.3, 2.0), ((4000,), -1e-3, 5e-4), ((1,), 0.7, 0.0)])
    sampler = GradSampler(params, dist="layer")
    assert not sampler.ready
    previous = _record_two(sampler, params, deltas)
    assert sampler.ready
    sampler.step(make_generator("cpu", 123))

    for p, prev, delta, too_wide in zip(params[:2], previous, deltas, (1.05, 1.3)):
        change = p.detach() - prev
        mu, sigma = delta.double().mean().item(), delta.double().std().item()
        assert _matches_normal(change, mu, sigma)
        assert _uncorrelated(change, delta), "ε must be fresh noise, not Δ itself"
        # the check is sharp: wrong formulas fail it
        noise = torch.randn(change.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
        assert not _matches_normal(noise * sigma, mu, sigma)  # zero mean
        assert not _matches_normal(noise * sigma**0.5 + mu, mu, sigma)  # std = sqrt(σ)
        assert not _matches_normal(noise * sigma * too_wide + mu, mu, sigma)  # a bit too wide
        assert not _uncorrelated(delta, delta)
    # a one-element tensor has σ = 0: it moves by exactly Δ
    torch.testing.assert_close(params[2].detach(), previous[2] + deltas[2], rtol=0, atol=1e-6)


def test_element_mode_draws_each_element_around_its_own_delta() -> None:
    params, deltas = _two_epochs([((400, 400), 0.0, 1.0)], seed=1)
    scale = 0.5
    sampler = GradSampler(params, dist="element", scale=scale)
    previous = _record_two(sampler, params, deltas)
    sampler.step(make_generator("cpu", 5))
    change = (params[0].detach() - previous[0]).double()
    delta = deltas[0].double()
    standardized = (change - delta) / (scale * delta.abs())
    assert _matches_normal(standardized, 0.0, 1.0)
    assert _uncorrelated(standardized, delta)
    # a layer-mode draw (same mean/std over the tensor) is not element-wise: it fails
    layer = delta.mean() + delta.std() * torch.randn(delta.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert not _matches_normal((layer - delta) / (scale * delta.abs()), 0.0, 1.0)


def test_element_mode_with_zero_scale_extrapolates_and_record_rotates() -> None:
    params, deltas = _two_epochs([((3, 4), 0.1, 1.0), ((5,), 0.0, 1.0)], seed=2)
    sampler = GradSampler(params, dist="element", scale=0.0)
    sampler.record()  # θ1 (dropped after two more records)
    with torch.no_grad():
        for p in params:
            p.mul_(3.0)
    _record_two(sampler, params, deltas)  # θ2 = 3θ1, θ3 = θ2 + Δ: snapshots must be θ3, θ2
    expected = [p.detach() + d for p, d in zip(params, deltas)]
    sampler.step(make_generator("cpu", 0))
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e, rtol=0, atol=1e-6)


def test_skip_mode_leaves_every_parameter_bit_identical() -> None:
    params, deltas = _two_epochs([((50, 50), 0.3, 2.0), ((7,), 1.0, 1.0)], seed=3)
    sampler = GradSampler(params, dist="skip")
    previous = _record_two(sampler, params, deltas)
    generator = make_generator("cpu", 0)
    state = generator.get_state()
    sampler.step(generator)
    for p, prev in zip(params, previous):
        assert torch.equal(p.detach(), prev)
    assert torch.equal(generator.get_state(), state), "skip must draw no noise"


def test_state_dict_round_trip_reproduces_the_next_sample() -> None:
    params, deltas = _two_epochs([((20, 30), 0.3, 2.0), ((30,), 0.0, 0.1)], seed=4)
    sampler = GradSampler(params, dist="layer")
    previous = _record_two(sampler, params, deltas)
    buffer = io.BytesIO()
    generator = make_generator("cpu", 77)
    torch.save({"sampler": sampler.state_dict(), "generator": generator.get_state()}, buffer)
    sampler.step(generator)
    first = [p.detach().clone() for p in params]

    restored_params = [torch.nn.Parameter(prev.clone()) for prev in previous]
    restored = GradSampler(restored_params, dist="skip", scale=9.0)
    buffer.seek(0)
    checkpoint = torch.load(buffer)
    restored.load_state_dict(checkpoint["sampler"])
    assert restored.ready and restored.dist == "layer"
    generator.set_state(checkpoint["generator"])
    restored.step(generator)
    for a, b in zip(first, restored_params):
        assert torch.equal(a, b.detach())
    assert not torch.equal(first[0], previous[0])


def test_sampler_errors() -> None:
    p = [torch.nn.Parameter(torch.zeros(3))]
    with pytest.raises(UserError):
        GradSampler(p, dist="gaussian")
    with pytest.raises(UserError):
        GradSampler(p, dist="element", scale=-1.0)
    sampler = GradSampler(p)
    sampler.record()
    with pytest.raises(RuntimeError):
        sampler.step(make_generator("cpu", 0))
    with pytest.raises(ValueError):
        GradSampler(p).load_state_dict(
            {"dist": "layer", "scale": 1.0, "previous": [torch.zeros(4)], "older": None}
        )
