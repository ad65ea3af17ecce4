"""Figures of a Bayesian population fit (:class:`~carkinetics.fitting.bayes.BayesResult`).

* :func:`plot_prior_posterior`: each population parameter's posterior (histogram) over its
  prior (curve), on the sampling scale, with the prior-data conflict check in the title;
* :func:`plot_posterior_predictive`: observations over time with the posterior predictive
  median and 90 % band of each row (replicated data censored at the row's own LLOQ, so the
  band can sit on the LLOQ), and observed vs replicated % below LLOQ by time bin.

The numbers are computed first (:func:`ppc_table`) and drawn afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy import stats

__all__ = ["plot_prior_posterior", "plot_posterior_predictive", "ppc_table"]


def plot_prior_posterior(result: Any, parameters: Sequence[str] | None = None,
                         *, ncols: int = 4) -> Figure:
    """Posterior histograms over prior densities, one panel per population parameter.

    Parameters
    ----------
    result : BayesResult
    parameters : sequence of str, optional
        Names in ``result.prior_check["parameter"]`` (default: all; random-effect SDs are
        listed under their parameter's name in group ``omega``).
    ncols : int, default 4
        Panels per row.

    Returns
    -------
    Figure
    """
    check = result.prior_check
    if parameters is not None:
        check = check[check["parameter"].isin(list(parameters))]
    post = result.idata.posterior
    n = len(check)
    nrows = max(1, math.ceil(n / ncols))
    fig = Figure(figsize=(3.0 * ncols, 2.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    var = {"theta": ("theta_t", "theta_par"), "omega": ("omega", "eta_par"),
           "sigma": ("sigma", "sigma_par")}
    for ax, (_, row) in zip(axes, check.iterrows(), strict=False):
        v, dim = var[row["group"]]
        d = np.ravel(post[v].sel({dim: row["parameter"]}).values)
        ax.hist(d, bins=40, density=True, color="C0", alpha=0.6, label="posterior")
        lo, hi = np.quantile(d, [0.001, 0.999])
        width = hi - lo
        x = np.linspace(lo - width, hi + width, 200)
        if row["prior"] == "normal":
            dens = stats.norm.pdf(x, row["prior_loc"], row["prior_scale"])
        else:
            x = x[x >= 0]
            dens = stats.halfnorm.pdf(x, scale=row["prior_scale"])
        ax.plot(x, dens, color="C3", label="prior")
        name = row["parameter"] if row["group"] == "theta" else \
            f"{row['group']}({row['parameter']})"
        flag = " CONFLICT" if row["conflict"] else ""
        ax.set_title(f"{name}{flag}\nprior tail {row['prior_tail']:.2g}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[n:]:
        ax.set_axis_off()
    if n:
        axes[0].legend(fontsize=7)
    return fig


def ppc_table(result: Any, *, n_bins: int = 8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-row posterior predictive summaries and % BLQ by time bin.

    Returns
    -------
    rows : DataFrame
        ``id, endpoint, time, dv, cens, lloq, pp_lo, pp_median, pp_hi`` (5 %, 50 %, 95 %
        of the replicated dv).
    blq : DataFrame
        ``endpoint, bin, time_mid, observed, replicated, replicated_lo, replicated_hi``:
        observed % BLQ per time bin and the replicated % (mean and 90 % interval over draws).
    """
    idata = result.idata
    cd = idata.constant_data
    rep = idata.posterior_predictive["dv"].values
    rep = rep.reshape(-1, rep.shape[-1])
    rcens = idata.posterior_predictive["cens"].values.reshape(rep.shape)
    q = np.quantile(rep, [0.05, 0.5, 0.95], axis=0)
    rows = pd.DataFrame({"id": cd["id"].values, "endpoint": cd["endpoint"].values,
                         "time": cd["time"].values, "dv": idata.observed_data["dv"].values,
                         "cens": cd["cens"].values, "lloq": cd["lloq"].values,
                         "pp_lo": q[0], "pp_median": q[1], "pp_hi": q[2]})
    out = []
    for ep in pd.unique(rows["endpoint"]):
        sel = (rows["endpoint"] == ep).to_numpy()
        t = rows["time"].to_numpy()[sel]
        edges = np.unique(np.quantile(t, np.linspace(0, 1, n_bins + 1)))
        b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(edges) - 2)
        for k in range(len(edges) - 1):
            m = b == k
            if not m.any():
                continue
            obs = float(np.mean(rows["cens"].to_numpy()[sel][m] == 1))
            per_draw = np.mean(rcens[:, sel][:, m] == 1, axis=1)
            lo, hi = np.quantile(per_draw, [0.05, 0.95])
            out.append((ep, k, float(np.median(t[m])), 100 * obs, 100 * float(per_draw.mean()),
                        100 * float(lo), 100 * float(hi)))
    blq = pd.DataFrame(out, columns=["endpoint", "bin", "time_mid", "observed", "replicated",
                                     "replicated_lo", "replicated_hi"])
    return rows, blq


def plot_posterior_predictive(result: Any, *, n_bins: int = 8,
                              axes: Sequence[Axes] | None = None) -> Figure:
    """Observations with posterior predictive bands, and % BLQ observed vs replicated.

    Parameters
    ----------
    result : BayesResult
    n_bins : int, default 8
        Time bins (quantiles of the sampling times) of the % BLQ panel.
    axes : pair of Axes, optional
        Where to draw (level panel, % BLQ panel); a new Figure otherwise.

    Returns
    -------
    Figure
    """
    rows, blq = ppc_table(result, n_bins=n_bins)
    if axes is None:
        fig = Figure(figsize=(7, 6), layout="constrained")
        ax1, ax2 = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    else:
        ax1, ax2 = axes
        fig = ax1.figure
    for k, ep in enumerate(pd.unique(rows["endpoint"])):
        r = rows[rows["endpoint"] == ep].sort_values("time")
        c = f"C{k}"
        ax1.vlines(r["time"], r["pp_lo"], r["pp_hi"], color=c, alpha=0.25, lw=2)
        q = r["cens"] == 0
        ax1.plot(r["time"][q], r["dv"][q], "o", ms=3, color=c, label=f"{ep} observed")
        ax1.plot(r["time"][~q], r["dv"][~q], "o", ms=3, mfc="none", color=c,
                 label=f"{ep} BLQ (at LLOQ)")
        b = blq[blq["endpoint"] == ep]
        ax2.plot(b["time_mid"], b["observed"], "o-", color=c, label=f"{ep} observed")
        ax2.fill_between(b["time_mid"], b["replicated_lo"], b["replicated_hi"], color=c,
                         alpha=0.2, label=f"{ep} replicated 90 %")
    ax1.set_yscale("log")
    ax1.set_ylabel("level (assay units)")
    ax1.legend(fontsize=7)
    ax1.set_title("posterior predictive: 90 % band of each row", fontsize=9)
    ax2.set_xscale("symlog", linthresh=10)
    ax2.set_xlabel("days since infusion")
    ax2.set_ylabel("% below LLOQ")
    ax2.legend(fontsize=7)
    return fig
