"""``dexhand export``: a training checkpoint -> ONNX actor + metadata sidecar for the robot runtime.

The graph holds observation normalization, the actor (features, LSTM with its state as explicit
inputs/outputs, MLP head) and the action clip to [-1, 1]; the JSON sidecar holds the observation
layout, action scaling, joint order, control period and the fingertip kinematic chain.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from torch import nn

# ``sim`` first: it picks MuJoCo's GL backend (EGL/OSMesa), which MuJoCo reads once, when it is imported.
from sim.configio import from_dict  # isort: skip
from sim.env import HAND_ORIGIN, CubeReorientEnv  # isort: skip
from sim.scene import FINGERTIP_SITES  # isort: skip
from dexhand.robot import hand_names
from dexhand.train import checkpoint as ckpt

if TYPE_CHECKING:
    import mujoco

OPSET = 17


def kinematic_chain(model: mujoco.MjModel) -> dict[str, Any]:
    """The bodies between the world and the fingertip sites, for ``dexhand.deploy.kinematics``."""
    import mujoco  # after sim (above) chose the GL backend

    needed: set[int] = set()
    for site in FINGERTIP_SITES:
        b = int(model.site(site).bodyid[0])
        while b > 0:
            needed.add(b)
            b = int(model.body_parentid[b])
    order = sorted(needed)  # MuJoCo numbers parents before children
    index = {b: i for i, b in enumerate(order)}
    hand_joints = [j for j in range(model.njnt) if model.joint(j).name.startswith("robot0:")]
    bodies = []
    for b in order:
        joints = []
        for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
            if model.jnt_type[j] != mujoco.mjtJoint.mjJNT_HINGE:
                raise ValueError(f"joint {model.joint(j).name} is not a hinge: the chain supports hinges only")
            joints.append({"index": hand_joints.index(j), "axis": model.jnt_axis[j].tolist(),
                           "pos": model.jnt_pos[j].tolist()})
        parent = int(model.body_parentid[b])
        bodies.append({"name": model.body(b).name, "parent": index.get(parent, -1),
                       "pos": model.body_pos[b].tolist(), "quat": model.body_quat[b].tolist(), "joints": joints})
    sites = [{"body": index[int(model.site(s).bodyid[0])], "pos": model.site(s).pos.tolist()} for s in FINGERTIP_SITES]
    return {"bodies": bodies, "sites": sites, "origin": HAND_ORIGIN.tolist(), "n_joints": len(hand_joints)}


class ExportedActor(nn.Module):
    """Normalize -> features -> (LSTM) -> policy MLP -> mean action -> clip."""

    def __init__(self, policy: Any, obs_mean: np.ndarray, obs_var: np.ndarray, clip_obs: float, eps: float) -> None:
        super().__init__()
        self.features = policy.pi_features_extractor.net
        self.lstm = getattr(policy, "lstm_actor", None)
        self.mlp = policy.mlp_extractor.policy_net
        self.head = policy.action_net
        self.register_buffer("mean", th.as_tensor(obs_mean, dtype=th.float32))
        self.register_buffer("std", th.as_tensor(np.sqrt(obs_var + eps), dtype=th.float32))
        self.clip_obs = float(clip_obs)

    def forward(self, obs: th.Tensor, h: th.Tensor | None = None, c: th.Tensor | None = None):
        x = th.clamp((obs - self.mean) / self.std, -self.clip_obs, self.clip_obs)
        x = self.features(x)
        if self.lstm is not None:
            y, (h_out, c_out) = self.lstm(x.unsqueeze(0), (h, c))
            x = y.squeeze(0)
        action = th.clamp(self.head(self.mlp(x)), -1.0, 1.0)
        if self.lstm is not None:
            return action, h_out, c_out
        return (action,)


# Config fields older checkpoints may hold that no longer exist (their meaning does not affect the policy).
REMOVED_FIELDS = (("adr", "initial_strength"),)


def _upgrade_config(data: dict[str, Any]) -> dict[str, Any]:
    for section, name in REMOVED_FIELDS:
        if isinstance(data.get(section), dict):
            data[section].pop(name, None)
    return data


def load_checkpoint(path: Path):
    """(model, obs_mean, obs_var, clip_obs, eps, TrainConfig) from a run folder, checkpoint or model.zip."""
    import pickle

    import yaml

    from dexhand.train.config import TrainConfig
    from dexhand.train.trainer import algorithm

    found = ckpt.resolve(Path(path))
    cfg = from_dict(TrainConfig, _upgrade_config(yaml.safe_load((found.path / ckpt.CONFIG_FILE).read_text())))
    algo, _ = algorithm(cfg)
    model = algo.load(found.model, device="cpu")
    n = model.observation_space["policy"].shape[0]
    mean, var, clip, eps = np.zeros(n), np.ones(n), 1e9, 0.0
    if found.normalizer.is_file():
        with found.normalizer.open("rb") as fh:
            norm = pickle.load(fh)
        if norm.norm_obs:
            mean, var = norm.obs_rms["policy"].mean, norm.obs_rms["policy"].var
            clip, eps = norm.clip_obs, norm.epsilon
    return model, mean, var, clip, eps, cfg


def export(checkpoint_path: Path, out: Path) -> Path:
    model, mean, var, clip, eps, cfg = load_checkpoint(checkpoint_path)
    actor = ExportedActor(model.policy, mean, var, clip, eps).eval()
    n_obs = model.observation_space["policy"].shape[0]
    recurrent = actor.lstm is not None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    obs = th.zeros(1, n_obs)
    if recurrent:
        hidden = actor.lstm.hidden_size
        args = (obs, th.zeros(1, 1, hidden), th.zeros(1, 1, hidden))
        names_in, names_out = ["obs", "h", "c"], ["action", "h_out", "c_out"]
    else:
        hidden = 0
        args = (obs,)
        names_in, names_out = ["obs"], ["action"]
    with th.no_grad():
        th.onnx.export(actor, args, str(out), input_names=names_in, output_names=names_out, opset_version=OPSET,
                       dynamo=False)
    env = CubeReorientEnv(cfg.env)
    meta = {
        "format": "dexhand-policy-1",
        "recurrent": recurrent,
        "lstm_hidden": hidden,
        "n_observation": n_obs,
        "n_actions": int(env.model.nu),
        "observation_layout": {k: [s.start, s.stop] for k, s in env.layout.items()},
        "control_period": env.cfg.scene.control_period,
        "action_step": env.action_step.tolist(),
        "ctrl_low": env.ctrl_low.tolist(),
        "ctrl_high": env.ctrl_high.tolist(),
        "actuated_joint_index": [int(np.flatnonzero(env.ids.hand_qpos == a)[0]) for a in env.ids.actuated_qpos],
        "joint_names": [j.model for j in hand_names.JOINTS],
        "actuator_names": [a.model for a in hand_names.ACTUATORS],
        "controllers": list(hand_names.CONTROLLERS),
        "goal_mode": env.cfg.task.goal_mode,
        "success_threshold": env.cfg.task.success_threshold,
        "kinematics": kinematic_chain(env.model),
        "source_checkpoint": str(checkpoint_path),
        "num_timesteps": int(model.num_timesteps),
    }
    env.close()
    meta["onnx_sha256"] = hashlib.sha256(out.read_bytes()).hexdigest()  # ties the sidecar to this graph
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    return out
