"""Summaries by dose level, dose proportionality and the model-vs-NCA comparison."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.nca import compare_with_model, dose_proportionality, nca, summarize_nca

WIDE = pd.DataFrame({
    "id": [1, 2, 3, 4, 5], "endpoint": "car_qpcr", "dose": [2.0, 2.0, 8.0, 8.0, 8.0],
    "dose_level": [1, 1, 2, 2, 2], "disease": ["SLE", "RA", "SLE", "SLE", "RA"],
    "CMAX": [1.0, 4.0, 10.0, 20.0, np.nan], "TMAX": [7.0, 10.0, 14.0, 10.0, 7.0]})


def test_summary_by_hand():
    s = summarize_nca(WIDE, parameters=["CMAX", "TMAX"]).set_index(["dose_level", "parameter"])
    c1 = s.loc[(1, "CMAX")]
    assert (c1["n"], c1["n_missing"]) == (2, 0)
    assert c1["geomean"] == pytest.approx(2.0)
    sd = math.log(4) / math.sqrt(2)  # SD of (0, ln 4)
    assert c1["geocv_pct"] == pytest.approx(100 * math.sqrt(math.exp(sd**2) - 1))
    assert (c1["median"], c1["min"], c1["max"], c1["mean"]) == (2.5, 1.0, 4.0, 2.5)
    assert c1["dn_geomean"] == pytest.approx(1.0) and c1["dose"] == 2.0
    c2 = s.loc[(2, "CMAX")]
    assert (c2["n"], c2["n_missing"]) == (2, 1)
    assert c2["geomean"] == pytest.approx(math.sqrt(200))
    assert c2["dn_geomean"] == pytest.approx(math.sqrt(200) / 8)
    assert np.isnan(s.loc[(1, "TMAX"), "dn_geomean"])  # not an exposure
    assert list(s.index.get_level_values("parameter")[:2]) == ["CMAX", "TMAX"]


def test_summary_by_dose_level_and_disease():
    s = summarize_nca(WIDE, by=("dose_level", "disease"), parameters=["CMAX"])
    assert len(s) == 4
    row = s[(s["dose_level"] == 2) & (s["disease"] == "SLE")].iloc[0]
    assert row["n"] == 2 and row["geomean"] == pytest.approx(math.sqrt(200))
    with pytest.raises(ValueError, match="AUCX"):
        summarize_nca(WIDE, parameters=["AUCX"])


def test_summary_of_a_result_has_units():
    d = pd.DataFrame({"id": np.repeat([1, 2], 4), "time": np.tile([0, 1, 2, 4.0], 2),
                      "dv": [0, 5, 10, 5, 0, 8, 12, 6.0], "endpoint": "car_qpcr",
                      "unit": "copies/ug", "dose": np.repeat([1e6, 3e6], 2 * 2),
                      "dose_level": np.repeat([1, 3], 4)})
    s = summarize_nca(nca(d)).set_index(["dose_level", "parameter"])
    assert s.loc[(1, "CMAX"), "unit"] == "copies/ug"
    assert s.loc[(3, "AUCINT_0_28"), "unit"] == "copies/ug*day"
    assert s.loc[(1, "CMAX"), "dn_geomean"] == pytest.approx(10 / 1e6)
    s = summarize_nca(nca(d), dose_unit="cells/kg", parameters=["CMAX"])
    assert set(s["dn_unit"]) == {"(copies/ug)/(cells/kg)"}


def test_dose_proportionality_against_scipy():
    rng = np.random.default_rng(3)
    dose = np.repeat([0.5e6, 1e6, 2e6, 3e6], 4)
    cmax = 100 * (dose / 1e6) ** 0.8 * np.exp(rng.normal(0, 0.3, dose.size))
    w = pd.DataFrame({"endpoint": "car_qpcr", "dose": dose, "CMAX": cmax})
    r = dose_proportionality(w, parameters=["CMAX"]).iloc[0]
    ref = stats.linregress(np.log(dose), np.log(cmax))
    q = stats.t.ppf(0.95, dose.size - 2)
    assert r["b"] == pytest.approx(ref.slope, rel=1e-10)
    assert r["a"] == pytest.approx(ref.intercept, rel=1e-10)
    assert r["se_b"] == pytest.approx(ref.stderr, rel=1e-10)
    assert (r["ci_low"], r["ci_high"]) == (pytest.approx(ref.slope - q * ref.stderr),
                                           pytest.approx(ref.slope + q * ref.stderr))
    assert r["r2"] == pytest.approx(ref.rvalue**2)
    assert (r["n"], r["n_doses"], r["dose_ratio"]) == (16, 4, pytest.approx(6.0))
    assert r["smith_low"] == pytest.approx(1 + math.log(0.8) / math.log(6))
    assert r["contains_1"] == (r["ci_low"] <= 1 <= r["ci_high"])
    few = dose_proportionality(w.iloc[:3], parameters=["CMAX"]).iloc[0]
    assert np.isnan(few["b"]) and few["n_doses"] == 1
    with pytest.raises(ValueError, match="level"):
        dose_proportionality(w, parameters=["CMAX"], level=90)
    with pytest.raises(ValueError, match="dose"):
        dose_proportionality(w.drop(columns="dose"), parameters=["CMAX"])


def test_compare_with_model():
    model = pd.DataFrame({"id": [1, 2, 3, 9], "cmax": [1.1, 3.6, 10.0, 5.0],
                          "auc_0_28": [1.0, 2.0, 3.0, 4.0]})
    c = compare_with_model(WIDE, model)
    assert set(c["parameter"]) == {"CMAX"}  # no AUCINT_0_28 column in this NCA table
    one = c[c["id"] == 2].iloc[0]
    assert (one["nca"], one["model"]) == (4.0, 3.6)
    assert one["ratio"] == pytest.approx(0.9) and one["pct_diff"] == pytest.approx(-10)
    assert np.isnan(c.loc[c["id"] == 9, "nca"]).all()  # in the model table only
    assert np.isnan(c.loc[c["id"] == 4, "model"]).all()  # in the NCA only
    c = compare_with_model(WIDE.assign(AUCINT_0_28=[2.0, 2, 2, 2, 2]), model)
    assert set(c["parameter"]) == {"CMAX", "AUCINT_0_28"}
    two = pd.concat([WIDE, WIDE.assign(endpoint="car_flow")])
    with pytest.raises(ValueError, match="pass endpoint="):
        compare_with_model(two, model)
    c = compare_with_model(two, model, endpoint="car_flow")
    assert set(c["endpoint"]) == {"car_flow"}
    c = compare_with_model(two, model.assign(endpoint="car_qpcr", id=model["id"].astype(str)))
    assert c.loc[c["id"] == 1, "model"].item() == 1.1  # ids matched across types
    with pytest.raises(ValueError, match="not found"):
        compare_with_model(WIDE, model, mapping={"vss": "CMAX"})
    with pytest.raises(ValueError, match="Nothing to compare"):
        compare_with_model(WIDE, model[["id"]])
