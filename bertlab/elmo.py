"""ELMo's bidirectional language model (biLM), its contextual vectors, and layer probes.

Peters et al. (2018) train two LSTM language models on the same text, one reading left to right
and one right to left, and use their hidden states as word vectors that depend on the sentence::

    forward LM:   p(t_1 ... t_N) = prod_k p(t_k | t_1 ... t_{k-1})
    backward LM:  p(t_1 ... t_N) = prod_k p(t_k | t_{k+1} ... t_N)
    joint loss:   - sum_k [ log p(t_k | t_<k) + log p(t_k | t_>k) ]

:class:`BiLM` is a small version of it, readable top to bottom:

- **token layer**: a word embedding (the paper uses a character CNN; we keep a word table, so a
  word outside the vocabulary is ``<unk>``);
- **L stacked LSTMs per direction**, with a residual connection around every layer after the
  first (as ELMo has between its two layers);
- **one softmax shared by both directions** (ELMo ties the token layer and the softmax between
  the directions, too). With V = 33k words a full softmax costs V x H per token and would dominate
  training on a CPU, so it is an *adaptive softmax* (Grave et al. 2017,
  :class:`torch.nn.AdaptiveLogSoftmaxWithLoss`): the few thousand most frequent words sit in a
  small head, the rare ones in tail clusters behind smaller projections. It is exact (a proper
  distribution over all V words, so perplexities are comparable with an n-gram model's), unlike a
  sampled softmax, and about ten times cheaper here. Its clustered projections have no shape
  that matches the embedding table, so input and output embeddings are not tied.

Every sentence is wrapped as ``<s> w_1 ... w_K </s>``. The forward LSTM's state at ``w_k`` has read
``<s> w_1 ... w_k`` and predicts ``w_{k+1}``; the backward LSTM's state at ``w_k`` has read
``</s> w_K ... w_k`` and predicts ``w_{k-1}``. So each direction predicts K + 1 tokens per sentence
(the forward one ends with ``</s>``, the backward one with ``<s>``), exactly what a trigram model
with sentence padding predicts, and the perplexities are comparable.

:meth:`BiLM.embed` returns, for every word, one vector per layer: ``(L + 1, B, T, 2H)``, the token
layer (its embedding written twice, to match the width) and ``[forward; backward]`` states of each
LSTM layer. ``bertlab.probe`` mixes them as ELMo does (``ScalarMix``) and fits linear probes
on them, the tool that asks what each layer knows.

:func:`load_or_train` trains a preset once on WikiText-2 with :class:`bertlab.train.Trainer` and
caches it (safetensors + JSON) through :func:`bertlab.checkpoint.cached`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from bertlab import data
from bertlab.checkpoint import (
    CheckpointError,
    cached,
    load_model_weights,
    load_weights,
    save_weights,
)
from bertlab.train import History, Presets, TrainConfig, Trainer, pick_device, seed_everything
from bertlab.vocab import UNK, Vocab

BOS, EOS, PAD = "<s>", "</s>", "<pad>"
SPECIALS = (UNK, BOS, EOS, PAD)


@dataclass
class BiLMConfig(Presets):
    """Sizes of the biLM and how it is trained (``BiLMConfig.preset("cpu")`` is the book's)."""

    dim: int = 256  # H: embedding size = LSTM hidden size
    layers: int = 2  # L: LSTM layers per direction
    dropout: float = 0.1
    cutoffs: tuple[int, ...] = (1000, 6000, 15000)  # adaptive softmax: head / tail borders
    div_value: float = 4.0  # each tail cluster's projection is div_value times narrower
    max_len: int = 64  # longest sentence (in words) that embed() accepts without chunking
    train_len: int = 35  # training reads sentences in pieces of at most this many words
    # training
    steps: int = 600
    batch_size: int = 64
    lr: float = 3e-3
    train_sentences: int | None = None  # None: all of WikiText-2 train; else the first n
    eval_sentences: int = 500  # valid sentences for the perplexity curve during training
    eval_every: int = 100
    seed: int = 0

    def __post_init__(self):
        self.cutoffs = tuple(self.cutoffs)
        if self.dim < 1 or self.layers < 1:
            raise ValueError(f"dim and layers must be >= 1, got {self.dim} and {self.layers}.")
        if self.max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {self.max_len}.")

    PRESETS: ClassVar[dict[str, dict]] = {
        # the chapter's run: about 6-7 minutes of training on two CPU cores (2,200 steps of
        # 64 pieces, about 1.5 passes over WikiText-2); narrow LSTMs trained longer, and three
        # tail clusters, because a cluster costs its size times the tokens that land in it
        "cpu": dict(dim=128, layers=2, dropout=0.0, cutoffs=(1000, 6000, 15000), steps=2200,
                    batch_size=64, lr=0.015, eval_every=550, eval_sentences=300),
        # a reader with a GPU: wider LSTMs, all of train, many more steps
        "gpu": dict(dim=1024, layers=2, dropout=0.3, steps=20000, batch_size=128, lr=2e-3,
                    eval_every=1000, eval_sentences=2000),
    }  # fmt: skip

    def key(self) -> str:
        """A short hash of every field: the cache folder changes when the config does."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


def reverse_index(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Indices that reverse each row's first ``lengths[b]`` positions and keep the padding: (B, T).

    ``x.gather(1, idx)`` reverses every sentence in place; applying it twice gives ``x`` back."""
    t = torch.arange(T, device=lengths.device).expand(len(lengths), T)  # (B, T)
    return torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)


class BiLM(nn.Module):
    """Forward and backward stacked LSTM language models over a shared word embedding/softmax."""

    def __init__(self, config: BiLMConfig, vocab: Vocab):
        super().__init__()
        missing = [s for s in SPECIALS if s not in vocab]
        if missing:
            raise ValueError(f"the vocabulary lacks {missing}; build it with build_vocab().")
        self.config, self.vocab = config, vocab
        V, H = len(vocab), config.dim
        self.pad_id, self.bos_id, self.eos_id = vocab[PAD], vocab[BOS], vocab[EOS]
        self.embedding = nn.Embedding(V, H, padding_idx=self.pad_id)
        L = config.layers
        self.forward_lstms = nn.ModuleList(nn.LSTM(H, H, batch_first=True) for _ in range(L))
        self.backward_lstms = nn.ModuleList(nn.LSTM(H, H, batch_first=True) for _ in range(L))
        self.drop = nn.Dropout(config.dropout)
        cutoffs = [c for c in config.cutoffs if c < V - 1]
        self.softmax = nn.AdaptiveLogSoftmaxWithLoss(H, V, cutoffs, div_value=config.div_value)

    # -- text to ids -------------------------------------------------------------------------------

    def batch(self, sentences: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """``<s> words </s>`` ids, padded: ``(ids (B, T), lengths (B,))``; unknown -> <unk>."""
        if isinstance(sentences, str) or (sentences and isinstance(sentences[0], str)):
            raise TypeError("pass a list of sentences, each a list of tokens: [['a', 'b'], ...].")
        for i, s in enumerate(sentences):
            if len(s) == 0:
                raise ValueError(f"sentence {i} is empty; every sentence needs at least one token.")
        lengths = torch.tensor([len(s) + 2 for s in sentences])
        ids = torch.full((len(sentences), int(lengths.max())), self.pad_id, dtype=torch.long)
        for i, s in enumerate(sentences):
            ids[i, : len(s) + 2] = torch.from_numpy(
                np.concatenate([[self.bos_id], self.vocab.encode(s), [self.eos_id]])
            )
        return ids, lengths

    # -- the network -------------------------------------------------------------------------------

    def states(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's states: ``[x, (f_1, b_1), ..., (f_L, b_L)]`` as a list of L + 1 entries.

        ``x`` is (B, T, H); ``f_j`` and ``b_j`` are (B, T, H), aligned with the input positions:
        ``f_j[:, t]`` has read ``ids[:, :t + 1]``, ``b_j[:, t]`` has read ``ids[:, t:length]``."""
        B, T = ids.shape
        rev = reverse_index(lengths.to(ids.device), T)  # (B, T)
        x = self.embedding(ids)  # (B, T, H)
        out = [x]
        f, b = x, x.gather(1, rev[..., None].expand_as(x))  # b: each sentence reversed
        for j, (lstm_f, lstm_b) in enumerate(zip(self.forward_lstms, self.backward_lstms)):
            f_new, _ = lstm_f(self.drop(f))  # (B, T, H); padding sits after every real token
            b_new, _ = lstm_b(self.drop(b))
            if j > 0:  # residual connection around every layer after the first
                f_new, b_new = f_new + f, b_new + b
            f, b = f_new, b_new
            out.append((f, b.gather(1, rev[..., None].expand_as(b))))  # b back in reading order
        return out

    def loss(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        """Negative log-likelihood of each direction, summed and counted: the joint biLM loss.

        Returns ``{"loss": mean of (forward + backward) / 2, "forward_nll", "backward_nll"
        (sums over predicted tokens), "tokens"}``."""
        B, T = ids.shape
        top = self.states(ids, lengths)[-1]
        f, b = self.drop(top[0]), self.drop(top[1])  # (B, T, H)
        valid = torch.arange(T - 1, device=ids.device) < (lengths.to(ids.device)[:, None] - 1)
        # forward: the state at t predicts ids[t + 1]; backward: the state at t + 1 predicts ids[t]
        f_logp = self.softmax(f[:, :-1][valid], ids[:, 1:][valid]).output  # (M,)
        b_logp = self.softmax(b[:, 1:][valid], ids[:, :-1][valid]).output  # (M,)
        fwd, bwd = -f_logp.sum(), -b_logp.sum()
        n = valid.sum()
        return {"loss": (fwd + bwd) / (2 * n), "forward_nll": fwd, "backward_nll": bwd, "tokens": n}

    @torch.no_grad()
    def embed(self, sentences: Sequence[Sequence[str]], too_long: str = "error") -> torch.Tensor:
        """Contextual vectors of every word, one per layer: ``(L + 1, B, T, 2H)``, T = longest.

        Layer 0 is the token layer ``[x; x]``, layer j the ``[forward; backward]`` states of LSTM
        layer j, at the word positions (``<s>``/``</s>`` dropped). Padding positions are zero.
        Sentences longer than ``config.max_len`` raise ``ValueError`` unless
        ``too_long="chunk"``: then they are cut into pieces of ``max_len`` words, each read as a
        sentence of its own, and the pieces' vectors are put back side by side."""
        if too_long not in ("error", "chunk"):
            raise ValueError(f"too_long must be 'error' or 'chunk', not {too_long!r}.")
        m = self.config.max_len
        long = [i for i, s in enumerate(sentences) if len(s) > m]
        if long and too_long == "error":
            raise ValueError(
                f"sentence {long[0]} has {len(sentences[long[0]])} words, more than max_len={m}; "
                f"split it, or pass too_long='chunk' to read it in pieces of {m} words."
            )
        pieces, owner = [], []
        for i, s in enumerate(sentences):
            for start in range(0, max(len(s), 1), m):
                pieces.append(s[start : start + m])
                owner.append(i)
        was_training = self.training
        self.eval()
        device = self.embedding.weight.device
        ids, lengths = self.batch(pieces)
        layers = self.states(ids.to(device), lengths.to(device))
        x = layers[0]
        vec = [torch.cat([x, x], -1)] + [torch.cat(fb, -1) for fb in layers[1:]]
        vec = torch.stack(vec)[:, :, 1:-1]  # (L + 1, P, T - 2, 2H): drop <s> and the last column
        self.train(was_training)
        T = max(len(s) for s in sentences)
        out = torch.zeros(vec.shape[0], len(sentences), T, vec.shape[-1], device=device)
        filled = [0] * len(sentences)
        for p, (i, piece) in enumerate(zip(owner, pieces)):
            n = len(piece)
            out[:, i, filled[i] : filled[i] + n] = vec[:, p, :n]
            filled[i] += n
        return out  # (L + 1, B, T, 2H)


# --------------------------------------------------------------------------------------------------
# Contextual vectors of chosen words
# --------------------------------------------------------------------------------------------------


@torch.no_grad()
def word_vectors(
    model: BiLM, sentences: Sequence[Sequence[str]], positions: Sequence[int], batch_size: int = 64
) -> torch.Tensor:
    """The unit-length vectors of one word per sentence, ``sentences[i][positions[i]]``, in every
    layer: (L + 1, N, 2H). Cosine similarity between two occurrences is then a dot product."""
    vecs = []
    for i in range(0, len(sentences), batch_size):
        out = model.embed(sentences[i : i + batch_size])  # (L + 1, B, T, 2H)
        at = torch.tensor(positions[i : i + batch_size])  # (B,)
        vecs.append(out[:, torch.arange(out.shape[1]), at])  # (L + 1, B, 2H)
    v = torch.cat(vecs, 1)
    return v / v.norm(dim=-1, keepdim=True)


@torch.no_grad()
def word_features(
    model: BiLM, sentences: Sequence[Sequence[str]], batch_size: int = 64
) -> torch.Tensor:
    """Every word's vector in every layer, the sentences one after another: (L + 1, W, 2H) for
    W words in all (for a token-level probe, e.g. part of speech). Long sentences are read in
    pieces of ``max_len`` words."""
    feats = []
    for i in range(0, len(sentences), batch_size):
        chunk = [list(s) for s in sentences[i : i + batch_size]]
        out = model.embed(chunk, too_long="chunk")  # (L + 1, B, T, 2H)
        feats += [out[:, b, : len(s)] for b, s in enumerate(chunk)]
    return torch.cat(feats, 1)


# --------------------------------------------------------------------------------------------------
# Data, evaluation, training, cache
# --------------------------------------------------------------------------------------------------


def build_vocab(sentences: Sequence[Sequence[str]]) -> Vocab:
    """Every word of ``sentences`` (min_count 1, as the n-gram chapter), specials first."""
    return Vocab.build(sentences, min_count=1, specials=SPECIALS)


@torch.no_grad()
def perplexity(model: BiLM, sentences: Sequence[Sequence[str]], batch_size: int = 64) -> dict:
    """Per-direction perplexity over ``sentences`` (each predicts K + 1 tokens per sentence)."""
    was_training = model.training
    model.eval()
    device = model.embedding.weight.device
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))  # little padding
    fwd = bwd = n = 0.0
    for start in range(0, len(order), batch_size):
        ids, lengths = model.batch([sentences[i] for i in order[start : start + batch_size]])
        out = model.loss(ids.to(device), lengths.to(device))
        fwd += float(out["forward_nll"])
        bwd += float(out["backward_nll"])
        n += float(out["tokens"])
    model.train(was_training)
    return {"forward": math.exp(fwd / n), "backward": math.exp(bwd / n)}


def training_chunks(sentences: Sequence[Sequence[str]], max_len: int) -> list[list[str]]:
    """Sentences cut into pieces of at most ``max_len`` words (empty ones dropped)."""
    return [s[i : i + max_len] for s in sentences for i in range(0, len(s), max_len)]


def make_get_batch(model: BiLM, sentences: Sequence[Sequence[str]], config: BiLMConfig):
    """``get_batch(step)``: a batch of training chunks of about the same length, a pure function of
    the step (so a resumed run sees the same batches).

    The chunks are sorted by length once (ties in a seeded random order); each step picks a random
    run of ``batch_size`` neighbours in that order. Random chunks of 1 to 35 words padded to the
    longest would spend about 40% of the LSTM's work on padding; a run of similar lengths almost
    none, and every chunk (but the ``batch_size - 1`` at each end of the order) is still equally
    likely to be picked."""
    chunks = training_chunks(sentences, config.train_len)
    B = min(config.batch_size, len(chunks))
    tie = np.random.default_rng(config.seed).random(len(chunks))
    by_length = np.lexsort((tie, [len(c) for c in chunks]))  # (n_chunks,)

    def get_batch(step: int):
        rng = np.random.default_rng([config.seed, step])
        start = rng.integers(0, len(chunks) - B + 1)
        return model.batch([chunks[i] for i in by_length[start : start + B]])

    return get_batch


def bilm_loss(model: BiLM, batch) -> dict[str, torch.Tensor]:
    out = model.loss(*batch)
    return {"loss": out["loss"]}


def train_bilm(
    config: BiLMConfig,
    train: Sequence[Sequence[str]],
    valid: Sequence[Sequence[str]],
    vocab: Vocab | None = None,
    device=None,
    progress: bool = True,
):
    """Train a :class:`BiLM` with :class:`bertlab.train.Trainer`; returns ``(model, history)``."""
    seed_everything(config.seed)
    vocab = vocab or build_vocab(train)
    model = BiLM(config, vocab)
    subset = list(train[: config.train_sentences] if config.train_sentences else train)
    eval_set = list(valid[: config.eval_sentences])

    def eval_fn(m):
        p = perplexity(m, eval_set)
        return {"forward_ppl": p["forward"], "backward_ppl": p["backward"]}

    # fused AdamW: one kernel over all parameters (the 33k-row embedding dominates their count)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0, fused=True)
    trainer = Trainer(
        model,
        bilm_loss,
        make_get_batch(model, subset, config),
        TrainConfig(steps=config.steps, lr=config.lr, warmup=0.05, schedule="cosine",
                    eval_every=config.eval_every, log_every=10, device=device, seed=config.seed,
                    progress=progress, weight_decay=0.0, grad_clip=1.0),
        eval_fn=eval_fn,
        optimizer=optimizer,
    )  # fmt: skip
    history = trainer.fit()
    return model.eval(), history


def save_bilm(model: BiLM, folder: str | Path, history=None) -> Path:
    """Write ``model.safetensors``, ``config.json``, ``vocab.txt`` (+ ``history.json``)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(model.state_dict(), folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(asdict(model.config), indent=1))
    model.vocab.save(folder / "vocab.txt")
    if history is not None:
        (folder / "history.json").write_text(history.to_json())
    return folder


def load_bilm(folder: str | Path, device=None) -> BiLM:
    """Read a biLM written by :func:`save_bilm` (with its history as ``model.history``, if any)."""
    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"no biLM in {folder} (model.safetensors is missing).")
    config = BiLMConfig(**json.loads((folder / "config.json").read_text()))
    model = BiLM(config, Vocab.load(folder / "vocab.txt"))
    tensors = load_weights(folder / "model.safetensors")
    load_model_weights(model, tensors, f"the biLM in {folder}")
    hist = folder / "history.json"
    model.history = History.from_json(hist.read_text()) if hist.is_file() else None
    return model.to(device or "cpu").eval()


def load_or_train(preset: str | BiLMConfig = "cpu", device=None, progress: bool = True) -> BiLM:
    """The trained biLM of ``preset`` (or of a ``BiLMConfig``), trained on WikiText-2 the first
    time and then loaded from the cache (:func:`bertlab.checkpoint.cached`, kind ``"elmo"``).
    ``model.history`` holds the training curve."""
    config = BiLMConfig.preset(preset) if isinstance(preset, str) else preset

    def build(folder: Path) -> None:
        train, valid = data.wikitext2_sentences("train"), data.wikitext2_sentences("valid")
        model, history = train_bilm(config, train, valid, build_vocab(train), device, progress)
        save_bilm(model, folder, history)

    return cached("elmo", config, build, lambda folder: load_bilm(folder, pick_device(device)))
