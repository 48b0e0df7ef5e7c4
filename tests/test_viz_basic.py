"""bertlab.viz's generic pieces: pre-rendered figure switchers and history plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from bertlab import viz  # noqa: E402
from bertlab.train import History  # noqa: E402


def draw(n):
    fig, ax = plt.subplots()
    ax.plot(range(n))
    return fig


@pytest.mark.parametrize("widget", ["slider", "dropdown"])
def test_figure_slider_links_control_to_stack_in_the_browser(widget):
    import ipywidgets as widgets

    box = viz.figure_slider(draw, [2, 3, 5], description="n", start=3, widget=widget)
    control, stack = box.children
    assert isinstance(stack, widgets.Stack) and len(stack.children) == 3
    assert all(bytes(img.value[:4]) == b"\x89PNG" for img in stack.children)
    assert control.index == 1 and stack.selected_index == 1
    # The link is a browser-side jslink (a widget of its own), so it works in static HTML.
    assert box.link.source == (control, "index")
    assert box.link.target == (stack, "selected_index")


def test_figure_slider_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one value"):
        viz.figure_slider(draw, [])
    with pytest.raises(ValueError, match="'slider' or 'dropdown'"):
        viz.figure_slider(draw, [1], widget="knob")


def test_plot_history_labels_axes():
    h = History(steps=[10, 20], loss=[2.0, 1.0], eval_steps=[20], evals=[{"acc": 0.5}])
    ax = viz.plot_history(h, metric="acc")
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    plt.close("all")
