"""Bad input gets a clear answer, never a silently wrong number; the table layout."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import DataError
from carkinetics.nca import NCAResult, nca, to_wide


def good(pid="A"):
    return pd.DataFrame({"id": pid, "time": [0, 1, 2, 4, 8, 12.0],
                         "dv": [0, 8, 10, 6, 3, 1.5]})


def test_duplicate_times_within_a_participant():
    d = pd.concat([good(), good("B")], ignore_index=True)
    d.loc[3, "time"] = 2.0  # A: two samples at time 2 (rows 3 and 4)
    with pytest.raises(DataError) as exc:
        nca(d)
    msg = str(exc.value)
    assert "rows 3, 4: duplicate time 2 for id 'A'" in msg
    # the same time in two endpoints is fine
    e = pd.concat([good().assign(endpoint="car_qpcr"), good().assign(endpoint="car_flow")])
    assert len(nca(e).groups) == 2


def test_every_problem_listed_at_once():
    d = good()
    d["dv"] = d["dv"].astype(object)
    d.loc[1, "dv"] = -2.0
    d.loc[2, "dv"] = np.nan
    d.loc[3, "time"] = np.inf
    d.loc[4, "dv"] = "<0.5"
    d["cens"] = [0, 0, 0, 0, 0, 2]
    with pytest.raises(DataError) as exc:
        nca(d)
    p = exc.value.problems
    assert any("row 2, column 'dv': -2 is a negative concentration" in x for x in p)
    assert any(x.startswith("row 3, column 'dv': missing") for x in p)
    assert any("row 4, column 'time': inf is not finite" in x for x in p)
    assert any("row 5, column 'dv': '<0.5' is not a number" in x for x in p)
    assert any("row 6, column 'cens': 2 is not a censoring code" in x for x in p)
    assert len(p) == 5


def test_missing_columns_and_types():
    with pytest.raises(DataError, match="column 'dv' \\(required\\) is missing"):
        nca(good().rename(columns={"dv": "conc"}))
    with pytest.raises(TypeError, match="DataFrame"):
        nca(good().to_numpy())


def test_mixed_units_in_an_endpoint():
    d = good().assign(endpoint="car_flow", unit=["cells/uL"] * 5 + ["10^9/L"])
    with pytest.raises(DataError, match="endpoint 'car_flow' has 2 units"):
        nca(d)


def test_unknown_endpoint_requested():
    with pytest.raises(DataError, match="Did you mean 'car_qpcr'"):
        nca(good().assign(endpoint="car_qpcr"), endpoint="car_qcpr")


def test_fewer_than_two_quantified_samples():
    one = pd.DataFrame({"id": "B", "time": [1, 2, 3.0], "dv": [5, 1, 1.0], "cens": [0, 1, 1]})
    d = pd.concat([good().assign(cens=0), one])
    r = nca(d)
    b = r.table[r.table["id"] == "B"]
    assert b["PPORRES"].isna().all()
    assert (b["exclude"] == "fewer than 2 quantified post-dose samples (1)").all()
    a = r.to_wide().set_index("id").loc["A"]
    assert a["CMAX"] == 10.0 and np.isfinite(a["AUCLST"])
    w = nca(d, min_quantified=1).to_wide().set_index("id")
    assert w.loc["B", "CMAX"] == 5.0 and np.isnan(w.loc["B", "LAMZ"])
    with pytest.raises(ValueError, match="min_quantified"):
        nca(d, min_quantified=0)


def test_invalid_options():
    with pytest.raises(ValueError, match="auc_method"):
        nca(good(), auc_method="log")
    with pytest.raises(ValueError, match="dosing"):
        nca(good(), dosing="oral")


def test_mdv_rows_and_above_uloq():
    d = good().assign(mdv=0, cens=0)
    d.loc[len(d)] = ["A", 3.0, np.nan, 1, 0]
    d.loc[2, "cens"] = -1  # above ULOQ at Cmax: counts at its ULOQ, with a note
    t = nca(d).table.set_index("PPTESTCD")
    assert t.loc["CMAX", "PPORRES"] == 10.0
    assert t.loc["CMAX", "note"] == "an above-ULOQ sample counts at its ULOQ"


def test_long_table_layout_and_wide_view():
    d = pd.concat([good("A"), good("B").assign(dv=lambda x: x["dv"] * 2)])
    r = nca(d, dosing="extravascular", intervals=[(0, 4)])
    assert isinstance(r, NCAResult) and "2 profiles" in repr(r)
    assert list(r.table.columns) == ["id", "endpoint", "start", "end", "PPTESTCD", "PPTEST",
                                     "PPORRES", "PPORRESU", "exclude", "note"]
    codes = set(r.table["PPTESTCD"])
    assert {"CMAX", "TMAX", "CLST", "TLST", "AUCLST", "AUCIFO", "AUCIFP", "AUCPEO", "LAMZ",
            "LAMZHL", "LAMZNPT", "R2ADJ", "AUMCLST", "AUCINT"} <= codes
    iv = r.table[r.table["PPTESTCD"] == "AUCINT"]
    assert (iv["start"] == 0).all() and (iv["end"] == 4).all()
    assert (r.table.loc[r.table["PPTESTCD"] == "CMAX", "end"] == np.inf).all()
    w = r.to_wide()
    assert list(w["id"]) == ["A", "B"] and w["endpoint"].tolist() == ["dv", "dv"]
    assert w.loc[1, "AUCLST"] == pytest.approx(2 * w.loc[0, "AUCLST"])
    assert "AUCINT_0_4" in w
    # the wide view is the pivot of the long table
    pd.testing.assert_frame_equal(w, to_wide(r.table, r.groups), check_dtype=False)
    assert r.options["auc_method"] == "linear-log" and r.options["intervals"] == [(0.0, 4.0)]


def test_ids_keep_their_type_and_order():
    d = pd.concat([good(10), good(2), good(33)])
    w = nca(d).to_wide()
    assert w["id"].tolist() == [2, 10, 33]
    assert w["id"].dtype.kind == "i"


def test_empty_post_dose_profile():
    d = pd.concat([good(), pd.DataFrame({"id": "Z", "time": [-2.0, -1.0], "dv": [1.0, 2.0]})])
    t = nca(d).table
    z = t[t["id"] == "Z"]
    assert z["PPORRES"].isna().all()
    assert (z["exclude"] == "fewer than 2 quantified post-dose samples (0)").all()
