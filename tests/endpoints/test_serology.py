"""Serology flags and tables: positivity, seroconversion, low complement and immunoglobulins."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.endpoints import change_from_baseline, serology_flags, serology_summary


def _data():
    rows = [  # id, level, time, endpoint, dv, cens, lloq
        ("P1", 1, -1, "anti_dsdna", 120, 0, 10), ("P1", 1, 28, "anti_dsdna", 45, 0, 10),
        ("P1", 1, 91, "anti_dsdna", 10, 1, 10),      # below an LLOQ under the threshold
        ("P2", 1, -1, "anti_dsdna", 20, 0, 10), ("P2", 1, 91, "anti_dsdna", 40, 0, 10),
        ("P3", 2, -1, "anti_dsdna", 200, 0, 50),
        ("P3", 2, 91, "anti_dsdna", 50, 1, 50),      # below an LLOQ above the threshold
        ("P1", 1, -1, "c3", 0.6, 0, np.nan), ("P1", 1, 91, "c3", 1.0, 0, np.nan),
        ("P1", 1, -1, "igg", 10.0, 0, np.nan), ("P1", 1, 91, "igg", 5.0, 0, np.nan),
        ("P2", 1, -1, "ana", 160, 0, 40), ("P2", 1, 91, "ana", 40, 1, 40),
    ]
    return pd.DataFrame(rows, columns=["id", "dose_level", "time", "endpoint", "dv", "cens",
                                       "lloq"])


def test_flags():
    f = serology_flags(change_from_baseline(_data())).set_index(["id", "endpoint", "visit"])
    assert f.loc[("P1", "anti_dsdna", "Day 28"), "positive"]
    assert not f.loc[("P1", "anti_dsdna", "Day 28"), "seroconverted_negative"]
    assert f.loc[("P1", "anti_dsdna", "Month 3"), "seroconverted_negative"]
    assert f.loc[("P1", "anti_dsdna", "Month 3"), "change"] == -110
    assert pd.isna(f.loc[("P2", "anti_dsdna", "Month 3"), "seroconverted_negative"])
    assert f.loc[("P2", "anti_dsdna", "Month 3"), "positive"]
    assert pd.isna(f.loc[("P3", "anti_dsdna", "Month 3"), "positive"])
    assert pd.isna(f.loc[("P3", "anti_dsdna", "Month 3"), "seroconverted_negative"])
    assert f.loc[("P2", "ana", "Month 3"), "seroconverted_negative"]
    assert f.loc[("P1", "c3", "Month 3"), "normalised"]
    assert f.loc[("P1", "igg", "Month 3"), "newly_low"]
    assert pd.isna(f.loc[("P1", "igg", "Month 3"), "normalised"])
    assert pd.isna(f.loc[("P1", "c3", "Month 3"), "positive"])


def test_thresholds_are_parameters():
    f = serology_flags(change_from_baseline(_data()), thresholds={"anti_dsdna": 50.0})
    f = f.set_index(["id", "endpoint", "visit"])
    assert f.loc[("P1", "anti_dsdna", "Day 28"), "seroconverted_negative"]
    assert not f.loc[("P2", "anti_dsdna", "Month 3"), "positive"]
    assert f.loc[("P3", "anti_dsdna", "Month 3"), "seroconverted_negative"]  # lloq 50 <= 50


def test_summary_counts():
    s = serology_summary(serology_flags(change_from_baseline(_data())))
    r = s[(s["endpoint"] == "anti_dsdna") & (s["dose_level"] == "All")
          & (s["visit"] == "Month 3")].iloc[0]
    assert (r["n"], r["n_positive"], r["n_baseline_positive"]) == (3, 1, 2)
    assert (r["n_seroconverted"], r["n_assessed_seroconversion"]) == (1, 1)
    assert r["pct_seroconverted"] == 100.0 and r["ci_low"] == pytest.approx(2.5)
    r = s[(s["endpoint"] == "c3") & (s["dose_level"] == 1) & (s["visit"] == "Month 3")].iloc[0]
    assert (r["n_low"], r["n_baseline_low"], r["n_normalised"]) == (0, 1, 1)
    r = s[(s["endpoint"] == "igg") & (s["dose_level"] == 1) & (s["visit"] == "Month 3")].iloc[0]
    assert (r["n_low"], r["n_newly_low"]) == (1, 1)
