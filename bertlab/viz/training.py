"""Training curves: a :class:`bertlab.train.History` as a plot (chapters 1, 3, 5 and on)."""

from __future__ import annotations

import matplotlib.pyplot as plt


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
