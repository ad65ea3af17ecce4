"""AUC methods, interpolation, extrapolation and AUCinf, against hand computations."""

import math

import numpy as np
import pandas as pd
import pytest

from carkinetics.nca import auc_segments, nca

LN2 = math.log(2)
T = [0.0, 1.0, 2.0, 4.0, 8.0, 12.0]
C = [0.0, 8.0, 10.0, 6.0, 3.0, 1.5]  # Tmax 2; after it, an exact half-life of 4


def wide(method, **kw):
    d = pd.DataFrame({"id": "A", "time": T, "dv": C})
    return nca(d, dosing="extravascular", auc_method=method, **kw).to_wide().iloc[0]


def log_trap(dt, c1, c2):
    return dt * (c1 - c2) / math.log(c1 / c2)


# by hand: linear segments 4, 9, 16, 18, 9
LIN = 4 + 9 + 16 + 18 + 9
LOG = 4 + 9 + log_trap(2, 10, 6) + log_trap(4, 6, 3) + log_trap(4, 3, 1.5)
LAMZ = LN2 / 4


def test_segments_by_hand():
    auc, aumc, is_log = auc_segments(np.array(T), np.array(C), "linear")
    assert auc.tolist() == [4, 9, 16, 18, 9]
    assert aumc.tolist() == [4, 14, 44, 96, 84]  # dt (t1 c1 + t2 c2) / 2
    assert not is_log.any()
    auc, aumc, is_log = auc_segments(np.array(T), np.array(C), "linear-log")
    assert is_log.tolist() == [False, False, True, True, True]
    assert auc[2] == pytest.approx(log_trap(2, 10, 6), rel=1e-13)
    k = math.log(10 / 6) / 2  # log AUMC: (t1 c1 - t2 c2)/k + (c1 - c2)/k^2
    assert aumc[2] == pytest.approx((2 * 10 - 4 * 6) / k + 4 / k**2, rel=1e-12)
    with pytest.raises(ValueError, match="auc_method"):
        auc_segments(np.array(T), np.array(C), "log")


@pytest.mark.parametrize("method, auclast", [("linear", LIN), ("linear-log", LOG)])
def test_auclast_aucinf_by_hand(method, auclast):
    w = wide(method)
    assert (w["CMAX"], w["TMAX"], w["CLST"], w["TLST"]) == (10.0, 2.0, 1.5, 12.0)
    assert w["AUCLST"] == pytest.approx(auclast, rel=1e-12)
    assert w["AUCALL"] == pytest.approx(auclast, rel=1e-12)
    assert w["LAMZ"] == pytest.approx(LAMZ, rel=1e-12)
    assert w["LAMZHL"] == pytest.approx(4.0, rel=1e-12)
    assert (w["LAMZNPT"], w["LAMZLL"], w["LAMZUL"]) == (3, 4.0, 12.0)
    assert w["R2ADJ"] == pytest.approx(1.0, abs=1e-12)
    aucifo = auclast + 1.5 / LAMZ
    assert w["AUCIFO"] == pytest.approx(aucifo, rel=1e-12)
    assert w["AUCIFP"] == pytest.approx(aucifo, rel=1e-10)  # the line passes through Clast
    assert w["AUCPEO"] == pytest.approx(100 * (1.5 / LAMZ) / aucifo, rel=1e-12)


def test_aumc_by_hand():
    w = wide("linear")
    assert w["AUMCLST"] == pytest.approx(242.0, rel=1e-12)
    expected = 242.0 + 1.5 * 12 / LAMZ + 1.5 / LAMZ**2
    assert w["AUMCIFO"] == pytest.approx(expected, rel=1e-12)


def test_interval_interpolation_linear_and_log():
    iv = [(0, 6), (1.5, 3), (2, 12), (0, 12)]
    lin = wide("linear", intervals=iv)
    # t = 6 on the linear segment 4-8: c = 4.5
    assert lin["AUCINT_0_6"] == pytest.approx(4 + 9 + 16 + 2 * (6 + 4.5) / 2, rel=1e-12)
    # c(1.5) = 9 and c(3) = 8: F(3) - F(1.5) = (4 + 9 + 9) - (4 + 0.5 * (8 + 9) / 2)
    assert lin["AUCINT_1.5_3"] == pytest.approx(22 - 8.25, rel=1e-12)
    assert lin["AUCINT_0_12"] == pytest.approx(LIN, rel=1e-12)
    log = wide("linear-log", intervals=iv)
    c6 = 6 * math.exp(-LAMZ * 2)  # log interpolation on the falling segment
    assert log["AUCINT_0_6"] == pytest.approx(4 + 9 + log_trap(2, 10, 6) + (6 - c6) / LAMZ,
                                              rel=1e-12)
    k = math.log(10 / 6) / 2
    c3 = 10 * math.exp(-k)
    assert log["AUCINT_1.5_3"] == pytest.approx((9 + (10 - c3) / k) - 0.5 * (8 + 9) / 2,
                                                rel=1e-12)
    assert log["AUCINT_2_12"] == pytest.approx(LOG - 13, rel=1e-12)


def test_interval_after_the_last_sample_is_flagged_or_extrapolated():
    d = pd.DataFrame({"id": "A", "time": T, "dv": C})
    r = nca(d, dosing="extravascular", auc_method="linear", intervals=[(0, 20), (13, 20)])
    rows = r.table[r.table["PPTESTCD"] == "AUCINT"]
    assert rows["PPORRES"].isna().all()
    assert rows["exclude"].str.contains("after the last usable concentration").all()
    assert rows["exclude"].str.contains("extrapolate=True").all()
    r = nca(d, dosing="extravascular", auc_method="linear", intervals=[(0, 20), (13, 20)],
            extrapolate=True)
    w = r.to_wide().iloc[0]
    assert w["AUCINT_0_20"] == pytest.approx(LIN + 1.5 / LAMZ * (1 - math.exp(-8 * LAMZ)),
                                             rel=1e-12)
    assert w["AUCINT_13_20"] == pytest.approx(
        1.5 / LAMZ * (math.exp(-LAMZ) - math.exp(-8 * LAMZ)), rel=1e-12)
    notes = r.table.loc[r.table["PPTESTCD"] == "AUCINT", "note"]
    assert notes.str.contains("extrapolated with lambda_z after time 12").all()


def test_extrapolation_needs_lambda_z():
    d = pd.DataFrame({"id": "A", "time": [0, 1, 2, 4.0], "dv": [0, 5, 10, 6.0]})
    r = nca(d, dosing="extravascular", intervals=[(0, 10)], extrapolate=True)
    row = r.table[r.table["PPTESTCD"] == "AUCINT"].iloc[0]
    assert np.isnan(row["PPORRES"])
    assert "needs lambda_z" in row["exclude"] and "fewer than 3" in row["exclude"]


def test_interval_validation():
    d = pd.DataFrame({"id": "A", "time": T, "dv": C})
    for bad in [(5, 1), (-1, 4), (0, np.inf), ("a", 2), (1,)]:
        with pytest.raises(ValueError, match="Invalid interval"):
            nca(d, intervals=[bad])


def test_missing_time_zero_is_zero_for_extravascular_and_cart():
    d = pd.DataFrame({"id": "A", "time": [1, 2, 4.0], "dv": [4, 10, 5.0]})
    for dosing in ("extravascular", "cart"):
        w = nca(d, dosing=dosing, auc_method="linear").to_wide().iloc[0]
        assert w["AUCLST"] == pytest.approx(2 + 7 + 15)


def test_units_carried_from_the_data():
    d = pd.DataFrame({"id": "A", "time": T, "dv": C, "endpoint": "car_qpcr",
                      "unit": "copies/ug"})
    t = nca(d).table.set_index("PPTESTCD")
    assert t.loc["CMAX", "PPORRESU"] == "copies/ug"
    assert t.loc["AUCLST", "PPORRESU"] == "copies/ug*day"
    assert t.loc["AUMCLST", "PPORRESU"] == "copies/ug*day^2"
    assert t.loc["LAMZ", "PPORRESU"] == "1/day"
    assert t.loc["LAMZHL", "PPORRESU"] == "day"
    assert t.loc["AUCPEO", "PPORRESU"] == "%"
    assert t.loc["FOLDX", "PPORRESU"] == ""
    t = nca(d.drop(columns="unit"), conc_unit="mg/L", time_unit="h",
            dosing="extravascular").table
    assert set(t.loc[t["PPTESTCD"] == "AUCIFO", "PPORRESU"]) == {"mg/L*h"}
    with pytest.raises(ValueError, match="CAR-T parameters: they use days"):
        nca(d, time_unit="h")  # AUC0-28d would silently mean 28 hours
    with pytest.raises(ValueError, match="early_end"):
        nca(d, early_end=-1)
