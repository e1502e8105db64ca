"""Data-parallel learners (ml_extras.sync_sgd) in the vision trainer.

One pool of 3 learner processes serves the module (spawning costs seconds each here): the vision
trainer with learners=2 backup=1 lowers its loss while one learner is killed mid-run. (The PPO
update on learners, ``DistributedPPO``, was removed: its learners are local processes sharing the
cores that torch's own threads already give the update; see issue #14.)
"""

from __future__ import annotations

import logging

import pytest
import torch

POOL_SIZE = 3
TIMEOUT = 30.0  # s; generous for a loaded 2-core machine, short enough not to hang CI


@pytest.fixture(scope="module")
def pool():
    from ml_extras.sync_sgd import WorkerPool

    with WorkerPool(POOL_SIZE) as p:
        yield p
    assert not any(proc.is_alive() for proc in p.processes.values())


def test_vision_learner_flags_and_validation():
    from sim.configio import ConfigError
    from vision.cli import build_parser, train_config

    parse = build_parser().parse_args
    cfg = train_config(parse(["train", "--data", "d", "--out", "o", "--learners", "3", "--backup", "2", "epochs=2"]))
    assert (cfg.learners, cfg.backup, cfg.epochs) == (3, 2, 2)
    assert train_config(parse(["train", "--data", "d", "--out", "o", "learners=2"])).learners == 2
    assert train_config(parse(["train", "--data", "d", "--out", "o"])).learners == 1
    for flags, field in ((["--learners", "0"], "learners"), (["--backup", "-1"], "backup"),
                         (["--learners", "4", "batch_size=2"], "batch_size"), (["learner_timeout=0"], "learner_timeout")):
        with pytest.raises(ConfigError, match=field):
            train_config(parse(["train", "--data", "d", "--out", "o", *flags]))


def test_vision_learners_lower_loss_and_survive_a_dead_learner(tmp_path, pool, caplog):
    from ml_extras.sync_sgd import Faults
    from sim.configio import apply_overrides
    from vision.config import GenConfig, TrainConfig
    from vision.data import generate_dataset
    from vision.train import train

    generate_dataset(GenConfig(image_size=64, shard_size=8, episode_steps=10, randomize=False), tmp_path / "data",
                     n=16, seed=11, workers=1)
    cfg = apply_overrides(TrainConfig(), [
        "learners=2", "backup=1", f"learner_timeout={TIMEOUT}", "epochs=12", "batch_size=8", "lr=0.005",
        "val_fraction=0.25", "net_size=32", "channels=[8,16,16,32,32]", "feature_dim=32", "hidden=64",
        "augment.camera_dropout=0", "augment.shift_px=0"])
    with caplog.at_level(logging.WARNING, logger="ml_extras.sync_sgd"):
        result = train(cfg, tmp_path / "data", tmp_path / "run", progress=False, pool=pool,
                       delay_fn=Faults(kill_at={2: 4}))
    assert any("dropped worker 2" in r.getMessage() for r in caplog.records), caplog.text
    losses = result["epoch_losses"]
    assert len(losses) == 12 and losses[-1] < 0.8 * losses[0], losses
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert checkpoint["epoch"] == 11 and checkpoint["config"]["learners"] == 2
    assert not list((tmp_path / "run").glob(".learners-*"))  # the shared image file is cleaned up
