"""Frozen encoders as feature extractors, and the linear probes that ask what they know.

The feature-based way to use a pre-trained model (ELMo in chapter 5, BERT in chapters 1 and 10)
is one recipe: run the encoder without changing it, take its vectors (one layer, or a learned
mix of all of them), and fit a linear classifier on top. What that classifier reaches measures
what the vectors hold, so the same tool also *probes* each layer.

- :func:`features` runs a ``bertlab.bert.BertModel`` (with its tokenizer) or an
  ``bertlab.elmo.BiLM`` over texts and pools each text's vectors: ``[CLS]``, the pooler's
  output, or the mean over the real tokens; from the last layer or from every layer.
- :class:`ScalarMix` is ELMo's combination of layers, ``gamma * sum_j softmax(s)_j h_j``.
- :class:`Probe`, :func:`train_probe` and :func:`probe_accuracy`: a standardized linear
  classifier fitted by full-batch Adam; :func:`probe_each_layer` fits one per layer and one on
  the scalar mix, and reports each one's accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "POOLINGS",
    "mean_pool",
    "features",
    "ScalarMix",
    "Probe",
    "train_probe",
    "probe_accuracy",
    "probe_each_layer",
    "pseudo_word_examples",
    "majority_label_baseline",
]

POOLINGS = ("mean", "cls", "pooler")

# --------------------------------------------------------------------------------------------------
# Features from a frozen encoder
# --------------------------------------------------------------------------------------------------


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average of the token vectors (..., T, H) over the real tokens only -> (..., H)."""
    if attention_mask is None:
        return hidden.mean(dim=-2)
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
    return (hidden * mask).sum(dim=-2) / mask.sum(dim=-2).clamp(min=1.0)


def _check_choice(pool: str, layers) -> None:
    if pool not in POOLINGS:
        raise ValueError(f"unknown pooling {pool!r}; choose one of: {', '.join(POOLINGS)}.")
    if not (layers in ("last", "all") or isinstance(layers, int)):
        raise ValueError(f"layers must be 'last', 'all' or a layer number, got {layers!r}.")


@torch.no_grad()
def features(
    model: nn.Module,
    texts: Sequence,
    tokenizer=None,
    pool: str = "mean",
    layers: str | int = "last",
    batch_size: int = 64,
    max_length: int = 128,
) -> torch.Tensor:
    """One vector per text from a frozen encoder, in eval mode: (N, H), or (L + 1, N, H) for
    ``layers="all"`` (the embeddings' output, then every layer: what :class:`ScalarMix` mixes).

    ``model`` is a ``BertModel`` with its WordPiece ``tokenizer`` (texts are strings or
    ``(text_a, text_b)`` pairs, cut to ``max_length`` pieces), or a ``BiLM`` (texts are lists of
    words; its layers are the token layer and each LSTM layer, ``[forward; backward]``). ``pool``:
    ``"mean"`` over the real tokens, ``"cls"`` (the [CLS] vector) or ``"pooler"`` (BERT's
    tanh(Linear([CLS])), last layer only); ``layers``: ``"last"``, ``"all"`` or a layer number.
    A tuple such as ``pool=("cls", "mean")`` reads several from one pass: ``{pool: features}``.
    """
    from bertlab.elmo import BiLM

    if not isinstance(pool, str):  # several poolings from one pass: {pool: features}
        if isinstance(model, BiLM) or "pooler" in pool:
            raise ValueError("several poolings at once work for a BertModel's 'cls' and 'mean'.")
        for p in pool:
            _check_choice(p, layers)
    else:
        _check_choice(pool, layers)
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, BiLM):
            out = _bilm_features(model, texts, pool, batch_size)  # (L + 1, N, 2H)
        else:
            if tokenizer is None:
                raise ValueError("features() of a BERT model needs its tokenizer.")
            out = _bert_features(model, texts, tokenizer, pool, layers, batch_size, max_length)
    finally:
        model.train(was_training)
    if isinstance(out, dict):
        return {p: x if layers == "all" else x[-1 if layers == "last" else layers]
                for p, x in out.items()}  # fmt: skip
    if out.dim() == 2:  # the pooler: one layer only
        return out
    return out if layers == "all" else out[-1 if layers == "last" else layers]


def _bert_features(model, texts, tokenizer, pool, layers, batch_size, max_length):
    if pool == "pooler" and layers != "last":
        raise ValueError("pool='pooler' reads the last layer only; use layers='last'.")
    device = next(model.parameters()).device
    pools = (pool,) if isinstance(pool, str) else tuple(pool)
    order = sorted(range(len(texts)), key=lambda i: len(str(texts[i])))  # similar lengths
    out = {}
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        b = tokenizer.encode_batch([texts[i] for i in idx], max_length=max_length,
                                   return_tensors="pt")  # fmt: skip
        b = {k: v.to(device) for k, v in b.items()}
        enc = model(b["input_ids"], b["token_type_ids"], b["attention_mask"],
                    output_hidden_states=layers != "last")  # fmt: skip
        hs = torch.stack(enc.hidden_states or (enc.last_hidden_state,))  # (L', B, T, H)
        for p in pools:
            if p == "pooler":
                vec = enc.pooled  # (B, H)
            else:
                vec = hs[:, :, 0] if p == "cls" else mean_pool(hs, b["attention_mask"])
            if p not in out:
                out[p] = torch.empty(*vec.shape[:-2], len(texts), vec.shape[-1])
            out[p][..., idx, :] = vec.float().cpu()
    return out[pool] if isinstance(pool, str) else out


def _bilm_features(model, sentences, pool, batch_size):
    chunks = []
    for i in range(0, len(sentences), batch_size):
        sents = [list(s) for s in sentences[i : i + batch_size]]
        vec = model.embed(sents, too_long="chunk")  # (L + 1, B, T, 2H), zeros at padding
        if pool == "cls":
            chunks.append(vec[:, :, 0])
            continue
        if pool != "mean":
            raise ValueError("a biLM has no pooler; use pool='mean' or 'cls' (its first word).")
        lengths = torch.tensor([len(s) for s in sents], dtype=torch.float)
        chunks.append(vec.sum(2) / lengths[None, :, None])
    return torch.cat(chunks, 1).cpu()


# --------------------------------------------------------------------------------------------------
# Scalar mix and probes
# --------------------------------------------------------------------------------------------------


class ScalarMix(nn.Module):
    """ELMo's task-specific combination of layers: ``gamma * sum_j softmax(s)_j * h_j``."""

    def __init__(self, n_layers: int):
        super().__init__()
        self.scalars = nn.Parameter(torch.zeros(n_layers))  # s: equal weights to start
        self.gamma = nn.Parameter(torch.ones(()))

    @property
    def weights(self) -> torch.Tensor:
        """The softmax-normalized layer weights: (n_layers,), summing to 1."""
        return torch.softmax(self.scalars, 0)

    def forward(self, layers: torch.Tensor) -> torch.Tensor:  # (n_layers, ..., D) -> (..., D)
        if layers.shape[0] != len(self.scalars):
            raise ValueError(f"expected {len(self.scalars)} layers, got {layers.shape[0]}.")
        w = self.weights.view(-1, *([1] * (layers.dim() - 1)))
        return self.gamma * (w * layers).sum(0)


class Probe(nn.Module):
    """A linear classifier on frozen features: one layer's (N, D), or a scalar mix of (L, N, D).

    Features are standardized first (with the training set's mean and spread, kept in buffers)."""

    def __init__(self, dim: int, n_classes: int, n_layers: int | None = None):
        super().__init__()
        self.mix = ScalarMix(n_layers) if n_layers else None
        self.linear = nn.Linear(dim, n_classes)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x) if self.mix is not None else x  # (N, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear((self.features(x) - self.mean) / self.std)  # (N, n_classes)


def train_probe(
    features: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    mix: bool = False,
    steps: int = 100,
    lr: float = 0.05,
    weight_decay: float = 1e-4,
    seed: int = 0,
) -> Probe:
    """Fit a :class:`Probe` by full-batch Adam on frozen ``features`` (N, D), or (L, N, D) with
    ``mix=True`` (a learned :class:`ScalarMix` in front)."""
    torch.manual_seed(seed)
    features, labels = features.float(), torch.as_tensor(labels, dtype=torch.long)
    if mix and features.dim() != 3:
        raise ValueError("mix=True needs features of shape (layers, N, D).")
    if features.shape[-2] != len(labels):
        raise ValueError(f"{features.shape[-2]} feature rows but {len(labels)} labels.")
    probe = Probe(features.shape[-1], n_classes, features.shape[0] if mix else None)
    with torch.no_grad():
        x = probe.features(features)
        probe.mean.copy_(x.mean(0))
        probe.std.copy_(x.std(0) + 1e-6)
    opt = torch.optim.Adam(probe.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(probe(features), labels).backward()
        opt.step()
    return probe.eval()


@torch.no_grad()
def probe_accuracy(probe: Probe, features: torch.Tensor, labels) -> float:
    """The fraction of ``labels`` the probe gets right."""
    pred = probe(features.float()).argmax(-1)
    return float((pred == torch.as_tensor(labels)).float().mean())


def probe_each_layer(
    train_features: torch.Tensor,
    train_labels,
    test_features: torch.Tensor,
    test_labels,
    n_classes: int,
    names: Sequence[str] | None = None,
    **probe_options,
) -> tuple[dict[str, float], torch.Tensor]:
    """A probe per layer of (L, N, D) features, and one on their scalar mix.

    Returns ``({name: test accuracy, ..., "scalar mix": accuracy}, mix weights (L,))``; ``names``
    label the layers (default ``layer 0``, ``layer 1``, ...), ``probe_options`` go to
    :func:`train_probe` (e.g. ``weight_decay``)."""
    names = list(names or [f"layer {j}" for j in range(len(train_features))])
    if len(names) != len(train_features):
        raise ValueError(f"{len(names)} names for {len(train_features)} layers.")
    accuracy = {}
    for j, name in enumerate(names):
        probe = train_probe(train_features[j], train_labels, n_classes, **probe_options)
        accuracy[name] = probe_accuracy(probe, test_features[j], test_labels)
    mixed = train_probe(train_features, train_labels, n_classes, mix=True, **probe_options)
    accuracy["scalar mix"] = probe_accuracy(mixed, test_features, test_labels)
    return accuracy, mixed.mix.weights.detach()


def pseudo_word_examples(
    sentences: Sequence[Sequence[str]], a: str, b: str, per_word: int = 150, max_len: int = 64,
    blank: str = "<unk>",
) -> tuple[list[list[str]], list[int], torch.Tensor]:  # fmt: skip
    """A word-sense task with known answers: occurrences of ``a`` (label 0) and ``b`` (label 1),
    up to ``per_word`` each from sentences of at most ``max_len`` words (none with both), the
    word replaced by ``blank``. Only the context can tell them apart: a probe's accuracy on the
    blank's vector measures how much of the meaning the context vectors hold.

    Returns ``(sentences, positions of the blank, labels)``."""
    out, positions, labels = [], [], []
    for label, word in enumerate((a, b)):
        found = [s for s in sentences if word in s and len(s) <= max_len][:per_word]
        for s in found:
            if a in s and b in s:
                continue
            k = list(s).index(word)
            out.append([*s[:k], blank, *s[k + 1 :]])
            positions.append(k)
            labels.append(label)
    return out, positions, torch.tensor(labels)


def majority_label_baseline(train_pairs, test_pairs, default) -> float:
    """A context-free baseline for a token-level task: each token's most frequent label in
    ``train_pairs`` ((token, label) pairs; unseen tokens get ``default``); its accuracy on
    ``test_pairs``."""
    by_token: dict = {}
    for token, label in train_pairs:
        by_token.setdefault(token, Counter())[label] += 1
    test_pairs = list(test_pairs)
    right = sum(
        (by_token[t].most_common(1)[0][0] if t in by_token else default) == label
        for t, label in test_pairs
    )
    return right / len(test_pairs)
