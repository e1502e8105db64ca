"""Checkpoint -> ONNX (legacy TorchScript exporter: no onnxscript needed) + a metadata JSON beside it.

The JSON holds everything the runtime needs besides the weights: camera order, pipeline settings,
output conventions, the confidence scale, validation figures and the command that trained it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sim.configio import from_dict
from vision.config import TrainConfig
from vision.train import build_model

OUTPUTS = ("pos", "rot6d", "err")


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict]:
    ck = torch.load(path, weights_only=False)
    cfg = from_dict(TrainConfig, ck["config"])
    model = build_model(cfg, len(ck["cameras"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def export_onnx(checkpoint: Path, out: Path, command: str = "") -> Path:
    model, ck = load_checkpoint(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = ck["pipeline"]["net_size"]
    dummy = torch.zeros(1, len(ck["cameras"]), 3, n, n)
    torch.onnx.export(model, (dummy,), str(out), dynamo=False, input_names=["images"], output_names=list(OUTPUTS),
                      dynamic_axes={"images": {0: "batch"}, **{k: {0: "batch"} for k in OUTPUTS}}, opset_version=17)
    pred = ck["val"].get("pred_err_median", [1.0, 1.0])
    meta = {
        "format": "dexhand-vision-pose/1",
        "cameras": ck["cameras"],
        "pipeline": ck["pipeline"],
        "input": "images: float32 (batch, n_cams, 3, S, S), RGB in [0, 1], cameras in the listed order; "
                 "a missing camera is all zeros",
        "outputs": {"pos": "metres, cube centre relative to sim.env.HAND_ORIGIN, hand axes",
                    "rot6d": "first two columns of the cube's rotation matrix (Gram-Schmidt to use)",
                    "err": "the network's estimate of its position error (mm) and orientation error (deg)"},
        # confidence = 0.5 ** mean(err / scale): 0.5 at the validation median of the predicted errors.
        "confidence_scale": [max(float(pred[0]), 1e-3), max(float(pred[1]), 1e-3)],
        "validation": ck["val"],
        "epoch": int(ck["epoch"]),
        "n_train": ck.get("n_train"),
        "data": ck.get("data"),
        "train_config": ck["config"],
        "command": ck.get("command") or command,  # what trained it
        "exported_by": command,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    return out


def torch_outputs(model: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        return tuple(t.numpy() for t in model(torch.from_numpy(x)))
