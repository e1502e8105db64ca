"""The pose CNN: one convolutional trunk shared by the three cameras, a fusion MLP head (Dactyl-style).

Input: (B, n_cams, 3, S, S) float in [0, 1] (``ImagePipeline`` output). Outputs:
``pos`` (B, 3) metres in the hand frame; ``rot6d`` (B, 6) the first two columns of the rotation
matrix (continuous, Gram-Schmidt turns it into a rotation); ``err`` (B, 2) the network's own
estimate of its position error (mm) and orientation error (deg), which becomes the confidence.
"""

from __future__ import annotations

import torch
from torch import nn

POS_SCALE = 0.02  # m: the head predicts position in units of 2 cm


class Trunk(nn.Module):
    """Strided conv stack -> flattened map -> feature vector (flattening keeps where things are)."""

    def __init__(self, net_size: int, channels: tuple[int, ...], strides: tuple[int, ...], feature_dim: int) -> None:
        super().__init__()
        if len(strides) != len(channels):
            raise ValueError(f"{len(channels)} conv layers but {len(strides)} strides")
        layers, c_in, s = [], 3, net_size
        for i, (c, stride) in enumerate(zip(channels, strides)):
            layers += [nn.Conv2d(c_in, c, 5 if i == 0 else 3, stride=stride, padding=2 if i == 0 else 1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            c_in, s = c, s // stride
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c_in * s * s, feature_dim), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


class PoseNet(nn.Module):
    def __init__(self, n_cams: int = 3, net_size: int = 64, channels: tuple[int, ...] = (16, 32, 64, 64, 128),
                 strides: tuple[int, ...] = (2, 2, 2, 2, 2), feature_dim: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.n_cams = n_cams
        self.trunk = Trunk(net_size, tuple(channels), tuple(strides), feature_dim)
        self.head = nn.Sequential(
            nn.Linear(n_cams * feature_dim, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 3 + 6 + 2),
        )
        self.register_buffer("rot_bias", torch.tensor([1.0, 0, 0, 0, 1.0, 0]), persistent=False)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n = images.shape[0], images.shape[1]
        x = (images.reshape(b * n, *images.shape[2:]) - 0.5) * 4.0
        feats = self.trunk(x).reshape(b, -1)
        out = self.head(feats)
        pos = out[:, :3] * POS_SCALE
        rot6d = out[:, 3:9] + self.rot_bias
        err = nn.functional.softplus(out[:, 9:11]) * 10.0
        return pos, rot6d, err


def sixd_to_matrix(sixd: torch.Tensor) -> torch.Tensor:
    """Torch twin of vision.runtime.rotations.sixd_to_matrix (columns x, y, z)."""
    a, b = sixd[:, :3], sixd[:, 3:]
    x = nn.functional.normalize(a, dim=-1)
    y = nn.functional.normalize(b - (x * b).sum(-1, keepdim=True) * x, dim=-1)
    return torch.stack([x, y, torch.cross(x, y, dim=-1)], dim=-1)


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    q = nn.functional.normalize(q, dim=-1)
    w, x, y, z = q.unbind(-1)
    return torch.stack([
        torch.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], dim=-2)


def rotation_angle(r_pred: torch.Tensor, r_true: torch.Tensor) -> torch.Tensor:
    """Geodesic angle (rad) between rotation matrices."""
    trace = (r_pred.transpose(-1, -2) @ r_true).diagonal(dim1=-2, dim2=-1).sum(-1)
    return torch.arccos(((trace - 1) / 2).clamp(-1 + 1e-6, 1 - 1e-6))
