"""Training configuration: one dataclass tree, loaded from YAML (dexhand/configs/*.yaml) + overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dexhand.train.adr import AdrConfig
from dexhand.train.curriculum import CurriculumConfig
from sim.config import EnvConfig
from sim.configio import ConfigError


@dataclass
class PPOConfig:
    """PPO hyper-parameters (Dactyl / IsaacGymEnvs values where they fit a CPU budget)."""

    n_steps: int = 128  # per env per rollout
    batch_size: int = 512
    n_epochs: int = 4
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_range: float = 0.2
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 1.0
    target_kl: float | None = 0.02

    def validate(self) -> None:
        if self.n_steps < 2 or self.batch_size < 2:
            raise ConfigError("ppo.n_steps and ppo.batch_size must be >= 2")
        if not 0 < self.gamma <= 1:
            raise ConfigError("ppo.gamma: must be in (0, 1]")


@dataclass
class NetworkConfig:
    recurrent: bool = True  # LSTM policy (Dactyl) or feed-forward
    features_dim: int = 256
    lstm_hidden: int = 256
    pi_layers: list[int] = field(default_factory=lambda: [256])
    vf_layers: list[int] = field(default_factory=lambda: [256])
    log_std_init: float = -1.0


@dataclass
class FinetuneConfig:
    """PPO fine-tuning of a policy that starts from other weights (``init_from``, e.g. a distilled student)."""

    critic_warmup_steps: int = 0  # env steps at the start during which only the value function trains
    bc_coef: float = 0.0  # weight of mean ||mu(s) - mu_init(s)||^2 toward the initial actor's mean action
    bc_decay_steps: int = 0  # env steps over which bc_coef decays linearly to 0

    @property
    def active(self) -> bool:
        return self.critic_warmup_steps > 0 or self.bc_coef > 0

    def validate(self) -> None:
        if self.critic_warmup_steps < 0 or self.bc_decay_steps < 0:
            raise ConfigError("finetune.critic_warmup_steps and finetune.bc_decay_steps: must be >= 0")
        if self.bc_coef < 0:
            raise ConfigError("finetune.bc_coef: must be >= 0")
        if self.bc_coef > 0 and self.bc_decay_steps < 1:
            raise ConfigError("finetune.bc_decay_steps: give the env steps over which bc_coef decays to 0 (>= 1)")


@dataclass
class TrainConfig:
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    net: NetworkConfig = field(default_factory=NetworkConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    adr: AdrConfig = field(default_factory=AdrConfig)
    # A run or checkpoint folder whose policy weights (actor; critic where shapes match) and observation
    # statistics a fresh run starts from; a resumed run ignores it.
    init_from: str | None = None
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    n_envs: int = 8
    # sim.vec_env backends; "batch": one batched env, physics on MuJoCo's native threads
    vec_backend: Literal["batch", "shards", "thread", "process", "subprocess", "serial"] = "batch"
    n_workers: int | None = None  # threads/processes; default: all cores
    total_timesteps: int = 1_000_000
    checkpoint_every: int = 50_000  # env steps
    normalize_observations: bool = True
    seed: int = 0
    device: str = "cpu"
    torch_threads: int = 1  # while collecting: the envs use the other cores
    # Torch threads for the PPO update, when the envs are idle; None: all cores.
    update_threads: int | None = None
    # Rollouts on a Ray cluster (dexhand.scale): an address, or "local" to start Ray on this machine.
    # Each actor steps envs_per_actor envs as one batched env; n_workers and vec_backend then do not apply.
    ray_address: str | None = None
    envs_per_actor: int = 32  # the Ray round trip is paid per actor per step: enough physics to hide it

    def validate(self) -> None:
        if self.n_envs < 1:
            raise ConfigError("n_envs: must be >= 1")
        if self.total_timesteps < 1 or self.checkpoint_every < 1:
            raise ConfigError("total_timesteps and checkpoint_every must be >= 1")
        if self.torch_threads < 1 or (self.update_threads is not None and self.update_threads < 1):
            raise ConfigError("torch_threads and update_threads: must be >= 1")
        if self.finetune.active and self.net.recurrent:
            raise ConfigError("finetune.critic_warmup_steps / finetune.bc_coef: need a feed-forward policy "
                              "(net.recurrent=false)")
        if self.init_from is not None and not str(self.init_from).strip():
            raise ConfigError("init_from: give a run or checkpoint folder, or leave it unset")
        if self.adr.enabled and not self.env.randomization.enabled:
            raise ConfigError("adr.enabled: ADR widens the randomization ranges, but env.randomization.enabled "
                              "is false; turn randomization on or ADR off")
        if self.adr.enabled and self.vec_backend in ("subprocess", "process"):
            raise ConfigError("adr.enabled: ADR shares one state between envs and needs vec_backend batch, thread or serial")
        if self.envs_per_actor < 1:
            raise ConfigError(f"envs_per_actor: must be >= 1, got {self.envs_per_actor}")
        if self.ray_address is not None:
            if not self.ray_address.strip():
                raise ConfigError("ray_address: give a Ray address (host:port, ray://host:port) or 'local'")
            if self.adr.enabled:
                raise ConfigError("adr.enabled: ADR shares one state between envs in one process and cannot "
                                  "run with ray_address; unset one of them")
            if self.vec_backend in ("subprocess", "process"):
                raise ConfigError("vec_backend: Ray actors step their envs with threads; "
                                  f"vec_backend {self.vec_backend!r} cannot be combined with ray_address")
