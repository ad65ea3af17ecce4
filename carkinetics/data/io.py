"""Reading and writing data tables: CSV, Parquet and NONMEM-style files.

:func:`read_data` always validates (:func:`carkinetics.data.validate`), and its errors name
the file. :func:`write_data` writes to a temporary file in the target folder and renames it
into place, so an interrupted write never leaves a half-written file.

NONMEM-style tables
-------------------
:func:`from_nonmem` / :func:`read_nonmem` read a table with the upper-case columns ID, TIME
and DV and any of MDV, EVID, AMT, CMT, DVID, CENS, LIMIT, BLQ, LLOQ (and ULOQ);
:func:`to_nonmem` / :func:`write_nonmem` write one. In files, ``.`` means missing.

==========================  =====================================================================
NONMEM                      carkinetics table
==========================  =====================================================================
ID                          ``id`` (any type; NONMEM itself needs numbers)
TIME                        ``time`` in days; ``time_unit="hour"`` divides by 24 on reading and
                            multiplies by 24 (rounded to 1e-9 h) on writing
DV                          ``dv``; on a censored record ``dv`` becomes the limit (see CENS)
dose record: EVID = 1 or 4  not a row: AMT (CAR-T cells/kg) becomes ``dose`` on every row of that
(or, without EVID, AMT > 0  participant; one dose record per participant. A dose away from TIME 0
with MDV = 1)               also gives ``dose_time`` (days). :func:`to_nonmem` recreates the record
                            at its time, before the records at the same time
MDV = 1 or EVID = 2, 3      kept as a row with ``mdv = 1`` (and ``evid``, when the file has EVID);
(no dose)                   ``dv`` may be missing; exempt from the observation checks
MDV, EVID on other rows     derived: 0 on observation rows
AMT on other rows           must be 0 or missing
DVID (or CMT without DVID)  ``endpoint`` through ``dvid_map`` (default {1: "car_qpcr",
                            2: "car_flow"}); with DVID, CMT passes through as a column ``CMT``
CENS                        ``cens`` (0, 1 below LLOQ, -1 above ULOQ)
BLQ                         ``cens = 1`` where BLQ = 1 (must agree with CENS when both exist)
LLOQ / ULOQ                 ``lloq`` / ``uloq``. Without an LLOQ column a BLQ record's DV is its
                            LLOQ (so DV = 0 without LLOQ is an error); likewise ULOQ
LIMIT                       ``limit``
censored DV                 a BLQ record may carry DV = 0, LLOQ/2 or LLOQ: it is read as
                            ``dv = lloq`` (documented conversion) and the file's DV is kept in
                            ``nm_dv`` (only on rows where it differed; column absent otherwise)
other columns               passed through with their names and values
==========================  =====================================================================

The layout (column names, order and dtypes, ``dvid_map``, ``time_unit``, the dose records
verbatim and filler values) is kept in ``table.attrs["nonmem"]`` (a JSON string, cheap
for pandas to copy along) and each record's number
in ``row``, so ``to_nonmem(from_nonmem(nm))`` and ``write_nonmem(read_nonmem(f))``
reproduce the original exactly: same records in the same order, same columns, values and
dtypes, also after the table has been re-sorted. ``attrs`` survive Parquet but not CSV, and
our CSV/Parquet files do not store ``row``: a table read back from them is written with the
same records and values in canonical order (below), or, without ``attrs``, in the
canonical layout: ID TIME DV MDV EVID AMT DVID CENS [LLOQ ULOQ LIMIT] then the other
columns; records sorted by ID and TIME with the dose record first at its time; dose
records DV = 0, MDV = 1, EVID = 1, DVID = 0, CENS = 0, missing limits and, in other
columns, the participant's value where it is the same on all its rows; records with
``mdv = 1`` get EVID = 2. Limits of exactness: a BLQ record whose DV is missing is written
back with DV = LLOQ; hours are rounded to 1e-9 h; non-dose records whose AMT (or, on
``mdv`` rows without an endpoint, DVID) mixes 0 and missing are written with the first
record's filler.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from carkinetics._atomic import atomic_write
from carkinetics._validation import check_option
from carkinetics.data import _text
from carkinetics.data._nonmem import DEFAULT_DVID_MAP, NONMEM_COLUMNS, from_nonmem, to_nonmem
from carkinetics.data.schema import COLUMN_ORDER, NUMERIC
from carkinetics.data.validate import validate
from carkinetics.exceptions import DataError

__all__ = [
    "read_data",
    "write_data",
    "read_nonmem",
    "write_nonmem",
    "from_nonmem",
    "to_nonmem",
    "NONMEM_COLUMNS",
    "DEFAULT_DVID_MAP",
]

_FORMATS = ("csv", "parquet", "nonmem")
_SUFFIX = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_LEADING_ZERO = r"\s*[+-]?0[0-9]"


def _looks_nonmem(columns) -> bool:
    names = [str(c) for c in columns]
    return all(c in names for c in ("ID", "TIME", "DV")) and "id" not in names


def _nonmem_header(path: Path) -> tuple[int, str | None, list[str]]:
    """Return (lines to skip, separator, column names) of a NONMEM-style text file."""
    lines = _text.decode(path).splitlines()
    first = lines[0] if lines else ""
    skip = 1 if first.strip().upper().startswith("TABLE NO") else 0
    header = (lines[1] if len(lines) > 1 else "") if skip else first
    sep = "," if "," in header else r"\s+"
    return skip, sep, [c.strip() for c in re.split(sep, header.strip())]


def read_nonmem(path: str | os.PathLike, *, dvid_map: Mapping[int, str] | None = None,
                time_unit: str = "day") -> pd.DataFrame:
    """Read a NONMEM-style file (comma- or space-separated) into a validated table.

    Parameters
    ----------
    path : str or path-like
        The file; a first line ``TABLE NO. n`` (NONMEM $TABLE output) is skipped and ``.``
        means missing.
    dvid_map : mapping of int to str, optional
        DVID (or CMT) code -> endpoint; default ``{1: "car_qpcr", 2: "car_flow"}``.
    time_unit : {"day", "hour"}, default "day"
        Unit of TIME.

    Returns
    -------
    pandas.DataFrame
        The validated table, with the file's layout in ``attrs["nonmem"]`` (see the module
        docstring for the mapping).

    Raises
    ------
    DataError
        Listing every problem, each with the file, row (1 = first record), column and fix.
    """
    path = Path(path)
    skip, sep, _ = _nonmem_header(path)
    nm = _text.read_csv(path, sep=None if sep == "," else sep, skip=skip, na_values=["."],
                        skipinitialspace=True)
    return from_nonmem(nm, dvid_map=dvid_map, time_unit=time_unit, source=str(path))


def write_nonmem(df: pd.DataFrame, path: str | os.PathLike, *,
                 dvid_map: Mapping[int, str] | None = None, time_unit: str | None = None) -> Path:
    """Write a table as a comma-separated NONMEM-style file (missing values as ``.``).

    Parameters
    ----------
    df : pandas.DataFrame
        A carkinetics table (validated first).
    path : str or path-like
        Target file; written atomically.
    dvid_map : mapping of int to str, optional
        DVID code -> endpoint; default the table's own (``attrs``) or
        ``{1: "car_qpcr", 2: "car_flow"}``.
    time_unit : {"day", "hour"}, optional
        Unit of TIME; default the table's own or ``"day"``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    nm = to_nonmem(df, dvid_map=dvid_map, time_unit=time_unit)
    path = Path(path)
    atomic_write(path, lambda tmp: nm.to_csv(tmp, index=False, na_rep="."))
    return path


def _read_csv(path: Path) -> pd.DataFrame:
    """Read a CSV, typing each column; no value is changed on the way in.

    A column is numeric when every non-empty cell is a number (or an NA token such as
    ``NA``, ``nan``, ``NULL`` that R, pandas and spreadsheets write for a missing number),
    text otherwise. Text keeps every cell exactly as written (``"007"``, ``"NA"``,
    ``" a "``), except that an empty cell is missing; in the schema's numeric columns and in
    ``id`` the NA tokens mean missing.
    """
    raw = _text.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    for c in raw.columns:
        text = raw[c]
        token = text.isin(_text.NA_TOKENS) & text.notna()
        num = pd.to_numeric(text.where(~token), errors="coerce")
        numeric = bool((num.notna() | text.isna() | token).all())
        if c in NUMERIC or c == "id":
            raw[c] = text = text.where(~token)
        typed = num.notna().any() or text.isna().all()  # an all-"NA" text column stays text
        if numeric and (c in NUMERIC or (typed and
                                         not text.str.match(_LEADING_ZERO, na=False).any())):
            raw[c] = num.astype("float64") if num.isna().all() else num
    return raw


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except IsADirectoryError:
        raise
    except (OSError, ValueError) as exc:  # pyarrow.ArrowInvalid is a ValueError
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError([f"{path}: the file cannot be read as Parquet ({msg}); fix: write it with "
                         "write_data(table, 'x.parquet') or pandas DataFrame.to_parquet, or "
                         "give a .csv file."], source=str(path)) from None


def read_data(path: str | os.PathLike, *, format: str | None = None,
              dvid_map: Mapping[int, str] | None = None, time_unit: str = "day") -> pd.DataFrame:
    """Read and validate a data file.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``, ``.parquet``/``.pq`` or NONMEM-style file.
    format : {"csv", "parquet", "nonmem"}, optional
        Default: from the suffix; a file whose columns are NONMEM's upper-case ID, TIME,
        DV (and no ``id``) is read as NONMEM (:func:`read_nonmem`).
    dvid_map : mapping of int to str, optional
        DVID code -> endpoint for NONMEM files.
    time_unit : {"day", "hour"}, default "day"
        Unit of TIME in NONMEM files.

    Returns
    -------
    pandas.DataFrame
        The validated table (see :func:`carkinetics.data.validate`). CSV columns are typed
        as pandas would, except that a text column with a leading zero ("007") stays text.

    Raises
    ------
    DataError
        Listing every problem, each naming the file.
    ValueError
        If the format is unknown.
    """
    path = Path(path)
    if format is not None:
        check_option("format", format, _FORMATS)
    fmt = format or _SUFFIX.get(path.suffix.lower())
    if fmt is None:
        try:
            nonmem = path.is_file() and _looks_nonmem(_nonmem_header(path)[2])
        except DataError:  # not a text table: the suffix is the better message
            nonmem = False
        if nonmem:
            fmt = "nonmem"
        else:
            raise ValueError(f"Unknown format of {str(path)!r}: suffix {path.suffix!r} is not "
                             f"one of {list(_SUFFIX)}; pass format= one of {list(_FORMATS)}.")
    if fmt == "csv" and format is None and _looks_nonmem(
            _text.header_and_first(_text.decode(path), str(path))):
        fmt = "nonmem"
    if fmt == "nonmem" and path.suffix.lower() not in (".parquet", ".pq"):
        return read_nonmem(path, dvid_map=dvid_map, time_unit=time_unit)
    raw = _read_parquet(path) if fmt in ("parquet", "nonmem") else _read_csv(path)
    if fmt == "nonmem" or (format is None and _looks_nonmem(raw.columns)):
        return from_nonmem(raw, dvid_map=dvid_map, time_unit=time_unit, source=str(path))
    return validate(raw, source=str(path))


def _has_carriage_return(table: pd.DataFrame) -> bool:
    if any("\r" in str(c) for c in table.columns):
        return True
    return any(table[c].map(lambda v: isinstance(v, str) and "\r" in v).any()
               for c in table.columns if not pd.api.types.is_numeric_dtype(table[c]))


def write_data(df: pd.DataFrame, path: str | os.PathLike, *, check: bool = True) -> Path:
    """Write a table to CSV or Parquet (by suffix), atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    path : str or path-like
        Target ``.csv``, ``.parquet`` or ``.pq`` file. The data go to a temporary file in the
        same folder, which is then renamed onto ``path``.
    check : bool, default True
        Validate first (raising before anything is written) and write the validated table
        (sorted, ``cens`` filled). With False the rows are written as given.

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    Columns follow :data:`carkinetics.data.schema.COLUMN_ORDER`, then the others in their
    order. The derived ``row`` column is not written: it is recomputed on reading. Parquet
    keeps ``df.attrs`` (e.g. a NONMEM layout); CSV does not.
    """
    path = Path(path)
    fmt = _SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"Invalid path={str(path)!r}: the suffix must be one of {list(_SUFFIX)} "
                         "(use write_nonmem for NONMEM files).")
    table = validate(df, source=f"data for {path}") if check else df
    table = table.drop(columns="row", errors="ignore")
    cols = [c for c in COLUMN_ORDER if c in table] + [c for c in table if c not in COLUMN_ORDER]
    table = table[cols]
    if fmt == "csv":
        # pandas leaves a text cell with a lone carriage return unquoted, which every CSV
        # reader then splits into two lines: quote all text in that case
        quoting = csv.QUOTE_NONNUMERIC if _has_carriage_return(table) else csv.QUOTE_MINIMAL
        atomic_write(path, lambda tmp: table.to_csv(tmp, index=False, quoting=quoting))
    else:
        atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return path
