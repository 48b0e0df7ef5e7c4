"""The two widgets every chapter's interactive pieces are built from.

They have to work in three places: a live Jupyter kernel, Colab, and the *static* HTML book, where
no Python runs. Hence two kinds:

- :func:`selector` renders every page ahead of time, stacks them, and links the control (a
  dropdown, a slider or toggle buttons) to the stack with ``jslink``: the link lives in the
  browser and the notebook saves the widget state, so the static book switches pages too;
- :func:`live` runs Python on every keystroke or click, so it needs a kernel; it says so in a red
  note, and a chapter puts a pre-rendered :func:`selector` beside it.

:func:`figure_slider` and :func:`html_selector` are the short forms the first chapters use.
"""

from __future__ import annotations

import html
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

CONTROLS = ("dropdown", "slider", "toggle")
LIVE_NOTE = "Live: needs a running Python kernel (Jupyter or Colab)"


def figure_png(fig) -> bytes:
    """The PNG bytes of a matplotlib figure (and close it, so it is not shown twice)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def labelled(text: str, control) -> widgets.HBox:
    """``control`` with ``text`` in bold to its left, as an HTML widget rather than a description.

    A ``description`` is cut to a fixed width and typeset through MathJax 2's API
    (``MathJax.Hub.Queue``), which the book's MathJax 3 lacks without a shim; a separate HTML
    label has neither problem.
    """
    label = widgets.HTML(f"<b>{html.escape(text)}</b>", layout=widgets.Layout(margin="0 8px 0 0"))
    return widgets.HBox([label, control], layout=widgets.Layout(align_items="center"))


def as_widget(page) -> widgets.Widget:
    """A page as a widget: a widget as it is, a string as HTML, a matplotlib figure as a PNG
    image, and a tuple or list of pages side by side (wrapping on a narrow screen)."""
    if isinstance(page, widgets.Widget):
        return page
    if isinstance(page, str):
        return widgets.HTML(value=page)
    if isinstance(page, (tuple, list)):
        row = widgets.Layout(flex_flow="row wrap", align_items="flex-start")
        return widgets.HBox([as_widget(p) for p in page], layout=row)
    if hasattr(page, "savefig"):
        return widgets.Image(value=figure_png(page), format="png")
    raise TypeError(
        f"a page must be an ipywidget, an HTML string or a matplotlib figure, not {type(page)}."
    )


def _control(kind: str, labels: Sequence, value: int, description: str, width: str, label: bool):
    """The control choosing among ``labels``; its ``index`` is the page shown."""
    options = [(str(text), i) for i, text in enumerate(labels)]
    extra = {} if label else {"description": description}
    style = {} if label else {"description_width": "initial"}
    if kind == "toggle":
        return widgets.ToggleButtons(
            options=options, value=value, style={"button_width": "auto", **style}, **extra
        )
    cls = widgets.SelectionSlider if kind == "slider" else widgets.Dropdown
    if style:
        extra["style"] = style
    return cls(options=options, value=value, layout=widgets.Layout(width=width), **extra)


def _grid(items: list, n: int) -> tuple[list[list], dict[tuple[int, ...], Any]]:
    """The labels along each of ``n`` axes, and the page at each tuple of label indices."""
    if n == 1:  # labels may repeat: pages are chosen by position
        return [[key for key, _ in items]], {(i,): page for i, (_, page) in enumerate(items)}
    if any(not isinstance(key, tuple) or len(key) != n for key, _ in items):
        raise ValueError(f"with {n} controls, key every page by a tuple of {n} labels.")
    axes = [list(dict.fromkeys(key[d] for key, _ in items)) for d in range(n)]
    grid = {tuple(axes[d].index(k) for d, k in enumerate(key)): page for key, page in items}
    if len(grid) != len(items) or len(grid) != math.prod(len(a) for a in axes):
        raise ValueError(
            f"the pages must cover every combination of the labels exactly once: got "
            f"{len(items)} pages for {' x '.join(str(len(a)) for a in axes)} combinations."
        )
    return axes, grid


def selector(
    pages: Iterable[tuple[Any, Any]] | Mapping[Any, Any],
    control: str | Sequence[str] = "dropdown",
    description: str | Sequence[str] = "show",
    *,
    value: int | Sequence[int] = 0,
    width: str = "420px",
    label: bool = True,
    boxed: bool = True,
):
    """Pre-rendered pages and a control that picks the one shown, linked in the browser.

    ``pages`` is a sequence of ``(label, page)`` pairs (or a mapping label -> page); a page is an
    ipywidget, an HTML string or a matplotlib figure (see :func:`as_widget`), and is rendered
    now: figures are drawn to PNG as they come, so a generator keeps one figure open at a time.
    ``control`` is ``"dropdown"``, ``"slider"`` (a ``SelectionSlider``) or ``"toggle"`` (toggle
    buttons), ``value`` the index shown first, ``description`` the label on its left.

    Several controls choose along several axes: give ``control`` and ``description`` as tuples,
    and key each page by a tuple with one label per control, covering every combination
    (``{(text, vocabulary): page}``). The controls sit one per row, in that order; the pages nest
    in stacks, the last control's outermost, each stack linked to its control.

    With ``label=False`` the description goes into the control's own ``description`` (what
    :func:`figure_slider` has always done); with ``boxed=False`` the result is the list of rows
    and the stack, to lay several selectors out in one box. Otherwise a ``VBox`` of the control
    rows and the stack, with ``.controls`` and ``.links`` (``.link``: the outermost link) kept
    on it: a link is a widget of its own, saved with the state.
    """
    kinds = (control,) if isinstance(control, str) else tuple(control)
    names = (description,) if isinstance(description, str) else tuple(description)
    starts = (value,) * len(kinds) if isinstance(value, int) else tuple(value)
    for kind in kinds:
        if kind not in CONTROLS:
            raise ValueError(
                f"control must be 'slider' or 'dropdown' (or 'toggle' for buttons), not {kind!r}."
            )
    if not len(names) == len(starts) == len(kinds):
        raise ValueError(
            f"give one description and one value for each of the {len(kinds)} controls."
        )
    pairs = pages.items() if isinstance(pages, Mapping) else pages
    items = [(key, as_widget(page)) for key, page in pairs]
    if not items:
        raise ValueError("selector needs at least one (label, page) pair.")
    n = len(kinds)
    axes, grid = _grid(items, n)
    controls = [
        _control(kind, axis, start, name, width, label)
        for kind, axis, start, name in zip(kinds, axes, starts, names)
    ]
    links = []

    def stack(chosen: tuple[int, ...]) -> widgets.Stack:
        d = n - 1 - len(chosen)  # the control this stack answers to
        children = [
            grid[(i, *chosen)] if d == 0 else stack((i, *chosen)) for i in range(len(axes[d]))
        ]
        s = widgets.Stack(children, selected_index=controls[d].index)
        links.append(widgets.jslink((controls[d], "index"), (s, "selected_index")))
        return s

    top = stack(())
    rows = [labelled(name, c) if label else c for name, c in zip(names, controls)]
    if not boxed:
        return [*rows, top]
    box = widgets.VBox([*rows, top])
    box.controls, box.links, box.link = controls, links, links[-1]
    return box


def figure_slider(
    draw: Callable[[Any], Any],
    values: Sequence[Any],
    description: str = "value",
    start: Any = None,
    widget: str = "slider",
):
    """A slider (or ``widget="dropdown"``) over ``values`` showing the figure ``draw(value)``.

    All figures are drawn up front (keep ``values`` to a dozen or so): a :func:`selector`.
    """
    values = list(values)
    if not values:
        raise ValueError("figure_slider needs at least one value to draw.")
    return selector(
        ((str(v), draw(v)) for v in values),
        control=widget,
        description=description,
        value=values.index(start) if start is not None else 0,
        label=False,
    )


def html_selector(
    pages: Sequence[tuple[str, str]], description: str = "show", widget: str = "dropdown"
):
    """A dropdown (or ``widget="slider"``) choosing which of several HTML ``(label, html)`` pages
    is shown: a :func:`selector`, so it works in the static HTML book too."""
    return selector(pages, control=widget, description=description)


def live(
    fn: Callable[[dict[str, Any], str | None], Any],
    inputs: Mapping[str, widgets.Widget],
    *,
    figure: bool = False,
    title: str | None = None,
    hint: str | None = None,
) -> widgets.VBox:
    """Input widgets that run ``fn`` in Python whenever one changes, and show what it returns.

    ``inputs`` maps a label to a widget with a ``value`` (a ``Text`` box, ``ToggleButtons``).
    ``fn(values, changed)`` gets every input's value by label and the label of the one that
    changed (``None`` for the first call, made at once) and returns an HTML string, or ``None``
    to leave the output as it is. With ``figure=True`` it may also return ``(figure, html)``: the
    figure is shown as a PNG beside the HTML (an HTML string alone keeps the last figure).

    Python runs on every change, so this needs a kernel (Jupyter, Colab): the box opens with the
    standard red note saying so (after ``title`` in bold, with ``hint`` added). Returns
    ``VBox([note, *labelled inputs, output])``; the output is the HTML widget, or with
    ``figure=True`` an ``HBox([image, html])``.
    """
    note = f'<i style="color:#a33">{LIVE_NOTE}{"; " + hint if hint else ""}.</i>'
    if title:
        note = f"<b>{html.escape(title)}</b> {note}"
    message = widgets.HTML()
    output = message
    if figure:  # a PNG beside the HTML, hidden until the first figure comes
        picture = widgets.Image(format="png", layout=widgets.Layout(display="none"))
        output = widgets.HBox([picture, message], layout=widgets.Layout(flex_flow="row wrap"))

    def update(changed: str | None = None) -> None:
        result = fn({name: w.value for name, w in inputs.items()}, changed)
        if figure and isinstance(result, tuple):
            fig, result = result
            picture.value = figure_png(fig)
            picture.layout.display = ""
        if result is not None:
            message.value = result

    for name, w in inputs.items():
        w.observe(lambda _, name=name: update(name), "value")
    update()
    rows = [labelled(name, w) for name, w in inputs.items()]
    return widgets.VBox([widgets.HTML(f'<div style="margin-top:10px">{note}</div>'), *rows, output])
