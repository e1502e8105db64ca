"""Robot-side cube pose estimator: numpy + onnxruntime + opencv, Python 3.8.

    est = PoseEstimator.load()                       # the shipped model (DEFAULT_MODEL)
    pos, quat, confidence = est.estimate({"cam_left": img_l, "cam_right": img_r, "cam_top": img_t})

``pos`` (3,) metres relative to the hand origin (hand axes), ``quat`` (4,) wxyz with w >= 0,
``confidence`` in [0, 1]: 0.5 ** mean(predicted error / its validation median), so 0.5 is a typical
frame and lower means the network expects a larger error. A triangulated pose replaces the predicted
position error (it predicts the regression's) by the rays' reprojection residual, and counts the
predicted orientation error twice: 0.5 ** ((2 rot / its median + residual / its median) / 3), which ranks
the errors better on a tuning set (``vision/models/README.md``). Consumers should reject poses below a
threshold (``min_confidence``; e.g. hold the last good pose).

Position: a model with a centre head (output ``uv``: the cube centre's position in each image)
triangulates it with the cameras' calibrated poses when it has them (``camera_geometry``, from a
calibration file with extrinsics, or passed per call); otherwise, or with fewer than two cameras
showing the cube, the position is the network's direct regression. ``PoseEstimate.position_source``
says which.

Missing cameras: by default a ValueError naming them. ``allow_missing=True`` is the documented
degraded mode: the missing view is fed as a black image (the training blacked out one camera at
random, so the network knows this case) and the confidence reflects the larger expected error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np

from vision.runtime.calibration import CameraCalibration, load_calibration
from vision.runtime.geometry import CameraGeometry, triangulate_centre
from vision.runtime.pipeline import ImagePipeline, PipelineConfig
from vision.runtime.rotations import matrix_to_quat, sixd_to_matrix

DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "models" / "pose_cnn.onnx"


class PoseEstimate(NamedTuple):
    pos: np.ndarray
    quat: np.ndarray
    confidence: float
    expected_pos_error_mm: float
    expected_rot_error_deg: float
    cameras_used: tuple[str, ...]
    position_source: str = "network"  # "triangulated" (centre head + calibrated cameras) or "network"
    reprojection_px: float = float("nan")  # rms reprojection error of the triangulated centre


class PoseEstimator:
    """ONNX pose CNN with the shared image pipeline in front of it."""

    def __init__(self, model_path: str | Path, metadata: dict, threads: int = 1,
                 calibrations: dict[str, CameraCalibration] | None = None, color_order: str | None = None,
                 min_confidence: float = 0.0, camera_geometry: dict[str, CameraGeometry] | None = None) -> None:
        import onnxruntime as ort

        self.metadata = metadata
        self.cameras = tuple(metadata["cameras"])
        p = dict(metadata["pipeline"])
        if color_order is not None:
            p["color_order"] = color_order
        self.pipeline = ImagePipeline(PipelineConfig(**p), calibrations)
        self.confidence_scale = np.asarray(metadata.get("confidence_scale", [1.0, 1.0]), dtype=np.float64)
        self.residual_scale = float(metadata.get("residual_scale_px", 0.0))  # 0: residual not used
        self.min_confidence = float(min_confidence)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.has_centre_head = "uv" in self.output_names
        self.camera_geometry = self._check_geometry(camera_geometry) if camera_geometry else None

    def _check_geometry(self, geometry: dict[str, CameraGeometry]) -> dict[str, CameraGeometry]:
        """The cameras' geometry in this model's camera order; a ValueError names any camera it lacks."""
        missing = [c for c in self.cameras if c not in geometry]
        if missing:
            raise ValueError(f"camera geometry lacks camera(s) {missing}; this model uses {list(self.cameras)}")
        return {c: geometry[c] for c in self.cameras}

    @classmethod
    def load(cls, path: str | Path | None = None, threads: int = 1,
             calibration: str | Path | None = None, **kwargs) -> PoseEstimator:
        """Load ``path`` (default DEFAULT_MODEL) and its metadata JSON (same name, .json)."""
        path = Path(path) if path is not None else DEFAULT_MODEL
        if not path.is_file():
            raise FileNotFoundError(f"pose model not found: {path}")
        meta_path = path.with_suffix(".json")
        if not meta_path.is_file():
            raise FileNotFoundError(f"pose model metadata not found: {meta_path} (export writes it beside the .onnx)")
        metadata = json.loads(meta_path.read_text())
        cals = load_calibration(calibration) if calibration is not None else None
        if cals and "camera_geometry" not in kwargs and all(cal.has_extrinsics for cal in cals.values()):
            kwargs["camera_geometry"] = {name: cal.geometry() for name, cal in cals.items()}
        return cls(path, metadata, threads=threads, calibrations=cals, **kwargs)

    def run_network(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Raw network outputs by name (pos, rot6d, err, and uv with a centre head) for a prepared batch."""
        outs = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})
        return dict(zip(self.output_names, outs))

    def estimate_full(self, images: dict[str, np.ndarray], allow_missing: bool = False,
                      camera_geometry: dict[str, CameraGeometry] | None = None) -> PoseEstimate:
        """The pose from a dict camera name -> uint8 HxWx3 image; ``camera_geometry`` (this frame's
        calibrated cameras) overrides the estimator's own."""
        x, present = self.pipeline.batch(images, self.cameras, allow_missing=allow_missing)
        out = {k: v[0].astype(np.float64) for k, v in self.run_network(x).items()}
        pos, rot6d, err = out["pos"], out["rot6d"], out["err"]
        used = tuple(c for c, ok in zip(self.cameras, present) if ok)
        if not all(np.all(np.isfinite(v)) for v in out.values()):
            return PoseEstimate(np.full(3, np.nan), np.array([1.0, 0, 0, 0]), 0.0, np.inf, np.inf, used)
        quat = matrix_to_quat(sixd_to_matrix(rot6d))
        confidence = float(0.5 ** float(np.mean(np.maximum(err, 0.0) / self.confidence_scale)))
        geometry = self._check_geometry(camera_geometry) if camera_geometry else self.camera_geometry
        if self.has_centre_head and geometry is not None:
            p = self.pipeline.config
            tri = triangulate_centre(out["uv"], geometry, p.input_size, p.crop, usable=present)
            if tri is not None:
                if self.residual_scale > 0:
                    ratio = (2.0 * max(err[1], 0.0) / self.confidence_scale[1] + tri.residual_px / self.residual_scale)
                    confidence = float(0.5 ** (ratio / 3.0))
                return PoseEstimate(tri.point, quat, confidence, float(err[0]), float(err[1]), used,
                                    "triangulated", tri.residual_px)
        return PoseEstimate(pos, quat, confidence, float(err[0]), float(err[1]), used)

    def estimate(self, images: dict[str, np.ndarray], allow_missing: bool = False,
                 camera_geometry: dict[str, CameraGeometry] | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """(pos (3,), quat (4,) wxyz, confidence) from a dict camera name -> uint8 HxWx3 image."""
        e = self.estimate_full(images, allow_missing=allow_missing, camera_geometry=camera_geometry)
        return e.pos, e.quat, e.confidence

    def accept(self, confidence: float) -> bool:
        """Whether a pose with this confidence should be used (``min_confidence`` threshold)."""
        return bool(np.isfinite(confidence)) and confidence >= self.min_confidence
