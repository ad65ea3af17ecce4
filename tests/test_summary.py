import numpy as np
import pandas as pd
import pytest

from carkinetics.summary import geometric_summary, observed_exposure, summarize_by_dose


def table():
    # A: peak 400 at day 10, last quantified day 28; B: peak 100 at day 7, BLQ after
    return pd.DataFrame({
        "id": ["A"] * 5 + ["B"] * 5,
        "time": [-1, 7, 10, 28, 90] * 2,
        "dv": [50, 200, 400, 80, 50, 50, 100, 60, 50, 50],
        "lloq": [50] * 10,
        "cens": [1, 0, 0, 0, 1, 1, 0, 0, 1, 1],
        "endpoint": "car_qpcr",
        "dose": [1e6] * 10,
        "dose_level": 2,
    })


def test_observed_exposure_hand_values():
    e = observed_exposure(table()).set_index("id")
    assert e.loc["A", "cmax_obs"] == 400 and e.loc["A", "tmax_obs"] == 10
    assert e.loc["A", "tlast_obs"] == 28 and e.loc["B", "tlast_obs"] == 10
    assert e.loc["B", "cmax_obs"] == 100 and e.loc["B", "tmax_obs"] == 7
    assert e.loc["A", "n_blq"] == 2 and e.loc["B", "n_blq"] == 3


def test_blq_never_counts_as_peak():
    t = table()
    t.loc[4, "dv"] = 10_000  # a BLQ row with a (wrong) huge value must not be the peak
    t.loc[4, "lloq"] = 10_000
    assert observed_exposure(t).set_index("id").loc["A", "cmax_obs"] == 400


def test_summary_by_dose_hand_values():
    s = summarize_by_dose(observed_exposure(table())).iloc[0]
    assert s["cmax_geomean"] == pytest.approx(200.0)  # sqrt(400 * 100)
    sd = np.std(np.log([400, 100]), ddof=1)
    assert s["cmax_geocv_pct"] == pytest.approx(100 * np.sqrt(np.exp(sd**2) - 1))
    assert s["pct_blq"] == pytest.approx(50.0)
    assert s["tmax_median"] == pytest.approx(8.5)


def test_geometric_summary_ignores_nonpositive():
    g = geometric_summary(pd.Series([1.0, 100.0, np.nan, 0.0]))
    assert g["n"] == 2 and g["geomean"] == pytest.approx(10.0)
