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


class PlainNet(torch.nn.Module):
    """A small net with no dropout: its training is the same in one process or in several."""

    def __init__(self, d_in: int = 8, d_hidden: int = 16, n_out: int = 3):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(d_in, d_hidden), torch.nn.GELU(), torch.nn.LayerNorm(d_hidden),
            torch.nn.Linear(d_hidden, n_out),
        )  # fmt: skip

    def forward(self, x):
        return self.net(x)


def classification_batch(step: int, rows: int = 8):
    """``get_batch(step)`` for the trainer tests: (x, y) drawn from a generator seeded by step."""
    g = torch.Generator().manual_seed(step)
    x = torch.randn(rows, 8, generator=g)
    return x, (x[:, 0] > 0).long() + (x[:, 1] > 1).long()


def mean_cross_entropy(model, batch):
    """A per-example mean loss, with an extra metric, as loss_fn."""
    x, y = batch
    logits = model(x)
    accuracy = (logits.argmax(-1) == y).float().mean()
    return {"loss": torch.nn.functional.cross_entropy(logits, y), "accuracy": accuracy}
