"""Baseline, visit windows (actual vs nominal day), change and percent change."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.endpoints import change_from_baseline, change_summary


def _data():
    rows = [  # id, time, endpoint, dv, unit
        ("A", -7, "crp", 10.0, "mg/L"),
        ("A", -1, "crp", 1.2, "mg/dL"),   # baseline: last pre-infusion value, 12 mg/L
        ("A", 13, "crp", 9.0, "mg/L"),    # Day 14 (window 12-16), closest
        ("A", 16, "crp", 6.0, "mg/L"),    # also in the Day 14 window, farther: dropped
        ("A", 17, "crp", 5.0, "mg/L"),    # outside every window: unscheduled
        ("A", 27, "crp", 4.0, "mg/L"),    # Day 28, tie with day 29: the earlier kept
        ("A", 29, "crp", 3.5, "mg/L"),
        ("A", 53, "crp", 3.2, "mg/L"),    # Month 2 window is 53.875-67.875: out
        ("A", 54, "crp", 3.0, "mg/L"),    # Month 2
        ("B", 0, "sjc28", 0.0, "count"),  # day 0 counts as baseline
        ("B", 21, "sjc28", 2.0, "count"),
        ("C", 14, "crp", 8.0, "mg/L"),    # no baseline
    ]
    df = pd.DataFrame(rows, columns=["id", "time", "endpoint", "dv", "unit"])
    df["dose_level"] = df["id"].map({"A": 1, "B": 2, "C": 2})
    return df


def test_visits_baseline_and_changes():
    cfb = change_from_baseline(_data())
    a = cfb[cfb["id"] == "A"].set_index("visit")
    assert a.index.tolist() == ["Day -1", "Day 14", "Day 28", "Month 2"]
    assert a.loc["Day -1", "value"] == pytest.approx(12.0)  # 1.2 mg/dL -> mg/L
    assert a.loc["Day -1", "actual_day"] == -1 and a.loc["Day -1", "change"] == 0
    assert a.loc["Day 14", "actual_day"] == 13 and a.loc["Day 14", "day_deviation"] == -1
    assert a.loc["Day 28", "actual_day"] == 27
    assert a.loc["Month 2", "nominal_day"] == 60.875 and a.loc["Month 2", "actual_day"] == 54
    assert a.loc["Day 14", "change"] == pytest.approx(-3.0)
    assert a.loc["Day 14", "pct_change"] == pytest.approx(-25.0)
    assert a.loc["Month 2", "pct_change"] == pytest.approx(-75.0)
    assert (a["baseline_day"] == -1).all()
    b = cfb[cfb["id"] == "B"].set_index("visit")
    assert b.loc["Day 21", "change"] == 2 and np.isnan(b.loc["Day 21", "pct_change"])
    c = cfb[cfb["id"] == "C"]
    assert c["visit"].tolist() == ["Day 14"] and c["baseline"].isna().all()


def test_window_and_baseline_day_options():
    cfb = change_from_baseline(_data(), window=3.0, endpoints=["crp"])
    a = cfb[cfb["id"] == "A"].set_index("visit")
    assert a.loc["Day 14", "actual_day"] == 13  # 17 is now inside Day 14 too, but farther
    cfb = change_from_baseline(_data(), baseline_max_day=-2)
    assert cfb[(cfb["id"] == "A") & (cfb["visit"] == "Day -1")]["actual_day"].item() == -7
    assert "B" not in set(cfb[cfb["visit"] == "Day -1"]["id"])


def test_change_summary():
    s = change_summary(change_from_baseline(_data()))
    r = s[(s["endpoint"] == "crp") & (s["dose_level"] == 2) & (s["visit"] == "Day 14")].iloc[0]
    assert r["n"] == 1 and np.isnan(r["change_mean"])
    r = s[(s["endpoint"] == "crp") & (s["dose_level"] == 1) & (s["visit"] == "Day 14")].iloc[0]
    assert r["n"] == 1 and r["change_mean"] == pytest.approx(-3.0)
