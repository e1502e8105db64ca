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

OUTPUTS = ("pos", "rot6d", "err", "uv")  # uv only with a centre head


def load_checkpoint(path: Path) -> tuple[torch.nn.Module, dict]:
    ck = torch.load(path, weights_only=False)
    cfg = from_dict(TrainConfig, ck["config"])
    model = build_model(cfg, len(ck["cameras"]))
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def export_onnx(checkpoint: Path, out: Path, command: str = "") -> Path:
    """Write ``out`` (ONNX), its metadata JSON and its torch weights (``.pt``, without the optimizer state:
    what ``train.init_from`` or ``load_checkpoint`` read, so training can go on from a shipped model)."""
    model, ck = load_checkpoint(checkpoint)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = ck["pipeline"]["net_size"]
    dummy = torch.zeros(1, len(ck["cameras"]), 3, n, n)
    names = list(OUTPUTS[:len(model(dummy))])
    torch.onnx.export(model, (dummy,), str(out), dynamo=False, input_names=["images"], output_names=names,
                      dynamic_axes={"images": {0: "batch"}, **{k: {0: "batch"} for k in names}}, opset_version=17)
    pred = ck["val"].get("pred_err_median", [1.0, 1.0])
    meta = {
        "format": "dexhand-vision-pose/1",
        "cameras": ck["cameras"],
        "pipeline": ck["pipeline"],
        "input": "images: float32 (batch, n_cams, 3, S, S), RGB in [0, 1], cameras in the listed order; "
                 "a missing camera is all zeros",
        "outputs": {"pos": "metres, cube centre relative to sim.env.HAND_ORIGIN, hand axes",
                    "rot6d": "first two columns of the cube's rotation matrix (Gram-Schmidt to use)",
                    "err": "the network's estimate of its position error (mm) and orientation error (deg)",
                    **({"uv": "(n_cams, 2) the cube centre's position in each network image, -1 and +1 at its edges "
                              "(x right, y down); triangulated with the calibrated cameras (vision.runtime.geometry)"}
                       if "uv" in names else {})},
        # confidence = 0.5 ** mean(err / scale): 0.5 at the validation median of the predicted errors.
        "confidence_scale": [max(float(pred[0]), 1e-3), max(float(pred[1]), 1e-3)],
        # a triangulated pose's confidence uses the rays' reprojection residual instead of the position term
        **({"residual_scale_px": float(ck["val"]["tri_residual_px_median"])}
           if np.isfinite(ck["val"].get("tri_residual_px_median", float("nan"))) else {}),
        "validation": ck["val"],
        "epoch": int(ck["epoch"]),
        "n_train": ck.get("n_train"),
        "data": ck.get("data"),
        "train_config": ck["config"],
        "command": ck.get("command") or command,  # what trained it
        "exported_by": command,
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    torch.save({k: v for k, v in ck.items() if k not in ("optimizer", "scheduler")}, out.with_suffix(".pt"))
    return out


def load_onnx_weights(model: torch.nn.Module, path: Path, images: torch.Tensor) -> list[str]:
    """Copy an exported model's weights into ``model`` (same architecture; extra heads stay fresh) and
    return the names of the parameters it did not have.

    The exporter folds each BatchNorm into the convolution before it, so the ONNX file holds one
    (weight, bias) pair per bias-free convolution, in module order. They are loaded with identity
    BatchNorms, then the BatchNorms are "unfolded": their statistics are measured on ``images`` (a batch
    of training inputs) and their scale and shift set so that the network computes exactly the exported
    function in eval mode and nearly the same in train mode, where batch statistics normalize.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    weights = {t.name: np.array(numpy_helper.to_array(t)) for t in graph.initializer}
    anonymous = [k for k in weights if k.startswith("onnx::")]
    pairs = [k for k in anonymous if weights[k].ndim > 0]
    scalars = [k for k in anonymous if weights[k].ndim == 0]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.bias is None]
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    if len(convs) != len(norms) or len(pairs) != 2 * len(convs) or len(scalars) != 1:
        raise ValueError(f"{path}: {len(pairs)} folded conv tensors for {len(convs)} convolutions: not this architecture")
    params = dict(model.named_parameters())
    with torch.no_grad():
        for conv, norm, w_name, b_name in zip(convs, norms, pairs[0::2], pairs[1::2]):
            if tuple(weights[w_name].shape) != tuple(conv.weight.shape):
                raise ValueError(f"{path}: {w_name} has shape {weights[w_name].shape}, the model wants {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(weights[w_name]))
            norm.weight.fill_(1.0)
            norm.bias.copy_(torch.from_numpy(weights[b_name]))
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
        loaded = set()
        for name, value in weights.items():
            if name in params:
                if tuple(params[name].shape) != tuple(value.shape):
                    raise ValueError(f"{path}: {name} has shape {value.shape}, the model wants {tuple(params[name].shape)}")
                params[name].copy_(torch.from_numpy(value))
                loaded.add(name)
        # the spatial softmax divides by exp(log_temperature): the graph keeps its negation
        model.trunk.softmax.log_temperature.fill_(-float(weights[scalars[0]]))
        loaded.add("trunk.softmax.log_temperature")
        stats: dict[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
        hooks = [m.register_forward_hook(lambda m, inp, out: stats.__setitem__(
            m, (inp[0].mean((0, 2, 3)), inp[0].var((0, 2, 3), unbiased=False)))) for m in norms]
        model.eval()
        model(images)
        for h in hooks:
            h.remove()
        for norm in norms:
            mean, var = stats[norm]
            norm.running_mean.copy_(mean)
            norm.running_var.copy_(var)
            norm.weight.copy_((var + norm.eps).sqrt())
            norm.bias.add_(mean)
    folded = {n for n, m in model.named_modules() if m in convs or m in norms}
    return [n for n in params if n not in loaded and n.rsplit(".", 1)[0] not in folded]


def torch_outputs(model: torch.nn.Module, x: np.ndarray) -> tuple[np.ndarray, ...]:
    with torch.no_grad():
        return tuple(t.numpy() for t in model(torch.from_numpy(x)))
