"""R datasets::Theoph (oral) and datasets::Indometh (IV bolus), copied into tests/data.

Cmax, Tmax and the linear AUClast are computed here per subject with a plain loop and
numpy.trapezoid; lambda_z is checked against scipy's regression on the points the rule
chose, and the rule's choice against every other tail.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.nca import nca

DATA = Path(__file__).parents[1] / "data"


def theoph():
    d = pd.read_csv(DATA / "theoph.csv")
    return d.rename(columns={"ID": "id", "TIME": "time", "CONC": "dv", "DOSE": "dose"})


def indometh():
    d = pd.read_csv(DATA / "indometh.csv")
    return d.rename(columns={"ID": "id", "TIME": "time", "CONC": "dv"})


@pytest.fixture(scope="module")
def theoph_linear():
    return nca(theoph(), dosing="extravascular", auc_method="linear", time_unit="h",
               conc_unit="mg/L")


def test_theoph_cmax_tmax_auclast(theoph_linear):
    w = theoph_linear.to_wide().set_index("id")
    d = theoph()
    assert len(w) == 12 == d["id"].nunique()
    for pid, g in d.groupby("id"):
        t, c = g["time"].to_numpy(), g["dv"].to_numpy()
        i = int(np.argmax(c))
        assert w.loc[pid, "CMAX"] == c[i]
        assert w.loc[pid, "TMAX"] == t[i]
        last = np.flatnonzero(c > 0)[-1]
        assert w.loc[pid, "TLST"] == t[last] and w.loc[pid, "CLST"] == c[last]
        auc = 0.0
        for k in range(last):
            auc += (t[k + 1] - t[k]) * (c[k] + c[k + 1]) / 2
        assert w.loc[pid, "AUCLST"] == pytest.approx(auc, rel=1e-12)
        assert w.loc[pid, "AUCLST"] == pytest.approx(np.trapezoid(c[:last + 1], t[:last + 1]),
                                                     rel=1e-12)
    assert w.loc[2, "TLST"] == 24.30  # R's copy (other packages' copies differ here)


def tails_after_tmax(t, c):
    i = int(np.argmax(c))
    return t[i + 1:], np.log(c[i + 1:])


@pytest.mark.parametrize("which", ["theoph", "indometh"])
def test_lambda_z_matches_a_direct_regression_on_the_chosen_points(which):
    if which == "theoph":
        d, r = theoph(), nca(theoph(), dosing="extravascular", time_unit="h")
    else:
        d, r = indometh(), nca(indometh(), dosing="iv_bolus", time_unit="h")
    w = r.to_wide().set_index("id")
    pts = r.points
    for pid, g in d.groupby("id"):
        used = pts[(pts["id"] == pid) & pts["lz_used"]]
        assert len(used) == w.loc[pid, "LAMZNPT"] >= 3
        ref = stats.linregress(used["time"], np.log(used["dv"]))
        assert w.loc[pid, "LAMZ"] == pytest.approx(-ref.slope, rel=1e-10)
        assert w.loc[pid, "R2"] == pytest.approx(ref.rvalue**2, rel=1e-10)
        assert w.loc[pid, "LAMZHL"] == pytest.approx(np.log(2) / -ref.slope, rel=1e-10)
        assert w.loc[pid, "CLSTP"] == pytest.approx(
            np.exp(ref.intercept + ref.slope * w.loc[pid, "TLST"]), rel=1e-9)
        aucifo = w.loc[pid, "AUCLST"] + w.loc[pid, "CLST"] / w.loc[pid, "LAMZ"]
        assert w.loc[pid, "AUCIFO"] == pytest.approx(aucifo, rel=1e-12)
        assert w.loc[pid, "AUCPEO"] == pytest.approx(
            100 * (1 - w.loc[pid, "AUCLST"] / aucifo), rel=1e-10)
        # the chosen points are the last n; no other tail has a better adjusted R^2
        t, c = g["time"].to_numpy(), g["dv"].to_numpy()
        assert used["time"].tolist() == t[-len(used):].tolist()
        first = 0 if which == "indometh" else int(np.argmax(c)) + 1  # IV bolus: Cmax allowed
        best = max(_adj(t[-n:], np.log(c[-n:])) for n in range(3, len(t) - first + 1))
        assert w.loc[pid, "R2ADJ"] >= best - 1e-4 - 1e-12


def _adj(t, y):
    r = stats.linregress(t, y)
    n = len(t)
    return 1 - (1 - r.rvalue**2) * (n - 1) / (n - 2) if r.slope < 0 else -np.inf


def test_indometh_iv_bolus():
    r = nca(indometh(), dosing="iv_bolus", auc_method="linear", time_unit="h")
    w = r.to_wide().set_index("id")
    for pid, g in indometh().groupby("id"):
        t, c = g["time"].to_numpy(), g["dv"].to_numpy()
        assert w.loc[pid, "CMAX"] == c.max() == c[0] and w.loc[pid, "TMAX"] == t[0] == 0.25
        # C0 back-extrapolated log-linearly from the first two samples
        slope = (np.log(c[1]) - np.log(c[0])) / (t[1] - t[0])
        c0 = np.exp(np.log(c[0]) - slope * t[0])
        assert w.loc[pid, "C0"] == pytest.approx(c0, rel=1e-12)
        auc = np.trapezoid(np.r_[c0, c], np.r_[0.0, t])
        assert w.loc[pid, "AUCLST"] == pytest.approx(auc, rel=1e-12)


def test_theoph_linear_log_is_below_linear_on_the_decline(theoph_linear):
    log = nca(theoph(), dosing="extravascular", time_unit="h").to_wide().set_index("id")
    lin = theoph_linear.to_wide().set_index("id")
    assert (log["AUCLST"] < lin["AUCLST"]).all()  # a convex decline
    assert (log["AUCLST"] > 0.95 * lin["AUCLST"]).all()
    assert (log["CMAX"] == lin["CMAX"]).all()
