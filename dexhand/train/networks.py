"""Asymmetric actor-critic for SB3: the actor reads only ``obs["policy"]``, the critic ``obs["critic"]``.

Each side has its own features extractor (a linear layer + ELU onto a common width), so SB3's
MLP heads and sb3-contrib's LSTMs work unchanged while the actor never takes privileged inputs.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import torch as th
from sb3_contrib.common.recurrent.policies import RecurrentMultiInputActorCriticPolicy
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

ACTOR_KEY = "policy"
CRITIC_KEY = "critic"


class KeyExtractor(BaseFeaturesExtractor):
    """Reads one key of a Dict observation and maps it to ``features_dim`` features."""

    def __init__(self, observation_space: gym.spaces.Dict, key: str = ACTOR_KEY, features_dim: int = 256) -> None:
        super().__init__(observation_space, features_dim)
        if key not in observation_space.spaces:
            raise ValueError(f"observation has no key {key!r} (keys: {list(observation_space.spaces)})")
        self.key = key
        n_in = int(observation_space.spaces[key].shape[0])
        self.net = nn.Sequential(nn.Linear(n_in, features_dim), nn.ELU())

    def forward(self, observations: dict[str, th.Tensor]) -> th.Tensor:
        return self.net(observations[self.key])


def _make_asymmetric(policy: Any, lr_schedule: Any) -> None:
    """Give the critic its own extractor on the privileged key and rebuild the optimizer."""
    kwargs = dict(policy.features_extractor_kwargs)
    kwargs["key"] = CRITIC_KEY
    policy.vf_features_extractor = KeyExtractor(policy.observation_space, **kwargs)
    policy.optimizer = policy.optimizer_class(policy.parameters(), lr=lr_schedule(1), **policy.optimizer_kwargs)


def _check_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("features_extractor_class", KeyExtractor)
    fe = dict(kwargs.get("features_extractor_kwargs") or {})
    fe["key"] = ACTOR_KEY
    kwargs["features_extractor_kwargs"] = fe
    kwargs["share_features_extractor"] = False
    return kwargs


class AsymmetricPolicy(MultiInputActorCriticPolicy):
    """Feed-forward asymmetric actor-critic."""

    def __init__(self, observation_space, action_space, lr_schedule, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **_check_kwargs(kwargs))
        _make_asymmetric(self, lr_schedule)


class AsymmetricLstmPolicy(RecurrentMultiInputActorCriticPolicy):
    """LSTM asymmetric actor-critic (separate actor and critic LSTMs, as sb3-contrib's default)."""

    def __init__(self, observation_space, action_space, lr_schedule, **kwargs: Any) -> None:
        super().__init__(observation_space, action_space, lr_schedule, **_check_kwargs(kwargs))
        _make_asymmetric(self, lr_schedule)
