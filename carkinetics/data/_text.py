"""Reading delimited text files safely (private).

Every reader of a user's CSV (or NONMEM-style) file goes through :func:`decode` and
:func:`read_csv`, so that a file that cannot be read gives one
:class:`~carkinetics.exceptions.DataError` naming the file, the line and the fix, never a
pandas/codec exception, and so that no value is silently changed on the way in:

* the text must be UTF-8 (a UTF-8 byte-order mark is dropped) or UTF-16 with its
  byte-order mark (as Excel's "Unicode text" writes it); other bytes (e.g. Latin-1 ``é``)
  are refused with the line they are on, never guessed;
* an empty file, a header naming a column twice (pandas would rename the second ``dv`` to
  ``dv.1``) or an empty column name is refused;
* a data line with more fields than the header is refused (pandas would silently turn the
  leading fields into an index, shifting every value of that line);
* unbalanced quotes and other tokenizer errors are reported with their line.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from pathlib import Path

import pandas as pd

from carkinetics.exceptions import DataError

#: Cell texts pandas reads as missing by default (R writes ``NA``, Python ``nan``/``None``).
NA_TOKENS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
_UTF8_FIX = ("fix: save the file as UTF-8 (e.g. Excel 'CSV UTF-8'; from Latin-1: "
             "iconv -f latin1 -t utf-8 in > out).")


def _error(lines: list[str], source: str) -> DataError:
    """A DataError whose every line starts with the file name (as the validators' lines do)."""
    return DataError([f"{source}: {line}" for line in lines], source)


def decode(path: str | os.PathLike) -> str:
    """Return the text of a file (UTF-8, or UTF-16 with a byte-order mark).

    Raises
    ------
    DataError
        If the file is not UTF-8/UTF-16 text, or is empty.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise _error([f"{path} is a folder, not a file; fix: name the data file."],
                        str(path)) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    else:
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        bad = data[exc.start:exc.start + 1]
        what = f"byte 0x{bad.hex()}" if bad else "the end of the file"
        raise _error([f"line {line}: {what} is not {encoding.upper().replace('-SIG', '')} "
                         f"text ({exc.reason}); {_UTF8_FIX}"], str(path)) from None
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise _error([f"line {line}: a NUL character; this is not a text table (a "
                         f"spreadsheet or binary file?); {_UTF8_FIX}"], str(path))
    if not text.strip():
        raise _error(["the file is empty; fix: write a header line (e.g. id,time,dv) and "
                         "one line per row."], str(path))
    return text


def check_header(names: list[str], source: str) -> None:
    """Raise DataError if a column name is empty or repeated."""
    problems = []
    for i, name in enumerate(names):
        if name.strip() == "":
            problems.append(f"column {i + 1} of the header has no name; fix: name it, or remove "
                            "the column.")
    seen: dict[str, int] = {}
    for name in names:
        seen[name] = seen.get(name, 0) + 1
    for name, k in seen.items():
        if k > 1 and name.strip():
            problems.append(f"column {name!r} appears {k} times in the header; fix: keep one "
                            "column of that name (or rename the others).")
    if problems:
        raise _error(problems, source)


def _lines(text: str, sep: str | None):
    """Yield (line number, fields) of the non-blank lines (sep None: CSV quoting rules)."""
    if sep is None:
        reader = csv.reader(io.StringIO(text))
        try:
            for fields in reader:
                if fields and any(f.strip() for f in fields):
                    yield reader.line_num, fields
        except csv.Error:
            return  # pandas reports the quoting problem with its line below
    else:
        for k, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield k, re.split(sep, line.strip())


def header_and_first(text: str, source: str, sep: str | None = None,
                     skip: int = 0) -> list[str]:
    """Check the header (names) and the first data line (field count); return the names."""
    lines = _lines(text, sep)
    for _ in range(skip):
        next(lines, None)
    first = next(lines, None)
    if first is None:
        raise _error(["the file has no header line; fix: write a header (e.g. id,time,dv)."],
                        source)
    names = [f.strip() for f in first[1]] if sep is not None else first[1]
    check_header(names, source)
    data = next(lines, None)
    if data is not None and len(data[1]) > len(names):
        raise _error([f"line {data[0]} has {len(data[1])} fields but the header has "
                         f"{len(names)} columns; fix: remove the extra fields (a separator "
                         "inside a value needs quotes), or name every column in the header."],
                        source)
    return names


def read_csv(path: str | os.PathLike, *, sep: str | None = None, skip: int = 0,
             **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` of a checked, decoded file; every failure is a DataError.

    ``sep`` None means a comma with CSV quoting; otherwise a regular expression. ``skip``
    lines are skipped before the header. ``kwargs`` go to :func:`pandas.read_csv`.
    """
    source = str(path)
    text = decode(path)
    header_and_first(text, source, sep, skip)
    try:
        return pd.read_csv(io.StringIO(text), sep="," if sep is None else sep, skiprows=skip,
                           **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        msg = str(exc).strip().replace("\n", " ")
        where = re.search(r"line (\d+)", msg)
        at = f"line {int(where.group(1)) + skip}: " if where else ""
        raise _error([f"{at}the file cannot be read as a table ({msg}); fix: check the "
                         "separators and quotes on that line (every line needs as many fields "
                         "as the header)."], source) from None
