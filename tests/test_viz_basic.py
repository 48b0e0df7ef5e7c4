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


# ---- selector: every pre-rendered switcher ------------------------------------------------------


def test_selector_renders_every_kind_of_page_and_links_it_in_the_browser():
    import ipywidgets as widgets

    fig = draw(3)
    pages = [("widget", widgets.Label("x")), ("html", "<p>2</p>"), ("figure", fig)]
    pages.append(("side by side", (draw(2), "<p>table</p>")))
    box = viz.selector(pages, control="toggle", description="page", value=2)
    row, stack = box.children
    label, control = row.children
    assert "<b>page</b>" in label.value and control.description == ""
    assert isinstance(control, widgets.ToggleButtons)
    assert [text for text, _ in control.options] == ["widget", "html", "figure", "side by side"]
    assert len(stack.children) == 4 and stack.selected_index == control.index == 2
    first, html, image, both = stack.children
    assert first is pages[0][1] and html.value == "<p>2</p>"
    assert bytes(image.value[:4]) == b"\x89PNG" and not plt.fignum_exists(fig.number)
    assert isinstance(both, widgets.HBox) and both.children[1].value == "<p>table</p>"
    assert box.links == [box.link] and box.controls == [control]
    assert box.link.source == (control, "index") and box.link.target == (stack, "selected_index")


def test_selector_draws_one_figure_at_a_time_from_a_generator():
    open_figures = []

    def pages():
        for n in range(4):
            open_figures.append(len(plt.get_fignums()))
            yield str(n), draw(n + 1)

    box = viz.selector(pages(), control="slider", label=False, description="n")
    control, stack = box.children  # label=False: the description sits in the control
    assert control.description == "n" and len(stack.children) == 4
    assert open_figures == [0, 0, 0, 0]


def test_selector_with_two_controls_nests_one_stack_per_control():
    pages = {(t, v): f"<p>{t} in {v}</p>" for v in ("big", "small") for t in ("a", "b", "c")}
    box = viz.selector(pages, control=("dropdown", "toggle"), description=("text", "vocabulary"))
    text_row, vocab_row, outer = box.children
    text, vocab = text_row.children[1], vocab_row.children[1]
    assert box.controls == [text, vocab]
    assert [o for o, _ in text.options] == ["a", "b", "c"]
    assert [o for o, _ in vocab.options] == ["big", "small"]
    assert len(outer.children) == 2 and all(len(s.children) == 3 for s in outer.children)
    assert outer.children[1].children[2].value == "<p>c in small</p>"
    targets = {(link.source[0].model_id, link.target[0].model_id) for link in box.links}
    assert targets == {(text.model_id, s.model_id) for s in outer.children} | {
        (vocab.model_id, outer.model_id)
    }
    assert box.link.source == (vocab, "index")  # the outermost


def test_selector_rejects_bad_input():
    with pytest.raises(ValueError, match="'slider' or 'dropdown'"):
        viz.selector([("a", "x")], control="wheel")
    with pytest.raises(ValueError, match="at least one"):
        viz.selector([])
    with pytest.raises(ValueError, match="one description and one value for each"):
        viz.selector({("a", "b"): "x"}, control=("dropdown", "toggle"), description="show")
    with pytest.raises(ValueError, match="every combination"):
        viz.selector(
            {("a", "x"): "1", ("b", "y"): "2"},
            control=("dropdown", "toggle"),
            description=("one", "two"),
        )
    with pytest.raises(TypeError, match="a page must be"):
        viz.selector([("a", 42)])


def test_selector_unboxed_gives_rows_and_stack_for_a_bigger_box():
    parts = viz.selector([("a", "1"), ("a", "2")], boxed=False)  # labels may repeat
    assert len(parts) == 2 and len(parts[1].children) == 2


def test_html_selector_wraps_selector():
    box = viz.html_selector([("one", "<p>1</p>")], description="show")
    assert box.link.target == (box.children[1], "selected_index")


# ---- live: kernel-backed inputs -----------------------------------------------------------------


def test_live_runs_fn_at_once_and_on_every_change():
    import ipywidgets as widgets

    calls = []

    def fn(values, changed):
        calls.append((dict(values), changed))
        return f"<p>{values['word'] * values['times']}</p>"

    word, times = widgets.Text(value="ab"), widgets.IntSlider(value=2)
    box = viz.live(fn, {"word": word, "times": times})
    note, word_row, times_row, out = box.children
    assert "needs a running Python kernel (Jupyter or Colab)" in note.value and "#a33" in note.value
    assert word_row.children[1] is word and "<b>times</b>" in times_row.children[0].value
    assert calls == [({"word": "ab", "times": 2}, None)] and out.value == "<p>abab</p>"
    times.value = 3
    assert calls[-1] == ({"word": "ab", "times": 3}, "times") and out.value == "<p>ababab</p>"


def test_live_with_a_figure_keeps_it_until_the_next_one():
    import ipywidgets as widgets

    def fn(values, changed):
        if changed is None:
            return None
        return (draw(3), "<p>drawn</p>") if values["n"] == "draw" else "<i>just text</i>"

    box = viz.live(fn, {"n": widgets.Text()}, figure=True, title="Try", hint="press Enter")
    note, row, (picture, message) = box.children[0], box.children[1], box.children[2].children
    assert "<b>Try</b>" in note.value and "press Enter" in note.value
    assert picture.layout.display == "none" and message.value == ""  # None: nothing shown
    row.children[1].value = "draw"
    assert bytes(picture.value[:4]) == b"\x89PNG" and picture.layout.display == ""
    row.children[1].value = "other"
    assert message.value == "<i>just text</i>" and bytes(picture.value[:4]) == b"\x89PNG"
    plt.close("all")
