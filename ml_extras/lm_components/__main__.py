"""CLI: `python -m ml_extras.lm_components [--quick]`.

Trains four word-level LSTMP language models on PTB for the same number of steps -- word
embeddings or char-CNN inputs, crossed with full or importance-sampled softmax -- and reports the
exact validation perplexity (always with the full softmax) and the median training-step time.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ml_extras.common import Timer, base_parser, format_table, seed_everything, write_json
from ml_extras.lm_components.claims import lm_components_claims, plot
from ml_extras.lm_components.model import WordLM
from ml_extras.lm_components.train import TrainConfig, perplexity, train_lm
from ml_extras.ptb import CHAR_VOCAB_SIZE, Vocabulary, batchify, load_sentences, stream_ids
from ml_extras.results import RESULTS_DIR, RunRecord, command_line, print_claims, write_result


@dataclass(frozen=True)
class Scale:
    max_train_sentences: int | None
    max_valid_sentences: int | None
    embed_dim: int
    hidden_dim: int
    proj_dim: int
    batch_size: int
    bptt: int
    steps: int


QUICK = Scale(max_train_sentences=4000, max_valid_sentences=400, embed_dim=128, hidden_dim=256, proj_dim=128,
              batch_size=16, bptt=20, steps=100)
# Full mode: all of PTB, an LSTM-512-128 (cell 512, projection 128); 600 steps per full-softmax model
# (about 0.3 s a step) and the same CPU time for each sampled model fit about 15 minutes of one core.
FULL = Scale(max_train_sentences=None, max_valid_sentences=None, embed_dim=128, hidden_dim=512, proj_dim=128,
             batch_size=32, bptt=20, steps=600)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = base_parser(__doc__ or "", default_json="out/lm_components.json")
    parser.add_argument("--steps", type=int, default=None, help="training steps per model (overrides the mode)")
    parser.add_argument("--num-samples", type=int, default=256, help="K, words sampled per step by the sampled softmax")
    parser.add_argument("--proposal-power", type=float, default=1.0,
                        help="proposal q = unigram^power (normalised); 1.0 is the plain unigram")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (keep 1-2 on a shared box)")
    parser.add_argument("--resume", action="store_true", help="resume each model from its checkpoint in --out")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR,
                        help="full mode writes <dir>/lm_components.json (claims) and lm_components.png here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    run = RunRecord()
    warnings.filterwarnings("ignore", message="LSTM with projections is not supported with oneDNN")
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    scale = QUICK if args.quick else FULL
    steps = args.steps or scale.steps
    # The vocabulary always comes from the whole training split (PTB's closed 10k words), so the
    # softmax has its real size even when quick mode trains on a subset.
    vocab = Vocabulary.build(load_sentences("train"))
    train_rows = batchify(stream_ids(load_sentences("train", scale.max_train_sentences), vocab), scale.batch_size)
    valid_rows = batchify(stream_ids(load_sentences("valid", scale.max_valid_sentences), vocab), 16)
    proposal = vocab.unigram(args.proposal_power)
    char_table = vocab.char_table(max_word_len=16)
    print(f"PTB: vocabulary {len(vocab)}, {train_rows.numel()} train / {valid_rows.numel()} valid tokens, "
          f"{steps} steps per model, K={args.num_samples} samples")

    rows, curves = [], {}
    for input_kind in ("embedding", "charcnn"):
        full_cpu_s = None
        for softmax_kind in ("full", "sampled"):
            name = f"{input_kind}+{softmax_kind}"
            seed_everything(args.seed)
            model = WordLM(len(vocab), proposal, input_kind, softmax_kind, scale.embed_dim, scale.hidden_dim,
                           scale.proj_dim, args.num_samples, char_table, CHAR_VOCAB_SIZE)
            # equal steps in quick mode; in full mode the sampled model gets the full model's CPU time
            equal_cpu = not args.quick and softmax_kind == "sampled"
            config = TrainConfig(steps=steps * 20 if equal_cpu else steps, bptt=scale.bptt,
                                 cpu_budget_s=full_cpu_s if equal_cpu else None)
            checkpoint = None if args.quick else args.out / "lm_components" / f"{name.replace('+', '_')}.pt"
            with Timer() as timer:
                result = train_lm(model, train_rows, config, seed=args.seed, checkpoint=checkpoint,
                                  resume=args.resume, desc=name)
            curves[name] = result["losses"]
            if softmax_kind == "full":
                full_cpu_s = result["train_cpu_s"]
            n_params = sum(p.numel() for p in model.parameters())
            rows.append({"inputs": input_kind, "softmax": softmax_kind, "params_M": n_params / 1e6,
                         "valid_ppl": perplexity(model, valid_rows), "steps": result["steps_done"],
                         "train_cpu_s": result["train_cpu_s"], "step_ms": 1000 * result["step_time_s"],
                         "step_cpu_ms": 1000 * result["step_cpu_s"], "train_s": timer.seconds})
    budget = "equal steps" if args.quick else "full softmax: equal steps; sampled: the full model's CPU time"
    print(format_table(rows, title=f"PTB word LM (LSTMP {scale.hidden_dim}->{scale.proj_dim}), {budget}; "
                                   "validation perplexity with the exact softmax"))
    write_json(args.json, {"mode": "quick" if args.quick else "full", "steps": steps, "vocab_size": len(vocab),
                           "num_samples": args.num_samples, "results": rows, "train_loss_curves": curves})
    if not args.quick:
        claims = lm_components_claims(rows)
        print_claims(claims)
        png = plot(rows, args.results_dir / "lm_components.png")
        write_result("lm_components", command_line("lm_components", argv), rows, claims, run.finish(),
                     {"steps": steps, "num_samples": args.num_samples, "vocab_size": len(vocab),
                      "scale": scale.__dict__, "plot": png.name}, args.results_dir)


if __name__ == "__main__":
    main()
