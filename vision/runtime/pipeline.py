"""The one image pipeline shared by rendered (training, evaluation) and real (robot) images.

check -> undistort (when a calibration is given) -> colour order to RGB -> centre crop -> resize
(INTER_AREA) -> float [0, 1] CHW. Training caches the uint8 output of ``prepare`` and the runtime
calls the same ``prepare``, so both see identically resampled pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import cv2
import numpy as np

from vision.runtime.calibration import CameraCalibration


@dataclass
class PipelineConfig:
    input_size: int = 200  # expected square camera image, pixels
    net_size: int = 64  # what the network sees
    crop: float = 0.8  # fraction of the image kept around the centre (the cube stays near it)
    color_order: str = "rgb"  # of incoming images; real cameras through cv_bridge often give "bgr"

    def to_dict(self) -> dict:
        return {"input_size": self.input_size, "net_size": self.net_size, "crop": self.crop,
                "color_order": self.color_order}


class ImagePipeline:
    """Validates and resamples camera images into network input."""

    def __init__(self, config: PipelineConfig, calibrations: Mapping[str, CameraCalibration] | None = None):
        if config.color_order not in ("rgb", "bgr"):
            raise ValueError(f"color_order must be 'rgb' or 'bgr', got {config.color_order!r}")
        if not 0.1 <= config.crop <= 1.0:
            raise ValueError(f"crop must be in [0.1, 1], got {config.crop}")
        self.config = config
        self.calibrations = dict(calibrations or {})
        self._maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name, cal in self.calibrations.items():
            if (cal.width, cal.height) != (config.input_size, config.input_size):
                raise ValueError(
                    f"calibration of {name!r} is for {cal.width}x{cal.height} images, the pipeline expects "
                    f"{config.input_size}x{config.input_size}")
            self._maps[name] = cv2.initUndistortRectifyMap(
                cal.camera_matrix, cal.distortion, None, cal.ideal_matrix(), (cal.width, cal.height), cv2.CV_32FC1)

    def check(self, name: str, image: object) -> np.ndarray:
        """Raise ValueError naming the camera and the problem unless ``image`` is uint8 HxWx3 of the right size."""
        s = self.config.input_size
        if not isinstance(image, np.ndarray):
            raise ValueError(f"camera {name!r}: expected a numpy array, got {type(image).__name__}")
        if image.dtype != np.uint8:
            raise ValueError(f"camera {name!r}: expected dtype uint8, got {image.dtype}")
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"camera {name!r}: expected an HxWx3 colour image, got shape {image.shape}")
        if image.shape[:2] != (s, s):
            raise ValueError(f"camera {name!r}: expected {s}x{s} pixels, got {image.shape[1]}x{image.shape[0]}")
        return image

    def prepare(self, name: str, image: np.ndarray) -> np.ndarray:
        """Checked image -> uint8 net_size x net_size x 3 RGB."""
        image = self.check(name, image)
        if name in self._maps:
            mx, my = self._maps[name]
            image = cv2.remap(image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        if self.config.color_order == "bgr":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        s = self.config.input_size
        keep = int(round(s * self.config.crop))
        start = (s - keep) // 2
        image = image[start:start + keep, start:start + keep]
        n = self.config.net_size
        return cv2.resize(image, (n, n), interpolation=cv2.INTER_AREA)

    @staticmethod
    def to_input(prepared: np.ndarray) -> np.ndarray:
        """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [0, 1]."""
        x = prepared.astype(np.float32) * (1.0 / 255.0)
        return np.moveaxis(x, -1, -3)

    def batch(self, images: Mapping[str, np.ndarray], cameras: Sequence[str],
              allow_missing: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Images for ``cameras`` -> (1, n_cams, 3, S, S) float32 and a (n_cams,) bool mask of present ones.

        A missing camera is a ValueError unless ``allow_missing``; then it becomes a black image, which is
        what the training's camera dropout showed the network.
        """
        if not isinstance(images, Mapping):
            raise ValueError(f"images must be a dict camera name -> image, got {type(images).__name__}")
        unknown = sorted(set(images) - set(cameras))
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; this model uses {list(cameras)}")
        missing = [c for c in cameras if images.get(c) is None]
        if missing and not allow_missing:
            raise ValueError(f"missing camera image(s) {missing}; pass allow_missing=True for the degraded "
                             f"mode (black image, lower confidence)")
        if len(missing) == len(cameras):
            raise ValueError("no camera images given")
        n = self.config.net_size
        out = np.zeros((1, len(cameras), n, n, 3), dtype=np.uint8)
        present = np.zeros(len(cameras), dtype=bool)
        for i, cam in enumerate(cameras):
            if cam in missing:
                continue
            out[0, i] = self.prepare(cam, images[cam])
            present[i] = True
        return self.to_input(out), present
