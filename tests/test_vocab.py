"""bertlab.vocab: counting, cut-offs, ids, subsampling, and the text file format."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bertlab.vocab import UNK, Vocab

CORPUS = [
    ["the", "cat", "sat", "on", "the", "mat"],
    ["the", "dog", "sat"],
    ["a", "cat", "and", "a", "dog", "<unk>"],
]


def test_build_orders_by_count_then_alphabet_with_specials_first():
    v = Vocab.build(CORPUS, min_count=2)
    # the: 3; a, cat, dog, sat: 2 each (alphabetical); specials first
    assert v.itos == [UNK, "the", "a", "cat", "dog", "sat"]
    assert v.counts.tolist() == [1 + 3, 3, 2, 2, 2, 2]  # <unk>: the literal one + on, mat, and
    assert len(v) == 6 and "cat" in v and "mat" not in v
    assert v.total == sum(map(len, CORPUS))
    assert v.freqs.sum() == pytest.approx(1.0)
    assert v["mat"] == v.unk_id == 0


def test_max_size_and_no_specials():
    v = Vocab.build(CORPUS, min_count=1, max_size=2, specials=())
    assert v.itos == ["the", "a"] and v.unk_id is None
    with pytest.raises(KeyError, match="'cat' is not in the vocabulary"):
        v.encode(["the", "cat"])
    assert v.encode(["the", "cat", "a"], drop_unknown=True).tolist() == [0, 1]


def test_encode_decode_and_corpus_encoding_agree():
    v = Vocab.build(CORPUS, min_count=2)
    ids = v.encode(CORPUS[0])
    assert ids.dtype == np.int64
    assert v.decode(ids) == ["the", "cat", "sat", UNK, "the", UNK]
    flat, starts = v.encode_corpus(CORPUS)
    assert starts.tolist() == [0, 6, 9, 15]
    for s, sentence in enumerate(CORPUS):
        assert flat[starts[s] : starts[s + 1]].tolist() == v.encode(sentence).tolist()
    flat, starts = v.encode_corpus(CORPUS, drop_unknown=True)
    for s, sentence in enumerate(CORPUS):
        expected = v.encode(sentence, drop_unknown=True).tolist()
        assert flat[starts[s] : starts[s + 1]].tolist() == expected
    assert UNK not in v.decode(flat)
    with pytest.raises(IndexError, match="id 99 is out of range"):
        v.decode([1, 99])


def test_subsampling_follows_word2vecs_formula():
    v = Vocab.build([["a"] * 90 + ["b"] * 9 + ["c"]], min_count=1, specials=())
    t = 0.01
    keep = v.keep_probs(t)
    for word, f in (("a", 0.9), ("b", 0.09), ("c", 0.01)):
        expected = min(1.0, (math.sqrt(f / t) + 1) * t / f)
        assert keep[v[word]] == pytest.approx(expected)
    assert keep[v["c"]] == 1.0 and keep[v["a"]] < keep[v["b"]] < 1.0
    assert np.all(v.keep_probs(0) == 1.0)
    ids = np.repeat(np.arange(3), [90_000, 9_000, 1_000])
    kept = v.subsample(ids, t, rng=0)
    share = np.bincount(kept, minlength=3) / np.array([90_000, 9_000, 1_000])
    assert np.allclose(share, keep, atol=0.01)
    assert np.array_equal(kept, v.subsample(ids, t, rng=0))  # reproducible from a seed


def test_save_load_round_trip(tmp_path):
    v = Vocab.build(CORPUS, min_count=1, specials=(UNK, "<pad>"))
    w = Vocab.load(v.save(tmp_path / "vocab.txt"))
    assert w.itos == v.itos and w.counts.tolist() == v.counts.tolist()
    assert w.specials == (UNK, "<pad>") and w.unk_id == v.unk_id


def test_bad_input_messages(tmp_path):
    with pytest.raises(ValueError, match="min_count must be at least 1"):
        Vocab.build(CORPUS, min_count=0)
    with pytest.raises(ValueError, match="appears twice"):
        Vocab(["a", "a"], [1, 1])
    with pytest.raises(ValueError, match="cannot save the word 'a b'"):
        Vocab(["a b"], [1]).save(tmp_path / "v.txt")
    (tmp_path / "bad.txt").write_text("the\t3\n")
    with pytest.raises(ValueError, match="not a bertlab vocabulary"):
        Vocab.load(tmp_path / "bad.txt")
