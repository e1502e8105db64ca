"""Forward kinematics of the hand's fingertips in numpy, from a chain exported with the policy.

Dactyl's policy saw fingertip positions (from motion capture); on our robot they come from the
joint angles through this chain, so no mujoco is needed on the robot PC. The chain format is what
``dexhand.export.kinematic_chain`` writes from the MuJoCo model.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dexhand.robot.rotations import to_matrix


class FingertipKinematics:
    """Fingertip positions (5 x 3, relative to the hand origin) from the 24 joint angles."""

    def __init__(self, chain: dict[str, Any]) -> None:
        self.bodies = chain["bodies"]  # in topological order: parent index -1 is the world
        self.sites = chain["sites"]  # [{"body": i, "pos": [x, y, z]}]
        self.origin = np.asarray(chain["origin"], dtype=np.float64)
        self.n_joints = int(chain["n_joints"])
        self._rot = [to_matrix(np.asarray(b["quat"], dtype=np.float64)) for b in self.bodies]
        self._pos = [np.asarray(b["pos"], dtype=np.float64) for b in self.bodies]

    def positions(self, joint_positions: np.ndarray) -> np.ndarray:
        q = np.asarray(joint_positions, dtype=np.float64)
        if q.shape != (self.n_joints,):
            raise ValueError(f"expected {self.n_joints} joint angles, got shape {q.shape}")
        world_r: list[np.ndarray] = []
        world_p: list[np.ndarray] = []
        for i, body in enumerate(self.bodies):
            parent = body["parent"]
            if parent < 0:
                r, p = self._rot[i], self._pos[i]
            else:
                r = world_r[parent] @ self._rot[i]
                p = world_p[parent] + world_r[parent] @ self._pos[i]
            for joint in body["joints"]:  # hinges about an axis through a point, in the body frame
                axis = np.asarray(joint["axis"], dtype=np.float64)
                anchor = np.asarray(joint["pos"], dtype=np.float64)
                rj = _axis_angle_matrix(axis, q[joint["index"]])
                p = p + r @ (anchor - rj @ anchor)
                r = r @ rj
            world_r.append(r)
            world_p.append(p)
        tips = [world_p[s["body"]] + world_r[s["body"]] @ np.asarray(s["pos"]) for s in self.sites]
        return np.array(tips) - self.origin


def _axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    x, y, z = axis
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    return np.array([
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ])
