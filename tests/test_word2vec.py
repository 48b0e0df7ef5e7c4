"""word2vec: hand-written gradients vs autograd, hierarchical softmax, Huffman codes, training."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from bertlab.word2vec import (
    Word2Vec,
    Word2VecConfig,
    hs_log_probs,
    huffman_lengths_reference,
    huffman_tree,
    logistic_grads,
    noise_table,
    softmax_grads,
    time_output_layers,
    train_word2vec,
)

# --------------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------------


def test_negative_sampling_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    h = torch.randn(7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    U = torch.randn(7, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(7, 6, dtype=torch.float64)
    labels[:, 0] = 1  # the true word first, then 5 noise words
    loss, dh, dU = logistic_grads(h, U, labels)
    reference = -(
        torch.nn.functional.logsigmoid((U @ h.unsqueeze(2)).squeeze(2) * (2 * labels - 1))
    )
    torch.testing.assert_close(loss, reference.sum())
    reference.sum().backward()
    torch.testing.assert_close(dh, h.grad)
    torch.testing.assert_close(dU, U.grad)


def test_hierarchical_gradients_match_autograd_with_padding():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    U = torch.randn(4, 5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 2, (4, 5), generator=g).double()
    mask = torch.tensor(
        [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]
    ).double()
    loss, dh, dU = logistic_grads(h, U, labels, mask)
    s = (U @ h.unsqueeze(2)).squeeze(2)
    reference = -(torch.nn.functional.logsigmoid(s * (2 * labels - 1)) * mask).sum()
    torch.testing.assert_close(loss, reference)
    reference.backward()
    torch.testing.assert_close(dh, h.grad)
    torch.testing.assert_close(dU, U.grad)


def test_window_gradients_match_autograd_with_scales():
    """Skip-gram's batched form: C context words per centre share the centre's K output rows."""
    g = torch.Generator().manual_seed(3)
    H = torch.randn(4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    U = torch.randn(4, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.zeros(4, 6, dtype=torch.float64)
    labels[:, 0] = 1
    mask = torch.randint(0, 2, (4, 3, 6), generator=g).double()  # padding and skipped noise
    in_scale = torch.rand(4, 3, generator=g, dtype=torch.float64)
    out_scale = torch.rand(4, 6, generator=g, dtype=torch.float64)
    loss, dH, dU = logistic_grads(H, U, labels, mask, in_scale, out_scale)
    s = H @ U.transpose(1, 2)  # (4, 3, 6)
    reference = -(torch.nn.functional.logsigmoid(s * (2 * labels[:, None] - 1)) * mask).sum()
    torch.testing.assert_close(loss, reference)
    gH, gU = torch.autograd.grad(reference, [H, U])
    # each input's update is scaled by its in_scale, each output's by its out_scale
    torch.testing.assert_close(dH, gH * in_scale.unsqueeze(2))
    torch.testing.assert_close(dU, gU * out_scale.unsqueeze(2))
    _, _, dU_plain = logistic_grads(H, U, labels, mask, with_loss=False)
    torch.testing.assert_close(dU_plain, gU)


def test_softmax_gradients_match_autograd():
    g = torch.Generator().manual_seed(2)
    h = torch.randn(6, 4, generator=g, dtype=torch.float64, requires_grad=True)
    W_out = torch.randn(9, 4, generator=g, dtype=torch.float64, requires_grad=True)
    target = torch.tensor([0, 3, 3, 8, 1, 5])
    loss, dh, dW = softmax_grads(h, W_out, target)
    reference = torch.nn.functional.cross_entropy(h @ W_out.T, target, reduction="sum")
    torch.testing.assert_close(loss, reference)
    reference.backward()
    torch.testing.assert_close(dh, h.grad)
    torch.testing.assert_close(dW, W_out.grad)


# --------------------------------------------------------------------------------------------------
# Huffman tree and hierarchical softmax
# --------------------------------------------------------------------------------------------------

TOY_COUNTS = [
    [5, 1],
    [10, 7, 3, 1],
    [1, 1, 1, 1, 1, 1, 1],
    [45, 13, 12, 16, 9, 5],
    [100, 50, 25, 12, 6, 3, 2, 1, 1],
]


@pytest.mark.parametrize("counts", TOY_COUNTS)
def test_huffman_codes_are_prefix_free_and_optimal(counts):
    tree = huffman_tree(counts)
    codes = ["".join(map(str, c)) for c in tree.codes]
    assert all(codes), "every word needs a non-empty code"
    for a, b in itertools.permutations(codes, 2):
        assert not b.startswith(a), f"{a} is a prefix of {b}"
    reference = huffman_lengths_reference(counts)
    expected = np.dot(counts, reference) / sum(counts)
    assert tree.expected_length(counts) == pytest.approx(expected)
    # Kraft equality: a full binary tree
    assert sum(2.0 ** -len(c) for c in codes) == pytest.approx(1.0)
    # the inner nodes on each path are distinct ids in 0..V-2, root (V-2) first
    for p in tree.points:
        assert p[0] == len(counts) - 2 and len(set(p.tolist())) == len(p)
        assert p.min() >= 0 and p.max() <= len(counts) - 2


def test_huffman_needs_two_words():
    with pytest.raises(ValueError, match="at least 2 words"):
        huffman_tree([3])


@pytest.mark.parametrize("counts", TOY_COUNTS[1:])
def test_hierarchical_softmax_probabilities_sum_to_one(counts):
    tree = huffman_tree(counts)
    g = torch.Generator().manual_seed(0)
    W_out = torch.randn(len(counts) - 1, 4, generator=g, dtype=torch.float64)
    for _ in range(3):
        h = torch.randn(4, generator=g, dtype=torch.float64)
        p = hs_log_probs(h, W_out, tree).exp()
        assert p.shape == (len(counts),)
        torch.testing.assert_close(p.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_noise_table_follows_unigram_to_the_three_quarters():
    counts = np.array([1000, 100, 10, 1])
    table = noise_table(counts, size=1 << 16)
    share = np.bincount(table, minlength=4) / len(table)
    expected = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(share, expected, atol=1e-4)


# --------------------------------------------------------------------------------------------------
# Training on a planted corpus
# --------------------------------------------------------------------------------------------------


def planted_corpus(
    n_sentences: int = 1500, seed: int = 0
) -> tuple[list[list[str]], list[list[str]]]:
    """Four topics of five words each; a sentence mixes words of one topic only, so a word's
    nearest neighbours should be the other words of its topic."""
    rng = np.random.default_rng(seed)
    topics = [[f"{t}{i}" for i in range(5)] for t in "abcd"]
    sentences = []
    for _ in range(n_sentences):
        topic = topics[rng.integers(len(topics))]
        sentences.append([topic[j] for j in rng.integers(0, 5, size=8)])
    return sentences, topics


# small vectors, a window that stays inside a topic's sentence, every word kept, no subsampling
PLANTED = Word2VecConfig(dim=16, window=3, min_count=1, sample=0, epochs=5)


def planted_hits(emb, topics) -> int:
    """How many of each word's 4 nearest neighbours are words of its own topic (80 at most)."""
    return sum(n in topic for topic in topics for w in topic for n, _ in emb.most_similar(w, 4))


@pytest.mark.parametrize(
    "model,objective",
    list(itertools.product(["skipgram", "cbow"], ["negative", "hierarchical", "softmax"])),
)
def test_training_recovers_planted_neighbours(model, objective):
    sentences, topics = planted_corpus()
    lr = 0.1 if model == "cbow" else 0.05
    emb = train_word2vec(sentences, PLANTED, model=model, objective=objective, batch_size=64,
                         lr=lr, progress=False, device="cpu")  # fmt: skip
    assert isinstance(emb, Word2Vec) and len(emb) == 20
    hits = planted_hits(emb, topics)
    assert hits / (20 * 4) > 0.9, f"only {hits} of 80 nearest neighbours share the topic"


def test_w_out_and_average_embeddings():
    sentences, _ = planted_corpus(300)
    emb = train_word2vec(sentences, dim=8, min_count=1, epochs=1, progress=False, device="cpu")
    assert emb.embeddings("in").vectors.shape == (20, 8)
    np.testing.assert_allclose(emb.embeddings("out").vectors, emb.W_out)
    np.testing.assert_allclose(emb.embeddings("avg").vectors, (emb.W_in + emb.W_out) / 2)
    with pytest.raises(ValueError, match="which must be"):
        emb.embeddings("both")
    hs = train_word2vec(
        sentences, objective="hierarchical", dim=8, min_count=1, epochs=1, progress=False
    )
    assert hs.W_out.shape == (19, 8)
    with pytest.raises(ValueError, match="inner node"):
        hs.embeddings("avg")


def test_hogwild_threads_train_too():
    sentences, topics = planted_corpus()
    emb = train_word2vec(sentences, PLANTED, batch_size=256, lr=0.05, workers=2, progress=False,
                         device="cpu")  # fmt: skip
    hits = planted_hits(emb, topics)
    # hogwild threads are not deterministic: 75-80 of 80 on a quiet machine, 57 once beside a
    # busy notebook; chance is about 17 (4 of 19 other words share a word's topic)
    assert hits / 80 > 0.6


def test_training_is_reproducible_on_cpu():
    sentences, _ = planted_corpus(300)
    a = train_word2vec(
        sentences, dim=8, min_count=1, epochs=1, progress=False, device="cpu", seed=3
    )
    b = train_word2vec(
        sentences, dim=8, min_count=1, epochs=1, progress=False, device="cpu", seed=3
    )
    np.testing.assert_array_equal(a.vectors, b.vectors)


def test_presets_and_config_overrides():
    cpu, gpu = Word2VecConfig.preset("cpu"), Word2VecConfig.preset("gpu")
    assert cpu == Word2VecConfig(epochs=3) and gpu == Word2VecConfig(epochs=5)
    assert (cpu.dim, cpu.window, cpu.negative, cpu.min_count, cpu.sample) == (100, 5, 5, 5, 1e-3)
    assert Word2VecConfig.preset("cpu", dim=50).dim == 50
    with pytest.raises(ValueError, match="unknown preset 'tpu'"):
        Word2VecConfig.preset("tpu")
    sentences, _ = planted_corpus(300)
    config = Word2VecConfig.preset("cpu", dim=8, min_count=1)
    a = train_word2vec(sentences, config, epochs=1, progress=False, device="cpu")
    b = train_word2vec(sentences, dim=8, min_count=1, epochs=1, progress=False, device="cpu")
    assert a.config["epochs"] == 1 and a.config["dim"] == 8 and config.epochs == 3
    np.testing.assert_array_equal(a.vectors, b.vectors)  # the config is only the defaults


def test_time_output_layers_times_both_and_restores_threads():
    threads = torch.get_num_threads()
    seconds = time_output_layers(50, batch_size=8, dim=4, negative=3, repeat=2, threads=1)
    assert set(seconds) == {"softmax", "negative"}
    assert all(0 < s < 10 for s in seconds.values())
    assert torch.get_num_threads() == threads
    with pytest.raises(ValueError, match="must all be >= 1"):
        time_output_layers(0)


# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------


def test_bad_input_gives_clear_errors():
    sentences = [["a", "b", "c"], ["a", "b"]]
    with pytest.raises(ValueError, match="leaves 0 word"):
        train_word2vec(sentences, min_count=100, progress=False)
    with pytest.raises(ValueError, match="unknown model 'glove'"):
        train_word2vec(sentences, model="glove", min_count=1, progress=False)
    with pytest.raises(ValueError, match="unknown objective 'nce'"):
        train_word2vec(sentences, objective="nce", min_count=1, progress=False)
    with pytest.raises(ValueError, match="window must be at least 1"):
        train_word2vec(sentences, window=0, min_count=1, progress=False)
    with pytest.raises(ValueError, match="workers must be at least 1"):
        train_word2vec(sentences, workers=0, min_count=1, progress=False)
    with pytest.raises(ValueError, match="min_count must be at least 1"):
        train_word2vec(sentences, min_count=0, progress=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_divergence_stops_with_a_clear_error(workers):
    sentences, _ = planted_corpus(300)
    with pytest.raises(FloatingPointError, match="diverged.*lower lr"):
        train_word2vec(
            sentences,
            dim=8,
            min_count=1,
            epochs=3,
            lr=1e6,
            progress=False,
            device="cpu",
            workers=workers,
        )
