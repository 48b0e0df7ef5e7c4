"""Pictures and widgets of chapter 10: BERT's input shapes, the results grid, what the model read.

- :func:`input_shape_html` draws one real example as BERT receives it: each position's piece,
  its segment, and which output the task reads there (C at [CLS], a tag at the first piece of
  each word, the answer's start and end);
- :func:`plot_grid` draws the results grid (``bertlab.finetune.grid_table``) one task per axes;
- :func:`attention_html` shades an input's pieces by how much a position (the [CLS], or a word
  the model tagged) attends to each in the last layer, for the error analysis;
- :func:`prediction_widget` (pre-rendered, works in the static book) and
  :func:`live_prediction` (type your own; needs a kernel) show each fine-tuned model's
  prediction and confidence.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from bertlab import tasks
from bertlab.viz.widgets import live, selector

_SEGMENT_COLOURS = ("#cfe2f3", "#fff2cc")  # segment A, segment B
_SPECIAL_COLOUR = "#d9d9d9"
_READ_COLOUR = "#b6d7a8"
_CELL = ("display:inline-block;border:1px solid #999;border-radius:3px;margin:0 2px 4px 0;"
         "text-align:center;font-family:monospace;font-size:12px;line-height:1.3;"
         "min-width:22px")  # fmt: skip


def _cell(piece: str, segment: int, read: str, special: bool) -> str:
    fill = _SPECIAL_COLOUR if special else _SEGMENT_COLOURS[segment]
    under = '<span style="display:block">&nbsp;</span>'
    if read:
        under = (f'<span style="display:block;background:{_READ_COLOUR};font-weight:bold">'
                 f"{html.escape(read)}</span>")  # fmt: skip
    return (
        f'<span style="{_CELL}"><span style="display:block;background:{fill};padding:0 3px">'
        f"{html.escape(piece)}</span>"
        f'<span style="display:block;color:#555;font-size:10px">{segment}</span>{under}</span>'
    )


def input_view(task_name: str, tokenizer, example, max_length: int = 128):
    """(pieces, segment ids, what is read at each position) of one example as the task packs it.

    Sequence tasks read C (the [CLS] output); part of speech reads each word's tag at its first
    piece; SQuAD reads "start" and "end" at the answer (in the first window that holds it)."""
    t = tasks.task(task_name)
    if t.kind == "span":
        windows = t.windows(tokenizer, [example], max_length)
        w = next((i for i in range(len(windows)) if windows.start_positions[i] > 0), 0)
        b = windows.batch(slice(w, w + 1))
        ids, types = b["input_ids"][0], b["token_type_ids"][0]
        n = int(b["attention_mask"][0].sum())
        read = [""] * n
        s, e = int(windows.start_positions[w]), int(windows.end_positions[w])
        read[s] = "start" if s != e else "start, end"
        if s != e:
            read[e] = "end"
    else:
        b = t.encode(tokenizer, [example], max_length)
        n = int(b["attention_mask"][0].sum())
        ids, types = b["input_ids"][0], b["token_type_ids"][0]
        if t.kind == "token":
            read = ["" if y == tasks.IGNORE_INDEX else t.labels[y] for y in b["labels"][0][:n]]
        else:
            read = ["C"] + [""] * (n - 1)
    pieces = tokenizer.convert_ids_to_tokens(ids[:n].tolist())
    return pieces, types[:n].tolist(), read


def input_shape_html(task_name: str, tokenizer, example, max_length: int = 128,
                     title: str = "") -> str:  # fmt: skip
    """One example drawn as BERT receives it: a box per position with its piece (blue: segment
    A, yellow: segment B, grey: special), its segment id, and in green the output read there."""
    pieces, segments, read = input_view(task_name, tokenizer, example, max_length)
    specials = {"[CLS]", "[SEP]", "[PAD]"}
    cells = "".join(
        _cell(p, s, r, p in specials) for p, s, r in zip(pieces, segments, read, strict=True)
    )
    head = f"<div style='margin:6px 0 3px 0'><b>{html.escape(title)}</b></div>" if title else ""
    return f"{head}<div style='display:flex;flex-wrap:wrap'>{cells}</div>"


# ---- the results grid ---------------------------------------------------------------------------

_INIT_COLOURS = {"scratch": "C3", "ours": "C0", "minilm": "C2"}


def plot_grid(table, floors: Mapping[str, float] | None = None, axes=None):
    """The results grid: one axes per task, a group of bars per starting point, one bar per
    mode (solid: fine-tuned, hatched: frozen features through the scalar mix of layers), the
    value on each bar. ``table`` is ``bertlab.finetune.grid_table``'s frame; ``floors`` maps a
    task to its majority-class (or zero-skill) score, drawn as a dotted line."""
    task_names = list(dict.fromkeys(table["task"]))
    if axes is None:  # three tasks a row
        n_rows = -(-len(task_names) // 3)
        fig, grid = plt.subplots(n_rows, 3, figsize=(9.5, 3.2 * n_rows), squeeze=False)
        axes = list(grid.flat)
        for ax in axes[len(task_names) :]:
            ax.set_visible(False)
    inits = [i for i in _INIT_COLOURS if i in set(table["init"])]
    for ax, name in zip(axes, task_names):
        rows = table[table["task"] == name]
        metric = rows["metric"].iloc[0]
        for j, init in enumerate(inits):
            for k, mode in enumerate(("finetune", "features")):
                pool = "cls" if mode == "finetune" else "mix"
                cell = rows[
                    (rows["init"] == init) & (rows["mode"] == mode) & (rows["pool"] == pool)
                ]
                if cell.empty:
                    continue
                value = float(cell["score"].iloc[0])
                x = j + (k - 0.5) * 0.38
                ax.bar(x, value, 0.36, color=_INIT_COLOURS[init], alpha=1.0 if k == 0 else 0.45,
                       hatch="" if k == 0 else "//", edgecolor="black", lw=0.5)  # fmt: skip
                ax.text(x, value + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=7)
        if floors and name in floors:
            ax.axhline(floors[name], color="gray", ls=":", lw=1)
        ax.set_xticks(range(len(inits)), inits, fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("starting point", fontsize=8)
        ax.set_ylabel(metric.replace("_", " "), fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color="gray", alpha=a, hatch=h, ec="black", lw=0.5)
               for a, h in ((1.0, ""), (0.45, "//"))]  # fmt: skip
    axes[len(task_names) - 1].legend(
        handles, ["fine-tuned", "frozen features"], fontsize=7, loc="upper right"
    )
    return axes


# ---- what the model read ------------------------------------------------------------------------


@torch.no_grad()
def last_layer_attention(encoder, batch: dict, position: int) -> torch.Tensor:
    """How much ``position`` attends to each position in the last layer, averaged over heads:
    (T,) for the one example of ``batch``."""
    out = encoder(batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
                  output_attentions=True)  # fmt: skip
    return out.attentions[-1][0, :, position].float().mean(0).cpu()


def attention_html(pieces: Sequence[str], weights: torch.Tensor, marked: Sequence[int] = ()) -> str:
    """Pieces shaded in red by ``weights``, each with its percentage underneath; ``marked``
    positions get a thick border (the position that reads). The darkest shade is the largest
    weight on a word piece: [CLS] and [SEP], which draw much of the attention in BERTs, are
    shaded on the same scale but do not set it."""
    words = [w for p, w in zip(pieces, weights.tolist()) if p not in ("[CLS]", "[SEP]")]
    top = max(words, default=0.0) or float(weights.max()) or 1.0
    spans = []
    for i, (p, w) in enumerate(zip(pieces, weights.tolist(), strict=True)):
        alpha = 0.85 * min(1.0, w / top)
        border = "2px solid black" if i in marked else "1px solid #bbb"
        spans.append(
            f'<span style="display:inline-block;margin:0 2px 3px 0;padding:0 3px;'
            f"border:{border};border-radius:3px;background:rgba(204,0,0,{alpha:.2f});"
            f'font-family:monospace;font-size:12px;text-align:center">{html.escape(p)}'
            f'<span style="display:block;font-size:9px;color:#333">{100 * w:.0f}%</span></span>'
        )
    return f"<div style='display:flex;flex-wrap:wrap'>{''.join(spans)}</div>"


# ---- predictions --------------------------------------------------------------------------------


def _bars(probs: Sequence[float], labels: Sequence[str]) -> str:
    rows = []
    best = max(range(len(probs)), key=probs.__getitem__)
    for i, (p, label) in enumerate(zip(probs, labels, strict=True)):
        weight = "bold" if i == best else "normal"
        rows.append(
            f"<div style='display:flex;align-items:center;font-size:12px;font-weight:{weight}'>"
            f"<span style='width:120px'>{html.escape(label)}</span>"
            f"<span style='display:inline-block;width:{int(150 * p)}px;height:10px;"
            f"background:#6fa8dc;margin-right:6px'></span>{p:.1%}</div>"
        )
    return "".join(rows)


def predictions_html(text: str, predictions: Mapping[str, tuple[Sequence[float], Sequence[str]]],
                     gold: str | None = None) -> str:  # fmt: skip
    """One input and, for each model, its class probabilities as bars (the top class in bold)."""
    head = f"<div style='margin-bottom:6px'><i>{html.escape(text)}</i>"
    if gold is not None:
        head += f" &nbsp; (gold label: <b>{html.escape(gold)}</b>)"
    columns = "".join(
        f"<div style='margin:0 18px 6px 0'><b>{html.escape(name)}</b>{_bars(p, labels)}</div>"
        for name, (p, labels) in predictions.items()
    )
    return f"{head}</div><div style='display:flex;flex-wrap:wrap'>{columns}</div>"


def prediction_widget(
    examples: Mapping[str, Sequence[tuple[str, str | None, str | None]]],
    predict: Callable[[str, str, str | None], Mapping[str, tuple[Sequence[float], Sequence[str]]]],
):
    """Pick a task and one of its examples and see each model's prediction, pre-rendered (works
    in the static book). ``examples`` maps a task to ``(text_a, text_b or None, gold label)``
    triples; ``predict(task, text_a, text_b)`` gives ``{model: (probabilities, labels)}``."""
    pages = []
    for name, items in examples.items():
        inner = []
        for a, b, gold in items:
            text = a if b is None else f"{a}  ⟶  {b}"
            short = text if len(text) <= 70 else text[:67] + "..."
            inner.append((short, predictions_html(text, predict(name, a, b), gold)))
        pages.append((name, selector(inner, "dropdown", "example", width="560px")))
    return selector(pages, "toggle", "task")


def live_prediction(
    predict: Callable[[str, str, str | None], Mapping[str, tuple[Sequence[float], Sequence[str]]]],
    task_names: Sequence[str],
    value: str = "a gorgeous, witty, seductive movie.",
) -> widgets.VBox:
    """Type a sentence (and for a pair task a second one) and see each model's prediction."""
    layout = widgets.Layout(width="520px")
    inputs = {
        "task": widgets.ToggleButtons(options=list(task_names)),
        "sentence A": widgets.Text(value=value, continuous_update=False, layout=layout),
        "sentence B": widgets.Text(
            value="",
            continuous_update=False,
            layout=layout,
            placeholder="the second sentence of a pair task",
        ),  # fmt: skip
    }

    def show(values, _changed):
        name, a, b = values["task"], values["sentence A"].strip(), values["sentence B"].strip()
        pair = tasks.task(name).pair
        if not a or (pair and not b):
            return "<i>type a sentence" + (" and a second one" if pair else "") + "</i>"
        text = a if not pair else f"{a}  ⟶  {b}"
        return predictions_html(text, predict(name, a, b if pair else None))

    return live(show, inputs, title="Your own input", hint="press Enter after typing")


# ---- the error analysis -------------------------------------------------------------------------


def errors_html(task_name: str, model, tokenizer, errors: Sequence[dict],
                max_length: int = 128) -> str:  # fmt: skip
    """``bertlab.finetune.confident_errors``'s examples as HTML: each with its gold and
    predicted answer and, for the sequence and token tasks, the last layer's attention of the
    position that decides (the [CLS], or the first wrongly tagged word's first piece)."""
    t = tasks.task(task_name)
    encoder = model.bert
    device = next(encoder.parameters()).device
    parts = []
    for err in errors:
        e = err["example"]
        if t.kind == "span":
            gold, start = e.answers[0], e.answer_starts[0]
            lo, hi = max(0, start - 150), start + len(gold) + 150
            end = start + len(gold)
            snippet = (html.escape(e.context[lo:start])
                       + f"<b style='background:{_READ_COLOUR}'>{html.escape(gold)}</b>"
                       + html.escape(e.context[end:hi]))  # fmt: skip
            parts.append(
                f"<p><b>Q:</b> {html.escape(e.question)}<br><b>gold:</b> "
                f"{html.escape(' | '.join(dict.fromkeys(e.answers)))} &nbsp; <b>predicted:</b> "
                f"<span style='color:#a00'>{html.escape(err['predicted'] or '(empty)')}</span>"
                f"<br><small>…{snippet}…</small></p>"
            )
            continue
        b = {k: v.to(device) for k, v in t.encode(tokenizer, [e], max_length).items()}
        n = int(b["attention_mask"][0].sum())
        pieces = tokenizer.convert_ids_to_tokens(b["input_ids"][0, :n].tolist())
        if t.kind == "token":
            first = (b["labels"][0] != tasks.IGNORE_INDEX).nonzero().flatten().tolist()
            wrong = err["wrong"]
            position = first[wrong[0]]
            words = " ".join(
                f"<span style='color:#a00'><b>{html.escape(w)}</b> <small>({g} → {p})</small>"
                "</span>" if j in wrong else html.escape(w)
                for j, (w, g, p) in enumerate(zip(e.words, e.upos, err["predicted"])))  # fmt: skip
            caption = (f"<p>{words}<br><small>attention of <b>{html.escape(e.words[wrong[0]])}"
                       "</b> (gold → predicted) in the last layer:</small></p>")  # fmt: skip
        else:
            position = 0
            text = html.escape(e.text_a) + (f" <b>⟶</b> {html.escape(e.text_b)}" if t.pair else "")
            caption = (f"<p>{text}<br><small>gold <b>{err['gold']}</b>, predicted "
                       f"<b style='color:#a00'>{err['predicted']}</b> with "
                       f"{err['confidence']:.0%}; attention of [CLS] in the last layer:"
                       "</small></p>")  # fmt: skip
        weights = last_layer_attention(encoder, b, position)[:n]
        parts.append(caption + attention_html(pieces, weights, marked=[position]))
    return "".join(parts) or "<p><i>no errors among these examples</i></p>"
