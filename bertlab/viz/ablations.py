"""Chapter 11's pictures: an ablation study's scores, and corrections side by side."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

__all__ = ["plot_study", "corrections_html"]

_TASK_NAMES = {"sst2": "SST-2", "mrpc": "MRPC", "rte": "RTE"}


def plot_study(rows: Sequence[Mapping], floors: Mapping[str, float] | None = None, title=""):
    """One axes per task: a bar per arm (mean accuracy over the fine-tuning seeds, the error bar
    half their range), the baseline's mean as a dashed line and, from ``floors``, the score
    of always predicting the majority class as a dotted one. ``rows``: ``ablations.table``."""
    task_names = [k for k in rows[0] if k in _TASK_NAMES]
    fig, axes = plt.subplots(1, len(task_names), figsize=(4.6 * len(task_names), 3.1),
                             squeeze=False)  # fmt: skip
    arms = [r["arm"] for r in rows]
    for ax, name in zip(axes[0], task_names):
        means = [r[name] for r in rows]
        spreads = [r[f"{name}_spread"] for r in rows]
        colours = ["#4c72b0" if i == 0 else "#dd8452" for i in range(len(rows))]
        ax.barh(range(len(rows)), means, xerr=spreads, color=colours, capsize=3)
        for i, m in enumerate(means):
            ax.text(m + 0.01, i, f"{m:.3f}", va="center", fontsize=7)
        ax.axvline(means[0], color="#4c72b0", ls="--", lw=1)
        if floors and name in floors:
            ax.axvline(floors[name], color="gray", ls=":", lw=1.2, label="majority class")
            ax.legend(fontsize=7, loc="lower right")
        lo = min(min(means) - max(spreads), (floors or {}).get(name, 1.0)) - 0.05
        ax.set_xlim(max(0.0, lo), min(1.0, max(means) + max(spreads) + 0.08))
        ax.set_yticks(range(len(rows)), arms if ax is axes[0][0] else [""] * len(rows),
                      fontsize=8)  # fmt: skip
        ax.invert_yaxis()
        ax.set_xlabel(f"{_TASK_NAMES[name]} dev accuracy", fontsize=8)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_ylabel("arm", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def corrections_html(
    sources: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
    hypotheses: Mapping[str, Sequence[Sequence[str]]],
) -> str:  # fmt: skip
    """A table: for each sentence the corrupted input, the original and each corrector's
    output; a word a corrector changed is bold, green when the output equals the original."""
    names = list(hypotheses)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ("input", "original", *names))
    body = []
    for i, (src, ref) in enumerate(zip(sources, references)):
        cells = [html.escape(" ".join(src)), html.escape(" ".join(ref))]
        for name in names:
            hyp = hypotheses[name][i]
            words = [f"<b>{html.escape(w)}</b>" if w not in src else html.escape(w) for w in hyp]
            colour = "#d8f0d8" if list(hyp) == list(ref) else "transparent"
            cells.append(f'<span style="background:{colour}">{" ".join(words)}</span>')
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    # break-word: a degenerate output (one long run of pieces) must not widen the page
    style = "border-collapse:collapse;font-size:12px;line-height:1.4;word-break:break-word"
    return f'<table style="{style}"><tr>{head}</tr>' + "".join(body) + "</table>"
