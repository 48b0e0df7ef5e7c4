"""Tokens and model inputs (chapter 8): coloured word pieces, a tokenizer explorer, BERT's input.

:func:`tokens_html` draws word pieces as boxes with their ids, the pieces of one word in one colour;
:func:`tokenizer_explorer` pre-renders texts x vocabularies (works in the static book) and
:func:`live_tokenizer` tokenizes whatever you type (needs a kernel);
:func:`draw_input_representation` is the paper's Figure 2 drawn from real tokenizer output.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt

from bertlab.viz.widgets import live, selector

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


def _tokenized_html(tokenizer, text: str) -> str:
    """One text through one tokenizer: the text, its pieces with ids, and a count."""
    pieces = list(tokenizer.tokenize(text))
    ids = list(tokenizer.convert_tokens_to_ids(pieces))
    n_words = len(text.split())
    return (
        f'<div style="color:#444;margin:4px 0">{html.escape(text)}</div>'
        + tokens_html(pieces, ids)
        + f'<div style="color:#666;font-size:90%">{len(pieces)} pieces for {n_words} '
        "whitespace-separated words</div>"
    )


def tokenizer_explorer(tokenizers: Mapping, texts: Sequence[str], description: str = "text"):
    """Pick a text and a vocabulary; see its word pieces and ids (pre-rendered, works offline).

    ``tokenizers`` maps a name to anything with ``tokenize(text)`` and
    ``convert_tokens_to_ids(pieces)`` (a :class:`bertlab.wordpiece.WordPieceTokenizer` or a
    ``transformers`` tokenizer). Every text is tokenized by every tokenizer ahead of time; a
    dropdown picks the text and toggle buttons the vocabulary, both linked in the browser.
    """
    names, texts = list(tokenizers), list(texts)
    if not names or not texts:
        raise ValueError("tokenizer_explorer needs at least one tokenizer and one text.")
    labels = [f"{i + 1}. {t if len(t) <= 48 else t[:45] + '...'}" for i, t in enumerate(texts)]
    pages = {
        (label, name): _tokenized_html(tokenizers[name], text)
        for name in names
        for label, text in zip(labels, texts)
    }
    return selector(pages, control=("dropdown", "toggle"), description=(description, "vocabulary"))


def live_tokenizer(tokenizers: Mapping, value: str = "Tokenization is unbelievably useful!"):
    """Type any text and see its pieces: a text box that runs the tokenizer in Python.

    This one needs a running kernel (Jupyter, Colab); in the static HTML book it only shows the
    text it started with. :func:`tokenizer_explorer` is the version that works everywhere.
    """
    names = list(tokenizers)
    inputs = {
        "your text": widgets.Text(value=value, layout=widgets.Layout(width="420px")),
        "vocabulary": widgets.ToggleButtons(
            options=names, value=names[0], style={"button_width": "auto"}
        ),
    }

    def tokenize(values, changed):
        return _tokenized_html(tokenizers[values["vocabulary"]], values["your text"])

    return live(tokenize, inputs)


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
