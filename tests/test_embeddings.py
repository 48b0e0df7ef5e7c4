"""bertlab.embeddings: neighbours, analogies, file format and evaluations, checked against gensim
and scipy on the same vectors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr

from bertlab.embeddings import (
    ANALOGY_PARTS,
    SIMILARITY_LABELS,
    Embeddings,
    evaluate_all,
    evaluate_analogy,
    evaluate_similarity,
    rank,
    spearman,
)

gensim = pytest.importorskip("gensim")
from gensim.models import KeyedVectors  # noqa: E402


@pytest.fixture
def royals() -> Embeddings:
    """Four words where king - man + woman is exactly queen, and a few others."""
    words = ["man", "woman", "king", "queen", "apple", "pear"]
    vectors = np.array(
        [[1, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 1], [0, 0.1, 0, 1]],
        dtype=np.float32,
    )
    return Embeddings(vectors, words)


def test_most_similar_and_analogy(royals):
    assert royals.most_similar("apple", k=1)[0][0] == "pear"
    near = royals.most_similar("king", k=5)
    assert near[0] == ("man", pytest.approx(1 / math.sqrt(2)))
    assert near[1] == ("queen", pytest.approx(0.5))
    assert all(a >= b for (_, a), (_, b) in zip(near, near[1:], strict=False))
    assert "king" not in [w for w, _ in near]  # the query is left out
    word, score = royals.analogy("man", "king", "woman")[0]
    assert word == "queen" and score > 0.95
    assert "man" not in [w for w, _ in royals.analogy("man", "king", "woman", k=5)]
    vec_query = royals.most_similar(royals["queen"], k=1)
    assert vec_query[0][0] == "queen"  # a vector query keeps every word
    assert royals.similarity("apple", "pear") == pytest.approx(1 / math.sqrt(1.01), rel=1e-6)


def test_unknown_words_raise_keyerror_naming_the_word(royals):
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        royals.most_similar("zebra")
    with pytest.raises(KeyError, match="'prince'"):
        royals.analogy("man", "prince", "woman")
    with pytest.raises(KeyError, match="'King'.*'king' is"):
        royals["King"]


def test_spearman_by_hand_and_against_scipy():
    x, y = [1, 2, 3, 4, 5], [5, 6, 7, 8, 7]
    # ranks of y: 1, 2, 3.5, 5, 3.5; centred: -2, -1, .5, 2, .5 against -2, -1, 0, 1, 2
    assert rank(y).tolist() == [1, 2, 3.5, 5, 3.5]
    assert spearman(x, y) == pytest.approx(8 / math.sqrt(10 * 9.5))
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.integers(0, 6, 40), rng.normal(size=40)  # many ties in a
        assert spearman(a, b) == pytest.approx(spearmanr(a, b).statistic)
    assert math.isnan(spearman([1], [2])) and math.isnan(spearman([1, 1], [1, 2]))


def test_similarity_on_a_toy_list(royals):
    pairs = [("man", "woman", 1.0), ("king", "QUEEN", 5.0), ("apple", "pear", 9.0),
             ("man", "unicorn", 3.0)]  # fmt: skip
    res = evaluate_similarity(royals, pairs)
    cos = [
        royals.similarity(*p[:2]) for p in [("man", "woman"), ("king", "queen"), ("apple", "pear")]
    ]
    assert (res.n_pairs, res.n_covered) == (4, 3) and res.coverage == 0.75
    assert res.rho == pytest.approx(spearmanr(cos, [1.0, 5.0, 9.0]).statistic) == 1.0
    assert evaluate_similarity(royals, pairs, case_insensitive=False).n_covered == 2


def test_nothing_covered_reports_coverage_zero_without_warnings(royals):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = evaluate_similarity(royals, [("unicorn", "dragon", 5.0), ("elf", "man", 1.0)])
        assert res.n_covered == 0 and res.coverage == 0.0 and math.isnan(res.rho)
        ana = evaluate_analogy(royals, questions={"family": [("boy", "girl", "man", "woman")]})
        assert ana.coverage == 0.0 and ana.total.covered == 0 and math.isnan(ana.accuracy)


def test_evaluate_all_gives_one_table_row_with_coverage(royals):
    pairs = [("man", "woman", 1.0), ("king", "queen", 5.0), ("apple", "pear", 9.0),
             ("man", "unicorn", 3.0)]  # fmt: skip
    questions = {
        "family": [("man", "king", "woman", "queen"), ("man", "woman", "king", "queen")],
        "gram1-toy": [("apple", "pear", "man", "unicorn")],  # never covered
    }
    parts = {"all": "total", "sem": "semantic", "syn": "syntactic"}
    scores, coverage = evaluate_all(
        royals, {"toy": pairs, "toy again": pairs[:2]}, parts, questions=questions
    )
    assert list(scores) == list(coverage) == ["toy", "toy again", "all", "sem", "syn"]
    assert scores["toy"] == evaluate_similarity(royals, pairs).rho == pytest.approx(1.0)
    assert coverage["toy"] == 0.75 and coverage["toy again"] == 1.0
    assert scores["all"] == scores["sem"] == 1.0 and math.isnan(scores["syn"])  # 2 of 2 right
    assert coverage["all"] == pytest.approx(2 / 3) and (coverage["sem"], coverage["syn"]) == (1, 0)
    only, _ = evaluate_all(royals, {"toy": pairs}, analogy_parts={})  # no analogy test at all
    assert list(only) == ["toy"]
    with pytest.raises(ValueError, match=r"unknown analogy part\(s\) \['all'\]"):
        evaluate_all(royals, {}, {"x": "all"}, questions=questions)


def test_evaluate_all_defaults_match_the_single_evaluations(data_mirror):
    from bertlab.data import read_similarity

    words = sorted({w for p in read_similarity("ws353") for w in p[:2]})
    rng = np.random.default_rng(0)
    emb = Embeddings(rng.normal(size=(len(words), 8)).astype(np.float32), words)
    scores, coverage = evaluate_all(emb)
    assert list(scores) == [*SIMILARITY_LABELS, *ANALOGY_PARTS]
    for label, name in SIMILARITY_LABELS.items():
        res = evaluate_similarity(emb, name)
        np.testing.assert_equal([scores[label], coverage[label]], [res.rho, res.coverage])
    assert coverage["WS-353"] == 1.0 and coverage["RW"] == 0.0  # no rare words among them
    analogy = evaluate_analogy(emb, restrict_vocab=30_000)
    assert 0 < coverage["analogy"] < 1  # some questions have all four words among ws353's
    for label, part in ANALOGY_PARTS.items():
        section = getattr(analogy, part)  # NaN accuracies compare equal in assert_equal
        np.testing.assert_equal(
            [scores[label], coverage[label]], [section.accuracy, section.coverage]
        )


def test_save_loads_in_gensim_and_back(tmp_path, royals):
    rng = np.random.default_rng(0)
    emb = Embeddings(rng.normal(size=(6, 7)).astype(np.float32), royals.words)
    kv = KeyedVectors.load_word2vec_format(str(emb.save(tmp_path / "v.txt")), binary=False)
    assert kv.index_to_key == emb.words
    assert np.allclose(kv.vectors, emb.vectors, rtol=1e-5, atol=1e-6)
    kv.save_word2vec_format(str(tmp_path / "g.txt"), binary=False)
    back = Embeddings.load(tmp_path / "g.txt")
    assert back.words == emb.words and np.allclose(back.vectors, emb.vectors, rtol=1e-5, atol=1e-6)
    assert Embeddings.from_gensim(kv).words == emb.words
    (tmp_path / "bad.txt").write_text("2 3\nword 1 2 3\n")
    with pytest.raises(ValueError, match="header says 2 words but the file has 1"):
        Embeddings.load(tmp_path / "bad.txt")


def _keyed(emb: Embeddings) -> KeyedVectors:
    kv = KeyedVectors(emb.dim)
    kv.add_vectors(emb.words, emb.vectors)
    return kv


def _with_case_variants(words: list[str], rng) -> list[str]:
    """The words, plus other casings of some of them, shuffled (so either casing may come
    first, i.e. be the 'most frequent')."""
    extra = [w.lower() if w[0].isupper() else w.capitalize() for w in words[::3]]
    out = list(dict.fromkeys(words + extra))
    rng.shuffle(out)
    return out


def test_similarity_matches_gensim_evaluate_word_pairs(data_mirror):
    from bertlab.data import SIMILARITY_SETS, fetch, read_similarity

    rng = np.random.default_rng(0)
    pairs = read_similarity("ws353")
    words = sorted({w for a, b, _ in pairs for w in (a, b)})
    words = _with_case_variants(words[: int(len(words) * 0.9)], rng)  # leave some uncovered
    emb = Embeddings(rng.normal(size=(len(words), 16)).astype(np.float32), words)
    path = fetch("word_similarity") / f"{SIMILARITY_SETS['ws353']}.txt"
    for restrict in (None, 300):
        ours = evaluate_similarity(emb, "ws353", restrict_vocab=restrict)
        _, (rho, _), oov = _keyed(emb).evaluate_word_pairs(
            str(path), restrict_vocab=restrict or 300000, case_insensitive=True
        )
        assert ours.rho == pytest.approx(rho, abs=1e-6)
        assert 100 * (1 - ours.coverage) == pytest.approx(oov)


def test_analogy_matches_gensim_evaluate_word_analogies(data_mirror):
    from bertlab.data import fetch, read_analogy

    rng = np.random.default_rng(0)
    questions = read_analogy()
    words = _with_case_variants(
        sorted({w for qs in questions.values() for q in qs for w in q}), rng
    )
    index = {w: i for i, w in enumerate(words)}
    vectors = rng.normal(size=(len(words), 24))
    for qs in questions.values():  # plant an offset per section, so some answers are right
        offset = rng.normal(size=24)
        for a, b, _, _ in qs[::2]:
            vectors[index[b]] = vectors[index[a]] + offset + 0.5 * rng.normal(size=24)
    emb = Embeddings(vectors.astype(np.float32), words)
    restrict = int(len(words) * 0.8)
    ours = evaluate_analogy(emb, restrict_vocab=restrict)
    score, sections = _keyed(emb).evaluate_word_analogies(
        str(fetch("word_analogy") / "questions-words.txt"), restrict_vocab=restrict
    )
    assert 0.05 < ours.accuracy < 0.95 and 0.2 < ours.coverage < 0.9  # a meaningful comparison
    for s in sections[:-1]:
        mine = ours.sections[s["section"]]
        assert mine.correct == len(s["correct"]), s["section"]
        assert mine.covered == len(s["correct"]) + len(s["incorrect"]), s["section"]
    assert ours.accuracy == pytest.approx(score)
    semantic = [s for s in sections[:-1] if s["section"] in ours.semantic_sections]
    assert ours.semantic.correct == sum(len(s["correct"]) for s in semantic)


def test_explorer_prerenders_views_and_live_boxes_update():
    pytest.importorskip("ipywidgets")
    import matplotlib

    matplotlib.use("Agg")
    from bertlab import viz

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(30)] + ["man", "king", "woman", "queen"]
    emb = Embeddings(rng.normal(size=(len(words), 5)).astype(np.float32), words)
    ex = viz.EmbeddingExplorer(emb, words=words[:12] + ["unicorn"], k=4)
    assert ex.words == words[:12]  # unknown words are left out
    box = ex.widget(queries=["w1", "w2", "dragon"], analogies=[("man", "king", "woman")])
    view_row, views, analogy_row, analogy_views, live = box.children
    assert len(views.children) == 1 + 2  # the map, then one view per known query
    assert len(analogy_views.children) == 1
    assert 'nearest to "w1"' in views.children[1].children[1].value
    texts = [row.children[1] for row in live.children[1:4]]
    picture, message = live.children[4].children
    texts[1].value = "w3"
    assert bytes(picture.value).startswith(b"\x89PNG") and "nearest to" in message.value
    texts[2].value = "man king"
    assert "three words" in message.value
    texts[0].value = "w20, nope"
    assert "not in the vocabulary: nope" in message.value
    assert viz.project_2d(emb.unit[:4]).shape == (4, 2)
