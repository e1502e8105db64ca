"""Tests for the sentence VAE on tiny synthetic data (plus the shared PTB vocabulary/padding helpers)."""

from __future__ import annotations

import math

import pytest
import torch

from ml_extras.ptb import Vocabulary, pad_sentences
from ml_extras.sentence_vae.analysis import homotopy, impute
from ml_extras.sentence_vae.data import make_batch
from ml_extras.sentence_vae.model import LSTMLanguageModel, SentenceVAE
from ml_extras.sentence_vae.schedules import KLAnnealing, word_dropout
from ml_extras.sentence_vae.train import TrainConfig, evaluate, train_model

torch.set_num_threads(1)

CORPUS = [
    "the cat sat on the mat".split(),
    "a dog ran in the park".split(),
    "the cat ran in the park".split(),
    "a dog sat on the mat".split(),
    "stocks fell sharply today".split(),
    "stocks rose sharply today".split(),
]


def _vocab_and_data() -> tuple[Vocabulary, list[list[int]]]:
    vocab = Vocabulary.build(CORPUS)
    return vocab, [vocab.encode(s) for s in CORPUS]


def test_vocabulary_roundtrip_and_unk_cap() -> None:
    vocab = Vocabulary.build(CORPUS)
    assert vocab.words[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    ids = vocab.encode(["the", "cat", "zebra"])
    assert ids[2] == vocab.unk_id
    assert vocab.decode([*ids, vocab.eos_id, vocab.index["mat"]]) == ["the", "cat", "<unk>"]
    capped = Vocabulary.build(CORPUS, max_size=6)
    assert len(capped) == 6 and capped.words[4] == "the"  # the most frequent word survives
    assert capped.encode(["stocks"]) == [capped.unk_id]
    probs = vocab.unigram()
    assert probs[vocab.pad_id] == 0 and probs[vocab.bos_id] == 0
    assert probs.sum().item() == pytest.approx(1.0)


def test_make_batch_shifts_and_pads() -> None:
    vocab, data = _vocab_and_data()
    batch = make_batch([data[4], data[0]], vocab)
    assert batch.inputs.shape == batch.targets.shape == (2, 7)
    assert batch.lengths.tolist() == [5, 7]
    assert batch.inputs[0, 0] == vocab.bos_id and batch.targets[0, 4] == vocab.eos_id
    assert torch.equal(batch.inputs[1, 1:], batch.targets[1, :-1])
    assert (batch.targets[0, 5:] == vocab.pad_id).all()
    with pytest.raises(ValueError, match="empty"):
        pad_sentences([], 0)


def test_vae_shapes_and_kl_formula() -> None:
    torch.manual_seed(0)
    vocab, data = _vocab_and_data()
    model = SentenceVAE(len(vocab), 8, 16, 4, vocab.pad_id)
    batch = make_batch(data[:3], vocab)
    out = model(batch.inputs, batch.targets, lengths=batch.lengths)
    assert out["recon"].shape == out["kl"].shape == (3,)
    assert out["logits"].shape == (3, batch.inputs.size(1), len(vocab))
    mean, logvar = model.encode(batch.targets, batch.lengths)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mean), torch.ones_like(mean))
    assert torch.allclose(out["kl"], torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        model(batch.inputs, batch.targets[:, :-1])


def test_encoder_ignores_padding_after_the_sentence() -> None:
    torch.manual_seed(0)
    vocab, data = _vocab_and_data()
    model = SentenceVAE(len(vocab), 8, 16, 4, vocab.pad_id)
    short = make_batch([data[4]], vocab)
    padded = make_batch([data[0], data[4]], vocab)
    mean_alone, _ = model.encode(short.targets, short.lengths)
    mean_padded, _ = model.encode(padded.targets, padded.lengths)
    assert torch.allclose(mean_alone[0], mean_padded[1], atol=1e-6)


def test_gradients_reach_the_encoder_through_z() -> None:
    torch.manual_seed(0)
    vocab, data = _vocab_and_data()
    model = SentenceVAE(len(vocab), 8, 16, 4, vocab.pad_id)
    batch = make_batch(data, vocab)
    out = model(batch.inputs, batch.targets, lengths=batch.lengths)
    out["recon"].sum().backward()  # reconstruction only: the encoder learns solely via z
    for name in ("encoder.weight_ih_l0", "to_posterior.weight", "to_state.weight", "decoder.output.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_lm_nll_matches_hand_computed_cross_entropy() -> None:
    torch.manual_seed(0)
    vocab, data = _vocab_and_data()
    lm = LSTMLanguageModel(len(vocab), 8, 16, vocab.pad_id)
    batch = make_batch(data[:2], vocab)
    out = lm(batch.inputs, batch.targets)
    log_probs = out["logits"].log_softmax(-1)
    manual = [-sum(log_probs[b, t, batch.targets[b, t]].item() for t in range(int(batch.lengths[b])))
              for b in range(2)]
    assert out["recon"].tolist() == pytest.approx(manual, rel=1e-5)
    metrics = evaluate(lm, data[:2], vocab)
    assert metrics["ppl"] == pytest.approx(math.exp(sum(manual) / int(batch.lengths.sum())), rel=1e-5)
    assert metrics["kl"] == 0.0


def test_kl_annealing_schedules() -> None:
    logistic = KLAnnealing("logistic", midpoint=100, steepness=0.1)
    weights = [logistic.weight(s) for s in range(0, 301, 10)]
    assert all(b > a for a, b in zip(weights, weights[1:]))
    assert weights[0] < 1e-4 and logistic.weight(100) == pytest.approx(0.5) and weights[-1] > 0.999
    linear = KLAnnealing("linear", midpoint=50)
    assert [linear.weight(s) for s in (0, 25, 50, 100, 500)] == pytest.approx([0.0, 0.25, 0.5, 1.0, 1.0])
    assert all(KLAnnealing("none").weight(s) == 1.0 for s in (0, 10, 10_000))
    with pytest.raises(ValueError, match="annealing kind"):
        KLAnnealing("cosine")


def test_word_dropout_rate_and_protected_tokens() -> None:
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, 50, (200, 100), generator=g)
    tokens[:, 0] = 1  # <bos>
    tokens[:, 80:] = 0  # padding
    dropped = word_dropout(tokens, 0.3, unk_id=3, protected_ids=(0, 1), generator=g)
    eligible = tokens[:, 1:80]
    rate = (dropped[:, 1:80] == 3).float().mean().item()
    standard_error = math.sqrt(0.3 * 0.7 / eligible.numel())
    assert abs(rate - 0.3) < 4 * standard_error
    assert torch.equal(dropped[:, 0], tokens[:, 0]) and torch.equal(dropped[:, 80:], tokens[:, 80:])
    kept = dropped[:, 1:80] != 3
    assert torch.equal(dropped[:, 1:80][kept], eligible[kept])  # survivors are unchanged
    assert torch.equal(word_dropout(tokens, 0.0, 3), tokens)
    assert (word_dropout(tokens, 1.0, 3, (0, 1))[:, 1:80] == 3).all()
    with pytest.raises(ValueError, match="rate"):
        word_dropout(tokens, 1.5, 3)


def test_training_lowers_the_loss_and_uses_z_when_kl_is_free() -> None:
    """With the KL weight held near 0 and heavy word dropout, the VAE must read the sentence from z:
    its reconstruction beats the LM's (which sees only <unk>-ed history)."""
    torch.manual_seed(0)
    vocab, data = _vocab_and_data()
    vae = SentenceVAE(len(vocab), 16, 32, 4, vocab.pad_id)
    before = evaluate(vae, data, vocab)
    config = TrainConfig(steps=120, batch_size=6, lr=1e-2, word_dropout=0.0,
                         annealing=KLAnnealing("logistic", midpoint=10_000, steepness=1e-3))
    history = train_model(vae, data, vocab, config, seed=0)
    after = evaluate(vae, data, vocab)
    assert after["recon"] < 0.5 * before["recon"]
    assert history[-1]["loss"] < history[0]["loss"]
    assert after["kl"] > 1.0  # the posterior is informative, not collapsed


def test_homotopy_and_imputation_run_end_to_end(tmp_path) -> None:
    torch.manual_seed(0)
    vocab, data = _vocab_and_data()
    vae = SentenceVAE(len(vocab), 8, 16, 4, vocab.pad_id)
    lm = LSTMLanguageModel(len(vocab), 8, 16, vocab.pad_id)
    config = TrainConfig(steps=20, batch_size=6, checkpoint_every=10)
    train_model(vae, data, vocab, config, checkpoint=tmp_path / "vae.pt")
    assert (tmp_path / "vae.pt").exists()
    resumed = train_model(vae, data, vocab, TrainConfig(steps=30, batch_size=6), checkpoint=tmp_path / "vae.pt",
                          resume=True)
    assert resumed[-1]["step"] == 30
    path = homotopy(vae, data[0], data[4], vocab, n_points=4)
    assert len(path) == 4 and all(isinstance(s, str) for s in path)
    summary, examples = impute(vae, lm, data, vocab, missing_fraction=0.34)
    assert summary["missing_words"] == sum(max(1, round(0.34 * len(s))) for s in data)
    assert 0.0 <= summary["vae_word_accuracy"] <= 1.0 and summary["vae_nll_per_word"] > 0
    assert len(examples) == 3


def test_greedy_decode_never_emits_banned_tokens() -> None:
    torch.manual_seed(0)
    vocab, _ = _vocab_and_data()
    vae = SentenceVAE(len(vocab), 8, 16, 4, vocab.pad_id)
    with torch.no_grad():  # make <unk> the decoder's favourite word
        vae.decoder.output.bias[vocab.unk_id] = 100.0
    z = torch.zeros(2, 4)
    assert all(t == vocab.unk_id for t in vae.greedy_decode(z, vocab.bos_id, vocab.eos_id, max_len=5)[0])
    banned = vae.greedy_decode(z, vocab.bos_id, vocab.eos_id, max_len=5, banned=(vocab.unk_id,))
    assert all(vocab.unk_id not in ids for ids in banned) and all(len(ids) >= 1 for ids in banned)


# ---------------------------------------------------------------- claims

def _toy_svae(kl=2.0, plain_kl=0.01, vae_ppl=105.0, path=None, vae_imp=5.0):
    rows = [{"model": "lstm_lm", "valid_nll": 100.0, "valid_ppl": 100.0, "valid_kl": 0.0},
            {"model": "vae_plain_elbo", "valid_nll": 100.5, "valid_ppl": 101.0, "valid_kl": plain_kl},
            {"model": "vae_kl_anneal_wdrop", "valid_nll": 101.0, "valid_ppl": vae_ppl, "valid_kl": kl}]
    path = path or ["the cat sat on the mat", "the cat sat in the park", "a dog sat in the park",
                    "a dog ran in the park", "a dog ran in the park"]
    return {"results": rows, "homotopies": [path], "homotopies_raw": [path],
            "imputation": {"vae_nll_per_word": vae_imp, "lm_nll_per_word": 6.0, "vae_word_accuracy": 0.2,
                           "lm_word_accuracy": 0.1}}


def test_readability_figures() -> None:
    from ml_extras.sentence_vae.claims import is_readable, readability

    good = readability(["a b c", "a b d", "a e d", "f e d", "f e d"])
    assert good == {"points": 5, "distinct": 4, "min_words": 3, "unk_fraction": 0.0, "longest_repeat": 1}
    assert is_readable(good)
    assert not is_readable(readability(["<unk> <unk> <unk>"] * 5))
    assert not is_readable(readability(["a b c"] * 5))  # does not move
    assert not is_readable(readability(["a b b b", "c d e", "f g h", "i j k", "l m n"]))


def test_sentence_vae_claims_follow_the_figures(tmp_path) -> None:
    from ml_extras.sentence_vae.claims import plot, sentence_vae_claims

    kl, close, homotopies, imputation = sentence_vae_claims(_toy_svae())
    assert kl["holds"] and close["holds"] and homotopies["holds"] and imputation["holds"]
    assert not sentence_vae_claims(_toy_svae(kl=0.3))[0]["holds"]
    assert not sentence_vae_claims(_toy_svae(vae_ppl=120.7))[1]["holds"]
    assert not sentence_vae_claims(_toy_svae(path=["<unk> <unk> <unk>"] * 5))[2]["holds"]
    assert not sentence_vae_claims(_toy_svae(vae_imp=6.5))[3]["holds"]
    history = [{"step": s, "kl": 1.0, "kl_weight": s / 100} for s in (50, 100)]
    assert plot({"lstm_lm": history, "vae_kl_anneal_wdrop": history}, tmp_path / "s.png").exists()
