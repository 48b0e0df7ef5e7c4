"""Tests for bertlab.ngram: normalization, hand computations, a dict-based Kneser-Ney reference,
NLTK's nltk.lm where the definitions agree (and its documented differences where they don't),
and bad input (of both n-gram models; Brown clustering is in test_brown.py)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from nltk.lm import MLE, KneserNeyInterpolated, Laplace, Lidstone, Vocabulary
from nltk.lm.preprocessing import padded_everygram_pipeline
from nltk.util import everygrams

from bertlab.brown import ClassNGramLM, brown_clusters
from bertlab.ngram import BOS, EOS, UNK, NGramLM, ngram_stats

TOY = [
    s.split()
    for s in [
        "the cat sat on the mat",
        "the dog sat on the log",
        "a cat saw a dog on the mat",
        "the cat ran",
        "a dog",
    ]
]
# contexts: seen, seen at sentence start, too short, too long, with unknown words, never seen
CONTEXTS = [
    [],
    ["the"],
    ["the", "cat"],
    ["sat", "on", "the"],
    ["cat", "sat", "on", "the", "mat"],
    ["zebra"],
    ["zebra", "cat"],
    ["cat", "zebra"],
    ["mat", "mat", "mat", "mat"],
]


def padded(sentence: list[str], n: int) -> list[str]:
    return [BOS] * (n - 1) + sentence + [EOS]


def our_everygrams(sentences: list[list[str]], n: int) -> list[list[tuple]]:
    """NLTK training input with *our* padding: n-1 <s> on the left, one </s> on the right."""
    return [list(everygrams(padded(s, n), max_len=n)) for s in sentences]


def predicted_ngrams(sentences: list[list[str]], n: int) -> list[tuple]:
    return [tuple(p[i - n + 1 : i + 1]) for s in sentences for p in [padded(s, n)]
            for i in range(n - 1, len(p))]  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Probabilities are distributions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k", "mle"])
@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_probs_sum_to_one_on_seen_and_unseen_contexts(smoothing, order):
    model = NGramLM(order, smoothing, k=0.3, discount=0.6).fit(TOY)
    assert model.vocab[:2] == [EOS, UNK] and BOS not in model.vocab
    for context in CONTEXTS:
        try:
            p = model.probs(context)
        except ValueError as err:  # MLE after a context it never saw: no distribution
            assert smoothing == "mle" and order > 1
            assert "no distribution" in str(err)
            with pytest.raises(ValueError, match="no distribution"):
                model.prob("cat", context)
            continue
        assert p.shape == (len(model.vocab),) and np.all(p >= 0)
        assert abs(p.sum() - 1) < 1e-9
        singles = np.array([model.prob(w, context) for w in model.vocab])
        np.testing.assert_allclose(singles, p, rtol=0, atol=1e-15)
        assert model.prob(BOS, context) == 0.0  # <s> is never predicted


def test_mle_unseen_context_is_an_error_and_infinite_perplexity():
    model = NGramLM(2, "mle").fit(TOY)
    with pytest.raises(ValueError, match=r"MLE has no distribution after the context \['<unk>'\]"):
        model.probs(["zebra"])
    with pytest.raises(ValueError, match="no distribution"):
        model.generate(3, context=["zebra"])
    # seen context, unseen bigram: probability 0, perplexity inf (no crash, no warning)
    assert model.prob("dog", ["cat"]) == 0.0
    assert model.logprob("dog", ["cat"]) == -math.inf
    assert model.perplexity([["the", "cat", "dog"]]) == math.inf
    # unseen context inside a text: counted as probability 0
    logp = model.token_logprobs([["zebra", "cat"]])
    assert logp[1] == -math.inf and math.isinf(model.perplexity([["zebra", "cat"]]))


# --------------------------------------------------------------------------------------------------
# Hand computations
# --------------------------------------------------------------------------------------------------

TINY = [["a", "b"], ["a"]]  # predicted: a|<s>, b|a, </s>|b, a|<s>, </s>|a ; V = {</s>, <unk>, a, b}


def test_counts_by_hand():
    model = NGramLM(2, "mle").fit(TINY)
    assert model.vocab == [EOS, UNK, "a", "b"]
    assert model.count(["<s>", "a"]) == 2 and model.count(["a", "b"]) == 1
    assert model.count(["a", EOS]) == 1 and model.count(["a"]) == 2 and model.count([EOS]) == 2
    assert model.count(["b", "a"]) == 0 and model.count(["zebra"]) == 0  # <unk> never seen
    assert model.num_tokens == 5 and model.num_sentences == 2


def test_perplexity_mle_by_hand():
    model = NGramLM(2, "mle").fit(TINY)
    assert model.prob("a", []) == 1.0 and model.prob("b", ["a"]) == 0.5
    assert model.perplexity(TINY) == pytest.approx((1 * 0.5 * 1 * 1 * 0.5) ** (-1 / 5), abs=1e-12)


def test_perplexity_add_k_by_hand():
    model = NGramLM(2, "add-k", k=1).fit(TINY)  # Laplace, |V| = 4
    ps = [(2 + 1) / (2 + 4), (1 + 1) / (2 + 4), (1 + 1) / (1 + 4), (2 + 1) / (2 + 4), (1 + 1) / 6]
    assert model.perplexity(TINY) == pytest.approx(math.prod(ps) ** (-1 / 5), abs=1e-12)
    assert model.prob("zebra", ["a"]) == pytest.approx(1 / 6)  # <unk>: (0 + 1) / (2 + 4)


def test_perplexity_kneser_ney_unigram_by_hand():
    model = NGramLM(1, "kneser-ney", discount=0.5).fit(TINY)  # c(a)=2, c(b)=1, c(</s>)=2, N=5
    uniform_mass = 0.5 * 3 / 5  # D * (3 word types) / N, spread over |V| = 4
    p = {"a": 1.5 / 5, "b": 0.5 / 5, EOS: 1.5 / 5, UNK: 0}
    p = {w: v + uniform_mass / 4 for w, v in p.items()}
    assert [model.prob(w) for w in model.vocab] == pytest.approx([p[w] for w in model.vocab])
    expected = (p["a"] * p["b"] * p[EOS] * p["a"] * p[EOS]) ** (-1 / 5)
    assert model.perplexity(TINY) == pytest.approx(expected, abs=1e-12)


def test_perplexity_is_exp_mean_of_token_logprobs_and_matches_prob():
    model = NGramLM(3, "kneser-ney").fit(TOY)
    text = [["the", "cat", "sat", "on", "a", "log"], ["zebra", "ran"]]
    logp = model.token_logprobs(text)
    by_hand = [model.logprob(w, s[:i]) for s in text for i, w in enumerate(s + [EOS])]
    np.testing.assert_allclose(logp, by_hand, rtol=1e-12)
    assert model.perplexity(text) == pytest.approx(math.exp(-np.mean(by_hand)))


def test_context_padding_truncation_and_unknown_words():
    model = NGramLM(3, "kneser-ney").fit(TOY)
    assert model.prob("the", []) == model.prob("the", [BOS, BOS])  # short: padded with <s>
    assert model.prob("cat", ["the"]) == model.prob("cat", [BOS, "the"])
    long = ["a", "dog", "sat", "on", "the"]  # long: only the last n - 1 tokens count
    np.testing.assert_array_equal(model.probs(long), model.probs(["on", "the"]))
    assert model.prob("zebra", ["the"]) == model.prob(UNK, ["the"])  # unknown word -> <unk>
    assert model.prob("cat", ["zebra"]) == model.prob("cat", [UNK])
    assert model.prob(UNK, ["the"]) > 0  # Kneser-Ney gives <unk> mass through the uniform term


def test_min_count_and_fixed_vocab():
    model = NGramLM(2, "add-k", min_count=2).fit(TOY)
    assert "ran" not in model.vocab and "saw" not in model.vocab and "the" in model.vocab
    assert model.count(["cat", UNK]) == 2  # "cat ran", "cat saw"
    fixed = NGramLM(2, "add-k", vocab=["the", "cat", "the"]).fit(TOY)
    assert fixed.vocab == [EOS, UNK, "the", "cat"]
    assert fixed.prob("dog", ["the"]) == fixed.prob(UNK, ["the"])


def test_num_parameters():
    mle = NGramLM(2, "mle").fit(TINY)  # seen bigrams: <s> a, a b, b </s>, a </s>
    assert (mle.num_parameters().stored, mle.num_parameters().full) == (4, 4**2)
    kn = NGramLM(2, "kneser-ney").fit(TINY)  # + unigrams with a continuation count: a, b, </s>
    assert kn.num_parameters().stored == 4 + 3


# --------------------------------------------------------------------------------------------------
# Kneser-Ney: against a dict-based reference of the documented formula
# --------------------------------------------------------------------------------------------------


def kn_reference(sentences, n, D):
    """Interpolated Kneser-Ney straight from the NGramLM docstring, with dicts and loops."""
    grams = Counter()  # m-grams (m <= n) ending at predicted positions
    for s in sentences:
        p = padded(s, n)
        for i in range(n - 1, len(p)):
            for m in range(1, n + 1):
                grams[tuple(p[i - m + 1 : i + 1])] += 1
    vocab = {w for s in sentences for w in s} | {EOS, UNK}

    def c(gram):
        if len(gram) == n:
            return grams[gram]
        return len({g[0] for g in grams if len(g) == len(gram) + 1 and g[1:] == gram})

    def prob(w, h):  # level m = len(h) + 1; below level 1 is the uniform distribution
        lower = prob(w, h[1:]) if h else 1 / len(vocab)
        follow = {g[-1]: c(g) for g in grams if len(g) == len(h) + 1 and g[:-1] == h}
        follow = {x: v for x, v in follow.items() if v > 0}
        total = sum(follow.values())
        if total == 0:
            return lower
        return max(follow.get(w, 0) - D, 0) / total + D * len(follow) / total * lower

    return vocab, prob


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("discount", [0.75, 1.0, 0.1])
def test_kneser_ney_matches_dict_reference(order, discount):
    model = NGramLM(order, "kneser-ney", discount=discount).fit(TOY)
    vocab, ref = kn_reference(TOY, order, discount)
    assert set(model.vocab) == vocab
    for context in CONTEXTS:
        ctx = [t if t in vocab else UNK for t in context][-(order - 1) :] if order > 1 else []
        h = tuple([BOS] * (order - 1 - len(ctx)) + ctx)
        p = model.probs(context)
        expected = [ref(w, h) for w in model.vocab]
        np.testing.assert_allclose(p, expected, rtol=0, atol=1e-14)


# --------------------------------------------------------------------------------------------------
# NLTK: MLE, Lidstone / Laplace (exact), Kneser-Ney (exact up to its lowest order and one quirk)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [2, 3])
def test_mle_matches_nltk_padded_everygram_pipeline(order):
    """NLTK pads the right with n - 1 </s> (we add one), so its extra n-grams all have a </s> in
    the context: on every context we can see (no </s> in it) the two MLEs agree exactly."""
    train, vocab_text = padded_everygram_pipeline(order, TOY)
    nltk_model = MLE(order)
    nltk_model.fit(train, vocab_text)
    model = NGramLM(order, "mle").fit(TOY)
    contexts = {g[:-1] for g in predicted_ngrams(TOY, order)}
    for h in contexts:
        for w in model.vocab:
            assert model.prob(w, list(h)) == nltk_model.score(w, h), (w, h)
    # same perplexity on the training text, and both infinite on text with an unseen n-gram
    grams = predicted_ngrams(TOY, order)
    assert model.perplexity(TOY) == pytest.approx(nltk_model.perplexity(grams), rel=1e-12)
    held_out = [["the", "dog", "ran"]]
    assert model.perplexity(held_out) == math.inf
    assert nltk_model.perplexity(predicted_ngrams(held_out, order)) == math.inf


def test_mle_unigram_matches_nltk_with_our_padding():
    """For n = 1 NLTK's pipeline adds no </s> at all; we predict it, so feed NLTK our padding."""
    nltk_model = MLE(1)
    nltk_model.fit(our_everygrams(TOY, 1), vocabulary_text=[w for s in TOY for w in s + [EOS]])
    model = NGramLM(1, "mle").fit(TOY)
    for w in model.vocab:
        assert model.prob(w) == nltk_model.score(w)


@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("k", [1.0, 0.1])
def test_lidstone_and_laplace_match_nltk(order, k):
    """NLTK's |V| counts <s> (its vocabulary holds every padded token); ours doesn't, since <s> is
    never predicted. Giving NLTK a vocabulary without <s> (it then reads <s> as its <UNK>, which
    TOY never uses otherwise) makes the two vocabularies the same size and the numbers equal."""
    train = our_everygrams(TOY, 1) if order == 1 else padded_everygram_pipeline(order, TOY)[0]
    vocab = Vocabulary([w for s in TOY for w in s] + [EOS])
    nltk_model = (
        Laplace(order, vocabulary=vocab) if k == 1 else Lidstone(k, order, vocabulary=vocab)
    )
    nltk_model.fit(train)
    model = NGramLM(order, "add-k", k=k).fit(TOY)
    assert len(nltk_model.vocab) == len(model.vocab)
    for context in [c for c in CONTEXTS if set(c) <= set(model.vocab)]:  # NLTK's <UNK> is <s> here
        h = tuple(model._padded_context(context))
        h = tuple(BOS if i == model._bos else model.vocab[i] for i in h)
        for w in model.vocab:
            assert model.prob(w, context) == pytest.approx(nltk_model.score(w, h), rel=1e-14)


def fit_nltk_kn(order, discount):
    nltk_model = KneserNeyInterpolated(order, discount=discount)
    nltk_model.fit(
        our_everygrams(TOY, order), vocabulary_text=[w for s in TOY for w in padded(s, order)]
    )
    return nltk_model


@pytest.mark.parametrize("order", [2, 3, 4])
def test_kneser_ney_matches_nltk_given_our_lowest_order(order):
    """Same padding, same discount. NLTK's recursion (raw counts at the top, continuation counts
    below, gamma = D * N1+(h .) / total) is ours, except (1) its lowest order and (2) its gamma in
    the all-<s> context. Replacing (1) by ours, every other context agrees to 1e-15."""
    D = 0.6
    model = NGramLM(order, "kneser-ney", discount=D).fit(TOY)
    nltk_model = fit_nltk_kn(order, D)
    ours_lowest = dict(zip(model.vocab, _lowest(model)))
    ours_lowest[BOS], ours_lowest["<UNK>"] = 0.0, ours_lowest[UNK]
    nltk_model.estimator.unigram_score = ours_lowest.__getitem__
    for context in CONTEXTS:
        h = tuple(
            BOS if i == model._bos else model.vocab[i] for i in model._padded_context(context)
        )
        nltk_p = {w: nltk_model.score(w, h) for w in nltk_model.vocab}
        ours = dict(zip(model.vocab, model.probs(context)))
        if all(t == BOS for t in h) and order >= 3:  # (2): NLTK's sum exceeds 1 here
            assert sum(nltk_p.values()) > 1 + 1e-3
            continue
        for w in model.vocab:
            assert ours[w] == pytest.approx(nltk_p["<UNK>" if w == UNK else w], abs=1e-15)


def _lowest(model: NGramLM) -> np.ndarray:
    """Our unigram level: discounted continuation counts interpolated with uniform."""
    lv, V, D = model._levels[0], len(model.vocab), model.discount
    return (np.maximum(lv.c[:V] - D, 0) + D * lv.types[0] / V) / lv.total[0]


def test_nltk_kneser_ney_quirks_that_we_do_not_share():
    """NLTK 3.9's lowest order is N1+(. w) / N1+(. .), undiscounted and with no uniform part: a
    word never seen after anything (<UNK>) gets 0 in every context, and for n >= 3 <s> gets mass
    (from the padding bigram <s> <s>); and after <s> <s> its probabilities sum to more than 1,
    because its gamma counts <s> as a word seen after <s>. Ours: all three differ."""
    nltk_model, model = fit_nltk_kn(3, 0.75), NGramLM(3, "kneser-ney", discount=0.75).fit(TOY)
    bigrams = {g[-2:] for g in predicted_ngrams(TOY, 3)} | {(BOS, BOS)}
    n_plus = Counter(b[1] for b in bigrams)
    assert nltk_model.score("cat") == pytest.approx(n_plus["cat"] / len(bigrams))
    assert nltk_model.score(BOS) == pytest.approx(1 / len(bigrams)) and model.prob(BOS) == 0
    assert nltk_model.score("zebra", ("the", "cat")) == 0 < model.prob("zebra", ["the", "cat"])
    assert sum(nltk_model.score(w, (BOS, BOS)) for w in nltk_model.vocab) > 1.05
    assert model.probs([BOS, BOS]).sum() == pytest.approx(1, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k", "mle"])
def test_generate_is_deterministic_under_seed_and_emits_vocab_words(smoothing):
    model = NGramLM(3, smoothing).fit(TOY)
    a, b = model.generate(40, seed=7), model.generate(40, seed=7)
    assert a == b and len(a) == 40 and set(a) <= set(model.vocab)
    assert model.generate(40, seed=8) != a
    if smoothing == "mle":  # MLE only replays n-grams it has seen
        history = [BOS, BOS]
        for w in a:
            assert model.count(history[-2:] + [w]) > 0
            history = [BOS, BOS] if w == EOS else history + [w]
        with pytest.raises(ValueError, match="no distribution"):  # nothing to sample from
            model.generate(5, context=["the", "zebra"])
    else:
        assert set(model.generate(5, context=["the", "zebra"], seed=1)) <= set(model.vocab)


# --------------------------------------------------------------------------------------------------
# The parameter explosion
# --------------------------------------------------------------------------------------------------


def test_ngram_stats_by_hand():
    train = [["a", "b", "a"], ["b", "a"]]
    rows = ngram_stats(train, max_order=3, held_out=[["a", "b", "b"], ["c"]])
    assert [r.n for r in rows] == [1, 2, 3]
    assert [(r.occurrences, r.distinct, r.singletons, r.possible) for r in rows] == [
        (5, 2, 0, 2),
        (3, 2, 1, 4),  # "a b", "b a" x2
        (1, 1, 1, 8),
    ]
    # held-out n-grams: a b b c | a b, b b | a b b -> unseen: c | b b | a b b
    assert [r.unseen for r in rows] == pytest.approx([1 / 4, 1 / 2, 1.0])
    assert ngram_stats(train, 2)[1].unseen is None


# --------------------------------------------------------------------------------------------------
# Bad input: clear errors
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"order": 0}, "order must be an integer >= 1"),
        ({"order": -2}, "order must be an integer >= 1"),
        ({"order": 2.5}, "order must be an integer >= 1"),
        ({"smoothing": "witten-bell"}, "smoothing must be one of kneser-ney, add-k, mle"),
        ({"smoothing": "add-k", "k": -1}, r"k must be >= 0"),
        ({"smoothing": "kneser-ney", "k": -0.5}, r"k must be >= 0"),
        ({"smoothing": "add-k", "k": 0}, "add-k smoothing needs k > 0.*smoothing='mle'"),
        ({"discount": 0}, r"discount must be in \(0, 1\]"),
        ({"discount": 1.5}, r"discount must be in \(0, 1\]"),
        ({"discount": -0.1}, r"discount must be in \(0, 1\]"),
        ({"min_count": 0}, "min_count must be an integer >= 1"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NGramLM(**kwargs)
    with pytest.raises(ValueError, match=match):
        ClassNGramLM(**kwargs)


def test_bad_input():
    with pytest.raises(ValueError, match="empty corpus"):
        NGramLM(2).fit([])
    with pytest.raises(ValueError, match="empty corpus"):
        ClassNGramLM(2).fit(iter([]))
    with pytest.raises(TypeError, match="list of tokens, got a string; split it first"):
        NGramLM(2).fit(["the cat sat"])
    with pytest.raises(ValueError, match="reserved token"):
        NGramLM(2).fit([["the", "</s>", "cat"]])
    with pytest.raises(ValueError, match="reserved token"):
        ClassNGramLM(2, n_classes=2).fit([["<s>", "the", "cat"]])
    with pytest.raises(RuntimeError, match=r"not fitted yet: call \.fit"):
        NGramLM(2).prob("the", [])
    with pytest.raises(RuntimeError, match=r"not fitted yet: call \.fit"):
        ClassNGramLM(2).probs([])
    model = NGramLM(3).fit(TOY)
    with pytest.raises(TypeError, match=r"context must be a sequence of tokens.*\['the', 'cat'\]"):
        model.prob("sat", "the cat")
    with pytest.raises(TypeError, match="word must be a string"):
        model.prob(["sat"], ["the"])
    with pytest.raises(ValueError, match="reserved token"):
        model.perplexity([["<s>", "the"]])
    with pytest.raises(ValueError, match="at least one sentence"):
        model.perplexity([])
    with pytest.raises(ValueError, match="ngram must have 1 to 3 tokens"):
        model.count(["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"n_words \(2\) must be >= n_classes \(3\)"):
        brown_clusters(TOY, n_classes=3, n_words=2)
    with pytest.raises(ValueError, match="at least one word"):
        brown_clusters([[EOS], [UNK]], n_classes=1)
