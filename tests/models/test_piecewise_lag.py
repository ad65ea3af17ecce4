"""Piecewise model with a lag phase (Ogasawara 2021)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.models import get_model
from carkinetics.models.piecewise_lag import PiecewiseLagModel


@pytest.fixture
def lag():
    return get_model("piecewise_lag")


def test_typical_reproduces_ogasawara(lag):
    # Source: Ogasawara 2021 (Clin Pharmacokinet, doi:10.1007/s40262-021-01039-5) abstract:
    # population means lag 3.27, doubling time 0.755, Tmax 9.29, initial-decline t1/2
    # 5.00 and terminal t1/2 352 days.
    d = lag.derived(lag.typical())
    np.testing.assert_allclose(
        [d["tlag"], d["doubling_time"], d["tmax"], d["t_half_alpha"], d["t_half_beta"]],
        [3.27, 0.755, 9.29, 5.00, 352.0], rtol=1e-13)
    # CLINICAL.md 2b (I): growth rate 0.918/day, fold expansion over the growth ~ 250
    assert round(float(d["rho"]), 3) == 0.918
    assert 240 < float(d["foldx"]) < 260


def test_hand_formula(lag):
    p = dict(tlag=2.0, foldx=500.0, tmax=8.0, cmax=1e4, alpha=0.2, fb=0.01, beta=0.004)
    rho, r0 = math.log(500.0) / 6.0, 1e4 / 500.0
    t = np.array([-0.5, 0.0, 1.0, 2.0, 5.0, 7.999, 8.0, 30.0])
    expect = [0.0, r0, r0, r0, r0 * math.exp(rho * 3.0), r0 * math.exp(rho * 5.999), 1e4,
              1e4 * (0.99 * math.exp(-0.2 * 22) + 0.01 * math.exp(-0.004 * 22))]
    np.testing.assert_allclose(lag.predict(t, p), expect, rtol=1e-13)
    # closed-form AUC against the hand integral of the three phases
    auc_inf = r0 * 2.0 + r0 * (500.0 - 1.0) / rho + 1e4 * (0.99 / 0.2 + 0.01 / 0.004)
    np.testing.assert_allclose(lag.cumulative_auc(np.inf, p), auc_inf, rtol=1e-13)
    np.testing.assert_allclose(lag.auc(0.5, 1.5, p), r0, rtol=1e-13)
    np.testing.assert_allclose(lag.derived(p)["doubling_time"], math.log(2) / rho, rtol=1e-14)


def test_continuous_at_tlag_and_tmax(lag):
    p = lag.typical()
    for s in (p["tlag"], p["tmax"]):
        lo, hi = lag.predict([s * (1 - 1e-12), s * (1 + 1e-12)], p)
        assert math.isclose(lo, hi, rel_tol=1e-9)


@pytest.mark.parametrize("tlag", [1e-9, 1e-12])
def test_limit_tlag_to_zero_is_piecewise(lag, tlag):
    pw = get_model("piecewise")
    base = pw.typical()
    p = dict(base, tlag=tlag)
    t = np.array([-1.0, 0.0, 1e-3, 1.0, 5.0, 9.3, 9.31, 30.0, 500.0])
    tol = 20 * tlag + 1e-14
    np.testing.assert_allclose(lag.predict(t, p), pw.predict(t, base), rtol=tol)
    dl, dp = lag.derived(p, below=[10.0]), pw.derived(base, below=[10.0])
    for key in dp:
        np.testing.assert_allclose(dl[key], dp[key], rtol=tol, err_msg=key)


def test_tlag_must_precede_tmax(lag):
    p = lag.typical()
    with pytest.raises(ModelSpecError, match=r"tlag=9\.5.*tmax=9\.29"):
        lag.predict(1.0, dict(p, tlag=9.5))
    with pytest.raises(ModelSpecError, match="tlag < tmax"):
        lag.predict(1.0, dict(p, tlag=p["tmax"]))
    with pytest.raises(ModelSpecError, match="1 bad"):
        lag.derived(dict(p, tlag=np.array([1.0, 2.0, 10.0])))


def test_from_derived_inverts_derived(lag):
    p = dict(tlag=np.array([1.0, 3.0]), foldx=np.array([50.0, 3000.0]),
             tmax=np.array([6.0, 12.0]), cmax=np.array([1e3, 5e4]),
             alpha=np.array([0.3, 0.1]), fb=np.array([0.02, 0.001]),
             beta=np.array([0.01, 0.002]))
    d = lag.derived(p)
    back = PiecewiseLagModel.from_derived(d["tlag"], d["doubling_time"], d["tmax"],
                                          d["t_half_alpha"], d["t_half_beta"], d["cmax"],
                                          p["fb"])
    for k, v in p.items():
        np.testing.assert_allclose(back[k], v, rtol=1e-12)
