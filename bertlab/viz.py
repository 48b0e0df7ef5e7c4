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
):
    """A slider over ``values`` that shows ``draw(value)``, a matplotlib figure, for each one.

    All figures are drawn up front (keep ``values`` to a dozen or so) and stacked; the slider's
    position selects one through a browser-side link, so it also works in the static HTML book.
    """
    import ipywidgets as widgets

    values = list(values)
    if not values:
        raise ValueError("figure_slider needs at least one value to draw.")
    images = [widgets.Image(value=figure_png(draw(v)), format="png") for v in values]
    stack = widgets.Stack(images, selected_index=0)
    slider = widgets.SelectionSlider(
        options=[(str(v), i) for i, v in enumerate(values)],
        value=values.index(start) if start is not None else 0,
        description=description,
        continuous_update=True,
        style={"description_width": "initial"},
        layout=widgets.Layout(width="420px"),
    )
    widgets.jslink((slider, "index"), (stack, "selected_index"))
    stack.selected_index = slider.index
    return widgets.VBox([slider, stack])


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
