"""Vision configs (dataclasses, loadable from YAML with ``a.b=value`` overrides through sim.configio)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.configio import ConfigError


@dataclass
class GenConfig:
    """How training/evaluation images are rendered and labelled."""

    image_size: int = 200
    shard_size: int = 200  # samples per .npz shard
    episode_steps: int = 80  # control steps of random smooth actions before a reset
    render_every: int = 2  # render every k-th control step
    free_pose_fraction: float = 0.3  # frames with the cube placed in a uniformly random pose near the palm
    resample_visuals: bool = True  # new camera/light/colour draw for every frame, not only per episode
    max_drop: float = 0.05  # m; frames with the cube lower than this below its start are skipped
    action_scale: float = 0.35  # random smooth policy amplitude and smoothing (dexhand.policies)
    action_smoothing: float = 0.8
    randomize: bool = True  # visual (and physics) randomization on
    calibration: str = ""  # OpenCV calibration YAML whose fy sets the cameras' fovy ("" = scene default)
    env_overrides: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.image_size < 32:
            raise ConfigError(f"image_size: {self.image_size} is below 32")
        if self.shard_size < 1 or self.episode_steps < 1 or self.render_every < 1:
            raise ConfigError("shard_size, episode_steps and render_every must be >= 1")
        if not 0.0 <= self.free_pose_fraction <= 1.0:
            raise ConfigError(f"free_pose_fraction: {self.free_pose_fraction} is outside [0, 1]")


@dataclass
class AugmentConfig:
    camera_dropout: float = 0.1  # probability per sample that one camera is blacked out
    brightness: float = 0.15  # +- additive, of full range
    contrast: float = 0.2  # +- multiplicative
    shift_px: int = 1  # random translation, pixels at net size
    noise_std: float = 0.01


@dataclass
class TrainConfig:
    """The CNN and its training run."""

    net_size: int = 64
    crop: float = 0.8
    channels: tuple[int, ...] = (16, 32, 64, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2, 2, 2)
    feature_dim: int = 128
    hidden: int = 256
    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    time_limit_s: float = 0.0  # stop after this much training time (0 = no limit)
    threads: int = 1  # 1 avoids OpenMP spin-waits on a shared, busy CPU
    device: str = "cpu"  # "cuda" on a GPU machine
    seed: int = 0
    rot_weight: float = 1.0
    err_weight: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Data-parallel learners (ml_extras.sync_sgd): with learners K > 1 (or backup > 0) each optimizer
    # step averages the gradients of the first K of K + backup worker processes, each computed on
    # batch_size // K samples; learners=1 backup=0 trains in this process as before.
    learners: int = 1
    backup: int = 0
    learner_timeout: float = 60.0  # s a learner may owe a gradient before it is dropped

    def validate(self) -> None:
        if self.net_size < 32 or self.net_size % 16:
            raise ConfigError(f"net_size: {self.net_size} must be a multiple of 16, >= 32")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("val_fraction must be in (0, 1)")
        if self.learners < 1:
            raise ConfigError(f"learners: must be >= 1, got {self.learners}")
        if self.backup < 0:
            raise ConfigError(f"backup: must be >= 0, got {self.backup}")
        if self.batch_size < self.learners:
            raise ConfigError(f"batch_size: {self.batch_size} cannot be split over {self.learners} learners")
        if self.learner_timeout <= 0:
            raise ConfigError(f"learner_timeout: must be > 0 s, got {self.learner_timeout}")
