import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carkinetics.data import (
    from_nonmem,
    read_data,
    read_nonmem,
    to_nonmem,
    validate,
    write_data,
    write_nonmem,
)
from carkinetics.exceptions import DataError

DATA = Path(__file__).resolve().parent.parent / "data"


def _nm(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), na_values=["."])


def _read_nm_file(path) -> pd.DataFrame:
    return pd.read_csv(path, na_values=["."])


# ---------------------------------------------------------------- CSV and Parquet


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".pq"])
def test_round_trip_exact(tmp_path, suffix):
    original = read_data(DATA / "good.csv")
    path = write_data(original, tmp_path / f"t{suffix}")
    back = read_data(path)
    # same columns (order of the schema), values and dtypes; `row` renumbers the new file
    pd.testing.assert_frame_equal(back.drop(columns="row"),
                                  original[back.columns].drop(columns="row"))
    assert back["row"].tolist() == list(range(1, len(original) + 1))
    assert back.columns.tolist()[:10] == ["id", "time", "visit", "endpoint", "dv", "unit",
                                          "lloq", "uloq", "cens", "dose"]
    assert [p.name for p in tmp_path.iterdir()] == [f"t{suffix}"]  # no temporary file left


def test_csv_text_ids_with_leading_zeros(tmp_path):
    df = pd.DataFrame({"id": ["007", "010"], "time": [0.0, 1.0], "dv": [1.5, 2.25]})
    back = read_data(write_data(df, tmp_path / "ids.csv"))
    assert back["id"].tolist() == ["007", "010"]
    df2 = pd.DataFrame({"id": [7, 10], "time": [0.0, 1.0], "dv": [1.5, 2.25]})
    assert read_data(write_data(df2, tmp_path / "ids2.csv"))["id"].tolist() == [7, 10]


def test_write_data_validates_before_touching_the_file(tmp_path):
    target = tmp_path / "t.csv"
    target.write_text("keep me\n")
    bad = pd.DataFrame({"id": [1], "time": [0.0], "dv": [-1.0], "endpoint": ["igg"]})
    with pytest.raises(DataError, match=r"data for .*t.csv: row 1, column 'dv': -1 is negative"):
        write_data(bad, target)
    assert target.read_text() == "keep me\n"
    with pytest.raises(ValueError, match=r"suffix must be one of"):
        write_data(bad, tmp_path / "t.xlsx", check=False)


def test_write_is_atomic_when_writer_fails(tmp_path, monkeypatch):
    target = tmp_path / "t.csv"
    target.write_text("old\n")

    def broken(self, path, *args, **kwargs):
        Path(path).write_text("half")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken)
    with pytest.raises(OSError, match="disk full"):
        write_data(pd.DataFrame({"id": [1], "time": [0.0], "dv": [1.0]}), target)
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["t.csv"]


def test_read_data_errors_name_the_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,time,dv\n1,0,abc\n")
    with pytest.raises(DataError) as err:
        read_data(path)
    assert err.value.problems[0].startswith(f"{path}: row 1, column 'dv': 'abc' is not a number")
    with pytest.raises(ValueError, match=r"suffix '.xlsx' is not one of"):
        read_data(tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match=r"Invalid format='exel'"):
        read_data(path, format="exel")


# ---------------------------------------------------------------- NONMEM


def test_nonmem_mapping():
    t = read_nonmem(DATA / "nonmem_example.csv")
    by_row = t.set_index("row").sort_index()
    # dose records are not rows: 11 records - 2 doses
    assert by_row.index.tolist() == [1, 3, 4, 5, 6, 7, 8, 10, 11]
    assert by_row["endpoint"].tolist()[:3] == ["car_qpcr", "car_qpcr", "car_flow"]
    assert pd.isna(by_row.loc[5, "endpoint"]) and by_row.loc[5, "mdv"] == 1
    assert by_row.loc[5, "evid"] == 2 and pd.isna(by_row.loc[5, "dv"])
    assert by_row["dose"].tolist() == [1e6] * 6 + [2e6] * 3
    # BLQ records: DV=0 and DV=LLOQ/2 become dv = lloq, the file's DV kept in nm_dv
    assert by_row.loc[1, ["dv", "lloq", "cens", "nm_dv"]].tolist() == [10.0, 10.0, 1, 0.0]
    assert by_row.loc[6, ["dv", "lloq", "cens", "nm_dv"]].tolist() == [10.0, 10.0, 1, 5.0]
    assert by_row.loc[7, ["dv", "lloq", "cens"]].tolist() == [1.0, 1.0, 1]
    assert pd.isna(by_row.loc[7, "nm_dv"])
    assert by_row.loc[1, "limit"] == 0.0
    assert by_row["STUDY"].tolist() == ["A01"] * 9 and by_row["CMT"].tolist() == [2] * 9
    assert "dose_time" not in t


def test_nonmem_round_trip_exact_in_memory():
    nm = _read_nm_file(DATA / "nonmem_example.csv")
    t = from_nonmem(nm)
    pd.testing.assert_frame_equal(to_nonmem(t), nm)
    # re-sorting or re-indexing the table does not change what is written
    shuffled = t.sample(frac=1.0, random_state=3).reset_index(drop=True)
    pd.testing.assert_frame_equal(to_nonmem(shuffled), nm)


def test_nonmem_round_trip_exact_files(tmp_path):
    out = write_nonmem(read_nonmem(DATA / "nonmem_example.csv"), tmp_path / "nm.csv")
    pd.testing.assert_frame_equal(_read_nm_file(out), _read_nm_file(DATA / "nonmem_example.csv"))
    assert out.read_text().splitlines()[2] == "1,0,.,1,1,1000000,1,.,0,.,.,70.5,1,A01"
    assert os.listdir(tmp_path) == ["nm.csv"]


def test_nonmem_hours_blq_flag_and_table_header(tmp_path):
    path = DATA / "nonmem_table_hours.txt"
    t = read_data(path, format="nonmem", time_unit="hour")
    by_row = t.set_index("row").sort_index()
    np.testing.assert_allclose(by_row["time"], [0.25 / 24, 36.6 / 24, 170.3 / 24, 1.0],
                               rtol=1e-15)
    assert by_row["lloq"].iloc[[0, 2]].tolist() == [0.5, 0.5]  # DV of BLQ=1 rows is the LLOQ
    assert by_row["cens"].tolist() == [1, 0, 1, 0]
    assert by_row["dose"].tolist() == [5e6, 5e6, 5e6, 1e7]
    raw = pd.read_csv(path, sep=r"\s+", skiprows=1)
    pd.testing.assert_frame_equal(to_nonmem(t), raw)
    # a .txt file is recognised as NONMEM by its columns
    pd.testing.assert_frame_equal(read_data(path, time_unit="hour"), t)


def test_nonmem_auto_detected_and_parquet(tmp_path):
    t = read_data(DATA / "nonmem_example.csv")  # .csv with NONMEM columns
    assert "endpoint" in t and json.loads(t.attrs["nonmem"])["dvid_column"] == "DVID"
    pq = tmp_path / "nm.parquet"
    _read_nm_file(DATA / "nonmem_example.csv").to_parquet(pq)
    from_pq = read_data(pq)
    pd.testing.assert_frame_equal(from_pq, t)
    # our own Parquet keeps the layout but not row: same records and values, canonical order
    back = read_data(write_data(t, tmp_path / "ours.parquet"))
    nm = _read_nm_file(DATA / "nonmem_example.csv")
    written = to_nonmem(back)
    key = ["ID", "TIME", "EVID", "DVID"]
    pd.testing.assert_frame_equal(
        written.sort_values(key, na_position="first").reset_index(drop=True),
        nm.sort_values(key, na_position="first").reset_index(drop=True))


def test_canonical_round_trip_ours_to_nonmem_and_back():
    ours = validate(pd.DataFrame({
        "id": [1, 1, 1, 2, 2], "time": [-1.0, 7.0, 14.0, -1.0, 7.5],
        "endpoint": ["car_qpcr", "car_qpcr", "car_flow", "car_qpcr", "car_qpcr"],
        "dv": [10.0, 5000.0, 30.0, 10.0, 800.0], "lloq": [10.0, 10.0, 1.0, 10.0, 10.0],
        "cens": [1, 0, 0, 1, 0], "dose": [1e6] * 3 + [2e6] * 2,
        "weight": [70.0, 70.0, 70.0, 80.0, 80.0],
        "visit": ["Day -1", "Day 7", "Day 14", "Day -1", "Day 7"]}))
    nm = to_nonmem(ours)
    assert nm.columns.tolist() == ["ID", "TIME", "DV", "MDV", "EVID", "AMT", "DVID", "CENS",
                                   "LLOQ", "weight", "visit"]
    assert nm["TIME"].tolist() == [-1.0, 0.0, 7.0, 14.0, -1.0, 0.0, 7.5]
    assert nm["EVID"].tolist() == [0, 1, 0, 0, 0, 1, 0]
    assert nm["AMT"].tolist() == [0.0, 1e6, 0.0, 0.0, 0.0, 2e6, 0.0]
    assert nm["DVID"].tolist() == [1, 0, 1, 2, 1, 0, 1]
    dose_rows = nm[nm["EVID"] == 1]
    assert dose_rows["weight"].tolist() == [70.0, 80.0]  # constant per participant: copied
    assert dose_rows["visit"].isna().all()  # varies within participant: left empty
    back = from_nonmem(nm)
    cols = [c for c in ours.columns if c != "row"]
    pd.testing.assert_frame_equal(back[cols], ours[cols])


def test_cmt_maps_endpoints_without_dvid():
    nm = _nm("ID,TIME,DV,AMT,CMT,MDV\n1,0,0,1e6,1,1\n1,1,50,0,3,0\n1,2,8,0,4,0\n")
    t = from_nonmem(nm, dvid_map={3: "car_qpcr", 4: "car_flow_pct"})
    assert t["endpoint"].tolist() == ["car_flow_pct", "car_qpcr"]
    pd.testing.assert_frame_equal(to_nonmem(t), nm)


def test_dose_away_from_time_zero_gives_dose_time():
    nm = _nm("ID,TIME,DV,EVID,AMT\n1,2,0,1,1e6\n1,9,50,0,0\n")
    t = from_nonmem(nm, dvid_map={})
    assert t["dose_time"].tolist() == [2.0]
    pd.testing.assert_frame_equal(to_nonmem(t), nm)


def test_nonmem_problems_are_listed_with_rows():
    nm = _nm("ID,TIME,DV,EVID,AMT,DVID,CENS\n"
             "1,0,0,1,1e6,.,0\n1,0,0,1,1e6,.,0\n1,7,0,0,0,1,1\n1,8,5,0,5,3,0\n2,0,0,1,1e6,.,0\n")
    with pytest.raises(DataError) as err:
        from_nonmem(nm, source="nm.csv")
    p = "nm.csv: "
    assert sorted(err.value.problems) == sorted([
        p + "row 4, column 'AMT': 5 on a record that is not a dose record; fix: a dose record "
        "has EVID = 1 (or MDV = 1 with AMT > 0); set AMT to 0 otherwise",
        p + "row 1, column 'AMT': 1000000 is one of 2 dose records of participant 1; fix: "
        "carkinetics keeps one assigned dose per participant: keep one record (or sum them "
        "into one)",
        p + "row 2, column 'AMT': 1000000 is one of 2 dose records of participant 1; fix: "
        "carkinetics keeps one assigned dose per participant: keep one record (or sum them "
        "into one)",
        p + "row 5, column 'ID': 2 has a dose record but no other record; fix: add the "
        "participant's observations, or remove the dose record",
        p + "row 4, column 'DVID': 3 has no endpoint in dvid_map; fix: pass dvid_map={..., 3: "
        "'<endpoint>'} (now {1: 'car_qpcr', 2: 'car_flow'})",
        p + "row 3, column 'DV': 0 on a BLQ record without an LLOQ column; fix: add an LLOQ "
        "column with the limit",
    ])


def test_nonmem_value_problems_use_file_rows():
    nm = _nm("ID,TIME,DV,EVID,AMT,DVID,LLOQ\n1,0,0,1,1e6,.,.\n1,7,2,0,0,1,10\n")
    with pytest.raises(DataError) as err:
        from_nonmem(nm, source="nm.csv")
    assert err.value.problems == [
        "nm.csv: row 2, column 'DV': 2 is below lloq 10 on a quantified row (cens = 0); fix: "
        "mark it censored: cens = 1 and dv = lloq = 10"]
    nm = _nm("ID,TIME,DV,DVID\n1,0,5,1\n1,0,6,1\n")
    with pytest.raises(DataError) as err:
        from_nonmem(nm)
    assert err.value.problems == [
        "column 'dose' is missing but 2 rows (rows 1, 2) have CAR-T kinetic endpoints "
        "(car_qpcr) that need the assigned dose; fix: add a dose record (EVID = 1, AMT in "
        "CAR-T cells/kg) per participant.",
        "rows 1 and 2, columns 'ID', 'TIME', 'DVID': both are (1, 0, 'car_qpcr') (duplicate "
        "rows); fix: remove the repeated row, or correct its time or endpoint"]


def test_blq_and_cens_must_agree_and_collisions():
    nm = _nm("ID,TIME,DV,CENS,BLQ,LLOQ\n1,1,10,1,0,10\n")
    with pytest.raises(DataError, match=r"row 1, column 'BLQ': 0 disagrees with CENS = 1"):
        from_nonmem(nm, dvid_map={})
    nm = _nm("ID,TIME,DV,EVID,AMT,dose\n1,0,0,1,1e6,5\n1,1,10,0,0,5\n")
    with pytest.raises(DataError, match=r"column 'dose': the name is used by carkinetics"):
        from_nonmem(nm)
    with pytest.raises(DataError, match="needs the columns ID, TIME and DV"):
        from_nonmem(_nm("id,time,dv\n1,0,1\n"))
    with pytest.raises(ValueError, match="each code must map to a different endpoint"):
        from_nonmem(_nm("ID,TIME,DV\n1,0,1\n"), dvid_map={1: "car_qpcr", 2: "car_qpcr"})


def test_to_nonmem_problems():
    t = validate(pd.DataFrame({"id": [1, 1], "time": [0.0, 1.0], "dv": [1.0, 2.0],
                               "endpoint": ["car_flow_pct", "car_flow_pct"],
                               "dose": [1e6, 2e6]}))
    with pytest.raises(DataError, match=r"endpoint 'car_flow_pct' has no DVID code"):
        to_nonmem(t)
    with pytest.raises(DataError, match=r"participant 1 has more than one dose"):
        to_nonmem(t, dvid_map={3: "car_flow_pct"})
    amt = pd.DataFrame({"id": [1], "time": [0.0], "dv": [1.0], "AMT": [5.0]})
    with pytest.raises(DataError, match=r"column 'AMT' clashes"):
        to_nonmem(amt)


@st.composite
def nonmem_tables(draw):
    records = []
    for pid in range(1, draw(st.integers(1, 3)) + 1):
        wt = draw(st.sampled_from([55.5, 70.0, 91.25]))
        amt = draw(st.sampled_from([1e6, 5e6, 2.5e7]))
        keys = draw(st.lists(st.tuples(st.integers(-2, 60), st.sampled_from([1, 2])),
                             min_size=1, max_size=5, unique=True))
        obs = []
        for time, dvid in keys:
            lloq = draw(st.sampled_from([1.0, 10.0]))
            cens = draw(st.integers(0, 1))
            dv = draw(st.sampled_from([0.0, lloq / 2, lloq])) if cens else \
                draw(st.floats(lloq, 1e6))
            obs.append([pid, float(time), dv, 0, 0, 0.0, dvid, cens, lloq, wt])
        if draw(st.booleans()):  # an EVID=2 record
            obs.append([pid, float(draw(st.integers(-2, 60))), np.nan, 1, 2, 0.0, np.nan, 0,
                        np.nan, wt])
        dose = [pid, 0.0, 0.0, 1, 1, amt, np.nan, 0, np.nan, wt]
        records += sorted([dose, *obs], key=lambda r: (r[1], -r[4] if r[4] == 1 else 0))
    return pd.DataFrame(records, columns=["ID", "TIME", "DV", "MDV", "EVID", "AMT", "DVID",
                                          "CENS", "LLOQ", "WT"])


@settings(max_examples=50, deadline=None)
@given(nm=nonmem_tables())
def test_nonmem_round_trip_property(nm, tmp_path_factory):
    t = from_nonmem(nm)
    assert len(t) == int((nm["EVID"] != 1).sum())
    blq = t["cens"] == 1
    assert (t.loc[blq, "dv"] == t.loc[blq, "lloq"]).all()
    pd.testing.assert_frame_equal(to_nonmem(t), nm)
    path = tmp_path_factory.mktemp("nm") / "nm.csv"
    pd.testing.assert_frame_equal(_read_nm_file(write_nonmem(t, path)), nm)


def test_nonmem_upper_case_extras_pass_through():
    nm = _nm("ID,TIME,DV,EVID,AMT,DVID,DOSE,UNIT\n1,0,0,1,1e6,.,1,copies/ug\n"
             "1,7,500,0,0,1,1,copies/ug\n")
    t = from_nonmem(nm)
    assert t[["DOSE", "UNIT", "dose"]].values.tolist() == [[1, "copies/ug", 1e6]]
    pd.testing.assert_frame_equal(to_nonmem(t), nm)


def test_to_canonical_converts_the_nonmem_dv_too():
    from carkinetics.data import to_canonical

    nm = _nm("ID,TIME,DV,EVID,AMT,DVID,CENS,LLOQ\n1,0,0,1,1e6,.,0,.\n1,7,50,0,0,1,1,100\n")
    t = from_nonmem(nm, dvid_map={1: "igg"}).assign(unit="mg/dL")
    out = to_canonical(t)
    assert out[["dv", "lloq", "nm_dv", "unit"]].values.tolist() == [[1.0, 1.0, 0.5, "g/L"]]
