"""``dexhand vision recipe``: the shipped model's whole recipe as one resumable command.

    dexhand vision recipe                      # vision/configs/recipe.yaml: gen -> train -> finetune -> export -> eval
    dexhand vision recipe --stages train,export train.time_limit_s=7200     # continue training longer

Stages: ``gen`` renders ``n`` samples into ``data_dir`` at network resolution (finished shards are
kept, so an interrupted run resumes); ``train`` trains on the complete shards found (resuming from
``run_dir``/last.pt when present: ``train.time_limit_s`` counts the training time of all runs, and
a checkpoint made with other settings is an error naming them); ``finetune`` (when ``finetune`` lists
overrides) trains on from ``run_dir``/best.pt with them into ``finetune_dir``, resumable the same way;
``export`` writes the last training stage's best checkpoint to ``export`` (ONNX + JSON + weights); ``eval`` runs ``dexhand vision eval`` on ``eval_n`` fresh
samples per set from ``eval_seed`` and writes ``run_dir``/eval.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sim.configio import ConfigError, to_dict
from vision.config import RecipeConfig, TrainConfig

STAGES = ("gen", "train", "finetune", "export", "eval")
# settings a resumed training run may change: how long it runs
RESUMABLE_CHANGES = {"epochs", "time_limit_s", "threads", "device"}


def parse_stages(text: str | None = None) -> list[str]:
    """``--stages`` as a list; none given means the whole recipe (the fine-tune included)."""
    if text is None:
        return list(STAGES)
    stages = [s.strip() for s in text.split(",") if s.strip()]
    bad = [s for s in stages if s not in STAGES]
    if bad or not stages:
        raise ConfigError(f"--stages: {bad or text!r} not among {list(STAGES)}")
    return stages


def check_resume(cfg: TrainConfig, last: Path) -> bool:
    """Whether training resumes from ``last`` (it exists); raises if it was made with other settings."""
    if not last.is_file():
        return False
    import torch

    have = torch.load(last, weights_only=False, map_location="cpu")["config"]
    want = to_dict(cfg)
    diff = sorted(k for k in set(have) | set(want) if k not in RESUMABLE_CHANGES and have.get(k) != want.get(k))
    if diff:
        raise ConfigError(f"{last} was trained with other settings ({', '.join(f'train.{k}' for k in diff)}); "
                          f"use another run_dir or delete it")
    return True


def finetune_config(cfg: RecipeConfig) -> TrainConfig | None:
    """The second training stage's config (None when the recipe has none)."""
    if not cfg.finetune:
        return None
    from sim.configio import apply_overrides

    return apply_overrides(cfg.train, [*cfg.finetune, f"init_from={Path(cfg.run_dir) / 'best.pt'}"])


def _train_stage(cfg: TrainConfig, data: Path, out: Path, command: str, progress: bool) -> dict[str, Any]:
    """Train into ``out``, resuming from its last.pt when present; the best checkpoint's summary."""
    from vision.train import train

    tr = train(cfg, data, out, resume=check_resume(cfg, out / "last.pt"), command=command, progress=progress)
    return {k: tr[k] for k in ("checkpoint", "epoch", "val")}


def run_recipe(cfg: RecipeConfig, stages: list[str], command: str = "", progress: bool = True) -> dict[str, Any]:
    data, run = Path(cfg.data_dir), Path(cfg.run_dir)
    result: dict[str, Any] = {"command": command, "stages": stages}
    if "gen" in stages:
        from vision.data import generate_dataset

        meta = generate_dataset(cfg.gen, data, cfg.n, seed=cfg.seed, workers=cfg.workers)
        result["gen"] = {"n": meta["n"], "shards": len(meta["shards"])}
    if "train" in stages:
        result["train"] = _train_stage(cfg.train, data, run, command, progress)
    ft_cfg = finetune_config(cfg)
    if "finetune" in stages and ft_cfg is not None:
        if not (run / "best.pt").is_file():
            raise FileNotFoundError(f"finetune: no checkpoint {run / 'best.pt'} (run the train stage first)")
        result["finetune"] = _train_stage(ft_cfg, data, Path(cfg.finetune_dir), command, progress)
    if "export" in stages and cfg.export:
        from vision.export import export_onnx

        last_stage, stage_dir = ("finetune", Path(cfg.finetune_dir)) if ft_cfg is not None else ("train", run)
        best = stage_dir / "best.pt"
        if not best.is_file():
            raise FileNotFoundError(f"export: no checkpoint {best} (run the {last_stage} stage first)")
        result["export"] = str(export_onnx(best, Path(cfg.export), command=command))
    if "eval" in stages:
        from vision.evaluate import evaluate, print_evaluation

        model = Path(cfg.export) if cfg.export else None
        if model is None or not model.is_file():
            raise FileNotFoundError(f"eval: no exported model at {cfg.export!r} (run the export stage)")
        cal = Path(cfg.gen.calibration) if cfg.gen.calibration else None
        ev = evaluate(model, n=cfg.eval_n, seed=cfg.eval_seed, calibration=cal)
        print_evaluation(ev)
        run.mkdir(parents=True, exist_ok=True)
        (run / "eval.json").write_text(json.dumps(ev, indent=2))
        result["eval"] = ev
    return result
