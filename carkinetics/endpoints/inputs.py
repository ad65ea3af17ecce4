"""Input tables of the endpoints: adverse events, daily CRS and ICANS observations, participants.

Adverse events (one row per event; a CSV file beside the long data table):

==================  ========================================================================
column              content
==================  ========================================================================
``id``              participant id (compared as text with the data table's ``id``)
``term``            AE term as recorded (e.g. MedDRA preferred term), non-empty
``onset_day``       study day of onset (days since the CAR-T infusion; negative = before)
``resolution_day``  study day the event ended (its last day, as CDISC AEENDY); empty =
                    ongoing at the data cut-off; never before ``onset_day``
``grade``           1-5: ASTCT 2019 for CRS and ICANS, CTCAE v5.0 for everything else,
                    carried as recorded
``serious``         serious adverse event: true/false (also 1/0, yes/no, y/n)
``category``        one of :data:`AE_CATEGORIES`: ``crs``, ``icans``, ``cytopenia``,
                    ``infection``, ``hypogammaglobulinaemia``, ``other``
==================  ========================================================================

Daily CRS observations (one row per participant and day): ``id``, ``day``, ``fever``
(true/false) **or** ``temperature`` (degrees C; fever is >= 38.0), ``hypotension`` (one of
:data:`carkinetics.endpoints.crs.HYPOTENSION`), ``hypoxia`` (one of
:data:`~carkinetics.endpoints.crs.HYPOXIA`) **or** ``o2_route`` (one of
:data:`~carkinetics.endpoints.crs.OXYGEN_ROUTES`) with ``o2_flow`` (L/min, needed for a
nasal cannula); optional ``antipyretic``, ``anticytokine`` (therapy given that day) and
``death`` (death due to CRS), all true/false, empty meaning false.

Daily ICANS observations: ``id``, ``day``, ``ice_score`` (0-10; empty = not assessed),
``consciousness``, ``seizure``, ``motor``, ``raised_icp`` (strings of
:mod:`carkinetics.endpoints.icans`).

Every validator lists every problem at once in one
:class:`~carkinetics.exceptions.DataError`, each naming the row (1 = the first data row),
the column, the bad value and the fix, as :func:`carkinetics.data.validate` does.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from carkinetics._validation import closest
from carkinetics.data._report import Problems
from carkinetics.endpoints.crs import HYPOTENSION, HYPOXIA, OXYGEN_ROUTES, oxygen_category
from carkinetics.endpoints.icans import CONSCIOUSNESS, MOTOR, RAISED_ICP, SEIZURE
from carkinetics.exceptions import DataError

__all__ = [
    "AE_COLUMNS",
    "AE_CATEGORIES",
    "validate_ae",
    "read_ae",
    "validate_crs_observations",
    "validate_icans_observations",
    "participants_from_data",
]

AE_COLUMNS: tuple[str, ...] = ("id", "term", "onset_day", "resolution_day", "grade", "serious",
                               "category")
AE_CATEGORIES: tuple[str, ...] = ("crs", "icans", "cytopenia", "infection",
                                  "hypogammaglobulinaemia", "other")
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": ("subject", "subjid", "usubjid", "patient", "participant", "pid"),
    "term": ("aeterm", "aedecod", "pt", "preferred_term", "event"),
    "onset_day": ("onset", "start_day", "aestdy", "start", "onset_study_day"),
    "resolution_day": ("resolution", "end_day", "aeendy", "end", "stop_day", "resolved_day"),
    "grade": ("aetoxgr", "toxgr", "ctcae_grade", "severity"),
    "serious": ("aeser", "sae"),
    "category": ("aecat", "group", "class"),
    "day": ("time", "study_day", "ady"),
}
_TRUE = ("true", "yes", "y", "1", "1.0")
_FALSE = ("false", "no", "n", "0", "0.0")


def _columns(df: pd.DataFrame, required: Collection[str], p: Problems) -> bool:
    names = [str(c) for c in df.columns]
    ok = True
    for req in required:
        if req in names:
            continue
        ok = False
        syn = [c for c in names if c.lower() == req or c.lower() in _SYNONYMS.get(req, ())]
        hint = f" Found {syn[0]!r}: rename it to {req!r}." if syn else closest(req, names)
        p.add(f"column {req!r} (required) is missing; fix: add it.{hint}")
    return ok


def _number(df, col, p, *, required=True, integer=False, lo=None, hi=None, fix=""):
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce").astype("float64")
    values = raw.to_numpy(dtype=object)
    text = raw.notna().to_numpy() & num.isna().to_numpy()
    p.per_row(text, col, values, "is not a number", fix or "enter a number")
    if required:
        p.per_row(raw.isna().to_numpy(), col, values, "", fix or "fill in the value")
    x = num.to_numpy()
    ok = np.isfinite(x)
    p.per_row(np.isinf(x), col, x, "is not finite", fix or "enter a finite number")
    bad = np.zeros(len(x), dtype=bool)
    if integer:
        bad |= ok & (x != np.round(x))
    if lo is not None:
        bad |= ok & (x < lo)
    if hi is not None:
        bad |= ok & (x > hi)
    rng = f" in [{lo:g}, {hi:g}]" if lo is not None and hi is not None else ""
    p.per_row(bad, col, x, f"is not a{' whole' if integer else ''} number{rng}",
              fix or f"enter a {'whole ' if integer else ''}number{rng}")
    return num


def _flag(df, col, p, *, default: bool | None = None):
    """Read true/false text, numbers or bools; empty cells take ``default`` (None: a problem)."""
    if col not in df:
        return pd.Series(bool(default), index=df.index)
    raw = df[col]
    values = raw.to_numpy(dtype=object)
    text = raw.astype(str).str.strip().str.lower()
    true = text.isin(_TRUE).to_numpy()
    false = text.isin(_FALSE).to_numpy()
    missing = raw.isna().to_numpy()
    p.per_row(~true & ~false & ~missing, col, values, "is not true or false",
              "write true or false (also 1/0, yes/no, y/n)")
    if default is None:
        p.per_row(missing, col, values, "", "write true or false")
        default = False
    return pd.Series(np.where(missing, default, true), index=df.index, dtype=bool)


def _category(df, col, p, options: Collection[str], *, required=True):
    raw = df[col]
    values = raw.to_numpy(dtype=object)
    missing = raw.isna().to_numpy()
    bad = ~raw.isin(list(options)).to_numpy() & ~missing
    p.per_row(bad, col, values, "is not an accepted value",
              lambda i: f"use one of {list(options)}." + closest(values[i], options))
    if required:
        p.per_row(missing, col, values, "", f"fill in one of {list(options)}")
    return raw


def _ids(df, p):
    p.per_row(df["id"].isna().to_numpy(), "id", df["id"].to_numpy(dtype=object), "",
              "fill in the participant id")
    return df["id"].astype(str).where(df["id"].notna())


def _duplicates(df, keys, p):
    dup = df.duplicated(keys, keep="first").to_numpy() & df[keys].notna().all(axis=1).to_numpy()
    p.per_row(dup, keys[-1], df[keys[-1]].to_numpy(),
              lambda i: f"repeats an earlier row of participant {df['id'].iloc[i]!r} (one row "
              f"per participant and {keys[-1]})", "remove the repeated row, or correct it")


def validate_ae(df: pd.DataFrame, *, participants: pd.DataFrame | None = None,
                source: str | None = None) -> pd.DataFrame:
    """Check an adverse-event table and return a typed copy.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per event with the columns of :data:`AE_COLUMNS` (see the module notes);
        other columns pass through.
    participants : pandas.DataFrame, optional
        Participants (``id`` column, e.g. from :func:`participants_from_data`); every AE id
        must be one of them.
    source : str, optional
        File name named in every problem.

    Returns
    -------
    pandas.DataFrame
        ``id`` (text), ``term`` (stripped text), ``onset_day`` and ``resolution_day``
        (float; NaN = ongoing), ``grade`` (int), ``serious`` (bool), ``category`` and the
        input row number in ``row``, in input order.

    Raises
    ------
    DataError
        Listing every problem, each with row, column, value and fix.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"Invalid df of type {type(df).__name__}; expected a pandas DataFrame.")
    work = df.reset_index(drop=True).copy()
    p = Problems(source, np.arange(1, len(work) + 1))
    if not _columns(work, AE_COLUMNS, p):
        raise DataError(p.lines, source=source)
    work["id"] = _ids(work, p)
    term = work["term"].astype(str).str.strip().where(work["term"].notna())
    p.per_row((term.isna() | (term == "")).to_numpy(), "term", work["term"].to_numpy(
        dtype=object), "", "fill in the AE term as recorded")
    work["term"] = term
    onset = _number(work, "onset_day", p, fix="enter the study day of onset (days since the "
                    "CAR-T infusion)")
    res = _number(work, "resolution_day", p, required=False,
                  fix="enter the study day the event ended, or leave it empty if ongoing")
    before = (res < onset).to_numpy()
    p.per_row(before, "resolution_day", res.to_numpy(),
              lambda i: f"is before the onset day {onset.iloc[i]:g}",
              "correct the onset or resolution day")
    grade = _number(work, "grade", p, integer=True, lo=1, hi=5,
                    fix="enter the grade as a whole number 1-5 (ASTCT for CRS/ICANS, CTCAE "
                    "v5.0 otherwise)")
    work["serious"] = _flag(work, "serious", p)
    _category(work, "category", p, AE_CATEGORIES)
    if participants is not None:
        known = set(participants["id"].astype(str))
        p.per_row(work["id"].notna().to_numpy() & ~work["id"].isin(known).to_numpy(), "id",
                  work["id"].to_numpy(dtype=object), "is not a participant of the data table",
                  lambda i: "correct the id, or add the participant's data."
                  + closest(work["id"].iloc[i], known))
    if p.lines:
        raise DataError(p.lines, source=source)
    work["onset_day"] = onset
    work["resolution_day"] = res
    work["grade"] = grade.astype("int64")
    work["row"] = np.arange(1, len(work) + 1)
    return work


def read_ae(path: str | os.PathLike, *, participants: pd.DataFrame | None = None) -> pd.DataFrame:
    """Read and validate an adverse-event CSV file (see :func:`validate_ae`)."""
    from carkinetics.data._text import read_csv

    raw = read_csv(path, dtype={"id": str})
    return validate_ae(raw, participants=participants, source=str(path))


def validate_crs_observations(df: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Check a table of daily CRS observations and return a typed copy.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns described in the module notes.
    source : str, optional
        File name named in every problem.

    Returns
    -------
    pandas.DataFrame
        ``id`` (text), ``day`` (float), ``fever``, ``antipyretic``, ``anticytokine``,
        ``death`` (bool), ``hypotension``, ``hypoxia`` (category strings; derived from
        ``o2_route``/``o2_flow`` when there is no ``hypoxia`` column) and ``row``.

    Raises
    ------
    DataError
        Listing every problem, each with row, column, value and fix.
    """
    work = df.reset_index(drop=True).copy()
    p = Problems(source, np.arange(1, len(work) + 1))
    need = ["id", "day", "hypotension"]
    for alone, either in (("fever", "temperature"), ("hypoxia", "o2_route")):
        if alone not in work and either not in work:
            p.add(f"columns {alone!r} and {either!r} are both missing; fix: add one of them.")
    if not _columns(work, need, p) or p.lines:
        raise DataError(p.lines, source=source)
    work["id"] = _ids(work, p)
    work["day"] = _number(work, "day", p, fix="enter the study day (days since infusion)")
    if "fever" in work:
        work["fever"] = _flag(work, "fever", p)
    else:
        temp = _number(work, "temperature", p, lo=30, hi=45,
                       fix="enter the temperature in degrees C (from F: (F - 32) * 5 / 9)")
        work["fever"] = (temp >= 38.0).to_numpy()
    _category(work, "hypotension", p, HYPOTENSION)
    if "hypoxia" in work:
        _category(work, "hypoxia", p, HYPOXIA)
    else:
        route = _category(work, "o2_route", p, OXYGEN_ROUTES)
        flow = _number(work, "o2_flow", p, required=False, lo=0) if "o2_flow" in work \
            else pd.Series(np.nan, index=work.index)
        cannula = (route == "nasal_cannula").to_numpy()
        p.per_row(cannula & ~(flow > 0).to_numpy(), "o2_flow", flow.to_numpy(),
                  "on a nasal-cannula row", "enter the oxygen flow in L/min (> 0)")
        if not p.lines:
            work["hypoxia"] = [oxygen_category(r, None if np.isnan(f) else f)
                               for r, f in zip(route, flow, strict=True)]
    for col in ("antipyretic", "anticytokine", "death"):
        work[col] = _flag(work, col, p, default=False)
    _duplicates(work, ["id", "day"], p)
    if p.lines:
        raise DataError(p.lines, source=source)
    work["row"] = np.arange(1, len(work) + 1)
    return work


def validate_icans_observations(df: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Check a table of daily ICANS observations and return a typed copy.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``id``, ``day``, ``ice_score`` (optional; empty = not assessed),
        ``consciousness``, ``seizure``, ``motor``, ``raised_icp``.
    source : str, optional
        File name named in every problem.

    Returns
    -------
    pandas.DataFrame
        Typed copy with ``row``.

    Raises
    ------
    DataError
        Listing every problem, each with row, column, value and fix.
    """
    work = df.reset_index(drop=True).copy()
    p = Problems(source, np.arange(1, len(work) + 1))
    cats: Mapping[str, Collection[str]] = {"consciousness": CONSCIOUSNESS, "seizure": SEIZURE,
                                           "motor": MOTOR, "raised_icp": RAISED_ICP}
    if not _columns(work, ["id", "day", *cats], p):
        raise DataError(p.lines, source=source)
    work["id"] = _ids(work, p)
    work["day"] = _number(work, "day", p, fix="enter the study day (days since infusion)")
    if "ice_score" in work:
        work["ice_score"] = _number(work, "ice_score", p, required=False, integer=True, lo=0,
                                    hi=10)
    else:
        work["ice_score"] = np.nan
    for col, options in cats.items():
        _category(work, col, p, options)
    _duplicates(work, ["id", "day"], p)
    if p.lines:
        raise DataError(p.lines, source=source)
    work["row"] = np.arange(1, len(work) + 1)
    return work


def participants_from_data(data: pd.DataFrame) -> pd.DataFrame:
    """Return one row per participant of a (validated) long data table.

    Parameters
    ----------
    data : pandas.DataFrame
        Long table with ``id``, ``time`` and ``dose_level`` or ``dose`` (CAR-T cells/kg);
        ``disease`` is carried when present.

    Returns
    -------
    pandas.DataFrame
        ``id`` (text), ``dose_level`` (int; when only ``dose`` is given, the rank of the
        dose, 1 = lowest), ``dose`` (NaN if absent), ``disease`` (if present) and
        ``follow_up_days`` (the last observation day, a proxy for follow-up at the data
        cut-off), sorted by dose level and id.

    Raises
    ------
    DataError
        If neither ``dose_level`` nor ``dose`` is present, or a participant has more than
        one dose level or dose.
    """
    if "dose_level" not in data and "dose" not in data:
        raise DataError(["columns 'dose_level' and 'dose' are both missing; fix: add the "
                         "participant's dose level (1, 2, ...) or dose (CAR-T cells/kg)."])
    df = data.assign(id=data["id"].astype(str))
    problems = []
    for col in ("dose_level", "dose", "disease"):
        if col in df:
            n = df.dropna(subset=[col]).groupby("id")[col].nunique()
            for pid in n.index[n > 1]:
                vals = sorted(df.loc[df["id"] == pid, col].dropna().unique().tolist())
                problems.append(f"participant {pid!r}, column {col!r}: has several values "
                                f"{vals}; fix: one {col} per participant.")
    if problems:
        raise DataError(problems)
    g = df.groupby("id", sort=False)
    out = pd.DataFrame({"id": list(g.groups)})
    first = {c: g[c].first() for c in ("dose_level", "dose", "disease") if c in df}
    out["dose"] = out["id"].map(first["dose"]) if "dose" in first else np.nan
    if "dose_level" in first:
        out["dose_level"] = out["id"].map(first["dose_level"]).astype("int64")
    else:
        out["dose_level"] = out["dose"].rank(method="dense").astype("int64")
    if "disease" in first:
        out["disease"] = out["id"].map(first["disease"])
    out["follow_up_days"] = out["id"].map(g["time"].max()).astype("float64")
    cols = ["id", "dose_level", "dose", *(["disease"] if "disease" in out else []),
            "follow_up_days"]
    return out[cols].sort_values(["dose_level", "id"], kind="stable").reset_index(drop=True)
