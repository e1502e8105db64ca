"""CLI: `python -m ml_extras.sentence_vae [--quick]`.

Trains, on PTB, an LSTM LM and three sentence VAEs of the same decoder size (plain ELBO; KL
annealing; KL annealing + word dropout), prints validation NLL / perplexity / KL, a homotopy
between two validation sentences and an imputation comparison against the LM, and writes JSON.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from ml_extras.common import Timer, base_parser, format_table, seed_everything, write_json
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result
from ml_extras.sentence_vae.analysis import homotopy, impute
from ml_extras.sentence_vae.claims import plot, sentence_vae_claims
from ml_extras.sentence_vae.data import load_ptb_sentences
from ml_extras.sentence_vae.model import LSTMLanguageModel, SentenceVAE
from ml_extras.sentence_vae.schedules import KLAnnealing
from ml_extras.sentence_vae.train import TrainConfig, evaluate, train_model


@dataclass(frozen=True)
class Scale:
    max_train: int | None
    max_valid: int | None
    max_len: int | None
    max_vocab: int | None
    embed_dim: int
    hidden_dim: int
    latent_dim: int
    steps: int
    batch_size: int
    lr: float


QUICK = Scale(max_train=8000, max_valid=400, max_len=20, max_vocab=2000, embed_dim=64, hidden_dim=128,
              latent_dim=16, steps=250, batch_size=32, lr=2e-3)
# Full mode: all of PTB's 10k vocabulary and sentences of <= 30 words, Bowman's 191-unit LSTMs and
# 13-d latent; 800 steps for each of the three models fits about 15 minutes of one core (about 0.4 s a step).
FULL = Scale(max_train=None, max_valid=None, max_len=30, max_vocab=None, embed_dim=128, hidden_dim=191,
             latent_dim=13, steps=800, batch_size=32, lr=1e-3)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__ or "", default_json="out/sentence_vae.json")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model (overrides the mode)")
    parser.add_argument("--word-dropout", type=float, default=0.5, help="word dropout rate for the last VAE")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (keep 1-2 on a shared box)")
    parser.add_argument("--resume", action="store_true", help="resume each model from its checkpoint in --out")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/sentence_vae.json (claims) and sentence_vae.png here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunRecord()
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    scale = QUICK if args.quick else FULL
    steps = args.steps or scale.steps
    data = load_ptb_sentences(scale.max_train, scale.max_valid, scale.max_len, scale.max_vocab)
    vocab = data.vocab
    print(f"PTB: {len(data.train)} train / {len(data.valid)} valid sentences, vocabulary {len(vocab)}, "
          f"{steps} steps per model")

    anneal = KLAnnealing("logistic", midpoint=steps // 2, steepness=16.0 / steps)
    runs = [
        ("lstm_lm", KLAnnealing("none"), 0.0),
        ("vae_plain_elbo", KLAnnealing("none"), 0.0),
        ("vae_kl_anneal", anneal, 0.0),
        ("vae_kl_anneal_wdrop", anneal, args.word_dropout),
    ]
    # the time budget (quick: 2 minutes; full: 30 minutes on shared cores) holds three models: keep
    # the baseline, the collapse and the fix
    runs = [run for run in runs if run[0] != "vae_kl_anneal"]
    rows, models, histories = [], {}, {}
    for name, annealing, dropout in runs:
        seed_everything(args.seed)
        if name == "lstm_lm":
            model: torch.nn.Module = LSTMLanguageModel(len(vocab), scale.embed_dim, scale.hidden_dim, vocab.pad_id)
        else:
            model = SentenceVAE(len(vocab), scale.embed_dim, scale.hidden_dim, scale.latent_dim, vocab.pad_id)
        config = TrainConfig(steps=steps, batch_size=scale.batch_size, word_dropout=dropout,
                             annealing=annealing, lr=scale.lr)
        checkpoint = None if args.quick else args.out / "sentence_vae" / f"{name}.pt"
        with Timer() as timer:
            histories[name] = train_model(model, data.train, vocab, config, seed=args.seed,
                                          checkpoint=checkpoint, resume=args.resume, desc=name)
        metrics = evaluate(model, data.valid, vocab, seed=args.seed)
        models[name] = model
        rows.append({"model": name, "kl_annealing": annealing.kind, "word_dropout": dropout,
                     "valid_nll": metrics["nll"], "valid_ppl": metrics["ppl"], "valid_kl": metrics["kl"],
                     "peak_train_kl": max(h["kl"] for h in histories[name]), "train_s": timer.seconds})
    print(format_table(rows, title="Sentence VAE vs LSTM LM on PTB validation (NLL per sentence, PPL per word)"))

    best_vae: SentenceVAE = models["vae_kl_anneal_wdrop"]
    short = [s for s in data.valid if 6 <= len(s) <= 12]
    pairs = [(short[2 * i], short[2 * i + 1]) for i in range(min(3, len(short) // 2))]
    paths = [homotopy(best_vae, a, b, vocab, n_points=5, ban_unk=True) for a, b in pairs]
    raw_paths = [homotopy(best_vae, a, b, vocab, n_points=5) for a, b in pairs]
    print("\nHomotopies (vae_kl_anneal_wdrop), greedy decodes (<unk> never emitted) of z = (1-t) mu(s1) + t mu(s2):")
    for (a, b), path in zip(pairs, paths):
        print(f"  s1: {' '.join(vocab.decode(a))}\n  s2: {' '.join(vocab.decode(b))}")
        for t, sentence in zip(torch.linspace(0, 1, len(path)).tolist(), path):
            print(f"    t={t:.2f}: {sentence}")
    path = paths[0] if paths else []

    impute_set = [s for s in data.valid if len(s) >= 5][: 100 if args.quick else 500]
    imputation, examples = impute(best_vae, models["lstm_lm"], impute_set, vocab)
    print()
    print(format_table([imputation], title="Imputing the last 20% of words (VAE with z vs LM from the prefix)"))
    for ex in examples:
        print(f"  [{ex['observed']}] truth: {ex['truth']} | vae: {ex['vae']} | lm: {ex['lm']}")

    payload = {"mode": "quick" if args.quick else "full", "steps": steps, "vocab_size": len(vocab),
               "results": rows, "homotopy": path, "homotopies": paths, "homotopies_raw": raw_paths,
               "homotopy_pairs": [[" ".join(vocab.decode(a)), " ".join(vocab.decode(b))] for a, b in pairs],
               "imputation": imputation, "imputation_examples": examples, "histories": histories}
    write_json(args.json, payload)
    if not args.quick:
        claims = sentence_vae_claims(payload)
        print_claims(claims)
        png = plot(histories, args.results_dir / "sentence_vae.png")
        write_result("sentence_vae", command_line("sentence_vae", argv), rows, claims, run.finish(),
                     {k: payload[k] for k in ("steps", "vocab_size", "homotopy_pairs", "homotopies", "homotopies_raw",
                                              "imputation", "imputation_examples")}
                     | {"scale": scale.__dict__, "plot": png.name}, args.results_dir)


if __name__ == "__main__":
    main()
