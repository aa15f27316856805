"""The multilayer perceptron DomainBed uses as domain discriminator (DANN, CDANN).

    h_0 = x                                    x: [B, n_inputs]
    h_l = ReLU(Dropout(W_l h_{l-1} + b_l))     l = 1 .. depth-1, width ``mlp_width``
    out = W_depth h_{depth-1} + b_depth        out: [B, n_outputs]

``depth`` counts linear layers (DomainBed's ``mlp_depth``, at least 2).
"""

from __future__ import annotations

from torch import Tensor, nn


class MLP(nn.Module):
    """``depth`` linear layers of ``width`` units, dropout and ReLU between them."""

    def __init__(self, n_inputs: int, n_outputs: int, width: int, depth: int, dropout: float):
        super().__init__()
        if depth < 2:
            raise ValueError(f"MLP depth must be >= 2 (input and output layers), got {depth}")
        layers: list[nn.Module] = []
        n_in = n_inputs
        for _ in range(depth - 1):
            layers += [nn.Linear(n_in, width), nn.Dropout(dropout), nn.ReLU()]
            n_in = width
        layers.append(nn.Linear(n_in, n_outputs))
        self.layers = nn.Sequential(*layers)
        self.n_outputs = n_outputs

    @classmethod
    def from_hparams(cls, n_inputs: int, n_outputs: int, hparams: dict) -> MLP:
        return cls(
            n_inputs, n_outputs, hparams["mlp_width"], hparams["mlp_depth"], hparams["mlp_dropout"]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)
