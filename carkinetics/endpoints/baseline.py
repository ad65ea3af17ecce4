"""Baseline, visit windows, change and percent change from baseline.

Visit rule (applied to every endpoint alike; a ``visit`` column in the data is not used):

* **baseline** is the last non-missing value on or before ``baseline_max_day`` (default
  day 0: a day-0 assessment is taken before the infusion), whatever its distance from Day
  -1; it is labelled ``"Day -1"`` with its actual day kept;
* each later observation is mapped by :func:`carkinetics.data.assign_visits` to the nearest
  protocol visit (Day 14, 21, 28, Month 2, 3, 6, 9, 12, 18, 24) whose window contains it
  (default half-widths: +/- 2 days for day visits, +/- 7 for Months 2-3, +/- 14 later;
  Month K is day K * 30.4375); an observation outside every window is unscheduled and
  left out of the per-visit tables;
* if several observations of one participant and endpoint fall in one visit window, the
  one closest to the nominal day is kept (the earlier on a tie);
* change = value - baseline; percent change = 100 * (value - baseline) / baseline (NaN when
  the baseline is 0);
* values are converted to each endpoint's canonical unit first
  (:func:`carkinetics.data.to_canonical`); censored rows (``cens``) keep their limit in
  ``value`` and carry ``cens`` so that tables can flag them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from carkinetics.data.units import to_canonical
from carkinetics.data.visits import DAYS_PER_MONTH, PROTOCOL_VISITS, assign_visits, visit_day

__all__ = ["BASELINE_VISIT", "change_from_baseline", "change_summary"]

BASELINE_VISIT = "Day -1"
_PARTICIPANT = ("dose_level", "dose", "disease")


def change_from_baseline(data: pd.DataFrame, *, endpoints: Iterable[str] | None = None,
                         window: float | Mapping[str, float] | None = None,
                         baseline_max_day: float = 0.0,
                         visits: Iterable[str] | None = None) -> pd.DataFrame:
    """Assign visits and compute change and percent change from baseline.

    Parameters
    ----------
    data : pandas.DataFrame
        Validated long table (``id``, ``time``, ``endpoint``, ``dv``; optional ``unit``,
        ``cens``, ``mdv``, ``dose_level``, ``dose``, ``disease``).
    endpoints : iterable of str, optional
        Endpoints to keep (default: all).
    window : float or mapping, optional
        Visit-window half-widths (days), as in :func:`carkinetics.data.assign_visits`.
    baseline_max_day : float, default 0.0
        Latest study day that counts as baseline.
    visits : iterable of str, optional
        Post-baseline visits (default: the protocol visits after Day -1).

    Returns
    -------
    pandas.DataFrame
        One row per participant, endpoint and visit (baseline included): ``id``,
        ``dose_level``, ``dose``, ``disease`` (when present), ``endpoint``, ``visit``,
        ``nominal_day``, ``actual_day``, ``day_deviation`` (actual - nominal), ``value``,
        ``cens``, ``baseline``, ``baseline_day``, ``change``, ``pct_change``; sorted by
        endpoint, id and nominal day. Participants without a baseline value for an
        endpoint have NaN baseline and changes.
    """
    df = to_canonical(data)
    if "mdv" in df:
        df = df[df["mdv"] != 1]
    if "endpoint" not in df:
        df = df.assign(endpoint="dv")
    if endpoints is not None:
        df = df[df["endpoint"].isin(list(endpoints))]
    df = df[df["dv"].notna()].assign(id=lambda d: d["id"].astype(str))
    if "cens" not in df:
        df = df.assign(cens=0)
    post_visits = list(PROTOCOL_VISITS[1:] if visits is None else visits)
    pre = df[df["time"] <= baseline_max_day].sort_values("time", kind="stable")
    base = pre.groupby(["id", "endpoint"], sort=False).tail(1).assign(
        visit=BASELINE_VISIT, nominal_day=visit_day(BASELINE_VISIT))
    post = df[df["time"] > baseline_max_day].copy()
    post["visit"] = np.asarray(assign_visits(post["time"].to_numpy(), window,
                                             visits=post_visits), dtype=object)
    post = post[post["visit"].notna()]
    post["nominal_day"] = post["visit"].map(
        {v: visit_day(v, DAYS_PER_MONTH) for v in post["visit"].unique()}).astype("float64")
    post["_dist"] = (post["time"] - post["nominal_day"]).abs()
    post = (post.sort_values(["_dist", "time"], kind="stable")
            .groupby(["id", "endpoint", "visit"], sort=False).head(1).drop(columns="_dist"))
    rows = pd.concat([base, post], ignore_index=True)
    keys = base.set_index(["id", "endpoint"])
    idx = pd.MultiIndex.from_frame(rows[["id", "endpoint"]])
    rows["baseline"] = keys["dv"].reindex(idx).to_numpy()
    rows["baseline_day"] = keys["time"].reindex(idx).to_numpy()
    rows = rows.rename(columns={"time": "actual_day", "dv": "value"})
    rows["day_deviation"] = rows["actual_day"] - rows["nominal_day"]
    rows["change"] = rows["value"] - rows["baseline"]
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = 100.0 * rows["change"].to_numpy() / rows["baseline"].to_numpy()
    rows["pct_change"] = np.where(rows["baseline"].to_numpy() == 0, np.nan, pct)
    cols = ["id", *[c for c in _PARTICIPANT if c in rows], "endpoint", "visit", "nominal_day",
            "actual_day", "day_deviation", "value", "cens", "baseline", "baseline_day",
            "change", "pct_change"]
    return (rows[cols].sort_values(["endpoint", "id", "nominal_day"], kind="stable")
            .reset_index(drop=True))


def change_summary(cfb: pd.DataFrame) -> pd.DataFrame:
    """Summarise values and changes by endpoint, dose level and visit.

    Parameters
    ----------
    cfb : pandas.DataFrame
        Output of :func:`change_from_baseline`.

    Returns
    -------
    pandas.DataFrame
        ``endpoint``, ``dose_level``, ``visit``, ``nominal_day``, ``n``, ``value_mean``,
        ``value_median``, ``change_mean``, ``change_median``, ``change_sd``,
        ``pct_change_median``, ``n_censored`` (rows whose value is a censoring limit).
    """
    g = cfb.groupby(["endpoint", "dose_level", "visit"], sort=False)
    out = g.agg(nominal_day=("nominal_day", "first"), n=("value", "size"),
                value_mean=("value", "mean"), value_median=("value", "median"),
                change_mean=("change", "mean"), change_median=("change", "median"),
                change_sd=("change", "std"), pct_change_median=("pct_change", "median"),
                n_censored=("cens", lambda c: int((c != 0).sum()))).reset_index()
    return out.sort_values(["endpoint", "dose_level", "nominal_day"], kind="stable",
                           ignore_index=True)
