"""Small builders shared by several test files (pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch


def padded_pair_batch(vocab: int, B: int = 3, T: int = 20, seed: int = 0, pad_step: int = 4):
    """A [CLS] A [SEP] B [SEP]-shaped batch: ids, two segments, and padding of different lengths
    (row 0 has none, row b loses its last ``pad_step * b`` positions)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (B, T), generator=g)
    types = torch.zeros(B, T, dtype=torch.long)
    types[:, T // 2 :] = 1
    mask = torch.ones(B, T, dtype=torch.long)
    for b in range(1, B):
        mask[b, T - pad_step * b :] = 0
    return ids.masked_fill(mask == 0, 0), types.masked_fill(mask == 0, 0), mask
