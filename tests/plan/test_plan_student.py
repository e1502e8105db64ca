"""The plan-carrying student: plan encoding, the carried state, and DAgger whose teacher searches around
the carried plan (so the labels follow from what the student sees)."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from dexhand.distill.config import DistillConfig
from dexhand.distill.plan_dagger import PlanDagger
from dexhand.distill.plan_student import PlanNet, PlanStudentPolicy, plan_increments, plan_targets, shift_plan
from dexhand.distill.shards import load_shards
from dexhand.evaluate import evaluate, load_policy
from sim.configio import ConfigError, apply_overrides

HORIZON = 3
TINY = ["student_kind=plan", "plan_layers=[64]", "plan_residual=true", "dagger.iterations=2", "dagger.steps_per_iteration=24",
        "dagger.shard_size=10", "dagger.n_envs=2", "fit.epochs=60", "fit.learning_rate=0.003",
        f"planner_overrides=[n_samples=6, horizon={HORIZON}, plan_timestep_scale=2]",
        "student.env.task.goal_mode=z", "student.env.task.include_joint_angles=true"]


def test_plan_encoding_round_trips_and_shifts_like_the_planner():
    rng = np.random.default_rng(0)
    start, unit = rng.normal(size=4), np.array([0.1, 0.2, 0.1, 0.05])
    steps = rng.uniform(-1, 1, size=(HORIZON, 4))
    plan = plan_targets(steps, start, unit)
    assert np.allclose(plan_increments(plan, start, unit), steps, atol=1e-6)
    too_fast = plan_targets(3 * steps, start, unit)  # the env's per-step limit: increments stay in [-1, 1]
    assert np.abs(plan_increments(too_fast, start, unit)).max() <= 1.0
    shifted = shift_plan(steps)
    assert np.allclose(shifted[:-1], steps[1:]) and np.allclose(shifted[-1], 0.0)  # then hold


def test_plan_dagger_warm_starts_the_teacher_from_the_carried_plan_and_fits_it(tmp_path):
    cfg = apply_overrides(DistillConfig(), [*TINY, "dagger.iterations=1"])
    run = tmp_path / "run"
    d = PlanDagger(cfg, run, progress=False)
    teacher = d.teachers[0]
    seen: list[np.ndarray] = []
    original = teacher.planner.warm_start

    def spy(plan, start_target):
        original(plan, start_target)
        seen.append(plan_increments(teacher.planner.nominal, start_target, d.envs[0].action_step))

    teacher.planner.warm_start = spy
    d.run()
    samples = load_shards(run / "shards")
    obs_dim = d.net.obs_dim
    assert samples.obs.shape == (24, obs_dim + HORIZON * 20) and samples.action.shape == (24, HORIZON * 20)
    # Env 0's steps are every other sample; at beta 1 each carried plan is the teacher's executed plan,
    # shifted, and it is exactly where the teacher's next search started.
    carried = samples.obs[0::2, obs_dim:].reshape(-1, HORIZON, 20)
    assert np.allclose(carried[0], 0.0)  # an episode starts holding still
    assert len(seen) == len(carried) and np.abs(carried[1:]).max() > 0.01
    # (up to the control range, which the warm start also respects)
    assert np.mean(np.isclose(np.stack(seen), carried, atol=1e-5)) > 0.9
    # The fitted student reproduces the teacher's plans far better than holding still.
    student = PlanStudentPolicy(run)
    with th.no_grad():
        pred = student.net(th.as_tensor(samples.obs)).numpy()
    labels = np.clip(samples.action, -1, 1)
    assert np.mean((pred - labels) ** 2) < 0.5 * np.mean(labels**2)
    d.close()
    with pytest.raises(FileExistsError, match="--resume"):
        PlanDagger(cfg, run, progress=False)
    # One more iteration, its labels averaged over 2 teacher searches each.
    d2 = PlanDagger(apply_overrides(DistillConfig(), [*TINY, "dagger.label_solves=2"]), run, resume=True,
                    progress=False)
    extra_searches: list[int] = []
    resolve = d2.teachers[0].resolve_label_plans
    d2.teachers[0].resolve_label_plans = lambda n: extra_searches.append(n) or resolve(n)
    d2.run()
    d2.close()
    assert extra_searches == [1] * 12  # env 0's 12 steps: one more search each
    assert len(load_shards(run / "shards").obs) == 48 and (run / "plan_student_iter1.pt").is_file()
    # The student carries its own plan: its next input holds the plan it just made, shifted.
    policy = load_policy(run)
    assert isinstance(policy, PlanStudentPolicy)
    obs = {"policy": samples.obs[5, :obs_dim]}
    plan = policy.plan(obs["policy"])
    action = policy.act(obs)
    assert np.allclose(action, plan[0]) and np.allclose(policy.carried, shift_plan(plan))
    policy.reset()
    assert np.allclose(policy.carried, 0.0)
    report = evaluate(policy, 1, 0, ["task.goal_mode=z"], max_steps=3, progress=False)
    assert report.episodes == 1 and policy.env_requirements == ["task.include_joint_angles=true"]


def test_bad_plan_student_settings_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match="student_kind"):
        apply_overrides(DistillConfig(), ["student_kind=lstm"])
    with pytest.raises(ConfigError, match="label_solves"):
        apply_overrides(DistillConfig(), ["student_kind=plan", "dagger.label_solves=0"])
    with pytest.raises(ConfigError, match="label_solves"):  # the action student's teacher keeps its own memory
        apply_overrides(DistillConfig(), ["dagger.label_solves=3"])
    with pytest.raises(ConfigError, match="label_solves"):  # fixed noise: repeated searches are identical
        PlanDagger(apply_overrides(DistillConfig(), [*TINY, "dagger.label_solves=2",
                                                     "planner_overrides=[fixed_noise=true]"]), tmp_path, progress=False)
    with pytest.raises(ConfigError, match="plan_layers"):
        apply_overrides(DistillConfig(), ["student_kind=plan", "plan_layers=[]"])


def _first_labels(d: PlanDagger) -> list[np.ndarray]:
    """Each env's teacher labels the same start state from the same (empty) warm start."""
    labels = []
    for env, teacher in zip(d.envs, d.teachers):
        env.reset(seed=3)
        teacher.reset()
        teacher.planner.warm_start(plan_targets(np.zeros((HORIZON, 20)), env.current_target, env.action_step),
                                   env.current_target)
        teacher.act()
        labels.append(teacher.planner.label_plan.copy())
    return labels


def test_fixed_noise_teachers_share_one_noise_set_so_a_label_does_not_depend_on_the_env(tmp_path):
    noise = "planner_overrides=[n_samples=6, horizon=3, plan_timestep_scale=2, fixed_noise=true]"
    a, b = _first_labels(PlanDagger(apply_overrides(DistillConfig(), [*TINY, noise]), tmp_path / "f", progress=False))
    assert np.allclose(a, b)
    a, b = _first_labels(PlanDagger(apply_overrides(DistillConfig(), TINY), tmp_path / "r", progress=False))
    assert not np.allclose(a, b)  # fresh noise: each env's teacher samples its own


def test_residual_plan_net_adds_its_correction_to_the_carried_plan(tmp_path):
    obs_dim, horizon, nu = 6, 3, 4
    net = PlanNet(obs_dim, horizon, nu, (16,), residual=True)
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(8, obs_dim + horizon * nu)).astype(np.float32)
    net.set_normalization(inputs)
    x = th.as_tensor(inputs)
    with th.no_grad():
        correction = net.mlp((x - net.mean) / net.std)
        out = net(x)
    np.testing.assert_allclose(out.numpy(), (x[:, obs_dim:] + correction).numpy(), rtol=1e-6)
    # It starts close to carrying the plan unchanged, unlike the absolute net.
    absolute = PlanNet(obs_dim, horizon, nu, (16,))
    absolute.set_normalization(inputs)
    with th.no_grad():
        carry_err = float(((out - x[:, obs_dim:]) ** 2).mean())
        abs_err = float(((absolute(x) - x[:, obs_dim:]) ** 2).mean())
    assert carry_err < 0.1 * abs_err
    loaded, _ = PlanNet.load(net.save(tmp_path / "p.pt", {}))
    assert loaded.residual
    with th.no_grad():
        np.testing.assert_allclose(loaded(x).numpy(), out.numpy(), rtol=1e-6)
