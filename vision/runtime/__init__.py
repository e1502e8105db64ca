"""Robot-side vision runtime (numpy + onnxruntime + opencv only; Python 3.8 syntax)."""

from __future__ import annotations

from vision.runtime.estimator import DEFAULT_MODEL, PoseEstimate, PoseEstimator
from vision.runtime.pipeline import ImagePipeline, PipelineConfig

__all__ = ["DEFAULT_MODEL", "ImagePipeline", "PipelineConfig", "PoseEstimate", "PoseEstimator"]
