"""How many parameters does BERT have? Exact counts from the config, and the notes' estimate.

ALBERT's two savings are counted too: a factorized embedding (``BertConfig.embedding_size``) and
one layer shared by all (``share_layers``); ``BertConfig.named("albert_base")`` has 11,683,584.

``count(config)`` adds up every weight matrix, bias and LayerNorm of ``bertlab.bert.BertModel``
(which has the same layout as Google's checkpoints and ``transformers.BertModel``) by formula, one
entry per component, so the book can show where the 110M of BERT-base live. The result equals
``sum(p.numel() for p in BertModel(config).parameters())``.

``notes_estimate(config)`` is the estimate in the study notes the book follows:

    V·H + L·(3H² + H² + 2·4H²) = V·H + 12·L·H²

token embeddings, plus per layer the Q, K, V projections (3H²), the attention output projection
(H²) and the two feed-forward matrices (H x 4H and 4H x H). It is a good estimate (within 2% for
BERT-base) but it leaves out:

- the position embeddings (max_position x H = 512·768 = 393,216 for base) and the segment
  embeddings (type_vocab x H = 2·768);
- every bias: 4H in attention and 4H + H in the feed-forward network, per layer;
- every LayerNorm (a scale and a shift of H each): one after the embeddings, two per layer;
- the pooler (H² + H) that turns [CLS] into the pooled vector;
- and the notes use V = 30,000 where BERT's WordPiece vocabulary has 30,522 entries.

With V = 30,000 it gives 107,974,656 for base and 332,709,888 for large (the notes' 107.9M and
332.7M); the exact counts are 109,482,240 and 335,141,888.
"""

from __future__ import annotations

import torch
from torch import nn

from bertlab.bert import BertConfig

__all__ = ["count", "count_module", "count_pretraining_heads", "notes_estimate", "PRESETS"]

#: The named sizes of ``BertConfig`` (paper + Turc et al. 2019), smallest first.
PRESETS = ("tiny", "mini", "small", "medium", "base", "large")


def count(config: BertConfig) -> dict[str, int]:
    """Exact parameter count of ``BertModel(config)``, per component.

    Keys (``layer.*`` entries are for ONE encoder layer; ``layers`` is the distinct layers: L of
    them, or one with ALBERT's ``share_layers``):

    - ``token_embeddings`` V·E, ``position_embeddings`` P·E, ``segment_embeddings`` S·E,
      ``embedding_layernorm`` 2E, ``embedding_projection`` E·H + H (ALBERT's factorization;
      0 for BERT, where E = H), ``embeddings`` (their sum);
    - ``layer.query.weight`` H², ``layer.query.bias`` H, the same for ``key``, ``value`` and the
      attention output projection ``attention_output``; ``layer.attention`` = 4H² + 4H (all four
      projections: note that the number of heads does not appear);
    - ``layer.attention_layernorm`` 2H;
    - ``layer.ffn_in.weight`` H·I, ``layer.ffn_in.bias`` I, ``layer.ffn_out.weight`` I·H,
      ``layer.ffn_out.bias`` H, ``layer.ffn`` (their sum);
    - ``layer.output_layernorm`` 2H, ``layer`` (everything in one layer), ``layers``;
    - ``pooler`` H² + H; ``total``.
    """
    V, H, L, I = config.vocab_size, config.hidden, config.layers, config.intermediate
    P, S, E = config.max_position, config.type_vocab, config.embedding_width
    c: dict[str, int] = {}
    c["token_embeddings"] = V * E
    c["position_embeddings"] = P * E
    c["segment_embeddings"] = S * E
    c["embedding_layernorm"] = 2 * E
    c["embedding_projection"] = E * H + H if config.embedding_size else 0
    c["embeddings"] = V * E + P * E + S * E + 2 * E + c["embedding_projection"]
    for name in ("query", "key", "value", "attention_output"):
        c[f"layer.{name}.weight"] = H * H
        c[f"layer.{name}.bias"] = H
    c["layer.attention"] = 4 * H * H + 4 * H
    c["layer.attention_layernorm"] = 2 * H
    c["layer.ffn_in.weight"] = H * I
    c["layer.ffn_in.bias"] = I
    c["layer.ffn_out.weight"] = I * H
    c["layer.ffn_out.bias"] = H
    c["layer.ffn"] = 2 * H * I + I + H
    c["layer.output_layernorm"] = 2 * H
    c["layer"] = c["layer.attention"] + c["layer.attention_layernorm"] + c["layer.ffn"]
    c["layer"] += c["layer.output_layernorm"]
    c["layers"] = (1 if config.share_layers else L) * c["layer"]
    c["pooler"] = H * H + H
    c["total"] = c["embeddings"] + c["layers"] + c["pooler"]
    return c


def count_pretraining_heads(config: BertConfig) -> dict[str, int]:
    """Parameters that pre-training adds on top of ``BertModel`` (``BertForPreTraining``).

    The MLM decoder matrix is tied to the token embeddings, so it adds nothing; the MLM head adds
    its transform (H·E + E), its LayerNorm (2E) and an output bias per token (V); NSP adds a
    Linear(H, 2). (E = H except with ALBERT's factorized embedding.)
    """
    H, V, E = config.hidden, config.vocab_size, config.embedding_width
    c = {
        "mlm.transform": H * E + E,
        "mlm.layernorm": 2 * E,
        "mlm.decoder.weight": 0,
        "mlm.bias": V,
        "nsp": 2 * H + 2,
    }
    c["total"] = sum(c.values())
    return c


def notes_estimate(config: BertConfig, vocab_size: int | None = None) -> int:
    """The notes' estimate V·H + L·(3H² + H² + 2·4H²) = V·H + 12·L·H².

    ``vocab_size`` overrides V (the notes use 30,000: with it, BERT-base's estimate is
    107,974,656). It counts only the token embeddings and the weight matrices of attention and
    the feed-forward network (assuming I = 4H); see the module docstring for what it leaves out.
    """
    V = config.vocab_size if vocab_size is None else vocab_size
    H, L = config.hidden, config.layers
    return V * H + L * (3 * H * H + H * H + 2 * 4 * H * H)


def count_module(module: nn.Module) -> int:
    """``sum(p.numel())`` over a module's parameters, each shared (tied) tensor counted once.

    Works on models built on the ``meta`` device (no memory), e.g.
    ``with torch.device("meta"): m = BertModel(BertConfig.named("large"))``.
    """
    seen: set[int] = set()
    total = 0
    for p in module.parameters():  # parameters() already skips repeats of a shared Parameter
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total


def _example() -> None:  # pragma: no cover - a quick look from the command line
    for name in PRESETS:
        cfg = BertConfig.named(name)
        with torch.device("meta"):
            from bertlab.bert import BertModel

            n = count_module(BertModel(cfg))
        print(
            f"{name:>6}: {count(cfg)['total']:>12,}  model {n:>12,}  notes {notes_estimate(cfg):,}"
        )


if __name__ == "__main__":  # pragma: no cover
    _example()
