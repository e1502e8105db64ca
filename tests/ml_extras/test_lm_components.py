"""Tests for the large-LM components on tiny synthetic data (plus the shared PTB stream helpers)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ml_extras.lm_components.char_cnn import CharCNNWordEncoder
from ml_extras.lm_components.lstmp import LSTMP, lstmp_reference
from ml_extras.lm_components.model import WordLM
from ml_extras.lm_components.sampled_softmax import SampledSoftmax, importance_partition_estimate
from ml_extras.lm_components.train import TrainConfig, perplexity, train_lm
from ml_extras.ptb import CHAR_VOCAB_SIZE, Vocabulary, batchify, bptt_windows

torch.set_num_threads(1)


def _proposal(vocab_size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    weights = torch.rand(vocab_size, generator=g) + 0.05
    return weights / weights.sum()


def test_partition_estimate_is_unbiased_with_few_samples() -> None:
    """E[Z_hat] = Z exactly for any K (here K=3 out of V=20); forgetting the 1/(K q) weight biases it."""
    g = torch.Generator().manual_seed(1)
    vocab_size, k, draws = 20, 3, 40_000
    logits = 2.0 * torch.randn(vocab_size, generator=g, dtype=torch.float64)
    proposal = _proposal(vocab_size).double()
    samples = torch.multinomial(proposal, draws * k, replacement=True, generator=g).view(draws, k)
    estimates = torch.stack([importance_partition_estimate(logits, proposal, s) for s in samples[:2000]])
    # vectorised version of the same estimator for the remaining draws
    rest = (logits[samples[2000:]] - torch.log(k * proposal[samples[2000:]])).exp().sum(dim=1)
    estimates = torch.cat([estimates, rest])
    z = logits.exp().sum()
    standard_error = estimates.std() / math.sqrt(draws)
    assert abs(estimates.mean() - z) < 4 * standard_error
    assert standard_error < 0.05 * z  # the check has teeth: the tolerance is tight relative to Z


def test_sampled_softmax_gradient_matches_full_softmax_with_many_samples() -> None:
    """With K >> V the sampled loss is the full loss + log(K q(t)), so their gradients agree."""
    torch.manual_seed(0)
    vocab_size, dim, k = 12, 5, 60_000
    proposal = _proposal(vocab_size, seed=3)
    layer = SampledSoftmax(dim, vocab_size, proposal, num_samples=k)
    with torch.no_grad():
        layer.weight.normal_(0, 0.5)
        layer.bias.normal_(0, 0.5)
    hidden = torch.randn(4, dim)
    targets = torch.tensor([0, 3, 7, 11])

    full = layer.full_loss(hidden, targets).sum()
    full_grad = torch.autograd.grad(full, [layer.weight, layer.bias])
    generator = torch.Generator().manual_seed(5)
    draws = 4
    sampled = torch.stack([layer.sampled_loss(hidden, targets, generator=generator) for _ in range(draws)]).mean(0)
    shifted = sampled - torch.log(k * proposal[targets])
    assert torch.allclose(shifted, layer.full_loss(hidden, targets), atol=0.02)
    sampled_grad = torch.autograd.grad(sampled.sum(), [layer.weight, layer.bias])
    for exact, estimate in zip(full_grad, sampled_grad):
        assert torch.allclose(estimate, exact, atol=0.03 * exact.abs().max().item())
    # and the test can fail: without the log(K q) correction the gradient is that of a different softmax
    with torch.no_grad():
        samples = layer.draw(generator)
    wrong = -torch.log_softmax(torch.cat([
        ((hidden * layer.weight[targets]).sum(-1) + layer.bias[targets]).unsqueeze(1),
        hidden @ layer.weight[samples].T + layer.bias[samples]], dim=1), dim=1)[:, 0]
    wrong_grad = torch.autograd.grad(wrong.sum(), [layer.bias])[0]
    assert not torch.allclose(wrong_grad, full_grad[1], atol=0.03 * full_grad[1].abs().max().item())


def test_sampled_softmax_rejects_bad_inputs() -> None:
    with pytest.raises(ValueError, match="probability vector"):
        SampledSoftmax(4, 3, torch.tensor([0.5, 0.5, 0.5]), 2)
    layer = SampledSoftmax(4, 3, torch.tensor([0.5, 0.5, 0.0]), 2)
    with pytest.raises(ValueError, match="zero probability"):
        layer.sampled_loss(torch.randn(2, 4), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="hidden"):
        layer.sampled_loss(torch.randn(2, 3, 4), torch.tensor([0, 1]))


def test_lstmp_matches_hand_written_equations() -> None:
    torch.manual_seed(0)
    model = LSTMP(input_dim=6, hidden_dim=10, proj_dim=4)
    x = torch.randn(3, 7, 6)
    state = (torch.randn(1, 3, 4), torch.randn(1, 3, 10))
    fused, (r_fused, c_fused) = model(x, state)
    ref, (r_ref, c_ref) = lstmp_reference(model.lstm, x, state)
    assert fused.shape == (3, 7, 4)
    assert torch.allclose(fused, ref, atol=1e-5)
    assert torch.allclose(c_fused, c_ref, atol=1e-5) and torch.allclose(r_fused, r_ref, atol=1e-5)
    with pytest.raises(ValueError, match="projection"):
        LSTMP(6, 10, 10)
    with pytest.raises(ValueError, match="expected"):
        model(torch.randn(3, 7, 5))


def _tiny_vocab() -> Vocabulary:
    return Vocabulary.build([["cat", "cats", "dog", "dogs", "the", "a"], ["the", "cat"]])


def test_char_cnn_shapes_spelling_and_gradients() -> None:
    torch.manual_seed(0)
    vocab = _tiny_vocab()
    table = vocab.char_table(max_word_len=8)
    encoder = CharCNNWordEncoder(table, CHAR_VOCAB_SIZE, output_dim=12, widths=(1, 2, 3), filters=(4, 5, 6))
    tokens = torch.tensor([[vocab.index["cat"], vocab.index["dog"], vocab.index["cat"]]])
    out = encoder(tokens)
    assert out.shape == (1, 3, 12)
    assert torch.allclose(out[0, 0], out[0, 2])
    assert not torch.allclose(out[0, 0], out[0, 1])
    # vectors come from spelling only: a second id with the same spelling gets the same vector
    duplicated = torch.cat([table, table[vocab.index["cat"]].unsqueeze(0)])
    twin = CharCNNWordEncoder(duplicated, CHAR_VOCAB_SIZE, 12, widths=(1, 2, 3), filters=(4, 5, 6))
    twin.load_state_dict(encoder.state_dict())
    assert torch.allclose(twin(torch.tensor([len(vocab)])), twin(torch.tensor([vocab.index["cat"]])))
    out.sum().backward()
    assert encoder.char_embedding.weight.grad is not None and encoder.char_embedding.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="widest filter"):
        CharCNNWordEncoder(table, CHAR_VOCAB_SIZE, 12, widths=(9,), filters=(4,))


def test_char_table_markers_and_truncation() -> None:
    vocab = Vocabulary.build([["ab", "abcdefghij"]])
    table = vocab.char_table(max_word_len=5)
    row = table[vocab.index["ab"]].tolist()
    assert row == [1, ord("a") + 3, ord("b") + 3, 2, 0]
    assert table[vocab.index["abcdefghij"]].tolist()[-1] == 2  # end marker kept after truncation


def test_batchify_and_bptt_windows_shift_targets() -> None:
    stream = torch.arange(23)
    rows = batchify(stream, 4)
    assert rows.shape == (4, 5)
    windows = list(bptt_windows(rows, 3))
    assert [w[0].shape[1] for w in windows] == [3, 1]
    for inputs, targets in windows:
        assert torch.equal(targets, inputs + 1)
    with pytest.raises(ValueError, match="too short"):
        batchify(torch.arange(3), 4)


def _synthetic_rows(vocab_size: int = 30, batch: int = 4, length: int = 400) -> torch.Tensor:
    """A deterministic cyclic language: token t is always followed by (3 t + 1) mod V (a 1-gram is useless)."""
    g = torch.Generator().manual_seed(0)
    rows = torch.empty(batch, length, dtype=torch.long)
    rows[:, 0] = torch.randint(4, vocab_size, (batch,), generator=g)
    for t in range(1, length):
        rows[:, t] = (3 * rows[:, t - 1] + 1) % (vocab_size - 4) + 4
    return rows


@pytest.mark.parametrize(("input_kind", "softmax_kind"), [("embedding", "sampled"), ("charcnn", "full")])
def test_word_lm_learns_and_all_parameters_get_gradients(input_kind: str, softmax_kind: str) -> None:
    torch.manual_seed(0)
    vocab_size = 30
    rows = _synthetic_rows(vocab_size)
    proposal = torch.ones(vocab_size) / vocab_size
    char_table = torch.randint(3, CHAR_VOCAB_SIZE, (vocab_size, 6))
    model = WordLM(vocab_size, proposal, input_kind, softmax_kind, embed_dim=16, hidden_dim=32, proj_dim=16,
                   num_samples=8, char_table=char_table, dropout=0.0)
    loss, _ = model.loss(rows[:, :10], rows[:, 1:11])
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    model.zero_grad()
    before = perplexity(model, rows, bptt=20)
    train_lm(model, rows, TrainConfig(steps=40, bptt=10, lr=1e-2))
    after = perplexity(model, rows, bptt=20)
    assert after < 0.5 * before


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size() -> None:
    vocab_size = 17
    model = WordLM(vocab_size, torch.ones(vocab_size) / vocab_size, embed_dim=8, hidden_dim=16, proj_dim=8)
    with torch.no_grad():
        model.softmax.weight.zero_()
        model.softmax.bias.zero_()
    assert perplexity(model, _synthetic_rows(vocab_size), bptt=7) == pytest.approx(vocab_size, rel=1e-5)


def test_word_lm_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="input kind"):
        WordLM(5, torch.ones(5) / 5, input_kind="bytes")
    with pytest.raises(ValueError, match="char_table"):
        WordLM(5, torch.ones(5) / 5, input_kind="charcnn")
    assert isinstance(WordLM(5, torch.ones(5) / 5).inputs, nn.Embedding)


def test_cpu_budget_stops_training_once_spent() -> None:
    torch.manual_seed(0)
    vocab_size = 30
    model = WordLM(vocab_size, torch.ones(vocab_size) / vocab_size, embed_dim=8, hidden_dim=16, proj_dim=8)
    rows = _synthetic_rows(vocab_size)
    result = train_lm(model, rows, TrainConfig(steps=10_000, bptt=10, cpu_budget_s=0.05))
    assert 1 <= result["steps_done"] < 10_000
    assert result["train_cpu_s"] >= 0.05 and len(result["losses"]) == result["steps_done"]
    assert train_lm(model, rows, TrainConfig(steps=7, bptt=10))["steps_done"] == 7


def _toy_lm_rows(sampled_ppl=105.0, cnn_ppl=108.0, cnn_params=3.0):
    return [{"inputs": "embedding", "softmax": "full", "valid_ppl": 100.0, "params_M": 4.0, "train_cpu_s": 60.0,
             "steps": 100},
            {"inputs": "embedding", "softmax": "sampled", "valid_ppl": sampled_ppl, "params_M": 4.0,
             "train_cpu_s": 60.1, "steps": 270},
            {"inputs": "charcnn", "softmax": "full", "valid_ppl": cnn_ppl, "params_M": cnn_params, "train_cpu_s": 70.0,
             "steps": 100},
            {"inputs": "charcnn", "softmax": "sampled", "valid_ppl": 111.0, "params_M": cnn_params, "train_cpu_s": 70.2,
             "steps": 250}]


def test_lm_components_claims_follow_the_figures(tmp_path) -> None:
    from ml_extras.lm_components.claims import lm_components_claims, plot

    emb, cnn_sampled, cnn = lm_components_claims(_toy_lm_rows())
    assert emb["holds"] and cnn_sampled["holds"] and cnn["holds"]
    assert emb["figures"]["sampled_steps"] == 270
    assert not lm_components_claims(_toy_lm_rows(sampled_ppl=115.0))[0]["holds"]
    assert not lm_components_claims(_toy_lm_rows(cnn_params=4.5))[2]["holds"]
    assert not lm_components_claims(_toy_lm_rows(cnn_ppl=120.0))[2]["holds"]
    assert plot(_toy_lm_rows(), tmp_path / "l.png").exists()
