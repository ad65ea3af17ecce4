"""Figures of a population fit: goodness-of-fit panel, individual fits, VPC with %BLQ.

Each function returns a matplotlib Figure and draws from the fit's tables
(``result.table``: ``dv, cens, PRED, IPRED, CWRES, NPDE``; ``result.vpc()``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["gof_figure", "individual_fits_figure", "vpc_figure"]

_COLORS = {"car_qpcr": "tab:blue", "car_flow": "tab:orange"}


def _color(ep: Any) -> str:
    return _COLORS.get(str(ep), "tab:green")


def gof_figure(table: pd.DataFrame, *, title: str = "FOCE-I goodness of fit"):
    """Six-panel goodness-of-fit figure.

    DV vs PRED and vs IPRED (log axes; BLQ rows as open triangles at their LLOQ), CWRES vs
    time and vs PRED, NPDE vs time and the NPDE histogram against N(0, 1).

    Parameters
    ----------
    table : DataFrame
        ``result.table`` of a FOCE-I fit.
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 8))
    ep = table["endpoint"] if "endpoint" in table else pd.Series("dv", index=table.index)
    cens = table["cens"].to_numpy() if "cens" in table else np.zeros(len(table))
    t = table["time"] if "time" in table else pd.Series(np.arange(len(table)))
    for e in pd.unique(ep):
        m = (ep == e).to_numpy()
        q, c = m & (cens == 0), m & (cens != 0)
        for ax, col in ((axes[0, 0], "PRED"), (axes[0, 1], "IPRED")):
            ax.scatter(table.loc[q, col], table.loc[q, "dv"], s=10, color=_color(e), label=e)
            ax.scatter(table.loc[c, col], table.loc[c, "dv"], s=16, marker="v",
                       facecolors="none", edgecolors=_color(e))
        axes[0, 2].scatter(t[q], table.loc[q, "CWRES"], s=10, color=_color(e))
        axes[1, 0].scatter(table.loc[q, "PRED"], table.loc[q, "CWRES"], s=10, color=_color(e))
        axes[1, 1].scatter(t[m], table.loc[m, "NPDE"], s=10, color=_color(e))
    for ax, col in ((axes[0, 0], "PRED"), (axes[0, 1], "IPRED")):
        pos = table[[col, "dv"]].to_numpy(float)
        pos = pos[np.all(pos > 0, axis=1) & np.all(np.isfinite(pos), axis=1)]
        if len(pos):
            lo, hi = pos.min(), pos.max()
            ax.plot([lo, hi], [lo, hi], "k--", lw=1)
            ax.set_xscale("log")
            ax.set_yscale("log")
        ax.set_xlabel(col)
        ax.set_ylabel("DV (open: BLQ at LLOQ)")
    axes[0, 0].legend(fontsize=8)
    axes[0, 2].set_xlabel("time (day)")
    axes[0, 2].set_ylabel("CWRES")
    axes[1, 0].set_xlabel("PRED")
    axes[1, 0].set_xscale("log")
    axes[1, 0].set_ylabel("CWRES")
    axes[1, 1].set_xlabel("time (day)")
    axes[1, 1].set_ylabel("NPDE (BLQ: censoring-aware)")
    for ax in (axes[0, 2], axes[1, 0], axes[1, 1]):
        ax.axhline(0, color="k", lw=1)
        for y in (-1.96, 1.96):
            ax.axhline(y, color="grey", lw=0.8, ls=":")
    v = table["NPDE"].to_numpy(float)
    v = v[np.isfinite(v)]
    ax = axes[1, 2]
    if len(v):
        ax.hist(v, bins=20, density=True, color="lightgrey", edgecolor="grey")
    x = np.linspace(-4, 4, 200)
    ax.plot(x, np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi), "k-", lw=1.2, label="N(0, 1)")
    ax.set_xlabel("NPDE")
    ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def individual_fits_figure(result: Any, *, ncols: int = 6, n_grid: int = 300):
    """Observed data with individual (IPRED) and population (PRED) curves per participant.

    For fits built from a :class:`~carkinetics.fitting.population.spec.PopulationSpec` the
    curves are the closed form on a fine time grid (each assay on its own scale); otherwise
    the predictions at the observation times are joined.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    table = result.table
    ids = list(pd.unique(table["id"]))
    ncols = min(ncols, len(ids))
    nrows = math.ceil(len(ids) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.2 * nrows), squeeze=False,
                             sharex=True)
    model = getattr(result.engine, "model", None)
    spec = getattr(model, "spec", None)
    t_max = float(table["time"].max()) if "time" in table else 1.0
    grid = np.linspace(0.0, max(t_max, 1.0), n_grid)
    ind = result.individual.set_index("id") if result.individual is not None else None
    for n, pid in enumerate(ids):
        ax = axes[n // ncols, n % ncols]
        d = table[table["id"] == pid]
        for e in pd.unique(d["endpoint"]) if "endpoint" in d else ["dv"]:
            de = d[d["endpoint"] == e] if "endpoint" in d else d
            q = de["cens"] == 0
            ax.scatter(de.loc[q, "time"], de.loc[q, "dv"], s=9, color=_color(e))
            ax.scatter(de.loc[~q, "time"], de.loc[~q, "dv"], s=14, marker="v",
                       facecolors="none", edgecolors=_color(e))
            if spec is not None and ind is not None:
                kin = {k: float(ind.loc[pid, k]) for k in spec.kinetic_names}
                scale = float(ind.loc[pid, f"log_scale_{e}"]) if f"log_scale_{e}" in ind \
                    else 0.0
                with np.errstate(all="ignore"):
                    ax.plot(grid, np.exp(spec.model.log_predict(grid, kin) + scale),
                            color=_color(e), lw=1)
            else:
                ax.plot(de["time"], de["IPRED"], color=_color(e), lw=1)
            ax.plot(de["time"], de["PRED"], color=_color(e), lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_title(str(pid), fontsize=8)
        ax.tick_params(labelsize=7)
    for n in range(len(ids), nrows * ncols):
        axes[n // ncols, n % ncols].axis("off")
    fig.suptitle("Individual fits (solid: IPRED; dashed: PRED; open triangles: BLQ at LLOQ)")
    fig.tight_layout()
    return fig


def vpc_figure(vpc: pd.DataFrame, *, title: str = "VPC (censored; 90% PIs of 5th/50th/95th "
               "percentiles)"):
    """Binned VPC with a %BLQ panel per endpoint.

    Parameters
    ----------
    vpc : DataFrame
        Output of :meth:`FOCEIResult.vpc` (or :func:`.diagnostics.vpc_table`).
    title : str
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    eps = list(pd.unique(vpc["endpoint"]))
    fig, axes = plt.subplots(len(eps), 2, figsize=(12, 3.8 * len(eps)), squeeze=False,
                             gridspec_kw={"width_ratios": [2, 1]})
    for r, e in enumerate(eps):
        d = vpc[vpc["endpoint"] == e].sort_values("time")
        ax = axes[r, 0]
        t = d["time"].to_numpy()
        for tag, shade in (("p05", "tab:blue"), ("p50", "tab:red"), ("p95", "tab:blue")):
            ax.fill_between(t, d[f"{tag}_sim_lo"], d[f"{tag}_sim_hi"], color=shade, alpha=0.2,
                            lw=0)
            ax.plot(t, d[f"{tag}_sim_med"], color=shade, lw=1, ls="--")
            ax.plot(t, d[f"{tag}_obs"], color=shade, lw=1.5, marker="o", ms=3)
        ax.plot(t, d["lloq"], color="k", lw=1, ls=":", label="median LLOQ")
        ax.set_yscale("log")
        ax.set_xlabel("time (day)")
        ax.set_ylabel(f"{e}")
        ax.legend(fontsize=8)
        ax2 = axes[r, 1]
        ax2.fill_between(t, 100 * d["blq_sim_lo"], 100 * d["blq_sim_hi"], color="grey",
                         alpha=0.3, lw=0, label="simulated 90% PI")
        ax2.plot(t, 100 * d["blq_sim_med"], color="grey", ls="--")
        ax2.plot(t, 100 * d["blq_obs"], color="k", marker="o", ms=3, label="observed")
        ax2.set_ylim(-2, 102)
        ax2.set_xlabel("time (day)")
        ax2.set_ylabel("% BLQ")
        ax2.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
