"""BLQ rules: every action in every position, by hand (linear AUC, LLOQ 1)."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.nca import BLQRule, nca

# BLQ before infusion (ignored), at 0 and 1 (first), 3 (middle), 8 and 10 (last); Tmax 4
TIME = [-1, 0, 1, 2, 3, 4, 6, 8, 10.0]
CENS = [1, 1, 1, 0, 1, 0, 0, 1, 1]
DV = [1, 1, 1, 4, 1, 8, 4, 1, 1.0]


def run(rule, **kw):
    d = pd.DataFrame({"id": 7, "time": TIME, "dv": DV, "cens": CENS, "lloq": 1.0})
    return nca(d, blq=rule, dosing="extravascular", auc_method="linear", **kw)


def trap(points):
    t, c = np.array(points, dtype=float).T
    return float(np.sum(np.diff(t) * (c[1:] + c[:-1]) / 2))


VALUE = {"zero": 0.0, "lloq/2": 0.5, "lloq": 1.0}


def expected(first="zero", middle="drop", last="zero"):
    """Curve points after the rule, written out."""
    pts = [] if first == "drop" else [(0, VALUE[first]), (1, VALUE[first])]
    if first == "drop":
        pts = [(0, 0.0)]  # C(0) = 0 assumed when time 0 is not used
    pts += [(2, 4.0)]
    pts += [] if middle == "drop" else [(3, VALUE[middle])]
    pts += [(4, 8.0), (6, 4.0)]
    tail = [] if last == "drop" else [(8, VALUE[last]), (10, VALUE[last])]
    return pts, pts + tail


def test_defaults_are_the_cart_defaults():
    assert BLQRule() == BLQRule(first="zero", middle="drop", last="zero")
    w = run(None).to_wide().iloc[0]
    # (0,0) (1,0) (2,4) (4,8) (6,4) (8,0) (10,0): 0 + 2 + 12 + 12 + 4 + 0
    assert w["AUCLST"] == 26.0 and w["AUCALL"] == 30.0
    assert (w["CMAX"], w["TMAX"], w["CLST"], w["TLST"]) == (8.0, 4.0, 4.0, 6.0)


@pytest.mark.parametrize("position", ["first", "middle", "last"])
@pytest.mark.parametrize("action", ["drop", "zero", "lloq/2", "lloq"])
def test_each_action_in_each_position(position, action):
    w = run(BLQRule(**{position: action})).to_wide().iloc[0]
    to_tlast, full = expected(**{position: action})
    assert w["AUCLST"] == pytest.approx(trap(to_tlast), rel=1e-12)
    assert w["AUCALL"] == pytest.approx(trap(full), rel=1e-12)
    # BLQ samples never become Cmax, Clast or Tlast
    assert (w["CMAX"], w["CLST"], w["TLST"]) == (8.0, 4.0, 6.0)


def test_some_values_by_hand():
    assert run(BLQRule(first="lloq")).to_wide()["AUCLST"].iloc[0] == 1 + 2.5 + 12 + 12
    assert run(BLQRule(middle="zero")).to_wide()["AUCLST"].iloc[0] == 2 + 2 + 4 + 12
    assert run(BLQRule(middle="lloq/2")).to_wide()["AUCLST"].iloc[0] == 2 + 2.25 + 4.25 + 12
    assert run(BLQRule(last="lloq")).to_wide()["AUCALL"].iloc[0] == 26 + 5 + 2


@pytest.mark.parametrize("before, after", [("zero", "drop"), ("lloq", "lloq/2"),
                                           ("drop", "zero")])
def test_rules_relative_to_tmax(before, after):
    rule = BLQRule(before_tmax=before, after_tmax=after)
    assert rule.relative_to_tmax
    w = run(rule).to_wide().iloc[0]
    # before Tmax (4): the BLQ at 0, 1 and 3; after: 8 and 10
    _, full = expected(first=before, middle=before, last=after)
    assert w["AUCALL"] == pytest.approx(trap(full), rel=1e-12)


def test_blq_never_enters_lambda_z():
    d = pd.DataFrame({"id": 1, "time": [0, 1, 2, 4, 6, 8, 10.0],
                      "dv": [0, 10, 8, 4, 2, 1, 1.0], "cens": [0, 0, 0, 0, 0, 0, 1]})
    r = nca(d, blq=BLQRule(last="lloq"), dosing="extravascular")
    pts = r.points
    assert not pts.loc[pts["cens"] == 1, "lz_candidate"].any()
    assert r.to_wide()["LAMZUL"].iloc[0] == 8.0


def test_interval_over_trailing_blq():
    # default (last -> 0): AUC0-10 is defined; with last dropped it ends at Tlast = 6
    assert run(None, intervals=[(0, 10)]).to_wide()["AUCINT_0_10"].iloc[0] == 30.0
    # c(7) = 2 halfway down to the BLQ set to 0: + (4 + 2) / 2
    assert run(None, intervals=[(0, 7)]).to_wide()["AUCINT_0_7"].iloc[0] == 26 + 3
    r = run(BLQRule(last="drop"), intervals=[(0, 10)])
    row = r.table[r.table["PPTESTCD"] == "AUCINT"].iloc[0]
    assert np.isnan(row["PPORRES"]) and "after the last usable" in row["exclude"]
    # extrapolation after a BLQ set to 0 adds nothing
    r = run(None, intervals=[(0, 20)], extrapolate=True)
    row = r.table[r.table["PPTESTCD"] == "AUCINT"].iloc[0]
    assert row["PPORRES"] == 30.0 and "ends at a BLQ set to 0" in row["note"]


def test_all_blq_profile():
    d = pd.DataFrame({"id": 1, "time": [1, 2, 3.0], "dv": [1, 1, 1.0], "cens": 1})
    r = nca(d)
    assert r.table["PPORRES"].isna().all()
    assert (r.table["exclude"] == "fewer than 2 quantified post-dose samples (0)").all()


def test_rule_validation():
    with pytest.raises(ValueError, match="first"):
        BLQRule(first="half")
    with pytest.raises(ValueError, match="not both"):
        BLQRule(first="zero", after_tmax="drop")
    with pytest.raises(ValueError, match="give both"):
        BLQRule(before_tmax="zero")
    with pytest.raises(TypeError, match="BLQRule"):
        nca(pd.DataFrame({"id": 1, "time": [1, 2.0], "dv": [1, 2.0]}), blq="zero")
    assert BLQRule(before_tmax="zero", after_tmax="drop").describe() == \
        "before_tmax=zero, after_tmax=drop"
