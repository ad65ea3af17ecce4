from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from carkinetics.data import read_data, validate, validate_file
from carkinetics.exceptions import DataError

DATA = Path(__file__).resolve().parent.parent / "data"
BAD = DATA / "bad"

# One fixture per problem: (file, the expected problem text after "<file>: ").
SINGLE = [
    ("non_numeric_dv.csv", "row 2, column 'dv': 'abc' is not a number; fix: enter the result as "
     "a number (a BLQ result is dv = lloq with cens = 1)"),
    ("blq_as_text.csv", "row 1, column 'dv': '<10' is not a number; fix: a result reported as "
     "<10 is below the LLOQ: write dv = lloq = 10 and cens = 1"),
    ("non_finite_dv.csv", "row 2, column 'dv': inf is not finite; fix: enter a finite number"),
    ("missing_time.csv", "row 4, column 'time': missing; fix: enter the days since the CAR-T "
     "infusion (negative before it)"),
    ("negative_dv.csv", "row 3, column 'dv': -2.5 is negative, impossible for endpoint 'igg'; "
     "fix: correct the value"),
    ("negative_lloq.csv", "row 3, column 'lloq': -1 is negative, impossible for endpoint 'igg'; "
     "fix: correct the LLOQ"),
    ("duplicate_rows.csv", "rows 2 and 4, columns 'id', 'time', 'endpoint': both are "
     "(101, 14, 'car_qpcr') (duplicate rows); fix: remove the repeated row, or correct its time "
     "or endpoint"),
    ("bad_cens.csv", "row 2, column 'cens': 2 is not a censoring code; fix: use 0 (quantified), "
     "1 (below LLOQ) or -1 (above ULOQ); empty means 0"),
    ("blq_without_lloq.csv", "row 1, column 'lloq': missing on a BLQ row (cens = 1); fix: give "
     "the sample's LLOQ in lloq, with dv = lloq"),
    ("alq_without_uloq.csv", "row 2, column 'uloq': missing on an above-ULOQ row (cens = -1), "
     "which needs a finite uloq; fix: give the sample's ULOQ in uloq, with dv = uloq"),
    ("blq_dv_not_lloq.csv", "row 1, column 'dv': 0 on a BLQ row (cens = 1) differs from its "
     "lloq 10; fix: set dv = lloq = 10 (a censored row stores its limit, never 0 or LLOQ/2)"),
    ("alq_dv_not_uloq.csv", "row 2, column 'dv': 5000 on an above-ULOQ row (cens = -1) differs "
     "from its uloq 1000000; fix: set dv = uloq = 1000000"),
    ("quantified_below_lloq.csv", "row 4, column 'dv': 4 is below lloq 10 on a quantified row "
     "(cens = 0); fix: mark it censored: cens = 1 and dv = lloq = 10"),
    ("quantified_above_uloq.csv", "row 2, column 'dv': 2500000 is above uloq 1000000 on a "
     "quantified row (cens = 0); fix: mark it censored: cens = -1 and dv = uloq = 1000000"),
    ("unknown_endpoint.csv", "row 3, column 'endpoint': 'IgG' is not a known endpoint; fix: use "
     "a name of carkinetics.data.ENDPOINTS. Did you mean 'igg'?"),
    ("bad_unit.csv", "row 3, column 'unit': 'mg/dl' is not a unit of endpoint 'igg'; fix: use "
     "one of ['g/L', 'mg/dL', 'mg/L'] (convert the values with carkinetics.data.convert). "
     "Did you mean 'mg/dL'?"),
    ("ck_without_dose.csv", "row 4, column 'dose': missing on a row of CAR-T kinetic endpoint "
     "'car_qpcr'; fix: enter the assigned dose in CAR-T cells/kg"),
    ("nonpositive_dose.csv", "row 2, column 'dose': 0 is not a positive dose; fix: enter the "
     "assigned dose in CAR-T cells/kg (e.g. 1e6)"),
    ("nonpositive_weight.csv", "row 4, column 'weight': -82 is not a positive weight; fix: enter "
     "the body weight in kg, or leave it empty"),
    ("no_dose_column.csv", "column 'dose' is missing but 2 rows (rows 1, 2) have CAR-T kinetic "
     "endpoints (car_qpcr) that need the assigned dose; fix: add a dose column in CAR-T "
     "cells/kg."),
    ("upper_case_column.csv", "column 'LLOQ': column names are lower case, so 'LLOQ' is not read "
     "as 'lloq'; fix: rename it to 'lloq'."),
]


@pytest.mark.parametrize(("name", "problem"), SINGLE, ids=[s[0] for s in SINGLE])
def test_each_problem_file(name, problem):
    path = BAD / name
    with pytest.raises(DataError) as err:
        validate_file(path)
    assert err.value.problems == [f"{path}: {problem}"]
    assert err.value.source == str(path)
    assert str(err.value) == f"1 problem found in {path}:\n  - {path}: {problem}"


def test_missing_required_columns_suggest_names():
    path = BAD / "missing_columns.csv"
    with pytest.raises(DataError) as err:
        validate_file(path)
    assert err.value.problems == [
        f"{path}: column 'id' (required) is missing; fix: add it. Found 'subject': rename it "
        "to 'id'.",
        f"{path}: column 'time' (required) is missing; fix: add it. Found 'day': rename it to "
        "'time'.",
        f"{path}: column 'dv' (required) is missing; fix: add it. Found 'value': rename it to "
        "'dv'.",
    ]


def test_nonmem_names_point_to_read_nonmem():
    path = BAD / "nonmem_names.csv"
    with pytest.raises(DataError) as err:
        read_data(path, format="csv")
    assert len(err.value.problems) == 3
    first = err.value.problems[0]
    assert first.startswith(f"{path}: column 'id' (required) is missing; fix: add it. "
                            "Found 'ID': rename it to 'id'.")
    assert "use read_nonmem(path)" in first and "rename ID, TIME, DV to id, time, dv" in first
    # Without format="csv" the same file is recognised as NONMEM and reads cleanly.
    assert read_data(path)["dv"].tolist() == [5.0, 50.0]


def test_many_problems_are_all_listed():
    path = BAD / "many_problems.csv"
    with pytest.raises(DataError) as err:
        validate_file(path)
    lines = [p.removeprefix(f"{path}: ") for p in err.value.problems]
    expected = {
        "row 1, column 'dv': 0 on a BLQ row",
        "row 2, column 'dv': 'abc' is not a number",
        "row 3, column 'endpoint': 'IgG' is not a known endpoint",
        "row 4, column 'unit': 'mg/dl' is not a unit of endpoint 'igg'",
        "row 5, column 'dv': -1 is negative",
        "row 6, column 'time': missing",
        "row 7, column 'cens': 2 is not a censoring code",
        "row 8, column 'dv': 5 is below lloq 10",
        "row 9, column 'dose': missing",
        "row 10, column 'dose': 0 is not a positive dose",
        "row 11, column 'weight': -1 is not a positive weight",
        "rows 11 and 12, columns 'id', 'time', 'endpoint': both are (103, 14, 'car_qpcr')",
        "row 13, column 'lloq': missing on a BLQ row",
    }
    assert len(lines) == len(expected) == 13
    for start in expected:
        assert sum(line.startswith(start) for line in lines) == 1, start
    assert all("; fix: " in line for line in lines)
    assert str(err.value).startswith(f"13 problems found in {path}:")


def test_more_than_fifty_of_one_kind_are_summarised():
    path = BAD / "sixty_non_numeric.csv"
    with pytest.raises(DataError) as err:
        validate_file(path)
    problems = err.value.problems
    assert len(problems) == 21
    assert [p.split(",")[0] for p in problems[:20]] == [f"{path}: row {r}" for r in range(1, 21)]
    assert problems[20] == (f"{path}: ... and 40 more rows with this problem in column 'dv' "
                            "(60 in all).")


def test_fifty_are_all_listed():
    df = pd.DataFrame({"id": 1, "time": np.arange(50.0), "dv": ["x"] * 50})
    with pytest.raises(DataError) as err:
        validate(df)
    assert len(err.value.problems) == 50


def test_good_file_keeps_rows_and_extra_columns():
    raw = pd.read_csv(DATA / "good.csv", dtype=str)
    t = read_data(DATA / "good.csv")
    assert len(t) == len(raw) == 9
    assert list(t.columns) == [*raw.columns, "row"]
    # sorted by id, endpoint, time; row is the input data row
    assert t["row"].tolist() == [4, 2, 1, 3, 5, 6, 8, 7, 9]
    back = t.sort_values("row").reset_index(drop=True)
    assert back["dv"].tolist() == [52000, 10, 850, 0.012, 10, 1e6, 1.2, 1, 15000]
    assert back["site"].tolist() == ["007"] * 4 + ["012"] * 4 + ["003"]  # leading zeros kept
    assert back["age"].tolist() == [34] * 4 + [51] * 4 + [45]
    assert back["visit"].isna().tolist() == [False] * 5 + [True] + [False] * 3
    assert back["cens"].tolist() == [0, 1, 0, 0, 1, -1, 0, 1, 0]  # empty cens -> 0
    assert t["time"].dtype == "float64" and t["cens"].dtype == "int64"
    assert t["dose"].dtype == "float64" and t["id"].dtype == "int64"


def test_validate_returns_new_table_and_keeps_input():
    df = pd.DataFrame({"id": ["b", "a", "a"], "time": [1, 7, 0], "dv": ["3", "2", "1"],
                       "covar": [True, False, True]}, index=[10, 20, 30])
    before = df.copy()
    out = validate(df)
    pd.testing.assert_frame_equal(df, before)
    assert out.index.tolist() == [0, 1, 2]
    assert out["id"].tolist() == ["a", "a", "b"]
    assert out["time"].tolist() == [0.0, 7.0, 1.0]
    assert out["dv"].tolist() == [1.0, 2.0, 3.0]
    assert out["row"].tolist() == [3, 2, 1]
    assert out["covar"].tolist() == [True, False, True]
    assert out["cens"].tolist() == [0, 0, 0]
    assert "endpoint" not in out


def test_sort_is_stable_and_by_endpoint():
    df = pd.DataFrame({"id": [1, 1, 1, 1], "time": [5.0, 5.0, 1.0, 5.0],
                       "endpoint": ["igg", "car_qpcr", "igg", "iga"], "dv": [1.0, 2, 3, 4],
                       "dose": [np.nan, 1e6, np.nan, np.nan]})
    out = validate(df)
    assert out["endpoint"].tolist() == ["car_qpcr", "iga", "igg", "igg"]
    assert out["row"].tolist() == [2, 4, 3, 1]


def test_mdv_rows_may_lack_dv():
    df = pd.DataFrame({"id": [1, 1], "time": [0.0, 0.0], "dv": [np.nan, 5.0], "mdv": [1, 0]})
    out = validate(df)
    assert out["mdv"].tolist() == [1, 0]
    with pytest.raises(DataError, match=r"row 1, column 'dv': missing; fix: enter the result"):
        validate(df.assign(mdv=[0, 0]))


def test_interval_limit_checks():
    df = pd.DataFrame({"id": 1, "time": [1.0, 2.0, 3.0], "dv": [10.0, 10.0, 100.0],
                       "lloq": 10.0, "uloq": [np.inf, np.inf, 100.0], "cens": [1, 1, -1],
                       "limit": [0.0, 12.0, 50.0]})
    with pytest.raises(DataError) as err:
        validate(df)
    assert err.value.problems == [
        "row 2, column 'limit': 12 is not below dv 10 on a BLQ row (the interval is "
        "[limit, lloq]); fix: use a limit below the LLOQ (e.g. 0), or leave it empty",
        "row 3, column 'limit': 50 is not above dv 100 on an above-ULOQ row (the interval is "
        "[uloq, limit]); fix: use a limit above the ULOQ, or leave it empty",
    ]
    ok = validate(df.assign(limit=[0.0, np.nan, np.inf]))
    np.testing.assert_array_equal(ok["limit"], [0.0, np.nan, np.inf])


def test_duplicate_columns_and_missing_id():
    df = pd.DataFrame([[1, 0.0, 1.0, 2.0]], columns=["id", "time", "dv", "dv"])
    with pytest.raises(DataError, match="column 'dv' appears 2 times"):
        validate(df)
    with pytest.raises(DataError, match=r"row 2, column 'id': missing; fix: fill in"):
        validate(pd.DataFrame({"id": ["a", None], "time": [0.0, 1.0], "dv": [1.0, 2.0]}))


def test_type_error_for_non_frames():
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        validate([{"id": 1, "time": 0, "dv": 1}])


ENDPOINT_CHOICES = ["car_qpcr", "igg", "crp", "bogus", None]
cells = {
    "id": st.one_of(st.integers(1, 3), st.sampled_from(["a", "b"]), st.none()),
    "time": st.one_of(st.floats(-5, 100), st.just(np.nan), st.just(np.inf), st.just("x")),
    "dv": st.one_of(st.floats(-10, 1e6), st.just(np.nan), st.just("<5"), st.just(-np.inf)),
    "endpoint": st.sampled_from(ENDPOINT_CHOICES),
    "unit": st.sampled_from(["copies/ug", "g/L", "mg/dl", None]),
    "lloq": st.one_of(st.floats(0, 20), st.just(np.nan), st.just(-1.0)),
    "uloq": st.one_of(st.just(np.inf), st.just(np.nan), st.floats(0, 1e6)),
    "cens": st.sampled_from([0, 1, -1, 2, np.nan, "x"]),
    "dose": st.one_of(st.just(1e6), st.just(0.0), st.just(np.nan)),
    "weight": st.one_of(st.just(70.0), st.just(-1.0), st.just(np.nan)),
}


@st.composite
def tables(draw):
    n = draw(st.integers(0, 6))
    columns = draw(st.lists(st.sampled_from(list(cells)), unique=True))
    data = {c: [draw(cells[c]) for _ in range(n)] for c in ("id", "time", "dv", *columns)}
    return pd.DataFrame(data)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=tables())
def test_validate_keeps_rows_or_raises_data_error(df):
    try:
        out = validate(df)
    except DataError as err:
        assert err.problems and all(isinstance(p, str) for p in err.problems)
        event("DataError")
        return
    event("valid")
    assert len(out) == len(df)
    assert sorted(out["row"]) == list(range(1, len(df) + 1))
    expected = pd.to_numeric(df["dv"]).to_numpy(dtype=float)[out["row"].to_numpy() - 1]
    np.testing.assert_array_equal(out["dv"].to_numpy(), expected)
    assert set(out["cens"]) <= {0, 1, -1}


@settings(max_examples=50, deadline=None)
@given(times=st.lists(st.floats(-10, 800), min_size=1, max_size=8),
       ids=st.lists(st.integers(1, 3), min_size=8, max_size=8))
def test_valid_tables_sort_and_revalidate(times, ids):
    n = len(times)
    df = pd.DataFrame({"id": ids[:n], "time": times, "dv": np.arange(n, dtype=float)})
    df = df.drop_duplicates(["id", "time"])
    out = validate(df)
    assert len(out) == len(df)
    keys = list(zip(out["id"], out["time"], strict=True))
    assert keys == sorted(keys)
    again = validate(out)
    pd.testing.assert_frame_equal(again.drop(columns="row"), out.drop(columns="row"))
    assert again["row"].tolist() == list(range(1, len(out) + 1))
