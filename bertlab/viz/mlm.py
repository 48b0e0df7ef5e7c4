"""Pictures of pre-training: masked sentences, NSP pairs, and a masked-word playground.

- :func:`masking_html`: a sequence after BERT's masking, each selected piece coloured by what
  happened to it ([MASK], a random piece, or left as it was);
- :func:`pair_html`: an NSP pair, A and B in their segment colours, with where B came from;
- :func:`predictions_html`: a model's top guesses for one masked piece, as bars;
- :func:`playground`: pick a sentence (dropdown) and a piece to hide (slider) and see each
  model's top 5, pre-rendered so it works in the static book; :func:`live_playground` is the
  text box for Jupyter and Colab.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets

from bertlab.viz.widgets import live, selector

__all__ = ["masking_html", "pair_html", "predictions_html", "playground", "live_playground"]

COLOURS = {"mask": "#f4cccc", "random": "#fce5cd", "kept": "#d9ead3", "special": "#e8e8e8"}
SEGMENTS = ("#d9ead3", "#cfe2f3")


def _box(text: str, fill: str, under: str = "", bold: bool = False) -> str:
    sub = f'<span style="display:block;font-size:70%;color:#555">{html.escape(under)}</span>'
    weight = "font-weight:bold;" if bold else ""
    return (
        f'<span style="display:inline-block;background:{fill};border:1px solid #aaa;'
        f'border-radius:3px;padding:1px 4px;margin:0 2px 4px 0;text-align:center;{weight}">'
        f"{html.escape(text)}{sub if under else ''}</span>"
    )


def _line(boxes: Sequence[str]) -> str:
    return (
        f'<div style="font-family:monospace;font-size:13px;line-height:1.3">{"".join(boxes)}</div>'
    )


def masking_html(tokens: Sequence[str], masked: Sequence[str], selected: Sequence[bool]) -> str:
    """``tokens`` before and ``masked`` after masking; ``selected`` marks the predicted pieces.

    A selected piece shows what the model reads, and under it the piece it must predict; red:
    replaced by [MASK], orange: by a random piece, green: left as it was."""
    if not len(tokens) == len(masked) == len(selected):
        raise ValueError("tokens, masked and selected need one entry per position.")
    boxes = []
    for before, after, sel in zip(tokens, masked, selected):
        if not sel:
            special = before.startswith("[") and before.endswith("]")
            boxes.append(_box(after, COLOURS["special"] if special else "#ffffff"))
        elif after == "[MASK]":
            boxes.append(_box(after, COLOURS["mask"], before, bold=True))
        elif after != before:
            boxes.append(_box(after, COLOURS["random"], before, bold=True))
        else:
            boxes.append(_box(after, COLOURS["kept"], before, bold=True))
    key = " ".join(
        _box(name, COLOURS[k]) for k, name in (("mask", "[MASK] (80%)"),
                                               ("random", "random (10%)"),
                                               ("kept", "kept (10%)"))
    )  # fmt: skip
    return _line(boxes) + f'<div style="font-size:12px;color:#555">to predict: {key}</div>'


def pair_html(a: Sequence[str], b: Sequence[str], is_next: bool, where: str = "") -> str:
    """``[CLS] a [SEP] b [SEP]`` with segment A green and B blue, and the NSP label."""
    boxes = [_box("[CLS]", COLOURS["special"])]
    boxes += [_box(t, SEGMENTS[0]) for t in a] + [_box("[SEP]", COLOURS["special"])]
    boxes += [_box(t, SEGMENTS[1]) for t in b] + [_box("[SEP]", COLOURS["special"])]
    label = "IsNext" if is_next else "NotNext"
    colour = "#38761d" if is_next else "#990000"
    note = f' <span style="color:#555">({html.escape(where)})</span>' if where else ""
    return f'<div><b style="color:{colour}">{label}</b>{note}</div>' + _line(boxes)


def predictions_html(guesses: Sequence[tuple[str, float]], title: str, answer: str = "") -> str:
    """A column of bars: the top guesses and their probabilities (the answer in bold)."""
    rows = "".join(
        f'<tr><td style="padding:1px 6px;font-family:monospace;'
        f'{"font-weight:bold;color:#38761d" if g == answer else ""}">{html.escape(g)}</td>'
        f'<td style="padding:1px 4px;text-align:right">{p:.2f}</td><td>'
        f'<div style="background:#4c72b0;height:9px;width:{90 * p:.0f}px"></div></td></tr>'
        for g, p in guesses
    )
    return (
        f'<div style="display:inline-block;vertical-align:top;margin:0 14px 6px 0;font-size:13px">'
        f'<b>{html.escape(title)}</b><table style="border-collapse:collapse">{rows}</table></div>'
    )


def _page(tokens, position, guesses_by_model) -> str:
    shown = [_box(t, COLOURS["mask"] if i == position else "#ffffff", bold=i == position)
             for i, t in enumerate(tokens)]  # fmt: skip
    shown[position] = _box("[MASK]", COLOURS["mask"], tokens[position], bold=True)
    columns = "".join(
        predictions_html(g, name, tokens[position]) for name, g in guesses_by_model.items()
    )
    return _line(shown) + f"<div>{columns}</div>"


def playground(
    sentences: Sequence[str],
    predict: Callable[[str], tuple[list[str], Mapping[str, list[list[tuple[str, float]]]]]],
    description: str = "sentence",
):
    """A dropdown of sentences and, for each, a slider over its pieces: hiding the chosen piece
    shows every model's top guesses. Pre-rendered, so it works in the static book.

    ``predict(sentence)`` returns ``(pieces, {model name: [top guesses for each piece]})``,
    e.g. :func:`bertlab.pretraining.predict_each_piece` over one or more models."""
    pages = []
    for text in sentences:
        pieces, guesses = predict(text)
        inner = [
            (f"{i}: {p}", _page(pieces, i, {n: g[i] for n, g in guesses.items()}))
            for i, p in enumerate(pieces)
        ]
        pages.append((text if len(text) <= 60 else text[:57] + "...",
                      selector(inner, "slider", "hide piece", value=len(inner) // 2)))  # fmt: skip
    return selector(pages, "dropdown", description)


def live_playground(
    fill: Callable[[str], str], value: str = "the [MASK] of the river ."
) -> widgets.VBox:
    """A text box: type a sentence with ``[MASK]`` in it and see ``fill(text)`` (HTML)."""
    box = widgets.Text(value=value, continuous_update=False, layout=widgets.Layout(width="420px"))
    return live(lambda values, _: fill(values["your sentence"]), {"your sentence": box},
                title="Your own sentence", hint="press Enter after typing")  # fmt: skip
