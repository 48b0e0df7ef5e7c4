"""GloVe (Pennington, Socher & Manning, 2014): word vectors fitted to global co-occurrence counts.

Two steps, each a function here:

1. :func:`cooccurrence` counts, over the whole corpus, how often word ``j`` appears within
   ``window`` words of word ``i``, each occurrence weighted ``1/d`` by its distance ``d``. The
   result ``X`` is a sparse ``(V, V)`` matrix, symmetric for a symmetric window. It is built with
   array operations only: for each offset ``d`` the pairs ``(ids[:-d], ids[d:])`` that lie in one
   sentence, summed by ``scipy.sparse`` (duplicates add up when converting to CSR).
   :func:`probability_ratios` reads the paper's motivating table off it.

2. :func:`fit` finds word vectors ``w_i``, context vectors ``w~_j`` and biases ``b_i``, ``b~_j``
   minimising the weighted least-squares objective over the nonzero entries of ``X``:

       J = sum_{i,j: X_ij > 0}  f(X_ij) * (w_i . w~_j + b_i + b~_j - log X_ij)^2
       f(x) = min(1, (x / x_max)^alpha),   x_max = 100, alpha = 3/4

   with AdaGrad (learning rate 0.05) on mini-batches of shuffled nonzero entries. A mini-batch
   is itself a sparse matrix, so the predictions at its entries are a *sampled* product
   ``W W~^T`` and the gradients are sparse x dense products (:meth:`GloVe.gradients`): batched
   torch operations, no per-entry Python. ``X`` is symmetric, so ``W`` and ``W~`` learn the same
   thing from different random starts; the paper's final vectors are their sum ``W + W~``.

:func:`train_glove` runs both on tokenized sentences and returns the vectors as ``Embeddings``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from bertlab.embeddings import Embeddings
from bertlab.train import History, Presets, pick_device, torch_threads
from bertlab.vocab import Vocab

# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass
class GloVeConfig(Presets):
    """GloVe's hyperparameters. The defaults are the paper's (window 10 with 1/d weighting,
    x_max 100, alpha 3/4, AdaGrad at 0.05); the number of epochs and the mini-batch size are
    ours, chosen for WikiText-2 on two CPU cores."""

    dim: int = 100  # vector size D
    window: int = 10  # context words on each side
    min_count: int = 5  # rarer words get no vector
    x_max: float = 100.0  # f(x) = min(1, (x / x_max)^alpha)
    alpha: float = 0.75
    lr: float = 0.05  # AdaGrad's learning rate
    epochs: int = 20  # passes over the nonzero entries of X
    batch_size: int = 131072  # nonzero entries per AdaGrad step
    distance_weighting: bool = True  # count a pair at distance d as 1/d (else 1)
    seed: int = 0

    def __post_init__(self):
        for name in ("dim", "window", "min_count", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.x_max <= 0 or self.lr <= 0:
            raise ValueError(f"x_max and lr must be positive, got {self.x_max} and {self.lr}.")

    PRESETS: ClassVar[dict[str, dict]] = {
        "cpu": {},  # WikiText-2 in about a minute on two CPU cores
        "gpu": {"epochs": 50},  # the paper's number of passes for vectors under 300 dimensions
    }


# --------------------------------------------------------------------------------------------------
# 1. Co-occurrence counts
# --------------------------------------------------------------------------------------------------


def cooccurrence(
    ids: np.ndarray,
    starts: np.ndarray,
    vocab_size: int,
    window: int = 10,
    distance_weighting: bool = True,
) -> sp.csr_matrix:
    """The symmetric co-occurrence matrix ``X`` (V, V) of a corpus: float64, CSR.

    ``ids`` (N,) are the corpus' word ids, one sentence after another, and ``starts`` (S + 1,)
    the offsets where sentences begin (what :meth:`bertlab.vocab.Vocab.encode_corpus` returns);
    windows stop at sentence boundaries. A pair of words ``d`` positions apart adds ``1/d`` to
    ``X[i, j]`` and to ``X[j, i]`` (1 without ``distance_weighting``).
    """
    ids, starts = np.asarray(ids), np.asarray(starts)
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must lie in [0, {vocab_size}); drop or map unknown words first.")
    if len(starts) < 1 or starts[0] != 0 or starts[-1] != len(ids):
        raise ValueError("starts must run from 0 to len(ids), one offset per sentence start.")
    sentence = np.repeat(np.arange(len(starts) - 1), np.diff(starts))  # (N,) sentence of each token
    rows, cols, weights = [], [], []
    for d in range(1, window + 1):
        same = sentence[:-d] == sentence[d:]  # (N - d,) both ends in one sentence
        rows.append(ids[:-d][same])  # the left word of each pair ...
        cols.append(ids[d:][same])  # ... and the word d positions to its right
        weights.append(np.full(int(same.sum()), 1.0 / d if distance_weighting else 1.0))
    rows, cols, weights = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
    # left-to-right counts; converting to CSR sums the duplicates
    right = sp.coo_matrix((weights, (rows, cols)), shape=(vocab_size, vocab_size)).tocsr()
    X = (right + right.T).tocsr()  # symmetric window: j right of i is i left of j
    X.sort_indices()
    return X


def weighting(x, x_max: float = 100.0, alpha: float = 0.75):
    """GloVe's weight of an entry with count ``x``: ``min(1, (x / x_max) ** alpha)``."""
    if isinstance(x, torch.Tensor):
        return (x / x_max).pow(alpha).clamp(max=1.0)
    return np.minimum(1.0, (np.asarray(x, dtype=np.float64) / x_max) ** alpha)


def probability_ratios(
    X: sp.spmatrix, vocab: Vocab, i: str, j: str, probes: Sequence[str]
) -> list[dict[str, str | int | float]]:
    """The paper's table of co-occurrence probability ratios (its Table 1), from ``X``.

    For each probe word ``k``: its count in the corpus, ``X[i, k]`` and ``X[j, k]``, the
    conditional probabilities ``P(k | i) = X_ik / X_i`` (with ``X_i = sum_k X_ik``, the row sum)
    and ``P(k | j)``, and their ratio ``P(k | i) / P(k | j)``: ``inf`` when only ``P(k | j)`` is
    0, NaN when both are (0/0). One dict per probe, keyed by column name (``"k"``,
    ``"count(k)"``, ``"X[ice, k]"``, ``"P(k|ice)"``, ..., ``"P(k|ice) / P(k|steam)"`` for
    ``i="ice"``, ``j="steam"``), ready for ``pandas.DataFrame(rows)``.
    """
    missing = [w for w in (i, j, *probes) if w not in vocab]
    if missing:
        raise ValueError(
            f"{missing} not in the vocabulary of {len(vocab):,} words; pick words seen at "
            "least min_count times."
        )
    row_total = np.asarray(X.sum(axis=1)).ravel()  # (V,) X_i = sum_k X_ik
    rows = []
    for k in probes:
        x_i, x_j = X[vocab[i], vocab[k]], X[vocab[j], vocab[k]]
        p_i, p_j = x_i / row_total[vocab[i]], x_j / row_total[vocab[j]]  # P(k | i), P(k | j)
        ratio = p_i / p_j if p_j > 0 else (np.inf if p_i > 0 else np.nan)
        rows.append(
            {
                "k": k,
                "count(k)": int(vocab.counts[vocab[k]]),
                f"X[{i}, k]": float(x_i),
                f"X[{j}, k]": float(x_j),
                f"P(k|{i})": float(p_i),
                f"P(k|{j})": float(p_j),
                f"P(k|{i}) / P(k|{j})": float(ratio),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# 2. The model and its training
# --------------------------------------------------------------------------------------------------


def adagrad_(param: torch.Tensor, sq: torch.Tensor, grad: torch.Tensor, lr: float, eps=1e-8):
    """One AdaGrad step, in place (Duchi et al. 2011, the paper's optimiser): per coordinate,
    ``sq += g^2`` and ``param -= lr * g / sqrt(sq)``, so each coordinate's steps shrink as its
    gradients add up. Rows a mini-batch did not touch have ``g = 0`` and do not move, exactly
    as with sparse updates."""
    sq.addcmul_(grad, grad)
    param.addcdiv_(grad, sq.sqrt().add_(eps), value=-lr)


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n: int) -> torch.Tensor:
    """A (n, n) sparse CSR tensor (without torch's one-time "beta" warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(crow, col, values, (n, n), check_invariants=False)


class GloVe:
    """GloVe's parameters: word vectors ``W`` and context vectors ``W_ctx`` (V, D), biases ``b``
    and ``b_ctx`` (V,), and AdaGrad's running sums of squared gradients. Initialised like the
    reference C code: uniform in ``[-0.5, 0.5] / D``."""

    def __init__(self, vocab_size: int, dim: int, seed: int = 0, device="cpu"):
        g = torch.Generator().manual_seed(seed)

        def init(*shape):
            return ((torch.rand(*shape, generator=g) - 0.5) / dim).to(device)

        self.W, self.W_ctx = init(vocab_size, dim), init(vocab_size, dim)  # (V, D) each
        self.b, self.b_ctx = init(vocab_size), init(vocab_size)  # (V,) each
        self.sq = {name: torch.zeros_like(p) for name, p in self.parameters().items()}

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "W_ctx": self.W_ctx, "b": self.b, "b_ctx": self.b_ctx}

    def predict(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """The model's ``log X_ij`` for pairs ``(i, j)`` (B,): ``w_i . w~_j + b_i + b~_j``."""
        return (self.W[i] * self.W_ctx[j]).sum(-1) + self.b[i] + self.b_ctx[j]

    def gradients(self, i, j, log_x, f_x) -> tuple[float, dict[str, torch.Tensor]]:
        """The loss of a mini-batch of nonzero entries ``(i, j)`` of ``X`` (B,), sorted by ``i``
        then ``j``, with ``log_x = log X_ij`` and ``f_x = f(X_ij)``, and the gradients of half
        of it (the C code's scale; AdaGrad divides any constant scale out) for every parameter.

        The batch is a sparse (V, V) matrix, so the predictions at its entries are a *sampled*
        matrix product ``W W~^T``, and with ``E_ij = f(X_ij) (prediction - log X_ij)`` at the
        batch's entries (zero elsewhere) the gradients are sparse x dense products:
        ``dJ/dW = E W~``, ``dJ/dW~ = E^T W``, ``dJ/db = E 1``, ``dJ/db~ = E^T 1``.
        """
        V = self.W.shape[0]
        crow = torch.zeros(V + 1, dtype=torch.int64, device=i.device)
        torch.cumsum(torch.bincount(i, minlength=V), 0, out=crow[1:])  # (V + 1,) row starts
        batch = _csr(crow, j, log_x, V)  # (V, V), nonzero at the batch's entries
        dots = torch.sparse.sampled_addmm(batch, self.W, self.W_ctx.T, beta=0.0).values()  # (B,)
        diff = dots + self.b[i] + self.b_ctx[j] - log_x  # (B,) error in log space
        f_diff = f_x * diff  # (B,)
        E = _csr(crow, j, f_diff, V)  # (V, V) weighted errors
        grads = {
            "W": E @ self.W_ctx,  # (V, D): row i is sum_j f diff w~_j
            "W_ctx": E.t() @ self.W,  # (V, D): row j is sum_i f diff w_i
            "b": torch.bincount(i, weights=f_diff, minlength=V).to(f_diff.dtype),  # (V,)
            "b_ctx": torch.bincount(j, weights=f_diff, minlength=V).to(f_diff.dtype),  # (V,)
        }
        return float(f_diff @ diff), grads

    def step(self, i, j, log_x, f_x, lr: float) -> float:
        """One AdaGrad step on a mini-batch (see :meth:`gradients`); returns its summed loss
        ``sum f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2``."""
        loss, grads = self.gradients(i, j, log_x, f_x)
        for name, param in self.parameters().items():
            adagrad_(param, self.sq[name], grads[name], lr)
        return loss

    def loss(self, X: sp.spmatrix, x_max: float = 100.0, alpha: float = 0.75) -> float:
        """The objective ``J`` over all of ``X``, divided by its number of nonzero entries."""
        crow, i, j, x = _entries(X, self.W.device)
        pattern = _csr(crow, j, x, X.shape[0])
        dots = torch.sparse.sampled_addmm(pattern, self.W, self.W_ctx.T, beta=0.0).values()
        diff = dots + self.b[i] + self.b_ctx[j] - x.log()
        return float((weighting(x, x_max, alpha) * diff * diff).sum()) / max(1, len(x))

    def vectors(self) -> np.ndarray:
        """The final word vectors, ``W + W~`` as in the paper: (V, D) float32 NumPy."""
        return (self.W + self.W_ctx).float().cpu().numpy()


def _entries(X: sp.spmatrix, device) -> tuple[torch.Tensor, ...]:
    """The nonzero entries of ``X`` in (row, column) order: the row starts ``crow`` (V + 1,),
    and ``i``, ``j``, ``x`` (nnz,) each."""
    X = sp.csr_matrix(X, copy=True)
    X.sum_duplicates()  # also sorts the columns within each row
    X.eliminate_zeros()
    if X.nnz and X.data.min() < 0:
        raise ValueError("co-occurrence counts must be positive; X has negative entries.")
    i = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    return (
        torch.from_numpy(X.indptr.astype(np.int64)).to(device),
        torch.from_numpy(i.astype(np.int64)).to(device),
        torch.from_numpy(X.indices.astype(np.int64)).to(device),
        torch.from_numpy(X.data.astype(np.float32)).to(device),
    )


def fit(
    X: sp.spmatrix,
    config: GloVeConfig | None = None,
    preset: str = "cpu",
    device: str | torch.device | None = None,
    eval_fn: Callable[[GloVe], dict[str, float]] | None = None,
    log_every: int = 5,
    progress: bool = True,
    cpu_threads: int | None = 1,
) -> tuple[GloVe, History]:
    """Train GloVe on the co-occurrence matrix ``X`` (V, V). Returns the model and a
    :class:`bertlab.train.History`: the mean loss per nonzero entry every ``log_every`` steps,
    and, after each epoch, ``eval_fn(model)`` when given (``history.evals``).

    ``config`` defaults to ``GloVeConfig.preset(preset)``; ``device`` to the best there is
    (Apple's MPS has no sparse matrix products, so there it falls back to the CPU).
    ``cpu_threads``: torch threads while training on the CPU (None: leave torch's setting). One
    by default: the sparse products are small and memory-bound, so a second thread gains little,
    and on a busy machine (two notebooks at once, say) extra threads slowed training several-fold.
    """
    from tqdm.auto import tqdm

    c = config if config is not None else GloVeConfig.preset(preset)
    dev = pick_device(device)
    if dev.type == "mps":
        dev = torch.device("cpu")
    if X.shape[0] != X.shape[1]:
        raise ValueError(f"X must be square (V, V), got {X.shape}.")
    _, i_all, j_all, x_all = _entries(X, dev)  # (nnz,) each, in (row, column) order
    log_x, f_x = x_all.log(), weighting(x_all, c.x_max, c.alpha)  # (nnz,) each
    model = GloVe(X.shape[0], c.dim, seed=c.seed, device=dev)
    shuffle = torch.Generator().manual_seed(c.seed)
    history, nnz, step = History(), len(x_all), 0
    bar = tqdm(total=c.epochs * -(-nnz // c.batch_size), disable=not progress, desc="glove",
               mininterval=1.0)  # fmt: skip
    start = time.perf_counter()
    window_loss, window_n = 0.0, 0
    with torch_threads(cpu_threads if dev.type == "cpu" else None):
        for _ in range(c.epochs):
            order = torch.randperm(nnz, generator=shuffle).to(dev)  # a fresh shuffle every epoch
            for s in range(0, nnz, c.batch_size):
                p = order[s : s + c.batch_size].sort().values  # a random batch, in X's order
                window_loss += model.step(i_all[p], j_all[p], log_x[p], f_x[p], c.lr)
                window_n += len(p)
                step += 1
                if step % log_every == 0 or s + c.batch_size >= nnz:
                    history.steps.append(step)
                    history.loss.append(window_loss / window_n)  # mean loss per entry
                    history.lr.append(c.lr)
                    bar.set_postfix(loss=f"{history.loss[-1]:.4f}", refresh=False)
                    window_loss, window_n = 0.0, 0
                bar.update(1)
            if eval_fn is not None:
                history.eval_steps.append(step)
                history.evals.append(eval_fn(model))
    bar.close()
    history.seconds = time.perf_counter() - start
    return model, history


# --------------------------------------------------------------------------------------------------
# Everything at once
# --------------------------------------------------------------------------------------------------


@dataclass
class GloVeRun:
    """What :func:`train_glove` produces: the vocabulary, ``X``, the model, its history and
    the vectors."""

    config: GloVeConfig
    vocab: Vocab
    X: sp.csr_matrix
    model: GloVe
    history: History
    embeddings: Embeddings
    seconds: dict[str, float] = field(default_factory=dict)  # "cooccurrence", "training"


def train_glove(
    sentences: Sequence[Sequence[str]],
    config: GloVeConfig | None = None,
    preset: str = "cpu",
    device: str | torch.device | None = None,
    eval_fn: Callable[[GloVe], dict[str, float]] | None = None,
    progress: bool = True,
) -> GloVeRun:
    """GloVe from tokenized ``sentences``: a vocabulary of the words seen ``min_count`` times or
    more (rarer words are dropped from the text, as the reference code and word2vec do), the
    co-occurrence matrix, and :func:`fit`. The vectors are ``W + W~`` with the vocabulary's words,
    most frequent first."""
    c = config if config is not None else GloVeConfig.preset(preset)
    start = time.perf_counter()
    vocab = Vocab.build(sentences, min_count=c.min_count, specials=())
    ids, starts = vocab.encode_corpus(sentences, drop_unknown=True)
    X = cooccurrence(ids, starts, len(vocab), c.window, c.distance_weighting)
    built = time.perf_counter() - start
    model, history = fit(X, c, device=device, eval_fn=eval_fn, progress=progress)
    emb = Embeddings(model.vectors(), vocab.itos)
    return GloVeRun(
        c, vocab, X, model, history, emb, {"cooccurrence": built, "training": history.seconds}
    )
