"""Small classifiers: an MLP for flattened digits and a CNN for the cube renders."""

from __future__ import annotations

import torch
from torch import nn


class MLPClassifier(nn.Module):
    """Flattened image -> class logits; small enough to train in seconds on one core."""

    def __init__(self, in_features: int, num_classes: int, hidden: int = 128) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.net[0].in_features:
            raise ValueError(f"expected (batch, {self.net[0].in_features}) inputs, got {tuple(x.shape)}")
        return self.net(x)


class SmallCNN(nn.Module):
    """(B, 3, H, W) images in [0, 1] -> class logits; global pooling makes it size-agnostic."""

    def __init__(self, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (batch, 3, H, W) images, got {tuple(x.shape)}")
        return self.head(self.features(x))
