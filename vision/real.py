"""Labelled image sets stored as files: how a lab's real recordings are read by ``dexhand vision eval --real DIR``.

Layout (one folder)::

    DIR/labels.csv            sample,x,y,z,qw,qx,qy,qz   (one row per sample)
    DIR/<sample>/cam_left.png     the three camera images as recorded (8-bit colour, any format
    DIR/<sample>/cam_right.png    OpenCV reads; .png/.jpg/.bmp tried in that order), all of the
    DIR/<sample>/cam_top.png      size the model's pipeline expects (input_size, e.g. 200x200)
    DIR/calibration.yaml      optional: the cameras' OpenCV calibration (used when present)

``x, y, z``: cube centre in metres relative to the hand origin, hand axes (the estimator's output
frame); ``qw..qz``: cube orientation, unit quaternion wxyz in the same axes. ``write_image_set``
writes rendered samples in this layout (``dexhand vision render-set``), so the whole file path can be
checked on renders before a real set exists.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

COLUMNS = ("sample", "x", "y", "z", "qw", "qx", "qy", "qz")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def write_image_set(folder: Path, images: np.ndarray, pos: np.ndarray, quat: np.ndarray,
                    cameras: Sequence[str], names: Sequence[str] | None = None) -> Path:
    """Write (N, n_cams, H, W, 3) RGB uint8 images and their labels in the layout above."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = list(names) if names is not None else [f"{i:05d}" for i in range(len(images))]
    with (folder / "labels.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i, name in enumerate(names):
            (folder / name).mkdir(exist_ok=True)
            for j, cam in enumerate(cameras):
                path = folder / name / f"{cam}.png"
                if not cv2.imwrite(str(path), cv2.cvtColor(images[i, j], cv2.COLOR_RGB2BGR)):
                    raise OSError(f"could not write {path}")
            w.writerow([name, *(f"{v:.6f}" for v in pos[i]), *(f"{v:.7f}" for v in quat[i])])
    return folder


def _image_path(folder: Path, sample: str, cam: str) -> Path:
    for suffix in IMAGE_SUFFIXES:
        path = folder / sample / f"{cam}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"{folder}: sample {sample!r} has no image for camera {cam!r} "
                            f"(looked for {sample}/{cam}{{{','.join(IMAGE_SUFFIXES)}}})")


def read_image_set(folder: Path, cameras: Sequence[str]) -> dict[str, np.ndarray]:
    """The set in ``folder`` as RGB uint8 images (N, n_cams, H, W, 3), ``pos`` (N, 3), ``quat`` (N, 4) w >= 0
    and ``names``; errors name the file, row and column at fault."""
    folder = Path(folder)
    labels = folder / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(f"{labels} not found (a labelled set needs labels.csv: {','.join(COLUMNS)})")
    with labels.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise ValueError(f"{labels}: no samples")
    missing = [c for c in COLUMNS if c not in rows[0]]
    if missing:
        raise ValueError(f"{labels}: missing column(s) {missing}; expected {','.join(COLUMNS)}")
    images, pos, quat, names = [], [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            values = np.array([float(row[c]) for c in COLUMNS[1:]])
        except ValueError as exc:
            raise ValueError(f"{labels} line {line}: {exc}") from None
        q = values[3:]
        norm = np.linalg.norm(q)
        if not np.all(np.isfinite(values)) or abs(norm - 1.0) > 1e-3:
            raise ValueError(f"{labels} line {line}: need finite values and a unit quaternion, got {values.tolist()}")
        q = q / norm
        views = []
        for cam in cameras:
            path = _image_path(folder, row["sample"], cam)
            bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f"{path}: OpenCV cannot read it as a colour image")
            views.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        shapes = {v.shape for v in views}
        if len(shapes) != 1:
            raise ValueError(f"{folder / row['sample']}: camera images differ in size {sorted(shapes)}")
        images.append(np.stack(views))
        pos.append(values[:3])
        quat.append(q if q[0] >= 0 else -q)
        names.append(row["sample"])
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise ValueError(f"{folder}: samples have images of different sizes {sorted(shapes)}")
    return {"images": np.stack(images), "pos": np.array(pos), "quat": np.array(quat), "names": np.array(names)}


def evaluate_image_set(model: Path, folder: Path, calibration: Path | None = None) -> dict:
    """``dexhand vision eval --real DIR``: the estimator on a labelled set of files (all cameras, and one
    camera blacked out in turn)."""
    from vision.evaluate import score_set
    from vision.runtime import PoseEstimator

    folder = Path(folder)
    if calibration is None and (folder / "calibration.yaml").is_file():
        calibration = folder / "calibration.yaml"
    estimator = PoseEstimator.load(model, threads=1, calibration=calibration)
    data = read_image_set(folder, estimator.cameras)
    return {
        "model": str(model), "n": len(data["pos"]), "seed": None, "real": str(folder),
        "calibration": str(calibration) if calibration else None,
        "sets": {"files": score_set(estimator, data),
                 "files, one camera blacked out": score_set(estimator, data, blackout=True)},
    }
