"""Pictures of what transfers (chapter 6): learning curves, accuracy per step, task A -> B.

Each function takes the plain results of a :mod:`bertlab.gpt` demo and draws one axes: the
pre-trained arm and its control (the same architecture from random init) side by side, with
the majority-class floor as a dotted line when it is given.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

ARM_STYLE = {"pre-trained": ("C0", "o-"), "scratch": ("C3", "s--")}


def _floor(ax, majority: float | None) -> None:
    if majority is not None:
        ax.axhline(majority, color="gray", ls=":", lw=1, label="majority class")


def plot_learning_curve(curve: dict, majority: float | None = None, ax=None, title: str = ""):
    """Dev accuracy against the number of labelled examples (log scale), one line per init
    (``bertlab.gpt.learning_curve``'s result)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for init, runs in curve.items():
        color, style = ARM_STYLE.get(init, ("C2", "^-"))
        ax.plot([r.examples for r in runs], [r.accuracy for r in runs], style, color=color,
                label=init)  # fmt: skip
    _floor(ax, majority)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("labelled training examples (log scale)")
    ax.set_ylabel("dev accuracy")
    ax.set_title(title or "General -> specific: accuracy by amount of labelled data")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_steps_curve(runs: dict, by: str = "steps", majority: float | None = None, ax=None):
    """Dev accuracy during training, against steps or training ``seconds``, one line per init
    (``runs``: ``{init: RunResult}`` with periodic evaluations)."""
    if by not in ("steps", "seconds"):
        raise ValueError(f"by must be 'steps' or 'seconds', got {by!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for init, r in runs.items():
        color, style = ARM_STYLE.get(init, ("C2", "^-"))
        x = r.eval_steps if by == "steps" else r.eval_seconds
        ax.plot(x, r.eval_accuracy, style, color=color, ms=4, label=init)
    _floor(ax, majority)
    ax.set_xlabel("training step" if by == "steps" else "training time (s, evaluations excluded)")
    ax.set_ylabel("dev accuracy")
    ax.set_title(f"Faster training: dev accuracy by {'step' if by == 'steps' else 'second'}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_transfer(pairs: dict, tasks: tuple[str, str], majority: float | None = None, ax=None):
    """Task B's dev accuracy, B alone vs A then B, per init (``bertlab.gpt.transfer_a_to_b``)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    a, b = (t.upper() for t in tasks)
    inits = list(pairs)
    width = 0.38
    for k, (arm, label) in enumerate((("B alone", f"{b} alone"), ("A then B", f"{a} -> {b}"))):
        xs = [i + (k - 0.5) * width for i in range(len(inits))]
        values = [pairs[init][arm].accuracy for init in inits]
        bars = ax.bar(xs, values, width, label=label, color=("C7", "C2")[k])
        ax.bar_label(bars, fmt="%.3f", fontsize=8)
    _floor(ax, majority)
    ax.set_xticks(range(len(inits)), inits)
    low = min(pairs[i][arm].accuracy for i in inits for arm in pairs[i])
    ax.set_ylim(max(0.0, min(low, majority or low) - 0.08), None)
    ax.set_ylabel(f"{b} dev accuracy")
    ax.set_title(f"Task A -> task B: {a} first, then {b}")
    ax.legend(fontsize=8, loc="lower right")
    return ax
