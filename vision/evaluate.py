"""``dexhand vision eval``: errors of an exported (ONNX) model on fresh renders, through the robot runtime.

Three sets: randomized, nominal (randomization off), and randomized with one camera blacked out (the
estimator's degraded mode, cycling through the cameras). A model with a centre head triangulates the
position with the cameras' poses as a calibration would give them (the true, randomized poses perturbed
by ``ExtrinsicsError``); two more sets score it with the exact poses, and with its direct position
regression, as without calibrated extrinsics. Median and p90 of position error (mm) and
orientation error (deg), the mean confidence, and how well confidence ranks the errors (Spearman
correlation of 1 - confidence with the error: 1 = the least confident poses are the worst).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vision.config import ExtrinsicsError, GenConfig
from vision.runtime.rotations import quat_angle


def _rank_corr(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (no scipy needed)."""
    if len(a) < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def score_set(estimator, samples: dict[str, np.ndarray], blackout: bool = False,
              geometry: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Errors and confidence ranking on ``samples``; ``geometry``: each sample's calibrated cameras."""
    cams = estimator.cameras
    pos_err, rot_err, conf = [], [], []
    for i in range(len(samples["pos"])):
        images = {c: samples["images"][i, j] for j, c in enumerate(cams)}
        if blackout:
            images.pop(cams[i % len(cams)])
        pos, quat, c = estimator.estimate(images, allow_missing=blackout,
                                          camera_geometry=None if geometry is None else geometry[i])
        pos_err.append(np.linalg.norm(pos - samples["pos"][i]) * 1000)
        rot_err.append(np.degrees(quat_angle(quat, samples["quat"][i])))
        conf.append(c)
    pos_err, rot_err, conf = np.array(pos_err), np.array(rot_err), np.array(conf)
    return {
        "n": len(pos_err),
        "pos_mm_median": float(np.median(pos_err)), "pos_mm_p90": float(np.percentile(pos_err, 90)),
        "rot_deg_median": float(np.median(rot_err)), "rot_deg_p90": float(np.percentile(rot_err, 90)),
        "confidence_mean": float(conf.mean()),
        # Spearman correlation of (1 - confidence) with the error (mm / 2 + deg / 3): +1 when the least
        # confident poses are exactly the worst ones, 0 when confidence says nothing
        "uncertainty_vs_error_rank_corr": _rank_corr(-conf, pos_err / 2.0 + rot_err / 3.0),
        "pos_rank_corr": _rank_corr(-conf, pos_err), "rot_rank_corr": _rank_corr(-conf, rot_err),
    }


def evaluate(model: Path, n: int = 200, seed: int = 1000, calibration: Path | None = None,
             extrinsics_error: ExtrinsicsError | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    from vision.data import generate_samples, sample_cameras
    from vision.runtime import PoseEstimator

    estimator = PoseEstimator.load(model, threads=1)
    cal = str(calibration) if calibration else ""
    randomized = generate_samples(GenConfig(randomize=True, calibration=cal), seed, n)
    nominal = generate_samples(GenConfig(randomize=False, calibration=cal), seed + 1, n)
    error = extrinsics_error or ExtrinsicsError()
    results: dict[str, Any] = {"model": str(model), "n": n, "seed": seed, "sets": {}}
    if not estimator.has_centre_head:
        results["sets"] = {"randomized": score_set(estimator, randomized), "nominal": score_set(estimator, nominal),
                           "randomized, one camera blacked out": score_set(estimator, randomized, blackout=True)}
        return results
    size = estimator.pipeline.config.input_size
    rng = np.random.default_rng([seed, 7])  # the calibration errors: their own stream, fixed by the seed
    geo_random = sample_cameras(randomized, size, error, rng)
    results["position"] = "triangulated with calibrated cameras"
    results["extrinsics_error"] = asdict(error)
    results["sets"] = {
        "randomized": score_set(estimator, randomized, geometry=geo_random),
        "nominal": score_set(estimator, nominal, geometry=sample_cameras(nominal, size, error, rng)),
        "randomized, one camera blacked out": score_set(estimator, randomized, blackout=True, geometry=geo_random),
        "randomized, exact extrinsics": score_set(estimator, randomized, geometry=sample_cameras(randomized, size)),
        "randomized, network position (no extrinsics)": score_set(estimator, randomized),
    }
    return results


def print_evaluation(results: dict[str, Any]) -> None:
    from dexhand.report import format_table

    rows = [{"set": name, "pos mm median": r["pos_mm_median"], "pos mm p90": r["pos_mm_p90"],
             "rot deg median": r["rot_deg_median"], "rot deg p90": r["rot_deg_p90"],
             "mean confidence": r["confidence_mean"], "(1-conf)/err rank corr": r["uncertainty_vs_error_rank_corr"]}
            for name, r in results["sets"].items()]
    if results.get("real"):
        title = f"dexhand vision eval --real: {results['model']} on {results['n']} labelled samples in {results['real']}"
    else:
        title = (f"dexhand vision eval: {results['model']} on {results['n']} fresh samples per set, seed "
                 f"{results['seed']} (bar: median <= 5 mm and <= 5 deg randomized; goal 2 mm, 3 deg)")
    print(format_table(rows, title=title))
