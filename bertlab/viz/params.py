"""The parameter counter (chapter 7): BERT's exact parameter count as you move L, H, A and V.

Plain HTML and a small script, so it works with no kernel, in the static book too. The script is a
real file, ``params.js`` beside this module (tested under Node against
:func:`bertlab.params.count`), read at call time and inlined into the HTML.
"""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

from IPython.display import HTML

from bertlab.bert import BertConfig
from bertlab.params import count, notes_estimate


def counter_js() -> str:
    """The counter's JavaScript: ``bertlabCount(V, H, L, A)`` and ``bertlabCounter(root)``."""
    return Path(__file__).with_name("params.js").read_text(encoding="utf-8")


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
        f'<tr><td style="padding:2px 8px 2px 0"><b>{sym}</b> {html.escape(name)}</td>'
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
        "<script>(function () {\n"
        + counter_js()
        + f'bertlabCounter(document.getElementById("{uid}"));\n}})();</script>'
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
