"""Critical-difference diagrams of a comparison (Demšar 2006)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from imprint.figures.common import (
    pyplot,
)
from imprint.stats import POSTHOC_TESTS, ComparisonResult


def cd_diagram(
    result: ComparisonResult, title: str, alpha: float = 0.05
) -> tuple[Any, dict[str, list[Any]]]:
    """Critical-difference diagram (scikit-posthocs) of a comparison: the matplotlib figure and
    scikit-posthocs' artists (markers, elbows, labels, crossbars).

    Treatments joined by a bar are not significantly different under the post-hoc test named
    in the title. Without a post-hoc test (Friedman not significant, or too few treatments or
    groups) the mean ranks are drawn without bars and the title says why.
    """
    import scikit_posthocs

    plt = pyplot()
    ranks = result.table.set_index("treatment")["mean_rank"]
    if result.posthoc_run:
        significance = result.pvalues
    else:
        # scikit-posthocs draws a bar wherever p >= alpha; p = 0 off the diagonal draws none.
        significance = pd.DataFrame(np.eye(len(ranks)), index=ranks.index, columns=ranks.index)
    height = 1.6 + 0.22 * len(ranks)
    fig, ax = plt.subplots(figsize=(8, height))
    # The critical difference goes into the title: scikit-posthocs' CD ruler overlaps the rank
    # axis labels.
    artists = scikit_posthocs.critical_difference_diagram(
        ranks, significance, ax=ax, alpha=alpha, label_props={"fontsize": 8}
    )
    if result.posthoc_run:
        how = (
            f"bars join treatments the {POSTHOC_TESTS[result.posthoc]} test does not "
            f"separate (alpha={alpha})"
        )
        if not np.isnan(result.critical_difference):
            how += f"; CD = {result.critical_difference:.3g}"
    else:
        how = "no post-hoc test, so no bars"
    ax.set_title(
        f"{title}\n{result.note}\n{how}\n{result.n_groups} groups (model × task); "
        "mean rank, 1 = best",
        fontsize=9,
        pad=28,
    )
    fig.tight_layout()
    return fig, artists
