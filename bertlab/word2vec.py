"""word2vec (Mikolov et al., 2013): skip-gram and CBOW, with three output layers.

Both models have two matrices. ``W`` (V, D) holds a vector per word *as an input*: multiplying a
one-hot vector by ``W`` just picks a row. ``W'`` holds a vector per word *as an output*: the
scores of every word are ``W' h``, and a softmax turns them into a distribution.

- **skip-gram**: the input is one word (the centre), ``h = W[centre]``, and each word of its
  window (a context word) should get a high probability.
- **CBOW** ("continuous bag of words"): the input is the window, ``h`` = the mean of ``W`` over the
  context words, and the centre word should get a high probability.

The output layer ("objective") is where the cost is:

- ``"softmax"``: ``p(o | h) = exp(W'_o . h) / sum_w exp(W'_w . h)`` -- every step touches all V
  rows of ``W'``;
- ``"negative"`` (negative sampling): one logistic regression that tells the true word from
  ``negative`` noise words drawn from the unigram distribution raised to 3/4;
- ``"hierarchical"`` (hierarchical softmax): the words are the leaves of a Huffman tree and
  ``p(o | h)`` is the product of left/right decisions ``sigma(+-W'_n . h)`` along the path to ``o``;
  here ``W'`` has one row per *inner node* (V - 1 of them), and frequent words have short paths.

Training follows the C tool: frequent-word subsampling, a dynamic window (each centre uses a
window drawn uniformly from 1..``window``), plain SGD whose learning rate falls linearly from
``lr`` to ~0.

For speed, every window of an epoch is built at once with NumPy (grouped by window size, so a
batch is a dense block), skip-gram is arranged as in the C tool (each context word predicts the
centre, so a centre's 2b context words share its output rows and a batch is one ``bmm``), and
updates for ~1,000 centres at a time are applied with hand-written gradients and ``index_add_``
(hogwild-style: the pairs of a batch do not see each other's updates; :func:`damp_factor` keeps
the most frequent rows from overshooting). ``benchmarks/word2vec.py`` compares with gensim.
"""

from __future__ import annotations

import heapq
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar

import numpy as np
import torch

from bertlab.embeddings import Embeddings
from bertlab.train import Presets, pick_device, torch_threads
from bertlab.vocab import Vocab

MODELS = ("skipgram", "cbow")
OBJECTIVES = ("negative", "hierarchical", "softmax")


# --------------------------------------------------------------------------------------------------
# Huffman tree for hierarchical softmax
# --------------------------------------------------------------------------------------------------


@dataclass
class HuffmanTree:
    """A binary Huffman code over ``V`` words.

    ``codes[w]`` is the bit string of word ``w`` (root first), ``points[w]`` the inner nodes on its
    path (ids ``0..V-2``; the root is ``V-2``). ``code_array``/``point_array`` are the same padded
    to the longest code, ``lengths`` the code lengths: (V, L), (V, L), (V,).
    """

    codes: list[np.ndarray]
    points: list[np.ndarray]
    code_array: np.ndarray = field(repr=False)
    point_array: np.ndarray = field(repr=False)
    lengths: np.ndarray = field(repr=False)

    @property
    def mask(self) -> np.ndarray:
        """(V, L) bool: True on the real part of each padded path, False on the padding."""
        return np.arange(self.code_array.shape[1]) < self.lengths[:, None]

    def expected_length(self, counts) -> float:
        """Average code length, weighted by ``counts``."""
        counts = np.asarray(counts, dtype=np.float64)
        return float((counts * self.lengths).sum() / counts.sum())


def huffman_tree(counts) -> HuffmanTree:
    """The Huffman tree of ``counts`` (V >= 2), built as the C tool does: two sorted queues (the
    leaves by increasing count, and the merged nodes, which are created in increasing order), so
    each merge takes the two smallest fronts in O(1)."""
    counts = np.asarray(counts, dtype=np.int64)
    V = len(counts)
    if V < 2:
        raise ValueError(f"a Huffman tree needs at least 2 words, got {V}.")
    leaves = np.argsort(counts, kind="stable").tolist()  # leaf ids, increasing count
    weight = counts.tolist() + [0] * (V - 1)  # nodes 0..V-1 are leaves, V..2V-2 inner nodes
    parent = [0] * (2 * V - 1)
    bit = [0] * (2 * V - 1)
    li, ni = 0, V  # fronts of the leaf queue and the inner-node queue
    for new in range(V, 2 * V - 1):
        pair = []
        for _ in range(2):
            if li < V and (ni >= new or weight[leaves[li]] <= weight[ni]):
                pair.append(leaves[li])
                li += 1
            else:
                pair.append(ni)
                ni += 1
        weight[new] = weight[pair[0]] + weight[pair[1]]
        parent[pair[0]] = parent[pair[1]] = new
        bit[pair[1]] = 1  # the larger child is the "1" branch
    # top-down: a node's path is its parent's path plus the parent
    root = 2 * V - 2
    code_of: list[list[int]] = [[] for _ in range(2 * V - 1)]
    path_of: list[list[int]] = [[] for _ in range(2 * V - 1)]
    for node in range(root - 1, -1, -1):
        p = parent[node]
        code_of[node] = code_of[p] + [bit[node]]
        path_of[node] = path_of[p] + [p - V]
    codes = [np.array(code_of[w], dtype=np.int64) for w in range(V)]
    points = [np.array(path_of[w], dtype=np.int64) for w in range(V)]
    lengths = np.array([len(c) for c in codes], dtype=np.int64)
    L = int(lengths.max())
    code_array = np.zeros((V, L), dtype=np.int64)
    point_array = np.zeros((V, L), dtype=np.int64)
    for w in range(V):
        code_array[w, : lengths[w]] = codes[w]
        point_array[w, : lengths[w]] = points[w]
    return HuffmanTree(codes, points, code_array, point_array, lengths)


def huffman_lengths_reference(counts) -> np.ndarray:
    """Code lengths of an optimal prefix code, by the textbook heap algorithm (for checking)."""
    heap = [(int(c), i, [i]) for i, c in enumerate(counts)]
    heapq.heapify(heap)
    depth = np.zeros(len(heap), dtype=np.int64)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, a = heapq.heappop(heap)
        c2, _, b = heapq.heappop(heap)
        depth[a + b] += 1
        heapq.heappush(heap, (c1 + c2, tie, a + b))
        tie += 1
    return depth


# --------------------------------------------------------------------------------------------------
# The three output layers: loss and gradients by hand
# --------------------------------------------------------------------------------------------------


def logistic_grads(h, U, labels, mask=None, in_scale=None, out_scale=None, with_loss=True):
    """Negative sampling and hierarchical softmax are both sums of binary logistic losses.

    ``h`` (B, D) input vectors, or (B, C, D): C inputs that share the same outputs (skip-gram's
    context words of one centre); ``U`` (B, K, D) output vectors; ``labels`` (B, K) in {0, 1};
    ``mask`` (B, K) or (B, C, K), 1 where a term counts.
    Loss ``-sum mask * log sigma((2y - 1) U.h)``.
    Returns ``(loss, dh, dU)``: the summed loss and its gradients, shaped like ``h`` and ``U``.
    With C inputs per row the scores are a (C, D) x (D, K) matrix product per row, so the whole
    batch is one ``bmm`` rather than B*C*K separate dot products.
    ``in_scale`` (B, C) and ``out_scale`` (B, K), if given, scale each input's ``dh`` and each
    output's ``dU`` (training damps frequent rows with them, see :func:`damp_factor`); they are
    applied to the small (B, C, K) score gradient, before the products that build ``dh``, ``dU``.
    ``with_loss=False`` skips the loss (returned as 0.0): training needs it only now and then.
    """
    H = h.unsqueeze(1) if h.dim() == 2 else h  # (B, C, D)
    s = torch.bmm(H, U.transpose(1, 2))  # (B, C, K) scores
    y = labels.unsqueeze(1)  # (B, 1, K)
    if mask is not None and mask.dim() == 2:
        mask = mask.unsqueeze(1)
    g = torch.sigmoid(s) - y  # d loss / d s
    if mask is not None:
        g = g * mask
    loss = 0.0
    if with_loss:
        terms = torch.nn.functional.logsigmoid((2 * y - 1) * s)
        loss = -(terms * mask).sum() if mask is not None else -terms.sum()
    g_in = g if in_scale is None else g * in_scale.view(H.shape[0], H.shape[1], 1)
    g_out = g if out_scale is None else g * out_scale.unsqueeze(1)
    dH = torch.bmm(g_in, U)  # (B, C, D)
    dU = torch.bmm(g_out.transpose(1, 2), H)  # (B, K, D)
    return loss, dH.view(h.shape), dU


def softmax_grads(h, W_out, target):
    """The full softmax: ``h`` (B, D), ``W_out`` (V, D), ``target`` (B,) word ids.
    Loss ``-sum log softmax(h W_out^T)[target]``. Returns ``(loss, dh, dW_out)``: (B, D), (V, D)."""
    logits = h @ W_out.T  # (B, V): the cost is here -- every word, every step
    logp = torch.log_softmax(logits, dim=1)
    loss = -logp.gather(1, target.unsqueeze(1)).sum()
    g = logp.exp()  # d loss / d logits = p - onehot(target)
    g[torch.arange(len(target), device=g.device), target] -= 1
    return loss, g @ W_out, g.T @ h


def hs_log_probs(h, W_out, tree: HuffmanTree):
    """log p(w | h) for every word under hierarchical softmax: ``h`` (D,) -> (V,).
    p(w) = prod over the nodes n on w's path of sigma(s_n) for bit 0 and sigma(-s_n) for bit 1."""
    s = W_out @ h  # (V-1,) a score per inner node
    code = torch.as_tensor(tree.code_array, device=s.device)
    point = torch.as_tensor(tree.point_array, device=s.device)
    mask = torch.as_tensor(tree.mask, device=s.device)
    terms = torch.nn.functional.logsigmoid((1 - 2 * code) * s[point])  # (V, L)
    return (terms * mask).sum(1)


def time_output_layers(
    vocab_size: int,
    batch_size: int = 1024,
    dim: int = 100,
    negative: int = 5,
    repeat: int = 5,
    seed: int = 0,
    threads: int | None = 1,
) -> dict[str, float]:
    """Seconds for one gradient computation of each of two output layers on the same batch:
    ``{"softmax": ..., "negative": ...}``, the best of ``repeat`` runs each.

    The batch is random: ``batch_size`` input vectors ``h`` (B, D), a ``W'`` of (V, D) and a
    target word per row. The full softmax scores all ``vocab_size`` words
    (:func:`softmax_grads`); negative sampling gathers the target's and ``negative`` noise rows
    of ``W'`` and scores only those (:func:`logistic_grads`). ``threads``: torch threads while
    timing (None: leave torch's setting).
    """
    if min(vocab_size, batch_size, dim, negative, repeat) < 1:
        raise ValueError("vocab_size, batch_size, dim, negative and repeat must all be >= 1.")
    B, V, K = batch_size, vocab_size, 1 + negative
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(B, dim, generator=gen) * 0.1  # (B, D)
    W_out = torch.randn(V, dim, generator=gen) * 0.1  # (V, D)
    target = torch.randint(0, V, (B,), generator=gen)  # (B,)
    out_ids = torch.randint(0, V, (B, K), generator=gen)  # (B, K): the true word + negatives
    labels = torch.zeros(B, K)
    labels[:, 0] = 1

    def best_of(fn) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    with torch_threads(threads):
        return {
            "softmax": best_of(lambda: softmax_grads(h, W_out, target)),
            "negative": best_of(lambda: logistic_grads(h, W_out[out_ids], labels)),
        }


# --------------------------------------------------------------------------------------------------
# Training pairs, vectorized over the corpus
# --------------------------------------------------------------------------------------------------


def noise_table(counts, power: float = 0.75, size: int = 1 << 22) -> np.ndarray:
    """A table of word ids in which word ``w`` fills a share ``count^0.75 / Z``; drawing uniform
    positions draws negatives from the smoothed unigram distribution (the C tool's trick)."""
    p = np.asarray(counts, dtype=np.float64) ** power
    cum = np.cumsum(p / p.sum())
    return np.searchsorted(cum, (np.arange(size) + 0.5) / size).astype(np.int64)


def window_groups(ids, sent, window: int, rng) -> dict[int, tuple[np.ndarray, ...]]:
    """Every position of the (subsampled) corpus with its dynamic window, grouped by window size.

    ``ids`` (N,), ``sent`` (N,) the sentence of each position (non-decreasing). Each centre
    draws its window ``b`` uniformly from 1..``window`` (the C tool's "dynamic window", which
    weights near words more). Returns ``{b: (pos, ctx, mask)}``: ``pos`` (n_b,) the centres
    with window b (in text order, those with at least one context word), ``ctx`` (n_b, 2b) the
    ids at offsets ``-b..-1, 1..b`` (0 where padded) and ``mask`` (n_b, 2b) bool, False where
    the offset leaves the sentence. Grouping by ``b`` makes a batch a dense (n, 2b) block.
    """
    N = len(ids)
    b = rng.integers(1, window + 1, size=N)  # (N,) effective window of each centre
    first = np.searchsorted(sent, sent, side="left")  # (N,) where each position's sentence starts
    last = np.searchsorted(sent, sent, side="right") - 1  # ... and ends
    left, right = np.arange(N) - first, last - np.arange(N)  # room on each side
    groups = {}
    for w in range(1, window + 1):
        pos = np.nonzero((b == w) & (left + right > 0))[0]  # (n_b,) centres with some context
        offsets = np.concatenate([np.arange(-w, 0), np.arange(1, w + 1)])  # (2b,)
        mask = (offsets >= -left[pos, None]) & (offsets <= right[pos, None])  # (n_b, 2b)
        cpos = np.clip(pos[:, None] + offsets, 0, N - 1)
        groups[w] = (pos, np.where(mask, ids[cpos], 0), mask)
    return groups


# --------------------------------------------------------------------------------------------------
# The result: W and W' kept
# --------------------------------------------------------------------------------------------------


class Word2Vec(Embeddings):
    """Trained word2vec vectors. As :class:`Embeddings` it is ``W`` (the input vectors, what the
    C tool and gensim save); ``W_out`` is ``W'`` ((V, D), or (V - 1, D) inner-node vectors for
    hierarchical softmax). :meth:`embeddings` gives ``"in"``, ``"out"`` or ``"avg"``."""

    def __init__(self, W_in, W_out, vocab: Vocab, config: dict, seconds: float, losses, tree=None):
        super().__init__(W_in, vocab.itos)
        self.W_in = self.vectors  # (V, D)
        self.W_out = np.asarray(W_out, dtype=np.float32)
        self.vocab = vocab
        self.config = config
        self.seconds = seconds  # wall-clock training time
        self.losses = losses  # [(fraction of training done, mean loss per target)]
        if tree is None and config["objective"] == "hierarchical":
            tree = huffman_tree(vocab.counts)
        self.tree = tree  # the Huffman tree of hierarchical softmax, else None

    def __repr__(self) -> str:
        c = self.config
        return (
            f"Word2Vec({c['model']}, {c['objective']}: {len(self):,} words x {self.dim}, "
            f"trained in {self.seconds:.1f} s)"
        )

    def embeddings(self, which: str = "in") -> Embeddings:
        """``"in"``: W; ``"out"``: W'; ``"avg"``: (W + W') / 2. Hierarchical softmax has no
        per-word W', so only ``"in"`` exists for it."""
        if which == "in":
            return Embeddings(self.W_in, self.words)
        if which not in ("out", "avg"):
            raise ValueError(f"which must be 'in', 'out' or 'avg', not {which!r}.")
        if self.W_out.shape[0] != len(self):
            raise ValueError(
                "hierarchical softmax's W' has a row per inner node of the Huffman tree, not per "
                "word; only which='in' exists for it."
            )
        vectors = self.W_out if which == "out" else (self.W_in + self.W_out) / 2
        return Embeddings(vectors, self.words)


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

DAMP_FREE = 4


def damp_factor(rows, n: int):
    """How much to scale each of a batch's updates, given the row each one goes to: (R,) -> (R,).

    The C tool applies a word's updates one after another, each seeing the last; applied at
    once, the ``c`` updates of a very frequent word (``the`` as a noise word is drawn hundreds
    of times per batch) all push the same way and overshoot, and training diverges. A row seen
    up to ``DAMP_FREE`` times is left alone; above that its updates are scaled by
    ``sqrt(DAMP_FREE / c)``, so their sum grows like ``sqrt(c)`` rather than ``c``.
    """
    c = torch.bincount(rows, minlength=n)[rows].float()  # (R,) occurrences of each row
    return (DAMP_FREE / c).clamp(max=1).sqrt()


@dataclass
class Word2VecConfig(Presets):
    """word2vec's hyperparameters; the defaults are the C tool's.

    ``model`` "skipgram" or "cbow"; ``objective`` "negative", "hierarchical" or "softmax";
    ``lr`` None takes the C tool's 0.025 (skip-gram) / 0.05 (CBOW), decayed linearly to
    ``lr * 1e-4``; ``sample`` is the subsampling threshold (0 turns it off); ``batch_size`` is
    the number of centre words per update (None: 1,024, or 64 for the full softmax).
    ``workers > 1`` runs that many threads on one shared pair of matrices (hogwild, like
    gensim's workers; not reproducible then). On CPU each thread's torch ops run on one core.
    """

    model: str = "skipgram"
    objective: str = "negative"
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float | None = None
    seed: int = 0
    batch_size: int | None = None
    workers: int = 1

    PRESETS: ClassVar[dict[str, dict]] = {
        "cpu": {"epochs": 3},  # the chapter's tables: three passes over WikiText-2
        "gpu": {"epochs": 5},  # the C tool's five passes
    }

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose 'skipgram' or 'cbow'.")
        if self.objective not in OBJECTIVES:
            raise ValueError(
                f"unknown objective {self.objective!r}; choose 'negative', 'hierarchical' or "
                f"'softmax'."
            )
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}.")
        for name in ("dim", "epochs", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.objective == "negative" and self.negative < 1:
            raise ValueError(
                f"negative must be at least 1 for negative sampling, got {self.negative}."
            )


def train_word2vec(
    sentences: Sequence[Sequence[str]],
    config: Word2VecConfig | None = None,
    device=None,
    progress: bool = True,
    **overrides,
) -> Word2Vec:
    """Train word2vec on ``sentences`` (lists of tokens) and return a :class:`Word2Vec`.

    ``config`` (default: ``Word2VecConfig()``, the C tool's settings) with any of its fields
    overridden by keyword, e.g. ``train_word2vec(sentences, model="cbow", epochs=3)``.

    As in the C tool, skip-gram predicts the centre word from each context word (the pairs are
    the same as "context from centre"), so all ``2b`` context words of a centre share its
    output rows: the centre and its ``negative`` noise words, or the centre's Huffman path.
    One centre's scores are then a (2b, D) x (D, K) product, and a batch is one ``bmm``.
    """
    c = replace(config or Word2VecConfig(), **overrides)
    model, objective, dim, window, negative = c.model, c.objective, c.dim, c.window, c.negative
    min_count, sample, epochs, seed, workers = c.min_count, c.sample, c.epochs, c.seed, c.workers
    sentences = sentences if isinstance(sentences, list) else list(sentences)
    vocab = Vocab.build(sentences, min_count=min_count, specials=())
    if len(vocab) < 2:
        raise ValueError(
            f"min_count={min_count} leaves {len(vocab)} word(s) in the vocabulary; word2vec needs "
            "at least 2. Lower min_count or give more text."
        )
    lr = (0.025 if model == "skipgram" else 0.05) if c.lr is None else c.lr
    batch_size = c.batch_size or (64 if objective == "softmax" else 1024)
    config = dict(model=model, objective=objective, dim=dim, window=window, negative=negative,
                  min_count=min_count, sample=sample, epochs=epochs, lr=lr, seed=seed,
                  batch_size=batch_size)  # fmt: skip
    device = pick_device(device)
    rng = np.random.default_rng(seed)
    gen = torch.Generator(device=device).manual_seed(seed)

    ids, starts = vocab.encode_corpus(sentences, drop_unknown=True)  # (N,), (S+1,)
    sent = np.repeat(np.arange(len(starts) - 1), np.diff(starts))  # (N,)
    keep_p = vocab.keep_probs(sample)
    V, D = len(vocab), dim
    n_out = V - 1 if objective == "hierarchical" else V
    W = ((torch.rand(V, D, generator=gen, device=device) - 0.5) / D).contiguous()  # C's init
    W_out = torch.zeros(n_out, D, device=device)
    if objective == "negative":
        table = torch.as_tensor(noise_table(vocab.counts), device=device)
        labels = torch.zeros(1, 1 + negative, device=device)
        labels[0, 0] = 1  # the centre is the true word, then the noise words
    if objective == "hierarchical":
        tree = huffman_tree(vocab.counts)
        codes = torch.as_tensor(tree.code_array, device=device, dtype=torch.float32)
        points = torch.as_tensor(tree.point_array, device=device)
        hs_mask = torch.as_tensor(tree.mask, device=device, dtype=torch.float32)

    def step(centre, ctx, cmask, alpha, g, with_loss) -> tuple[float, float]:
        """One SGD update for ``n`` centres: ``centre`` (n,), ``ctx`` (n, 2b) context ids,
        ``cmask`` (n, 2b) 1 where a context word exists. Returns (summed loss, its term count);
        the logistic objectives compute the loss only ``with_loss``."""
        n, C = ctx.shape
        rows = ctx.reshape(-1)  # (n*2b,) the W rows this batch reads and updates
        H = W.index_select(0, rows).view(n, C, D)  # W[one-hot] is a row lookup
        # each update's scale: -lr, damped for frequent rows, 0 on padding. Scaling the small
        # score gradient is cheaper than scaling the (rows, D) updates (or index_add_'s alpha)
        f_in = damp_factor(rows, V).view(n, C) * cmask * -alpha  # (n, 2b)
        h = H if model == "skipgram" else (H * cmask.unsqueeze(2)).sum(1) / cmask.sum(1, True)
        if objective == "softmax":
            if model == "skipgram":  # one prediction of the centre per context word
                sel = cmask.reshape(-1).bool()
                h, tgt = h.reshape(-1, D)[sel], centre.repeat_interleave(C)[sel]
            else:
                tgt = centre
            loss, dh, dW_out = softmax_grads(h, W_out, tgt)
            W_out.add_(dW_out, alpha=-alpha)
            if model == "skipgram":
                full = torch.zeros(n * C, D, device=device)  # back to one row per slot
                full[sel] = dh
                dh = full.view(n, C, D) * f_in.unsqueeze(2)
            terms = len(tgt)
        else:
            if objective == "negative":
                draw = torch.randint(0, len(table), (n, negative), generator=g, device=device)
                out_ids = torch.cat([centre.unsqueeze(1), table[draw]], 1)  # (n, 1 + neg)
                y = labels.expand(n, -1)
                omask = (out_ids != centre.unsqueeze(1)).float()  # the C tool skips noise == word
                omask[:, 0] = 1
            else:
                out_ids, y, omask = points[centre], 1 - codes[centre], hs_mask[centre]  # (n, L)
            K = out_ids.shape[1]
            flat_out = out_ids.reshape(-1)
            U = W_out.index_select(0, flat_out).view(n, K, D)
            f_out = damp_factor(flat_out, n_out).view(n, K) * -alpha
            mask = cmask.unsqueeze(2) * omask.unsqueeze(1) if model == "skipgram" else omask
            in_scale = f_in if model == "skipgram" else None
            loss, dh, dU = logistic_grads(h, U, y, mask, in_scale, f_out, with_loss)
            W_out.index_add_(0, flat_out, dU.view(-1, D))
            terms = float(mask.sum()) if with_loss else 0.0
        if model == "cbow":  # the C tool adds the whole error to every context word
            dh = dh.unsqueeze(1) * f_in.unsqueeze(2)  # (n, 2b, D)
        W.index_add_(0, rows, dh.reshape(-1, D))
        return float(loss), terms

    from tqdm.auto import tqdm

    total_words = epochs * len(ids)
    bar = tqdm(total=total_words, unit="word", unit_scale=True, disable=not progress,
               desc=f"{model}/{objective}", mininterval=1.0)  # fmt: skip
    losses = []
    gens = [gen] + [torch.Generator(device=device).manual_seed(seed + t) for t in range(1, workers)]

    failed: list[BaseException] = []  # the first error of any thread; the others then stop

    def work(my_batches, g, report, groups, done_before, scale):
        """Train on ``my_batches``; the reporting thread samples the loss every 10th batch."""
        try:
            run_batches(my_batches, g, report, groups, done_before, scale)
        except BaseException as err:  # re-raised in the main thread
            failed.append(err)

    def run_batches(my_batches, g, report, groups, done_before, scale):
        loss_sum, loss_n = 0.0, 0.0
        for i, (b, start, end, last) in enumerate(my_batches):
            if failed:
                return
            centre, ctx, cmask = (t[start:end] for t in groups[b])
            words_done = done_before + last * scale
            alpha = lr * max(1e-4, 1 - words_done / total_words)
            loss, n = step(centre, ctx, cmask, alpha, g, report and i % 10 == 0)
            if not math.isfinite(loss):
                raise FloatingPointError(
                    f"word2vec diverged (loss {loss}) at {words_done / total_words:.0%} of "
                    f"training: lower lr (now {lr}) or batch_size (now {batch_size})."
                )
            loss_sum, loss_n = loss_sum + loss, loss_n + n
            if report and loss_n and ((i + 1) % 50 == 0 or i == len(my_batches) - 1):
                losses.append((words_done / total_words, loss_sum / max(loss_n, 1)))
                loss_sum, loss_n = 0.0, 0.0
            if report and i % 20 == 0:
                bar.update(int(words_done) - bar.n)  # redraws at most once a second

    t0 = time.perf_counter()
    # small ops: one thread each is faster, and far faster on a busy machine
    with torch_threads(1 if device.type == "cpu" else None):
        for epoch in range(epochs):
            keep = rng.random(len(ids)) < keep_p[ids]  # subsampling, fresh each epoch
            e_ids, e_sent = ids[keep], sent[keep]
            M = len(e_ids)
            groups, batches = {}, []
            chunk = batch_size * window  # ~batch_size centres of each window size per chunk
            bounds = np.arange(0, M + chunk, chunk)
            for b, (pos, ctx, mask) in window_groups(e_ids, e_sent, window, rng).items():
                groups[b] = tuple(
                    torch.as_tensor(a, device=device)
                    for a in (e_ids[pos], ctx, mask.astype(np.float32))
                )
                cut = np.searchsorted(pos, bounds)
                batches += [(k, b, s, e, pos[e - 1]) for k, (s, e) in
                            enumerate(zip(cut[:-1], cut[1:])) if e > s]  # fmt: skip
            batches = [x[1:] for x in sorted(batches)]  # chunk by chunk, through the text
            done_before = epoch * len(ids)
            scale = len(ids) / max(M, 1)  # count progress in corpus words, subsampled ones included
            args = (groups, done_before, scale)
            if workers == 1:
                work(batches, gens[0], True, *args)
            else:  # hogwild: each thread takes every workers-th batch, all update W, W' at once
                pool = [
                    threading.Thread(
                        target=work, args=(batches[t::workers], gens[t], t == 0, *args)
                    )
                    for t in range(workers)
                ]
                for th in pool:
                    th.start()
                for th in pool:
                    th.join()
            if failed:
                bar.close()
                raise failed[0]
            bar.update((epoch + 1) * len(ids) - bar.n)
        bar.close()
    seconds = time.perf_counter() - t0
    return Word2Vec(W.cpu().numpy(), W_out.cpu().numpy(), vocab, config, seconds, losses,
                    tree if objective == "hierarchical" else None)  # fmt: skip
