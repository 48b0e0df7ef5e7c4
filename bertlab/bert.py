"""BERT's model in one file: config, embeddings, attention, encoder layer, pre-training heads.

This is the model of Devlin et al. (2018), "BERT: Pre-training of Deep Bidirectional Transformers
for Language Understanding", written to be read top to bottom (in the spirit of nanoGPT's
``model.py``):

1. ``BertConfig``: every size of the model in one dataclass, with the paper's presets, and the
   switches later chapters ablate: ``causal`` (left-to-right attention, as in GPT),
   ``embedding_size`` and ``share_layers`` (ALBERT's factorized embedding and shared layers).
2. ``Embeddings``: token + *learned* position + segment embeddings, then LayerNorm and dropout.
3. ``SelfAttention``: multi-head scaled dot-product attention, softmax(QK^T / sqrt(d)) V.
4. ``EncoderLayer``: attention and a GELU feed-forward network, each wrapped in
   "add the input back, then LayerNorm" (post-LN, as in the original Transformer).
5. ``BertModel``: embeddings, a stack of encoder layers, and the pooler (tanh(Linear([CLS]))).
6. The pre-training heads: ``MLMHead`` (masked LM, decoder tied to the token embeddings) and
   ``NSPHead`` (next-sentence prediction), together in ``BertForPreTraining``.

The fine-tuning heads live in ``bertlab.heads``. The checks of configs and inputs (clear errors
instead of a traceback from deep inside torch) are in ``bertlab.bert_checks``.

The weights use the same layout as Google's checkpoints and Hugging Face's ``BertModel``
(separate query / key / value matrices, post-LN), so ``bertlab.hf`` can load real pretrained
weights into it and the outputs match ``transformers`` to float precision.

Shapes in comments: B = batch size, T = sequence length, H = hidden size, A = attention heads,
D = H / A (size of one head), I = intermediate (feed-forward) size, V = vocabulary size,
E = embedding size (H unless ALBERT's factorization is on).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from bertlab.bert_checks import BertConfigError, BertInputError, check_config, check_inputs

__all__ = [
    "BertConfig",
    "BertConfigError",
    "BertInputError",
    "BertOutput",
    "NAMED_SIZES",
    "Embeddings",
    "SelfAttention",
    "EncoderLayer",
    "BertModel",
    "MLMHead",
    "NSPHead",
    "PreTrainingOutput",
    "BertForPreTraining",
    "check_config",
    "check_inputs",
    "init_weights",
    "initialize",
]


# ----------------------------------------------------------------------------------------------
# 1. Configuration
# ----------------------------------------------------------------------------------------------


@dataclass
class BertConfig:
    """All the sizes of a BERT model.

    The defaults are BERT-base (L=12, H=768, A=12: 110M parameters). ``BertConfig.named(name)``
    gives the sizes of ``NAMED_SIZES``: the paper's two models ("base", "large"), the smaller ones
    of Turc et al. ("tiny", "mini", "small", "medium") and ALBERT-base; all follow the paper's
    rules, one head per 64 hidden units and a feed-forward layer 4 times as wide as the hidden
    size. Any field can be overridden, e.g. ``BertConfig.named("mini", vocab_size=8000)``.
    """

    vocab_size: int = 30522  # V: WordPiece vocabulary of bert-base-uncased
    hidden: int = 768  # H: width of every token vector
    layers: int = 12  # L: number of encoder layers
    heads: int = 12  # A: attention heads per layer (each of size H / A)
    intermediate: int = 3072  # I: width of the feed-forward layer (4H)
    max_position: int = 512  # longest sequence: rows of the learned position table
    type_vocab: int = 2  # segments: sentence A = 0, sentence B = 1
    dropout: float = 0.1  # dropout on embeddings and on every residual branch
    attention_dropout: float = 0.1  # dropout on the attention probabilities
    layer_norm_eps: float = 1e-12  # epsilon inside every LayerNorm (BERT's value)
    initializer_range: float = 0.02  # std of the normal init of weight matrices
    pad_token_id: int = 0  # id of [PAD]; recorded for tokenizers and the Hugging Face config
    causal: bool = False  # True: each token attends only to itself and the tokens before it
    embedding_size: int | None = None  # E: ALBERT's factorized embedding V·E + E·H (None: E = H)
    share_layers: bool = False  # ALBERT: one encoder layer's weights used by all L layers

    def __post_init__(self) -> None:
        check_config(self)

    @property
    def head_size(self) -> int:
        """D = H / A, the size of the query/key/value vectors of one head."""
        return self.hidden // self.heads

    @property
    def embedding_width(self) -> int:
        """E: the width of the embedding tables (H for BERT, smaller for ALBERT)."""
        return self.embedding_size or self.hidden

    @classmethod
    def named(cls, name: str, **overrides) -> BertConfig:
        """One of the sizes in ``NAMED_SIZES``, with any field overridden:
        ``BertConfig.named("mini", vocab_size=8000, max_position=128)``."""
        if name not in NAMED_SIZES:
            raise BertConfigError(
                f"no BERT size named {name!r}; choose one of: {', '.join(NAMED_SIZES)}."
            )
        layers, hidden, *albert = NAMED_SIZES[name]
        sizes = dict(layers=layers, hidden=hidden, heads=hidden // 64, intermediate=4 * hidden)
        if albert:  # V = 30,000, a 128-wide factorized embedding, one layer shared by all
            sizes |= dict(vocab_size=30000, embedding_size=128, share_layers=True)
        return cls(**(sizes | overrides))

    def to_dict(self) -> dict:
        """The fields as a plain dict (``BertConfig(**config.to_dict())`` rebuilds it)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: The paper's two sizes, the smaller BERTs of Turc et al. (2019), "Well-Read Students Learn
#: Better", and ALBERT-base (Lan et al. 2019): (L, H) with A = H / 64 and I = 4H. Parameters of
#: ``BertModel``: tiny 4,385,920; mini 11,170,560; small 28,763,648; medium 41,373,184;
#: base 109,482,240; large 335,141,888; albert_base 11,683,584 (as transformers counts them).
NAMED_SIZES = {
    "tiny": (2, 128),
    "mini": (4, 256),
    "small": (4, 512),
    "medium": (8, 512),
    "base": (12, 768),
    "large": (24, 1024),
    "albert_base": (12, 768, "albert"),
}


# ----------------------------------------------------------------------------------------------
# 2. Weight initialisation (BERT's: normal(0, 0.02) matrices, zero biases, LayerNorm 1 / 0)
# ----------------------------------------------------------------------------------------------


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Initialise one module the way BERT does; use as ``model.apply(init_weights)``."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def initialize(module: nn.Module, config: BertConfig) -> None:
    """BERT's initialisation for every submodule of ``module``, with the config's std."""
    module.apply(lambda m: init_weights(m, config.initializer_range))


# ----------------------------------------------------------------------------------------------
# 3. Embeddings: token + learned position + segment
# ----------------------------------------------------------------------------------------------


class Embeddings(nn.Module):
    """Turn ids into vectors: e = LayerNorm(E_token[id] + E_position[t] + E_segment[type]).

    All three tables are learned. The position table has one row per position up to
    ``max_position`` (512 in BERT): positions are *learned*, not the Transformer's sinusoids.
    With ALBERT's ``embedding_size`` E the tables are E wide and a Linear(E, H) follows: V·E + E·H
    parameters instead of V·H.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        E = config.embedding_width
        self.token = nn.Embedding(config.vocab_size, E)  # (V, E)
        self.position = nn.Embedding(config.max_position, E)  # (P, E)
        self.segment = nn.Embedding(config.type_vocab, E)  # (S, E)
        self.norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.project = nn.Linear(E, config.hidden) if config.embedding_size else None  # E -> H

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None):
        T = input_ids.size(1)
        x = self.token(input_ids)  # (B, T, E)
        x = x + self.position.weight[:T]  # (T, E) broadcast over the batch: position t gets row t
        if token_type_ids is None:
            x = x + self.segment.weight[0]  # (E,): every token in segment A
        else:
            x = x + self.segment(token_type_ids)  # (B, T, E)
        x = self.dropout(self.norm(x))  # (B, T, E)
        return x if self.project is None else self.project(x)  # (B, T, H)


# ----------------------------------------------------------------------------------------------
# 4. Multi-head attention
# ----------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Multi-head attention with the output projection.

    Q, K, V are H x H projections whatever the number of heads: the heads only *split* the H
    dimensions into A groups of D = H / A, so the parameter count (4H^2 + 4H with the output
    projection) does not depend on A. Keys and values come from the input itself
    (self-attention) or, given a ``context``, from another sequence (cross-attention, as in an
    encoder-decoder).

    Two code paths compute the same thing:
    - the fast one calls ``F.scaled_dot_product_attention`` (fused kernels, never materialises the
      (T, T) probabilities as a separate tensor we can read);
    - the explicit one writes softmax(QK^T / sqrt(D)) out, and returns the probabilities so they
      can be drawn. ``BertModel`` uses it only when ``output_attentions=True``.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        H = config.hidden
        self.heads = config.heads
        self.head_size = config.head_size
        self.query = nn.Linear(H, H)
        self.key = nn.Linear(H, H)
        self.value = nn.Linear(H, H)
        self.out = nn.Linear(H, H)
        self.attention_dropout = config.attention_dropout

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.head_size).transpose(1, 2)  # (B, A, T, D)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        return_probs: bool = False,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend.

        Args:
            x: (B, T, H) token vectors (the queries; also keys and values without ``context``).
            mask: boolean, broadcastable to (B, A, T, S), True where a query may look at a key;
                None means everything is visible.
            is_causal: apply the left-to-right mask (only used when ``mask`` is None; otherwise
                the caller has already folded it into ``mask``).
            return_probs: use the explicit path and also return the attention probabilities.
            context: (B, S, H) vectors to take keys and values from (cross-attention).

        Returns:
            (B, T, H) output and, with ``return_probs``, the (B, A, T, S) probabilities.
        """
        B, T, H = x.shape
        source = x if context is None else context  # (B, S, H)
        q = self._split(self.query(x))  # (B, A, T, D)
        k = self._split(self.key(source))  # (B, A, S, D)
        v = self._split(self.value(source))  # (B, A, S, D)
        p_drop = self.attention_dropout if self.training else 0.0
        probs = None
        if not return_probs:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p_drop, is_causal=is_causal and mask is None
            )  # (B, A, T, D)
        else:
            scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_size)  # (B, A, T, S)
            if is_causal and mask is None:
                mask = torch.ones(T, k.shape[2], dtype=torch.bool, device=x.device).tril()
            if mask is not None:
                # finfo.min rather than -inf: a fully masked row stays finite instead of NaN
                scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
            probs = scores.softmax(dim=-1)  # (B, A, T, S): each row sums to 1 over the keys
            y = F.dropout(probs, p_drop) @ v  # (B, A, T, D)
        y = y.transpose(1, 2).reshape(B, T, H)  # (B, T, H): heads side by side again
        return self.out(y), probs


# ----------------------------------------------------------------------------------------------
# 5. One encoder layer: attention and feed-forward, each with residual + LayerNorm (post-LN)
# ----------------------------------------------------------------------------------------------


class EncoderLayer(nn.Module):
    """x = LN(x + Attention(x));  x = LN(x + W2 GELU(W1 x + b1) + b2)."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = SelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.ffn_in = nn.Linear(config.hidden, config.intermediate)  # H -> I
        self.ffn_out = nn.Linear(config.intermediate, config.hidden)  # I -> H
        self.ffn_norm = nn.LayerNorm(config.hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def feed_forward(self, x: torch.Tensor) -> torch.Tensor:
        """x = LN(x + W2 GELU(W1 x + b1) + b2): the position-wise half of the layer."""
        h = F.gelu(self.ffn_in(x))  # (B, T, I): exact (erf) GELU, as in BERT
        return self.ffn_norm(x + self.dropout(self.ffn_out(h)))  # (B, T, H)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        is_causal: bool = False,
        return_probs: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        a, probs = self.attention(x, mask, is_causal, return_probs)  # (B, T, H)
        x = self.attention_norm(x + self.dropout(a))  # (B, T, H)
        return self.feed_forward(x), probs


# ----------------------------------------------------------------------------------------------
# 6. The model
# ----------------------------------------------------------------------------------------------


@dataclass
class BertOutput:
    """What ``BertModel`` returns.

    last_hidden_state: (B, T, H), the top layer's vector for every token.
    pooled: (B, H), tanh(Linear(last_hidden_state[:, 0])): the [CLS] vector through the pooler.
    hidden_states: with ``output_hidden_states``, a tuple of L + 1 tensors (B, T, H): the
        embeddings' output, then the output of each layer; otherwise None.
    attentions: with ``output_attentions``, a tuple of L tensors (B, A, T, T) of attention
        probabilities (query positions by key positions); otherwise None.
    """

    last_hidden_state: torch.Tensor
    pooled: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


class BertModel(nn.Module):
    """The BERT encoder: embeddings, L encoder layers, pooler.

    ``model(input_ids, token_type_ids, attention_mask)`` takes (B, T) integer tensors and returns a
    ``BertOutput``. Inputs are checked first (:func:`check_inputs`), and mistakes raise
    ``BertInputError`` with a message saying what to change; ``model.check_inputs = False`` skips
    the checks, and with them the one device synchronisation they cost per call.
    """

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        distinct = 1 if config.share_layers else config.layers  # ALBERT: one layer, L times
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(distinct))
        self.pooler = nn.Linear(config.hidden, config.hidden)
        self.check_inputs = True
        initialize(self, config)

    def stack(self) -> list[EncoderLayer]:
        """The L layers in the order they run (the same one L times when ``share_layers``)."""
        return [self.layers[i % len(self.layers)] for i in range(self.config.layers)]

    def attention_mask(self, attention_mask: torch.Tensor | None, T: int) -> torch.Tensor | None:
        """(B, T) 1 = token / 0 = padding  ->  boolean (B, 1, 1|T, T), True = may attend.

        The key dimension is masked: no query looks at a padding token. Padding positions still
        get an output vector (computed from the real tokens); ignore it downstream. None when
        nothing is hidden, so attention can use its fastest kernel; finding that out costs a
        device synchronisation, so it is only looked for when inputs are checked anyway.
        """
        if attention_mask is None or (self.check_inputs and bool(attention_mask.all())):
            return None
        mask = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): same for every query
        if self.config.causal:
            causal = torch.ones(T, T, dtype=torch.bool, device=mask.device).tril()  # (T, T)
            mask = mask & causal  # (B, 1, T, T)
        return mask

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> BertOutput:
        """Encode a batch.

        Args:
            input_ids: (B, T) token ids, T <= max_position.
            token_type_ids: (B, T) segment ids (0 = sentence A, 1 = sentence B); None = all 0.
            attention_mask: (B, T), 1 (or True) for real tokens, 0 for padding; None = no padding.
            output_attentions: also return each layer's attention probabilities (slower path).
            output_hidden_states: also return the embeddings and every layer's output.
        """
        if self.check_inputs:
            device = self.embeddings.token.weight.device
            check_inputs(self.config, input_ids, token_type_ids, attention_mask, device)
        mask = self.attention_mask(attention_mask, input_ids.size(1))
        x = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        hidden_states = [x] if output_hidden_states else None
        attentions = [] if output_attentions else None
        for layer in self.stack():
            x, probs = layer(x, mask, self.config.causal, output_attentions)  # (B, T, H)
            if output_hidden_states:
                hidden_states.append(x)
            if output_attentions:
                attentions.append(probs)  # (B, A, T, T)
        pooled = torch.tanh(self.pooler(x[:, 0]))  # (B, H): the [CLS] token, through the pooler
        return BertOutput(
            last_hidden_state=x,
            pooled=pooled,
            hidden_states=tuple(hidden_states) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


# ----------------------------------------------------------------------------------------------
# 7. Pre-training heads: masked LM and next-sentence prediction
# ----------------------------------------------------------------------------------------------


def select_positions(hidden: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    """Pick token vectors: None -> (B, T, H); bool (B, T) -> (N, H); indices (B, K) -> (B, K, H)."""
    if positions is None:
        return hidden
    if positions.dtype == torch.bool:
        if positions.shape != hidden.shape[:2]:
            raise BertInputError(
                f"a boolean positions mask must have shape (B, T) = {tuple(hidden.shape[:2])}, "
                f"got {tuple(positions.shape)}."
            )
        return hidden[positions]  # (N, H): N = number of True entries, in row-major order
    if (
        positions.dtype.is_floating_point
        or positions.dim() != 2
        or positions.size(0) != hidden.size(0)
    ):
        raise BertInputError(
            f"positions must be a boolean (B, T) mask or integer (B, K) indices with "
            f"B = {hidden.size(0)}, got dtype {positions.dtype} and shape {tuple(positions.shape)}."
        )
    index = positions.unsqueeze(-1).expand(-1, -1, hidden.size(-1))  # (B, K, H)
    return hidden.gather(1, index)  # (B, K, H)


class MLMHead(nn.Module):
    """Masked-LM head: predict the original token at (masked) positions.

    logits = LayerNorm(GELU(W h + b)) E^T + bias, where E is the token embedding matrix: the
    decoder *shares* its (V, E) weight with the input embeddings (weight tying), and only the
    per-token output ``bias`` (V,) is new. (With ALBERT's factorization W maps H to E.)

    ``forward(hidden, positions)`` decodes only the requested positions, which saves the (B, T, V)
    logits tensor when only 15% of the tokens are masked.
    """

    def __init__(self, config: BertConfig, token_embedding: nn.Embedding | None = None):
        super().__init__()
        E = config.embedding_width
        self.transform = nn.Linear(config.hidden, E)
        self.transform_norm = nn.LayerNorm(E, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(E, config.vocab_size, bias=False)  # (V, E)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))  # (V,)
        initialize(self, config)
        if token_embedding is not None:
            self.decoder.weight = token_embedding.weight  # tied: one tensor, two uses

    def forward(self, hidden: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Logits over the vocabulary.

        Args:
            hidden: (B, T, H) encoder output.
            positions: None (decode every token, returns (B, T, V)); a boolean (B, T) mask
                (returns (N, V) for the N True entries, in row-major order, matching
                ``labels[mask]``); or integer indices (B, K) (returns (B, K, V)).
        """
        h = select_positions(hidden, positions)  # (..., H)
        h = self.transform_norm(F.gelu(self.transform(h)))  # (..., E)
        return F.linear(h, self.decoder.weight, self.bias)  # (..., V)


class NSPHead(nn.Module):
    """Next-sentence prediction: pooled [CLS] (B, H) -> logits (B, 2); 0 = IsNext, 1 = NotNext."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.classifier = nn.Linear(config.hidden, 2)
        initialize(self, config)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(pooled)  # (B, 2)


@dataclass
class PreTrainingOutput:
    """``BertForPreTraining`` output: MLM logits, NSP logits (B, 2) and the encoder's output."""

    mlm_logits: torch.Tensor
    nsp_logits: torch.Tensor
    encoder: BertOutput


class BertForPreTraining(nn.Module):
    """BERT with both pre-training heads: ``bert`` + ``mlm`` (tied to the embeddings) + ``nsp``."""

    def __init__(self, config: BertConfig | BertModel):
        super().__init__()
        self.bert = config if isinstance(config, BertModel) else BertModel(config)
        self.config = self.bert.config
        self.mlm = MLMHead(self.config, self.bert.embeddings.token)
        self.nsp = NSPHead(self.config)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        mlm_positions: torch.Tensor | None = None,
        **kwargs,
    ) -> PreTrainingOutput:
        """``mlm_positions`` as in ``MLMHead.forward``; extra kwargs go to ``BertModel.forward``."""
        out = self.bert(input_ids, token_type_ids, attention_mask, **kwargs)
        return PreTrainingOutput(
            mlm_logits=self.mlm(out.last_hidden_state, mlm_positions),
            nsp_logits=self.nsp(out.pooled),
            encoder=out,
        )
