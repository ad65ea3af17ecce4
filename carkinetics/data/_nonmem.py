"""NONMEM-style tables <-> the carkinetics data table (private; documented in ``io``).

Data that belong to rows live in columns of our table (``dose``, ``dose_time``, ``mdv``,
``evid``, ``nm_dv`` and the passed-through columns); how the file was laid out (column
names, order and dtypes, the DVID map, the time unit, filler values and the dose records
verbatim) lives in ``table.attrs["nonmem"]`` (a JSON string), which :func:`to_nonmem`
follows when present and which survives Parquet but not CSV. Without it :func:`to_nonmem`
writes a canonical layout.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from carkinetics._validation import check_option
from carkinetics.data._report import Problems, fmt
from carkinetics.data.schema import COLUMN_ORDER
from carkinetics.data.validate import _sort_codes, check
from carkinetics.exceptions import DataError

NONMEM_COLUMNS = ("ID", "TIME", "DV", "MDV", "EVID", "AMT", "CMT", "DVID", "CENS", "LIMIT",
                  "BLQ", "LLOQ", "ULOQ")
DEFAULT_DVID_MAP: dict[int, str] = {1: "car_qpcr", 2: "car_flow"}
#: Columns of our table that to_nonmem consumes (all others pass through by name).
OURS = ("id", "time", "dv", "endpoint", "cens", "lloq", "uloq", "limit", "dose", "dose_time",
        "mdv", "evid", "nm_dv", "row")
_NUMERIC_NM = ("TIME", "DV", "MDV", "EVID", "AMT", "CMT", "DVID", "CENS", "LIMIT", "BLQ", "LLOQ",
               "ULOQ")
_HOURS = 24.0


def _py(v: object) -> object:
    """A JSON-friendly Python scalar (NaN -> None)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def _dumps(layout: dict) -> str:
    # A JSON string, not a dict: pandas deep-copies attrs on every operation, and copying a
    # string is free while copying one dose record per participant is not.
    return json.dumps(layout, separators=(",", ":"), default=str)


def _loads(layout: object) -> dict:
    if isinstance(layout, str):
        try:
            layout = json.loads(layout)
        except ValueError:
            return {}
    return layout if isinstance(layout, dict) else {}


def _dvid_map(dvid_map: Mapping | None) -> dict[float, str]:
    m = dict(DEFAULT_DVID_MAP if dvid_map is None else dvid_map)
    if len(set(m.values())) != len(m):
        raise ValueError(f"Invalid dvid_map={m!r}; each code must map to a different endpoint.")
    return {float(k): v for k, v in m.items()}


def from_nonmem(nm: pd.DataFrame, *, dvid_map: Mapping[int, str] | None = None,
                time_unit: str = "day", source: str | None = None) -> pd.DataFrame:
    """Convert a NONMEM-style table to a validated carkinetics table.

    The mapping is tabulated in :mod:`carkinetics.data.io`.

    Parameters
    ----------
    nm : pandas.DataFrame
        Columns ID, TIME, DV and any of MDV, EVID, AMT, CMT, DVID, CENS, LIMIT, BLQ, LLOQ,
        ULOQ; other columns pass through.
    dvid_map : mapping of int to str, optional
        DVID (or, without DVID, CMT) code -> endpoint; default ``{1: "car_qpcr",
        2: "car_flow"}``.
    time_unit : {"day", "hour"}, default "day"
        Unit of TIME (hours are divided by 24).
    source : str, optional
        File name named in the problems.

    Returns
    -------
    pandas.DataFrame
        The validated table (one row per non-dose record; ``row`` is the record's row in
        ``nm``), with the layout in ``attrs["nonmem"]`` so that :func:`to_nonmem` gives ``nm``
        back.

    Raises
    ------
    DataError
        Listing every problem of the NONMEM structure (then, once that is sound, every
        problem of the converted table), each with row, column, value and fix.
    """
    check_option("time_unit", time_unit, ("day", "hour"))
    codes = _dvid_map(dvid_map)
    cols = [str(c) for c in nm.columns]
    if not all(c in cols for c in ("ID", "TIME", "DV")):
        lower = " Columns are lower case: use read_data or validate." if "id" in cols else ""
        raise DataError([f"a NONMEM table needs the columns ID, TIME and DV; found {cols}.{lower}"],
                        source=source)
    nm = nm.reset_index(drop=True)
    n = len(nm)
    p = Problems(source, np.arange(1, n + 1))
    num = {}
    for c in _NUMERIC_NM:
        if c in nm:
            num[c] = pd.to_numeric(nm[c], errors="coerce").astype("float64")
            text = nm[c].notna().to_numpy() & num[c].isna().to_numpy()
            p.per_row(text, c, nm[c].to_numpy(dtype=object), "is not a number",
                      "enter a number ('.' means missing)")
    zeros = pd.Series(0.0, index=nm.index)
    evid, amt = num.get("EVID"), num.get("AMT")
    amt_ = amt if amt is not None else pd.Series(np.nan, index=nm.index)
    ids = nm["ID"]
    dose, other = _record_kinds(num, ids, p)
    kept = ~dose
    dose_ids = ids[dose]

    ours: dict[str, object] = {"id": ids[kept]}
    time = num["TIME"] / (_HOURS if time_unit == "hour" else 1.0)
    ours["time"] = time[kept]
    layout_fill: dict[str, object] = {}
    dvid_col = "DVID" if "DVID" in nm else ("CMT" if "CMT" in nm else None)
    if dvid_col:
        code = num[dvid_col]
        endpoint = code.map(codes)
        unmapped = kept & endpoint.isna().to_numpy()
        p.per_row(unmapped & ~other, dvid_col, code.to_numpy(),
                  "has no endpoint in dvid_map",
                  lambda i: f"pass dvid_map={{..., {fmt(code[i])}: '<endpoint>'}} (now "
                  f"{ {int(k): v for k, v in codes.items()} })")
        if (unmapped & other).any():
            layout_fill[dvid_col] = _py(code[np.flatnonzero(unmapped & other)[0]])
        ours["endpoint"] = endpoint[kept]
    dv = num["DV"].copy()
    cens = _censoring(num, kept & ~other, p)
    nm_dv = pd.Series(np.nan, index=nm.index)
    for col, flag, limit_col in (("lloq", 1, "LLOQ"), ("uloq", -1, "ULOQ")):
        rows = kept & ~other & ((zeros if cens is None else cens) == flag).to_numpy()
        if limit_col in nm:
            limit = num[limit_col].copy()
        elif rows.any():
            limit = pd.Series(np.nan, index=nm.index)
            limit[rows] = dv[rows]
            p.per_row(rows & ~(dv > 0).to_numpy(), "DV", dv.to_numpy(),
                      f"on a {'BLQ' if flag == 1 else 'above-ULOQ'} record without an "
                      f"{limit_col} column", f"add an {limit_col} column with the limit")
        else:
            continue
        change = rows & limit.notna().to_numpy() & (dv != limit).to_numpy()
        nm_dv[change] = dv[change]
        dv[change] = limit[change]
        ours[col] = limit[kept]
    ours["dv"] = dv[kept]
    if cens is not None:
        ours["cens"] = cens[kept]
    if "LIMIT" in nm:
        ours["limit"] = num["LIMIT"][kept]
    if dose.any():
        by_id = pd.Series(amt_[dose].to_numpy(), index=dose_ids.to_numpy())
        by_id = by_id[~by_id.index.duplicated()]
        ours["dose"] = ids[kept].map(by_id).astype("float64")
        dtime = pd.Series(time[dose].to_numpy(), index=dose_ids.to_numpy())
        if (dtime != 0).any():
            ours["dose_time"] = ids[kept].map(dtime[~dtime.index.duplicated()])
    if other[kept].any():
        ours["mdv"] = pd.Series(other.astype("int64"), index=nm.index)[kept]
        if evid is not None:
            ours["evid"] = evid.fillna(0)[kept].astype("int64")
    if nm_dv.notna().any():
        ours["nm_dv"] = nm_dv[kept]
    consumed = set(NONMEM_COLUMNS) - ({"CMT"} if dvid_col == "DVID" else set())
    for c in [c for c in nm.columns if c not in consumed]:
        if c in ours or c == "row":
            p.add(f"column {c!r}: the name is used by carkinetics for converted NONMEM data; "
                  "fix: rename it.")
        else:
            ours[c] = nm[c][kept]
    if p.lines:
        raise DataError(p.lines, source=source)
    table = pd.DataFrame(ours)
    first = [c for c in (*COLUMN_ORDER, "dose_time", "mdv", "evid", "nm_dv") if c in ours]
    table = table[first + [c for c in table.columns if c not in first]]
    if amt is not None and kept.any():
        layout_fill["AMT"] = _py(amt[np.flatnonzero(kept)[0]])
    table.attrs["nonmem"] = _dumps({
        "columns": cols,
        "dtypes": {str(c): str(nm[c].dtype) for c in nm.columns},
        "records": n,
        "time_unit": time_unit,
        "dvid_column": dvid_col,
        "dvid_map": [[int(k) if float(k).is_integer() else k, v] for k, v in codes.items()],
        "fill": layout_fill,
        "dose_records": [{**{str(c): _py(v) for c, v in r.items()}, "__row__": int(i + 1)}
                         for i, r in zip(np.flatnonzero(dose), nm[dose].to_dict("records"),
                                         strict=True)],
    })
    out, problems = check(table, source=source, rows=np.flatnonzero(kept) + 1, case_check=False)
    if problems:
        raise DataError(_file_names(problems, nm.columns, dvid_col), source=source)
    return out


def _file_names(lines: list[str], columns, dvid_col: str | None) -> list[str]:
    """Name the NONMEM file's columns (DV, not dv) in problems found in the converted table."""
    names = {"id": "ID", "time": "TIME", "dv": "DV", "dose": "AMT", "endpoint": dvid_col,
             "lloq": "LLOQ", "uloq": "ULOQ", "limit": "LIMIT",
             "cens": "CENS" if "CENS" in columns else "BLQ"}
    names = {k: v for k, v in names.items() if v in columns}

    def one(m: re.Match) -> str:
        return "'" + names.get(m.group(1), m.group(1)) + "'"

    def segment(m: re.Match) -> str:
        return re.sub(r"'(\w+)'", one, m.group(0))

    no_dose = ("fix: add a dose column in CAR-T cells/kg.",
               "fix: add a dose record (EVID = 1, AMT in CAR-T cells/kg) per participant.")
    return [re.sub(r"columns? '\w+'(, '\w+')*", segment, line)
            if re.match(r"(.*: )?rows? \d", line) else line.replace(*no_dose) for line in lines]


def _record_kinds(num: dict, ids: pd.Series, p: Problems) -> tuple[np.ndarray, np.ndarray]:
    """Return (dose records, other non-observation records), checking AMT and EVID."""
    n = len(ids)
    evid, mdv = num.get("EVID"), num.get("MDV")
    amt = num.get("AMT", pd.Series(np.nan, index=ids.index))
    if evid is not None:
        p.per_row(~evid.isin([0, 1, 2, 3, 4]) & evid.notna(), "EVID", evid.to_numpy(),
                  "is not an event type", "use 0 (observation), 1 (dose), 2 (other), 3 or 4")
        dose = evid.isin([1, 4]).to_numpy()
        other = evid.isin([2, 3]).to_numpy()
    else:
        dose = (amt > 0).to_numpy()
        if mdv is not None:
            dose = dose & (mdv == 1).to_numpy()
        other = np.zeros(n, dtype=bool)
    if mdv is not None:
        other = other | ((mdv == 1).to_numpy() & ~dose)
    p.per_row(~dose & (amt.fillna(0) != 0).to_numpy(), "AMT", amt.to_numpy(),
              "on a record that is not a dose record",
              "a dose record has EVID = 1 (or MDV = 1 with AMT > 0); set AMT to 0 otherwise")
    p.per_row(dose & ~(amt > 0).to_numpy(), "AMT", amt.to_numpy(), "on a dose record",
              "give the dose in CAR-T cells/kg (> 0)")
    dose_ids = ids[dose]
    repeated = np.zeros(n, dtype=bool)
    repeated[np.flatnonzero(dose)] = dose_ids.duplicated(keep=False).to_numpy()
    p.per_row(repeated, "AMT", amt.to_numpy(),
              lambda i: f"is one of {int((dose_ids == ids[i]).sum())} dose records of "
              f"participant {fmt(ids[i])}",
              "carkinetics keeps one assigned dose per participant: keep one record (or sum "
              "them into one)")
    orphan = dose & ~ids.isin(ids[~dose]).to_numpy()
    p.per_row(orphan, "ID", ids.to_numpy(dtype=object), "has a dose record but no other record",
              "add the participant's observations, or remove the dose record")
    return dose, other


def _censoring(num: dict, obs: np.ndarray, p: Problems) -> pd.Series | None:
    cens, blq = num.get("CENS"), num.get("BLQ")
    if blq is not None:
        p.per_row(obs & ~blq.isin([0, 1]).to_numpy() & blq.notna().to_numpy(), "BLQ",
                  blq.to_numpy(), "is not a BLQ flag", "use 1 (below LLOQ) or 0")
        if cens is not None:
            differ = obs & ((blq == 1) != (cens == 1)).to_numpy()
            p.per_row(differ, "BLQ", blq.to_numpy(),
                      lambda i: f"disagrees with CENS = {fmt(cens[i])}",
                      "BLQ = 1 exactly when CENS = 1: correct one of them")
        else:
            cens = blq
    return None if cens is None else cens.fillna(0.0)


_INT = ("MDV", "EVID", "CENS", "BLQ", "DVID", "CMT")


def to_nonmem(df: pd.DataFrame, *, dvid_map: Mapping[int, str] | None = None,
              time_unit: str | None = None) -> pd.DataFrame:
    """Convert a carkinetics table to a NONMEM-style table.

    The mapping is tabulated in :mod:`carkinetics.data.io`.

    Parameters
    ----------
    df : pandas.DataFrame
        A carkinetics table (validated here). Its ``attrs["nonmem"]`` layout, if any, is
        followed, so a table from :func:`from_nonmem` is written back exactly.
    dvid_map : mapping of int to str, optional
        DVID code -> endpoint; default the layout's or ``{1: "car_qpcr", 2: "car_flow"}``.
    time_unit : {"day", "hour"}, optional
        Unit of TIME; default the layout's or ``"day"``.

    Returns
    -------
    pandas.DataFrame
        One record per row plus one dose record per participant with a ``dose``.

    Raises
    ------
    DataError
        If the table is invalid, an endpoint has no code, a participant has two doses or a
        column clashes with a NONMEM column.
    """
    layout = _loads(df.attrs.get("nonmem"))
    table, problems = check(df, case_check=False)
    if problems:
        raise DataError(problems)
    seq = table["row"].to_numpy(dtype="float64")
    if "row" in df:  # the input's own row numbers (e.g. the NONMEM file's), not its positions
        given = pd.to_numeric(df["row"], errors="coerce").to_numpy(dtype="float64")
        seq = given[seq.astype(int) - 1]
    time_unit = time_unit or layout.get("time_unit", "day")
    check_option("time_unit", time_unit, ("day", "hour"))
    if dvid_map is None and "dvid_map" in layout:
        dvid_map = {k: v for k, v in layout["dvid_map"]}
    inverse = {v: k for k, v in _dvid_map(dvid_map).items()}
    dvid_col = (layout.get("dvid_column") or "DVID") if "endpoint" in table else None
    fill = {k: (np.nan if v is None else v) for k, v in layout.get("fill", {}).items()}

    def nm_time(days):
        return np.round(np.asarray(days, dtype="float64") * _HOURS, 9) if time_unit == "hour" \
            else np.asarray(days, dtype="float64")

    k = len(table)
    mdv = table["mdv"].to_numpy() if "mdv" in table else np.zeros(k, dtype="int64")
    dv = table["dv"]
    if "nm_dv" in table:
        dv = table["nm_dv"].where(table["nm_dv"].notna(), dv)
    rec: dict[str, np.ndarray] = {
        "ID": table["id"].to_numpy(dtype=object), "TIME": nm_time(table["time"]),
        "DV": dv.to_numpy(), "MDV": mdv,
        "EVID": table["evid"].to_numpy() if "evid" in table else np.where(mdv == 1, 2, 0),
        "AMT": np.full(k, fill.get("AMT", 0.0), dtype="float64"),
    }
    if dvid_col:
        ep = table["endpoint"]
        unknown = sorted(set(ep[ep.notna() & ~ep.isin(list(inverse))].astype(str)))
        if unknown:
            raise DataError([f"endpoint {e!r} has no {dvid_col} code in dvid_map={inverse!r}; "
                             f"fix: pass dvid_map={{<code>: {e!r}, ...}}" for e in unknown])
        rec[dvid_col] = ep.map(inverse).astype("float64").fillna(
            fill.get(dvid_col, np.nan)).to_numpy()
    rec["CENS"] = table["cens"].to_numpy()
    rec["BLQ"] = (table["cens"] == 1).astype("int64").to_numpy()
    for ours, name in (("lloq", "LLOQ"), ("uloq", "ULOQ"), ("limit", "LIMIT")):
        if ours in table:
            rec[name] = table[ours].to_numpy()
    passthrough = [c for c in table.columns if c not in OURS]
    clash = [c for c in passthrough if c in rec]
    if clash:
        raise DataError([f"column {c!r} clashes with the NONMEM column to_nonmem writes; fix: "
                         "rename or drop it" for c in clash])
    for c in passthrough:
        rec[c] = table[c].to_numpy(dtype=object)
    if layout.get("columns"):
        columns = [c for c in layout["columns"] if c in rec or c in NONMEM_COLUMNS]
        columns += [c for c in passthrough if c not in columns]
    else:
        columns = ["ID", "TIME", "DV", "MDV", "EVID", "AMT", *([dvid_col] if dvid_col else []),
                   "CENS", *[c for c in ("LLOQ", "ULOQ", "LIMIT") if c in rec], *passthrough]
    doses, dose_seq, verbatim = _dose_records(table, layout, columns, rec, dvid_col, nm_time)
    values = {c: np.concatenate([np.asarray(rec.get(c, np.full(k, np.nan)), dtype=object),
                                 np.array([d.get(c, np.nan) for d in doses], dtype=object)])
              for c in columns}
    seq_all = np.concatenate([seq, np.asarray(dose_seq, dtype="float64")])
    if layout and verbatim and _is_file_order(seq_all, layout.get("records")):
        order = np.argsort(seq_all, kind="stable")  # the file's own record order
    else:
        ids = pd.Series(values["ID"]).astype(table["id"].dtype) if k else pd.Series([], dtype=float)
        kind = np.concatenate([np.ones(k), np.zeros(len(doses))])  # dose first at equal times
        time = np.asarray(values["TIME"], dtype="float64")
        order = np.lexsort((np.nan_to_num(seq_all, nan=np.inf), kind, time, _sort_codes(ids)))
    dtypes = layout.get("dtypes", {})
    out = {}
    for c in columns:
        default = ("int64" if c in _INT else "float64") if c in NONMEM_COLUMNS[1:] else None
        if c == "ID" or c in passthrough:
            default = str(table["id" if c == "ID" else c].dtype)
        out[c] = _cast(values[c][order], dtypes.get(c, default))
    return pd.DataFrame(out)


def _is_file_order(seq: np.ndarray, records: object) -> bool:
    """Whether ``seq`` numbers every record of the original file exactly once."""
    return isinstance(records, int) and seq.size == records and \
        np.array_equal(np.sort(seq), np.arange(1, records + 1))


def _dose_records(table, layout, columns, rec, dvid_col, nm_time):
    """Return (dose records as dicts, their sequence numbers, all-verbatim flag)."""
    if "dose" not in table:
        return [], [], True
    keys = ["id", "dose"] + (["dose_time"] if "dose_time" in table else [])
    given = table.loc[table["dose"].notna(), keys].drop_duplicates()
    conflict = given["id"][given["id"].duplicated()].unique()
    if len(conflict):
        raise DataError([f"participant {fmt(i)} has more than one dose or dose_time; fix: one "
                         "assigned dose (and infusion time) per participant" for i in conflict])
    stored: dict = {}
    for r in layout.get("dose_records", []):
        stored.setdefault(r.get("ID"), []).append(r)
    other = [c for c in columns if c in table.columns and c not in OURS]
    first = table.drop_duplicates("id").set_index("id")[other]
    varies = table.groupby("id", sort=False)[other].nunique(dropna=False) > 1
    first = first.astype(object).mask(varies.reindex(first.index))  # per-participant constants
    doses, seq, verbatim = [], [], True
    for row in given.itertuples(index=False):  # one per participant
        dose_time = float(getattr(row, "dose_time", 0.0)) if "dose_time" in table else 0.0
        t = float(nm_time(dose_time))
        match = [r for r in stored.get(_py(row.id), []) if r.get("AMT") == row.dose
                 and r.get("TIME") is not None and math.isclose(r["TIME"], t, abs_tol=1e-9)]
        if match:
            doses.append({c: (np.nan if v is None else v) for c, v in match[0].items()})
            seq.append(match[0].get("__row__", np.nan))
            continue
        verbatim = False
        d = {c: first.at[row.id, c] if c in first.columns else np.nan for c in columns}
        d.update({"ID": row.id, "TIME": t, "DV": 0.0, "MDV": 1, "EVID": 1, "AMT": row.dose,
                  "CENS": 0, "BLQ": 0, "LLOQ": np.nan, "ULOQ": np.nan, "LIMIT": np.nan})
        if dvid_col:
            d[dvid_col] = 0 if dvid_col == "DVID" else 1
        doses.append(d)
        seq.append(np.nan)
    return doses, seq, verbatim


def _cast(values: np.ndarray, dtype: str | None) -> pd.Series:
    s = pd.Series(values, dtype=object)
    if dtype is None:
        return s.infer_objects()
    try:
        target = pd.api.types.pandas_dtype(dtype)
    except TypeError:
        return s.infer_objects()
    if target.kind in "iuf":
        num = pd.to_numeric(s, errors="coerce")
        if target.kind in "iu" and not (num.notna().all() and (num % 1 == 0).all()):
            return num.astype("float64")
        return num.astype(target)
    return s.astype(target)
