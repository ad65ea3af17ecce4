"""Validation of the long-format data table.

:func:`validate` checks a table against the schema of :mod:`carkinetics.data.schema` and
returns a new, validated table, or raises one :class:`~carkinetics.exceptions.DataError`
that lists every problem found. Each problem names the source (if given), the row, the
column, the bad value and the fix. Rows are numbered 1, 2, ... from the first data row
(in a CSV file, row 1 is the line under the header). When more than 50 rows share one
problem, the first 20 are listed with the count.

The returned table

* keeps every row and every column (unknown columns pass through untouched);
* has float64 numeric columns (``time``, ``dv``, ``lloq``, ``uloq``, ``limit``, ``dose``,
  ``weight``, ``delivered_dose``) and an int64 ``cens`` (added, or filled, with 0 where
  missing);
* is sorted stably by ``id``, ``endpoint`` (if present) and ``time``, with a fresh
  RangeIndex and a column ``row`` (int) holding each row's number in the input. ``row`` is
  reserved: a ``row`` column in the input is replaced.

Rows with ``mdv == 1`` (records that are not observations, e.g. NONMEM EVID=2 records) may
have a missing ``dv`` and are exempt from the observation checks (censoring, sign, dose,
duplicates). A missing ``unit`` means the endpoint's canonical unit.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from carkinetics._validation import closest
from carkinetics.data._report import Problems, fmt
from carkinetics.data.schema import (
    CENS_CODES,
    CK_ENDPOINTS,
    ENDPOINTS,
    NUMERIC,
    REQUIRED,
)
from carkinetics.data.units import UNITS
from carkinetics.exceptions import DataError

__all__ = ["validate", "validate_file"]

_RTOL = 1e-9
_SYNONYMS = {
    "id": ("subject", "subjid", "usubjid", "patient", "participant", "pid", "subject_id",
           "patient_id", "participant_id"),
    "time": ("day", "days", "study_day", "studyday", "ady", "tafd", "time_days", "nominal_day"),
    "dv": ("value", "conc", "concentration", "result", "aval", "obs", "y", "level"),
}
#: Columns whose meaning changes the checks: a case variant ("LLOQ") would be silently ignored.
_CASE_CHECKED = ("endpoint", "unit", "lloq", "uloq", "cens", "limit")
_NONNEGATIVE = tuple(e.name for e in ENDPOINTS.values() if e.nonnegative)
_ACCEPTED = pd.MultiIndex.from_tuples([(e.name, u) for e in ENDPOINTS.values() for u in e.units])


def validate(df: pd.DataFrame, *, source: str | None = None) -> pd.DataFrame:
    """Check a data table and return a validated copy.

    Parameters
    ----------
    df : pandas.DataFrame
        Long-format table, one row per observation (see :mod:`carkinetics.data.schema`).
    source : str, optional
        File name (or other description) named in every problem.

    Returns
    -------
    pandas.DataFrame
        A new table with the same rows: numeric dtypes, ``cens`` filled with 0 where
        missing, sorted stably by (id, endpoint, time), with the input row number in ``row``.

    Raises
    ------
    DataError
        Listing every problem, each with row, column, value and fix.
    TypeError
        If ``df`` is not a DataFrame.

    Examples
    --------
    >>> import pandas as pd
    >>> t = validate(pd.DataFrame({"id": [1, 1], "time": [7.0, 0.0], "dv": [50.0, 5.0]}))
    >>> t[["time", "cens", "row"]].values.tolist()
    [[0.0, 0.0, 2.0], [7.0, 0.0, 1.0]]
    """
    out, problems = check(df, source=source)
    if problems:
        raise DataError(problems, source=source)
    return out


def validate_file(path: str | os.PathLike, *, format: str | None = None) -> pd.DataFrame:
    """Read and validate a data file; problems name the file.

    Parameters
    ----------
    path : str or path-like
        A .csv, .parquet/.pq or NONMEM-style file (see :func:`carkinetics.data.read_data`).
    format : {"csv", "parquet", "nonmem"}, optional
        File format; by default from the suffix and the column names.

    Returns
    -------
    pandas.DataFrame
        The validated table.

    Raises
    ------
    DataError
        Listing every problem in the file.
    """
    from carkinetics.data.io import read_data

    return read_data(path, format=format)


def check(df: pd.DataFrame, *, source: str | None = None, rows=None, case_check: bool = True):
    """Return ``(validated table or None, list of problem lines)`` without raising.

    ``rows`` gives the row number reported for each table position (default 1..n);
    ``case_check=False`` accepts upper-case variants of column names (NONMEM extras).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"Invalid df of type {type(df).__name__}; expected a pandas DataFrame.")
    n = len(df)
    rows = np.arange(1, n + 1) if rows is None else np.asarray(rows)
    p = Problems(source, rows)
    dup_cols = df.columns[df.columns.duplicated()].unique()
    for c in dup_cols:
        p.add(f"column {c!r} appears {int((df.columns == c).sum())} times; fix: keep one "
              "column of that name.")
    if len(dup_cols):
        return None, p.lines
    _check_columns(df.columns, p, case_check)
    work = df.reset_index(drop=True).drop(columns="row", errors="ignore")
    bad = _numeric(work, p)
    obs = _observation_rows(work, p)
    cens = work["cens"] if "cens" in work else pd.Series(0.0, index=work.index)
    if "cens" in work:
        bad["cens"] |= (~cens.isin(CENS_CODES) & cens.notna()).to_numpy()
        p.per_row(bad["cens"] & ~bad["cens_text"], "cens", cens.to_numpy(),
                  "is not a censoring code",
                  "use 0 (quantified), 1 (below LLOQ) or -1 (above ULOQ); empty means 0")
        cens = cens.fillna(0.0)
    if "id" in work:
        p.per_row(work["id"].isna(), "id", work["id"].to_numpy(), "",
                  "fill in the participant id")

    def ok(*cols: str) -> np.ndarray:
        """Observation rows whose values in ``cols`` passed the numeric checks."""
        mask = obs.copy()
        for c in cols:
            mask &= ~bad[c]
        return mask

    known = _endpoints(work, obs, p)
    _censoring(work, cens.to_numpy(), ok, p)
    _dose(work, ok, known, p)
    if "id" in work and "time" in work:
        _duplicates(work, ok("time"), p)
    if p.lines:
        return None, p.lines
    return _finish(work, df, cens, rows), []


def _check_columns(columns: pd.Index, p: Problems, case_check: bool) -> None:
    names = [str(c) for c in columns]
    nonmem = all(c in names for c in ("ID", "TIME", "DV"))
    for req in REQUIRED:
        if req in names:
            continue
        exact = [c for c in names if c.lower() == req]
        syn = [c for c in names if c.lower() in _SYNONYMS[req]]
        if exact or syn:
            hint = f" Found {(exact or syn)[0]!r}: rename it to {req!r}."
        else:
            hint = closest(req, names)
        if nonmem:
            hint += (" This looks like a NONMEM data set: use read_nonmem(path) (or "
                     "read_data(path, format='nonmem')), or rename ID, TIME, DV to id, time, dv.")
        p.add(f"column {req!r} (required) is missing; fix: add it.{hint}")
    for c in names:
        if case_check and c.lower() in _CASE_CHECKED and c.lower() not in names:
            p.add(f"column {c!r}: column names are lower case, so {c!r} is not read as "
                  f"{c.lower()!r}; fix: rename it to {c.lower()!r}.")


def _numeric(work: pd.DataFrame, p: Problems) -> dict[str, np.ndarray]:
    """Convert numeric columns to float in place; return each column's rows with bad values."""
    n = len(work)
    bad = {c: np.zeros(n, dtype=bool) for c in (*NUMERIC, "cens_text")}
    mdv = _as_float(work["mdv"]) if "mdv" in work else None
    for col in NUMERIC:
        if col not in work:
            continue
        raw = work[col]
        num = _as_float(raw)
        text = raw.notna().to_numpy() & num.isna().to_numpy()
        values = raw.to_numpy(dtype=object)
        p.per_row(text, col, values, "is not a number",
                  lambda i, c=col, v=values: _number_fix(c, v[i]))
        if col == "limit":
            inf = np.zeros(len(work), dtype=bool)
        elif col == "uloq":
            inf = (num == -np.inf).to_numpy()
        else:
            inf = np.isinf(num.to_numpy())
        p.per_row(inf, col, num.to_numpy(), "is not finite",
                  "enter a finite number" + (" (uloq may be +inf or empty)" if col == "uloq"
                                             else ""))
        missing = raw.isna().to_numpy().copy()
        if col == "time":
            p.per_row(missing, col, num.to_numpy(), "",
                      "enter the days since the CAR-T infusion (negative before it)")
        elif col == "dv":
            if mdv is not None:
                missing &= ~(mdv == 1).to_numpy()
            p.per_row(missing, col, num.to_numpy(), "",
                      "enter the result (a BLQ result is dv = lloq with cens = 1), or remove "
                      "the row")
        else:
            missing[:] = False
        bad[col] = text | inf | missing
        if col == "cens":
            bad["cens_text"] = bad[col].copy()
        work[col] = num
    return bad


def _as_float(raw: pd.Series) -> pd.Series:
    return pd.to_numeric(raw, errors="coerce").astype("float64")


def _number_fix(col: str, value: object) -> str:
    text = str(value).strip()
    if col in ("dv", "lloq") and text.startswith("<"):
        return (f"a result reported as {text} is below the LLOQ: write dv = lloq = {text[1:]} "
                "and cens = 1")
    if col in ("dv", "uloq") and text.startswith(">"):
        return (f"a result reported as {text} is above the ULOQ: write dv = uloq = {text[1:]} "
                "and cens = -1")
    if col == "cens":
        return "use 0 (quantified), 1 (below LLOQ) or -1 (above ULOQ)"
    if col == "dose":
        return "enter the assigned dose in CAR-T cells/kg as a number (e.g. 1e6)"
    if col == "dv":
        return "enter the result as a number (a BLQ result is dv = lloq with cens = 1)"
    if col == "time":
        return "enter the days since the CAR-T infusion as a number"
    return "enter a number, or leave the cell empty"


def _observation_rows(work: pd.DataFrame, p: Problems) -> np.ndarray:
    if "mdv" not in work:
        return np.ones(len(work), dtype=bool)
    mdv = _as_float(work["mdv"])
    bad = ~mdv.isin((0, 1)) & work["mdv"].notna()
    p.per_row(bad, "mdv", work["mdv"].to_numpy(dtype=object), "is not an MDV flag",
              "use 1 for a record without an observation, 0 (or empty) otherwise")
    return ~(mdv == 1).to_numpy()


def _endpoints(work: pd.DataFrame, ok: np.ndarray, p: Problems) -> np.ndarray:
    """Check endpoint and unit; return the rows whose endpoint is known."""
    n = len(work)
    if "endpoint" not in work:
        if "unit" in work:
            unit = work["unit"]
            bad = unit.notna() & ~unit.isin(list(UNITS))
            p.per_row(bad, "unit", unit.to_numpy(dtype=object), "is not a known unit",
                      lambda i: f"use one of {list(UNITS)}" + closest(unit.iloc[i], UNITS))
        return np.zeros(n, dtype=bool)
    ep = work["endpoint"]
    values = ep.to_numpy(dtype=object)
    known = ep.isin(list(ENDPOINTS)).to_numpy()
    missing = ep.isna().to_numpy()
    p.per_row(missing & ok, "endpoint", values, "",
              "fill in the endpoint (see carkinetics.data.ENDPOINTS)")
    p.per_row(~known & ~missing, "endpoint", values, "is not a known endpoint",
              lambda i: "use a name of carkinetics.data.ENDPOINTS."
              + closest(str(values[i]).lower(), ENDPOINTS))
    if "unit" in work:
        unit = work["unit"]
        pairs = pd.MultiIndex.from_arrays([ep.astype(object), unit.astype(object)])
        bad = known & unit.notna().to_numpy() & ~pairs.isin(_ACCEPTED)
        uvals = unit.to_numpy(dtype=object)

        def fix(i: int) -> str:
            accepted = ENDPOINTS[values[i]].units
            return (f"use one of {list(accepted)} (convert the values with "
                    "carkinetics.data.convert)." + closest(uvals[i], accepted))

        p.per_row(bad, "unit", uvals, lambda i: f"is not a unit of endpoint {values[i]!r}", fix)
    return known


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= _RTOL * np.maximum(np.abs(a), np.abs(b))


def _censoring(work: pd.DataFrame, cens: np.ndarray, ok, p: Problems) -> None:
    # rows with non-finite limits are reported by _numeric; comparing them here (inf - inf)
    # must not warn
    with np.errstate(invalid="ignore", over="ignore"):
        _censoring_checks(work, cens, ok, p)


def _censoring_checks(work: pd.DataFrame, cens: np.ndarray, ok, p: Problems) -> None:
    n = len(work)
    nan = np.full(n, np.nan)
    dv = work["dv"].to_numpy() if "dv" in work else nan
    lloq = work["lloq"].to_numpy() if "lloq" in work else nan
    uloq = work["uloq"].to_numpy() if "uloq" in work else nan
    if "endpoint" in work:
        nonneg = work["endpoint"].isin(_NONNEGATIVE).to_numpy()

        def neg(i: int) -> str:
            return f"is negative, impossible for endpoint {work['endpoint'][i]!r}"

        negative = ok("dv") & nonneg & (dv < 0)
        p.per_row(negative, "dv", dv, neg, "correct the value")
        p.per_row(ok("lloq") & nonneg & (lloq < 0), "lloq", lloq, neg, "correct the LLOQ")
    base = ok("cens", "dv", "lloq", "uloq")
    blq, alq, quant = base & (cens == 1), base & (cens == -1), base & (cens == 0)
    if "endpoint" in work:
        quant &= ~negative  # already reported as negative
    no_l = "" if "lloq" in work else " (there is no lloq column)"
    p.per_row(blq & np.isnan(lloq), "lloq", lloq, f"on a BLQ row (cens = 1){no_l}",
              "give the sample's LLOQ in lloq, with dv = lloq")
    no_u = "" if "uloq" in work else " (there is no uloq column)"
    p.per_row(alq & ~np.isfinite(uloq), "uloq", uloq,
              f"on an above-ULOQ row (cens = -1){no_u}, which needs a finite uloq",
              "give the sample's ULOQ in uloq, with dv = uloq")
    p.per_row(blq & ~np.isnan(lloq) & ~_close(dv, lloq), "dv", dv,
              lambda i: f"on a BLQ row (cens = 1) differs from its lloq {fmt(lloq[i])}",
              lambda i: f"set dv = lloq = {fmt(lloq[i])} (a censored row stores its limit, "
              "never 0 or LLOQ/2)")
    p.per_row(alq & np.isfinite(uloq) & ~_close(dv, uloq), "dv", dv,
              lambda i: f"on an above-ULOQ row (cens = -1) differs from its uloq {fmt(uloq[i])}",
              lambda i: f"set dv = uloq = {fmt(uloq[i])}")
    p.per_row(quant & (dv < lloq - _RTOL * np.abs(lloq)), "dv", dv,
              lambda i: f"is below lloq {fmt(lloq[i])} on a quantified row (cens = 0)",
              lambda i: f"mark it censored: cens = 1 and dv = lloq = {fmt(lloq[i])}")
    p.per_row(quant & (dv > uloq + _RTOL * np.abs(uloq)), "dv", dv,
              lambda i: f"is above uloq {fmt(uloq[i])} on a quantified row (cens = 0)",
              lambda i: f"mark it censored: cens = -1 and dv = uloq = {fmt(uloq[i])}")
    p.per_row(ok("lloq", "uloq") & (lloq >= uloq), "lloq", lloq,
              lambda i: f"is not below the uloq {fmt(uloq[i])}", "correct lloq or uloq")
    if "limit" in work:
        limit = work["limit"].to_numpy()
        blq &= ok("limit")
        alq &= ok("limit")
        p.per_row(blq & (limit >= dv), "limit", limit,
                  lambda i: f"is not below dv {fmt(dv[i])} on a BLQ row (the interval is "
                  "[limit, lloq])", "use a limit below the LLOQ (e.g. 0), or leave it empty")
        p.per_row(alq & (limit <= dv), "limit", limit,
                  lambda i: f"is not above dv {fmt(dv[i])} on an above-ULOQ row (the interval "
                  "is [uloq, limit])", "use a limit above the ULOQ, or leave it empty")


def _dose(work: pd.DataFrame, ok, known: np.ndarray, p: Problems) -> None:
    ck = ok("dose") & known & work["endpoint"].isin(CK_ENDPOINTS).to_numpy() \
        if "endpoint" in work else np.zeros(len(work), dtype=bool)
    if "dose" not in work:
        if ck.any():
            first = ", ".join(map(str, p.rows[np.flatnonzero(ck)[:5]]))
            first += ", ..." if ck.sum() > 5 else ""
            near = [c for c in map(str, work.columns) if c.lower() in ("dose", "amt", "dose_mkg")]
            hint = f" Found {near[0]!r}: rename it to 'dose'." if near else ""
            eps = sorted(set(work["endpoint"][ck]))
            p.add(f"column 'dose' is missing but {int(ck.sum())} rows (rows {first}) have "
                  f"CAR-T kinetic endpoints ({', '.join(eps)}) that need the assigned dose; fix: "
                  f"add a dose column in CAR-T cells/kg.{hint}")
    else:
        dose = work["dose"].to_numpy()
        p.per_row(ck & np.isnan(dose), "dose", dose,
                  lambda i: f"on a row of CAR-T kinetic endpoint "
                  f"{work['endpoint'][i]!r}", "enter the assigned dose in CAR-T cells/kg")
        p.per_row(ok("dose") & (dose <= 0), "dose", dose, "is not a positive dose",
                  "enter the assigned dose in CAR-T cells/kg (e.g. 1e6)")
    if "weight" in work:
        weight = work["weight"].to_numpy()
        p.per_row(ok("weight") & (weight <= 0), "weight", weight, "is not a positive weight",
                  "enter the body weight in kg, or leave it empty")


def _duplicates(work: pd.DataFrame, ok: np.ndarray, p: Problems) -> None:
    keys = ["id", "time"] + (["endpoint"] if "endpoint" in work else [])
    sub = work.loc[ok, keys]
    dup = sub.duplicated(keep=False)
    if not dup.any():
        return
    groups = list(sub[dup].groupby(keys, dropna=False, sort=False).indices.values())
    positions = np.flatnonzero(ok)
    cols = ", ".join(repr(k) for k in keys)

    def line(g: np.ndarray) -> str:
        rows = [str(r) for r in p.rows[positions[np.flatnonzero(dup.to_numpy())[g]]]]
        first = sub[dup].iloc[g[0]]
        value = "(" + ", ".join(fmt(first[k]) for k in keys) + ")"
        both = "both are" if len(rows) == 2 else "all are"
        return (f"rows {', '.join(rows[:-1])} and {rows[-1]}, columns {cols}: {both} "
                f"{value} (duplicate rows); fix: remove the repeated row, or correct its "
                f"{' or '.join(keys[1:])}")

    p.listed(groups, line, "groups of duplicate rows")


def _sort_codes(values: pd.Series) -> np.ndarray:
    try:
        return pd.factorize(values, sort=True)[0]
    except TypeError:  # mixed types (e.g. 1 and "A"): order by their text
        return pd.factorize(values.astype(str), sort=True)[0]


def _finish(work: pd.DataFrame, df: pd.DataFrame, cens: pd.Series, rows: np.ndarray):
    work["cens"] = cens.astype("int64")
    if "mdv" in work:
        work["mdv"] = _as_float(work["mdv"]).fillna(0).astype("int64")
    work["row"] = rows.astype("int64")
    keys = [work["time"].to_numpy()]
    if "endpoint" in work:
        keys.append(_sort_codes(work["endpoint"]))
    keys.append(_sort_codes(work["id"]))
    order = np.lexsort(keys)
    out = work.take(order).reset_index(drop=True)
    out.attrs = dict(df.attrs)
    return out
