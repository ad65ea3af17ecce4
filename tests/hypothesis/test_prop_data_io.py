"""Property tests of the data-table readers and validator (carkinetics.data).

Every file either loads with every value exactly as written (and no row lost), or raises
DataError whose lines name the file; no other exception, no silently changed value.
"""

from __future__ import annotations

import codecs
import math

import numpy as np
import pandas as pd
import pytest
from _props import (
    NA_TOKENS,
    any_float,
    examples,
    finite,
    is_number_text,
    odd_text,
    positive,
    same_cell,
    same_values,
)
from hypothesis import assume, event, given
from hypothesis import strategies as st

from carkinetics.data import read_data, read_nonmem, validate, write_data
from carkinetics.data.schema import NUMERIC
from carkinetics.exceptions import DataError

_NA = set(NA_TOKENS) | {""}


def _text_ids():
    return odd_text.filter(lambda s: s not in _NA and s.strip() not in _NA
                           and not is_number_text(s))


@st.composite
def valid_tables(draw):
    """A valid long table with extreme values, odd text, optional columns, any column order."""
    n_id = draw(st.integers(1, 4))
    text_ids = draw(st.booleans())
    ids = draw(st.lists(_text_ids() if text_ids else st.integers(-2**62, 2**62),
                        min_size=n_id, max_size=n_id, unique=True))
    with_endpoint = draw(st.booleans())
    with_lloq = draw(st.booleans())
    rows = []
    for pid in ids:
        dose = draw(positive)
        times = draw(st.lists(finite, min_size=1, max_size=5, unique=True))
        for t in times:
            lloq = draw(positive) if with_lloq else np.nan
            cens = draw(st.integers(0, 1)) if with_lloq else 0
            if cens:
                dv = lloq
            else:
                dv = draw(st.floats(min_value=lloq if with_lloq else 0.0, max_value=1.7e308))
            row = {"id": pid, "time": t, "dv": dv, "dose": dose,
                   "note": draw(st.one_of(st.none(), odd_text.filter(lambda s: s != ""))),
                   "age": draw(st.one_of(st.just(np.nan), finite))}
            if with_endpoint:
                row["endpoint"] = "car_qpcr"
            if with_lloq:
                row["lloq"], row["cens"] = lloq, cens
            rows.append(row)
    df = pd.DataFrame(rows)
    # the note column must stay text (a column of numbers only would be typed numeric)
    # (numbers and NA tokens only: documented as a number column with missing cells)
    notes = df["note"].dropna()
    assume(notes.empty or not notes.map(lambda s: is_number_text(s) or s in _NA).all())
    order = draw(st.permutations(list(df.columns)))
    return df[order]


def _compare(back: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert sorted(back.columns) == sorted(expected.columns)
    assert len(back) == len(expected)
    for c in expected.columns.drop("row"):  # row renumbers the written file (documented)
        assert same_values(back[c], expected[c]), (c, back[c].tolist(), expected[c].tolist())
        if c in NUMERIC and c != "cens":
            assert back[c].dtype == "float64"


@examples(25)
@given(df=valid_tables(), suffix=st.sampled_from([".csv", ".parquet"]))
def test_valid_tables_round_trip_exactly(df, suffix, tmp_path_factory):
    path = tmp_path_factory.mktemp("rt") / f"t{suffix}"
    expected = validate(df)
    back = read_data(write_data(df, path))
    _compare(back, expected)
    # and the note column is text in the file and back
    if df["note"].notna().any():
        assert back["note"].dropna().map(type).eq(str).all()


# ------------------------------------------------------------------ arbitrary tables

_NAMES = ["id", "time", "dv", "endpoint", "unit", "lloq", "uloq", "cens", "limit", "dose",
          "weight", "mdv", "visit", "disease", "row", "ID", "LLOQ", "Value", "x", "é", " dv",
          "1"]
_CELL = st.one_of(any_float, st.integers(-10**6, 10**6), st.none(), odd_text,
                  st.sampled_from(["car_qpcr", "igg", "copies/ug", "g/L", "0", "1", "-1",
                                   "1e308", "1e-320", "1e400", "inf"]))


_KINDS = {
    "float": any_float,
    "finite": finite,
    "positive": positive,
    "int": st.integers(-2**63, 2**63 - 1),
    "small": st.integers(0, 3),
    "text": st.one_of(st.none(), odd_text),
    "mixed": _CELL,
}
#: Kinds a column of this name gets more often, so that many tables load.
_LIKELY = {"id": "small", "time": "finite", "dv": "positive", "dose": "positive",
           "weight": "positive", "cens": "small", "mdv": "small"}


@st.composite
def arbitrary_tables(draw):
    """Tables of arbitrary columns (schema names, case variants, junk), each column of one
    kind (floats with NaN/inf, huge/tiny, int64 extremes, odd text, or mixed cells)."""
    n = draw(st.integers(0, 6))
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=6, unique=True))
    if draw(st.booleans()):
        names = list(dict.fromkeys(["id", "time", "dv", *names]))
    data = {}
    for c in names:
        likely = _LIKELY.get(c)
        kind = likely if likely and draw(st.integers(0, 3)) else draw(st.sampled_from(
            list(_KINDS)))
        if c == "time" and kind == "finite":  # distinct times: duplicates are errors
            data[c] = draw(st.lists(finite, min_size=n, max_size=n, unique=True))
        else:
            data[c] = [draw(_KINDS[kind]) for _ in range(n)]
    df = pd.DataFrame(data)
    return df.infer_objects() if draw(st.booleans()) else df.astype(object)


def _as_written(x) -> object:
    """What a cell becomes as CSV text (pandas writes NaN/None as an empty cell)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return x if isinstance(x, str) else repr(x) if isinstance(x, float) else str(x)


def _read_back_ok(orig, back, column: str) -> bool:
    """A cell read back from CSV keeps the value written (documented typing only)."""
    text = _as_written(orig)
    if text is None or text == "":
        return same_cell(back, np.nan)
    if isinstance(back, str):
        return back == text  # text keeps every character
    if pd.isna(back):
        # a number-less NA token means missing in numeric columns and id
        return text in _NA and (column in NUMERIC or column == "id" or True)
    num = pd.to_numeric(pd.Series([text]), errors="coerce")[0]
    return bool(num == back)  # numbers exactly (also text such as "1e5" in a number column)


@examples(40)
@given(df=arbitrary_tables())
def test_arbitrary_csv_loads_exactly_or_raises_data_error(df, tmp_path_factory):
    path = tmp_path_factory.mktemp("arb") / "t.csv"
    df.to_csv(path, index=False)
    try:
        out = read_data(path)
    except DataError as err:
        event("DataError")
        assert err.problems and all(line.startswith(f"{path}: ") for line in err.problems)
        return
    event("loaded")
    assert len(out) == len(df)
    out = out.sort_values("row").reset_index(drop=True)
    assert out["row"].tolist() == list(range(1, len(df) + 1))
    for c in df.columns:
        if c == "row":  # reserved: recomputed
            continue
        for orig, back in zip(df[c].tolist(), out[c].tolist(), strict=True):
            assert _read_back_ok(orig, back, c), (c, orig, back)


@examples(40)
@given(df=arbitrary_tables())
def test_validate_in_memory_keeps_values_or_raises_data_error(df):
    try:
        out = validate(df, source="mem")
    except DataError as err:
        event("DataError")
        assert err.problems and all(line.startswith("mem: ") for line in err.problems)
        return
    event("valid")
    out = out.sort_values("row").reset_index(drop=True)
    assert len(out) == len(df)
    for c in df.columns:
        if c in ("row", "cens", "mdv"):
            continue
        if c in NUMERIC:
            want = pd.to_numeric(df[c], errors="raise").astype("float64")
            assert same_values(out[c], want), c
        else:
            assert same_values(out[c], df[c]), c


@examples(20)
@given(df=arbitrary_tables())
def test_arbitrary_parquet_loads_exactly_or_raises_data_error(df, tmp_path_factory):
    path = tmp_path_factory.mktemp("pq") / "t.parquet"
    try:
        df.to_parquet(path, index=False)
    except (ValueError, TypeError, OverflowError, NotImplementedError) as exc:
        event(f"pyarrow cannot write it: {type(exc).__name__}")
        assume(False)
    except Exception as exc:  # pyarrow's own exception types (ArrowInvalid is a ValueError)
        event(f"pyarrow cannot write it: {type(exc).__name__}")
        assume(False)
    stored = pd.read_parquet(path)
    try:
        out = read_data(path)
    except DataError as err:
        event("DataError")
        assert all(line.startswith(f"{path}: ") for line in err.problems)
        return
    event("loaded")
    out = out.sort_values("row").reset_index(drop=True)
    assert len(out) == len(stored)
    for c in stored.columns:
        if c in ("row", "cens", "mdv"):
            continue
        want = stored[c]
        if c in NUMERIC:
            want = pd.to_numeric(want).astype("float64")
        assert same_values(out[c], want), c


# ------------------------------------------------------------------ bytes and encodings

_GOOD = ("id,time,dv,note\n" "1,0,1.5,caf\u00e9\n" "1,7,250.0,\u65e5\u672c\n" "2,0.5,1e-320,x\n")


@examples(30)
@given(encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be",
                                 "latin-1", "cp1252", "utf-32"]),
       cut=st.one_of(st.none(), st.integers(0, 120)),
       junk=st.one_of(st.none(), st.binary(min_size=1, max_size=8)),
       where=st.integers(0, 120))
def test_any_bytes_load_exactly_or_raise_data_error(encoding, cut, junk, where,
                                                    tmp_path_factory):
    text = _GOOD if encoding not in ("latin-1", "cp1252") else _GOOD.replace("\u65e5\u672c", "y")
    data = text.encode(encoding)
    if cut is not None:
        data = data[:cut]
    if junk is not None:
        data = data[:where] + junk + data[where:]
    path = tmp_path_factory.mktemp("bytes") / "t.csv"
    path.write_bytes(data)
    try:
        out = read_data(path)
    except DataError as err:
        event("DataError")
        assert all(line.startswith(f"{path}: ") for line in err.problems)
        return
    event(f"loaded {encoding}")
    # what loaded is exactly what the bytes say in the one encoding accepted for them
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        decoded = data.decode("utf-16")
    else:
        decoded = data.decode("utf-8-sig")
    ref = tmp_path_factory.mktemp("ref") / "t.csv"
    ref.write_text(decoded, encoding="utf-8")
    expected = read_data(ref)
    pd.testing.assert_frame_equal(out, expected)
    if cut is None and junk is None:
        assert out["dv"].tolist() == [1.5, 250.0, 1e-320]
        assert out["note"].tolist()[0] == ("caf\u00e9" if encoding not in ("latin-1",)
                                           else out["note"].tolist()[0])


@pytest.mark.parametrize(("content", "message"), [
    (b"", "the file is empty"),
    (b"\n\n  \n", "the file is empty"),
    ("id,time,dv\n1,0,caf\u00e9\n".encode("latin-1"), "line 2: byte 0xe9 is not UTF-8"),
    (b"id,time,dv,dv\n1,0,1,2\n", "column 'dv' appears 2 times"),
    (b"id,,dv\n1,0,1\n", "column 2 of the header has no name"),
    (b"id,time,dv\n1,0,1,5,6\n", "line 2 has 5 fields but the header has 3"),
    (b"id,time,dv\n1,0,1\n2,0,1,9\n", "cannot be read as a table"),
    (b'id,time,dv\n"1,0,1\n', "cannot be read as a table"),
    (b"id,time,dv\n1,0\x00,1\n", "NUL character"),
    ("id,time,dv\n1,0,1.5\n".encode("utf-16-le"), "NUL character"),
])
def test_unreadable_csv_files_are_data_errors(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        read_data(path)
    assert err.value.problems[0].startswith(f"{path}: ")


def test_utf16_with_bom_and_utf8_bom_load_the_same_values(tmp_path):
    text = "id,time,dv,note\n1,0,1.5,caf\u00e9\n"
    out = []
    for enc in ("utf-8", "utf-8-sig", "utf-16"):
        path = tmp_path / f"{enc}.csv"
        path.write_bytes(text.encode(enc))
        out.append(read_data(path))
    for o in out[1:]:
        pd.testing.assert_frame_equal(o, out[0])
    assert out[0]["note"].tolist() == ["caf\u00e9"] and list(out[0].columns)[0] == "id"


def test_text_cells_that_look_missing_are_kept_in_text_columns(tmp_path):
    df = pd.DataFrame({"id": [1, 2, 3], "time": [0.0, 0.0, 0.0], "dv": [1.0, 2.0, 3.0],
                       "disease": ["NA", "SLE", "None"], "flag": ["null", "null", "null"]})
    back = read_data(write_data(df, tmp_path / "t.csv"))
    assert back["disease"].tolist() == ["NA", "SLE", "None"]
    assert back["flag"].tolist() == ["null"] * 3
    # R's NA in a number column still means missing
    (tmp_path / "r.csv").write_text("id,time,dv,lloq,age\n1,0,5,NA,NA\n1,1,6,1,40\n")
    r = read_data(tmp_path / "r.csv")
    assert np.isnan(r["lloq"][0]) and r["age"].tolist()[1] == 40 and np.isnan(r["age"][0])


def test_parquet_that_is_not_parquet_is_a_data_error(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"id,time,dv\n1,0,1\n")
    with pytest.raises(DataError, match="cannot be read as Parquet"):
        read_data(path)


# ------------------------------------------------------------------ NONMEM files

_NM_NAMES = ["ID", "TIME", "DV", "MDV", "EVID", "AMT", "CMT", "DVID", "CENS", "BLQ", "LLOQ",
             "ULOQ", "LIMIT", "WT", "dv", "row", "dose"]
_NM_CELL = st.one_of(st.sampled_from([0, 1, 2, 4, -1, 0.5, 1e6, 1e308, 5e-324]), any_float,
                     st.none(), st.sampled_from([".", "a", "1e400", "NA"]))


@st.composite
def nonmem_frames(draw):
    n = draw(st.integers(0, 6))
    extra = draw(st.lists(st.sampled_from(_NM_NAMES[3:]), max_size=6, unique=True))
    names = ["ID", "TIME", "DV", *extra]
    order = draw(st.permutations(names))
    return pd.DataFrame({c: [draw(_NM_CELL) for _ in range(n)] for c in order}, dtype=object)


@examples(30)
@given(nm=nonmem_frames(), spaces=st.booleans(), table_line=st.booleans())
def test_arbitrary_nonmem_files_load_or_raise_data_error(nm, spaces, table_line,
                                                         tmp_path_factory):
    path = tmp_path_factory.mktemp("nm") / "nm.txt"
    text = nm.to_csv(index=False, sep=" " if spaces else ",", na_rep=".")
    assume(not spaces or "  " not in text)
    path.write_text(("TABLE NO.  1\n" if table_line else "") + text)
    try:
        out = read_nonmem(path)
    except DataError as err:
        event("DataError")
        assert err.problems
        return
    event("loaded")
    # every observation record is a row; ids kept
    kept = out["row"].to_numpy() - 1
    assert len(set(kept)) == len(kept) <= len(nm)
    ids = pd.read_csv(path, sep=r"\s+" if spaces else ",", skiprows=int(table_line),
                      na_values=["."])["ID"]
    assert same_values(out.sort_values("row")["id"], ids.iloc[np.sort(kept)])
