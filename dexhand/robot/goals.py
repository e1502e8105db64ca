"""Goal manager logic: sample or accept goal orientations, detect successes, count them.

Dactyl semantics (REFERENCE.md section 1): success when the cube is within ``success_threshold`` rad
of the goal; a new goal follows each success; a drop or ``goal_timeout`` without success ends the
episode and resets the count of consecutive successes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dexhand.robot import rotations

GOAL_MODES = ("full", "faces", "face_up", "z")
FACE_ORIENTATIONS = rotations.face_aligned_orientations()


def sample_goal(mode: str, rng: np.random.Generator, current: np.ndarray | None = None,
                max_angle: float = np.pi, min_angle: float = 0.0) -> np.ndarray:
    """A goal orientation: uniform on SO(3), one of the 24 face-aligned ones, or a yaw of ``current``.

    "face_up" is Dactyl's locked-cube distribution (robogym's LockedParallelGoal): a uniform yaw times
    one of the 24 face-aligned orientations, so a face is always up.

    ``max_angle`` < pi makes goals near ``current`` (a curriculum's easy stages): "z" yaws by an angle
    of magnitude in [min_angle, max_angle], "full" turns about a random axis by such an angle;
    "faces" ignores it; "face_up" limited is a limited yaw. At pi every mode is Dactyl's distribution;
    there "z" is a uniform yaw of ``upright(current)``: a yaw of ``current`` itself would hand on the
    cube's tilt at each success (up to the success threshold, 23 degrees) and let it random-walk over
    an episode: goals with no face up, which the hand would have to hold tilted.
    """
    base = np.array([1.0, 0.0, 0.0, 0.0]) if current is None else rotations.normalize(current)
    limited = max_angle < np.pi
    if limited and not 0.0 <= min_angle <= max_angle:
        raise ValueError(f"goal angles: need 0 <= min_angle <= max_angle, got {min_angle}, {max_angle}")
    angle = rng.uniform(min_angle, max_angle) * rng.choice((-1.0, 1.0)) if limited else 0.0
    if mode == "full":
        if not limited:
            return rotations.random_uniform(rng)
        axis = rng.normal(size=3)
        turn = rotations.from_axis_angle(axis / np.linalg.norm(axis), angle)
        return rotations.normalize(rotations.multiply(turn, base))
    if mode == "faces":
        return FACE_ORIENTATIONS[rng.integers(len(FACE_ORIENTATIONS))].copy()
    if mode == "face_up" and not limited:
        face = FACE_ORIENTATIONS[rng.integers(len(FACE_ORIENTATIONS))]
        yaw = rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), rng.uniform(-np.pi, np.pi))
        return rotations.normalize(rotations.multiply(yaw, face))
    if mode in ("z", "face_up"):
        if not limited:  # z goals keep a face up, as gymnasium-robotics' RotateZ: the one nearest up now
            base = upright(base)
        yaw = rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), angle if limited else rng.uniform(-np.pi, np.pi))
        return rotations.normalize(rotations.multiply(yaw, base))
    raise ValueError(f"unknown goal mode {mode!r}: use one of {', '.join(GOAL_MODES)}")


def upright(quat: np.ndarray) -> np.ndarray:
    """``quat`` turned by the smallest rotation that puts the cube face nearest up exactly up (yaw kept)."""
    m = rotations.to_matrix(quat)
    k = int(np.argmax(np.abs(m[2])))  # the cube axis nearest the world's vertical
    up_axis = m[:, k] * np.sign(m[2, k])
    axis = np.cross(up_axis, [0.0, 0.0, 1.0])
    sin = float(np.linalg.norm(axis))
    if sin < 1e-12:
        return rotations.normalize(quat)
    tilt = float(np.arctan2(sin, up_axis[2]))
    return rotations.normalize(rotations.multiply(rotations.from_axis_angle(axis / sin, tilt), quat))


def _unit(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-9:
        raise ValueError(f"quaternion {q.tolist()} has no direction (norm {n})")
    return q / n


@dataclass
class GoalConfig:
    mode: str = "z"  # "z": about the vertical; "faces": 24 face-aligned; "face_up": yaw x face; "full": any
    success_threshold: float = 0.4  # rad
    goal_timeout: float = 32.0  # s without success ends the episode (robogym: 400 steps x 0.08 s)
    drop_height: float = -0.06  # m; cube z relative to the hand origin below this is a drop
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in GOAL_MODES:
            raise ValueError(f"goal mode {self.mode!r}: use one of {', '.join(GOAL_MODES)}")
        if not 0 < self.success_threshold < np.pi:
            raise ValueError(f"success_threshold {self.success_threshold}: must be in (0, pi)")
        if self.goal_timeout <= 0:
            raise ValueError(f"goal_timeout {self.goal_timeout}: must be > 0")


class GoalManagerCore:
    """Feed it cube poses; it says what happened and holds the goal and the counts."""

    def __init__(self, config: GoalConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.goal: np.ndarray | None = None
        self.goal_since = 0.0
        self.consecutive_successes = 0
        self.goals_reached = 0
        self.episode = 0
        self.steps_on_goal = 0
        self.distance = float("nan")

    def sample(self, cube_quat: np.ndarray) -> np.ndarray:
        return sample_goal(self.config.mode, self.rng, cube_quat)

    def set_goal(self, goal: np.ndarray, now: float) -> None:
        self.goal = _unit(goal)
        self.goal_since = now
        self.steps_on_goal = 0

    def update(self, cube_pos: np.ndarray, cube_quat: np.ndarray, now: float) -> str:
        """One pose: returns the event ('', 'goal_set', 'success', 'drop', 'timeout')."""
        cube_quat = _unit(cube_quat)
        if self.goal is None:
            self.set_goal(self.sample(cube_quat), now)
            self.distance = rotations.distance(cube_quat, self.goal)
            return "goal_set"
        self.steps_on_goal += 1
        self.distance = rotations.distance(cube_quat, self.goal)
        if float(cube_pos[2]) < self.config.drop_height:
            return self._end_episode("drop", cube_quat, now)
        if self.distance < self.config.success_threshold:
            self.consecutive_successes += 1
            self.goals_reached += 1
            self.set_goal(self.sample(cube_quat), now)
            self.distance = rotations.distance(cube_quat, self.goal)
            return "success"
        if now - self.goal_since > self.config.goal_timeout:
            return self._end_episode("timeout", cube_quat, now)
        return ""

    def _end_episode(self, event: str, cube_quat: np.ndarray, now: float) -> str:
        self.consecutive_successes = 0
        self.episode += 1
        self.set_goal(self.sample(cube_quat), now)
        return event
