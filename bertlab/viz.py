"""Pictures and widgets for the chapters.

Everything here has to work in three places: a live Jupyter kernel, Colab, and the *static* HTML
book, where no Python runs. So the interactive pieces are built from widgets whose behaviour lives
in the browser: :func:`figure_slider` renders one figure per setting ahead of time and lets a
slider pick which one is shown through a JavaScript link (``jslink``), which the saved widget state
replays without a kernel.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib.pyplot as plt


def figure_png(fig) -> bytes:
    """The PNG bytes of a matplotlib figure (and close it, so it is not shown twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def figure_slider(
    draw: Callable[[Any], Any],
    values: Sequence[Any],
    description: str = "value",
    start: Any = None,
    widget: str = "slider",
):
    """A slider (or ``widget="dropdown"``) over ``values`` showing the figure ``draw(value)``.

    All figures are drawn up front (keep ``values`` to a dozen or so) and stacked; the control's
    position selects one through a browser-side link, so it also works in the static HTML book.
    """
    if widget not in ("slider", "dropdown"):
        raise ValueError(f"widget must be 'slider' or 'dropdown', not {widget!r}.")
    import ipywidgets as widgets

    values = list(values)
    if not values:
        raise ValueError("figure_slider needs at least one value to draw.")
    images = [widgets.Image(value=figure_png(draw(v)), format="png") for v in values]
    stack = widgets.Stack(images, selected_index=0)
    control = widgets.SelectionSlider if widget == "slider" else widgets.Dropdown
    slider = control(
        options=[(str(v), i) for i, v in enumerate(values)],
        value=values.index(start) if start is not None else 0,
        description=description,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="420px"),
    )
    link = widgets.jslink((slider, "index"), (stack, "selected_index"))
    stack.selected_index = slider.index
    box = widgets.VBox([slider, stack])
    box.link = link  # keep a reference: the link is a widget of its own, saved with the state
    return box


def plot_history(history, metric: str | None = None, ax=None, label: str | None = None):
    """Plot a :class:`bertlab.train.History`: training loss by step, and an eval metric if named."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history.steps, history.loss, label=label or "training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if metric is not None:
        ax2 = ax.twinx()
        ax2.plot(history.eval_steps, history.metric(metric), "o--", color="C1", label=metric)
        ax2.set_ylabel(metric)
    ax.grid(alpha=0.3)
    return ax


# --------------------------------------------------------------------------------------------------
# Tokens and model inputs: coloured word pieces, a tokenizer explorer, BERT's input figure
# --------------------------------------------------------------------------------------------------

_WORD_COLOURS = ("#cfe2f3", "#d9ead3", "#fff2cc", "#fce5cd", "#d9d2e9", "#d0e0e3")
_SPECIAL_COLOUR = "#d9d9d9"
_UNK_COLOUR = "#f4cccc"
_SPECIALS = ("[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]")


def tokens_html(
    tokens: Sequence[str],
    ids: Sequence[int] | None = None,
    specials: Sequence[str] = _SPECIALS,
    unk_token: str = "[UNK]",
    prefix: str = "##",
) -> str:
    """Word pieces as coloured boxes, each with its id underneath, as an HTML string.

    The pieces of one word share a colour and sit close together (a ``##`` piece continues the
    word before it), so you see where each word was cut; special tokens are grey, ``[UNK]`` red.
    """
    import html

    if ids is not None and len(ids) != len(tokens):
        raise ValueError(f"got {len(tokens)} tokens but {len(ids)} ids; pass one id per token")
    specials = set(specials)
    words: list[list[str]] = []  # one list of piece boxes per word
    colour = -1
    previous_special = True
    for i, token in enumerate(tokens):
        special = token in specials or token == unk_token
        continues = (
            not special
            and not previous_special
            and token.startswith(prefix)
            and len(token) > len(prefix)
        )
        if token == unk_token:
            fill = _UNK_COLOUR
        elif special:
            fill = _SPECIAL_COLOUR
        else:
            colour += 0 if continues else 1
            fill = _WORD_COLOURS[colour % len(_WORD_COLOURS)]
        sub = ""
        if ids is not None:
            sub = f'<span style="display:block;font-size:70%;color:#555">{ids[i]}</span>'
        box = (
            f'<span style="display:inline-block;background:{fill};border:1px solid #999;'
            f'border-radius:3px;padding:1px 4px;margin-right:1px;text-align:center">'
            f'<span style="display:block">{html.escape(token)}</span>{sub}</span>'
        )
        if continues:
            words[-1].append(box)
        else:
            words.append([box])
        previous_special = special
    spans = "".join(
        f'<span style="display:inline-flex;margin:0 7px 5px 0">{"".join(w)}</span>' for w in words
    )
    return (
        '<div style="font-family:monospace;font-size:13px;line-height:1.25;display:flex;'
        f'flex-wrap:wrap;align-items:flex-start">{spans}</div>'
    )


def _labelled(text: str, control):
    """``control`` with ``text`` to its left, as an HTML widget rather than a ``description``.

    A description is cut to a fixed width and typeset through MathJax 2's API
    (``MathJax.Hub.Queue``), which the book's MathJax 3 lacks without a shim; a separate HTML
    label has neither problem.
    """
    import html

    import ipywidgets as widgets

    label = widgets.HTML(f"<b>{html.escape(text)}</b>", layout=widgets.Layout(margin="0 8px 0 0"))
    return widgets.HBox([label, control], layout=widgets.Layout(align_items="center"))


def html_selector(
    pages: Sequence[tuple[str, str]], description: str = "show", widget: str = "dropdown"
):
    """A dropdown (or ``widget="slider"``) choosing which of several HTML ``(label, html)`` pages
    is shown. Like :func:`figure_slider`, every page is rendered up front and the control is
    linked to them in the browser, so it works in the static HTML book too.
    """
    if widget not in ("slider", "dropdown"):
        raise ValueError(f"widget must be 'slider' or 'dropdown', not {widget!r}.")
    if not pages:
        raise ValueError("html_selector needs at least one (label, html) page.")
    import ipywidgets as widgets

    stack = widgets.Stack([widgets.HTML(value=h) for _, h in pages], selected_index=0)
    control = widgets.SelectionSlider if widget == "slider" else widgets.Dropdown
    chooser = control(
        options=[(label, i) for i, (label, _) in enumerate(pages)],
        value=0,
        layout=widgets.Layout(width="420px"),
    )
    widgets.jslink((chooser, "index"), (stack, "selected_index"))
    return widgets.VBox([_labelled(description, chooser), stack])


def _tokenized_html(tokenizer, text: str) -> str:
    """One text through one tokenizer: the text, its pieces with ids, and a count."""
    import html

    pieces = list(tokenizer.tokenize(text))
    ids = list(tokenizer.convert_tokens_to_ids(pieces))
    n_words = len(text.split())
    return (
        f'<div style="color:#444;margin:4px 0">{html.escape(text)}</div>'
        + tokens_html(pieces, ids)
        + f'<div style="color:#666;font-size:90%">{len(pieces)} pieces for {n_words} '
        "whitespace-separated words</div>"
    )


def tokenizer_explorer(tokenizers, texts: Sequence[str], description: str = "text"):
    """Pick a text and a vocabulary; see its word pieces and ids (pre-rendered, works offline).

    ``tokenizers`` maps a name to anything with ``tokenize(text)`` and
    ``convert_tokens_to_ids(pieces)`` (a :class:`bertlab.wordpiece.WordPieceTokenizer` or a
    ``transformers`` tokenizer). Every text is tokenized by every tokenizer ahead of time; a
    dropdown picks the text and toggle buttons the vocabulary, both linked in the browser.
    """
    import ipywidgets as widgets

    names, texts = list(tokenizers), list(texts)
    if not names or not texts:
        raise ValueError("tokenizer_explorer needs at least one tokenizer and one text.")
    labels = [t if len(t) <= 48 else t[:45] + "..." for t in texts]
    text_box = widgets.Dropdown(
        options=[(f"{i + 1}. {label}", i) for i, label in enumerate(labels)],
        value=0,
        layout=widgets.Layout(width="420px"),
    )
    vocab_box = widgets.ToggleButtons(
        options=[(n, i) for i, n in enumerate(names)], value=0, style={"button_width": "auto"}
    )
    per_vocab = []
    for name in names:
        pages = [widgets.HTML(value=_tokenized_html(tokenizers[name], t)) for t in texts]
        inner = widgets.Stack(pages, selected_index=0)
        widgets.jslink((text_box, "index"), (inner, "selected_index"))
        per_vocab.append(inner)
    outer = widgets.Stack(per_vocab, selected_index=0)
    widgets.jslink((vocab_box, "index"), (outer, "selected_index"))
    return widgets.VBox(
        [_labelled(description, text_box), _labelled("vocabulary", vocab_box), outer]
    )


def live_tokenizer(tokenizers, value: str = "Tokenization is unbelievably useful!"):
    """Type any text and see its pieces: a text box that runs the tokenizer in Python.

    This one needs a running kernel (Jupyter, Colab); in the static HTML book it only shows the
    text it started with. :func:`tokenizer_explorer` is the version that works everywhere.
    """
    import ipywidgets as widgets

    names = list(tokenizers)
    text = widgets.Text(value=value, layout=widgets.Layout(width="420px"))
    vocab = widgets.ToggleButtons(options=names, value=names[0], style={"button_width": "auto"})
    out = widgets.HTML()

    def update(_=None):
        out.value = _tokenized_html(tokenizers[vocab.value], text.value)

    text.observe(update, "value")
    vocab.observe(update, "value")
    update()
    note = widgets.HTML(
        '<i style="color:#a33">Live: needs a running Python kernel (Jupyter or Colab).</i>'
    )
    return widgets.VBox([note, _labelled("your text", text), _labelled("vocabulary", vocab), out])


def _math_label(base: str, sub: str) -> str:
    """``$E_{\\mathrm{sub}}$`` with TeX's special characters escaped (plain text if impossible)."""
    if any(c in sub for c in "\\^~"):
        return f"{base}({sub})"
    for c in "#$%&_{}":
        sub = sub.replace(c, "\\" + c)
    return f"${base}_{{\\mathrm{{{sub}}}}}$"


def draw_input_representation(
    tokens: Sequence[str],
    token_type_ids: Sequence[int],
    attention_mask: Sequence[int] | None = None,
    ids: Sequence[int] | None = None,
    title: str | None = None,
    pad_token: str = "[PAD]",
):
    """BERT's input as the paper's Figure 2 draws it, from real tokenizer output.

    One column per token; rows: the input pieces (with their ids), then the three embeddings
    that are summed, token (E_tok), segment (E_A or E_B) and position (E_0, E_1, ...), and the
    attention mask if given. Segment A is green, B blue; padding columns are hatched.
    """
    n = len(tokens)
    if len(token_type_ids) != n or (attention_mask is not None and len(attention_mask) != n):
        raise ValueError("tokens, token_type_ids and attention_mask must have the same length")
    rows = ["Input", "Token\nembeddings", "Segment\nembeddings", "Position\nembeddings"]
    if attention_mask is not None:
        rows.append("Attention\nmask")
    fig, ax = plt.subplots(figsize=(1.6 + 0.8 * n, 0.75 * len(rows) + 0.5))
    ax.set_xlim(-1.9, n)
    ax.set_ylim(-len(rows) + 0.9, 0.95)
    ax.set_axis_off()
    segment_fill = {0: "#d9ead3", 1: "#cfe2f3"}

    def cell(i, row, text, fill, pad, fontsize=10, sub=None):
        y = -row
        ax.add_patch(
            plt.Rectangle(
                (i + 0.05, y),
                0.9,
                0.7,
                fc=fill,
                ec="#777",
                lw=0.8,
                hatch="///" if pad else None,
                alpha=0.55 if pad else 1.0,
            )
        )
        ty = y + (0.45 if sub is not None else 0.35)
        ax.text(
            i + 0.5,
            ty,
            text,
            ha="center",
            va="center",
            fontsize=fontsize,
            color="#777" if pad else "k",
        )
        if sub is not None:
            ax.text(i + 0.5, y + 0.14, sub, ha="center", va="center", fontsize=7, color="#555")

    for r, name in enumerate(rows):
        ax.text(-0.15, -r + 0.35, name, ha="right", va="center", fontsize=10)
    for i, (tok, seg) in enumerate(zip(tokens, token_type_ids)):
        pad = tok == pad_token
        special = tok.startswith("[") and tok.endswith("]")
        cell(
            i,
            0,
            tok,
            "#eeeeee" if special else "#ffffff",
            pad,
            sub=None if ids is None else str(ids[i]),
        )
        cell(i, 1, _math_label("E", tok), "#fff2cc", pad)
        cell(
            i,
            2,
            _math_label("E", "AB"[seg] if seg in (0, 1) else str(seg)),
            segment_fill.get(seg, "#eeeeee"),
            pad,
        )
        cell(i, 3, _math_label("E", str(i)), "#f3f3f3", pad)
        for r in (2, 3):  # the "+" between the summed rows
            ax.text(i + 0.5, -r + 0.86, "+", ha="center", va="center", fontsize=10, color="#444")
        if attention_mask is not None:
            m = attention_mask[i]
            cell(i, 4, str(m), "#ffffff" if m else "#999999", False)
    ax.set_title(title or "BERT's input: token + segment + position embeddings", fontsize=11)
    return fig


# --------------------------------------------------------------------------------------------------
# Attention: bertviz views fed from our models, a matplotlib grid of heads, a parameter counter
# --------------------------------------------------------------------------------------------------


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
        import torch

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
    import numpy as np
    import torch

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
    import torch

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
    import hashlib
    import re

    from IPython.display import HTML

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
    import numpy as np

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


# The exact count of bertlab.bert.BertModel (see bertlab.params.count) and the notes' estimate,
# in JavaScript so the counter below works in the static book too. I = 4H, P = 512, S = 2.
_PARAM_COUNT_JS = """
function bertlabCount(V, H, L, A) {
  const I = 4 * H, P = 512, S = 2;
  const embeddings = V * H + P * H + S * H + 2 * H;
  const attention = 4 * H * H + 4 * H;
  const ffn = 2 * H * I + I + H;
  const layer = attention + 2 * H + ffn + 2 * H;
  const pooler = H * H + H;
  return {total: embeddings + L * layer + pooler, seed: V * H + 12 * L * H * H,
          attention: attention, layer: layer, headSize: H % A === 0 ? H / A : null};
}
"""

_PARAM_PRESETS = (
    ("Tiny", 2, 128, 2),
    ("Mini", 4, 256, 4),
    ("Small", 4, 512, 8),
    ("Medium", 8, 512, 8),
    ("MiniLM-L6", 6, 384, 12),
    ("base", 12, 768, 12),
    ("large", 24, 1024, 16),
)


def param_counter(layers: int = 12, hidden: int = 768, heads: int = 12, vocab: int = 30522):
    """Sliders for L, H, A and V showing BERT's exact parameter count and the notes' estimate.

    Plain HTML with a small script (no kernel needed: it works in Jupyter, Colab and the static
    book). The exact count is :func:`bertlab.params.count` (with I = 4H, 512 positions and 2
    segments) and the estimate :func:`bertlab.params.notes_estimate`, V·H + 12·L·H²; the numbers
    first shown are computed in Python, the script recomputes them as the sliders move. Moving A
    changes the head size H/A but not the count.
    """
    import hashlib
    import html as _html

    from IPython.display import HTML

    from bertlab.bert import BertConfig
    from bertlab.params import count, notes_estimate

    if hidden % heads:
        raise ValueError(f"hidden={hidden} is not divisible by heads={heads}.")
    cfg = BertConfig(
        vocab_size=vocab, hidden=hidden, layers=layers, heads=heads, intermediate=4 * hidden
    )
    exact, seed = count(cfg)["total"], notes_estimate(cfg)
    uid = (
        "bertlab-params-"
        + hashlib.sha256(f"{layers},{hidden},{heads},{vocab}".encode()).hexdigest()[:12]
    )
    sliders = [
        ("L", "layers", layers, 1, 48, 1),
        ("H", "hidden size", hidden, 64, 2048, 64),
        ("A", "attention heads", heads, 1, 32, 1),
        ("V", "vocabulary", vocab, 1000, 120000, 1),
    ]
    rows = "".join(
        f'<tr><td style="padding:2px 8px 2px 0"><b>{sym}</b> {_html.escape(name)}</td>'
        f'<td><input type="range" data-p="{sym}" min="{lo}" max="{hi}" step="{step}" '
        f'value="{val}" style="width:260px;vertical-align:middle"></td>'
        f'<td style="padding-left:8px;min-width:60px"><span data-v="{sym}">{val:,}</span></td>'
        "</tr>"
        for sym, name, val, lo, hi, step in sliders
    )
    buttons = "".join(
        f'<button type="button" data-preset="{lay},{hid},{hd}" style="margin:0 4px 4px 0;'
        f"padding:1px 8px;border:1px solid #999;border-radius:3px;background:#f6f6f6;"
        f'cursor:pointer">{name}</button>'
        for name, lay, hid, hd in _PARAM_PRESETS
    )
    diff = exact - seed
    out = (
        f'<div data-out="exact">exact count (bertlab.params.count): <b>{exact:,}</b></div>'
        f'<div data-out="seed">notes\' formula V·H + 12·L·H²: <b>{seed:,}</b></div>'
        f'<div data-out="diff">left out by the formula: {diff:,} ({100 * diff / exact:.2f}%)</div>'
        f'<div data-out="heads" style="color:#555">attention block: 4H² + 4H = '
        f"{4 * hidden * hidden + 4 * hidden:,} per layer, whatever A is; "
        f"head size H/A = {hidden // heads}</div>"
    )
    script = (
        "<script>(function () {"
        + _PARAM_COUNT_JS
        + f"""
  const root = document.getElementById("{uid}");
  if (!root) return;
  const fmt = n => n.toLocaleString("en-US");
  const get = p => Number(root.querySelector('input[data-p="' + p + '"]').value);
  const set = (sel, html) => {{ root.querySelector(sel).innerHTML = html; }};
  function update() {{
    const V = get("V"), H = get("H"), L = get("L"), A = get("A");
    for (const p of ["L", "H", "A", "V"]) set('span[data-v="' + p + '"]', fmt(get(p)));
    const c = bertlabCount(V, H, L, A);
    set('[data-out="exact"]', "exact count (bertlab.params.count): <b>" + fmt(c.total) + "</b>");
    set('[data-out="seed"]', "notes' formula V\\u00b7H + 12\\u00b7L\\u00b7H\\u00b2: <b>" +
        fmt(c.seed) + "</b>");
    const d = c.total - c.seed;
    set('[data-out="diff"]', "left out by the formula: " + fmt(d) + " (" +
        (100 * d / c.total).toFixed(2) + "%)");
    set('[data-out="heads"]', "attention block: 4H\\u00b2 + 4H = " + fmt(c.attention) +
        " per layer, whatever A is; " + (c.headSize === null
          ? '<span style="color:#a33">H is not divisible by A: no such model (the count ' +
            'would not change, but the heads cannot split H evenly)</span>'
          : "head size H/A = " + c.headSize));
  }}
  root.querySelectorAll("input").forEach(el => el.addEventListener("input", update));
  root.querySelectorAll("button[data-preset]").forEach(b => b.addEventListener("click", () => {{
    const [L, H, A] = b.dataset.preset.split(",");
    root.querySelector('input[data-p="L"]').value = L;
    root.querySelector('input[data-p="H"]').value = H;
    root.querySelector('input[data-p="A"]').value = A;
    root.querySelector('input[data-p="V"]').value = 30522;
    update();
  }}));
}})();</script>"""
    )
    body = (
        f'<div id="{uid}" style="font-family:sans-serif;font-size:14px;border:1px solid #ccc;'
        f'border-radius:4px;padding:8px 12px;max-width:640px">'
        f'<div style="margin-bottom:4px">{buttons}</div>'
        f'<table style="border:none;margin:0">{rows}</table>'
        f'<div style="margin-top:6px;line-height:1.5">{out}</div>'
        '<div style="color:#777;font-size:12px;margin-top:4px">I = 4H, 512 positions, 2 segments; '
        "buttons set L, H, A and V = 30,522.</div></div>"
    )
    return HTML(body + script)


# --------------------------------------------------------------------------------------------------
# Embedding explorer (word vectors: GloVe, word2vec, ELMo's token layer)
# --------------------------------------------------------------------------------------------------


def project_2d(vectors, method: str = "pca", seed: int = 0):
    """Project row vectors (n, D) to 2-D (n, 2): PCA on the centred rows (``"pca"``), or t-SNE
    (``"tsne"``, needs scikit-learn). Pass unit vectors to picture cosine geometry."""
    import numpy as np

    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"project_2d needs at least two row vectors, got shape {x.shape}.")
    if method == "pca":
        x = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(x, full_matrices=False)  # rows of vt: principal directions
        vt *= np.where(vt[:, :1] < 0, -1.0, 1.0)  # a fixed sign, so pictures are reproducible
        xy = x @ vt[:2].T  # (n, 2)
        return xy if xy.shape[1] == 2 else np.pad(xy, ((0, 0), (0, 2 - xy.shape[1])))
    if method == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError:
            raise ValueError(
                "method='tsne' needs scikit-learn (pip install scikit-learn)."
            ) from None
        perplexity = min(30.0, (len(x) - 1) / 3)
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
    raise ValueError(f"unknown projection {method!r}; choose 'pca' or 'tsne'.")


def _label_html(text: str):
    import html

    import ipywidgets as widgets

    return widgets.HTML(f"<b>{html.escape(text)}</b>", layout=widgets.Layout(margin="0 8px 0 0"))


def _row(*children, wrap: bool = False):
    import ipywidgets as widgets

    flow = "row wrap" if wrap else "row"
    return widgets.HBox(list(children), layout=widgets.Layout(align_items="center", flex_flow=flow))


class EmbeddingExplorer:
    """Pictures and tables of an :class:`bertlab.embeddings.Embeddings`, and the widget that shows
    them (:meth:`widget`; :func:`explorer` is the short way to get it).

    - :meth:`draw_map`: the chosen words projected to 2-D (PCA of their unit vectors);
    - :meth:`neighbours_html`: a word's nearest neighbours with their cosine similarities;
    - :meth:`analogy_html` and :meth:`draw_analogy`: "a is to b as c is to ?" (3CosAdd).
    """

    def __init__(
        self,
        emb,
        words: Sequence[str] | None = None,
        k: int = 8,
        top_n: int = 40,
        method: str = "pca",
    ):
        self.emb, self.k, self.method = emb, k, method
        if words is None:  # the most frequent real words (rows are in order of frequency)
            words = [w for w in emb.words if w.isalpha() and len(w) > 2][:top_n]
        self.words = self.known(words)[0]

    def known(self, words: Sequence[str]) -> tuple[list[str], list[str]]:
        """``words`` split into those with a vector and those without (each once, in order)."""
        words = list(dict.fromkeys(w for w in words if w))
        return [w for w in words if w in self.emb], [w for w in words if w not in self.emb]

    # ---------------------------------------------------------------------------------------------
    # Pictures and tables
    # ---------------------------------------------------------------------------------------------

    def draw_map(
        self,
        words: Sequence[str] | None = None,
        highlight: Sequence[str] = (),
        title: str | None = None,
    ):
        """A scatter of ``words`` (default: the explorer's) in 2-D, ``highlight`` in red."""
        words = self.known(self.words if words is None else words)[0]
        if len(words) < 2:
            raise ValueError("draw_map needs at least two words that have vectors.")
        xy = project_2d(self.emb.unit[[self.emb.id(w) for w in words]], self.method)
        fig, ax = plt.subplots(figsize=(5.2, 4.2))
        hot = [w in set(highlight) for w in words]
        ax.scatter(xy[:, 0], xy[:, 1], s=14, c=["C3" if h else "C0" for h in hot])
        for (x, y), w, h in zip(xy, words, hot, strict=True):
            ax.annotate(
                w,
                (x, y),
                xytext=(3, 2),
                textcoords="offset points",
                fontsize=8,
                color="C3" if h else "black",
                fontweight="bold" if h else "normal",
            )
        ax.set_xlabel(f"{self.method.upper()} 1")
        ax.set_ylabel(f"{self.method.upper()} 2")
        ax.set_title(title or f"{len(words)} words in 2-D ({self.method.upper()})", fontsize=10)
        ax.grid(alpha=0.3)
        return fig

    def neighbours_html(self, word: str, k: int | None = None) -> str:
        """An HTML table of the ``k`` nearest neighbours of ``word`` and their cosines."""
        import html

        rows = "".join(
            f'<tr><td style="padding:1px 8px">{html.escape(w)}</td>'
            f'<td style="padding:1px 8px;text-align:right">{cos:.3f}</td>'
            f'<td><div style="background:#4c72b0;height:9px;width:{max(0.0, cos) * 90:.0f}px">'
            "</div></td></tr>"
            for w, cos in self.emb.most_similar(word, k or self.k)
        )
        return (
            f'<div style="font-size:13px"><b>nearest to "{html.escape(word)}"</b>'
            f'<table style="border-collapse:collapse;margin-top:4px">'
            f"<tr><th style='text-align:left;padding:1px 8px'>word</th>"
            f"<th style='padding:1px 8px'>cosine</th><th></th></tr>{rows}</table></div>"
        )

    def analogy_html(self, a: str, b: str, c: str, k: int = 5) -> str:
        """An HTML table of the ``k`` best answers to "a is to b as c is to ?"."""
        import html

        answers = self.emb.analogy(a, b, c, k=k)
        rows = "".join(
            f'<tr><td style="padding:1px 8px">{html.escape(w)}</td>'
            f'<td style="padding:1px 8px;text-align:right">{s:.3f}</td></tr>'
            for w, s in answers
        )
        a, b, c = (html.escape(x) for x in (a, b, c))
        return (
            f'<div style="font-size:13px"><b>{a} : {b} :: {c} : ?</b><br>'
            f'<span style="color:#666">nearest to {b} &minus; {a} + {c} (unit vectors)</span>'
            f'<table style="border-collapse:collapse;margin-top:4px">'
            f"<tr><th style='text-align:left;padding:1px 8px'>answer</th>"
            f"<th style='padding:1px 8px'>cosine</th></tr>{rows}</table></div>"
        )

    def draw_analogy(self, a: str, b: str, c: str):
        """The four words of an analogy in 2-D, with the offsets a -> b and c -> answer."""
        d = self.emb.analogy(a, b, c, k=1)[0][0]
        words = [a, b, c, d]
        xy = project_2d(self.emb.unit[[self.emb.id(w) for w in words]], "pca")
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        ax.scatter(xy[:, 0], xy[:, 1], c=["C0", "C0", "C1", "C3"])
        for (x, y), w in zip(xy, words, strict=True):
            ax.annotate(w, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=9)
        for s, t, color in ((0, 1, "C0"), (2, 3, "C3")):
            ax.annotate("", xy[t], xy[s], arrowprops=dict(arrowstyle="->", color=color, lw=1.5))
        ax.set_title(f"{a} : {b} :: {c} : {d}", fontsize=10)
        ax.set_xlabel("PCA 1")
        ax.set_ylabel("PCA 2")
        ax.grid(alpha=0.3)
        return fig

    # ---------------------------------------------------------------------------------------------
    # The widget
    # ---------------------------------------------------------------------------------------------

    def widget(
        self,
        queries: Sequence[str] | None = None,
        analogies: Sequence[tuple[str, str, str]] = (),
        live: bool = True,
    ):
        """The explorer: pre-rendered views (a map of the words, each query's neighbourhood, each
        analogy) picked by dropdowns linked in the browser, so they work in the static book; and,
        with ``live=True``, text boxes that compute new views, which need a running kernel."""
        import ipywidgets as widgets

        queries = self.known(self.words[:6] if queries is None else queries)[0]
        box = widgets.Layout(flex_flow="row wrap", align_items="flex-start")

        def image(fig):
            return widgets.Image(value=figure_png(fig), format="png")

        # 1. the map and the neighbourhoods, one pre-rendered view per choice
        views = [widgets.HBox([image(self.draw_map())], layout=box)]
        labels = [f"map of {len(self.words)} words"]
        for q in queries:
            near = [w for w, _ in self.emb.most_similar(q, self.k)]
            fig = self.draw_map(
                [q, *near], highlight=[q], title=f'"{q}" and its {self.k} neighbours'
            )
            views.append(
                widgets.HBox([image(fig), widgets.HTML(self.neighbours_html(q))], layout=box)
            )
            labels.append(f"neighbours of {q}")
        stack = widgets.Stack(views, selected_index=0)
        choose = widgets.Dropdown(
            options=[(t, i) for i, t in enumerate(labels)],
            value=0,
            layout=widgets.Layout(width="300px"),
        )
        widgets.jslink((choose, "index"), (stack, "selected_index"))
        parts = [_row(_label_html("view"), choose), stack]

        # 2. analogies
        analogies = [t for t in analogies if not self.known(t)[1]]
        if analogies:
            pages = [
                widgets.HBox(
                    [image(self.draw_analogy(*t)), widgets.HTML(self.analogy_html(*t))], layout=box
                )
                for t in analogies
            ]
            a_stack = widgets.Stack(pages, selected_index=0)
            a_choose = widgets.Dropdown(
                options=[(f"{a} : {b} :: {c} : ?", i) for i, (a, b, c) in enumerate(analogies)],
                value=0,
                layout=widgets.Layout(width="300px"),
            )
            widgets.jslink((a_choose, "index"), (a_stack, "selected_index"))
            parts += [_row(_label_html("analogy"), a_choose), a_stack]

        # 3. live boxes: Python runs on each entry, so they need a kernel (Jupyter, Colab)
        if live:
            parts.append(self._live_widget())
        return widgets.VBox(parts)

    def _live_widget(self):
        import html

        import ipywidgets as widgets

        def text(placeholder):
            return widgets.Text(
                placeholder=placeholder,
                continuous_update=False,
                layout=widgets.Layout(width="260px"),
            )

        add, near, ana = text("river, lake, sea"), text("a word"), text("man king woman")
        picture = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        message = widgets.HTML()
        added: list[str] = []

        def show(fig=None, table=""):
            if fig is not None:
                picture.value = figure_png(fig)
                picture.layout.display = ""
            message.value = table

        def on_add(change):
            found, missing = self.known(change["new"].replace(",", " ").split())
            added.extend(w for w in found if w not in added and w not in self.words)
            note = (
                f"<i>not in the vocabulary: {html.escape(', '.join(missing))}</i>"
                if missing
                else ""
            )
            show(self.draw_map(self.words + added, highlight=added), note)

        def on_near(change):
            word = change["new"].strip()
            if word not in self.emb:
                return show(table=f"<i>{html.escape(word)!s} is not in the vocabulary.</i>")
            near_words = [w for w, _ in self.emb.most_similar(word, self.k)]
            fig = self.draw_map([word, *near_words], highlight=[word])
            show(fig, self.neighbours_html(word))

        def on_analogy(change):
            words = change["new"].replace(",", " ").split()
            missing = self.known(words)[1]
            if len(words) != 3 or missing:
                problem = (
                    f"not in the vocabulary: {', '.join(missing)}" if missing else "three words"
                )
                return show(table=f"<i>Type three words, a b c ({html.escape(problem)}).</i>")
            show(self.draw_analogy(*words), self.analogy_html(*words))

        add.observe(on_add, "value")
        near.observe(on_near, "value")
        ana.observe(on_analogy, "value")
        note = widgets.HTML(
            '<div style="margin-top:10px"><b>Your own words</b> <i style="color:#a33">(live: '
            "these boxes run Python, so they need a running kernel, in Jupyter or Colab; press "
            "Enter after typing)</i></div>"
        )
        boxes = [
            _row(_label_html(t), b)
            for t, b in (("add to the map", add), ("neighbours of", near), ("analogy a b c", ana))
        ]
        return widgets.VBox(
            [
                note,
                *boxes,
                widgets.HBox([picture, message], layout=widgets.Layout(flex_flow="row wrap")),
            ]
        )


def explorer(
    emb,
    words: Sequence[str] | None = None,
    queries: Sequence[str] | None = None,
    analogies: Sequence[tuple[str, str, str]] = (),
    k: int = 8,
    top_n: int = 40,
    method: str = "pca",
    live: bool = True,
):
    """An embedding explorer for an :class:`bertlab.embeddings.Embeddings`: a 2-D map of
    ``words`` (default: the ``top_n`` most frequent words), the ``k`` nearest neighbours (with
    cosines) of each word in ``queries``, and the ``analogies`` ``(a, b, c)``, all pre-rendered
    and switched by dropdowns in the browser, so the static HTML book shows them too; plus text
    boxes to add words, look up neighbours and try analogies, live where a kernel runs."""
    ex = EmbeddingExplorer(emb, words, k=k, top_n=top_n, method=method)
    return ex.widget(queries=queries, analogies=analogies, live=live)
