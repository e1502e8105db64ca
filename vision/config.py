"""Vision configs (dataclasses, loadable from YAML with ``a.b=value`` overrides through sim.configio)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sim.configio import ConfigError


@dataclass
class GenConfig:
    """How training/evaluation images are rendered and labelled."""

    image_size: int = 200  # what the cameras give (the runtime's input_size)
    # Stored resolution: net_size > 0 passes every render through the runtime's ImagePipeline
    # (centre crop ``crop``, INTER_AREA resize to net_size) and stores that uint8 image, so the data
    # are exactly what the network reads at run time and about 4x smaller; 0 stores raw frames.
    net_size: int = 0
    crop: float = 0.8
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
        if self.net_size and (self.net_size < 32 or self.net_size % 16):
            raise ConfigError(f"net_size: {self.net_size} must be 0 (raw frames) or a multiple of 16, >= 32")
        if not 0.1 <= self.crop <= 1.0:
            raise ConfigError(f"crop: {self.crop} is outside [0.1, 1]")
        if self.shard_size < 1 or self.episode_steps < 1 or self.render_every < 1:
            raise ConfigError("shard_size, episode_steps and render_every must be >= 1")
        if not 0.0 <= self.free_pose_fraction <= 1.0:
            raise ConfigError(f"free_pose_fraction: {self.free_pose_fraction} is outside [0, 1]")


@dataclass
class ExtrinsicsError:
    """The error of a lab's camera extrinsics calibration (checkerboard / marker cube at a known place on
    the hand): evaluations in simulation perturb the cameras' true poses by it before triangulating, so the
    figures are those of a calibrated rig, not of a perfectly known one."""

    pos_std: float = 0.001  # m per axis, camera centre
    angle_std: float = 0.004  # rad, orientation (about 0.23 deg)
    focal_rel_std: float = 0.003  # relative focal length (intrinsics)


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
    # "keypoints": Dactyl-style tower + spatial softmax (channels/strides: stem, then one ResBlock each);
    # "flatten": strided conv stack, final map flattened (channels/strides: one conv each)
    arch: str = "flatten"
    keypoints: int = 32  # spatial-softmax maps per camera (arch=keypoints)
    keypoint_level: int = -1  # stage whose resolution the keypoint maps have (-1: the last; 1: e.g. 24x24 at 96)
    channels: tuple[int, ...] = (16, 32, 64, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2, 2, 2)
    feature_dim: int = 128
    hidden: int = 256
    epochs: int = 40
    epoch_size: int = 0  # samples per epoch (validation + checkpoint after each); 0 = the whole training set
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
    # "nll": err is the scale of a Laplace distribution of the (detached) errors, trained by its
    # negative log-likelihood (err -> the expected error, a calibrated confidence); "l1": regress it
    err_loss: str = "l1"
    # learning rate: "onecycle" over `epochs`; "cosine": warm-up then cosine decay over the larger of
    # the epoch fraction and the time_limit_s fraction done, so a time-limited run still ends annealed
    schedule: str = "onecycle"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    # Data-parallel learners (ml_extras.sync_sgd): with learners K > 1 (or backup > 0) each optimizer
    # step averages the gradients of the first K of K + backup worker processes, each computed on
    # batch_size // K samples; learners=1 backup=0 trains in this process as before.
    learners: int = 1
    backup: int = 0
    learner_timeout: float = 60.0  # s a learner may owe a gradient before it is dropped
    # Per-camera head that locates the cube centre in each image (arch=keypoints); the runtime
    # triangulates it with the calibrated cameras (vision.runtime.geometry). Loss in units of 10 net pixels.
    centre_head: bool = False
    centre_weight: float = 2.0
    # Start from these weights: a checkpoint (.pt) or an exported model (.onnx, BatchNorm folded in);
    # parameters the file lacks (e.g. a new centre head) keep their fresh initialization.
    init_from: str = ""
    # Train on the first N samples of the data folder only (0: all of it), so a stage made when the set
    # was smaller stays reproducible after the set grows (shards are deterministic and kept in order).
    max_samples: int = 0

    def validate(self) -> None:
        if self.arch not in ("keypoints", "flatten"):
            raise ConfigError(f"arch: {self.arch!r} is not 'keypoints' or 'flatten'")
        if self.err_loss not in ("nll", "l1"):
            raise ConfigError(f"err_loss: {self.err_loss!r} is not 'nll' or 'l1'")
        if self.schedule not in ("onecycle", "cosine"):
            raise ConfigError(f"schedule: {self.schedule!r} is not 'onecycle' or 'cosine'")
        if len(self.channels) != len(self.strides):
            raise ConfigError(f"channels has {len(self.channels)} entries but strides {len(self.strides)}")
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
        if self.centre_head and self.arch != "keypoints":
            raise ConfigError("centre_head: needs arch 'keypoints'")
        if self.init_from and not self.init_from.endswith((".pt", ".onnx")):
            raise ConfigError(f"init_from: {self.init_from!r} is neither a .pt checkpoint nor an .onnx model")
        if self.learner_timeout <= 0:
            raise ConfigError(f"learner_timeout: must be > 0 s, got {self.learner_timeout}")
        if self.max_samples < 0:
            raise ConfigError(f"max_samples: must be >= 0 (0 = all samples), got {self.max_samples}")


@dataclass
class RecipeConfig:
    """``dexhand vision recipe``: render the data set, train, export, evaluate, one resumable command.

    Every stage resumes: finished shards are kept, training continues from ``run_dir``/last.pt (its
    ``train.time_limit_s`` is the total over all runs), export and evaluation are redone.
    """

    data_dir: str = "out/vision_recipe/data"  # rendered shards (not committed)
    run_dir: str = "runs/vision_recipe"  # checkpoints, TensorBoard, eval JSON
    n: int = 24000  # samples to render
    seed: int = 0  # data seed (evaluation uses eval_seed, which the data never see)
    workers: int = 2  # rendering processes
    export: str = "vision/models/pose_cnn.onnx"  # "" = do not export
    eval_n: int = 200
    eval_seed: int = 4242
    gen: GenConfig = field(default_factory=GenConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # A second training stage from run_dir/best.pt: ``train`` with these overrides (e.g. the centre head),
    # into finetune_dir; export then takes its best checkpoint. [] = no such stage.
    finetune: list[str] = field(default_factory=list)
    finetune_dir: str = "runs/vision_recipe_finetune"

    def validate(self) -> None:
        if self.n < 2:
            raise ConfigError(f"n: {self.n} samples leave nothing to train on")
        if self.finetune:
            from sim.configio import apply_overrides

            apply_overrides(self.train, self.finetune)  # a bad override names its field here
        if self.eval_seed == self.seed:
            raise ConfigError(f"eval_seed: {self.eval_seed} equals the data seed; evaluate on an unseen seed")
        if self.gen.net_size and (self.gen.net_size, self.gen.crop) != (self.train.net_size, self.train.crop):
            raise ConfigError(f"gen.net_size/gen.crop ({self.gen.net_size}, {self.gen.crop}) differ from "
                              f"train.net_size/train.crop ({self.train.net_size}, {self.train.crop})")
