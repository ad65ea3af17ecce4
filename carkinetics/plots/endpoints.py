"""Responder rates by dose level and visit (from :func:`carkinetics.endpoints.responder_table`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_responder_rates", "responder_figure"]

_LABELS = {
    "acr20": "ACR20", "acr50": "ACR50", "acr70": "ACR70", "eular_good": "EULAR good",
    "eular_moderate_or_good": "EULAR moderate or good", "das28_remission": "DAS28 < 2.6",
    "sledai_drop4": "SLEDAI-2K drop >= 4",
    "sri4_bilag_numeric": "SRI-4 (BILAG numeric surrogate)", "haq_di_mcid": "HAQ-DI drop >= 0.22",
}


def plot_responder_rates(table: pd.DataFrame, *, measure: str, ax: Axes,
                         show_all: bool = True, ci: bool = True) -> Axes:
    """Draw one measure's responder percentage by visit, one line per dose level.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.responder_table` (``measure``,
        ``dose_level``, ``visit``, ``nominal_day``, ``pct``, ``ci_low``, ``ci_high``, ``N``).
    measure : str
        The measure to draw.
    ax : Axes
        Where to draw.
    show_all : bool, default True
        Also draw the pooled ``"All"`` row (black, dashed).
    ci : bool, default True
        Draw the exact 95% CIs as error bars (offset slightly per dose level).

    Returns
    -------
    Axes
    """
    df = table[table["measure"] == measure]
    visits = (df[["visit", "nominal_day"]].drop_duplicates("visit")
              .sort_values("nominal_day")["visit"].tolist())
    pos = {v: i for i, v in enumerate(visits)}
    levels = [lv for lv in pd.unique(df["dose_level"]) if lv != "All"]
    if show_all and (df["dose_level"] == "All").any():
        levels.append("All")
    width = 0.5 / max(len(levels), 1)
    for k, level in enumerate(levels):
        g = df[df["dose_level"] == level].sort_values("nominal_day")
        x = np.array([pos[v] for v in g["visit"]], dtype=float) + (k - (len(levels) - 1) / 2) \
            * width
        style = dict(color="black", ls="--") if level == "All" else dict(ls="-")
        label = "all levels" if level == "All" else f"level {level}"
        line = ax.plot(x, g["pct"], marker="o", ms=4, lw=1.0, label=label, **style)[0]
        if ci:
            err = np.vstack([g["pct"] - g["ci_low"], g["ci_high"] - g["pct"]])
            ax.errorbar(x, g["pct"], yerr=err, fmt="none", lw=0.6, capsize=2,
                        color=line.get_color(), alpha=0.6)
    ax.set_xticks(range(len(visits)))
    ax.set_xticklabels(visits, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(-5, 105)
    ax.set_ylabel("responders (%)")
    ax.set_title(_LABELS.get(measure, measure), fontsize=9)
    ax.grid(True, lw=0.3, alpha=0.5)
    return ax


def responder_figure(table: pd.DataFrame, measures: Sequence[str] | None = None) -> Figure:
    """A grid of responder-rate panels, one per measure present.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.responder_table`.
    measures : sequence of str, optional
        Measures to draw (default: every measure in the table, in its order).

    Returns
    -------
    Figure
    """
    measures = list(pd.unique(table["measure"]) if measures is None else measures)
    n = max(len(measures), 1)
    ncol = min(3, n)
    nrow = int(np.ceil(n / ncol))
    fig = Figure(figsize=(4.0 * ncol, 3.0 * nrow), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, m in zip(axes.flat, measures, strict=False):
        plot_responder_rates(table, measure=m, ax=ax)
    for ax in list(axes.flat)[len(measures):]:
        ax.set_visible(False)
    if measures:
        axes.flat[0].legend(fontsize=7, loc="best")
    fig.suptitle("Responder rates by dose level and visit (observed cases; bars: exact 95% CI)",
                 fontsize=10)
    return fig
