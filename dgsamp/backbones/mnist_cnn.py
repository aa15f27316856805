"""DomainBed's small CNN for 28x28 MNIST-family inputs, registered as backbone ``mnist_cnn``.

Four 3x3 convolutions (64, 128, 128, 128 channels; the second strided), each followed by
ReLU and GroupNorm(8 groups), then global average pooling:
``x[B, C, 28, 28] -> z[B, 128]``.
"""

from __future__ import annotations

from torch import Tensor, nn

from dgsamp.registry import register_backbone


class MNISTCNN(nn.Module):
    n_outputs = 128

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        widths = [(in_channels, 64, 1), (64, 128, 2), (128, 128, 1), (128, 128, 1)]
        layers: list[nn.Module] = []
        for c_in, c_out, stride in widths:
            layers += [
                nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                nn.ReLU(),
                nn.GroupNorm(8, c_out),
            ]
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.body(x)).flatten(1)


@register_backbone("mnist_cnn")
def mnist_cnn(input_shape: tuple[int, int, int]) -> MNISTCNN:
    return MNISTCNN(input_shape[0])
