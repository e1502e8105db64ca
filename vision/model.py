"""The pose CNN: one convolutional trunk shared by the three cameras, a fusion MLP head (Dactyl-style).

Input: (B, n_cams, 3, S, S) float in [0, 1] (``ImagePipeline`` output). Outputs:
``pos`` (B, 3) metres in the hand frame; ``rot6d`` (B, 6) the first two columns of the rotation
matrix (continuous, Gram-Schmidt turns it into a rotation); ``err`` (B, 2) the network's own
estimate of its position error (mm) and orientation error (deg), which becomes the confidence.

Two trunks: ``keypoints`` (default; Dactyl's tower: conv 5x5, conv 3x3, max-pool, ResNet blocks,
then a spatial softmax that turns K feature maps into K expected image positions, so *where* things
are survives into the features, plus a global-average appearance vector for *which* face shows) and
``flatten`` (the earlier strided stack whose final map is flattened).
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


class ResBlock(nn.Module):
    """Two 3x3 convs with BatchNorm and a (1x1 projected when the shape changes) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class SpatialSoftmax(nn.Module):
    """(B, K, H, W) maps -> (B, 2K) expected (x, y) in [-1, 1] under a per-map softmax (learned temperature)."""

    def __init__(self, height: int, width: int) -> None:
        super().__init__()
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], -1), persistent=False)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        b, k = maps.shape[:2]
        attn = torch.softmax(maps.reshape(b, k, -1) * torch.exp(-self.log_temperature), dim=-1)
        return (attn @ self.grid).reshape(b, 2 * k)


class KeypointTrunk(nn.Module):
    """Stem (conv 5x5 stride strides[0], conv 3x3 stride 2: Dactyl's conv + max-pool at a quarter of the
    cost) to channels[0], then one ResBlock per further (channels[i], strides[i]); the final map feeds a
    1x1 conv to ``keypoints`` maps -> spatial softmax, and a global average pool; both -> FC feature_dim.
    ``keypoint_level`` picks the stage whose (finer) resolution the keypoint maps have: the final map is
    projected (1x1) to that stage's width, upsampled and added to it (-1: the final map itself)."""

    def __init__(self, net_size: int, channels: tuple[int, ...], strides: tuple[int, ...], feature_dim: int,
                 keypoints: int, keypoint_level: int = -1) -> None:
        super().__init__()
        if len(strides) != len(channels):
            raise ValueError(f"{len(channels)} stages but {len(strides)} strides")
        c0 = channels[0]
        layers = [nn.Conv2d(3, c0, 5, stride=strides[0], padding=2, bias=False), nn.BatchNorm2d(c0),
                  nn.ReLU(inplace=True),
                  nn.Conv2d(c0, c0, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c0), nn.ReLU(inplace=True)]
        sizes = [net_size // strides[0] // 2]
        for c_in, c, stride in zip(channels[:-1], channels[1:], strides[1:]):
            layers.append(ResBlock(c_in, c, stride))
            sizes.append(sizes[-1] // stride)
        n_stages = len(channels)
        level = keypoint_level % n_stages
        self.conv = nn.Sequential(*layers)
        # the stem is layers[0:6]; stage i > 0 is layers[5 + i]
        self.level = level
        self.n_stages = n_stages
        if level == n_stages - 1:
            self.lateral = None
            self.keypoints = nn.Conv2d(channels[-1], keypoints, 1)
        else:  # finer keypoints: the deep map, projected by a 1x1 conv and upsampled, plus the finer stage (FPN-style)
            self.lateral = nn.Conv2d(channels[-1], channels[level], 1)
            self.keypoints = nn.Sequential(nn.ReLU(), nn.Conv2d(channels[level], keypoints, 1))
        self.softmax = SpatialSoftmax(sizes[level], sizes[level])
        self.fc = nn.Sequential(nn.Linear(2 * keypoints + channels[-1], feature_dim), nn.ReLU(inplace=True))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> (keypoint positions, pooled appearance), the input of ``fc``."""
        if self.lateral is None:
            f = self.conv(x)
            maps = self.keypoints(f)
        else:
            f = self.conv[:6](x)
            fine = f if self.level == 0 else None
            for i in range(1, self.n_stages):
                f = self.conv[5 + i](f)
                if i == self.level:
                    fine = f
            top = nn.functional.interpolate(self.lateral(f), size=fine.shape[-2:], mode="nearest")
            maps = self.keypoints(fine + top)
        return torch.cat([self.softmax(maps), f.mean((2, 3))], -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.encode(x))


class PoseNet(nn.Module):
    def __init__(self, n_cams: int = 3, net_size: int = 64, channels: tuple[int, ...] = (16, 32, 64, 64, 128),
                 strides: tuple[int, ...] = (2, 2, 2, 2, 2), feature_dim: int = 128, hidden: int = 256,
                 arch: str = "flatten", keypoints: int = 32, keypoint_level: int = -1,
                 centre_head: bool = False) -> None:
        super().__init__()
        self.n_cams = n_cams
        if arch == "keypoints":
            self.trunk = KeypointTrunk(net_size, tuple(channels), tuple(strides), feature_dim, keypoints,
                                       keypoint_level)
        elif arch == "flatten":
            self.trunk = Trunk(net_size, tuple(channels), tuple(strides), feature_dim)
        else:
            raise ValueError(f"arch: {arch!r} is not 'keypoints' or 'flatten'")
        self.head = nn.Sequential(
            nn.Linear(n_cams * feature_dim, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 3 + 6 + 2),
        )
        self.register_buffer("rot_bias", torch.tensor([1.0, 0, 0, 0, 1.0, 0]), persistent=False)
        self.centre: nn.ModuleList | None = None
        if centre_head:  # per camera: (its keypoints, appearance, features) -> the cube centre in its image
            if arch != "keypoints":
                raise ValueError("centre_head needs arch='keypoints'")
            width = feature_dim + 2 * keypoints + channels[-1]
            self.centre = nn.ModuleList(nn.Sequential(nn.Linear(width, 128), nn.ReLU(inplace=True), nn.Linear(128, 2))
                                        for _ in range(n_cams))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(pos, rot6d, err), and with the centre head ``uv`` (B, n_cams, 2): the cube centre's image
        position in each camera, -1 and +1 at the network image's edges (x right, y down)."""
        b, n = images.shape[0], images.shape[1]
        x = (images.reshape(b * n, *images.shape[2:]) - 0.5) * 4.0
        if self.centre is None:
            feats = self.trunk(x)
        else:
            codes = self.trunk.encode(x)
            feats = self.trunk.fc(codes)
            per_cam = torch.cat([feats, codes], -1).reshape(b, n, -1)
            uv = torch.stack([head(per_cam[:, c]) for c, head in enumerate(self.centre)], 1)
        out = self.head(feats.reshape(b, -1))
        pos = out[:, :3] * POS_SCALE
        rot6d = out[:, 3:9] + self.rot_bias
        err = nn.functional.softplus(out[:, 9:11]) * 10.0
        return (pos, rot6d, err) if self.centre is None else (pos, rot6d, err, uv)


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
