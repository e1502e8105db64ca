"""Small labelled image sets rendered from the scene, for representation learning experiments.

The vision issue's large sharded generator lives in ``vision``; this is the quick in-memory path
(ml_extras' IAF VAE and ODM domain adaptation use it).
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim import rotations
from sim.config import EnvConfig
from sim.configio import apply_overrides
from sim.scene import VISION_CAMERAS


def render_cube_images(
    n: int, size: int = 64, randomize: bool = False, seed: int = 0, camera: str = "cam_top"
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` renders (uint8, n x size x size x 3) of the cube on the palm in uniformly random
    orientations, and the cube quaternions (n x 4, wxyz, w >= 0).

    ``randomize=True`` applies visual randomization (camera jitter, lights, colours, pixel noise),
    re-sampled every 16 images; physics is not stepped, so images are cheap.
    """
    from sim.env import CubeReorientEnv

    if n < 1 or size < 8:
        raise ValueError(f"need n >= 1 and size >= 8, got n={n}, size={size}")
    if camera not in (*VISION_CAMERAS, "cam_video"):
        raise ValueError(f"unknown camera {camera!r}: use one of {VISION_CAMERAS + ('cam_video',)}")
    overrides = [] if randomize else ["randomization.enabled=false"]
    env = CubeReorientEnv(apply_overrides(EnvConfig(), overrides))
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    quats = np.empty((n, 4))
    qadr = env.ids.cube_qpos
    try:
        for i in range(n):
            if i % 16 == 0:
                env.reset(seed=int(rng.integers(2**31)))
                rest = env.data.qpos[qadr : qadr + 3].copy()
            quat = rotations.random_uniform(rng)
            env.data.qpos[qadr : qadr + 3] = rest + np.array([*rng.uniform(-0.005, 0.005, 2), 0.005])
            env.data.qpos[qadr + 3 : qadr + 7] = quat
            mujoco.mj_forward(env.model, env.data)
            images[i] = env.render_views(size, cameras=(camera,))[camera]
            quats[i] = quat
    finally:
        env.close()
    return images, quats


def face_up_class(quats: np.ndarray) -> np.ndarray:
    """Which cube face points up (0..5 for +x, -x, +y, -y, +z, -z of the cube's frame)."""
    mats = rotations.to_matrix(np.asarray(quats))
    up_in_cube = mats[..., 2, :]  # world z expressed in the cube frame: row 2 of R
    axis = np.abs(up_in_cube).argmax(axis=-1)
    sign = np.take_along_axis(up_in_cube, axis[..., None], axis=-1)[..., 0] < 0
    return axis * 2 + sign.astype(int)
