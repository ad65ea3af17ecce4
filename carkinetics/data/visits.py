"""The protocol visit schedule: nominal visit labels, study days and visit windows.

Study days count from the CAR-T infusion (day 0); the baseline visit is Day -1. A month is
:data:`DAYS_PER_MONTH` = 30.4375 days (365.25 / 12) unless a function is given another
``days_per_month``. Month visits are **not rounded** to whole days: Month 2 is day 60.875,
Month 3 is day 91.3125, Month 6 is day 182.625 and Month 12 is day 365.25.

=========  ===========  ======================  ===================
label      nominal day  default window (days)   note
=========  ===========  ======================  ===================
Day -1     -1           +/- 2                   baseline
Day 1      1            +/- 2                   dense early (optional)
Day 4      4            +/- 2                   dense early (optional)
Day 7      7            +/- 2                   dense early (optional)
Day 10     10           +/- 2                   dense early (optional)
Day 14     14           +/- 2
Day 21     21           +/- 2
Day 28     28           +/- 2
Month 2    60.875       +/- 7
Month 3    91.3125      +/- 7
Month 6    182.625      +/- 14
Month 9    273.9375     +/- 14
Month 12   365.25       +/- 14
Month 18   547.875      +/- 14
Month 24   730.5        +/- 14
=========  ===========  ======================  ===================

:data:`PROTOCOL_VISITS` holds the protocol's labels; :data:`DENSE_VISITS` the optional
dense early days, which :func:`visit_day` and :func:`visit_label` always accept and
:func:`assign_visits` uses when asked (``visits=ALL_VISITS``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = [
    "DAYS_PER_MONTH",
    "PROTOCOL_VISITS",
    "DENSE_VISITS",
    "ALL_VISITS",
    "DAY_WINDOW",
    "EARLY_MONTH_WINDOW",
    "LATE_MONTH_WINDOW",
    "visit_day",
    "visit_label",
    "visit_window",
    "assign_visits",
]

#: Days per month (365.25 / 12).
DAYS_PER_MONTH: float = 30.4375
#: Protocol visits, in time order.
PROTOCOL_VISITS: tuple[str, ...] = (
    "Day -1", "Day 14", "Day 21", "Day 28", "Month 2", "Month 3", "Month 6", "Month 9",
    "Month 12", "Month 18", "Month 24",
)
#: Optional dense early visits.
DENSE_VISITS: tuple[str, ...] = ("Day 1", "Day 4", "Day 7", "Day 10")
#: Protocol and dense visits together, in time order.
ALL_VISITS: tuple[str, ...] = ("Day -1", *DENSE_VISITS, *PROTOCOL_VISITS[1:])
#: Default half-widths (days) of the visit windows.
DAY_WINDOW, EARLY_MONTH_WINDOW, LATE_MONTH_WINDOW = 2.0, 7.0, 14.0

_LABEL = re.compile(r"^\s*(day|d|month|mo|m)\s*([+-]?\d+)\s*$", re.IGNORECASE)
_BASELINE = ("baseline", "screening baseline", "bl")


def _parse(label: object) -> tuple[str, int]:
    """Return ("Day"|"Month", number) for a label, or raise ValueError."""
    if isinstance(label, str):
        if label.strip().lower() in _BASELINE:
            return "Day", -1
        m = _LABEL.match(label)
        if m:
            kind = "Day" if m.group(1).lower() in ("day", "d") else "Month"
            number = int(m.group(2))
            if kind == "Day" or number > 0:
                return kind, number
    raise ValueError(
        f"Invalid visit label={label!r}; expected 'Day N' (also 'DN', 'dayN'), 'Month K' with "
        f"K > 0 (also 'MK') or 'Baseline'; the protocol visits are {list(PROTOCOL_VISITS)}."
    )


def _canonical(label: object) -> str:
    kind, number = _parse(label)
    return f"{kind} {number}"


def visit_day(label: str, days_per_month: float = DAYS_PER_MONTH) -> float:
    """Return the nominal study day of a visit label.

    Parameters
    ----------
    label : str
        ``"Day 14"``, ``"D14"``, ``"day14"``, ``"Month 3"``, ``"M3"``, ``"Baseline"`` or
        ``"Day -1"`` (case and spacing are free). Any whole day and any month > 0 is
        accepted, including the dense early days.
    days_per_month : float, default DAYS_PER_MONTH
        Length of a month (days).

    Returns
    -------
    float
        Study day: ``N`` for Day N, ``K * days_per_month`` (not rounded) for Month K; -1
        for Baseline.

    Raises
    ------
    ValueError
        If the label cannot be read.

    Examples
    --------
    >>> visit_day("M3")
    91.3125
    >>> visit_day("Baseline")
    -1.0
    """
    kind, number = _parse(label)
    return float(number) if kind == "Day" else number * float(days_per_month)


def visit_label(day: ArrayLike, days_per_month: float = DAYS_PER_MONTH, atol: float = 1e-9):
    """Return the visit label of a nominal study day (the inverse of :func:`visit_day`).

    Parameters
    ----------
    day : float or array_like
        Nominal study days of visits in :data:`ALL_VISITS`.
    days_per_month : float, default DAYS_PER_MONTH
        Length of a month (days).
    atol : float, default 1e-9
        Tolerance (days). Month days are not whole: Month 3 is 91.3125. Tables that store
        nominal days rounded to whole days need ``atol=0.5``.

    Returns
    -------
    str or numpy.ndarray of str
        ``"Day 14"``, ``"Month 3"`` ...; an array for array input.

    Raises
    ------
    ValueError
        If a day is not a nominal visit day; :func:`assign_visits` maps actual days.

    Examples
    --------
    >>> visit_label(60.875)
    'Month 2'
    >>> visit_label([-1, 14]).tolist()
    ['Day -1', 'Day 14']
    """
    days = np.asarray(day, dtype="float64")
    labels = np.array(ALL_VISITS, dtype=object)
    nominal = np.array([visit_day(v, days_per_month) for v in ALL_VISITS])
    dist = np.abs(days.reshape(-1, 1) - nominal)
    best = np.argmin(dist, axis=1)
    bad = ~(dist[np.arange(best.size), best] <= atol)
    if bad.any():
        first = days.reshape(-1)[bad][:5].tolist()
        table = dict(zip(ALL_VISITS, nominal.tolist(), strict=True))
        raise ValueError(
            f"Invalid day={first if days.ndim else first[0]!r}: not a nominal visit day within "
            f"atol={atol} (nominal days: {table}); use "
            "assign_visits for actual sampling days, or atol=0.5 for days rounded to whole days."
        )
    out = labels[best]
    return str(out[0]) if days.ndim == 0 else out.reshape(days.shape)


def visit_window(label: str) -> float:
    """Return the default half-width (days) of a visit's window.

    Parameters
    ----------
    label : str
        A visit label (any spelling :func:`visit_day` reads).

    Returns
    -------
    float
        :data:`DAY_WINDOW` (2) for day visits, :data:`EARLY_MONTH_WINDOW` (7) for Months
        1-3, :data:`LATE_MONTH_WINDOW` (14) from Month 4 on.
    """
    kind, number = _parse(label)
    if kind == "Day":
        return DAY_WINDOW
    return EARLY_MONTH_WINDOW if number <= 3 else LATE_MONTH_WINDOW


def assign_visits(
    times: ArrayLike,
    window: float | Mapping[str, float] | None = None,
    *,
    visits: Iterable[str] | None = None,
    days_per_month: float = DAYS_PER_MONTH,
):
    """Map actual study days to the nearest nominal visit whose window contains them.

    Parameters
    ----------
    times : array_like or pandas.Series
        Actual study days (days since infusion).
    window : float or mapping, optional
        Half-width of every window (days), or a mapping label -> half-width for some
        visits (others keep their default). Default: :func:`visit_window` (+/- 2 days for
        day visits, +/- 7 for Months 2-3, +/- 14 later).
    visits : iterable of str, optional
        Visits to assign (default :data:`PROTOCOL_VISITS`; :data:`ALL_VISITS` adds the
        dense early days).
    days_per_month : float, default DAYS_PER_MONTH
        Length of a month (days).

    Returns
    -------
    numpy.ndarray or pandas.Series
        Labels (``"Day 14"``, ``"Month 3"`` ...), NaN where a time lies outside every window
        or is NaN; a Series with the input's index for Series input. A time equally close to
        two visits gets the earlier one.

    Examples
    --------
    >>> assign_visits([13.0, 95.0, 45.0]).tolist()
    ['Day 14', 'Month 3', nan]
    """
    labels = [_canonical(v) for v in (PROTOCOL_VISITS if visits is None else visits)]
    nominal = np.array([visit_day(v, days_per_month) for v in labels], dtype="float64")
    order = np.argsort(nominal, kind="stable")
    labels = [labels[i] for i in order]
    nominal = nominal[order]
    half = np.array([visit_window(v) for v in labels], dtype="float64")
    if isinstance(window, Mapping):
        given = {_canonical(k): float(w) for k, w in window.items()}
        half = np.array([given.get(v, h) for v, h in zip(labels, half, strict=True)],
                        dtype="float64")
    elif window is not None:
        half = np.full(len(labels), float(window))
    if np.any(~(half >= 0)):
        raise ValueError(f"Invalid window={window!r}; half-widths must be >= 0 days.")
    t = np.asarray(times, dtype="float64")
    flat = t.reshape(-1, 1)
    dist = np.abs(flat - nominal)
    dist[dist > half] = np.inf
    dist[np.isnan(dist)] = np.inf
    best = np.argmin(dist, axis=1) if labels else np.zeros(flat.shape[0], dtype=int)
    inside = np.isfinite(dist[np.arange(best.size), best]) if labels else best.astype(bool)
    out = np.full(best.size, np.nan, dtype=object)
    out[inside] = np.array(labels, dtype=object)[best[inside]]
    if isinstance(times, pd.Series):
        return pd.Series(out, index=times.index, name="visit")
    return out.reshape(t.shape)
