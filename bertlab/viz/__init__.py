"""Pictures and widgets for the chapters, one module per topic.

Everything here has to work in three places: a live Jupyter kernel, Colab, and the *static* HTML
book, where no Python runs. :mod:`~bertlab.viz.widgets` holds the two primitives the rest is built
from: :func:`selector` (pages rendered ahead of time, switched in the browser through ``jslink``)
and :func:`live` (Python on every change; needs a kernel, and says so). Then one module per topic:
:mod:`~bertlab.viz.tokens` (word pieces, BERT's input), :mod:`~bertlab.viz.attention` (bertviz on
our models, heatmaps, what the heads do), :mod:`~bertlab.viz.embeddings` (the word-vector
explorer), :mod:`~bertlab.viz.params` (the parameter counter), :mod:`~bertlab.viz.positions`
(learned vs sinusoidal position tables), :mod:`~bertlab.viz.training` (curves) and
:mod:`~bertlab.viz.transfer` (learning curves and task transfer, chapter 6);
:mod:`~bertlab.viz.mlm` and :mod:`~bertlab.viz.finetuning` (chapters 9 and 10) are imported
by name. The chapters
use the names re-exported here: ``from bertlab import viz``.
"""

from bertlab.viz.attention import (
    AttentionData,
    attention_data,
    attention_grid,
    attention_view,
    bertviz_html,
    cross_cosine,
    habit_targets,
    head_habits,
    layer_similarity,
    position_similarity,
    top_heads,
)
from bertlab.viz.embeddings import EmbeddingExplorer, explorer, project_2d
from bertlab.viz.params import param_counter
from bertlab.viz.positions import best_fit_r2, components_for, cosine_matrix, table_correlation
from bertlab.viz.tokens import (
    draw_input_representation,
    live_tokenizer,
    tokenizer_explorer,
    tokens_html,
)
from bertlab.viz.training import plot_history
from bertlab.viz.transfer import plot_learning_curve, plot_steps_curve, plot_transfer
from bertlab.viz.widgets import (
    as_widget,
    figure_png,
    figure_slider,
    html_selector,
    labelled,
    live,
    selector,
)

__all__ = [
    "AttentionData",
    "EmbeddingExplorer",
    "as_widget",
    "attention_data",
    "attention_grid",
    "attention_view",
    "bertviz_html",
    "best_fit_r2",
    "components_for",
    "cosine_matrix",
    "cross_cosine",
    "draw_input_representation",
    "explorer",
    "figure_png",
    "figure_slider",
    "habit_targets",
    "head_habits",
    "html_selector",
    "labelled",
    "layer_similarity",
    "live",
    "live_tokenizer",
    "param_counter",
    "plot_history",
    "plot_learning_curve",
    "plot_steps_curve",
    "plot_transfer",
    "position_similarity",
    "project_2d",
    "selector",
    "table_correlation",
    "tokenizer_explorer",
    "tokens_html",
    "top_heads",
]
