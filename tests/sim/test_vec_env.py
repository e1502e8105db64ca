import numpy as np
import pytest

from sim.vec_env import ThreadedVecEnv, make_vec_env


def run(backend: str, steps: int = 12):
    vec = make_vec_env(4, backend=backend, n_workers=2, seed=3)
    obs = vec.reset()
    rng = np.random.default_rng(0)
    trace = [obs["policy"].copy()]
    for _ in range(steps):
        obs, rew, done, infos = vec.step(rng.uniform(-1, 1, (4, 20)).astype(np.float32))
        trace.append(np.concatenate([obs["policy"], rew[:, None]], axis=1))
    vec.close()
    return trace


def test_threaded_equals_serial_step_for_step():
    for a, b in zip(run("thread"), run("serial")):
        np.testing.assert_array_equal(a, b)


def test_auto_reset_keeps_terminal_observation():
    vec = make_vec_env(2, backend="thread", n_workers=2, seed=0, overrides=["task.goal_timeout_steps=3"])
    assert isinstance(vec, ThreadedVecEnv)
    vec.reset()
    for _ in range(3):
        obs, rew, done, infos = vec.step(np.zeros((2, 20), dtype=np.float32))
    assert done.all()
    assert all("terminal_observation" in i and i["TimeLimit.truncated"] for i in infos)
    vec.close()


def test_worker_errors_surface_in_the_caller():
    vec = make_vec_env(2, backend="thread", n_workers=2, seed=0)
    vec.reset()
    with pytest.raises(ValueError, match="NaN"):
        vec.step(np.full((2, 20), np.nan, dtype=np.float32))
    vec.close()


def test_bad_backend_is_named():
    with pytest.raises(ValueError, match="backend"):
        make_vec_env(1, backend="gpu")


def test_process_batches_equal_serial_step_for_step():
    for a, b in zip(run("process"), run("serial")):
        np.testing.assert_array_equal(a, b)


def test_process_batches_route_env_methods_and_surface_worker_errors():
    vec = make_vec_env(3, backend="process", n_workers=2, seed=0)
    try:
        vec.reset()
        vec.env_method("set_goal_mode", "faces", indices=[2])
        modes = [cfg.task.goal_mode for cfg in vec.get_attr("cfg")]
        assert modes == ["full", "full", "faces"]
        with pytest.raises(ValueError, match="NaN"):
            vec.step(np.full((3, 20), np.nan, dtype=np.float32))
    finally:
        vec.close()


def test_a_dead_process_batch_is_named_not_a_hang():
    vec = make_vec_env(2, backend="process", n_workers=2, seed=0)
    try:
        vec.reset()
        vec._processes[1].kill()
        vec._processes[1].join(timeout=10)
        with pytest.raises(RuntimeError, match=r"worker 1 \(pid \d+, exit code -9\) died"):
            vec.step(np.zeros((2, 20), dtype=np.float32))
    finally:
        vec.close()
