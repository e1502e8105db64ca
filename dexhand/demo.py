"""``dexhand demo``: run cube reorientation in the simulator headless, write a video, print metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dexhand.policies import Policy
from dexhand.report import format_table
from dexhand.video import VideoWriter, annotate


@dataclass
class EpisodeResult:
    consecutive_successes: int
    steps: int
    end: str  # why it ended: one of END_REASONS
    seconds_per_success: list[float] = field(default_factory=list)
    act_seconds: list[float] = field(default_factory=list)  # wall time of each policy.act call

    @property
    def dropped(self) -> bool:
        return self.end == "drop"

    @property
    def sim_unstable(self) -> bool:
        return self.end == "sim_unstable"


# Why an episode ends: the task's own ends (a drop, the success cap, a goal not reached in time, the
# episode's step cap), an unstable simulation, or the caller's ``max_steps``.
END_REASONS = ("drop", "max_successes", "goal_timeout", "episode_cap", "sim_unstable", "max_steps")


def end_reason(env, info: dict, ended: bool, steps: int) -> str:
    """Which of END_REASONS ended an episode (the figure that says what a controller fails at)."""
    if not ended:
        return "max_steps"
    if info["sim_unstable"]:
        return "sim_unstable"
    if info["dropped"]:
        return "drop"
    cfg = env.unwrapped.cfg
    if info["consecutive_successes"] >= cfg.task.max_consecutive_successes:
        return "max_successes"
    return "episode_cap" if steps >= cfg.max_episode_steps else "goal_timeout"


def run_episode(env, policy: Policy, seed: int, max_steps: int, video: VideoWriter | None = None,
                label: str = "") -> EpisodeResult:
    """One episode; frames go to ``video`` when given (the env needs render_mode='rgb_array')."""
    obs, info = env.reset(seed=seed)
    if hasattr(policy, "seed_episode"):  # controllers with random streams draw them per episode: any order,
        policy.seed_episode(seed)  # any process, the same episode
    policy.reset()
    period = env.unwrapped.cfg.scene.control_period
    last_success_step, times = 0, []
    ended = False
    steps = 0
    act_seconds = []
    for steps in range(1, max_steps + 1):
        start = time.perf_counter()
        action = policy.act(obs)
        act_seconds.append(time.perf_counter() - start)
        obs, _, terminated, truncated, info = env.step(action)
        if info["is_success"]:
            times.append((steps - last_success_step) * period)
            last_success_step = steps
        if video is not None:
            video.add(annotate(env.render(), [
                f"{label} step {steps}  t={steps * period:5.1f}s",
                f"successes {info['consecutive_successes']}  rot. dist {np.degrees(info['rotation_distance']):5.1f} deg",
            ]))
        if terminated or truncated:
            ended = True
            break
    return EpisodeResult(info["consecutive_successes"], steps, end_reason(env, info, ended, steps), times,
                         act_seconds)


def bind_to_env(policy: Policy, env) -> Policy:
    """Controllers that read the simulator (the planner) get the env the episodes run in."""
    if hasattr(policy, "bind_env"):
        policy.bind_env(env)
    return policy


def run_demo(policy: Policy, policy_name: str, video_path: Path, episodes: int, seed: int, max_steps: int,
             overrides: list[str], vision: bool = False) -> list[EpisodeResult]:
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=[*overrides, *getattr(policy, "env_requirements", [])], render_mode="rgb_array")
    bind_to_env(policy, env)
    if vision:
        from dexhand.vision_loop import VisionPosePolicy

        policy = VisionPosePolicy(policy, env)
        policy_name += " + vision"
    writer = VideoWriter(video_path, fps=1.0 / env.cfg.scene.control_period)
    results = []
    start = time.perf_counter()
    for ep in range(episodes):
        results.append(run_episode(env, policy, seed + ep, max_steps, writer, label=f"{policy_name} ep {ep}"))
    path = writer.close()
    env.close()
    rows = [{"episode": i, "consecutive_successes": r.consecutive_successes, "steps": r.steps,
             "dropped": r.dropped, "sim_unstable": r.sim_unstable} for i, r in enumerate(results)]
    print(format_table(rows, title=f"dexhand demo: {policy_name}, goals '{env.cfg.task.goal_mode}', "
                                   f"randomization {'on' if env.cfg.randomization.enabled else 'off'}"))
    successes = np.array([r.consecutive_successes for r in results])
    print(f"median consecutive successes {np.median(successes):.1f}, mean {successes.mean():.2f}, "
          f"drops {sum(r.dropped for r in results)}/{len(results)}")
    if vision:
        print(f"vision pose error: median {np.median(policy.errors_mm):.1f} mm, "
              f"{np.median(policy.errors_deg):.1f} deg over {len(policy.errors_mm)} steps")
    print(f"video: {path} ({len(writer.frames)} frames, {time.perf_counter() - start:.1f} s wall)")
    return results
