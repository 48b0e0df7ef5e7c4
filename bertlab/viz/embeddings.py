"""The embedding explorer (chapters 3-5): word vectors as a map, neighbours and analogies.

:class:`EmbeddingExplorer` draws an :class:`bertlab.embeddings.Embeddings` (GloVe, word2vec,
ELMo's token layer): the words projected to 2-D, a word's nearest neighbours with their cosines,
"a is to b as c is to ?". Its :meth:`~EmbeddingExplorer.widget` pre-renders chosen views behind
dropdowns (a :func:`~bertlab.viz.widgets.selector`, so the static book shows them) and adds text
boxes for your own words (a :func:`~bertlab.viz.widgets.live`, which needs a kernel).
:func:`explorer` is the one-call form the chapters use.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from itertools import chain

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np

from bertlab.viz.widgets import live, selector


def project_2d(vectors, method: str = "pca", seed: int = 0):
    """Project row vectors (n, D) to 2-D (n, 2): PCA on the centred rows (``"pca"``), or t-SNE
    (``"tsne"``, needs scikit-learn). Pass unit vectors to picture cosine geometry."""
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
        queries = self.known(self.words[:6] if queries is None else queries)[0]
        # generators: each figure becomes a PNG before the next is drawn
        views = chain(
            [(f"map of {len(self.words)} words", (self.draw_map(),))],
            ((f"neighbours of {q}", self._neighbourhood(q)) for q in queries),
        )
        parts = selector(views, description="view", width="300px", boxed=False)
        analogies = [t for t in analogies if not self.known(t)[1]]
        if analogies:
            pages = (
                (f"{a} : {b} :: {c} : ?", (self.draw_analogy(a, b, c), self.analogy_html(a, b, c)))
                for a, b, c in analogies
            )
            parts += selector(pages, description="analogy", width="300px", boxed=False)
        if live:
            parts.append(self._live_widget())
        return widgets.VBox(parts)

    def _neighbourhood(self, word: str, title: bool = True):
        """A word and its neighbours: the map of them and the table of cosines."""
        near = [w for w, _ in self.emb.most_similar(word, self.k)]
        heading = f'"{word}" and its {self.k} neighbours' if title else None
        fig = self.draw_map([word, *near], highlight=[word], title=heading)
        return fig, self.neighbours_html(word)

    def _live_widget(self):
        """Text boxes to add words to the map, look up neighbours and try analogies (live)."""
        added: list[str] = []

        def add(text):
            found, missing = self.known(text.replace(",", " ").split())
            added.extend(w for w in found if w not in added and w not in self.words)
            note = ""
            if missing:
                note = f"<i>not in the vocabulary: {html.escape(', '.join(missing))}</i>"
            return self.draw_map(self.words + added, highlight=added), note

        def neighbours(text):
            word = text.strip()
            if word not in self.emb:
                return f"<i>{html.escape(word)!s} is not in the vocabulary.</i>"
            return self._neighbourhood(word, title=False)

        def analogy(text):
            words = text.replace(",", " ").split()
            missing = self.known(words)[1]
            if len(words) != 3 or missing:
                problem = (
                    f"not in the vocabulary: {', '.join(missing)}" if missing else "three words"
                )
                return f"<i>Type three words, a b c ({html.escape(problem)}).</i>"
            return self.draw_analogy(*words), self.analogy_html(*words)

        boxes = {
            "add to the map": ("river, lake, sea", add),
            "neighbours of": ("a word", neighbours),
            "analogy a b c": ("man king woman", analogy),
        }
        inputs = {
            name: widgets.Text(
                placeholder=placeholder,
                continuous_update=False,
                layout=widgets.Layout(width="260px"),
            )
            for name, (placeholder, _) in boxes.items()
        }

        def run(values, changed):
            return None if changed is None else boxes[changed][1](values[changed])

        return live(
            run, inputs, figure=True, title="Your own words", hint="press Enter after typing"
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
