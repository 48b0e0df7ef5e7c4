"""Tests for bertlab.brown: Brown clustering on a planted corpus, its incremental merge losses
against a brute-force AMI, and the class n-gram model."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from test_ngram import TOY

from bertlab.brown import ClassNGramLM, _AMIWindow, brown_clusters
from bertlab.ngram import BOS, EOS, UNK, NGramLM

# --------------------------------------------------------------------------------------------------
# Brown clustering and the class model
# --------------------------------------------------------------------------------------------------


def planted_corpus(seed=0, n_sentences=400):
    """Three classes of five words; class A is always followed by B, B by C, C by A."""
    rng = np.random.default_rng(seed)
    classes = {c: [f"{c.lower()}{i}" for i in range(5)] for c in "ABC"}
    follow = {"A": "B", "B": "C", "C": "A"}
    sentences = []
    for _ in range(n_sentences):
        c, s = "ABC"[rng.integers(3)], []
        for _ in range(rng.integers(4, 12)):
            s.append(classes[c][rng.integers(5)])
            c = follow[c]
        sentences.append(s)
    return sentences, classes


@pytest.mark.parametrize("n_words", [None, 8, 3])
def test_brown_recovers_planted_classes(n_words):
    sentences, planted = planted_corpus()
    found = brown_clusters(sentences, n_classes=3, n_words=n_words)
    groups = {}
    for word, c in found.items():
        groups.setdefault(c, set()).add(word)
    assert sorted(map(sorted, groups.values())) == sorted(map(sorted, planted.values()))
    counts = Counter(w for s in sentences for w in s)
    freq = [sum(counts[w] for w in groups[c]) for c in range(3)]
    assert freq == sorted(freq, reverse=True)  # class 0 is the most frequent


def test_brown_merge_losses_equal_brute_force_ami():
    def ami(N):
        P = N / N.sum()
        outer = np.outer(P.sum(1), P.sum(0))
        m = P > 0
        return float((P[m] * np.log(P[m] / outer[m])).sum())

    def merged(N, i, j):
        M = N.copy()
        M[:, i] += M[:, j]
        M[i, :] += M[j, :]
        return np.delete(np.delete(M, j, 0), j, 1)

    rng = np.random.default_rng(0)
    K = 6
    window = _AMIWindow(rng.integers(0, 6, (K, K)).astype(float))
    active = np.ones(K, dtype=bool)
    window.merge(1, 4)  # incremental updates, then compare with a fresh computation
    window.add(4, rng.integers(0, 6, K).astype(float), rng.integers(0, 6, K).astype(float))
    losses, N = window.losses(active), window.N.copy()
    for i in range(K):
        for j in range(i + 1, K):
            assert losses[i, j] / N.sum() == pytest.approx(ami(N) - ami(merged(N, i, j)), abs=1e-12)
    F, G = window.F.copy(), window.G.copy()
    window.refresh()
    np.testing.assert_allclose(F, window.F, atol=1e-9)
    np.testing.assert_allclose(G, window.G, atol=1e-9)


@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k"])
def test_class_model_is_normalized_and_factorizes(smoothing):
    sentences, planted = planted_corpus(n_sentences=200)
    model = ClassNGramLM(3, n_classes=3, n_words=None, smoothing=smoothing).fit(sentences)
    for context in [[], ["a0"], ["a0", "b3"], ["zebra", "c1"], ["b1", "b1", "b1"]]:
        p = model.probs(context)
        assert abs(p.sum() - 1) < 1e-9
        np.testing.assert_allclose([model.prob(w, context) for w in model.vocab], p, atol=1e-15)
    # P(w | h) = P(c(w) | c(h)) * P(w | c(w)), with P(w | c) = count(w) / count(c)
    counts = Counter(w for s in sentences for w in s)
    klass = model.classes
    c_b = [w for w in counts if klass[w] == klass["b2"]]
    p_class = model.class_model.prob(f"C{klass['b2']}", [f"C{klass['c0']}", f"C{klass['a1']}"])
    expected = p_class * counts["b2"] / sum(counts[w] for w in c_b)
    assert model.prob("b2", ["c0", "a1"]) == pytest.approx(expected, rel=1e-12)
    logp = model.token_logprobs(sentences[:5])
    by_hand = [model.logprob(w, s[:i]) for s in sentences[:5] for i, w in enumerate(s + [EOS])]
    np.testing.assert_allclose(logp, by_hand, rtol=1e-12)
    assert model.perplexity(sentences[:5]) == pytest.approx(math.exp(-np.mean(by_hand)))
    assert set(model.generate(20, seed=3)) <= set(model.vocab)
    # the class model needs far fewer parameters than the word model
    word_model = NGramLM(3, smoothing).fit(sentences)
    assert model.num_parameters().full < word_model.num_parameters().full


def test_class_model_with_given_classes_and_unknown_words():
    classes = {"the": 0, "a": 0, "cat": 1, "dog": 1}  # other words share one extra class
    model = ClassNGramLM(2, classes=classes).fit(TOY)
    assert model.word_class[model.index["mat"]] == model.word_class[model.index["sat"]] == "C2"
    assert model.prob("zebra", ["the"]) == model.prob(UNK, ["the"]) > 0
    assert model.prob(BOS) == 0.0
    assert abs(model.probs(["zebra"]).sum() - 1) < 1e-12
