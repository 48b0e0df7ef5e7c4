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
``lr`` to ~0. For speed the training pairs of an epoch are built at once with NumPy, and updates
are applied in batches of thousands of pairs with hand-written gradients and ``index_add_``
(hogwild-style: pairs in one batch do not see each other's updates).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from bertlab.embeddings import Embeddings
from bertlab.train import pick_device
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


def logistic_grads(h, U, labels, mask=None, out_scale=None):
    """Negative sampling and hierarchical softmax are both sums of binary logistic losses.

    ``h`` (B, D) input vectors, ``U`` (B, K, D) output vectors, ``labels`` (B, K) in {0, 1},
    ``mask`` (B, K) 1 where a term counts. Loss ``-sum mask * log sigma((2y - 1) U.h)``.
    Returns ``(loss, dh, dU)``: the summed loss and its gradients, (B, D) and (B, K, D).
    ``out_scale`` (B, K), if given, scales each term's ``dU`` (training uses it, see ``_damp``).
    """
    s = torch.bmm(U, h.unsqueeze(2)).squeeze(2)  # (B, K)
    f = torch.sigmoid(s)
    g = f - labels  # d loss / d s
    if mask is not None:
        g = g * mask
    sign = 2 * labels - 1
    terms = torch.nn.functional.logsigmoid(sign * s)
    loss = -(terms * mask).sum() if mask is not None else -terms.sum()
    dh = torch.bmm(g.unsqueeze(1), U).squeeze(1)  # (B, D)
    if out_scale is not None:
        g = g * out_scale
    dU = g.unsqueeze(2) * h.unsqueeze(1)  # (B, K, D)
    return loss, dh, dU


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
    mask = torch.arange(code.shape[1], device=s.device) < torch.as_tensor(
        tree.lengths, device=s.device
    ).unsqueeze(1)
    terms = torch.nn.functional.logsigmoid((1 - 2 * code) * s[point])  # (V, L)
    return (terms * mask).sum(1)


# --------------------------------------------------------------------------------------------------
# Training pairs, vectorized over the corpus
# --------------------------------------------------------------------------------------------------


def noise_table(counts, power: float = 0.75, size: int = 1 << 22) -> np.ndarray:
    """A table of word ids in which word ``w`` fills a share ``count^0.75 / Z``; drawing uniform
    positions draws negatives from the smoothed unigram distribution (the C tool's trick)."""
    p = np.asarray(counts, dtype=np.float64) ** power
    cum = np.cumsum(p / p.sum())
    return np.searchsorted(cum, (np.arange(size) + 0.5) / size).astype(np.int64)


def context_windows(ids, sent, window: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """For every position of the (subsampled) corpus, its context positions under a dynamic window.

    ``ids`` (N,), ``sent`` (N,) the sentence of each position. Returns ``ctx`` (N, 2*window), the
    ids of the context words (0 where padded), and ``mask`` (N, 2*window) bool: position ``i+d`` is
    a context of ``i`` when ``1 <= |d| <= b_i`` (``b_i`` uniform in 1..window) and it is in the
    same sentence.
    """
    N = len(ids)
    offsets = np.concatenate([np.arange(-window, 0), np.arange(1, window + 1)])  # (2W,)
    b = rng.integers(1, window + 1, size=N)  # (N,) effective window of each centre
    pos = np.arange(N)[:, None] + offsets  # (N, 2W)
    inside = (pos >= 0) & (pos < N)
    pos_c = np.clip(pos, 0, N - 1)
    mask = inside & (np.abs(offsets) <= b[:, None]) & (sent[pos_c] == sent[:, None])
    return np.where(mask, ids[pos_c], 0), mask


# --------------------------------------------------------------------------------------------------
# The result: W and W' kept
# --------------------------------------------------------------------------------------------------


class Word2Vec(Embeddings):
    """Trained word2vec vectors. As :class:`Embeddings` it is ``W`` (the input vectors, what the
    C tool and gensim save); ``W_out`` is ``W'`` ((V, D), or (V - 1, D) inner-node vectors for
    hierarchical softmax). :meth:`embeddings` gives ``"in"``, ``"out"`` or ``"avg"``."""

    def __init__(self, W_in, W_out, vocab: Vocab, config: dict, seconds: float, losses):
        super().__init__(W_in, vocab.itos)
        self.W_in = self.vectors  # (V, D)
        self.W_out = np.asarray(W_out, dtype=np.float32)
        self.vocab = vocab
        self.config = config
        self.seconds = seconds  # wall-clock training time
        self.losses = losses  # [(fraction of training done, mean loss per target)]
        self.tree = huffman_tree(vocab.counts) if config["objective"] == "hierarchical" else None

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

DAMP = "sqrt"


def _damp(update, rows, n):
    """Scale the updates of a row that occurs ``c`` times in a batch by ``1 / sqrt(c)``.

    Sequential SGD applies a frequent word's ``c`` updates one after another, each seeing the
    last; summed in one go they overshoot and training diverges (try ``DAMP = "none"``). Dividing
    by ``c`` (a mean) is safe but slows frequent words down; ``sqrt(c)`` is in between."""
    return update * _damp_factor(rows, n).unsqueeze(1)


def _damp_factor(rows, n):
    """``1 / sqrt(c)`` for each entry of ``rows``, ``c`` how often its row occurs in ``rows``."""
    if DAMP == "none":
        return torch.ones(rows.shape, device=rows.device)
    c = torch.bincount(rows, minlength=n)[rows].float()
    return c.rsqrt() if DAMP == "sqrt" else 1 / c


DEFAULT_BATCH = {"negative": 2048, "hierarchical": 2048, "softmax": 256}


def train(
    sentences: Sequence[Sequence[str]],
    model: str = "skipgram",
    objective: str = "negative",
    dim: int = 100,
    window: int = 5,
    negative: int = 5,
    min_count: int = 5,
    sample: float = 1e-3,
    epochs: int = 5,
    lr: float | None = None,
    seed: int = 0,
    device=None,
    batch_size: int | None = None,
    progress: bool = True,
    workers: int = 1,
) -> Word2Vec:
    """Train word2vec on ``sentences`` (lists of tokens) and return a :class:`Word2Vec`.

    ``model`` "skipgram" or "cbow"; ``objective`` "negative", "hierarchical" or "softmax";
    ``lr`` defaults to the C tool's 0.025 (skip-gram) / 0.05 (CBOW), decayed linearly to
    ``lr * 1e-4``; ``sample`` is the subsampling threshold (0 turns it off); ``batch_size`` is
    the number of pairs (skip-gram) or windows (CBOW) per update. ``workers > 1`` runs that
    many threads on one shared pair of matrices (hogwild, like gensim's workers; not
    reproducible then). On CPU each thread's torch ops run on one core.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose 'skipgram' or 'cbow'.")
    if objective not in OBJECTIVES:
        raise ValueError(
            f"unknown objective {objective!r}; choose 'negative', 'hierarchical' or 'softmax'."
        )
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}.")
    for name, value in (("dim", dim), ("epochs", epochs), ("workers", workers)):
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}.")
    if objective == "negative" and negative < 1:
        raise ValueError(f"negative must be at least 1 for negative sampling, got {negative}.")
    sentences = sentences if isinstance(sentences, list) else list(sentences)
    vocab = Vocab.build(sentences, min_count=min_count, specials=())
    if len(vocab) < 2:
        raise ValueError(
            f"min_count={min_count} leaves {len(vocab)} word(s) in the vocabulary; word2vec needs "
            "at least 2. Lower min_count or give more text."
        )
    lr = (0.025 if model == "skipgram" else 0.05) if lr is None else lr
    batch_size = batch_size or DEFAULT_BATCH[objective]
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
    if objective == "hierarchical":
        tree = huffman_tree(vocab.counts)
        codes = torch.as_tensor(tree.code_array, device=device, dtype=torch.float32)
        points = torch.as_tensor(tree.point_array, device=device)
        hs_mask = (torch.arange(codes.shape[1]) < torch.as_tensor(tree.lengths)[:, None]).float()
        hs_mask = hs_mask.to(device)

    def step(inputs, targets, in_mask, start, end, alpha, g) -> float:
        """One SGD update on the pairs start:end; returns the mean loss per output term."""
        tgt = targets[start:end]  # (B,)
        if model == "skipgram":
            centre = inputs[start:end]
            h = W[centre]  # (B, D): W[one-hot] is a row lookup
        else:
            cw, cm = inputs[start:end], in_mask[start:end]  # (B, 2W)
            cnt = cm.sum(1, keepdim=True)
            h = (W[cw] * cm.unsqueeze(2)).sum(1) / cnt  # (B, D) mean of the context
        if objective == "softmax":
            loss, dh, dW_out = softmax_grads(h, W_out, tgt)
            W_out.add_(dW_out, alpha=-alpha)
            k = 1
        else:
            if objective == "negative":
                draw = torch.randint(
                    0, len(table), (len(tgt), negative), generator=g, device=device
                )
                out_ids = torch.cat([tgt.unsqueeze(1), table[draw]], 1)  # (B, 1 + neg)
                labels = torch.zeros(out_ids.shape, device=device)
                labels[:, 0] = 1
                m = None
                k = out_ids.shape[1]
            else:
                out_ids, labels, m = points[tgt], 1 - codes[tgt], hs_mask[tgt]  # (B, L)
                k = float(m.sum()) / len(tgt)
            flat = out_ids.reshape(-1)
            scale_out = _damp_factor(flat, n_out).view(out_ids.shape)
            loss, dh, dU = logistic_grads(h, W_out[out_ids], labels, m, scale_out)
            W_out.index_add_(0, flat, dU.reshape(-1, D), alpha=-alpha)
        if model == "skipgram":
            W.index_add_(0, centre, _damp(dh, centre, V), alpha=-alpha)
        else:  # the C tool adds the whole error to every context word
            sel = cm.bool()
            upd = dh.unsqueeze(1).expand(-1, cw.shape[1], -1)[sel]
            flat = cw[sel]
            W.index_add_(0, flat, _damp(upd, flat, V), alpha=-alpha)
        return float(loss) / len(tgt) / k

    from tqdm.auto import tqdm

    total_words = epochs * len(ids)
    bar = tqdm(total=total_words, unit="word", unit_scale=True, disable=not progress,
               desc=f"{model}/{objective}")  # fmt: skip
    losses = []
    gens = [gen] + [torch.Generator(device=device).manual_seed(seed + t) for t in range(1, workers)]
    threads = torch.get_num_threads()
    if device.type == "cpu":  # small ops: one thread is faster, and far faster on a busy machine
        torch.set_num_threads(1)

    def work(my_batches, g, report, data, word_of, done_before, scale):
        inputs, targets, in_mask = data
        loss_sum, loss_n = 0.0, 0
        for i, (start, end) in enumerate(my_batches):
            words_done = done_before + word_of[end - 1] * scale
            alpha = lr * max(1e-4, 1 - words_done / total_words)
            loss_sum += step(inputs, targets, in_mask, start, end, alpha, g)
            loss_n += 1
            if report and (loss_n == 50 or i == len(my_batches) - 1):
                losses.append((words_done / total_words, loss_sum / loss_n))
                loss_sum, loss_n = 0.0, 0
            if report and i % 20 == 0:
                bar.n = int(words_done)
                bar.refresh()

    t0 = time.perf_counter()
    try:
        for epoch in range(epochs):
            keep = rng.random(len(ids)) < keep_p[ids]  # subsampling, fresh each epoch
            e_ids, e_sent = ids[keep], sent[keep]
            ctx, mask = context_windows(e_ids, e_sent, window, rng)  # (M, 2W)
            if model == "skipgram":  # one (centre, context) pair per valid cell, in text order
                rows, cols = np.nonzero(mask)
                inputs = torch.as_tensor(e_ids[rows], device=device)  # (P,)
                targets = torch.as_tensor(ctx[rows, cols], device=device)  # (P,)
                word_of = rows  # the corpus position each pair belongs to
                in_mask = None
            else:  # one (window, centre) example per position with some context
                has = mask.any(1)
                inputs = torch.as_tensor(ctx[has], device=device)  # (P, 2W)
                in_mask = torch.as_tensor(mask[has], device=device, dtype=torch.float32)
                targets = torch.as_tensor(e_ids[has], device=device)  # (P,)
                word_of = np.nonzero(has)[0]
            P, M = len(targets), len(e_ids)
            done_before = epoch * len(ids)
            scale = len(ids) / max(M, 1)  # count progress in corpus words, subsampled ones included
            batches = [(st, min(st + batch_size, P)) for st in range(0, P, batch_size)]
            args = ((inputs, targets, in_mask), word_of, done_before, scale)

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
            bar.n = (epoch + 1) * len(ids)
            bar.refresh()
        bar.close()
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - t0
    return Word2Vec(W.cpu().numpy(), W_out.cpu().numpy(), vocab, config, seconds, losses)
