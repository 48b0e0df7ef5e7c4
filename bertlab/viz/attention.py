"""Attention (chapter 7): what bertviz draws, from our models; heatmaps; what the heads do.

- :class:`AttentionData` / :func:`attention_data`: one text or pair through a model, its attention
  collected as bertviz wants it (one ``(1, A, T, T)`` tensor per layer, the tokens);
- :func:`bertviz_html` / :func:`attention_view`: bertviz's head and model views, made
  reproducible (rounded numbers, an element id from a hash), so they diff cleanly and render in
  the static book;
- :func:`attention_grid`: a matplotlib grid of heads;
- measurements over a batch rather than pictures of one sentence: :func:`head_habits` (how much
  attention each head puts on [CLS], [SEP], the neighbours, itself, the same word elsewhere, as
  Clark et al. 2019 measured) and :func:`layer_similarity` (does a position keep its identity
  from one layer to the next?).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import HTML


class AttentionData:
    """What bertviz draws: one ``(1, A, T, T)`` tensor per layer, the T tokens, where B starts.

    ``attention[l][0, h, i, j]`` is how much query position i looks at key position j in head h
    of layer l (each row sums to 1). ``sentence_b_start`` is the index of the first token of the
    second sentence (None for a single sentence). Built by :func:`attention_data`.
    """

    def __init__(self, attention, tokens: Sequence[str], sentence_b_start: int | None = None):
        self.attention = _check_attention(attention, tokens)
        self.tokens = list(tokens)
        T = len(self.tokens)
        if sentence_b_start is not None and not 0 < sentence_b_start < T:
            raise ValueError(
                f"sentence_b_start={sentence_b_start} is not a position inside the {T} tokens: "
                f"give the index of the first token of sentence B (1..{T - 1}), or None."
            )
        self.sentence_b_start = sentence_b_start

    @property
    def layers(self) -> int:
        return len(self.attention)

    @property
    def heads(self) -> int:
        return self.attention[0].shape[1]

    def stacked(self):
        """All layers as one ``(L, A, T, T)`` tensor."""
        return torch.cat(self.attention, dim=0)

    def __repr__(self) -> str:
        return (
            f"AttentionData({self.layers} layers x {self.heads} heads, {len(self.tokens)} tokens, "
            f"sentence_b_start={self.sentence_b_start})"
        )


def _check_attention(attention, tokens: Sequence[str]) -> tuple:
    """Attention as a tuple of float ``(1, A, T, T)`` CPU tensors; T must match the tokens.

    Accepts a sequence of ``(1, A, T, T)`` or ``(A, T, T)`` tensors (one per layer, as
    ``BertModel(..., output_attentions=True).attentions`` gives them) or one ``(L, A, T, T)``
    tensor / array.
    """
    if isinstance(attention, (torch.Tensor, np.ndarray)):
        attention = torch.as_tensor(attention)
        if attention.dim() != 4:
            raise ValueError(
                f"an attention tensor must be (layers, heads, T, T), got shape "
                f"{tuple(attention.shape)}."
            )
        attention = list(attention.unbind(0))
    if attention is None or len(attention) == 0:
        raise ValueError(
            "no attention given: run the model with output_attentions=True (for a transformers "
            "model, also load it with attn_implementation='eager')."
        )
    layers = []
    for i, a in enumerate(attention):
        a = torch.as_tensor(a).detach().to("cpu", torch.float32)
        if a.dim() == 3:
            a = a.unsqueeze(0)
        if a.dim() != 4 or a.shape[0] != 1 or a.shape[-1] != a.shape[-2]:
            raise ValueError(
                f"layer {i}: attention must be (1, heads, T, T) for one sequence, got shape "
                f"{tuple(a.shape)} (select one example of a batch with attention[l][i:i+1])."
            )
        if layers and a.shape != layers[0].shape:
            raise ValueError(
                f"layer {i} has attention of shape {tuple(a.shape)} but layer 0 has "
                f"{tuple(layers[0].shape)}: every layer must cover the same tokens and heads."
            )
        layers.append(a)
    T = layers[0].shape[-1]
    if len(tokens) != T:
        raise ValueError(
            f"the attention covers {T} positions but {len(tokens)} tokens were given: pass "
            f"exactly one token per position, including [CLS], [SEP] and any [PAD] "
            f"(tokenizer.convert_ids_to_tokens(input_ids))."
        )
    return tuple(layers)


def _encode_for_attention(tokenizer, text_a: str, text_b: str | None):
    """(input_ids, token_type_ids, tokens) of one text or pair (bertlab or HF tokenizer)."""
    enc = tokenizer.encode(text_a, text_b)
    if not isinstance(enc, dict):  # a transformers tokenizer: encode() gives bare ids
        enc = tokenizer(text_a, text_b)
    ids = list(enc["input_ids"])
    types = list(enc.get("token_type_ids") or [0] * len(ids))
    return ids, types, list(tokenizer.convert_ids_to_tokens(ids))


def attention_data(model, tokenizer, text_a: str, text_b: str | None = None) -> AttentionData:
    """Run ``model`` on one text (or pair) and collect its attention for bertviz or plots.

    ``model`` is a :class:`bertlab.bert.BertModel` (or a ``transformers`` BERT loaded with
    ``attn_implementation="eager"``); ``tokenizer`` a :class:`bertlab.wordpiece.WordPieceTokenizer`
    (or a ``transformers`` tokenizer). The model runs in eval mode (no dropout) without gradients.
    """
    ids, types, tokens = _encode_for_attention(tokenizer, text_a, text_b)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(
                input_ids=torch.tensor([ids], device=device),
                token_type_ids=torch.tensor([types], device=device),
                output_attentions=True,
            )
    finally:
        model.train(was_training)
    attention = getattr(out, "attentions", None)
    if attention is None or any(a is None for a in attention):
        raise ValueError(
            "the model returned no attention probabilities: for a transformers model load it "
            "with attn_implementation='eager' (transformers >= 5 returns none otherwise)."
        )
    b_start = types.index(1) if text_b is not None and 1 in types else None
    return AttentionData(attention, tokens, b_start)


def bertviz_html(
    attention,
    tokens: Sequence[str] | None = None,
    sentence_b_start: int | None = None,
    kind: str = "head",
    decimals: int = 3,
    width: int | None = None,
    **kwargs,
):
    """bertviz's head view (``kind="head"``) or model view (``"model"``) as an ``IPython`` HTML.

    ``attention`` is an :class:`AttentionData` or what :func:`bertviz.head_view` takes (one
    ``(1, A, T, T)`` tensor per layer) with ``tokens`` and ``sentence_b_start``. Two things differ
    from calling bertviz directly:

    - probabilities are rounded to ``decimals`` places, which keeps the notebook small (bertviz
      writes every number into the page) and the output the same from run to run;
    - bertviz names its element with a random id; here the id is a hash of the view's content, so
      re-running a notebook reproduces its output exactly (no spurious diffs under nbval or git).

    ``width`` (model view only) sets the drawing's width in pixels: bertviz draws 970, wider
    than the text column of a book page; the thumbnails shrink to fit. Extra keyword arguments go
    to bertviz (``layer=``, ``heads=``, ``include_layers=``; for the model view
    ``display_mode="light"`` is the default here). Display the result, or return it from a cell.
    """
    if kind not in ("head", "model"):
        raise ValueError(f"kind must be 'head' or 'model', not {kind!r}.")
    if width is not None and (kind != "model" or not 300 <= width <= 4000):
        raise ValueError(
            f"width={width!r}: only the model view takes a width, in pixels from 300 to 4000 "
            f"(its enlarged head alone is 300 wide)."
        )
    if not isinstance(attention, AttentionData):
        if tokens is None:
            raise ValueError("give the tokens (one per position) with the attention tensors.")
        attention = AttentionData(attention, tokens, sentence_b_start)
    elif tokens is not None and list(tokens) != attention.tokens:
        raise ValueError("tokens given twice and they differ: pass AttentionData alone.")
    rounded = [a.double().round(decimals=decimals) for a in attention.attention]
    try:
        import bertviz
    except ImportError as e:
        raise ModuleNotFoundError("the attention views need bertviz: pip install bertviz") from e
    if kind == "head":
        view = bertviz.head_view
    else:
        view = bertviz.model_view
        kwargs.setdefault("display_mode", "light")
    html = view(
        rounded,
        list(attention.tokens),
        sentence_b_start=attention.sentence_b_start,
        html_action="return",
        **kwargs,
    ).data
    # bertviz substitutes its parameters for both "PYTHON_PARAMS" markers in its script, one of
    # them in a comment: drop that second copy of every number (it halves the output).
    start = html.find("const params = ") + len("const params = ")
    end = html.find("; // HACK: ", start)
    if start >= len("const params = ") and end > 0:
        copy = "// HACK: " + html[start:end] + " is a template marker"
        html = html.replace(copy, "// PYTHON_PARAMS is a template marker", 1)
    if width is not None:
        html = html.replace("const DIV_WIDTH = 970;", f"const DIV_WIDTH = {int(width)};", 1)
    random_ids = set(re.findall(r"bertviz-[0-9a-f]{32}", html))
    for rid in random_ids:
        digest = hashlib.sha256(html.replace(rid, "bertviz-").encode("utf-8")).hexdigest()
        html = html.replace(rid, f"bertviz-{kind}-{digest[:16]}")
    return HTML(html)


def attention_view(
    model, tokenizer, text_a: str, text_b: str | None = None, kind: str = "head", **kwargs
):
    """bertviz's head view or model view of ``model`` on a text or sentence pair.

    Runs the model with ``output_attentions=True`` (:func:`attention_data`) and hands the
    attention to bertviz (:func:`bertviz_html`), returning HTML whose element id is stable. In a
    notebook, end a cell with it (or ``display`` it); it also renders in the static HTML book.
    """
    return bertviz_html(attention_data(model, tokenizer, text_a, text_b), kind=kind, **kwargs)


def attention_grid(
    attentions,
    tokens: Sequence[str],
    layers: Sequence[int] | None = None,
    heads: Sequence[int] | None = None,
    pairs: Sequence[tuple[int, int]] | None = None,
    labels: Sequence[str] | None = None,
    ncols: int | None = None,
    title: str | None = None,
    vmax: float = 1.0,
    cmap: str = "Blues",
):
    """A grid of attention heatmaps, one panel per (layer, head), as a matplotlib figure.

    ``attentions`` is what the model returns with ``output_attentions=True`` for one sequence
    (L tensors of shape (1, A, T, T)), an ``(L, A, T, T)`` tensor, or an :class:`AttentionData`.
    Rows of a panel are query positions (who looks), columns key positions (looked at); the
    token labels sit on the left column and the bottom row. Pick panels with ``layers`` x
    ``heads`` (a full grid; default every layer and head) or with a list of ``pairs``
    ``[(layer, head), ...]`` (laid out ``ncols`` per row), optionally with one ``labels`` entry
    each. Layers and heads are numbered from 0, as in bertviz.
    """
    if isinstance(attentions, AttentionData):
        attentions = attentions.attention
    att = np.stack([a[0].numpy() for a in _check_attention(attentions, tokens)])  # (L, A, T, T)
    L, A, T, _ = att.shape
    if pairs is not None:
        if layers is not None or heads is not None:
            raise ValueError("give either pairs=[(layer, head), ...] or layers/heads, not both.")
        pairs = [(int(lay), int(h)) for lay, h in pairs]
        if not pairs:
            raise ValueError("pairs is empty: give at least one (layer, head).")
        ncols = min(len(pairs), ncols or 4)
        nrows = -(-len(pairs) // ncols)
    else:
        layers = list(range(L)) if layers is None else [int(x) for x in layers]
        heads = list(range(A)) if heads is None else [int(x) for x in heads]
        if not layers or not heads:
            raise ValueError("layers and heads must not be empty.")
        pairs = [(lay, h) for lay in layers for h in heads]
        nrows, ncols = len(layers), len(heads)
    for lay, h in pairs:
        if not (0 <= lay < L and 0 <= h < A):
            raise ValueError(
                f"(layer {lay}, head {h}) does not exist: the attention has layers 0..{L - 1} "
                f"and heads 0..{A - 1}."
            )
    if labels is not None and len(labels) != len(pairs):
        raise ValueError(f"got {len(labels)} labels for {len(pairs)} panels: give one per panel.")
    side = min(max(0.16 * T + 0.6, 1.6), 6.0)  # inches per panel
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(side * ncols + 1.0, side * nrows + 1.0),
        squeeze=False,
        layout="constrained",
    )
    show_labels = T <= 60
    for k, ax in enumerate(axes.flat):
        if k >= len(pairs):
            ax.set_axis_off()
            continue
        lay, h = pairs[k]
        ax.imshow(att[lay, h], cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
        name = f"layer {lay}, head {h}"
        ax.set_title(name if labels is None else f"{name}\n{labels[k]}", fontsize=9)
        row, col = divmod(k, ncols)
        last_in_column = k + ncols >= len(pairs)
        ax.set_xticks(range(T) if show_labels and last_in_column else [])
        ax.set_yticks(range(T) if show_labels and col == 0 else [])
        if show_labels and last_in_column:
            ax.set_xticklabels(tokens, rotation=90, fontsize=7)
        if show_labels and col == 0:
            ax.set_yticklabels(tokens, fontsize=7)
    fig.suptitle(
        title or "Attention probabilities (rows: the token looking, columns: the token looked at)",
        fontsize=11,
    )
    return fig


# --------------------------------------------------------------------------------------------------
# Measuring the heads over a batch
# --------------------------------------------------------------------------------------------------


def _same_word(input_ids, real):
    """(N, T, T): key j is the same token id as query i, at another real position."""
    eye = torch.eye(input_ids.shape[1], dtype=torch.bool, device=input_ids.device)
    return (input_ids[:, :, None] == input_ids[:, None, :]) & ~eye & real[:, None, :]


def habit_targets(input_ids, attention_mask, cls_id: int, sep_id: int) -> dict:
    """Each pattern a head may follow, as (keys, queries): the ``(N, T, T)`` keys that count for
    each query, and the ``(N, T)`` queries averaged over. Queries are real tokens other than
    [CLS] and [SEP] ("same word elsewhere": those whose word occurs again)."""
    ids, real = input_ids, attention_mask.bool()  # (N, T)
    N, T = ids.shape
    ordinary = real & (ids != cls_id) & (ids != sep_id)
    eye = torch.eye(T, dtype=torch.bool, device=ids.device)
    same_word = _same_word(ids, real)
    return {
        "[CLS]": ((ids == cls_id)[:, None, :].expand(N, T, T), ordinary),
        "[SEP]": ((ids == sep_id)[:, None, :].expand(N, T, T), ordinary),
        "previous token": (eye.roll(-1, dims=1).tril().expand(N, T, T), ordinary),
        "next token": (eye.roll(1, dims=1).triu().expand(N, T, T), ordinary),
        "itself": (eye.expand(N, T, T), ordinary),
        "same word elsewhere": (same_word, ordinary & same_word.any(-1)),
    }


def head_habits(attentions, input_ids, attention_mask, cls_id: int, sep_id: int):
    """Where each head looks, on average over a batch: ``(scores, uniform)``.

    ``attentions`` is what a model returns with ``output_attentions=True`` (L tensors of shape
    (N, A, T, T)) or one ``(N, L, A, T, T)`` tensor; ``input_ids`` and ``attention_mask`` are
    the batch's (N, T). ``scores[pattern]`` is an ``(L, A)`` tensor: the attention mass head
    (l, a) puts on the pattern's keys (:func:`habit_targets`), averaged over its queries.
    ``uniform[pattern]`` is what a head spreading its attention evenly over the real tokens
    would score: the baseline a habit must beat.
    """
    att = attentions if torch.is_tensor(attentions) else torch.stack(tuple(attentions), dim=1)
    real = attention_mask.bool()  # (N, T)
    scores, uniform = {}, {}
    targets = habit_targets(input_ids, attention_mask, cls_id, sep_id)
    for pattern, (keys, queries) in targets.items():
        mass = (att * keys[:, None, None]).sum(-1)  # (N, L, A, T): mass on the keys, per query
        q = queries[:, None, None, :].float()  # (N, 1, 1, T)
        scores[pattern] = ((mass * q).sum((0, 3)) / q.sum((0, 3))).cpu()  # (L, A)
        share = (keys & real[:, None, :]).sum(-1) / real.sum(-1, keepdim=True)  # (N, T)
        uniform[pattern] = ((share * queries).sum() / queries.sum()).item()
    return scores, uniform


def top_heads(scores: dict, k: int = 3) -> dict[str, list[tuple[int, int]]]:
    """The ``k`` (layer, head) pairs with the highest score, per pattern, best first."""
    return {
        p: [divmod(int(i), s.shape[1]) for i in s.flatten().topk(k).indices]
        for p, s in scores.items()
    }


def cross_cosine(lower, upper):
    """(N, T, T) cosine similarity of upper-layer position i with lower-layer position j, from
    two (N, T, H) hidden states."""
    x, y = F.normalize(lower, dim=-1), F.normalize(upper, dim=-1)
    return y @ x.transpose(-2, -1)


def position_similarity(lower, upper, input_ids, attention_mask) -> dict[str, float]:
    """How alike two layers' (N, T, H) vectors are, over the real tokens of a batch: the mean
    cosine at the same position, for the same word at another position, and for other words,
    and how often a position's most similar lower vector is its own."""
    real = attention_mask.bool()  # (N, T)
    T = real.shape[1]
    sim = cross_cosine(lower, upper)  # (N, T, T)
    eye = torch.eye(T, dtype=torch.bool, device=sim.device)
    same_word = _same_word(input_ids, real)
    pair_ok = real[:, :, None] & real[:, None, :]
    own = (sim.masked_fill(~pair_ok, -2).argmax(-1) == torch.arange(T, device=sim.device))[real]
    return {
        "same position": sim.diagonal(dim1=1, dim2=2)[real].mean().item(),
        "same word, other position": sim[same_word & pair_ok].mean().item(),
        "other words": sim[pair_ok & ~eye & ~same_word].mean().item(),
        "most similar is itself": own.float().mean().item(),
    }


def layer_similarity(hidden_states, input_ids, attention_mask) -> dict[str, dict[str, float]]:
    """:func:`position_similarity` for each layer and the one below it (``"layer l -> l+1"``,
    layer 0 being the embeddings), then from the embeddings straight to the last layer.
    ``hidden_states``: the L + 1 (N, T, H) tensors of ``output_hidden_states=True``."""
    hs, L = hidden_states, len(hidden_states) - 1
    table = {
        f"layer {l} -> {l + 1}": position_similarity(hs[l], hs[l + 1], input_ids, attention_mask)
        for l in range(L)
    }
    table[f"embeddings -> layer {L}"] = position_similarity(
        hs[0], hs[-1], input_ids, attention_mask
    )
    return table
