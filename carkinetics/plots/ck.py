"""CAR-T kinetic profiles: spaghetti plots with below-LLOQ samples as open markers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from carkinetics.data.schema import ENDPOINTS

__all__ = ["plot_ck_profiles", "plot_ck_by_dose", "set_time_axis"]

_SHIFT = 2.0
_TICKS = (0, 4, 7, 14, 28, 91, 183, 365, 730)


def set_time_axis(ax: Axes, t_end: float = 730.0) -> Axes:
    """Put days since infusion on a shifted log axis, ``log10(t + 2)``, with protocol ticks."""
    ax.set_xscale("function", functions=(lambda t: np.log10(np.maximum(t + _SHIFT, 1e-3)),
                                         lambda u: 10.0**u - _SHIFT))
    ticks = [t for t in _TICKS if t <= max(t_end, 28.0) * 1.05]
    ax.set_xticks(ticks)
    ax.set_xticklabels([str(t) for t in ticks], fontsize=8)
    ax.set_xlim(-1.5, max(t_end, 28.0) * 1.08)
    ax.minorticks_off()
    return ax


def plot_ck_profiles(data: pd.DataFrame, *, ax: Axes, endpoint: str | None = None,
                     color: str | None = None, time_scale: str = "log-shifted") -> Axes:
    """Draw one line per participant on ``ax``; BLQ samples as open markers at the LLOQ.

    Parameters
    ----------
    data : DataFrame
        Long-format table (``id, time, dv, cens``; ``endpoint`` if ``endpoint`` is given).
    ax : Axes
        Where to draw.
    endpoint : str, optional
        Keep only rows of this endpoint.
    color : str, optional
        One colour for every participant (default: matplotlib's cycle).
    time_scale : {"log-shifted", "linear"}, default "log-shifted"
        x-axis scale; ``log10(t + 2)`` shows the baseline, the expansion and two years of
        persistence together.

    Returns
    -------
    Axes
    """
    df = data if endpoint is None else data[data["endpoint"] == endpoint]
    cens = df["cens"] if "cens" in df else pd.Series(0, index=df.index)
    for _pid, g in df.groupby("id", sort=True):
        g = g.sort_values("time")
        c = cens.loc[g.index].to_numpy()
        line = ax.plot(g["time"], g["dv"], "-", lw=0.8, alpha=0.6, color=color)[0]
        col = line.get_color()
        q = c == 0
        ax.plot(g["time"][q], g["dv"][q], "o", ms=3.5, color=col, label=None)
        if np.any(~q):
            ax.plot(g["time"][~q], g["dv"][~q], "o", ms=4.5, mfc="none", mec=col, mew=0.9)
    ax.set_yscale("log")
    if time_scale == "log-shifted":
        set_time_axis(ax, float(df["time"].max()) if len(df) else 730.0)
    ax.set_xlabel("days since infusion")
    if endpoint:
        info = ENDPOINTS.get(endpoint)
        ax.set_ylabel(f"{endpoint} ({info.unit})" if info else endpoint)
    ax.grid(True, which="major", lw=0.3, alpha=0.5)
    return ax


def plot_ck_by_dose(data: pd.DataFrame, *,
                    endpoints: Sequence[str] = ("car_qpcr", "car_flow")) -> Figure:
    """A grid of CAR-T profiles: one row per endpoint, one column per dose level.

    Below-LLOQ samples are drawn as open markers at their LLOQ; the y-axis is
    logarithmic and shared within each row.

    Parameters
    ----------
    data : DataFrame
        Long-format table with ``id, time, dv, cens, endpoint, dose``.
    endpoints : sequence of str
        Endpoints to show (rows without data are skipped).

    Returns
    -------
    Figure
    """
    endpoints = [e for e in endpoints if (data["endpoint"] == e).any()]
    doses = sorted(data["dose"].dropna().unique())
    fig = Figure(figsize=(3.2 * max(len(doses), 1), 2.8 * max(len(endpoints), 1)),
                 layout="constrained")
    axes = fig.subplots(len(endpoints), len(doses), squeeze=False, sharey="row", sharex=True)
    for i, ep in enumerate(endpoints):
        for j, dose in enumerate(doses):
            ax = axes[i, j]
            sub = data[(data["endpoint"] == ep) & (data["dose"] == dose)]
            plot_ck_profiles(sub, ax=ax, endpoint=ep)
            n = sub["id"].nunique()
            blq = float((sub["cens"] == 1).mean()) if len(sub) else 0.0
            ax.set_title(f"{dose / 1e6:g}e6 cells/kg (n={n}, {100 * blq:.0f}% BLQ)", fontsize=9)
            if j:
                ax.set_ylabel("")
    set_time_axis(axes[0, 0], float(data["time"].max()))  # shared by every panel
    fig.suptitle("CAR-T kinetics by dose level (open markers: below LLOQ, drawn at the LLOQ)",
                 fontsize=10)
    return fig
