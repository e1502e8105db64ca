"""``dexhand eval``: consecutive successes of a policy over held-out episodes, as table, JSON and PNG.

Works on a training checkpoint (SB3, observation normalization applied) and on an exported ONNX
policy alike; both are wrapped as ``dexhand.policies.Policy`` (reset / act on the env observation).
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dexhand.demo import END_REASONS, EpisodeResult, bind_to_env, run_episode
from dexhand.report import format_table, write_json


class CheckpointPolicy:
    """A training checkpoint as a Policy: normalizes observations, carries the LSTM state."""

    def __init__(self, path: Path) -> None:
        from dexhand.export import load_checkpoint

        self.model, self.mean, self.var, self.clip, self.eps, self.cfg = load_checkpoint(path)
        self.recurrent = hasattr(self.model.policy, "lstm_actor")
        self.goal_mode = self.cfg.env.task.goal_mode  # what it was trained for (an export's metadata says the same)
        # The observation layout it reads is not a choice: the env must build the same one.
        self.env_requirements = [f"task.include_joint_angles={str(self.cfg.env.task.include_joint_angles).lower()}"]
        self.reset()

    def reset(self) -> None:
        self.state = None
        self.episode_start = np.ones(1, dtype=bool)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        obs = {k: v[None].astype(np.float32) for k, v in observation.items()}
        obs["policy"] = np.clip((obs["policy"] - self.mean) / np.sqrt(self.var + self.eps), -self.clip, self.clip)
        obs["critic"] = np.zeros_like(obs["critic"])  # the actor never reads it
        if self.recurrent:
            action, self.state = self.model.predict(obs, state=self.state, episode_start=self.episode_start,
                                                    deterministic=True)
            self.episode_start[:] = False
        else:
            action, _ = self.model.predict(obs, deterministic=True)
        return np.clip(action[0], -1.0, 1.0)


class OnnxObservationPolicy:
    """An exported ONNX policy as a Policy on the simulator's ``policy`` observation."""

    def __init__(self, path: Path) -> None:
        from dexhand.deploy import OnnxPolicy

        self.runtime = OnnxPolicy.load(path)
        self.goal_mode = self.runtime.meta.get("goal_mode")
        joints = "joint_pos" in self.runtime.layout
        self.env_requirements = [f"task.include_joint_angles={str(joints).lower()}"]

    def reset(self) -> None:
        self.runtime.reset()

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return self.runtime.act_observation(observation["policy"]).astype(np.float32)


def load_policy(path: Path):
    from dexhand.distill.plan_student import PlanStudentPolicy, is_plan_student

    path = Path(path)
    if is_plan_student(path):
        return PlanStudentPolicy(path)
    if path.suffix == ".onnx":
        return OnnxObservationPolicy(path)
    return CheckpointPolicy(path)


@dataclass
class EvalReport:
    episodes: int
    goal_mode: str
    randomization: bool
    mean: float
    median: float
    p25: float
    p75: float
    max: int
    drop_rate: float
    seconds_per_success: float | None
    successes: list[int]
    wall_seconds: float
    act_ms_mean: float  # the controller's compute per control step (planning, for the MPC)
    act_ms_p99: float
    seed: int | None = None  # episode k ran on env seed 10**6 + seed + k
    max_steps: int | None = None  # episodes were truncated here
    steps: list[int] | None = None  # control steps each episode lasted
    ends: dict[str, int] | None = None  # how many episodes ended for each reason (dexhand.demo.END_REASONS)

    @classmethod
    def load(cls, path: Path) -> EvalReport:
        """A report written by ``dexhand eval --json`` (to reuse an expensive evaluation)."""
        import json

        try:
            data = json.loads(Path(path).read_text())
            return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})
        except (OSError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"{path}: not an eval report ({exc})") from None


def summarize(results: list[EpisodeResult], goal_mode: str, randomization: bool, wall: float) -> EvalReport:
    s = np.array([r.consecutive_successes for r in results])
    times = [t for r in results for t in r.seconds_per_success]
    act_ms = 1000.0 * np.array([t for r in results for t in r.act_seconds] or [0.0])
    return EvalReport(
        episodes=len(results), goal_mode=goal_mode, randomization=randomization,
        mean=float(s.mean()), median=float(np.median(s)), p25=float(np.percentile(s, 25)),
        p75=float(np.percentile(s, 75)), max=int(s.max()), drop_rate=float(np.mean([r.dropped for r in results])),
        seconds_per_success=float(np.mean(times)) if times else None, successes=s.tolist(), wall_seconds=wall,
        act_ms_mean=float(act_ms.mean()), act_ms_p99=float(np.percentile(act_ms, 99)),
        steps=[r.steps for r in results],
        ends={reason: n for reason in END_REASONS if (n := sum(r.end == reason for r in results))},
    )


def _episode_env(policy: Any, overrides: list[str], vision: bool):
    """The env a policy is evaluated in, and the policy bound to it (vision wraps it in the pose estimator)."""
    from sim.env import CubeReorientEnv

    env = CubeReorientEnv(overrides=[*overrides, *getattr(policy, "env_requirements", [])])
    bind_to_env(policy, env)
    if vision:  # the cube pose comes from the pose estimator on rendered images
        from dexhand.vision_loop import VisionPosePolicy

        policy = VisionPosePolicy(policy, env)
    return env, policy


_WORKER: dict[str, Any] = {}  # each worker process's env and policy, built once by _init_worker


def _init_worker(make_policy: Callable[[], Any], overrides: list[str], vision: bool) -> None:
    _exit_with_parent()
    _WORKER["env"], _WORKER["policy"] = _episode_env(make_policy(), overrides, vision)


def _exit_with_parent() -> None:
    """A killed ``dexhand eval`` must not leave its workers computing: Linux sends them SIGTERM too."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: workers end when their queue closes
        pass


def _worker_episode(seed: int, max_steps: int) -> EpisodeResult:
    return run_episode(_WORKER["env"], _WORKER["policy"], seed, max_steps)


def evaluate(policy: Any, episodes: int, seed: int, overrides: list[str], max_steps: int = 10_000,
             progress: bool = True, vision: bool = False, workers: int = 1,
             make_policy: Callable[[], Any] | None = None) -> EvalReport:
    """Episodes on env seeds 10**6 + seed + k; ``workers`` > 1 runs them in that many processes, each
    building its own policy with ``make_policy`` (a picklable factory: simulators and ONNX sessions do not
    cross processes). The episodes and their results are the same for any number of workers."""
    from tqdm import tqdm

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes: need at least 1 episode to evaluate, got {episodes}")
    if max_steps < 1:
        raise ValueError(f"max steps: need at least 1 control step per episode, got {max_steps}")
    if workers < 1:
        raise ValueError(f"workers: need at least 1 worker process, got {workers}")
    if workers > 1 and make_policy is None:
        raise ValueError("workers > 1 needs make_policy, a picklable factory that builds the policy in each worker")
    env, policy = _episode_env(policy, overrides, vision)
    goal_mode, randomization = env.cfg.task.goal_mode, env.cfg.randomization.enabled
    # Held-out seeds: training seeds env resets from small integers; evaluation starts at 10**6.
    seeds = [10**6 + seed + ep for ep in range(episodes)]
    start = time.perf_counter()
    results: list[EpisodeResult | None] = [None] * episodes
    bar = tqdm(total=episodes, desc="eval episodes", disable=not progress)

    def log(ep: int, r: EpisodeResult) -> None:
        results[ep] = r
        bar.update()
        if not progress:  # logs get one line per episode instead of a bar
            print(f"[eval] episode {ep + 1}/{episodes}: {r.consecutive_successes} consecutive successes in "
                  f"{r.steps} steps, ended by {r.end}", flush=True)

    if workers == 1:
        for ep, s in enumerate(seeds):
            log(ep, run_episode(env, policy, s, max_steps))
    else:
        env.close()  # the workers build their own
        context = multiprocessing.get_context("spawn")  # no fork of a process with simulator threads
        with ProcessPoolExecutor(min(workers, episodes), mp_context=context, initializer=_init_worker,
                                 initargs=(make_policy, overrides, vision)) as pool:
            futures = {pool.submit(_worker_episode, s, max_steps): ep for ep, s in enumerate(seeds)}
            for future in as_completed(futures):
                log(futures[future], future.result())
    bar.close()
    env.close()
    report = summarize(results, goal_mode, randomization, time.perf_counter() - start)
    report.seed, report.max_steps = seed, max_steps
    return report


def print_report(report: EvalReport, name: str) -> None:
    rows = [{"figure": k, "value": v} for k, v in asdict(report).items() if k != "successes"]
    print(format_table(rows, title=f"dexhand eval: {name}"))


def plot_histogram(report: EvalReport, path: Path, name: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max(report.successes) if report.successes else 0
    ax.hist(report.successes, bins=np.arange(-0.5, top + 1.5, 1), color="#3b7dd8", edgecolor="white")
    ax.axvline(report.median, color="k", linestyle="--", label=f"median {report.median:g}")
    ax.set_xlabel("consecutive successes per episode")
    ax.set_ylabel("episodes")
    ax.set_title(f"{name}: goals '{report.goal_mode}', randomization {'on' if report.randomization else 'off'}")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def save_report(report: EvalReport, json_path: Path | None, name: str) -> None:
    write_json(json_path, {"policy": name, **asdict(report)})
