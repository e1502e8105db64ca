"""The sampling-MPC planner: configs, feasibility, cost terms, and that it really turns the cube."""

from __future__ import annotations

import numpy as np
import pytest

from dexhand.plan import MpcController, PlannerConfig
from dexhand.plan.config import CostConfig
from dexhand.plan.configio import load_planner_config
from dexhand.plan.cost import CostContext, CubeTrajectory, cost_terms, total_cost
from dexhand.policies import HoldPolicy
from sim import rotations
from sim.configio import ConfigError, apply_overrides
from sim.env import CubeReorientEnv

SMALL = ["n_samples=12", "horizon=4", "plan_timestep_scale=2", "n_threads=2"]


def test_bad_planner_configs_name_the_field():
    with pytest.raises(ConfigError, match="n_knots"):
        apply_overrides(PlannerConfig(), ["n_knots=9"])
    with pytest.raises(ConfigError, match="method"):
        apply_overrides(PlannerConfig(), ["method=annealing"])
    with pytest.raises(ConfigError, match="cost.drop"):
        apply_overrides(PlannerConfig(), ["cost.drop=-1"])
    with pytest.raises(FileNotFoundError, match="no planner config 'fast'"):
        load_planner_config("fast")


def test_shipped_planner_configs_load():
    for name in ("realtime", "teacher"):
        assert load_planner_config(name).n_samples >= 2


def _trajectory(pos, quat, targets=None):
    n, h = pos.shape[:2]
    targets = np.zeros((n, h, 20)) if targets is None else targets
    return CubeTrajectory(pos=pos, quat=quat, linvel=np.zeros((n, h, 3)), targets=targets,
                          start_target=np.zeros(20))


def test_cost_prefers_the_goal_and_punishes_a_drop():
    goal = rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), 1.0)
    rest = np.array([1.0, 0.87, 0.2])
    ctx = CostContext(goal=goal, cube_rest=rest)
    at_goal = np.tile(goal, (1, 3, 1))
    away = np.tile([1.0, 0.0, 0.0, 0.0], (1, 3, 1))
    still = np.tile(rest, (1, 3, 1))
    cfg = CostConfig()
    costs = total_cost(cfg, ctx, _trajectory(np.concatenate([still, still]), np.concatenate([at_goal, away])))
    assert costs[0] < costs[1]
    terms = cost_terms(cfg, ctx, _trajectory(still, away))
    assert np.allclose(terms["rotation"], cfg.rotation * 1.0)  # the task's own rotation distance
    bonus = CostConfig(success=3.0)
    near = np.tile(rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), 1.0 - 0.39), (1, 3, 1))
    far = np.tile(rotations.from_axis_angle(np.array([0.0, 0.0, 1.0]), 1.0 - 0.41), (1, 3, 1))
    assert np.all(cost_terms(bonus, ctx, _trajectory(still, near))["success"] == -3.0)  # inside 0.4 rad
    assert np.all(cost_terms(bonus, ctx, _trajectory(still, far))["success"] == 0.0)
    fallen = still - np.array([0.0, 0.0, cfg.drop_margin + 0.01])
    dropped = cost_terms(cfg, ctx, _trajectory(fallen, at_goal))
    assert np.all(dropped["drop"] == cfg.drop) and np.all(cost_terms(cfg, ctx, _trajectory(still, at_goal))["drop"] == 0)


@pytest.mark.parametrize("method", ["sampling", "mppi", "cem"])
def test_plans_are_feasible_actions(nominal_env, method):
    cfg = apply_overrides(PlannerConfig(), [*SMALL, f"method={method}", "iterations=2"])
    ctl = MpcController(cfg, env=nominal_env)
    nominal_env.reset(seed=3)
    ctl.reset()
    for _ in range(3):
        target = nominal_env.current_target
        action = ctl.act()
        assert action.shape == (20,) and np.all(np.isfinite(action)) and np.all(np.abs(action) <= 1.0)
        plan = ctl.last_plan
        steps = np.diff(np.concatenate([target[None], plan]), axis=0)
        assert np.all(np.abs(steps) <= nominal_env.action_step + 1e-9)  # the env's per-step limit
        assert np.all(plan >= nominal_env.ctrl_low - 1e-9) and np.all(plan <= nominal_env.ctrl_high + 1e-9)
        nominal_env.step(action)
    assert len(ctl.seconds) == 3 and ctl.planner.last_stats.rollouts == 2 * cfg.n_samples
    ctl.close()


def _progress(env, policy, seed: int, steps: int) -> tuple[float, int]:
    """Rotation distance gained toward the goal (rad) and successes in ``steps`` control steps."""
    obs, info = env.reset(seed=seed)
    policy.reset()
    start, successes = info["rotation_distance"], 0
    for _ in range(steps):
        obs, _, terminated, truncated, info = env.step(policy.act(obs))
        successes = info["consecutive_successes"]
        if terminated or truncated or successes:
            break
    return (np.pi if successes else start - info["rotation_distance"]), successes


def test_the_planner_turns_the_cube_and_holding_still_does_not():
    env = CubeReorientEnv(overrides=["randomization.enabled=false", "task.goal_mode=z", "task.goal_max_angle=1.2"])
    ctl = MpcController(apply_overrides(PlannerConfig(), ["n_samples=16", "horizon=5", "plan_timestep_scale=2"]),
                        env=env)
    planner = [_progress(env, ctl, seed, 40) for seed in (0, 1)]
    hold = [_progress(env, HoldPolicy(), seed, 40) for seed in (0, 1)]
    env.close()
    ctl.close()
    assert sum(s for _, s in planner) >= 1, planner  # at least one goal reached by the planner
    assert np.mean([p for p, _ in planner]) > np.mean([p for p, _ in hold]) + 0.3, (planner, hold)


def test_a_stalled_goal_widens_the_search(nominal_env):
    cfg = apply_overrides(PlannerConfig(), [*SMALL, "stall_steps=3", "stall_tolerance=0.05", "stall_noise_scale=2.0"])
    ctl = MpcController(cfg, env=nominal_env)
    nominal_env.reset(seed=0)
    ctl.reset()
    goal, cube = nominal_env.goal, nominal_env.cube_quat
    scales = [ctl._noise_scale(goal, cube) for _ in range(5)]  # no progress at all
    assert scales == [1.0, 1.0, 1.0, 2.0, 2.0]
    assert ctl._noise_scale(goal, goal) == 1.0  # progress (here: at the goal) resets it
    ctl.close()


def test_distillation_label_is_the_cost_weighted_action(nominal_env):
    sharp = MpcController(apply_overrides(PlannerConfig(), [*SMALL, "label_temperature=1e-6"]), env=nominal_env)
    nominal_env.reset(seed=1)
    sharp.reset()
    action = sharp.act()
    assert np.allclose(sharp.label, action, atol=1e-5)  # a cold softmax picks the best plan, the one sent
    sharp.close()
    soft = MpcController(apply_overrides(PlannerConfig(), [*SMALL, "label_temperature=100"]), env=nominal_env)
    nominal_env.reset(seed=1)
    soft.reset()
    action = soft.act()
    assert np.all(np.abs(soft.label) <= 1.0) and not np.allclose(soft.label, action)  # an average of many plans
    soft.close()


@pytest.mark.parametrize("first_knot_noise", [0.0, 1.0])
def test_first_knot_noise_scales_the_noise_on_the_step_sent_now(nominal_env, first_knot_noise):
    cfg = apply_overrides(PlannerConfig(), [*SMALL, "hold_candidate=false", f"first_knot_noise={first_knot_noise}"])
    ctl = MpcController(cfg, env=nominal_env)
    nominal_env.reset(seed=3)
    ctl.reset()
    planner = ctl.planner
    start = nominal_env.current_target
    plans = planner._candidates(start, cfg.noise_std * planner.half_range)
    first_steps = plans[:, 0] - planner.nominal[0]
    later_steps = plans[:, -1] - planner.nominal[-1]
    assert np.abs(later_steps).max() > 0.01  # later knots are searched either way
    if first_knot_noise == 0.0:
        assert np.allclose(first_steps, 0.0)  # every candidate sends what the last step planned
    else:
        assert np.abs(first_steps).max() > 0.01
    with pytest.raises(ConfigError, match="first_knot_noise"):
        apply_overrides(PlannerConfig(), ["first_knot_noise=1.5"])


def test_momentum_warm_start_continues_the_last_executed_action(nominal_env):
    """The "momentum" warm start is built from what the env executed (the student's previous action),
    not from the planner's own last plan, so two controllers on the same state start the same search."""
    cfg = apply_overrides(PlannerConfig(), [*SMALL, "warm_start=momentum", "momentum_decay=0.5"])
    ctl = MpcController(cfg, env=nominal_env)
    nominal_env.reset(seed=3)
    ctl.reset()
    ctl.planner.nominal += 0.05  # a stale plan of the planner's own: the momentum start must discard it
    pushed = np.zeros(nominal_env.action_space.shape)
    pushed[3] = 0.5
    nominal_env.step(pushed)
    start = nominal_env.current_target
    ctl.planner.continue_action(start, nominal_env.previous_action * nominal_env.action_step)
    moved = ctl.planner.nominal - start
    step = 0.5 * nominal_env.action_step[3]
    expected = step * np.cumsum(0.5 ** np.arange(cfg.horizon))
    expected = np.minimum(expected, nominal_env.ctrl_high[3] - start[3])  # feasible: inside the control range
    assert np.allclose(moved[:, 3], expected)
    assert np.allclose(np.delete(moved, 3, axis=1), 0.0)
    ctl.act()  # and act() uses it (no error, a finite action)
    ctl.close()
    with pytest.raises(ConfigError, match="warm_start"):
        apply_overrides(PlannerConfig(), ["warm_start=random"])
    with pytest.raises(ConfigError, match="momentum_decay"):
        apply_overrides(PlannerConfig(), ["momentum_decay=1.5"])


def test_resolving_labels_searches_again_from_the_same_start_and_keeps_the_controller_state(nominal_env):
    ctl = MpcController(apply_overrides(PlannerConfig(), [*SMALL, "method=mppi"]), env=nominal_env)
    nominal_env.reset(seed=3)
    ctl.reset()
    for _ in range(3):
        nominal_env.step(ctl.act())
    ctl.act()
    nominal, label = ctl.planner.nominal.copy(), ctl.planner.label_plan.copy()
    extra = ctl.resolve_label_plans(2)
    assert len(extra) == 2 and not np.allclose(extra[0], extra[1]) and not np.allclose(extra[0], label)
    assert np.array_equal(ctl.planner.nominal, nominal) and np.array_equal(ctl.planner.label_plan, label)
    # Each extra search is a perturbation of the same warm start as the first: all three stay close.
    spread = np.abs(np.stack([label, *extra]) - label).max()
    assert spread < 4 * ctl.cfg.noise_std * ctl.planner.half_range.max()
    ctl.close()


def test_fixed_noise_makes_a_search_a_function_of_state_and_warm_start(nominal_env):
    """With common random numbers a repeated search gives the same label; with fresh noise it does not."""
    labels = {}
    for fixed in (True, False):
        ctl = MpcController(apply_overrides(PlannerConfig(), [*SMALL, "method=mppi", f"fixed_noise={fixed}"]),
                            env=nominal_env)
        nominal_env.reset(seed=3)
        ctl.reset()
        for _ in range(3):
            nominal_env.step(ctl.act())
        ctl.act()
        labels[fixed] = (ctl.planner.label_plan.copy(), ctl.resolve_label_plans(1)[0])
        ctl.close()
    assert np.array_equal(*labels[True])
    assert not np.allclose(*labels[False])
