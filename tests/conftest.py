"""Shared fixtures. Importing ``sim`` first picks the offscreen GL backend before MuJoCo loads."""

from __future__ import annotations

import pytest

import sim  # noqa: F401  (sets MUJOCO_GL, registers the envs)


@pytest.fixture
def nominal_env():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.enabled=false"])
    yield env
    env.close()


@pytest.fixture
def random_env():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv()
    yield env
    env.close()
