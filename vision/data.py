"""Rendered, labelled training data: three 200x200 views of the hand and cube, pose in the hand's frame.

States come from simulated manipulation (random smooth actions from the reset pose, including the
frames of a cube falling off, up to ``max_drop``) plus a share of frames with the cube placed in a
uniformly random orientation near the palm, so every orientation is covered. Labels: position
relative to ``sim.env.HAND_ORIGIN`` (the hand base is fixed, so world axes are the hand's axes) and
orientation wxyz with w >= 0.

``generate_dataset`` writes sharded ``shard_XXXXX.npz`` files with several processes, skips shards
that are already complete (resume), and writes ``metadata.json``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from vision.config import GenConfig

SHARD_KEYS = ("images", "pos", "quat", "free_pose", "cam_pos", "cam_quat", "cam_fovy")


def make_env(cfg: GenConfig):
    """The env the data come from (calibration applied to its cameras when configured)."""
    from sim.config import EnvConfig
    from sim.configio import apply_overrides
    from sim.env import CubeReorientEnv

    overrides = list(cfg.env_overrides)
    if not cfg.randomize:
        overrides.append("randomization.enabled=false")
    env = CubeReorientEnv(apply_overrides(EnvConfig(), overrides))
    if cfg.calibration:
        from vision.cameras import apply_calibration
        from vision.runtime.calibration import load_calibration

        apply_calibration(env.model, load_calibration(cfg.calibration), env.nominal)
    return env


def shard_seed(seed: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def pipeline_config(cfg: GenConfig):
    """The runtime pipeline the stored images went through (None: raw frames are stored)."""
    from vision.runtime.pipeline import PipelineConfig

    return PipelineConfig(input_size=cfg.image_size, net_size=cfg.net_size, crop=cfg.crop) if cfg.net_size else None


def generate_samples(cfg: GenConfig, seed: int, n: int, env=None, progress=None, hook=None) -> dict[str, np.ndarray]:
    """``n`` labelled samples, deterministic for a given ``seed`` and config.

    Images are (n, n_cams, S, S, 3) uint8 with S = ``cfg.net_size`` when set (rendered at
    ``image_size`` and prepared by the runtime's ImagePipeline), else ``cfg.image_size``.

    ``hook(env)``, when given, is called at every recorded frame with the env in that frame's state
    (the marker baseline renders its own cube there).
    """
    import mujoco

    from dexhand.policies import RandomSmoothPolicy
    from sim import rotations
    from sim.env import HAND_ORIGIN
    from sim.scene import VISION_CAMERAS

    own_env = env is None
    env = env or make_env(cfg)
    rng = np.random.default_rng(seed)
    policy = RandomSmoothPolicy(env.model.nu, cfg.action_scale, cfg.action_smoothing, seed=int(rng.integers(2**31)))
    size, cams = cfg.image_size, VISION_CAMERAS
    pipe_cfg = pipeline_config(cfg)
    if pipe_cfg is not None:
        from vision.runtime.pipeline import ImagePipeline

        pipeline = ImagePipeline(pipe_cfg)
    stored = cfg.net_size or size
    cam_ids = [env.model.camera(c).id for c in cams]
    out = {
        "images": np.zeros((n, len(cams), stored, stored, 3), np.uint8),
        "pos": np.zeros((n, 3), np.float32),
        "quat": np.zeros((n, 4), np.float32),
        "free_pose": np.zeros(n, bool),
        "cam_pos": np.zeros((n, len(cams), 3), np.float32),
        "cam_quat": np.zeros((n, len(cams), 4), np.float32),
        "cam_fovy": np.zeros((n, len(cams)), np.float32),
    }
    rcfg = env.cfg.randomization
    strength = rcfg.strength if (rcfg.enabled and rcfg.visuals) else 0.0
    m, d, qadr = env.model, env.data, env.ids.cube_qpos
    done, steps = 0, cfg.episode_steps
    start_z = 0.0
    try:
        while done < n:
            if steps >= cfg.episode_steps:
                obs, _ = env.reset(seed=int(rng.integers(2**31)))
                policy.reset()
                steps, start_z = 0, float(d.qpos[qadr + 2])
            obs, _, terminated, truncated, _ = env.step(policy.act(obs))
            steps += 1
            if terminated or truncated:
                steps = cfg.episode_steps  # reset next time
            if steps % cfg.render_every:
                continue
            if start_z - float(d.qpos[qadr + 2]) > cfg.max_drop or not np.all(np.isfinite(d.qpos)):
                steps = cfg.episode_steps
                continue
            if strength > 0 and cfg.resample_visuals:
                env.visual_randomizer.apply(m, env.nominal, rng, strength)
            free = bool(rng.random() < cfg.free_pose_fraction)
            saved = (d.qpos.copy(), d.qvel.copy())
            if free:
                d.qpos[qadr:qadr + 3] = HAND_ORIGIN + np.array(
                    [*rng.uniform(-0.02, 0.02, 2), rng.uniform(0.0, 0.03)])
                d.qpos[qadr + 3:qadr + 7] = rotations.random_uniform(rng)
            mujoco.mj_forward(m, d)
            views = env.render_views(size, cams)
            q = env.cube_quat
            if pipe_cfg is not None:
                out["images"][done] = np.stack([pipeline.prepare(c, views[c]) for c in cams])
            else:
                out["images"][done] = np.stack([views[c] for c in cams])
            out["pos"][done] = env.cube_pos - HAND_ORIGIN
            out["quat"][done] = q if q[0] >= 0 else -q
            out["free_pose"][done] = free
            out["cam_pos"][done] = m.cam_pos[cam_ids]
            out["cam_quat"][done] = m.cam_quat[cam_ids]
            out["cam_fovy"][done] = m.cam_fovy[cam_ids]
            if hook is not None:
                hook(env)
            if free:
                d.qpos[:], d.qvel[:] = saved
                mujoco.mj_forward(m, d)
            done += 1
            if progress is not None:
                progress(1)
    finally:
        if own_env:
            env.close()
    return out


def _shard_path(out: Path, index: int) -> Path:
    return out / f"shard_{index:05d}.npz"


def shard_complete(path: Path, expected: int) -> bool:
    """A shard counts as done when it loads and holds ``expected`` samples (a crash leaves none: atomic rename)."""
    try:
        with np.load(path) as f:
            return all(k in f for k in SHARD_KEYS) and len(f["pos"]) == expected
    except (OSError, ValueError, EOFError):
        return False


def _write_shard(args: tuple[GenConfig, int, int, int, str]) -> int:
    cfg, seed, index, count, out = args
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    samples = generate_samples(cfg, shard_seed(seed, index), count)
    path = _shard_path(Path(out), index)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **samples)
    os.replace(tmp, path)
    return count


def shard_sizes(n: int, shard_size: int) -> list[int]:
    full, rest = divmod(n, shard_size)
    return [shard_size] * full + ([rest] if rest else [])


def write_metadata(cfg: GenConfig, out: Path, n: int, seed: int) -> dict[str, Any]:
    import mujoco

    from sim.configio import to_dict
    from sim.env import HAND_ORIGIN
    from sim.scene import VISION_CAMERAS
    from vision.cameras import camera_metadata

    env = make_env(cfg)
    try:
        data = mujoco.MjData(env.nominal)
        mujoco.mj_forward(env.nominal, data)
        cams = camera_metadata(env.nominal, data, VISION_CAMERAS, cfg.image_size)
        env_cfg = to_dict(env.cfg)
    finally:
        env.close()
    meta = {
        "n": n,
        "seed": seed,
        "shards": [p.name for p in finished_shards(out)],
        "cameras": list(VISION_CAMERAS),
        "camera_nominal": cams,
        "labels": {"pos": "cube centre minus sim.env.HAND_ORIGIN, metres, world (= hand) axes",
                   "quat": "cube orientation wxyz in world (= hand) axes, w >= 0"},
        "hand_origin": HAND_ORIGIN.tolist(),
        "pipeline": pipeline_config(cfg).to_dict() if cfg.net_size else None,
        "gen_config": to_dict(cfg),
        "env_randomization": env_cfg["randomization"],
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2))
    return meta


def generate_dataset(cfg: GenConfig, out: Path, n: int, seed: int = 0, workers: int = 2) -> dict[str, Any]:
    """Render ``n`` samples into ``out`` (resumable: finished shards are kept)."""
    from sim.configio import ConfigError, to_dict

    out.mkdir(parents=True, exist_ok=True)
    stamp = out / "gen_config.json"  # written first, so a resumed run cannot mix two configs or seeds
    want = {"seed": seed, "gen_config": to_dict(cfg)}
    if stamp.is_file():
        have = json.loads(stamp.read_text())
        if have != want:
            diff = sorted(k for k in {**have["gen_config"], **want["gen_config"]}
                          if have["gen_config"].get(k) != want["gen_config"].get(k))
            if have["seed"] != seed:
                diff.append("seed")
            raise ConfigError(f"{out} holds shards made with other settings ({', '.join(diff)} differ); "
                              f"use another --out or delete {out}")
    else:
        stamp.write_text(json.dumps(want, indent=2))
    sizes = shard_sizes(n, cfg.shard_size)
    todo = [(cfg, seed, i, c, str(out)) for i, c in enumerate(sizes) if not shard_complete(_shard_path(out, i), c)]
    skipped = n - sum(t[3] for t in todo)
    with tqdm(total=n, initial=skipped, unit="sample", desc="vision gen") as bar:
        if workers <= 1 or len(todo) <= 1:
            for t in todo:
                bar.update(_write_shard(t))
        else:
            with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
                for count in pool.imap_unordered(_write_shard, todo):
                    bar.update(count)
    return write_metadata(cfg, out, n, seed)


def sample_cameras(samples: dict[str, np.ndarray], input_size: int, error=None,
                   rng: np.random.Generator | None = None) -> list[dict[str, Any]]:
    """Each sample's camera geometry (``vision.runtime.geometry.CameraGeometry`` by camera name), with
    positions relative to the hand origin as the labels. ``error`` (``vision.config.ExtrinsicsError``):
    as a calibration with those errors would give them (drawn from ``rng``), not exactly."""
    from sim.env import HAND_ORIGIN
    from sim.scene import VISION_CAMERAS
    from vision.runtime.geometry import mujoco_camera, perturbed

    out = []
    for i in range(len(samples["pos"])):
        cams = {c: mujoco_camera(samples["cam_pos"][i, j], samples["cam_quat"][i, j], samples["cam_fovy"][i, j],
                                 input_size, HAND_ORIGIN) for j, c in enumerate(VISION_CAMERAS)}
        if error is not None:
            cams = {c: perturbed(g, rng, error.pos_std, error.angle_std, error.focal_rel_std) for c, g in cams.items()}
        out.append(cams)
    return out


def finished_shards(folder: Path) -> list[Path]:
    """The written shards of a folder (not the .tmp.npz files of a generation in progress)."""
    return sorted(p for p in Path(folder).glob("shard_*.npz") if p.stem[6:].isdigit())


def load_dataset(folder: Path, max_samples: int = 0) -> dict[str, np.ndarray]:
    """The finished shards of a generated folder, concatenated in shard order: all of them, or only as many
    as the first ``max_samples`` samples need. Fewer samples than ``max_samples`` is an error, since a
    training stage would silently use another set than the one it was made with."""
    shards = finished_shards(folder)
    if not shards:
        raise FileNotFoundError(f"no shard_*.npz files in {folder} (generate with: dexhand vision gen --out {folder})")
    parts: dict[str, list[np.ndarray]] = {k: [] for k in SHARD_KEYS}
    count = 0
    for p in shards:
        if max_samples and count >= max_samples:
            break
        with np.load(p) as f:
            for k in SHARD_KEYS:
                parts[k].append(f[k])
        count += len(parts["pos"][-1])
    if max_samples and count < max_samples:
        raise ValueError(f"{folder}: max_samples={max_samples} but the folder holds only {count} "
                         f"complete samples (generate more, or lower max_samples)")
    return {k: np.concatenate(v)[:max_samples or None] for k, v in parts.items()}
