"""The pytensor censored likelihood equals the numpy one (loglik_obs), row by row."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.compile.mode import Mode
from scipy import stats
from scipy.special import log_ndtr

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting.bayes.loglik import log_ndtr_diff_pt, log_ndtr_pt, loglik_obs_pt
from carkinetics.observation import ErrorModel, log_ndtr_diff, loglik_obs, m6_first_mask

KINDS = ("log_additive", "proportional", "additive", "combined")
SIGMA = {"log_additive": 0.4, "proportional": 0.3, "additive": 2.0, "combined": (1.5, 0.2)}


def _data(kind: str):
    """Rows of every class: quantified, BLQ (plain and interval), above-ULOQ (plain and
    interval), with predictions from far below to far above the data."""
    rng = np.random.default_rng(11)
    n = 60
    ids = np.repeat(np.arange(6), 10)
    time = np.tile(np.arange(10.0), 6)
    cens = rng.choice([0, 0, 1, 1, -1], size=n)
    lloq = np.round(rng.uniform(5.0, 20.0, n), 2)
    uloq = np.round(rng.uniform(200.0, 400.0, n), 1)
    dv = np.where(cens == 1, lloq, np.where(cens == -1, uloq, rng.uniform(20.0, 200.0, n)))
    limit = np.full(n, np.nan)
    sel = rng.random(n) < 0.3
    limit[sel & (cens == 1)] = 0.3 * dv[sel & (cens == 1)]
    limit[sel & (cens == -1)] = 3.0 * dv[sel & (cens == -1)]
    # predictions: moderate, and extreme tails (tiny and huge relative to dv)
    pred = dv * np.exp(rng.normal(0.0, 0.5, n))
    pred[::7] = dv[::7] * 1e-7 if kind == "log_additive" else dv[::7] / 40.0
    pred[3::11] = dv[3::11] * 1e7 if kind == "log_additive" else dv[3::11] * 40.0
    pred[5::13] = dv[5::13] * np.exp(-16.0) if kind == "log_additive" else dv[5::13] * 0.02
    first = m6_first_mask(ids, time, cens)
    return dict(dv=dv, cens=cens, lloq=lloq, uloq=uloq, limit=limit, pred=pred, first=first)


CASES = [(k, m) for k in KINDS for m in ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
         if not (k == "log_additive" and m == "m7")]


# limits off (the direct branch) and on (interval terms); the jacobian matters for log scale
VARIANTS = {k: ((False, False), (True, k == "log_additive")) for k in KINDS}
ALL = [(k, m, lim, jac) for k, m in CASES for lim, jac in VARIANTS[k]]


@pytest.fixture(scope="module")
def compiled():
    """One compiled pytensor function computing every (kind, method, jacobian, limits) case."""
    outs, keys, inputs = [], [], {}
    for kind in KINDS:
        d = _data(kind)
        p = pt.vector(f"pred_{kind}")
        inputs[kind] = (p, d)
        sig = SIGMA[kind]
        sig_t = tuple(pt.as_tensor_variable(s) for s in sig) if isinstance(sig, tuple) else \
            pt.as_tensor_variable(sig)
        for m in {mm for kk, mm in CASES if kk == kind}:
            for lim, jac in VARIANTS[kind]:
                kw = dict(error=kind, sigma=sig_t, lloq=d["lloq"], uloq=d["uloq"],
                          limit=d["limit"] if lim else None, method=m,
                          m6_first=d["first"], jacobian=jac)
                lp = pt.log(p) if kind == "log_additive" else None
                outs.append(loglik_obs_pt(d["dv"], d["cens"], log_pred=lp,
                                          pred=None if lp is not None else p, **kw))
                keys.append((kind, m, lim, jac))
    # pytensor's optimising rewrites (those PyMC compiles with) on the python linker: the
    # same numerics as the C linker without minutes of C compilation for this large graph
    mode = Mode(linker="py", optimizer="fast_run")
    f = pytensor.function([inputs[k][0] for k in KINDS], outs, mode=mode)
    vals = f(*[inputs[k][1]["pred"] for k in KINDS])
    return dict(zip(keys, vals, strict=True))


@pytest.mark.parametrize(("kind", "method", "with_limit", "jacobian"), ALL)
def test_equals_numpy(compiled, kind, method, with_limit, jacobian):
    d = _data(kind)
    ref = loglik_obs(d["dv"], d["pred"], d["cens"], error=kind, sigma=SIGMA[kind],
                     lloq=d["lloq"], uloq=d["uloq"], limit=d["limit"] if with_limit else None,
                     method=method, m6_first=d["first"], jacobian=jacobian)
    got = compiled[(kind, method, with_limit, jacobian)]
    assert np.all(np.isfinite(ref) == np.isfinite(got))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)
    # the data reach far into the tails: some censored terms are below -50
    if method in ("m3", "m4"):
        assert np.min(ref[d["cens"] != 0]) < -50.0


def test_log_additive_pred_zero_and_m4_is_m3():
    """A prediction of 0 (before infusion): BLQ rows contribute 0, quantified rows -inf."""
    dv = np.array([10.0, 5.0, 30.0])
    cens = np.array([0, 1, 1])
    p = pt.vector("p")
    outs = [loglik_obs_pt(dv, cens, error="log_additive", sigma=0.5, pred=p, method=m)
            for m in ("m3", "m4")]
    f = pytensor.function([p], outs)
    pred = np.array([0.0, 0.0, 20.0])
    got3, got4 = f(pred)
    ref = loglik_obs(dv, pred, cens, error="log_additive", sigma=0.5)
    assert np.isneginf(got3[0]) and got3[1] == 0.0
    np.testing.assert_allclose(got3, ref, rtol=1e-12)
    np.testing.assert_array_equal(got3, got4)


def test_log_ndtr_and_diff_tails_against_scipy():
    z = np.array([-60.0, -38.5, -10.0, -1.0000001, -1.0, -0.3, 0.0, 2.0, 8.0, 30.0])
    a = np.array([-np.inf, -40.0, -3.0, 0.5, 39.0, 1.0, 5.0, -2.0])
    b = np.array([-50.0, -39.0, 3.0, 0.5000001, 40.0, np.inf, 5.0 + 1e-9, 1e-9])
    zt, at, bt = pt.dvector(), pt.dvector(), pt.dvector()
    f = pytensor.function([zt, at, bt], [log_ndtr_pt(zt), log_ndtr_diff_pt(at, bt),
                                         pytensor.grad(log_ndtr_pt(zt).sum(), zt)])
    lz, ld, g = f(z, a, b)
    np.testing.assert_allclose(lz, log_ndtr(z), rtol=1e-12)
    np.testing.assert_allclose(ld, log_ndtr_diff(a, b), rtol=1e-9)
    # d/dz log Phi = phi / Phi (Mills ratio), finite everywhere, ~ -z in the lower tail
    mills = np.exp(stats.norm.logpdf(z) - log_ndtr(z))
    np.testing.assert_allclose(g, mills, rtol=1e-9, atol=1e-300)
    assert np.all(np.isfinite(g))


def test_gradient_matches_finite_differences():
    """The gradient with respect to log predictions and sigma is finite and correct."""
    d = _data("log_additive")
    lp, s = pt.dvector("lp"), pt.dscalar("s")
    ll = loglik_obs_pt(d["dv"], d["cens"], error="log_additive", sigma=s, log_pred=lp,
                       lloq=d["lloq"], limit=d["limit"]).sum()
    f = pytensor.function([lp, s], [ll, *pytensor.grad(ll, [lp, s])])
    x0 = np.log(d["pred"])
    val, g_lp, g_s = f(x0, 0.4)
    h = 1e-6
    num_s = (f(x0, 0.4 + h)[0] - f(x0, 0.4 - h)[0]) / (2 * h)
    np.testing.assert_allclose(g_s, num_s, rtol=1e-6)
    e = np.zeros_like(x0)
    for j in (0, 3, 5, 17):
        e[:] = 0.0
        e[j] = h
        num = (f(x0 + e, 0.4)[0] - f(x0 - e, 0.4)[0]) / (2 * h)
        np.testing.assert_allclose(g_lp[j], num, rtol=1e-5, atol=1e-8)
    assert np.all(np.isfinite(g_lp))


def test_errors():
    p = pt.vector()
    with pytest.raises(ModelSpecError, match="m7"):
        loglik_obs_pt([1.0], [1], error="log_additive", sigma=0.3, log_pred=p, method="m7")
    with pytest.raises(ModelSpecError, match="exactly one"):
        loglik_obs_pt([1.0], [1], error="log_additive", sigma=0.3)
    with pytest.raises(ModelSpecError, match="m3"):
        loglik_obs_pt([1.0], [1], error="additive", sigma=0.3, pred=p, method="m33")
    with pytest.raises(DataError, match="<= 0"):
        loglik_obs_pt([0.0], [0], error="log_additive", sigma=0.3, log_pred=p)
    with pytest.raises(ModelSpecError, match="pair"):
        loglik_obs_pt([1.0], [0], error=ErrorModel("combined"), sigma=0.3, pred=p)
