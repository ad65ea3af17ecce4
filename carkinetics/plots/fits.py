"""Diagnostics of individual fits: fitted profiles, observed vs predicted, residuals, estimates.

Every function takes a :class:`~carkinetics.fitting.FitResult` or
:class:`~carkinetics.fitting.FitResults` and draws on a given Axes (or returns a new
Figure). Below-LLOQ samples are open markers at their LLOQ; their residuals are the
conditional means of :attr:`FitResult.predictions` (``iwres``), drawn open as well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from carkinetics.plots.ck import set_time_axis

__all__ = [
    "plot_individual_fits",
    "plot_observed_vs_predicted",
    "plot_residuals_vs_time",
    "plot_residuals_vs_prediction",
    "plot_parameters_by_dose",
]

_COLORS = {"car_qpcr": "C0", "car_flow": "C1", "car_flow_pct": "C2"}


def _fits(results: Any) -> list:
    from carkinetics.fitting.results import FitResult, FitResults

    if isinstance(results, FitResult):
        return [results]
    if isinstance(results, FitResults):
        return list(results.fits)
    raise TypeError(f"Invalid results of type {type(results).__name__}; expected a FitResult "
                    "or FitResults.")


def _axes(ax: Axes | None) -> Axes:
    return ax if ax is not None else Figure(figsize=(5, 4), layout="constrained").add_subplot()


def _predictions(results: Any) -> pd.DataFrame:
    return pd.concat([f.predictions for f in _fits(results)], ignore_index=True)


def _scatter(ax: Axes, x, y, cens, color: str, label: str | None = None) -> None:
    q = np.asarray(cens) == 0
    ax.plot(np.asarray(x)[q], np.asarray(y)[q], "o", ms=3.5, color=color, label=label)
    if (~q).any():
        ax.plot(np.asarray(x)[~q], np.asarray(y)[~q], "o", ms=3.5, mfc="none", color=color,
                label=None if label is None else f"{label} (censored)")


def plot_individual_fits(results: Any, *, ids: Sequence[Any] | None = None,
                         ncols: int | None = None, fig: Figure | None = None) -> Figure:
    """One panel per fit: observations (BLQ open, at the LLOQ) and the fitted curve(s).

    Parameters
    ----------
    results : FitResult or FitResults
        Fits to draw; failed participants of a ``FitResults`` get a panel with the reason.
    ids : sequence, optional
        Participants to draw (default all).
    ncols : int, optional
        Panels per row (default: about square).
    fig : Figure, optional
        Figure to draw in (cleared); a new one is sized to the panels otherwise.

    Returns
    -------
    Figure
    """
    fits = _fits(results)
    failures = list(getattr(results, "failures", ()))
    if ids is not None:
        keep = set(ids)
        fits = [f for f in fits if f.id in keep]
        failures = [f for f in failures if f.id in keep]
    n = max(len(fits) + len(failures), 1)
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = math.ceil(n / ncols)
    if fig is None:
        fig = Figure(figsize=(2.6 * ncols, 2.2 * nrows + 0.4), layout="constrained")
    else:
        fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=False).ravel()
    for ax, f in zip(axes, fits, strict=False):
        pr = f.predictions
        for ep, g in pr.groupby("endpoint", sort=False):
            col = _COLORS.get(str(ep), "C3")
            _scatter(ax, g["time"], g["dv"], g["cens"], col)
            c = f.curve[f.curve["endpoint"] == ep]
            ax.plot(c["time"], c["ipred"], "-", lw=1.0, color=col, label=str(ep))
        ax.set_yscale("log")
        dv = pr["dv"].to_numpy(dtype=float)
        if (dv > 0).any():  # keep the extrapolated tail from squashing the data
            ax.set_ylim(bottom=float(dv[dv > 0].min()) / 10.0)
        set_time_axis(ax, float(pr["time"].max()))
        flag = " [" + ",".join(f.flags) + "]" if f.flags else ""
        ax.set_title(f"{f.id} {'' if f.endpoint == 'car_qpcr' else f.endpoint}{flag}",
                     fontsize=7)
        ax.tick_params(labelsize=6)
    for ax, f in zip(axes[len(fits):], failures, strict=False):
        ax.text(0.5, 0.5, f"{f.id}: failed\n{f.error}", ha="center", va="center",
                fontsize=7, transform=ax.transAxes, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(fits) + len(failures):]:
        ax.set_visible(False)
    if fits:
        f0 = fits[0]
        fig.suptitle(f"{f0.model} fits ({f0.method.upper()}); open markers: censored at "
                     "the LLOQ", fontsize=9)
        fig.supxlabel("days since infusion", fontsize=8)
        fig.supylabel(f"level ({f0.level_unit})", fontsize=8)
    return fig


def plot_observed_vs_predicted(results: Any, *, ax: Axes | None = None) -> Axes:
    """Observations against individual predictions (log-log), with the identity line."""
    ax = _axes(ax)
    pr = _predictions(results)
    for ep, g in pr.groupby("endpoint", sort=False):
        _scatter(ax, g["ipred"], g["dv"], g["cens"], _COLORS.get(str(ep), "C3"), str(ep))
    pos = pr.loc[(pr["dv"] > 0) & (pr["ipred"] > 0), ["dv", "ipred"]].to_numpy()
    if pos.size:
        lo, hi = pos.min() / 2, pos.max() * 2
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("individual prediction")
    ax.set_ylabel("observation (LLOQ if censored)")
    ax.legend(fontsize=7)
    return ax


def _residual_axes(ax: Axes, pr: pd.DataFrame, x: str) -> None:
    for ep, g in pr.groupby("endpoint", sort=False):
        _scatter(ax, g[x], g["iwres"], g["cens"], _COLORS.get(str(ep), "C3"), str(ep))
    ax.axhline(0.0, color="k", lw=0.8)
    for v in (-2.0, 2.0):
        ax.axhline(v, color="k", lw=0.6, ls=":")
    ax.set_ylabel("IWRES (censored: conditional mean)")
    ax.legend(fontsize=7)


def plot_residuals_vs_time(results: Any, *, ax: Axes | None = None) -> Axes:
    """Normalised residuals against time since infusion."""
    ax = _axes(ax)
    pr = _predictions(results)
    _residual_axes(ax, pr, "time")
    set_time_axis(ax, float(pr["time"].max()))
    ax.set_xlabel("days since infusion")
    return ax


def plot_residuals_vs_prediction(results: Any, *, ax: Axes | None = None) -> Axes:
    """Normalised residuals against the individual prediction (log axis)."""
    ax = _axes(ax)
    _residual_axes(ax, _predictions(results), "ipred")
    ax.set_xscale("log")
    ax.set_xlabel("individual prediction")
    return ax


def plot_parameters_by_dose(results: Any, *, params: Sequence[str] | None = None,
                            fig: Figure | None = None) -> Figure:
    """Individual estimates by dose level: one panel per parameter, median bars.

    Parameters
    ----------
    results : FitResult or FitResults
        Fits (failed participants are left out).
    params : sequence of str, optional
        Parameters to draw (default: the kinetic ones).
    fig : Figure, optional
        Figure to draw in (cleared).

    Returns
    -------
    Figure
    """
    tab = pd.concat([f.to_frame() for f in _fits(results)], ignore_index=True)
    if params is None:
        params = list(pd.unique(tab.loc[tab["kind"] == "kinetic", "parameter"]))
    n = max(len(params), 1)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    if fig is None:
        fig = Figure(figsize=(3.2 * ncols, 2.6 * nrows), layout="constrained")
    else:
        fig.clear()
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    doses = np.sort(tab["dose"].dropna().unique())
    for ax, name in zip(axes, params, strict=False):
        g = tab[tab["parameter"] == name]
        for k, d in enumerate(doses):
            v = g.loc[g["dose"] == d, "estimate"].to_numpy(dtype=float)
            jitter = (np.arange(v.size) - (v.size - 1) / 2) * 0.06
            ax.plot(k + jitter, v, "o", ms=4, color="C0", alpha=0.8)
            if v.size:
                ax.plot([k - 0.25, k + 0.25], [np.median(v)] * 2, "k-", lw=1.5)
        ax.set_xticks(range(len(doses)), [f"{d:.3g}" for d in doses], fontsize=7)
        if (g["transform"] == "log").all() and (g["estimate"] > 0).all():
            ax.set_yscale("log")
        unit = g["unit"].iloc[0] if len(g) else ""
        ax.set_title(f"{name} ({unit})", fontsize=8)
        ax.set_xlabel("dose (cells/kg)", fontsize=7)
    for ax in axes[len(params):]:
        ax.set_visible(False)
    return fig
