"""Adverse-event tables by dose level: incidence with exact CIs, terms, grades, CRS/ICANS timing.

Conventions:

* the denominator of every incidence is the number of participants of the dose level in
  the participants table (all infused participants, with or without AEs); ``"All"`` pools
  the levels;
* a participant counts once per row (the worst event), events count every record;
* confidence intervals are exact Clopper-Pearson intervals from the beta distribution
  (:func:`clopper_pearson`);
* a grade is carried as recorded (ASTCT 2019 for CRS/ICANS, CTCAE v5.0 otherwise);
* an event lasts from ``onset_day`` to ``resolution_day`` inclusive, so its duration is
  ``resolution_day - onset_day + 1`` days (the CDISC AESTDY/AEENDY convention); records of
  one syndrome that overlap or touch (next onset <= previous end + 1) merge into one
  episode.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from carkinetics.endpoints._checks import EndpointError, number, option

__all__ = [
    "clopper_pearson",
    "incidence",
    "ae_summary",
    "ae_by_term",
    "max_grade",
    "max_grade_table",
    "syndrome_episodes",
    "episodes_from_daily",
    "syndrome_summary",
]

ALL = "All"


def clopper_pearson(k: ArrayLike, n: ArrayLike, conf: float = 0.95):
    """Return the exact (Clopper-Pearson) confidence interval of a binomial proportion.

    Parameters
    ----------
    k : int or array_like
        Number of participants with the event.
    n : int or array_like
        Number of participants (k <= n).
    conf : float, default 0.95
        Confidence level.

    Returns
    -------
    (lower, upper) : tuple of float or of numpy.ndarray
        ``lower = Beta(alpha/2; k, n - k + 1)`` quantile (0 when k = 0) and
        ``upper = Beta(1 - alpha/2; k + 1, n - k)`` quantile (1 when k = n); NaN when n = 0.

    Examples
    --------
    >>> lo, hi = clopper_pearson(0, 3)
    >>> float(lo), round(float(hi), 4)
    (0.0, 0.7076)
    """
    from scipy import stats  # imported here to keep the command line quick to start

    conf = number("conf", conf, lo=0, hi=1, lo_open=True)
    k_arr = np.asarray(k, dtype="float64")
    n_arr = np.asarray(n, dtype="float64")
    if np.any((k_arr < 0) | (k_arr > n_arr)):
        raise EndpointError(f"Invalid k={k!r} for n={n!r}; expected 0 <= k <= n.")
    alpha = 1.0 - conf
    with np.errstate(invalid="ignore", divide="ignore"):
        lo = np.where(k_arr == 0, 0.0, stats.beta.ppf(alpha / 2, k_arr, n_arr - k_arr + 1))
        hi = np.where(k_arr == n_arr, 1.0, stats.beta.ppf(1 - alpha / 2, k_arr + 1,
                                                          n_arr - k_arr))
    lo = np.where(n_arr == 0, np.nan, lo)
    hi = np.where(n_arr == 0, np.nan, hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


def incidence(n_with: ArrayLike, n_total: ArrayLike, conf: float = 0.95) -> pd.DataFrame:
    """Return ``n``, ``N``, ``pct``, ``ci_low``, ``ci_high`` (percent) as a table."""
    n_with = np.asarray(n_with, dtype="int64")
    n_total = np.asarray(n_total, dtype="int64")
    lo, hi = clopper_pearson(n_with, n_total, conf)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.where(n_total > 0, 100.0 * n_with / np.maximum(n_total, 1), np.nan)
    return pd.DataFrame({"n": n_with, "N": n_total, "pct": pct,
                         "ci_low": 100.0 * np.asarray(lo), "ci_high": 100.0 * np.asarray(hi)})


def _groups(participants: pd.DataFrame) -> list[tuple[object, set[str], float]]:
    """(dose level, ids, dose) per level, then ("All", every id, NaN)."""
    p = participants.assign(id=participants["id"].astype(str))
    out = []
    for level, g in p.groupby("dose_level", sort=True):
        dose = float(g["dose"].iloc[0]) if "dose" in g and g["dose"].notna().any() else np.nan
        out.append((level, set(g["id"]), dose))
    out.append((ALL, set(p["id"]), np.nan))
    return out


def _select(ae: pd.DataFrame, category: str | None) -> pd.DataFrame:
    if category is not None:
        from carkinetics.endpoints.inputs import AE_CATEGORIES

        option("category", category, AE_CATEGORIES)
    ae = ae.assign(id=ae["id"].astype(str))
    return ae if category is None else ae[ae["category"] == category]


_MEASURES = {
    "any": lambda e: e,
    "grade>=3": lambda e: e[e["grade"] >= 3],
    "serious": lambda e: e[e["serious"]],
    "grade 5": lambda e: e[e["grade"] == 5],
}


def ae_summary(ae: pd.DataFrame, participants: pd.DataFrame, *, category: str | None = None,
               conf: float = 0.95) -> pd.DataFrame:
    """Participants with any AE, grade >= 3, serious and fatal AEs, by dose level.

    Parameters
    ----------
    ae : pandas.DataFrame
        Validated AE table (:func:`carkinetics.endpoints.validate_ae`).
    participants : pandas.DataFrame
        ``id``, ``dose_level`` and optionally ``dose`` (the denominators).
    category : str, optional
        Restrict to one AE category (e.g. ``"cytopenia"``, ``"infection"``).
    conf : float, default 0.95
        Confidence level of the Clopper-Pearson intervals.

    Returns
    -------
    pandas.DataFrame
        One row per dose level (then ``"All"``) and measure (``any``, ``grade>=3``,
        ``serious``, ``grade 5``): ``category``, ``dose_level``, ``dose``, ``measure``,
        ``n`` (participants), ``N``, ``pct``, ``ci_low``, ``ci_high`` (percent) and
        ``events`` (records).
    """
    ev = _select(ae, category)
    rows = []
    for level, ids, dose in _groups(participants):
        e = ev[ev["id"].isin(ids)]
        for measure, pick in _MEASURES.items():
            sel = pick(e)
            rows.append({"category": category or "all", "dose_level": level, "dose": dose,
                         "measure": measure, "n_with": sel["id"].nunique(), "N": len(ids),
                         "events": len(sel)})
    return _finish(pd.DataFrame(rows), conf)


def _finish(df: pd.DataFrame, conf: float) -> pd.DataFrame:
    inc = incidence(df.pop("n_with"), df["N"], conf)
    events = df.pop("events")
    df = df.drop(columns="N")
    return pd.concat([df.reset_index(drop=True), inc, events.reset_index(drop=True)], axis=1)


def ae_by_term(ae: pd.DataFrame, participants: pd.DataFrame, *, category: str | None = None,
               conf: float = 0.95) -> pd.DataFrame:
    """Participants with each AE term (any grade and grade >= 3) by dose level.

    Parameters
    ----------
    ae, participants, category, conf
        As in :func:`ae_summary`.

    Returns
    -------
    pandas.DataFrame
        One row per (category, term, dose level incl. ``"All"``, grade band ``"any"`` /
        ``"grade>=3"``): ``n``, ``N``, ``pct``, ``ci_low``, ``ci_high``, ``events``;
        terms sorted by category, then by decreasing overall frequency.
    """
    ev = _select(ae, category)
    order = (ev.groupby(["category", "term"])["id"].nunique().rename("k").reset_index()
             .sort_values(["category", "k", "term"], ascending=[True, False, True]))
    rows = []
    for cat, term in zip(order["category"], order["term"], strict=True):
        t = ev[(ev["category"] == cat) & (ev["term"] == term)]
        for level, ids, dose in _groups(participants):
            e = t[t["id"].isin(ids)]
            for band, sel in (("any", e), ("grade>=3", e[e["grade"] >= 3])):
                rows.append({"category": cat, "term": term, "dose_level": level, "dose": dose,
                             "grade": band, "n_with": sel["id"].nunique(), "N": len(ids),
                             "events": len(sel)})
    cols = ["category", "term", "dose_level", "dose", "grade", "n_with", "N", "events"]
    return _finish(pd.DataFrame(rows, columns=cols), conf)


def max_grade(ae: pd.DataFrame, participants: pd.DataFrame, *,
              category: str | None = None) -> pd.DataFrame:
    """Return each participant's maximum grade (0 = no event).

    Returns
    -------
    pandas.DataFrame
        ``id``, ``dose_level``, ``max_grade`` (int), one row per participant.
    """
    ev = _select(ae, category)
    worst = ev.groupby("id")["grade"].max()
    out = participants[["id", "dose_level"]].assign(id=participants["id"].astype(str))
    out["max_grade"] = out["id"].map(worst).fillna(0).astype("int64")
    return out.reset_index(drop=True)


def max_grade_table(ae: pd.DataFrame, participants: pd.DataFrame, *,
                    category: str | None = None, conf: float = 0.95) -> pd.DataFrame:
    """Participants by maximum grade (0-5) and dose level (incl. ``"All"``).

    Returns
    -------
    pandas.DataFrame
        ``category``, ``dose_level``, ``dose``, ``max_grade``, ``n``, ``N``, ``pct``,
        ``ci_low``, ``ci_high``.
    """
    mg = max_grade(ae, participants, category=category)
    rows = []
    for level, ids, dose in _groups(participants):
        g = mg[mg["id"].isin(ids)]
        for grade in range(6):
            rows.append({"category": category or "all", "dose_level": level, "dose": dose,
                         "max_grade": grade, "n_with": int((g["max_grade"] == grade).sum()),
                         "N": len(ids), "events": 0})
    return _finish(pd.DataFrame(rows), conf).drop(columns="events")


def _merge(intervals: list[tuple[float, float, int]]):
    """Merge (onset, end, grade) intervals that overlap or touch; end NaN = ongoing."""
    merged: list[list[float]] = []
    for onset, end, grade in sorted(intervals, key=lambda x: x[0]):
        stop = np.inf if np.isnan(end) else end
        if merged and onset <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], stop)
            merged[-1][2] = max(merged[-1][2], grade)
        else:
            merged.append([onset, stop, grade])
    return merged


def syndrome_episodes(ae: pd.DataFrame, categories: tuple[str, ...] = ("crs", "icans"),
                      ) -> pd.DataFrame:
    """Return CRS and ICANS episodes: onset, end, duration and worst grade.

    Parameters
    ----------
    ae : pandas.DataFrame
        Validated AE table.
    categories : tuple of str, default ("crs", "icans")
        Categories to report.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``category``, ``episode`` (1, 2, ...), ``onset_day``, ``end_day`` (NaN =
        ongoing), ``duration_days`` (end - onset + 1; NaN if ongoing), ``max_grade``.
    """
    ev = _select(ae, None)
    rows = []
    for (pid, cat), g in ev[ev["category"].isin(categories)].groupby(["id", "category"]):
        merged = _merge(list(zip(g["onset_day"], g["resolution_day"], g["grade"],
                                 strict=True)))
        for k, (onset, end, grade) in enumerate(merged, start=1):
            end = np.nan if np.isinf(end) else end
            rows.append({"id": pid, "category": cat, "episode": k, "onset_day": onset,
                         "end_day": end, "duration_days": end - onset + 1,
                         "max_grade": int(grade)})
    cols = ["id", "category", "episode", "onset_day", "end_day", "duration_days", "max_grade"]
    return pd.DataFrame(rows, columns=cols)


def episodes_from_daily(graded: pd.DataFrame, category: str) -> pd.DataFrame:
    """Return episodes from graded daily observations (runs of observed days with grade >= 1).

    An episode starts on an observed day with grade >= 1 and ends on the last such day
    before an observed day with grade 0; if the observations stop while the grade is
    still >= 1, the end is unknown (NaN, ongoing).

    Parameters
    ----------
    graded : pandas.DataFrame
        Output of :func:`~carkinetics.endpoints.grade_crs_days` or
        :func:`~carkinetics.endpoints.grade_icans_days`.
    category : str
        Label for the ``category`` column (``"crs"`` or ``"icans"``).

    Returns
    -------
    pandas.DataFrame
        Same columns as :func:`syndrome_episodes`.
    """
    rows = []
    for pid, g in graded.sort_values(["id", "day"]).groupby("id", sort=True):
        day, grade = g["day"].to_numpy(), g["grade"].to_numpy()
        k, start = 0, None
        for i in range(len(g) + 1):
            on = i < len(g) and grade[i] >= 1
            if on and start is None:
                start = i
            elif not on and start is not None:
                k += 1
                end = day[i - 1] if i < len(g) else np.nan
                rows.append({"id": str(pid), "category": category, "episode": k,
                             "onset_day": day[start], "end_day": end,
                             "duration_days": end - day[start] + 1,
                             "max_grade": int(grade[start:i].max())})
                start = None
    cols = ["id", "category", "episode", "onset_day", "end_day", "duration_days", "max_grade"]
    return pd.DataFrame(rows, columns=cols)


def syndrome_summary(episodes: pd.DataFrame, participants: pd.DataFrame, *,
                     conf: float = 0.95) -> pd.DataFrame:
    """Incidence, onset day and duration of CRS and ICANS by dose level.

    Parameters
    ----------
    episodes : pandas.DataFrame
        Output of :func:`syndrome_episodes` or :func:`episodes_from_daily`.
    participants : pandas.DataFrame
        Denominators (``id``, ``dose_level``, optional ``dose``).
    conf : float, default 0.95
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        Per category and dose level (incl. ``"All"``): ``n``, ``N``, ``pct``, ``ci_low``,
        ``ci_high``; the first onset day per participant (``onset_median``, ``onset_min``,
        ``onset_max``) and the total duration per participant, summed over episodes
        (``duration_median``, ``duration_min``, ``duration_max``; participants with an
        ongoing episode are left out of the duration and counted in ``n_ongoing``).
    """
    ep = episodes.assign(id=episodes["id"].astype(str))
    rows = []
    for cat in sorted(ep["category"].unique()):
        e = ep[ep["category"] == cat]
        per = e.groupby("id").agg(onset=("onset_day", "min"),
                                  duration=("duration_days", lambda d: d.sum(min_count=len(d))))
        for level, ids, dose in _groups(participants):
            g = per[per.index.isin(ids)]
            done = g["duration"].dropna()
            rows.append({
                "category": cat, "dose_level": level, "dose": dose, "n_with": len(g),
                "N": len(ids), "events": len(e[e["id"].isin(ids)]),
                "onset_median": g["onset"].median(), "onset_min": g["onset"].min(),
                "onset_max": g["onset"].max(), "duration_median": done.median(),
                "duration_min": done.min(), "duration_max": done.max(),
                "n_ongoing": int(g["duration"].isna().sum())})
    cols = ["category", "dose_level", "dose", "n_with", "N", "events", "onset_median",
            "onset_min", "onset_max", "duration_median", "duration_min", "duration_max",
            "n_ongoing"]
    df = pd.DataFrame(rows, columns=cols)
    timing = df[cols[6:]].reset_index(drop=True)
    head = _finish(df[cols[:6]], conf)
    return pd.concat([head, timing], axis=1)
