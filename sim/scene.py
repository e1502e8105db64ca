"""Compose the Dactyl scene with MjSpec: the OpenAI Shadow Hand (palm up), a lettered cube, cameras.

The hand comes from gymnasium-robotics' ``manipulate_block.xml``; its block and target bodies are
removed and replaced by our cube, whose size and contact parameters come from ``SceneConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim import rotations
from sim.assets import hand_xml
from sim.config import SceneConfig

CUBE_BODY = "cube"
CUBE_GEOM = "cube"
CUBE_JOINT = "cube:joint"
GOAL_BODY = "goal"  # a see-through copy of the cube showing the goal (video only: geom group 2)
GOAL_GROUP = 2
GOAL_POS = np.array([1.09, 0.85, 0.24])
# Where the cube rests on the palm (the OpenAI model's block position).
CUBE_START = np.array([1.0, 0.87, 0.2])
FINGERTIP_SITES = ("robot0:S_fftip", "robot0:S_mftip", "robot0:S_rftip", "robot0:S_lftip", "robot0:S_thtip")
VISION_CAMERAS = ("cam_left", "cam_right", "cam_top")
VIDEO_CAMERA = "cam_video"
# Camera rig around the palm (Dactyl had three cameras around the hand): eye positions in metres.
CAMERA_TARGET = np.array([1.0, 0.87, 0.17])
CAMERA_EYES = {
    "cam_left": np.array([0.80, 0.76, 0.33]),
    "cam_right": np.array([1.20, 0.76, 0.33]),
    "cam_top": np.array([1.0, 0.72, 0.40]),
    "cam_video": np.array([1.0, 0.52, 0.40]),
}
CAMERA_FOVY = 40.0
# A shallow cup the cube rests in at reset (joint name without the "robot0:" prefix -> rad).
HOME_POSE = {"FFJ2": 0.4, "MFJ2": 0.4, "RFJ2": 0.4, "LFJ2": 0.4, "THJ4": 0.5, "THJ3": 0.6}


@dataclass(frozen=True)
class SceneIds:
    """Indices into the compiled model that the env reads every step."""

    cube_body: int
    cube_geom: int
    cube_qpos: int  # start of the cube's 7 qpos values
    cube_qvel: int  # start of its 6 qvel values
    hand_qpos: np.ndarray  # qpos addresses of the 24 hand joints
    hand_qvel: np.ndarray
    actuated_qpos: np.ndarray  # qpos address of each actuator's joint
    fingertip_sites: np.ndarray
    cameras: dict[str, int]

    @classmethod
    def from_model(cls, model: mujoco.MjModel) -> SceneIds:
        cube_joint = model.joint(CUBE_JOINT)
        hand_joints = [j for j in range(model.njnt) if model.joint(j).name.startswith("robot0:")]
        return cls(
            cube_body=model.body(CUBE_BODY).id,
            cube_geom=model.geom(CUBE_GEOM).id,
            cube_qpos=int(cube_joint.qposadr[0]),
            cube_qvel=int(cube_joint.dofadr[0]),
            hand_qpos=np.array([model.jnt_qposadr[j] for j in hand_joints]),
            hand_qvel=np.array([model.jnt_dofadr[j] for j in hand_joints]),
            actuated_qpos=np.array([model.jnt_qposadr[model.actuator_trnid[a, 0]] for a in range(model.nu)]),
            fingertip_sites=np.array([model.site(s).id for s in FINGERTIP_SITES]),
            cameras={name: model.camera(name).id for name in (*VISION_CAMERAS, VIDEO_CAMERA)},
        )


def build_spec(cfg: SceneConfig) -> mujoco.MjSpec:
    """The scene as an editable MjSpec (compile it, or edit it further first)."""
    spec = mujoco.MjSpec.from_file(str(hand_xml()))
    for name in ("object", "target"):
        spec.delete(spec.body(name))
    spec.option.timestep = cfg.timestep
    spec.option.iterations = cfg.solver_iterations
    spec.visual.quality.shadowsize = 0  # shadows off: vision images render fast and plain
    spec.visual.quality.offsamples = 0  # no MSAA
    spec.visual.global_.offwidth = max(cfg.video_width, cfg.vision_image_size)
    spec.visual.global_.offheight = max(cfg.video_height, cfg.vision_image_size)

    half = cfg.cube_size / 2
    cube = spec.worldbody.add_body(name=CUBE_BODY, pos=CUBE_START.tolist())
    cube.add_freejoint(name=CUBE_JOINT)
    geom = cube.add_geom(
        name=CUBE_GEOM,
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[half, half, half],
        material="material:object",
        condim=4,
        density=cfg.cube_density,
        friction=list(cfg.cube_friction),
    )
    geom.solref = list(cfg.cube_solref)
    geom.solimp = list(cfg.cube_solimp)
    goal = spec.worldbody.add_body(name=GOAL_BODY, pos=GOAL_POS.tolist(), mocap=True)
    goal.add_geom(
        name="goal", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.6 * half] * 3, material="material:object",
        contype=0, conaffinity=0, group=GOAL_GROUP, rgba=[1, 1, 1, 0.6],
    )
    # A visible tinted backdrop so camera images have a background to randomize.
    spec.worldbody.add_geom(
        name="backdrop",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        pos=[1.0, 1.6, 0.5],
        size=[1.0, 0.01, 0.6],
        rgba=[0.55, 0.55, 0.6, 1.0],
        contype=0,
        conaffinity=0,
    )
    for name, eye in CAMERA_EYES.items():
        spec.worldbody.add_camera(
            name=name, pos=eye.tolist(), quat=rotations.look_at(eye, CAMERA_TARGET).tolist(), fovy=CAMERA_FOVY
        )
    return spec


def build_model(cfg: SceneConfig) -> mujoco.MjModel:
    return build_spec(cfg).compile()
