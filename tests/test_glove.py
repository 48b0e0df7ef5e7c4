"""bertlab.glove: co-occurrence counts against a brute-force count, gradients against autograd,
and training on a tiny corpus with planted structure."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bertlab import glove
from bertlab.vocab import Vocab


def brute_force_counts(sentences, window, weighted=True):
    counts = defaultdict(float)
    for s in sentences:
        for p, w in enumerate(s):
            for q in range(max(0, p - window), min(len(s), p + window + 1)):
                if q != p:
                    counts[w, s[q]] += 1.0 / abs(p - q) if weighted else 1.0
    return counts


@pytest.mark.parametrize("weighted", [True, False])
def test_cooccurrence_matches_a_brute_force_count(weighted):
    rng = np.random.default_rng(0)
    sentences = [list(rng.integers(0, 9, rng.integers(1, 12))) for _ in range(40)]
    ids = np.concatenate(sentences)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in sentences])])
    X = glove.cooccurrence(ids, starts, 9, window=3, distance_weighting=weighted)
    expected = np.zeros((9, 9))
    for (i, j), c in brute_force_counts(sentences, 3, weighted).items():
        expected[i, j] = c
    assert np.allclose(X.toarray(), expected) and np.allclose(X.toarray(), X.toarray().T)
    assert X.has_sorted_indices


def test_cooccurrence_rejects_ids_outside_the_vocabulary():
    with pytest.raises(ValueError, match=r"ids must lie in \[0, 3\)"):
        glove.cooccurrence(np.array([0, 1, 3]), np.array([0, 3]), 3)


def test_weighting_function():
    x = np.array([1.0, 50.0, 100.0, 1000.0])
    assert np.allclose(glove.weighting(x), [0.01**0.75, 0.5**0.75, 1.0, 1.0])
    assert torch.allclose(glove.weighting(torch.tensor(x)), torch.tensor(glove.weighting(x)))


def test_probability_ratios_by_hand():
    words = ["ice", "steam", "solid", "gas", "water", "fashion"]
    vocab = Vocab(words, [10, 8, 5, 4, 9, 2])
    X = sp.lil_matrix((6, 6))
    for a, b, x in [("ice", "solid", 2), ("ice", "water", 3), ("steam", "gas", 4),
                    ("steam", "water", 2)]:  # fmt: skip
        X[words.index(a), words.index(b)] = X[words.index(b), words.index(a)] = x
    probes = ["solid", "gas", "water", "fashion"]
    rows = glove.probability_ratios(X.tocsr(), vocab, "ice", "steam", probes)
    assert [r["k"] for r in rows] == probes
    assert list(rows[0]) == ["k", "count(k)", "X[ice, k]", "X[steam, k]", "P(k|ice)",
                             "P(k|steam)", "P(k|ice) / P(k|steam)"]  # fmt: skip
    solid, gas, water, fashion = rows
    assert solid["count(k)"] == 5 and (solid["X[ice, k]"], solid["X[steam, k]"]) == (2, 0)
    # row sums: X_ice = 2 + 3 = 5, X_steam = 4 + 2 = 6
    assert solid["P(k|ice)"] == pytest.approx(2 / 5) and solid["P(k|steam)"] == 0
    assert solid["P(k|ice) / P(k|steam)"] == math.inf  # only near ice
    assert gas["P(k|ice) / P(k|steam)"] == 0.0  # only near steam
    assert water["P(k|ice) / P(k|steam)"] == pytest.approx((3 / 5) / (2 / 6))  # near both
    assert math.isnan(fashion["P(k|ice) / P(k|steam)"])  # near neither: 0 / 0
    with pytest.raises(ValueError, match=r"\['plasma'\] not in the vocabulary of 6 words"):
        glove.probability_ratios(X.tocsr(), vocab, "ice", "steam", ["water", "plasma"])


def random_batch(V=7, nnz=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randperm(V * V, generator=g)[:nnz].sort().values  # distinct, in (i, j) order
    x = torch.rand(nnz, generator=g) * 150 + 0.5
    return keys // V, keys % V, x.log(), glove.weighting(x)


def test_gradients_match_autograd():
    model = glove.GloVe(7, 3, seed=1)
    i, j, log_x, f_x = random_batch()
    loss, grads = model.gradients(i, j, log_x, f_x)
    params = {k: v.clone().requires_grad_(True) for k, v in model.parameters().items()}
    pred = (params["W"][i] * params["W_ctx"][j]).sum(-1) + params["b"][i] + params["b_ctx"][j]
    half_j = 0.5 * (f_x * (pred - log_x) ** 2).sum()
    half_j.backward()
    assert loss == pytest.approx(2 * half_j.item(), rel=1e-5)
    for name, p in params.items():
        assert torch.allclose(grads[name], p.grad, atol=1e-6), name
    assert torch.allclose(model.predict(i, j), pred.detach())


def test_adagrad_step_moves_only_touched_rows():
    model = glove.GloVe(7, 3, seed=1)
    before = {k: v.clone() for k, v in model.parameters().items()}
    i, j, log_x, f_x = random_batch(nnz=4)
    _, grads = model.gradients(i, j, log_x, f_x)
    model.step(i, j, log_x, f_x, lr=0.05)
    # first AdaGrad step: g / sqrt(g^2) = sign(g), so every touched coordinate moves by lr
    expected = before["W"] - 0.05 * grads["W"] / (grads["W"].abs() + 1e-8)
    assert torch.allclose(model.W, expected, atol=1e-6)
    untouched = torch.ones(7, dtype=torch.bool)
    untouched[i] = False
    assert torch.equal(model.W[untouched], before["W"][untouched])
    assert torch.equal(model.sq["W"], grads["W"] ** 2)


def planted_corpus(n=300, seed=0):
    """Sentences each drawn from one of two topics: 'a0'..'a5' or 'b0'..'b5'."""
    rng = np.random.default_rng(seed)
    topics = [[f"a{k}" for k in range(6)], [f"b{k}" for k in range(6)]]
    return [list(rng.choice(topics[rng.integers(2)], 8)) for _ in range(n)]


def test_training_lowers_the_loss_and_finds_the_planted_topics():
    sentences = planted_corpus()
    config = glove.GloVeConfig(dim=8, window=4, min_count=1, x_max=10, epochs=40, batch_size=32)
    run = glove.train_glove(sentences, config, device="cpu", progress=False)
    losses = run.history.loss
    assert losses[-1] < 0.2 * losses[0]
    assert run.model.loss(run.X, x_max=10) == pytest.approx(losses[-1], rel=0.2)
    emb = run.embeddings
    assert sorted(emb.words) == sorted(f"{t}{k}" for t in "ab" for k in range(6))
    for word in emb.words:
        neighbours = [w for w, _ in emb.most_similar(word, k=5)]
        assert all(w[0] == word[0] for w in neighbours), (word, neighbours)
    assert set(run.seconds) == {"cooccurrence", "training"}


def test_fit_is_reproducible_and_restores_threads():
    sentences = planted_corpus(60)
    vocab = Vocab.build(sentences, min_count=1, specials=())
    X = glove.cooccurrence(*vocab.encode_corpus(sentences), len(vocab), window=2)
    config = glove.GloVeConfig(dim=4, epochs=3, batch_size=16)
    threads = torch.get_num_threads()
    evals = []

    def count_evals(model):
        evals.append(model)
        return {"n": len(evals)}

    m1, h1 = glove.fit(X, config, device="cpu", progress=False, eval_fn=count_evals)
    m2, h2 = glove.fit(X, config, device="cpu", progress=False)
    assert torch.get_num_threads() == threads
    assert np.array_equal(m1.vectors(), m2.vectors()) and h1.loss == h2.loss
    per_epoch = -(-X.nnz // 16)
    assert h1.eval_steps == [per_epoch, 2 * per_epoch, 3 * per_epoch] and [
        e["n"] for e in h1.evals
    ] == [1, 2, 3]


def test_configs_and_presets():
    assert glove.GloVeConfig.preset("cpu") == glove.GloVeConfig()
    gpu = glove.GloVeConfig.preset("gpu", dim=50)
    assert gpu.epochs == 50 and gpu.dim == 50 and gpu.lr == 0.05 and gpu.x_max == 100
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        glove.GloVeConfig.preset("tpu")
    with pytest.raises(ValueError, match="dim must be at least 1"):
        glove.GloVeConfig(dim=0)
