"""PPO fine-tuning of a policy that starts from other weights (a distilled student, ``init_from``).

``init_from_checkpoint`` copies a checkpoint's actor (and its critic, where the shapes match) and its
observation statistics into a fresh model. ``FinetunePPO`` is SB3's PPO with two additions, both off by
default:

- critic warm-up: for the first ``critic_warmup_steps`` env steps the actor's parameters take no
  gradient, so only the value function learns (the student's values first, before its actions move);
- a behaviour-cloning term ``bc_coef(t) * mean ||mu_theta(s) - mu_init(s)||^2`` toward the frozen initial
  actor's mean action on the rollout batch, ``bc_coef(t)`` decaying linearly to 0 over ``bc_decay_steps``.
  The initial actor sees the observations normalized with the statistics it started with.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from dexhand.train import checkpoint
from dexhand.train.networks import ACTOR_KEY

# Parameter names of the actor in the asymmetric policies (everything else belongs to the critic).
ACTOR_PREFIXES = ("features_extractor.", "pi_features_extractor.", "mlp_extractor.policy_net.", "action_net.",
                  "lstm_actor.", "log_std")


def is_actor(name: str) -> bool:
    return name.startswith(ACTOR_PREFIXES)


def init_from_checkpoint(model: Any, envs: Any, path: str | Path) -> str:
    """Load the actor (shapes must match), the critic (if its shapes match) and the observation statistics of
    the checkpoint at ``path`` into ``model`` and ``envs`` (a VecNormalize). Returns a one-line summary."""
    try:
        found = checkpoint.resolve(Path(path))
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"init_from: {exc}") from None
    _, params, _ = load_from_zip_file(found.model, device=model.device)
    source, target = params["policy"], model.policy.state_dict()

    def mismatches(names: list[str]) -> list[str]:
        out = [f"{k} missing" for k in names if k not in source]
        out += [f"{k} {tuple(source[k].shape)} vs {tuple(target[k].shape)}" for k in names
                if k in source and source[k].shape != target[k].shape]
        return out

    actor = [k for k in target if is_actor(k)]
    extra = [k for k in source if is_actor(k) and k not in target]
    bad = mismatches(actor) + [f"{k} only in the checkpoint" for k in extra]
    if bad:
        raise ValueError(f"init_from {found.path}: its actor does not fit this config's network "
                         f"(net.*): {'; '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}")
    critic = [k for k in target if not is_actor(k)]
    take_critic = not mismatches(critic)
    model.policy.load_state_dict({**target, **{k: source[k] for k in actor + (critic if take_critic else [])}})

    stats = "observation statistics kept fresh (the checkpoint has none)"
    if found.normalizer.is_file() and getattr(envs, "norm_obs", False):
        with found.normalizer.open("rb") as fh:
            saved = pickle.load(fh)
        if saved.norm_obs:
            keys = [k for k in envs.obs_rms if k in saved.obs_rms and saved.obs_rms[k].mean.shape == envs.obs_rms[k].mean.shape]
            if ACTOR_KEY not in keys:
                raise ValueError(f"init_from {found.path}: its observation statistics do not fit this env's "
                                 f"'{ACTOR_KEY}' observation")
            for k in keys:
                envs.obs_rms[k] = copy.deepcopy(saved.obs_rms[k])
            stats = f"observation statistics of {', '.join(keys)}"
    return (f"initialized from {found.path}: actor, {'critic' if take_critic else 'critic left fresh (shapes differ)'}"
            f", {stats}")


class FinetunePPO(PPO):
    """PPO with critic warm-up and a decaying behaviour-cloning term toward the initial actor."""

    def __init__(self, *args: Any, critic_warmup_steps: int = 0, bc_coef: float = 0.0, bc_decay_steps: int = 0,
                 **kwargs: Any) -> None:
        self.critic_warmup_steps = critic_warmup_steps
        self.bc_coef = bc_coef
        self.bc_decay_steps = bc_decay_steps
        self.reference: Any = None  # the frozen initial policy (its actor is the BC target)
        self.reference_obs_rms: tuple[np.ndarray, np.ndarray] | None = None  # its (mean, var) of obs["policy"]
        super().__init__(*args, **kwargs)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "reference", "reference_obs_rms"]  # the trainer state holds them

    # ------------------------------------------------------------------------------ reference actor
    def set_reference(self) -> None:
        """Freeze the current actor (and its observation statistics) as the BC target."""
        self.reference = copy.deepcopy(self.policy).requires_grad_(False).eval()
        venv = self.get_vec_normalize_env()
        if venv is not None and venv.norm_obs:
            rms = venv.obs_rms[ACTOR_KEY]
            self.reference_obs_rms = (rms.mean.copy(), rms.var.copy())

    def reference_state(self) -> dict[str, Any]:
        return {"policy": self.reference.state_dict(), "obs_rms": self.reference_obs_rms}

    def load_reference(self, state: dict[str, Any]) -> None:
        self.reference = copy.deepcopy(self.policy).requires_grad_(False).eval()
        self.reference.load_state_dict(state["policy"])
        self.reference_obs_rms = state["obs_rms"]

    def _reference_observations(self, obs: dict[str, th.Tensor]) -> dict[str, th.Tensor]:
        """The batch as the reference actor saw observations: normalized with its own statistics."""
        venv = self.get_vec_normalize_env()
        if self.reference_obs_rms is None or venv is None or not venv.norm_obs:
            return obs
        now = venv.obs_rms[ACTOR_KEY]
        as_tensor = lambda a: th.as_tensor(a, dtype=obs[ACTOR_KEY].dtype, device=obs[ACTOR_KEY].device)  # noqa: E731
        raw = obs[ACTOR_KEY] * th.sqrt(as_tensor(now.var) + venv.epsilon) + as_tensor(now.mean)
        mean, var = self.reference_obs_rms
        ref = th.clamp((raw - as_tensor(mean)) / th.sqrt(as_tensor(var) + venv.epsilon), -venv.clip_obs, venv.clip_obs)
        return {**obs, ACTOR_KEY: ref}

    # ------------------------------------------------------------------------------------ schedule
    def in_critic_warmup(self) -> bool:
        return self.num_timesteps < self.critic_warmup_steps

    def current_bc_coef(self) -> float:
        if self.bc_coef <= 0 or self.bc_decay_steps <= 0:
            return 0.0
        return self.bc_coef * max(0.0, 1.0 - self.num_timesteps / self.bc_decay_steps)

    def _evaluate(self, obs: Any, actions: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
        """``policy.evaluate_actions`` that also returns the mean action (one forward pass for both)."""
        pi_features, vf_features = self.policy.extract_features(obs)
        latent_pi = self.policy.mlp_extractor.forward_actor(pi_features)
        latent_vf = self.policy.mlp_extractor.forward_critic(vf_features)
        distribution = self.policy._get_action_dist_from_latent(latent_pi)
        values = self.policy.value_net(latent_vf)
        return values, distribution.log_prob(actions), distribution.entropy(), distribution.distribution.mean

    def train(self) -> None:
        """SB3's PPO update, plus critic warm-up and the BC term (marked ``# fine-tuning``)."""
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        # Compute current clip range
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        # Optional: clip range for the value function
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        # fine-tuning: during the warm-up the actor takes no gradient (Adam skips parameters without one)
        warmup = self.in_critic_warmup()
        for name, param in self.policy.named_parameters():
            if is_actor(name):
                param.requires_grad_(not warmup)
        bc_coef = 0.0 if warmup else self.current_bc_coef()
        if bc_coef > 0 and self.reference is None:
            self.set_reference()

        entropy_losses, bc_losses = [], []
        pg_losses, value_losses = [], []
        clip_fractions = []

        continue_training = True
        # train for n_epochs epochs
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            # Do a complete pass on the rollout buffer
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    # Convert discrete action from float to long
                    actions = rollout_data.actions.long().flatten()

                values, log_prob, entropy, mean_actions = self._evaluate(rollout_data.observations, actions)
                values = values.flatten()
                # Normalize advantage
                advantages = rollout_data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                # ratio between old and new policy, should be one at the first iteration
                ratio = th.exp(log_prob - rollout_data.old_log_prob)

                # clipped surrogate loss
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()

                # Logging
                pg_losses.append(policy_loss.item())
                clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()
                clip_fractions.append(clip_fraction)

                if self.clip_range_vf is None:
                    # No clipping
                    values_pred = values
                else:
                    # Clip the difference between old and new value
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                # Value loss using the TD(gae_lambda) target
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())

                # Entropy loss favor exploration
                if entropy is None:
                    # Approximate entropy when no analytical form
                    entropy_loss = -th.mean(-log_prob)
                else:
                    entropy_loss = -th.mean(entropy)

                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

                # fine-tuning: pull the mean action toward the initial actor's
                if bc_coef > 0:
                    with th.no_grad():
                        reference = self.reference.get_distribution(
                            self._reference_observations(rollout_data.observations)).distribution.mean
                    bc_loss = th.mean(th.sum((mean_actions - reference) ** 2, dim=-1))
                    bc_losses.append(bc_loss.item())
                    loss = loss + bc_coef * bc_loss

                # Calculate approximate form of reverse KL Divergence for early stopping
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                # Optimization step
                self.policy.optimizer.zero_grad()
                loss.backward()
                # Clip grad norm
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        for param in self.policy.parameters():  # fine-tuning: leave the policy as SB3 expects it
            param.requires_grad_(True)
        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())

        # Logs
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/critic_warmup", float(warmup))
        self.logger.record("train/bc_coef", bc_coef)
        if bc_losses:
            self.logger.record("train/bc_loss", np.mean(bc_losses))

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
