"""CAR-T parameters on constructed piecewise profiles (expansion, early decline, persistence)."""

import math

import numpy as np
import pandas as pd
import pytest

from carkinetics.nca import nca

LN2 = math.log(2)
RHO = LN2 / 0.8  # doubling time 0.8 d
ALPHA, BETA = 0.2, 0.02
LLOQ = 50.0


def level(t):
    t = np.asarray(t, float)
    c10 = 20 * math.exp(RHO * 10)
    c28 = c10 * math.exp(-ALPHA * 18)
    return np.where(t <= 10, 20 * np.exp(RHO * t),
                    np.where(t <= 28, c10 * np.exp(-ALPHA * (t - 10)),
                             c28 * np.exp(-BETA * (t - 28))))


TIMES = np.array([-1, 1, 3, 5, 7, 10, 14, 21, 28, 56, 84, 180, 365.0])


def trial(endpoint="car_qpcr", unit="copies/ug", pid="P1"):
    c = level(TIMES)
    cens = (c < LLOQ).astype(int)
    cens[TIMES == 180] = cens[TIMES == 365] = 1  # lost after day 84
    c = np.where(cens == 1, LLOQ, c)
    return pd.DataFrame({"id": pid, "time": TIMES, "dv": c, "cens": cens, "lloq": LLOQ,
                         "endpoint": endpoint, "unit": unit, "dose": 1e6, "dose_level": 2})


def test_cart_parameters_on_a_known_profile():
    d = trial()
    assert d.loc[d["time"] == 1, "cens"].item() == 1  # day 1 is below the LLOQ
    w = nca(d).to_wide().iloc[0]
    cmax = level(10.0)
    assert (w["CMAX"], w["TMAX"]) == (pytest.approx(cmax, rel=1e-12), 10.0)
    assert w["FOLDX"] == pytest.approx(cmax / LLOQ, rel=1e-12)  # first level BLQ -> LLOQ
    assert w["TDOUB"] == pytest.approx(0.8, rel=1e-10)
    assert w["KEXP"] == pytest.approx(RHO, rel=1e-10)
    assert w["KEXPNPT"] == 4  # days 3, 5, 7, 10
    assert w["HLEARLY"] == pytest.approx(LN2 / ALPHA, rel=1e-10)
    assert w["KEARLNPT"] == 4  # days 10, 14, 21, 28
    assert w["TLST"] == 84.0  # persistence: last quantified sample
    assert w["TFBLQ"] == 180.0
    assert w["LAMZ"] == pytest.approx(BETA, rel=1e-10)  # the last 3 points: 28, 56, 84
    assert w["LAMZNPT"] == 3


def test_cart_auc_intervals_by_hand():
    d = trial()
    w = nca(d).to_wide().iloc[0]
    # curve: C(0) = 0, day 1 BLQ -> 0 (before the first quantified), linear up, log down
    t = np.array([0, 1, 3, 5, 7, 10, 14, 21, 28, 56, 84, 180.0])
    c = np.r_[0.0, 0.0, level(t[2:11]), 0.0]  # day 180 BLQ after the last -> 0
    seg = []
    for k in range(t.size - 1):
        dt, c1, c2 = t[k + 1] - t[k], c[k], c[k + 1]
        seg.append(dt * (c1 - c2) / math.log(c1 / c2) if 0 < c2 < c1 else dt * (c1 + c2) / 2)
    seg = np.array(seg)
    assert w["AUCINT_0_28"] == pytest.approx(seg[t[1:] <= 28].sum(), rel=1e-12)
    assert w["AUCINT_0_84"] == pytest.approx(seg[t[1:] <= 84].sum(), rel=1e-12)
    assert w["AUCLST"] == pytest.approx(w["AUCINT_0_84"], rel=1e-12)  # Tlast = 84
    assert w["AUCALL"] == pytest.approx(seg.sum(), rel=1e-12)
    # the exponential pieces are integrated exactly by the log trapezoid
    exact_10_28 = level(10.0) / ALPHA * (1 - math.exp(-ALPHA * 18))
    assert seg[(t[:-1] >= 10) & (t[1:] <= 28)].sum() == pytest.approx(exact_10_28, rel=1e-12)


def test_qpcr_and_flow_are_separate_profiles():
    qp = trial()
    fl = trial("car_flow", "cells/uL").assign(dv=lambda x: x["dv"] / 100, lloq=LLOQ / 100)
    r = nca(pd.concat([qp, fl]))
    w = r.to_wide().set_index("endpoint")
    assert list(w.index) == ["car_flow", "car_qpcr"]
    assert w.loc["car_flow", "CMAX"] == pytest.approx(w.loc["car_qpcr", "CMAX"] / 100)
    assert w.loc["car_flow", "TDOUB"] == pytest.approx(0.8, rel=1e-10)
    units = r.table.drop_duplicates(["endpoint", "PPTESTCD"]).set_index(
        ["endpoint", "PPTESTCD"])["PPORRESU"]
    assert units[("car_flow", "AUCINT")] == "cells/uL*day"
    assert units[("car_qpcr", "AUCINT")] == "copies/ug*day"
    only = nca(pd.concat([qp, fl]), endpoint="car_flow").to_wide()
    assert only["endpoint"].tolist() == ["car_flow"]
    assert (w.loc["car_qpcr", "dose"], w.loc["car_qpcr", "dose_level"]) == (1e6, 2)


def test_first_level_quantified_and_no_expansion_sampled():
    d = pd.DataFrame({"id": 1, "time": [0.5, 2, 9, 14, 28.0], "dv": [400, 300, 200, 100, 50.0]})
    t = nca(d).table.set_index("PPTESTCD")
    assert t.loc["FOLDX", "PPORRES"] == 1.0  # the first post-infusion sample is the peak
    assert np.isnan(t.loc["TDOUB", "PPORRES"])
    assert t.loc["TDOUB", "exclude"] == \
        "Tmax is the first quantified sample: no expansion phase sampled"
    assert t.loc["TFBLQ", "exclude"] == "no BLQ sample after Tmax: quantified to the last sample"


def test_early_decline_window():
    d = trial()
    late = nca(d, early_end=14.0).to_wide().iloc[0]
    assert late["KEARLNPT"] == 2 and late["HLEARLY"] == pytest.approx(LN2 / ALPHA, rel=1e-10)
    t = nca(d, early_end=7.0).table.set_index("PPTESTCD")
    assert t.loc["HLEARLY", "exclude"] == "Tmax is after early_end = 7"


def test_pre_infusion_samples_are_ignored():
    d = trial()
    d.loc[d["time"] == -1, ["dv", "cens"]] = [5000.0, 0]  # a quantified baseline
    w = nca(d).to_wide().iloc[0]
    assert w["CMAX"] == pytest.approx(level(10.0)) and w["FOLDX"] == pytest.approx(
        level(10.0) / LLOQ)


def test_cart_parameters_can_be_switched():
    d = trial()
    codes = set(nca(d, dosing="extravascular").table["PPTESTCD"])
    assert "FOLDX" not in codes and "AUCINT" not in codes
    codes = set(nca(d, dosing="extravascular", cart=True).table["PPTESTCD"])
    assert {"FOLDX", "TDOUB", "HLEARLY", "TFBLQ", "AUCINT"} <= codes
