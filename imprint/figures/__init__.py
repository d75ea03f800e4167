"""The figures, drawn from the tidy result tables (matplotlib; PDF and PNG).

One module per figure (``imprint/figures/<name>.py``) holds its plot function, the tables it
reads, its report caption and its ``plan``: whether a config draws it, and with which panels.
Each exports ``FIGURE`` (an :class:`imprint.figures.common.Figure`), and :data:`FIGURES` below
lists them: adding a figure is one module and one line there; the workflow's rules, the report
and :func:`figure_plan` derive from the entries. :mod:`imprint.figures.common` holds what
figures share (matplotlib on Agg, "best NORM", panel grids, colours, task series, the plan
helpers); critical-difference diagrams, drawn per comparison, are
:mod:`imprint.figures.critical_difference`.

Where a figure picks "the best NORM", it picks, per panel and point, the NORM combination with
the highest mean accuracy over seeds (the paper's "best NORM per row"), and the band is ± one
standard deviation of that configuration over seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imprint.figures import (
    d_in_1,
    embedding_dim,
    few_shot,
    finetune_curves,
    gen_time,
    gen_vs_k,
    layers,
    lowshot,
    nc1,
    nc1_vs_gain,
    selection_optimism,
)
from imprint.figures.common import (
    LOWSHOT_LABELS,
    Figure,
    best_norm,
    d_in_1_series,
    few_shot_series,
    pyplot,
    save_figure,
)
from imprint.figures.critical_difference import cd_diagram
from imprint.figures.gen_vs_k import plot_gen_vs_k

__all__ = [
    "FIGURES",
    "Figure",
    "best_norm",
    "cd_diagram",
    "d_in_1_series",
    "few_shot_series",
    "figure_caption",
    "figure_plan",
    "plot_gen_vs_k",
    "pyplot",
    "save_figure",
]

#: Every figure the workflow can draw, by name (one line per figure module).
FIGURES: dict[str, Figure] = {
    figure.name: figure
    for figure in (
        gen_vs_k.FIGURE,
        few_shot.FIGURE,
        nc1.FIGURE,
        d_in_1.FIGURE,
        nc1_vs_gain.FIGURE,
        layers.FIGURE,
        lowshot.FIGURE,
        embedding_dim.FIGURE,
        finetune_curves.FIGURE,
        selection_optimism.FIGURE,
        gen_time.FIGURE,
    )
}


def figure_plan(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The figures a (validated) config draws, each with the options of its plot function, by
    name: every entry of :data:`FIGURES` whose ``plan`` draws it."""
    planned = {name: figure.plan(config) for name, figure in FIGURES.items()}
    return {name: options for name, options in sorted(planned.items()) if options is not None}


def figure_caption(figure: str, options: Mapping[str, Any]) -> str:
    """The report caption of ``figure`` drawn with ``options`` (an entry of the figure plan)."""
    series = options.get("series", {})
    return FIGURES[figure].caption.format(
        k=", ".join(map(str, options.get("k", []))),
        tasks=", ".join(options.get("tasks", [])),
        series="; ".join(f"{name} ({', '.join(tasks)})" for name, tasks in series.items()),
        selection=options.get("selection", ""),
        methods=", ".join(LOWSHOT_LABELS[m] for m in options.get("methods", [])),
        n_shot=", ".join(map(str, options.get("n_shot", []))),
    )
