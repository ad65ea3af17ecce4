"""Smooth (soft-minimum) variant of the piecewise model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carkinetics.models import get_model

LN2 = math.log(2.0)


@pytest.fixture
def sm():
    return get_model("smooth")


@pytest.fixture
def pw():
    return get_model("piecewise")


def _pw(p):
    return {k: v for k, v in p.items() if k != "kappa"}


@pytest.mark.parametrize("kappa", [1e3, 1e4, 1e5, 1e6])
def test_sharp_limit_is_piecewise(sm, pw, kappa):
    p = dict(sm.typical(), kappa=kappa)
    t = np.concatenate([np.linspace(0.0, 60.0, 6001), 9.3 + np.array([-1e-3, -1e-6, 0.0,
                                                                       1e-6, 1e-3])])
    ls, lp = np.log(sm.predict(t, p)), np.log(pw.predict(t, _pw(p)))
    gap = lp - ls
    # soft minimum: below the piecewise curve by at most ln2/kappa, equal at the crossing
    assert np.all(gap >= -1e-12)
    assert np.all(gap <= LN2 / kappa * (1 + 1e-9) + 1e-12)
    np.testing.assert_allclose(sm.predict(9.3, p), 24000.0 * 2.0 ** (-1.0 / kappa), rtol=1e-12)
    # away from the corner the curves agree to rounding
    far = np.abs(t - 9.3) > 50.0 / kappa
    np.testing.assert_allclose(ls[far], lp[far], rtol=0, atol=1e-12)
    if kappa >= 1e6:
        np.testing.assert_allclose(sm.predict(t, p), pw.predict(t, _pw(p)), rtol=1e-6)


def test_sharp_limit_derived(sm, pw):
    p = dict(sm.typical(), kappa=1e6)
    ds, dp = sm.derived(p, below=[100.0]), pw.derived(_pw(p), below=[100.0])
    for key in ("auc_0_28", "auc_0_84", "auc_0_inf", "cmax", "time_below_100"):
        np.testing.assert_allclose(ds[key], dp[key], rtol=2e-6, err_msg=key)
    np.testing.assert_allclose(ds["tmax"], dp["tmax"], atol=1e-5)
    for key in ("doubling_time", "t_half_alpha", "t_half_beta"):
        np.testing.assert_allclose(ds[key], dp[key], rtol=1e-15)


@pytest.mark.parametrize("over", [
    {}, {"kappa": 0.3}, {"kappa": 1e3}, {"kappa": 1e6}, {"alpha": 5.0, "fb": 1e-3, "kappa": 2.0},
    {"foldx": 1e8, "kappa": 50.0}, {"alpha": 0.01, "beta": 0.005, "kappa": 1.0},
    {"tmax": 1.0, "foldx": 2.0, "kappa": 0.5},
])
def test_auc_matches_quad(sm, ref_auc, over):
    p = dict(sm.typical(), **over)
    d = sm.derived(p)
    for key, t1 in (("auc_0_28", 28.0), ("auc_0_84", 84.0), ("auc_0_inf", math.inf)):
        np.testing.assert_allclose(d[key], ref_auc(sm, p, 0.0, t1), rtol=1e-8, err_msg=key)


def test_realised_peak_is_stationary(sm):
    p = sm.typical()
    tpk, cpk = sm.peak(p)
    h = 1e-4
    left, right = sm.predict([tpk - h, tpk + h], p)
    assert left < cpk and right < cpk
    # central difference of log C vanishes at the peak (to O(h^2))
    slope = (math.log(right) - math.log(left)) / (2 * h)
    assert abs(slope) < 1e-6
    # with kappa = 4 the peak is blunted and delayed a little
    assert 9.3 < float(tpk) < 10.5 and 0.8 * 24000 < float(cpk) < 24000


def test_peak_at_zero_when_never_rising(sm):
    # tiny expansion, strong blunting: the curve only declines from t = 0
    p = dict(sm.typical(), foldx=1.01, tmax=0.5, kappa=0.3)
    tpk, cpk = sm.peak(p)
    assert float(tpk) == 0.0
    np.testing.assert_allclose(cpk, sm.predict(0.0, p), rtol=1e-15)


def test_vectorised_derived_equals_loop(sm):
    rng = np.random.default_rng(3)
    n = 7
    p = {k: v * np.exp(0.3 * rng.standard_normal(n)) for k, v in sm.typical().items()}
    p["fb"] = np.clip(p["fb"], 1e-4, 0.5)
    d = sm.derived(p, below=[50.0])
    for i in range(n):
        di = sm.derived({k: v[i] for k, v in p.items()}, below=[50.0])
        for key in d:
            np.testing.assert_allclose(d[key][i], di[key], rtol=1e-12, err_msg=key)


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")
def test_pytensor_default_mode_and_gradient(sm):
    # the C-compiled graph (as PyMC uses it) and a finite gradient through the soft min
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    from carkinetics.models._xp import pytensor_namespace

    t = pt.dvector("t")
    sym = {k: pt.dscalar(k) for k in sm.param_names}
    out = sm.log_predict(t, sym, xp=pytensor_namespace()).sum()
    fn = pytensor.function([t, *sym.values()], [out, pt.grad(out, sym["tmax"])])
    tt = np.array([1.0, 9.3, 20.0])
    val, grad = fn(tt, *sm.typical().values())
    np.testing.assert_allclose(val, np.sum(sm.log_predict(tt, sm.check_params(sm.typical()))),
                               rtol=1e-13)
    eps = 1e-6
    lp = [np.sum(sm.log_predict(tt, sm.check_params(dict(sm.typical(), tmax=9.3 + s))))
          for s in (eps, -eps)]
    np.testing.assert_allclose(grad, (lp[0] - lp[1]) / (2 * eps), rtol=1e-6)
