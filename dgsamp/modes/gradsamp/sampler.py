"""GradSamp: replace an epoch of backprop by a Gaussian draw of the parameter update.

arXiv 2406.07332 ("Minimizing Energy Costs in Deep Learning Model Training: The Gaussian
Sampling Approach"). On a sampled epoch ``e`` no data is touched; every trainable tensor
``θ`` is set from the snapshots of the two previous epochs:

    Δ = θ(e−1) − θ(e−2)                       (same shape as θ)

- ``dist="layer"`` (default): μ = mean(Δ), σ = std(Δ) over the tensor's elements
  (Bessel-corrected; σ = 0 for a one-element tensor), and
  θ(e) = θ(e−1) + ε,  ε_i ~ N(μ, σ²) i.i.d. per element.
- ``dist="element"``: θ(e) = θ(e−1) + ε,  ε_i ~ N(Δ_i, (scale·|Δ_i|)²).
- ``dist="skip"``: θ(e) = θ(e−1) bit for bit (the equal-compute control: same schedule,
  same cost, no update).

``record()`` must be called after every epoch (backprop or sampled) so the snapshots are
θ(e−1) and θ(e−2). Snapshots are tensors on the parameters' device; neither ``record`` nor
``step`` synchronises with the host.
"""

from __future__ import annotations

from typing import Any

import torch

from dgsamp.errors import UserError

GRADSAMP_DISTS = ("layer", "element", "skip")


class GradSampler:
    """Keeps θ(e−1), θ(e−2) of ``parameters`` and applies a GradSamp step in place."""

    def __init__(
        self, parameters: list[torch.nn.Parameter], dist: str = "layer", scale: float = 1.0
    ) -> None:
        if dist not in GRADSAMP_DISTS:
            raise UserError(
                f"--gradsamp_dist '{dist}' is unknown; choose one of {', '.join(GRADSAMP_DISTS)}"
            )
        if not float(scale) >= 0.0:
            raise UserError(f"--gradsamp_scale must be >= 0 (got {scale})")
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError("GradSampler needs at least one parameter")
        self.dist = dist
        self.scale = float(scale)
        # _previous holds θ(e−1), _older holds θ(e−2); both rotate on record().
        self._previous: list[torch.Tensor] | None = None
        self._older: list[torch.Tensor] | None = None

    @property
    def ready(self) -> bool:
        """True once two snapshots exist, i.e. a step can be taken."""
        return self._older is not None

    @torch.no_grad()
    def record(self) -> None:
        """Snapshot the parameters as the newest epoch's θ; the oldest snapshot is reused."""
        if self._previous is None:
            self._previous = [p.detach().clone() for p in self.parameters]
            return
        reuse = self._older
        self._older = self._previous
        if reuse is None:
            self._previous = [p.detach().clone() for p in self.parameters]
        else:
            for buffer, p in zip(reuse, self.parameters):
                buffer.copy_(p.detach())
            self._previous = reuse

    @torch.no_grad()
    def step(self, generator: torch.Generator) -> None:
        """Set every parameter to θ(e−1) + ε (see module docstring); ``skip`` changes nothing.

        ``generator`` should live on the parameters' device; a generator elsewhere still
        works, at the price of copying the noise to the device.
        """
        if not self.ready:
            raise RuntimeError("GradSampler.step needs two recorded epochs; call record() first")
        if self.dist == "skip":
            return
        assert self._previous is not None and self._older is not None
        for p, previous, older in zip(self.parameters, self._previous, self._older):
            delta = previous - older
            noise = _standard_normal(p, generator)
            if self.dist == "layer":
                mean = delta.mean()
                std = delta.std() if delta.numel() > 1 else torch.zeros_like(mean)
                update = noise.mul_(std).add_(mean)
            else:  # element
                update = noise.mul_(delta.abs().mul_(self.scale)).add_(delta)
            p.copy_(previous.add(update))

    def state_dict(self) -> dict[str, Any]:
        """Options and snapshots (cloned), for checkpoints."""
        return {
            "dist": self.dist,
            "scale": self.scale,
            "previous": None if self._previous is None else [t.clone() for t in self._previous],
            "older": None if self._older is None else [t.clone() for t in self._older],
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore snapshots onto the parameters' devices; shapes must match."""
        self.dist = state["dist"]
        self.scale = float(state["scale"])
        self._previous = self._restore(state["previous"])
        self._older = self._restore(state["older"])

    def _restore(self, tensors: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        if tensors is None:
            return None
        if len(tensors) != len(self.parameters):
            raise ValueError(
                f"GradSampler state has {len(tensors)} tensors, the model {len(self.parameters)}"
            )
        restored = []
        for t, p in zip(tensors, self.parameters):
            if t.shape != p.shape:
                raise ValueError(f"GradSampler snapshot shape {tuple(t.shape)} != {tuple(p.shape)}")
            restored.append(t.detach().to(device=p.device, dtype=p.dtype).clone())
        return restored


def _standard_normal(like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """N(0, 1) noise shaped like ``like``, drawn from ``generator`` (on its own device)."""
    if generator.device.type == like.device.type:
        return torch.randn(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    noise = torch.randn(like.shape, generator=generator, device=generator.device, dtype=like.dtype)
    return noise.to(like.device, non_blocking=True)


def make_generator(device: torch.device | str, seed: int) -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed`` (what ``step`` expects)."""
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    return generator
