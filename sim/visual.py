"""Visual randomization (camera pose and field of view, lights, colours) and offscreen rendering.

These change only what cameras see, never the physics. Rendering goes through one reusable
``mujoco.Renderer`` per image size; shadows and MSAA are off in the scene for speed.
"""

from __future__ import annotations

import mujoco
import numpy as np

from sim import rotations
from sim.config import VisualRandomization
from sim.randomizers import ModelRandomizer, hand_geom_ids
from sim.scene import CUBE_GEOM, GOAL_GROUP, VISION_CAMERAS


class VisualRandomizer(ModelRandomizer):
    """Per-episode jitter of the vision cameras, lights and colours of hand, cube and background."""

    name = "visual"
    n_params = 0

    def __init__(self, model: mujoco.MjModel, cfg: VisualRandomization) -> None:
        self.cfg = cfg
        self.cameras = np.array([model.camera(c).id for c in VISION_CAMERAS])
        self.hand_geoms = hand_geom_ids(model)
        self.cube_mat = int(model.geom_matid[model.geom(CUBE_GEOM).id])
        self.background_geoms = np.array([model.geom(g).id for g in ("floor0", "backdrop")])
        self._params = np.zeros(0)

    def apply(self, model, nominal, rng, strength):
        c = self.cfg
        n = len(self.cameras)
        model.cam_pos[self.cameras] = nominal.cam_pos[self.cameras] + rng.normal(
            0, c.camera_pos_std * strength, (n, 3)
        )
        for cam in self.cameras:
            tilt = rotations.from_axis_angle(rng.normal(size=3), rng.normal(0, c.camera_angle_std * strength))
            model.cam_quat[cam] = rotations.multiply(nominal.cam_quat[cam], tilt)
        model.cam_fovy[self.cameras] = nominal.cam_fovy[self.cameras] + rng.normal(
            0, c.fovy_std * strength, n
        )
        lo, hi = c.light_diffuse
        mid = 0.5 * (lo + hi)
        model.light_diffuse[:] = rng.uniform(
            mid + (lo - mid) * strength, mid + (hi - mid) * strength, (model.nlight, 1)
        )
        model.light_pos[:] = nominal.light_pos + rng.normal(0, c.light_pos_std * strength, (model.nlight, 3))
        jitter = c.color_jitter * strength
        for geoms in (self.hand_geoms, self.background_geoms):
            # One shift for the whole group (a differently coloured glove or table), a little per part.
            shift = rng.uniform(-jitter, jitter, 3) + rng.uniform(-0.2 * jitter, 0.2 * jitter, (len(geoms), 3))
            model.geom_rgba[geoms, :3] = np.clip(nominal.geom_rgba[geoms, :3] + shift, 0, 1)
        if self.cube_mat >= 0:
            tint = c.cube_tint * strength
            model.mat_rgba[self.cube_mat, :3] = np.clip(
                nominal.mat_rgba[self.cube_mat, :3] + rng.uniform(-tint, tint, 3), 0, 1
            )

    def restore(self, model, nominal):
        model.cam_pos[:] = nominal.cam_pos
        model.cam_quat[:] = nominal.cam_quat
        model.cam_fovy[:] = nominal.cam_fovy
        model.light_diffuse[:] = nominal.light_diffuse
        model.light_pos[:] = nominal.light_pos
        model.geom_rgba[:] = nominal.geom_rgba
        model.mat_rgba[:] = nominal.mat_rgba


class CameraRenderer:
    """Renders named cameras offscreen at a fixed size, reusing one GL context."""

    def __init__(self, model: mujoco.MjModel, width: int, height: int, show_goal: bool = False) -> None:
        self._options = mujoco.MjvOption()
        self._options.geomgroup[GOAL_GROUP] = 1 if show_goal else 0
        try:
            self._renderer = mujoco.Renderer(model, height=height, width=width)
        except Exception as exc:  # GL context creation failed: say how to pick another backend
            import os

            raise RuntimeError(
                f"offscreen rendering failed with MUJOCO_GL={os.environ.get('MUJOCO_GL')!r}: {exc}. "
                "Install EGL (libegl1) or OSMesa (libosmesa6), or set MUJOCO_GL=osmesa before starting."
            ) from exc
        self.width, self.height = width, height

    def render(self, data: mujoco.MjData, camera: str | int) -> np.ndarray:
        self._renderer.update_scene(data, camera=camera, scene_option=self._options)
        return self._renderer.render()

    def close(self) -> None:
        self._renderer.close()


def add_pixel_noise(image: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """Sensor-like Gaussian noise on a uint8 image (the post-processing part of visual randomization)."""
    if std <= 0:
        return image
    noisy = image.astype(np.float32) + rng.normal(0.0, std, image.shape).astype(np.float32)
    return np.clip(noisy, 0, 255).astype(np.uint8)
