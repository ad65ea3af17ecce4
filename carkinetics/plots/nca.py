"""NCA exposure by dose level: individual values, geometric means and the power model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

__all__ = ["plot_nca_by_dose", "plot_exposure_vs_dose"]

_LABELS = {"CMAX": "Cmax", "AUCINT_0_28": "AUC0-28d", "AUCINT_0_84": "AUC0-84d",
           "AUCLST": "AUC0-Tlast", "AUCIFO": "AUC0-inf"}


def _wide(result) -> pd.DataFrame:
    return result.to_wide() if hasattr(result, "to_wide") else result


def plot_exposure_vs_dose(wide: pd.DataFrame, parameter: str, *, ax: Axes,
                          dose: str = "dose", level: float = 0.90,
                          unit: str | None = None) -> Axes:
    """Draw one exposure parameter against dose on log-log axes.

    Individual values are small markers, the geometric mean at each dose a large one,
    and the power-model fit ``log(P) = a + b log(dose)`` a line labelled with ``b`` and its
    confidence interval (:func:`carkinetics.nca.dose_proportionality`).

    Parameters
    ----------
    wide : DataFrame
        Wide NCA table of one endpoint (``dose`` and ``parameter`` columns).
    parameter : str
        Column to draw, e.g. ``"CMAX"`` or ``"AUCINT_0_28"``.
    ax : Axes
        Where to draw.
    dose : str, default "dose"
        Dose column.
    level : float, default 0.90
        Confidence level of the slope's interval.
    unit : str, optional
        Unit for the y label.

    Returns
    -------
    Axes
    """
    from carkinetics.nca import dose_proportionality

    x = wide[dose].astype(float).to_numpy()
    y = wide[parameter].astype(float).to_numpy()
    ok = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    ax.plot(x[ok], y[ok], "o", ms=4, alpha=0.6, color="C0", label="participant")
    doses = np.unique(x[ok])
    gm = [float(np.exp(np.mean(np.log(y[ok][x[ok] == d])))) for d in doses]
    ax.plot(doses, gm, "D", ms=8, color="C1", mec="k", label="geometric mean", zorder=3)
    fit = dose_proportionality(pd.DataFrame({"endpoint": "_", dose: x, parameter: y}),
                               parameters=[parameter], dose=dose, level=level).iloc[0]
    if np.isfinite(fit["b"]):
        grid = np.geomspace(doses.min(), doses.max(), 50)
        ax.plot(grid, np.exp(fit["a"] + fit["b"] * np.log(grid)), "-", color="C3",
                label=f"power model b = {fit['b']:.2f} "
                      f"[{fit['ci_low']:.2f}, {fit['ci_high']:.2f}] ({100 * level:g}% CI)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("dose (CAR-T cells/kg)" if dose == "dose" else dose)
    name = _LABELS.get(parameter, parameter)
    ax.set_ylabel(f"{name} ({unit})" if unit else name)
    ax.grid(True, which="major", lw=0.3, alpha=0.5)
    ax.legend(fontsize=7, loc="best")
    return ax


def plot_nca_by_dose(result, *, parameters: Sequence[str] = ("CMAX", "AUCINT_0_28"),
                     endpoints: Sequence[str] | None = None, dose: str = "dose",
                     level: float = 0.90) -> Figure:
    """Exposure by dose level: one row per endpoint, one column per parameter.

    Parameters
    ----------
    result : NCAResult or DataFrame
        :func:`carkinetics.nca.nca` output or its wide table (needs ``dose``).
    parameters : sequence of str, default ("CMAX", "AUCINT_0_28")
        Wide-table columns, one panel each.
    endpoints : sequence of str, optional
        Endpoints to show (default: all in the table).
    dose : str, default "dose"
        Dose column (log axis).
    level : float, default 0.90
        Confidence level of the power-model slope.

    Returns
    -------
    Figure
    """
    from carkinetics.nca.summary import _units

    wide = _wide(result)
    units = _units(result)
    if dose not in wide:
        raise ValueError(f"Invalid dose={dose!r}: the NCA table has no such column.")
    absent = [p for p in parameters if p not in wide]
    if absent:
        raise ValueError(f"Invalid parameters {absent}; not columns of the NCA table.")
    eps = list(endpoints) if endpoints is not None else list(pd.unique(wide["endpoint"]))
    fig = Figure(figsize=(4.2 * len(parameters), 3.4 * max(len(eps), 1)),
                 layout="constrained")
    axes = fig.subplots(max(len(eps), 1), len(parameters), squeeze=False)
    for i, ep in enumerate(eps):
        sub = wide[wide["endpoint"] == ep]
        for j, p in enumerate(parameters):
            plot_exposure_vs_dose(sub, p, ax=axes[i, j], dose=dose, level=level,
                                  unit=units.get((ep, p)))
            axes[i, j].set_title(f"{ep}: {_LABELS.get(p, p)}", fontsize=9)
    fig.suptitle("NCA exposure by dose (log-log; power model with "
                 f"{100 * level:g}% CI of the slope)", fontsize=10)
    return fig
