"""Observed exposure per participant and its summary by dose level.

These are the raw observed peak and persistence numbers a committee sees first (before
NCA or a model): the highest quantified level and its time, the last quantified time and
the share of samples below LLOQ. BLQ rows never count as a peak.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["observed_exposure", "summarize_by_dose", "geometric_summary"]


def observed_exposure(data: pd.DataFrame) -> pd.DataFrame:
    """Observed Cmax, Tmax, Tlast and BLQ counts per participant and endpoint.

    Parameters
    ----------
    data : DataFrame
        Validated long-format table (``id, time, dv, cens``; ``endpoint``, ``dose``,
        ``dose_level`` used when present). Pre-infusion rows (time < 0) are ignored for
        the peak.

    Returns
    -------
    DataFrame
        One row per (id, endpoint): ``cmax_obs, tmax_obs, tlast_obs, n_samples, n_blq``
        plus ``dose``/``dose_level`` when present. ``cmax_obs`` is NaN (and ``tmax_obs``,
        ``tlast_obs`` too) when no post-infusion sample is quantified.
    """
    df = data.copy()
    if "endpoint" not in df:
        df["endpoint"] = "dv"
    if "cens" not in df:
        df["cens"] = 0
    keys = ["id", "endpoint"]
    post = df[df["time"] >= 0]
    quant = post[post["cens"] == 0]
    idx = quant.groupby(keys, sort=True)["dv"].idxmax()
    peak = quant.loc[idx, keys + ["dv", "time"]].rename(
        columns={"dv": "cmax_obs", "time": "tmax_obs"})
    tlast = quant.groupby(keys)["time"].max().rename("tlast_obs").reset_index()
    counts = df.groupby(keys, sort=True).agg(
        n_samples=("dv", "size"), n_blq=("cens", lambda c: int((c == 1).sum()))).reset_index()
    out = counts.merge(peak, on=keys, how="left").merge(tlast, on=keys, how="left")
    extra = [c for c in ("dose", "dose_level", "disease") if c in df]
    if extra:
        out = out.merge(df.groupby("id")[extra].first().reset_index(), on="id", how="left")
    return out


def geometric_summary(values: pd.Series) -> dict[str, float]:
    """n, geometric mean and geometric CV% (sqrt(exp(s^2) - 1) x 100) of positive values."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        return {"n": 0, "geomean": np.nan, "geocv_pct": np.nan}
    lv = np.log(v)
    s = float(np.std(lv, ddof=1)) if v.size > 1 else np.nan
    return {"n": int(v.size), "geomean": float(np.exp(lv.mean())),
            "geocv_pct": float(np.sqrt(np.expm1(s * s)) * 100) if v.size > 1 else np.nan}


def summarize_by_dose(exposure: pd.DataFrame) -> pd.DataFrame:
    """Summarise :func:`observed_exposure` by dose and endpoint.

    Returns
    -------
    DataFrame
        One row per (dose, endpoint): participants, samples, % BLQ, geometric mean and
        geometric CV% of the observed Cmax, median (min-max) observed Tmax and median
        last quantified time.
    """
    rows = []
    for (dose, ep), g in exposure.groupby(["dose", "endpoint"], sort=True):
        gs = geometric_summary(g["cmax_obs"])
        rows.append({
            "dose": dose,
            "dose_level": g["dose_level"].iloc[0] if "dose_level" in g else np.nan,
            "endpoint": ep,
            "n_participants": int(g["id"].nunique()),
            "n_samples": int(g["n_samples"].sum()),
            "pct_blq": 100.0 * g["n_blq"].sum() / g["n_samples"].sum(),
            "n_with_peak": gs["n"],
            "cmax_geomean": gs["geomean"],
            "cmax_geocv_pct": gs["geocv_pct"],
            "tmax_median": float(g["tmax_obs"].median()),
            "tmax_min": float(g["tmax_obs"].min()),
            "tmax_max": float(g["tmax_obs"].max()),
            "tlast_median": float(g["tlast_obs"].median()),
        })
    return pd.DataFrame(rows)
