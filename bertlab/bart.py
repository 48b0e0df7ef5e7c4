"""BART: a small denoising encoder-decoder built from ``bertlab.bert``'s blocks.

Lewis et al. (2019), "BART: Denoising Sequence-to-Sequence Pre-training for Natural Language
Generation, Translation, and Comprehension", corrupt text and train a Transformer encoder-decoder
to write the original back. Read top to bottom:

1. ``BartConfig``: the model's sizes, the noise, the data and the training, with presets.
   The noise itself (text infilling with Poisson(3) spans, token deletion) and the noised
   batches are ``bertlab.bart_noising``'s, re-exported here.
2. The model. The encoder is ``bertlab.bert.EncoderLayer`` as it is (post-LN attention and
   GELU feed-forward). :class:`DecoderLayer` *is* that layer with its attention made causal
   and a cross-attention block (``bertlab.bert.SelfAttention`` given the encoder's output as
   ``context``) between attention and feed-forward. What differs from BERT is the embedding:
   no segment table, one token table shared by encoder, decoder and the output layer, and
   learned positions with fairseq's offset of 2 (rows 0 and 1 are never used; we keep them so
   that our weights map one to one onto ``transformers.BartModel``'s, whose parameter count
   :func:`count` reproduces and whose outputs ours equal).
3. Decoding: :func:`greedy_decode` and :func:`beam_search`, batched (beams live in the batch
   dimension, B·K rows), with no cache: each step runs the decoder over the prefix again
   (sentences are short; it keeps the model code free of caching).
4. Training on WikiText-2 sentences with ``bertlab.train.Trainer`` and the WordPiece vocabulary
   of pre-training, and :func:`load_or_train`, cached with ``bertlab.checkpoint.cached``.

Shapes in comments: B = batch, S = source length, T = target length, H = hidden size,
V = vocabulary size, K = beams.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.bart_noising import (  # the noise and the data, re-exported
    DenoisingBatches,
    add_noise,
    sentence_ids,
    span_lengths,
    text_infilling,
    token_deletion,
)
from bertlab.bert import BertConfig, EncoderLayer, SelfAttention, initialize, select_positions
from bertlab.checkpoint import cached
from bertlab.train import History, Presets, TrainConfig, Trainer, pick_device, torch_threads

__all__ = [
    "BartConfig",
    "BartInputError",
    "span_lengths",
    "text_infilling",
    "token_deletion",
    "add_noise",
    "BartEmbeddings",
    "DecoderLayer",
    "BartModel",
    "count",
    "bart_config_to_hf",
    "to_transformers",
    "greedy_decode",
    "beam_search",
    "sequence_log_probs",
    "sentence_ids",
    "DenoisingBatches",
    "denoising_loss",
    "evaluate",
    "TrainedBart",
    "train",
    "load_folder",
    "load_or_train",
]

POSITION_OFFSET = 2  # fairseq's (and transformers') learned positions start at row 2


class BartInputError(ValueError):
    """Inputs a ``BartModel`` cannot take (wrong shape or dtype, too long); says the fix."""


# --------------------------------------------------------------------------------------------------
# 1. Configuration
# --------------------------------------------------------------------------------------------------


@dataclass
class BartConfig(Presets):
    """Model sizes, noise, data and training of a small BART (``BartConfig.preset("cpu")``).

    Special tokens are the WordPiece vocabulary's: [PAD] pads, the source is
    ``[CLS] noised [SEP]``, the decoder reads ``[CLS] x`` and predicts ``x [SEP]``.
    """

    # model
    vocab_size: int = 8192  # asked of the WordPiece trainer; the model uses what it learned
    hidden: int = 128  # H (BART-base: 768)
    encoder_layers: int = 2
    decoder_layers: int = 2
    heads: int = 4
    intermediate: int = 512  # feed-forward width (4H)
    max_position: int = 64  # longest source or target, [CLS]/[SEP] included
    dropout: float = 0.1
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    pad_id: int = 0
    bos_id: int = 2  # [CLS]: the decoder's first input
    eos_id: int = 3  # [SEP]: ends every target
    mask_id: int = 4  # [MASK]
    # noise (BART's text infilling and token deletion)
    mask_ratio: float = 0.3  # share of the tokens text infilling hides (the paper's 30%)
    poisson_lambda: float = 3.0  # mean span length
    deletion_rate: float = 0.1  # probability that token deletion drops a token
    # data: WikiText-2 sentences of min_words..max_words tokens, no <unk>
    vocab_min_frequency: int = 100  # the pre-training chapter's vocabulary (cached)
    documents: int | None = None  # only the first n train articles (None: all)
    min_words: int = 4
    max_words: int = 40
    # training
    steps: int = 1000
    batch_size: int = 32
    lr: float = 1e-3
    warmup: float = 0.05
    weight_decay: float = 0.01
    seed: int = 0
    cpu_bf16: bool = False
    eval_every: int = 0
    eval_sentences: int = 512  # WikiText-2 valid sentences for the validation loss

    PRESETS: ClassVar[dict[str, dict]] = {
        # the chapter's run: 600 steps of 16 sentences, about two minutes on two CPU cores. Too
        # short to learn to copy: it ends as a language model that ignores most of the source
        # (validation loss about 5.6); "gpu" is the run that learns the task
        "cpu": dict(steps=600, batch_size=16, lr=1e-3, dropout=0.0, eval_every=200),
        "gpu": dict(hidden=512, encoder_layers=6, decoder_layers=6, heads=8, intermediate=2048,
                    max_position=128, max_words=80, dropout=0.1, steps=20000, batch_size=128,
                    lr=5e-4, eval_every=2000, eval_sentences=2048),
        # for tests: a 1000-piece vocabulary of 20 articles, one layer each side
        "tiny": dict(vocab_size=1000, vocab_min_frequency=10, documents=20, hidden=32,
                     encoder_layers=1, decoder_layers=1, heads=2, intermediate=64, max_position=48,
                     max_words=30, dropout=0.0, steps=30, batch_size=8, eval_sentences=32),
    }  # fmt: skip

    def __post_init__(self) -> None:
        if not 0 <= self.mask_ratio < 1 or not 0 <= self.deletion_rate < 1:
            raise ValueError(
                f"mask_ratio ({self.mask_ratio}) and deletion_rate ({self.deletion_rate}) must "
                f"be in [0, 1); BART uses mask_ratio=0.3."
            )
        if self.poisson_lambda <= 0:
            raise ValueError(
                f"poisson_lambda must be > 0 (BART uses 3), got {self.poisson_lambda}."
            )
        self.bert_config()  # the block sizes are checked by BertConfig

    def bert_config(self) -> BertConfig:
        """The sizes of the blocks borrowed from ``bertlab.bert`` (LayerNorm eps 1e-5, BART's)."""
        return BertConfig(
            vocab_size=self.vocab_size, hidden=self.hidden, layers=self.encoder_layers,
            heads=self.heads, intermediate=self.intermediate, max_position=self.max_position,
            dropout=self.dropout, attention_dropout=self.attention_dropout, layer_norm_eps=1e-5,
            initializer_range=self.initializer_range, pad_token_id=self.pad_id,
        )  # fmt: skip

    def train_config(self, **overrides) -> TrainConfig:
        names = ("steps", "batch_size", "lr", "warmup", "weight_decay", "seed", "cpu_bf16",
                 "eval_every")  # fmt: skip
        return TrainConfig(log_every=10, **{n: getattr(self, n) for n in names}, **overrides)


# --------------------------------------------------------------------------------------------------
# 2. The model
# --------------------------------------------------------------------------------------------------


class BartEmbeddings(nn.Module):
    """Token vectors (from the shared table) + learned positions, then LayerNorm and dropout.

    BART's ``layernorm_embedding``; no segment table. The position table has max_position + 2
    rows and position t reads row t + 2 (fairseq's offset, kept for a one-to-one weight map).
    """

    def __init__(self, config: BartConfig):
        super().__init__()
        self.position = nn.Embedding(config.max_position + POSITION_OFFSET, config.hidden)
        self.norm = nn.LayerNorm(config.hidden, eps=1e-5)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.size(1)
        x = tokens + self.position.weight[POSITION_OFFSET : POSITION_OFFSET + T]  # (B, T, H)
        return self.dropout(self.norm(x))


class DecoderLayer(EncoderLayer):
    """An encoder layer whose attention is causal, with cross-attention added after it.

    x = LN(x + CausalSelfAttention(x));  x = LN(x + Attention(x, encoder output));
    x = LN(x + FFN(x)). The first and last blocks are ``EncoderLayer``'s own modules.
    """

    def __init__(self, config: BertConfig):
        super().__init__(config)
        self.cross_attention = SelfAttention(config)  # queries: decoder; keys, values: encoder
        self.cross_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        memory_mask: torch.Tensor | None = None,
        return_probs: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, T, H), memory (B, S, H), memory_mask bool (B, 1, 1, S) -> (B, T, H) and, with
        ``return_probs``, the cross-attention probabilities (B, A, T, S)."""
        a, _ = self.attention(x, is_causal=True)  # position t sees 0..t only
        x = self.attention_norm(x + self.dropout(a))  # (B, T, H)
        c, probs = self.cross_attention(x, memory_mask, return_probs=return_probs, context=memory)
        x = self.cross_norm(x + self.dropout(c))  # (B, T, H)
        return self.feed_forward(x), probs


class BartModel(nn.Module):
    """Shared embedding, encoder (BERT's layers), decoder (:class:`DecoderLayer`), tied output.

    ``model(src_ids, tgt_ids, src_mask)`` returns logits (B, T, V) for the next token at each
    target position; ``positions`` (a boolean (B, T) mask) keeps only those rows, (N, V).
    ``encode`` and ``decode`` check their ids first (:func:`check_ids`, raising
    ``BartInputError``); ``model.check_inputs = False`` skips the checks, and with them the
    device synchronisation the vocabulary check costs on every decoding step.
    """

    def __init__(self, config: BartConfig):
        super().__init__()
        self.config = config
        blocks = config.bert_config()
        self.shared = nn.Embedding(config.vocab_size, config.hidden)  # (V, H): in and out
        self.encoder_embeddings = BartEmbeddings(config)
        self.encoder = nn.ModuleList(EncoderLayer(blocks) for _ in range(config.encoder_layers))
        self.decoder_embeddings = BartEmbeddings(config)
        self.decoder = nn.ModuleList(DecoderLayer(blocks) for _ in range(config.decoder_layers))
        self.check_inputs = True
        initialize(self, blocks)

    @staticmethod
    def key_mask(src_mask: torch.Tensor | None) -> torch.Tensor | None:
        """(B, S) 1 = token, 0 = padding -> bool (B, 1, 1, S): which keys may be attended."""
        return None if src_mask is None else src_mask.bool()[:, None, None, :]

    def encode(self, src_ids: torch.Tensor, src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, S) ids -> (B, S, H) encoder output."""
        if self.check_inputs:
            check_ids(self.config, src_ids, "src_ids", src_mask)
        mask = self.key_mask(src_mask)
        x = self.encoder_embeddings(self.shared(src_ids))  # (B, S, H)
        for layer in self.encoder:
            x, _ = layer(x, mask)
        return x

    def decode(
        self, tgt_ids: torch.Tensor, memory: torch.Tensor, src_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, T) decoder inputs and (B, S, H) encoder output -> (B, T, H)."""
        if self.check_inputs:
            check_ids(self.config, tgt_ids, "tgt_ids")
        mask = self.key_mask(src_mask)
        x = self.decoder_embeddings(self.shared(tgt_ids))  # (B, T, H)
        for layer in self.decoder:
            x, _ = layer(x, memory, mask)
        return x

    def lm_head(self, h: torch.Tensor) -> torch.Tensor:
        """(..., H) -> (..., V) logits, through the shared embedding (tied, no bias)."""
        return F.linear(h, self.shared.weight)

    def forward(
        self,
        src_ids: torch.Tensor,
        tgt_ids: torch.Tensor,
        src_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        h = self.decode(tgt_ids, self.encode(src_ids, src_mask), src_mask)  # (B, T, H)
        return self.lm_head(select_positions(h, positions))  # (B, T, V) or (N, V)


def check_ids(config: BartConfig, ids, name: str, mask: torch.Tensor | None = None) -> None:
    """Raise :class:`BartInputError` for ids the model cannot take, saying what to change."""
    if not isinstance(ids, torch.Tensor) or ids.dim() != 2 or ids.dtype.is_floating_point:
        shape = tuple(ids.shape) if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise BartInputError(
            f"{name} must be a 2-D (batch, length) integer tensor, got {shape}; add the batch "
            f"dimension with .unsqueeze(0) or convert with .long()."
        )
    if ids.size(1) > config.max_position:
        raise BartInputError(
            f"{name} has length {ids.size(1)}, more than max_position={config.max_position} "
            f"(the rows of the learned position table): truncate to {config.max_position} "
            f"tokens or use a BartConfig with a larger max_position."
        )
    if bool(((ids < 0) | (ids >= config.vocab_size)).any()):
        raise BartInputError(
            f"{name} must be in [0, vocab_size={config.vocab_size}), got values from "
            f"{int(ids.min())} to {int(ids.max())}: encode with the tokenizer the model was "
            f"trained with."
        )
    if mask is not None and mask.shape != ids.shape:
        raise BartInputError(
            f"src_mask has shape {tuple(mask.shape)} but {name} has {tuple(ids.shape)}; "
            f"give one entry per token (1 = token, 0 = padding)."
        )


def count(config: BartConfig) -> dict[str, int]:
    """Parameters of ``BartModel(config)`` per component (= ``transformers.BartModel``'s).

    ``shared`` V·H (one table: encoder input, decoder input, output layer); per side the
    position table (P + 2)·H and ``layernorm_embedding`` 2H; an encoder layer is BERT's
    (attention 4H² + 4H, feed-forward 2HI + I + H, two LayerNorms); a decoder layer adds a
    cross-attention 4H² + 4H and its LayerNorm 2H. The output layer is tied: 0.
    """
    V, H, P, I = config.vocab_size, config.hidden, config.max_position, config.intermediate
    attention, ffn, norm = 4 * H * H + 4 * H, 2 * H * I + I + H, 2 * H
    c = {"shared": V * H, "positions": (P + POSITION_OFFSET) * H, "layernorm_embedding": norm}
    c["encoder_layer"] = attention + norm + ffn + norm
    c["decoder_layer"] = c["encoder_layer"] + attention + norm  # + cross-attention
    side = c["positions"] + c["layernorm_embedding"]
    c["encoder"] = side + config.encoder_layers * c["encoder_layer"]
    c["decoder"] = side + config.decoder_layers * c["decoder_layer"]
    c["lm_head"] = 0
    c["total"] = c["shared"] + c["encoder"] + c["decoder"]
    return c


def bart_config_to_hf(config: BartConfig, vocab_size: int | None = None):
    """The ``transformers.BartConfig`` of the same model (exact GELU, no embedding scaling,
    no activation dropout, the same special ids)."""
    import transformers

    return transformers.BartConfig(
        vocab_size=vocab_size or config.vocab_size, d_model=config.hidden,
        encoder_layers=config.encoder_layers, decoder_layers=config.decoder_layers,
        encoder_attention_heads=config.heads, decoder_attention_heads=config.heads,
        encoder_ffn_dim=config.intermediate, decoder_ffn_dim=config.intermediate,
        max_position_embeddings=config.max_position, dropout=config.dropout,
        attention_dropout=config.attention_dropout, activation_dropout=0.0,
        activation_function="gelu", init_std=config.initializer_range, scale_embedding=False,
        pad_token_id=config.pad_id, bos_token_id=config.bos_id, eos_token_id=config.eos_id,
        decoder_start_token_id=config.bos_id, forced_eos_token_id=None,
    )  # fmt: skip


_PROJECTIONS = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}
_HF_NAMES = {
    **{f"attention.{k}": f"self_attn.{v}" for k, v in _PROJECTIONS.items()},
    **{f"cross_attention.{k}": f"encoder_attn.{v}" for k, v in _PROJECTIONS.items()},
    "attention_norm": "self_attn_layer_norm",
    "cross_norm": "encoder_attn_layer_norm",
    "ffn_in": "fc1",
    "ffn_out": "fc2",
    "ffn_norm": "final_layer_norm",
}


def _hf_name(name: str) -> str:
    side, _, rest = name.partition(".")
    if side == "shared":
        return "model.shared.weight"
    if side.endswith("_embeddings"):
        part = {"position": "embed_positions", "norm": "layernorm_embedding"}
        module, _, param = rest.partition(".")
        return f"model.{side.removesuffix('_embeddings')}.{part[module]}.{param}"
    index, _, rest = rest.partition(".")
    module, param = rest.rsplit(".", 1)
    return f"model.{side}.layers.{index}.{_HF_NAMES[module]}.{param}"


def to_transformers(model: BartModel):
    """A ``transformers.BartForConditionalGeneration`` holding ``model``'s weights (eval mode)."""
    import transformers

    hf = transformers.BartForConditionalGeneration(bart_config_to_hf(model.config)).eval()
    own = {_hf_name(k): v for k, v in model.state_dict().items()}
    missing, unexpected = hf.load_state_dict(own, strict=False)
    tied = {
        "lm_head.weight",
        "final_logits_bias",
        "model.encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight",
    }
    if set(missing) - tied or unexpected:
        raise RuntimeError(f"weight map incomplete: missing {missing}, unexpected {unexpected}")
    return hf


# --------------------------------------------------------------------------------------------------
# 3. Decoding: greedy and beam search, batched
# --------------------------------------------------------------------------------------------------


def _next_log_probs(model: BartModel, seqs, memory, src_mask) -> torch.Tensor:
    """Log-probabilities (rows, V) of the token after each prefix in ``seqs`` (rows, t)."""
    h = model.decode(seqs, memory, src_mask)[:, -1]  # (rows, H): the last position only
    return F.log_softmax(model.lm_head(h).float(), dim=-1)  # (rows, V)


def _max_len(model: BartModel, src_ids: torch.Tensor, max_len: int | None) -> int:
    return min(model.config.max_position, max_len or src_ids.size(1) + 8)


@torch.no_grad()
def greedy_decode(
    model: BartModel, src_ids: torch.Tensor, src_mask: torch.Tensor | None = None,
    max_len: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The most likely next token at each step. Returns the tokens (B, T) after [CLS] (eos
    included, [PAD] after it) and each sequence's log-probability (B,)."""
    c = model.config
    memory = model.encode(src_ids, src_mask)  # (B, S, H)
    B = src_ids.size(0)
    seqs = torch.full((B, 1), c.bos_id, dtype=torch.long, device=src_ids.device)
    scores = torch.zeros(B, device=src_ids.device)
    done = torch.zeros(B, dtype=torch.bool, device=src_ids.device)
    for _ in range(_max_len(model, src_ids, max_len) - 1):
        logp = _next_log_probs(model, seqs, memory, src_mask)  # (B, V)
        token = logp.argmax(-1).masked_fill(done, c.pad_id)  # (B,)
        scores += logp.gather(1, token[:, None])[:, 0].masked_fill(done, 0.0)
        seqs = torch.cat([seqs, token[:, None]], dim=1)
        done |= token == c.eos_id
        if bool(done.all()):
            break
    return seqs[:, 1:], scores


@torch.no_grad()
def beam_search(
    model: BartModel, src_ids: torch.Tensor, src_mask: torch.Tensor | None = None,
    beams: int = 4, max_len: int | None = None, length_penalty: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Keep the ``beams`` best prefixes of each sentence; all B·K of them are one batch.

    A finished prefix (it produced [SEP]) stays in its beam, extended by [PAD] at no cost.
    At the end the best of the K is taken by log-probability / length^``length_penalty``
    (0: the plain log-probability). Returns tokens (B, T) as :func:`greedy_decode` does and
    the chosen sequences' (unnormalised) log-probabilities (B,).
    """
    c, K = model.config, beams
    B, device = src_ids.size(0), src_ids.device
    memory = model.encode(src_ids, src_mask).repeat_interleave(K, 0)  # (B·K, S, H)
    mask = None if src_mask is None else src_mask.repeat_interleave(K, 0)  # (B·K, S)
    seqs = torch.full((B * K, 1), c.bos_id, dtype=torch.long, device=device)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # one live beam at the start, so the first step fills K distinct ones
    done = torch.zeros(B * K, dtype=torch.bool, device=device)
    offsets = torch.arange(B, device=device)[:, None] * K  # (B, 1): first row of each sentence
    for _ in range(_max_len(model, src_ids, max_len) - 1):
        logp = _next_log_probs(model, seqs, memory, mask)  # (B·K, V)
        V = logp.size(-1)
        finished = torch.full_like(logp[0], float("-inf"))
        finished[c.pad_id] = 0.0  # (V,): a finished beam can only add [PAD], for free
        logp = torch.where(done[:, None], finished, logp)
        total = scores[:, :, None] + logp.view(B, K, V)  # (B, K, V)
        scores, index = total.view(B, K * V).topk(K, dim=-1)  # (B, K)
        rows = (offsets + index // V).view(-1)  # (B·K,): the beam each new prefix extends
        token = (index % V).view(-1, 1)  # (B·K, 1)
        seqs = torch.cat([seqs[rows], token], dim=1)
        done = done[rows] | (token[:, 0] == c.eos_id)
        if bool(done.all()):
            break
    out = seqs[:, 1:].view(B, K, -1)  # (B, K, T)
    lengths = (out != c.pad_id).sum(-1).clamp(min=1).float()  # (B, K)
    best = (scores / lengths**length_penalty).argmax(-1)  # (B,)
    pick = torch.arange(B, device=device)
    return out[pick, best], scores[pick, best]


@torch.no_grad()
def sequence_log_probs(
    model: BartModel, src_ids: torch.Tensor, out_ids: torch.Tensor,
    src_mask: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """log P(out | src) (B,) by teacher forcing, for outputs as the decoders return them
    (tokens after [CLS], [PAD] after [SEP] not counted)."""
    c = model.config
    bos = torch.full_like(out_ids[:, :1], c.bos_id)
    logp = F.log_softmax(model(src_ids, torch.cat([bos, out_ids[:, :-1]], 1), src_mask), -1)
    token = logp.gather(-1, out_ids[..., None])[..., 0]  # (B, T)
    return token.masked_fill(out_ids == c.pad_id, 0.0).sum(-1)


# --------------------------------------------------------------------------------------------------
# 4. Training and the cache
# --------------------------------------------------------------------------------------------------


def denoising_loss(model, batch: dict) -> dict[str, torch.Tensor]:
    """Mean cross-entropy of the target tokens (logits only where there is a label)."""
    labels = batch["labels"]
    keep = labels != -100  # (B, T)
    logits = model(batch["src_ids"], batch["tgt_ids"], batch["src_mask"], positions=keep)
    return {"loss": F.cross_entropy(logits.float(), labels[keep])}  # logits: (N, V)


def evaluate(model, batches: Sequence[dict]) -> dict[str, float]:
    """Token-level loss and accuracy of the targets over fixed validation batches."""
    total = right = n = 0.0
    for b in batches:
        keep = b["labels"] != -100
        logits = model(b["src_ids"], b["tgt_ids"], b["src_mask"], positions=keep).float()
        total += float(F.cross_entropy(logits, b["labels"][keep], reduction="sum"))
        right += float((logits.argmax(-1) == b["labels"][keep]).sum())
        n += int(keep.sum())
    return {"loss": total / n, "accuracy": right / n}


@dataclass
class TrainedBart:
    """A trained BART with its tokenizer, config, history, validation metrics and folder."""

    model: BartModel
    tokenizer: object
    config: BartConfig
    history: History
    metrics: dict
    folder: Path


def _tokenizer(config: BartConfig):
    from bertlab.pretraining_data import wordpiece_tokenizer

    return wordpiece_tokenizer(config.vocab_size, config.documents, config.vocab_min_frequency)


def train(config: BartConfig, out: str | Path, device=None, progress: bool = True) -> TrainedBart:
    """Train a BART on noised WikiText-2 train sentences; write weights and records to ``out``
    (a checkpoint too: running again with the same config resumes)."""
    from bertlab.checkpoint import save_weights

    out = Path(out)
    tokenizer = _tokenizer(config)
    model_config = replace(config, vocab_size=tokenizer.vocab_size)
    train_batches = DenoisingBatches(sentence_ids(config, tokenizer), config, config.batch_size,
                                     config.seed)  # fmt: skip
    valid_set = DenoisingBatches(sentence_ids(config, tokenizer, "valid"), config, 64)
    valid = valid_set.fixed(config.eval_sentences)
    torch.manual_seed(config.seed)
    model = BartModel(model_config)
    trainer = Trainer(
        model, denoising_loss, train_batches,
        config.train_config(ckpt_dir=str(out), ckpt_minutes=2.0, device=device, progress=progress),
        eval_fn=lambda m: evaluate(m, valid), run_config={"bart": asdict(config)},
    )  # fmt: skip
    # one thread on the CPU: with two, this model's small matrix products run about ten times
    # slower (measured on the book's two-core machine), as train.torch_threads explains
    with torch_threads(1 if pick_device(device).type == "cpu" else None):
        history = trainer.fit()
    model.eval()
    metrics = {**history.evals[-1], "seconds": history.seconds,
               "parameters": sum(p.numel() for p in model.parameters()),
               "train_sentences": len(train_batches.sentences)}  # fmt: skip
    save_weights(model.state_dict(), out / "model.safetensors")
    tokenizer.save_vocab(out / "vocab.txt")
    (out / "bart.json").write_text(json.dumps(asdict(model_config), indent=1) + "\n")
    (out / "history.json").write_text(history.to_json())
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    (out / "checkpoint.safetensors").unlink(missing_ok=True)  # the weights are kept above
    return load_folder(out)


def load_folder(folder: str | Path) -> TrainedBart:
    """Read what :func:`train` wrote."""
    from bertlab.checkpoint import load_model_weights, load_weights
    from bertlab.wordpiece import WordPieceTokenizer

    folder = Path(folder)
    raw = json.loads((folder / "bart.json").read_text())
    config = BartConfig(**{f.name: raw[f.name] for f in fields(BartConfig) if f.name in raw})
    model = BartModel(config)
    path = folder / "model.safetensors"
    load_model_weights(model, load_weights(path), f"the BART weights {path}")
    tokenizer = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt")
    history = History.from_json((folder / "history.json").read_text())
    metrics = json.loads((folder / "metrics.json").read_text())
    return TrainedBart(model.eval(), tokenizer, config, history, metrics, folder)


def load_or_train(
    preset: str | BartConfig = "cpu", device=None, progress: bool = True
) -> TrainedBart:
    """The BART of ``preset`` from the cache (kind ``"bart"``), trained first if not there."""
    config = BartConfig.preset(preset) if isinstance(preset, str) else preset
    return cached("bart", config, lambda f: train(config, f, device, progress), load_folder)
