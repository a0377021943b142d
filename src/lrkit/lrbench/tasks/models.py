"""Small classifiers for the built-in tasks (torch). LRBench's CNN3 and LeNet, adapted to 28×28.

Each factory takes the input shape ``(C, H, W)`` and the number of classes.
"""

from __future__ import annotations

from torch import nn


def cnn3(in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10) -> nn.Module:
    """LRBench's CNN3 (Caffe's cifar10_quick): three 5×5 conv layers (32, 32, 64), then 64 and 10 units."""
    c, h, w = in_shape
    return nn.Sequential(
        nn.Conv2d(c, 32, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
        nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (h // 8) * (w // 8), 64), nn.ReLU(),
        nn.Linear(64, num_classes),
    )


def lenet(in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10) -> nn.Module:
    """Caffe's LeNet: conv 5×5 ×20, pool, conv 5×5 ×50, pool, 500 units, then the classes."""
    c, h, w = in_shape
    side_h, side_w = ((h - 4) // 2 - 4) // 2, ((w - 4) // 2 - 4) // 2
    return nn.Sequential(
        nn.Conv2d(c, 20, 5), nn.MaxPool2d(2),
        nn.Conv2d(20, 50, 5), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(50 * side_h * side_w, 500), nn.ReLU(),
        nn.Linear(500, num_classes),
    )


def mlp(in_shape: tuple[int, int, int] = (1, 28, 28), num_classes: int = 10,
        hidden: tuple[int, ...] = (256, 128)) -> nn.Module:
    """A multilayer perceptron with ReLU hidden layers."""
    c, h, w = in_shape
    layers: list[nn.Module] = [nn.Flatten()]
    width = c * h * w
    for units in hidden:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
