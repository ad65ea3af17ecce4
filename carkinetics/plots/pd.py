"""CK->PD figures: CAR-T, B cells, IgG and anti-dsDNA by dose level; exposure-response."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from carkinetics.plots.ck import plot_ck_by_dose

__all__ = ["plot_ck_pd_by_dose", "plot_exposure_response", "PD_PANEL_ENDPOINTS"]

#: Rows of :func:`plot_ck_pd_by_dose`.
PD_PANEL_ENDPOINTS = ("car_qpcr", "cd19_b", "igg", "anti_dsdna")


def plot_ck_pd_by_dose(data: pd.DataFrame, *,
                       endpoints: Sequence[str] = PD_PANEL_ENDPOINTS) -> Figure:
    """CAR-T, B cells, IgG and anti-dsDNA on one page.

    One row per endpoint, one column per dose level (open markers: below the LLOQ, drawn
    at the LLOQ).

    Parameters
    ----------
    data : DataFrame
        Long table with ``id, time, dv, cens, endpoint, dose``.
    endpoints : sequence of str
        Rows (endpoints without data are skipped).

    Returns
    -------
    Figure
    """
    fig = plot_ck_by_dose(data, endpoints=endpoints)
    fig.suptitle("CAR-T expansion, B-cell aplasia, IgG and anti-dsDNA by dose level "
                 "(open markers: below LLOQ)", fontsize=10)
    return fig


def plot_exposure_response(fit, *, ax: Axes | None = None, n_draws: int = 400,
                           seed: int = 0) -> Figure | Axes:
    """Draw an exposure-response fit (:class:`carkinetics.pd.exposure.ERFit`).

    Logistic: responders (1) and non-responders (0) against exposure with the fitted
    probability and its 95% band; Emax: responses with the fitted curve and band (bands
    from ``n_draws`` draws of the estimates' normal approximation); Cox: Kaplan-Meier
    curves of participants below and above the median exposure, with the hazard ratio
    per ten-fold exposure and its CI in the title.

    Parameters
    ----------
    fit : ERFit
    ax : Axes, optional
        Where to draw (default: a new Figure, which is returned).
    n_draws, seed : int
        Band simulation.

    Returns
    -------
    Figure or Axes
    """
    from carkinetics.pd.exposure import kaplan_meier

    own = ax is None
    if own:
        fig = Figure(figsize=(5.0, 3.6), layout="constrained")
        ax = fig.subplots()
    info = fit.info
    xlab = info.get("exposure", "exposure")
    rng = np.random.default_rng(seed)
    if fit.kind in ("logistic", "emax"):
        x, y = fit.x, fit.y
        ax.plot(x, y, "o", ms=4, alpha=0.7, label="participant")
        grid = np.geomspace(x.min() * 0.8, x.max() * 1.25, 100)
        est = fit.params["estimate"]
        if fit.kind == "logistic":
            mu = est[["intercept", "slope"]].to_numpy()
            draws = rng.multivariate_normal(mu, fit.cov, n_draws)
            curves = 1 / (1 + np.exp(-(draws[:, :1] + draws[:, 1:] * np.log10(grid))))
        else:
            mu = est[["e0", "emax", "log_ec50"]].to_numpy()
            draws = rng.multivariate_normal(mu, fit.cov, n_draws)
            curves = draws[:, :1] + draws[:, 1:2] * grid / (np.exp(draws[:, 2:]) + grid)
        lo, hi = np.percentile(curves, [2.5, 97.5], axis=0)
        ax.plot(grid, fit.predict(grid), "-", color="k", lw=1.2, label=f"{fit.kind} fit")
        ax.fill_between(grid, lo, hi, color="k", alpha=0.12, lw=0, label="95% band")
        ax.set_xscale("log")
        ax.set_xlabel(xlab)
        ax.set_ylabel(info.get("response", "response"))
        slope = fit.params.loc["slope" if fit.kind == "logistic" else "emax"]
        ax.set_title(f"{info.get('endpoint', '')}: {fit.kind} "
                     f"{'slope' if fit.kind == 'logistic' else 'Emax'} "
                     f"{slope['estimate']:.3g} [{slope['ci_lower']:.3g}, "
                     f"{slope['ci_upper']:.3g}]", fontsize=9)
    else:
        med = np.median(fit.x)
        for sel, lab in ((fit.x <= med, "exposure <= median"), (fit.x > med, "exposure > median")):
            t, s = kaplan_meier(fit.y[sel], fit.event[sel])
            ax.step(np.r_[0.0, t], np.r_[1.0, s], where="post", label=f"{lab} (n={sel.sum()})")
        p = fit.params.loc["beta"]
        ax.set_xlabel("days since infusion")
        ax.set_ylabel("fraction without event")
        ax.set_title(f"{info.get('endpoint', '')}: HR per 10-fold {xlab} "
                     f"{p['hazard_ratio']:.2f} [{p['hr_lower']:.2f}, {p['hr_upper']:.2f}]",
                     fontsize=9)
        ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    ax.grid(True, lw=0.3, alpha=0.5)
    return fig if own else ax
