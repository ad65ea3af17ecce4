"""Dose-limiting toxicity (DLT) flags per participant, for the escalation designs.

No verbatim CAR-T DLT definition was available (CLINICAL.md 5.2, I): autoimmune CAR-T
trials state only the window (28 days; once 29). The definition is therefore a parameter.
The default, :data:`DEFAULT_DLT`, is **grade >= 3 CRS or grade >= 3 ICANS with onset within
28 days of the infusion** (the issue's example). :data:`TYPICAL_DLT` adds the other typical
components of CLINICAL.md 5.2 (I): any grade 4 CRS, grade 3 CRS lasting 3 days or more (a
proxy for "not improving to <= grade 2 within 72 h"), grade 4 neutropenia or
thrombocytopenia persisting beyond day 28 and grade >= 3 infection.

Status of each participant (one row each), as of the data cut-off:

* ``"dlt"``: a qualifying event with onset in ``[window_start, window_days]``;
* ``"no_dlt"``: followed through the whole window (``follow_up_days >= window_days``)
  without a DLT and with no undecided event;
* ``"not_evaluable"``: left the study (``discontinued``) without a DLT before the end of
  the window, or before an ongoing event could be decided;
* ``"pending"``: still inside the window without a DLT yet, or with an ongoing event whose
  duration or persistence will decide.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from carkinetics.endpoints._checks import EndpointError, count, number, option
from carkinetics.endpoints.inputs import AE_CATEGORIES

__all__ = ["DLTCriterion", "DLTDefinition", "DEFAULT_DLT", "TYPICAL_DLT", "dlt_flags",
           "DLT_STATUS"]

DLT_STATUS: tuple[str, ...] = ("dlt", "no_dlt", "pending", "not_evaluable")


@dataclass(frozen=True)
class DLTCriterion:
    """One kind of event that is dose-limiting.

    Attributes
    ----------
    category : str or None
        AE category (:data:`carkinetics.endpoints.AE_CATEGORIES`); None = any.
    min_grade : int
        Lowest qualifying grade (1-5).
    terms : tuple of str
        Restrict to these AE terms (exact, as recorded); empty = any term.
    max_grade : int
        Highest qualifying grade (default 5), e.g. 3 for "grade 3 lasting ...".
    min_duration_days : float or None
        The event qualifies only if it lasts at least this many days (inclusive count,
        ``end - onset + 1``). An ongoing event qualifies once the follow-up covers it.
    persists_beyond_day : float or None
        The event qualifies only if it is still present after this study day (e.g. 28 for
        "cytopenia not recovered by day 28").
    label : str
        Text for the ``dlt_reason`` column (default: built from the fields).
    """

    category: str | None = None
    min_grade: int = 3
    terms: tuple[str, ...] = ()
    max_grade: int = 5
    min_duration_days: float | None = None
    persists_beyond_day: float | None = None
    label: str = ""

    def __post_init__(self) -> None:
        if self.category is not None:
            option("category", self.category, AE_CATEGORIES)
        count("min_grade", self.min_grade, lo=1, hi=5)
        count("max_grade", self.max_grade, lo=self.min_grade, hi=5)
        if self.min_duration_days is not None:
            number("min_duration_days", self.min_duration_days, lo=1, unit="days")
        if self.persists_beyond_day is not None:
            number("persists_beyond_day", self.persists_beyond_day, unit="days")
        if isinstance(self.terms, str):
            raise EndpointError(f"Invalid terms={self.terms!r}; expected a tuple of terms.")

    def describe(self) -> str:
        """Return a short text of the criterion."""
        if self.label:
            return self.label
        what = self.category or "any AE"
        if self.terms:
            what += f" ({', '.join(self.terms)})"
        grade = (f"grade >= {self.min_grade}" if self.max_grade == 5 else
                 f"grade {self.min_grade}" if self.min_grade == self.max_grade else
                 f"grade {self.min_grade}-{self.max_grade}")
        text = f"{grade} {what}"
        if self.min_duration_days is not None:
            text += f" lasting >= {self.min_duration_days:g} d"
        if self.persists_beyond_day is not None:
            text += f" persisting beyond day {self.persists_beyond_day:g}"
        return text


@dataclass(frozen=True)
class DLTDefinition:
    """A DLT definition: qualifying events and the observation window.

    Attributes
    ----------
    criteria : tuple of DLTCriterion
        An event meeting any criterion, with onset in the window, is a DLT.
    window_days : float
        Last study day of the DLT window (inclusive; default 28).
    window_start : float
        First study day of the window (inclusive; default 0, the infusion day).
    """

    criteria: tuple[DLTCriterion, ...] = field(default_factory=lambda: (
        DLTCriterion("crs", 3), DLTCriterion("icans", 3)))
    window_days: float = 28.0
    window_start: float = 0.0

    def __post_init__(self) -> None:
        number("window_days", self.window_days, lo=0, lo_open=True, unit="days")
        number("window_start", self.window_start, hi=self.window_days, unit="days")
        if not self.criteria or not all(isinstance(c, DLTCriterion) for c in self.criteria):
            raise EndpointError(f"Invalid criteria={self.criteria!r}; expected a non-empty "
                                "tuple of DLTCriterion.")


#: Grade >= 3 CRS or ICANS with onset within 28 days (the issue's example definition).
DEFAULT_DLT = DLTDefinition()
#: The typical components of CLINICAL.md 5.2 (I: check against the protocol).
TYPICAL_DLT = DLTDefinition(criteria=(
    DLTCriterion("crs", 4),
    DLTCriterion("crs", 3, max_grade=3, min_duration_days=3),
    DLTCriterion("icans", 3),
    DLTCriterion("cytopenia", 4, terms=("Neutrophil count decreased",
                                        "Platelet count decreased"), persists_beyond_day=28),
    DLTCriterion("infection", 3),
))


def _decide(c: DLTCriterion, onset: float, end: float, follow: float):
    """Return (qualifies, undecided, decision day) for one event and criterion."""
    ongoing = np.isnan(end)
    last_seen = follow if ongoing else end
    day = onset
    if c.min_duration_days is not None:
        if last_seen - onset + 1 < c.min_duration_days:
            return False, ongoing, np.nan
        day = max(day, onset + c.min_duration_days - 1)
    if c.persists_beyond_day is not None:
        if last_seen <= c.persists_beyond_day:
            return False, ongoing, np.nan
        day = max(day, float(c.persists_beyond_day))
    return True, False, day


def _true(value: object) -> bool:
    """A ``discontinued`` cell: True only for a true value (empty/NaN is False)."""
    return bool(value) if pd.notna(value) else False


def dlt_flags(ae: pd.DataFrame, participants: pd.DataFrame,
              definition: DLTDefinition = DEFAULT_DLT) -> pd.DataFrame:
    """Return per-participant DLT status: DLT yes/no, evaluable or pending.

    Parameters
    ----------
    ae : pandas.DataFrame
        Validated AE table (:func:`carkinetics.endpoints.validate_ae`).
    participants : pandas.DataFrame
        ``id``, ``dose_level``, ``follow_up_days`` (days followed since infusion at the
        data cut-off); optional ``dose`` and ``discontinued`` (bool: left the study).
    definition : DLTDefinition, default DEFAULT_DLT
        Qualifying events and window.

    Returns
    -------
    pandas.DataFrame
        One row per participant: ``id``, ``dose_level``, ``dose``, ``status`` (one of
        :data:`DLT_STATUS`), ``dlt`` (bool, True only for status ``"dlt"``), ``evaluable``
        (status ``"dlt"`` or ``"no_dlt"``), ``dlt_day`` (day the first DLT was
        established: its onset, or the day its duration or persistence condition was met),
        ``dlt_reason`` (term, grade and criterion) and ``follow_up_days``.

    Raises
    ------
    EndpointError
        If ``participants`` lacks ``follow_up_days``.
    """
    if "follow_up_days" not in participants:
        raise EndpointError("Invalid participants: column 'follow_up_days' is missing; "
                            "expected the days followed since infusion (see "
                            "participants_from_data).")
    d = definition
    ev = ae.assign(id=ae["id"].astype(str))
    ev = ev[(ev["onset_day"] >= d.window_start) & (ev["onset_day"] <= d.window_days)]
    rows = []
    for _, p in participants.assign(id=participants["id"].astype(str)).iterrows():
        follow = float(p["follow_up_days"])
        best, undecided = None, False
        for _, e in ev[ev["id"] == p["id"]].iterrows():
            for c in d.criteria:
                if (c.category is not None and e["category"] != c.category) or not (
                        c.min_grade <= e["grade"] <= c.max_grade) or (
                        c.terms and e["term"] not in c.terms):
                    continue
                ok, wait, day = _decide(c, e["onset_day"], e["resolution_day"], follow)
                undecided |= wait
                if ok and (best is None or day < best[0]):
                    best = (day, f"{e['term']} grade {int(e['grade'])} ({c.describe()})")
        if best is not None:
            status = "dlt"
        elif follow >= d.window_days and not undecided:
            status = "no_dlt"
        elif _true(p.get("discontinued", False)):
            status = "not_evaluable"
        else:
            status = "pending"
        rows.append({"id": p["id"], "dose_level": p["dose_level"], "dose": p.get("dose", np.nan),
                     "status": status, "dlt": status == "dlt",
                     "evaluable": status in ("dlt", "no_dlt"),
                     "dlt_day": best[0] if best else np.nan,
                     "dlt_reason": best[1] if best else "", "follow_up_days": follow})
    cols = ["id", "dose_level", "dose", "status", "dlt", "evaluable", "dlt_day", "dlt_reason",
            "follow_up_days"]
    return pd.DataFrame(rows, columns=cols)
