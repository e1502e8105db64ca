"""Each randomizer changes what it claims, stays in its range, and restores the nominal model."""

import numpy as np
import pytest

from sim.config import RandomizationConfig
from sim.randomizers import (
    ActuatorGain,
    BodyMass,
    CubeSize,
    Friction,
    Gravity,
    JointDamping,
    JointLimits,
    Timestep,
    build_model_randomizers,
)

FIELDS = [
    "body_mass", "body_inertia", "geom_friction", "geom_size", "dof_damping", "actuator_gainprm",
    "actuator_biasprm", "jnt_range", "tendon_range", "cam_pos", "cam_quat", "cam_fovy", "light_diffuse",
    "geom_rgba", "mat_rgba",
]


def snapshot(model):
    return {f: getattr(model, f).copy() for f in FIELDS} | {
        "gravity": model.opt.gravity.copy(), "timestep": float(model.opt.timestep)
    }


def by_type(env, cls, name=None):
    return next(r for r in env.model_randomizers if isinstance(r, cls) and (name is None or r.name == name))


def test_every_randomizer_changes_its_fields_within_range_and_restores(random_env):
    env = random_env
    m, nom = env.model, env.nominal
    rng = np.random.default_rng(0)
    cfg = RandomizationConfig()
    for r in env.model_randomizers:
        r.apply(m, nom, rng, 1.0)

    cube = by_type(env, CubeSize)
    f = m.geom_size[cube.geom, 0] / nom.geom_size[cube.geom, 0]
    assert f != 1.0 and cfg.cube_size[0] <= f <= cfg.cube_size[1]
    assert m.body_mass[cube.body] == pytest.approx(nom.body_mass[cube.body] * f**3)

    mass = by_type(env, BodyMass)
    ratio = m.body_mass[mass.bodies] / nom.body_mass[mass.bodies]
    assert np.all((ratio >= cfg.mass[0] - 1e-9) & (ratio <= cfg.mass[1] + 1e-9)) and ratio.std() > 0

    for name, ranges in (("hand_friction", cfg.hand_friction), ("cube_friction", cfg.cube_friction)):
        fr = by_type(env, Friction, name)
        ratio = m.geom_friction[fr.geoms] / nom.geom_friction[fr.geoms]
        for k, part in enumerate(("slide", "torsion", "roll")):
            lo, hi = getattr(ranges, part)
            assert np.all((ratio[:, k] >= lo - 1e-9) & (ratio[:, k] <= hi + 1e-9))
            assert not np.allclose(ratio[:, k], 1.0)

    assert not np.allclose(m.opt.gravity, nom.opt.gravity)
    assert np.all(np.abs(m.opt.gravity - nom.opt.gravity) < 5 * cfg.gravity_std)
    assert m.opt.timestep > nom.opt.timestep
    damp = by_type(env, JointDamping)
    dr = m.dof_damping[damp.dofs] / nom.dof_damping[damp.dofs]
    assert np.all((dr >= cfg.damping[0] - 1e-9) & (dr <= cfg.damping[1] + 1e-9)) and dr.std() > 0
    kp = m.actuator_gainprm[:, 0] / nom.actuator_gainprm[:, 0]
    assert np.all((kp >= 0.5 - 1e-9) & (kp <= 2.0 + 1e-9)) and kp.std() > 0
    np.testing.assert_allclose(m.actuator_biasprm[:, 1], -m.actuator_gainprm[:, 0])  # still a position servo
    lim = by_type(env, JointLimits)
    assert not np.allclose(m.jnt_range[lim.joints], nom.jnt_range[lim.joints])
    assert np.all(m.jnt_range[lim.joints, 1] > m.jnt_range[lim.joints, 0])

    for r in env.model_randomizers:
        r.restore(m, nom)
    after = snapshot(m)
    before = snapshot(nom)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_strength_zero_is_nominal(random_env):
    env = random_env
    rng = np.random.default_rng(1)
    for r in env.model_randomizers:
        r.apply(env.model, env.nominal, rng, 0.0)
    for key, value in snapshot(env.nominal).items():
        np.testing.assert_allclose(snapshot(env.model)[key], value, err_msg=key)


def test_randomization_off_restores_nominal_after_randomized_episode(random_env):
    env = random_env
    env.reset(seed=3)
    assert not np.allclose(env.model.body_mass, env.nominal.body_mass)
    assert not np.allclose(env.model.cam_pos, env.nominal.cam_pos)  # visual randomization too
    env.cfg.randomization.enabled = False
    env.reset(seed=3)
    for key, value in snapshot(env.nominal).items():
        np.testing.assert_array_equal(snapshot(env.model)[key], value, err_msg=key)
    assert env.action_perturbation.latency_fraction == 0 and not env.action_perturbation.backlash.any()
    assert env.forces.strength == 0


def test_each_group_switch_turns_only_its_group_off():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.physics=false"])
    env.reset(seed=0)
    np.testing.assert_array_equal(env.model.body_mass, env.nominal.body_mass)
    assert not np.allclose(env.model.cam_pos, env.nominal.cam_pos)
    assert env.obs_noise.strength == 1.0
    env.close()


def test_critic_sees_the_sampled_parameters(random_env):
    env = random_env
    obs, _ = env.reset(seed=5)
    params = obs["critic"][-env.n_scene_params :]
    cube = by_type(env, CubeSize)
    f = env.model.geom_size[cube.geom, 0] / env.nominal.geom_size[cube.geom, 0]
    assert params[0] == pytest.approx(f, rel=1e-5)
    gravity = by_type(env, Gravity)
    np.testing.assert_allclose(gravity.params(), env.model.opt.gravity - env.nominal.opt.gravity)
    assert by_type(env, Timestep).params()[0] == pytest.approx(env.model.opt.timestep / env.nominal.opt.timestep)


def test_observation_noise_is_per_episode_offset_plus_per_step():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=["randomization.physics=false", "randomization.forces=false",
                                     "randomization.action=false"])
    env.reset(seed=0)
    tips = env.fingertip_positions().ravel()
    samples = np.array([env.obs_noise.vector("fingertip_pos", tips, env.np_random) for _ in range(4000)])
    offset = samples.mean(axis=0) - tips
    np.testing.assert_allclose(offset, env.obs_noise.offsets["fingertip_pos"], atol=3e-4)
    assert samples.std(axis=0).mean() == pytest.approx(0.002, rel=0.1)  # per-step std
    env.close()


def test_action_latency_and_backlash():
    from sim.randomizers import ActionPerturbation

    p = ActionPerturbation(max_latency_steps=1.0, backlash_std=0.01, n_actuators=3)
    rng = np.random.default_rng(0)
    p.sample_episode(rng, 1.0)
    delays = [p.delay_substeps(rng, 10) for _ in range(200)]
    assert min(delays) == 0 and max(delays) == 9
    p.backlash[:] = 0.1
    prev = np.zeros(3)
    out = p.apply_backlash(prev, np.array([0.05, 0.3, -0.3]))
    np.testing.assert_allclose(out, [0.0, 0.2, -0.2])


def test_build_order_is_stable():
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv()
    names = [r.name for r in build_model_randomizers(env.model, RandomizationConfig())]
    assert names == ["cube_size", "mass", "hand_friction", "cube_friction", "gravity", "timestep",
                     "damping", "actuator_gain", "joint_limits"]
    assert isinstance(env.model_randomizers[7], ActuatorGain)
    env.close()
