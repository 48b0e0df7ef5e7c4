"""BART's noise and its training data: the corrupted sources and the targets to rebuild.

Lewis et al. (2019) train BART to write a text back from a corrupted copy. The corruption
used here is the one the paper found best, as pure functions of a ``torch.Generator``:

1. :func:`text_infilling` replaces spans, of lengths drawn from Poisson(3)
   (:func:`span_lengths`), by ONE [MASK] each (a span of length 0 *inserts* a [MASK]), so the
   model must also work out how many tokens are missing; :func:`token_deletion` drops
   tokens, so it must also find *where* text is missing. :func:`add_noise` applies deletion,
   then infilling.
2. The data: :func:`sentence_ids` reads WikiText-2 sentences as WordPiece ids, and
   :class:`DenoisingBatches` noises them into training batches, a pure function of
   (seed, step) so that a resumed run sees the same batches.

The model that learns to undo the noise is in ``bertlab.bart``, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from bertlab.bart import BartConfig

__all__ = [
    "span_lengths",
    "text_infilling",
    "token_deletion",
    "add_noise",
    "sentence_ids",
    "DenoisingBatches",
]

# --------------------------------------------------------------------------------------------------
# 1. Noise: text infilling (Poisson spans, one [MASK] each) and token deletion
# --------------------------------------------------------------------------------------------------


def span_lengths(
    num_to_mask: int, poisson_lambda: float = 3.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Span lengths ~ Poisson(``poisson_lambda``) that add up to exactly ``num_to_mask``.

    Lengths are drawn until their sum reaches the budget and the last one is cut to fit (as
    fairseq does). Zero-length spans are kept: each inserts a [MASK] where nothing was removed.
    """
    if num_to_mask <= 0:
        return torch.zeros(0, dtype=torch.long)
    rate = torch.full((num_to_mask,), float(poisson_lambda))
    lengths = torch.poisson(rate, generator=generator).long()  # (n,): mean 3, so usually enough
    while int(lengths.sum()) < num_to_mask:  # rare: draw more
        lengths = torch.cat([lengths, torch.poisson(rate, generator=generator).long()])
    cum = lengths.cumsum(0)
    last = int(torch.searchsorted(cum, num_to_mask))  # first span that reaches the budget
    lengths = lengths[: last + 1].clone()
    lengths[last] = num_to_mask - (int(cum[last - 1]) if last > 0 else 0)  # cut to fit (>= 1)
    return lengths


def text_infilling(
    ids: torch.Tensor,
    mask_ratio: float,
    mask_id: int,
    poisson_lambda: float = 3.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """BART's text infilling on one sequence (1-D ids, no special tokens).

    ``round(mask_ratio · n)`` tokens are hidden, in spans whose lengths come from
    :func:`span_lengths`; each span becomes ONE ``mask_id``, a zero-length span inserts one.
    The spans are placed uniformly at random without overlap: the n - k kept tokens and the m
    spans are laid out in a random order that keeps the kept tokens in theirs. The result has
    n - k + m tokens, m of them masks.
    """
    n = ids.numel()
    k = int(n * mask_ratio + 0.5)  # tokens to hide
    lengths = span_lengths(k, poisson_lambda, generator)  # (m,)
    m = lengths.numel()
    if m == 0:
        return ids.clone()
    slots = n - k + m  # kept tokens and spans, each one slot of the output
    is_span = torch.zeros(slots, dtype=torch.bool)
    is_span[torch.randperm(slots, generator=generator)[:m]] = True
    width = torch.ones(slots, dtype=torch.long)  # tokens of the input each slot stands for
    width[is_span] = lengths[torch.randperm(m, generator=generator)]
    start = (width.cumsum(0) - width).clamp(max=max(n - 1, 0))  # where each slot starts in ids
    return torch.where(is_span, torch.full_like(start, mask_id), ids[start])  # (n - k + m,)


def token_deletion(
    ids: torch.Tensor, rate: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """BART's token deletion: each token is dropped independently with probability ``rate``."""
    keep = torch.rand(ids.numel(), generator=generator) >= rate  # (n,)
    return ids[keep]


def add_noise(ids: torch.Tensor, config: BartConfig, generator: torch.Generator) -> torch.Tensor:
    """The training noise: token deletion at ``deletion_rate``, then text infilling."""
    ids = token_deletion(ids, config.deletion_rate, generator)
    return text_infilling(ids, config.mask_ratio, config.mask_id, config.poisson_lambda, generator)


# --------------------------------------------------------------------------------------------------
# 2. Data: WikiText-2 sentences, noised into batches
# --------------------------------------------------------------------------------------------------


def sentence_ids(config: BartConfig, tokenizer, split: str = "train") -> list[list[int]]:
    """WikiText-2 sentences of ``min_words``..``max_words`` tokens with no <unk>, as WordPiece
    ids (without [CLS]/[SEP]); those longer than ``max_position - 2`` pieces are dropped."""
    from bertlab import data
    from bertlab.pretraining_data import clean_wikitext

    sentences = data.wikitext2_sentences(split)
    if split == "train" and config.documents is not None:
        docs = data.wikitext2_documents("train")[: config.documents]
        sentences = [s for d in docs for p in d.paragraphs for s in data.split_sentences(p.split())]
    out = []
    for words in sentences:
        if config.min_words <= len(words) <= config.max_words and "<unk>" not in words:
            ids = tokenizer.convert_tokens_to_ids(
                tokenizer.tokenize(clean_wikitext(" ".join(words)))
            )
            if len(ids) <= config.max_position - 2:
                out.append(ids)
    return out


def _pad(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    T = max(len(r) for r in rows)
    return torch.tensor([list(r) + [value] * (T - len(r)) for r in rows], dtype=torch.long)


@dataclass
class DenoisingBatches:
    """``get_batch(step)``: noised sources and their targets, a pure function of (seed, step).

    Batch keys: ``src_ids`` (B, S) ``[CLS] noised [SEP]``, ``src_mask`` (B, S), ``tgt_ids``
    (B, T) ``[CLS] x`` and ``labels`` (B, T) ``x [SEP]`` (-100 on padding).
    """

    sentences: list[list[int]]
    config: BartConfig
    batch_size: int
    seed: int = 0

    def __call__(self, step: int) -> dict[str, torch.Tensor]:
        n, bs = len(self.sentences), self.batch_size
        epoch, i = divmod(step * bs, n)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed * 7919 + epoch))
        picked = [self.sentences[j] for j in order[i : i + bs].tolist()]
        if len(picked) < bs:  # the epoch's tail: top up from the start of the same order
            picked += [self.sentences[j] for j in order[: bs - len(picked)].tolist()]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        return self.encode(picked, g)

    def encode(self, picked: Sequence[Sequence[int]], g: torch.Generator) -> dict:
        c = self.config
        noised = [add_noise(torch.tensor(s, dtype=torch.long), c, g).tolist() for s in picked]
        src = _pad([[c.bos_id, *s, c.eos_id] for s in noised], c.pad_id)  # (B, S)
        return {
            "src_ids": src,
            "src_mask": (src != c.pad_id).long(),
            "tgt_ids": _pad([[c.bos_id, *s] for s in picked], c.pad_id),  # (B, T)
            "labels": _pad([[*s, c.eos_id] for s in picked], -100),  # (B, T)
        }

    def fixed(self, count: int) -> list[dict]:
        """The first ``count`` sentences in order, noised once (seed 1): a validation set."""
        picked = self.sentences[:count]
        g = torch.Generator().manual_seed(1)
        bs = self.batch_size
        return [self.encode(picked[i : i + bs], g) for i in range(0, len(picked), bs)]
