"""Position embeddings (chapter 8): how much does a learned position table look like sinusoids?

BERT learns its (P, H) position table; the Transformer of 2017 used fixed sines and cosines. These
measures compare two such tables, from the plainest to the most forgiving: the correlation of
their entries (:func:`table_correlation`), the share of one table's variance that the best
rotation and scaling of the other explains (:func:`best_fit_r2`, orthogonal Procrustes), how alike
their position-to-position similarities are (:func:`cosine_matrix`), and how many principal
components each needs (:func:`components_for`).
"""

from __future__ import annotations

import torch


def cosine_matrix(x: torch.Tensor) -> torch.Tensor:
    """(P, P) cosine similarity of every row of a (P, H) table with every other."""
    x = x / x.norm(dim=1, keepdim=True)
    return x @ x.T  # (P, P)


def table_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two same-shape tables, entry by entry."""
    a, b = a - a.mean(), b - b.mean()
    return ((a * b).sum() / (a.norm() * b.norm())).item()


def best_fit_r2(source: torch.Tensor, target: torch.Tensor) -> float:
    """Share of ``target``'s variance explained by the best rotation and scaling of ``source``.

    Orthogonal Procrustes on the centred (P, H) tables: the rotation is ``u @ vt`` from the SVD of
    ``a.T @ b``, the scale ``sum(s) / |a|²``. 1 means the tables are the same up to rotation and
    scale; a random table scores near 0.
    """
    a, b = source - source.mean(0), target - target.mean(0)
    u, s, vt = torch.linalg.svd(a.T @ b)
    fit = (s.sum() / (a**2).sum()) * a @ (u @ vt)
    return 1 - ((fit - b) ** 2).sum().item() / (b**2).sum().item()


def components_for(x: torch.Tensor, share: float = 0.9) -> int:
    """How many principal components hold ``share`` of a (P, H) table's variance."""
    var = torch.linalg.svdvals(x - x.mean(0)) ** 2
    return int((torch.cumsum(var / var.sum(), 0) < share).sum()) + 1
