"""CLI: train a byte mLSTM LM, probe its state for Rotten Tomatoes sentiment, steer generation.

python -m ml_extras.sentiment_neuron --quick     # small mLSTM, ~1 minute of LM training
python -m ml_extras.sentiment_neuron --resume    # full mode, continues from out/sentiment_neuron/lm.pt
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ml_extras.common import Timer, base_parser, format_table, seed_everything, write_json
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result
from ml_extras.sentiment_neuron.claims import plot, sentiment_claims
from ml_extras.sentiment_neuron.data import build_corpus, load_austen, load_reviews, split_reviews
from ml_extras.sentiment_neuron.generate import generate
from ml_extras.sentiment_neuron.model import ByteMLSTM, MLSTMConfig
from ml_extras.sentiment_neuron.probe import best_unit, extract_features, label_curve
from ml_extras.sentiment_neuron.train import TrainConfig, init_output_from_unigrams, train_language_model

# (hidden, embed, steps, batch, window, lr, safety stop in seconds, label draws per budget)
QUICK = dict(hidden=128, embed=32, steps=400, batch=32, window=64, lr=1.5e-2, max_seconds=60.0, repeats=2)
# full: at lr 5e-3 the LM diverged between steps 250 and 500 (2.6 -> 4.5 bits/byte, the unigram
# level) and every probe fell to the majority class; at 1e-3 it trains (4.52 -> 2.18 bits/byte in
# 2,251 steps in an 8-minute run). The full mode spends the 30 minutes: 8,000 steps took 1,609 s
# on 2 threads (--threads 2; 1.97 bits/byte), the probes about 40 s; 27 minutes is the safety stop
FULL = dict(hidden=256, embed=64, steps=8000, batch=32, window=64, lr=1e-3, max_seconds=27 * 60.0, repeats=5)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(
        "Radford et al. 2017 'sentiment neuron' at small scale: a byte-level multiplicative LSTM is "
        "trained as a language model on unlabelled text, then an L1 logistic regression on its final "
        "state after reading a Rotten Tomatoes snippet predicts fresh/rotten. Prints test accuracy "
        "against the number of labels (with a tf-idf bag-of-words baseline on the same labels), the "
        "accuracy of the single largest-weight unit, and text sampled with that unit clamped.",
        default_json="out/sentiment_neuron.json",
    )
    parser.add_argument("--corpus", choices=("reviews", "austen", "both"), default="reviews",
                        help="LM training text: the train-split snippets + plot summaries (default), "
                             "the Jane Austen novels, or both")
    parser.add_argument("--hidden", type=int, help="mLSTM units (quick 128, full 256)")
    parser.add_argument("--steps", type=int, help="LM training steps (quick 400, full 8000)")
    parser.add_argument("--max-minutes", type=float,
                        help="stop LM training after this long even if steps remain (quick 1, full 27)")
    parser.add_argument("--labels", type=str, default="11,232,1000,all",
                        help="comma-separated label budgets; 'all' = the whole train pool")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1-2 on shared machines)")
    parser.add_argument("--resume", action="store_true",
                        help="continue LM training from the checkpoint in --out (full mode saves one)")
    parser.add_argument("--clamp-scale", type=float, default=1.0,
                        help="multiply the unit's extreme observed values by this when clamping")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/sentiment_neuron.json (claims) and its PNG here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    run = RunRecord()
    if not 1 <= args.threads <= 16:
        raise SystemExit(f"--threads must be in [1, 16], got {args.threads}")
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    preset = dict(QUICK if args.quick else FULL)
    hidden = args.hidden or preset["hidden"]
    train_cfg = TrainConfig(
        steps=args.steps or preset["steps"], batch_size=preset["batch"], window=preset["window"],
        lr=preset["lr"], max_seconds=args.max_minutes * 60 if args.max_minutes else preset["max_seconds"],
        checkpoint_every=0 if args.quick else 100,
    )

    reviews = load_reviews()
    split = split_reviews(reviews.labels, seed=args.seed)
    lm_texts: list[str] = []
    if args.corpus in ("reviews", "both"):  # only train-pool snippets: test text is never seen
        lm_texts += [reviews.texts[i] for i in split.train] + reviews.plots
    corpus = build_corpus(lm_texts) if lm_texts else np.zeros(0, dtype=np.uint8)
    if args.corpus in ("austen", "both"):
        austen = np.frombuffer(load_austen().encode("utf-8"), dtype=np.uint8)
        corpus = np.concatenate([corpus, austen])
    print(f"LM corpus '{args.corpus}': {len(corpus):,} bytes; snippets: {len(split.train)} train pool, "
          f"{len(split.valid)} valid, {len(split.test)} test")

    model = ByteMLSTM(MLSTMConfig(hidden_size=hidden, embed_size=preset["embed"]))
    init_output_from_unigrams(model, corpus)  # overwritten by the checkpoint when resuming
    checkpoint = None if args.quick else args.out / "sentiment_neuron" / f"lm_{args.corpus}_h{hidden}.pt"
    with Timer() as lm_timer:
        trained = train_language_model(model, corpus, train_cfg, args.seed, checkpoint, args.resume)
    print(f"LM: {trained.steps_done} steps in {lm_timer.seconds:.0f}s, bits/byte "
          f"{trained.start_bits_per_byte:.2f} -> {trained.final_bits_per_byte:.2f}"
          + (" (stopped by the time limit)" if trained.stopped_early else ""))

    with Timer() as feat_timer:
        hidden_feats, cell_feats = extract_features(model, reviews.texts, progress=True)
    features = {"mlstm_h": hidden_feats, "mlstm_c": cell_feats}
    sizes = [len(split.train) if s.strip() == "all" else int(s) for s in args.labels.split(",")]
    with Timer() as probe_timer:
        curve = label_curve(features, reviews.texts, reviews.labels, split, sizes, preset["repeats"], args.seed)
        units = {name: best_unit(feats, reviews.labels, split) for name, feats in features.items()}
    print(format_table(curve, title="Rotten Tomatoes test accuracy vs labels (L1 probe on mLSTM state; "
                                    "tf-idf BoW L2 baseline)"))
    unit_rows = [{"features": name, "unit": u.unit, "weight": u.weight, "nonzero_weights": u.nonzero_weights,
                  "single_unit_test_acc": u.single_unit_test_accuracy, "all_units_test_acc": u.full_probe_test_accuracy}
                 for name, u in units.items()]
    print(format_table(unit_rows, title="Largest-weight unit of the all-labels L1 probe, alone"))

    cell_unit = units["mlstm_c"]
    samples = []
    for prompt in ("", "This movie is"):
        for mood, value in (("fresh", cell_unit.fresh_value), ("rotten", cell_unit.rotten_value)):
            text = generate(model, prompt, n_bytes=160, clamp_unit=cell_unit.unit,
                            clamp_value=value * args.clamp_scale, seed=args.seed)
            samples.append({"prompt": prompt, "clamp": mood, "value": value * args.clamp_scale, "text": text})
    print(f"\nSamples with cell unit {cell_unit.unit} clamped (temperature 0.8, same seed):")
    for s in samples:
        print(f"  [{s['clamp']:>6} {s['value']:+.2f}] {s['text']!r}")

    payload = {
        "mode": "quick" if args.quick else "full", "seed": args.seed, "corpus": args.corpus,
        "corpus_bytes": len(corpus), "model": asdict(model.config), "train": asdict(train_cfg),
        "lm": {k: v for k, v in asdict(trained).items() if k != "history"},
        "lm_bits_per_byte_history": trained.history[:: max(1, len(trained.history) // 200)],
        "split_sizes": {"train_pool": len(split.train), "valid": len(split.valid), "test": len(split.test)},
        "majority_test_acc": float(max(np.mean(reviews.labels[split.test]), 1 - np.mean(reviews.labels[split.test]))),
        "label_curve": curve, "best_unit": {k: asdict(u) for k, u in units.items()}, "samples": samples,
        "seconds": {"lm": lm_timer.seconds, "features": feat_timer.seconds, "probes": probe_timer.seconds},
    }
    write_json(args.json, payload)
    if not args.quick and {11, 232} <= set(sizes):
        claims = sentiment_claims(payload)
        print_claims(claims)
        png = plot(payload, args.results_dir / "sentiment_neuron.png")
        write_result("sentiment_neuron", command_line("sentiment_neuron", argv), curve, claims, run.finish(),
                     {k: payload[k] for k in ("corpus", "corpus_bytes", "model", "train", "lm", "split_sizes",
                                              "majority_test_acc", "lm_bits_per_byte_history",
                                              "best_unit", "samples", "seconds")} | {"plot": png.name},
                     args.results_dir)
    return payload


if __name__ == "__main__":
    main()
