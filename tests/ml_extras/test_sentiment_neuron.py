"""Tests for the byte mLSTM sentiment-neuron module, on tiny synthetic data only."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
import torch

from ml_extras.sentiment_neuron.data import (
    SEPARATOR,
    build_corpus,
    clean_text,
    from_bytes,
    pad_texts,
    sample_windows,
    split_reviews,
    to_bytes,
)
from ml_extras.sentiment_neuron.generate import generate
from ml_extras.sentiment_neuron.model import ByteMLSTM, MLSTMConfig, MultiplicativeLSTMCell
from ml_extras.sentiment_neuron.probe import (
    best_unit,
    extract_features,
    fit_probe,
    label_curve,
    sample_labelled,
)
from ml_extras.sentiment_neuron.rlazyload import decode_entry
from ml_extras.sentiment_neuron.train import (
    TrainConfig,
    init_output_from_unigrams,
    load_model,
    train_language_model,
)

torch.set_num_threads(1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _tiny_model(hidden: int = 8, embed: int = 4, seed: int = 0) -> ByteMLSTM:
    torch.manual_seed(seed)
    return ByteMLSTM(MLSTMConfig(hidden_size=hidden, embed_size=embed))


def test_cell_step_matches_numpy_by_hand() -> None:
    torch.manual_seed(1)
    cell = MultiplicativeLSTMCell(input_size=3, hidden_size=5)
    with torch.no_grad():
        cell.bias.normal_()  # non-trivial biases so every term matters
    x = torch.randn(2, 3)
    h0, c0 = torch.randn(2, 5), torch.randn(2, 5)
    h1, c1 = cell(x, (h0, c0))

    w_x, w_mx, w_mh, w_m, b = (p.detach().numpy().astype(np.float64)
                               for p in (cell.w_x, cell.w_mx, cell.w_mh, cell.w_m, cell.bias))
    xn, hn, cn = x.numpy().astype(np.float64), h0.numpy().astype(np.float64), c0.numpy().astype(np.float64)
    m = (xn @ w_mx) * (hn @ w_mh)
    z = xn @ w_x + m @ w_m + b
    i, f, o, u = z[:, 0:5], z[:, 5:10], z[:, 10:15], z[:, 15:20]
    c_expected = _sigmoid(f) * cn + _sigmoid(i) * np.tanh(u)
    h_expected = _sigmoid(o) * np.tanh(c_expected)
    np.testing.assert_allclose(c1.detach().numpy(), c_expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h1.detach().numpy(), h_expected, rtol=1e-5, atol=1e-5)


def test_multiplicative_term_depends_on_input() -> None:
    # With the same h, different inputs must change the recurrent contribution m (not just add to it).
    cell = MultiplicativeLSTMCell(input_size=3, hidden_size=4)
    h = torch.randn(1, 4)
    m1 = cell.project_inputs(torch.tensor([[1.0, 0.0, 0.0]]))[1] * (h @ cell.w_mh)
    m2 = cell.project_inputs(torch.tensor([[0.0, 1.0, 0.0]]))[1] * (h @ cell.w_mh)
    assert not torch.allclose(m1, m2)


def test_shapes_and_bad_input() -> None:
    model = _tiny_model(hidden=6)
    tokens = torch.randint(0, 256, (3, 7))
    logits = model(tokens)
    assert logits.shape == (3, 7, 256)
    hidden, (h, c) = model.run(tokens)
    assert hidden is not None and hidden.shape == (3, 7, 6)
    assert h.shape == c.shape == (3, 6)
    torch.testing.assert_close(hidden[:, -1], h)
    with pytest.raises(ValueError, match="batch, time"):
        model.run(torch.randint(0, 256, (7,)))
    with pytest.raises(ValueError, match="integer"):
        model.run(torch.rand(2, 3))
    with pytest.raises(ValueError, match="lengths"):
        model.run(tokens, lengths=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="expected x"):
        model.cell(torch.randn(2, 4), (torch.zeros(3, 6), torch.zeros(3, 6)))
    with pytest.raises(ValueError, match="T\\+1"):
        model.loss(torch.randint(0, 256, (2, 1)))


def test_padded_batch_gives_same_final_state_as_reading_alone() -> None:
    model = _tiny_model()
    texts = ["good film", "a dull, long, boring one", "ok"]
    tokens, lengths = pad_texts(texts)
    assert tokens.shape == (3, len(SEPARATOR + texts[1]))
    _, (h_batch, c_batch) = model.run(tokens, lengths, keep_outputs=False)
    for row, text in enumerate(texts):
        alone = torch.from_numpy(to_bytes(SEPARATOR + text).astype(np.int64))[None]
        _, (h, c) = model.run(alone)
        torch.testing.assert_close(h_batch[row], h[0])
        torch.testing.assert_close(c_batch[row], c[0])


def test_gradients_reach_every_parameter() -> None:
    model = _tiny_model()
    loss = model.loss(torch.randint(0, 256, (2, 6)))
    loss.backward()
    for name, param in model.named_parameters():
        if name == "embed.weight":  # only the rows of bytes that occurred get gradient
            assert param.grad is not None and param.grad.abs().sum() > 0
            continue
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_language_model_loss_decreases_on_repeating_text(tmp_path) -> None:
    model = _tiny_model(hidden=16, embed=8)
    corpus = build_corpus(["abcabcabcabc xyz"] * 30)
    config = TrainConfig(steps=60, batch_size=8, window=12, lr=1e-2, checkpoint_every=30)
    result = train_language_model(model, corpus, config, seed=0, checkpoint=tmp_path / "lm.pt", progress=False)
    assert result.steps_done == 60
    assert result.final_bits_per_byte < 0.6 * result.start_bits_per_byte
    reloaded = load_model(tmp_path / "lm.pt")
    window = sample_windows(corpus, 4, 12, np.random.default_rng(3))
    torch.testing.assert_close(reloaded.loss(window), model.loss(window))


def test_unigram_init_starts_near_the_byte_entropy() -> None:
    corpus = build_corpus(["aaaaaaab"] * 50)
    model = _tiny_model()
    window = sample_windows(corpus, 8, 16, np.random.default_rng(0))
    before = model.loss(window).item()
    init_output_from_unigrams(model, corpus)
    after = model.loss(window).item()
    counts = np.bincount(corpus, minlength=256) + 0.5
    log_p = np.log(counts / counts.sum())
    unigram_nats = float(-log_p[window[:, 1:].numpy()].mean())  # cost of predicting by frequency alone
    assert after < before
    assert abs(after - unigram_nats) < 0.1


def test_resume_continues_from_checkpoint(tmp_path) -> None:
    corpus = build_corpus(["the cat sat on the mat"] * 20)
    path = tmp_path / "lm.pt"
    config = TrainConfig(steps=8, batch_size=4, window=8, checkpoint_every=4)
    # max_seconds=0 interrupts the run after its first step, as a crash would
    interrupted = train_language_model(_tiny_model(), corpus, TrainConfig(**{**config.__dict__, "max_seconds": 0.0}),
                                       seed=0, checkpoint=path, progress=False)
    assert interrupted.steps_done == 1 and interrupted.stopped_early
    resumed = train_language_model(_tiny_model(seed=9), corpus, config, seed=0, checkpoint=path, resume=True,
                                   progress=False)
    straight = train_language_model(_tiny_model(), corpus, config, seed=0, progress=False)
    assert resumed.steps_done == 8
    # same weights, optimizer, schedule and data order: the resumed run repeats the uninterrupted one
    np.testing.assert_allclose(resumed.history, straight.history, rtol=1e-5)
    with pytest.raises(ValueError, match="holds a model"):
        train_language_model(_tiny_model(hidden=4), corpus, config, seed=0, checkpoint=path, resume=True,
                             progress=False)


def test_generation_clamp_changes_text_and_is_reproducible() -> None:
    model = _tiny_model(hidden=8)
    with torch.no_grad():
        model.decoder.weight.mul_(5.0)  # make the next byte depend strongly on h
    free = generate(model, "ab", n_bytes=30, seed=4, stop_at_separator=False)
    assert free == generate(model, "ab", n_bytes=30, seed=4, stop_at_separator=False)
    assert free.startswith("ab") and len(free.encode("utf-8", errors="replace")) >= 2
    up = generate(model, "ab", n_bytes=30, seed=4, clamp_unit=0, clamp_value=5.0, stop_at_separator=False)
    down = generate(model, "ab", n_bytes=30, seed=4, clamp_unit=0, clamp_value=-5.0, stop_at_separator=False)
    assert up != down
    with pytest.raises(ValueError, match="clamp_unit"):
        generate(model, clamp_unit=8)


def test_clamp_fixes_the_cell_unit() -> None:
    cell = MultiplicativeLSTMCell(3, 4)
    gates_x, mult_x = cell.project_inputs(torch.randn(2, 3))
    h, c = cell.step_projected(gates_x, mult_x, torch.randn(2, 4), torch.randn(2, 4), clamp=(2, 3.0))
    assert torch.all(c[:, 2] == 3.0)
    _, c_free = cell.step_projected(gates_x, mult_x, torch.zeros(2, 4), torch.zeros(2, 4))
    assert not torch.all(c_free[:, 2] == 3.0)


def test_bytes_roundtrip_and_windows() -> None:
    text = "café — naïve"
    assert from_bytes(to_bytes(text)) == text
    assert clean_text("  a&amp;b \n c ") == "a&b c"
    corpus = build_corpus(["hello", "world"])
    assert from_bytes(corpus) == "hello\nworld\n"
    windows = sample_windows(corpus, 5, 4, np.random.default_rng(0))
    assert windows.shape == (5, 5)
    flat = corpus.tobytes()
    for row in windows.numpy():
        assert bytes(row.astype(np.uint8)) in flat
    with pytest.raises(ValueError, match="too short"):
        sample_windows(corpus, 2, 50, np.random.default_rng(0))


def test_split_is_disjoint_stratified_and_fixed_by_seed() -> None:
    labels = np.array([0] * 60 + [1] * 140)
    a = split_reviews(labels, seed=3, test_fraction=0.25, n_valid=20)
    b = split_reviews(labels, seed=3, test_fraction=0.25, n_valid=20)
    c = split_reviews(labels, seed=4, test_fraction=0.25, n_valid=20)
    np.testing.assert_array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)
    sets = [set(a.train), set(a.valid), set(a.test)]
    assert sum(len(s) for s in sets) == 200 and len(set.union(*sets)) == 200
    assert len(a.test) == 50 and len(a.valid) == 20
    assert abs(labels[a.test].mean() - 0.7) < 0.03
    with pytest.raises(ValueError, match="n_valid"):
        split_reviews(labels, seed=0, n_valid=500)


def test_l1_probe_finds_the_informative_unit() -> None:
    rng = np.random.default_rng(0)
    n, width, informative = 600, 20, 13
    labels = rng.integers(0, 2, n)
    feats = rng.normal(size=(n, width)).astype(np.float32)
    feats[:, informative] += 2.0 * (2 * labels - 1)
    split = split_reviews(labels, seed=0, test_fraction=0.3, n_valid=100)
    report = best_unit(feats, labels, split)
    assert report.unit == informative
    assert report.weight > 0 and report.fresh_value > report.rotten_value
    assert report.single_unit_test_accuracy > 0.9
    assert report.nonzero_weights < width  # L1 switched some noise units off
    probe = fit_probe(feats[split.train], labels[split.train], feats[split.valid], labels[split.valid], "l1")
    assert probe.valid_accuracy > 0.9
    with pytest.raises(ValueError, match="penalty"):
        fit_probe(feats[:10], labels[:10], feats[:5], labels[:5], "l0")


def test_label_curve_and_sampling_on_synthetic_texts() -> None:
    rng = np.random.default_rng(1)
    good, bad = ["great", "superb", "moving", "fun"], ["dull", "awful", "boring", "mess"]
    labels = rng.integers(0, 2, 300)
    texts = [" ".join(rng.choice(good if y else bad, 3)) + " film" for y in labels]
    split = split_reviews(labels, seed=0, test_fraction=0.3, n_valid=40)
    chosen = sample_labelled(split.train, labels, 4, rng)
    assert len(set(chosen)) == 4 and set(labels[chosen]) == {0, 1} and set(chosen) <= set(split.train)
    noise = rng.normal(size=(300, 5)).astype(np.float32)
    rows = label_curve({"noise": noise}, texts, labels, split, [10, len(split.train)], repeats=2, seed=0)
    assert [r["draws"] for r in rows] == [2, 1]
    assert rows[-1]["bow_acc"] > 0.95  # the words decide the label
    assert rows[-1]["noise_acc"] < 0.75  # random features cannot
    with pytest.raises(ValueError, match="cannot draw"):
        sample_labelled(split.train, labels, 1, rng)


def test_extract_features_keeps_input_order() -> None:
    model = _tiny_model()
    texts = ["a much longer text than the others", "b", "medium text"]
    h, c = extract_features(model, texts, batch_size=2)
    assert h.shape == c.shape == (3, 8)
    for row, text in enumerate(texts):
        h1, c1 = extract_features(model, [text])
        np.testing.assert_allclose(h[row], h1[0], atol=1e-6)
        np.testing.assert_allclose(c[row], c1[0], atol=1e-6)


def test_rdb_entry_decoding() -> None:
    payload = b"X\n" + bytes(range(40))
    blob = struct.pack(">I", len(payload)) + zlib.compress(payload)
    assert decode_entry(blob) == payload
    bad = struct.pack(">I", len(payload) + 1) + zlib.compress(payload)
    with pytest.raises(ValueError, match="header says"):
        decode_entry(bad)


def test_lazy_load_db_roundtrip(tmp_path) -> None:
    rdata = pytest.importorskip("rdata")
    from ml_extras.sentiment_neuron.rlazyload import list_objects, read_object

    novels = {"novel_a": ["It is a truth", "universally acknowledged."], "novel_b": ["Emma"]}
    blobs, index = b"", {}
    for name, lines in novels.items():  # write the R lazy-load layout by hand
        payload = rdata.unparser.unparse_data(rdata.conversion.convert_python_to_r_data(np.array(lines, dtype=object)))
        entry = struct.pack(">I", len(payload)) + zlib.compress(payload)
        index[name] = np.array([len(blobs), len(entry)], dtype=np.int32)
        blobs += entry
    (tmp_path / "Rdata.rdb").write_bytes(blobs)
    rdata.write_rds(tmp_path / "Rdata.rdx", {"variables": index, "references": {}, "compressed": True})
    assert list_objects(tmp_path) == ["novel_a", "novel_b"]
    assert [str(s) for s in read_object(tmp_path, "novel_a")] == novels["novel_a"]
    assert [str(s) for s in read_object(tmp_path, "novel_b")] == novels["novel_b"]
    with pytest.raises(KeyError, match="novel_c"):
        read_object(tmp_path, "novel_c")


# ---------------------------------------------------------------- claims

def _toy_sentiment(c11=0.60, c232=0.72, bow_all=0.725, single=0.66):
    def row(n, c, b):
        return {"labels": n, "draws": 1, "mlstm_c_acc": c, "mlstm_c_std": 0.0, "mlstm_h_acc": c - 0.01,
                "mlstm_h_std": 0.0, "bow_acc": b, "bow_std": 0.0}

    curve = [row(11, c11, 0.55), row(232, c232, 0.65), row(5000, 0.80, bow_all)]
    unit = {"unit": 7, "single_unit_test_accuracy": single, "full_probe_test_accuracy": 0.80, "nonzero_weights": 30}
    return {"label_curve": curve, "best_unit": {"mlstm_c": unit, "mlstm_h": unit}, "majority_test_acc": 0.5,
            "split_sizes": {"test": 2000}}


def test_sentiment_claims_follow_the_figures(tmp_path) -> None:
    from ml_extras.sentiment_neuron.claims import plot, sentiment_claims

    few, all_labels, unit = sentiment_claims(_toy_sentiment())
    assert few["holds"] and all_labels["holds"] and unit["holds"]
    assert few["figures"]["11_labels"] == {"mlstm_acc": 0.60, "bow_acc": 0.55}
    assert not sentiment_claims(_toy_sentiment(c11=0.5))[0]["holds"]
    assert not sentiment_claims(_toy_sentiment(c232=0.70))[1]["holds"]
    assert not sentiment_claims(_toy_sentiment(single=0.64))[2]["holds"]  # 0.14 < half of 0.30
    majority = {**_toy_sentiment(single=0.578), "majority_test_acc": 0.578}
    majority["best_unit"]["mlstm_c"]["full_probe_test_accuracy"] = 0.578  # a probe stuck on one class
    assert not sentiment_claims(majority)[2]["holds"]
    with pytest.raises(KeyError):
        sentiment_claims(_toy_sentiment(), few=(11, 100))
    assert plot(_toy_sentiment(), tmp_path / "s.png").exists()
