"""Contract tests run on every registered model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.models import available_models, get_model
from carkinetics.models._xp import pytensor_namespace

MODELS = available_models()
ODE_MODELS = {"two_pool"}  # no pytensor graph: log_predict refuses xp != NUMPY


def vec_rtol(name: str) -> float:
    """Tolerance for vectorised == loop: closed forms agree to rounding; an ODE solved
    for stacked participants takes other steps than one solved alone (rtol 1e-10)."""
    return 1e-8 if name in ODE_MODELS else 1e-12

#: Three participants per model (broadcasting tests); valid for every relation.
SPREAD = {"tlag": [1.0, 3.27, 0.2], "kappa": [2.0, 5.0, 40.0]}


def participants(model) -> dict[str, np.ndarray]:
    typ = model.typical()
    out = {}
    for k, v in typ.items():
        if k in SPREAD:
            out[k] = np.array(SPREAD[k])
        elif k == "fb":
            out[k] = np.array([v, 0.05, 0.001])
        else:
            out[k] = v * np.array([1.0, 1.3, 0.7])
    return out


def scalar(p, i):
    return {k: float(np.asarray(v)[i]) for k, v in p.items()}


#: Extreme but admissible parameters whose levels are representable in float64.
EXTREMES = {
    "piecewise": [dict(foldx=1e8), dict(fb=1e-12), dict(alpha=50.0, beta=1e-6),
                  dict(tmax=0.01, foldx=1e9), dict(cmax=1e12, foldx=1e9)],
    # rho * tmax = 700: foldx = exp(rho tmax) is itself reported by derived(), so it must
    # stay below exp(709); r0 = 1e-300 keeps the level finite.
    "piecewise_rate": [dict(r0=1e-300, rho=50.0, tmax=14.0), dict(fb=1e-12),
                       dict(rho=50.0, tmax=0.2)],
    "piecewise_lag": [dict(foldx=1e8), dict(fb=1e-12), dict(tlag=9.29 - 1e-9),
                      dict(tlag=1e-12), dict(alpha=50.0, beta=1e-6)],
    "smooth": [dict(foldx=1e8), dict(fb=1e-12), dict(kappa=1e9), dict(kappa=0.3),
               dict(tmax=0.02, foldx=1e9, kappa=1e6), dict(alpha=50.0, beta=1e-6)],
    # rho * tmax = 1000: the peak is e0 exp(1000) = 1e-300 * e^1000 ~ 2e134.
    "two_pool": [dict(e0=1e-300, rho=50.0, tmax=20.0), dict(k_em=1e-12),
                 dict(kappa=1e3), dict(d_e=50.0, beta=1e-6)],
}


def test_registry_has_all_models():
    assert {"piecewise", "piecewise_rate", "piecewise_lag", "smooth", "two_pool"} <= set(MODELS)
    with pytest.raises(ModelSpecError, match="smooth"):
        get_model("smoth")


@pytest.mark.parametrize("name", MODELS)
def test_specs_typical_inside_bounds_and_documented(name):
    m = get_model(name)
    m.check_params(m.typical())
    assert m.level_param in m.param_names
    for spec in m.params:
        assert spec.contains(spec.typical)
        assert spec.unit and spec.source and spec.description


@pytest.mark.parametrize("name", MODELS)
def test_predict_broadcasting_equals_loop(name):
    m = get_model(name)
    p = participants(m)
    t = np.array([-2.0, 0.0, 1.5, 4.0, 9.0, 10.0, 30.0, 200.0])
    grid = m.predict(t, {k: v[:, None] for k, v in p.items()})
    assert grid.shape == (3, t.size)
    loop = np.array([m.predict(t, scalar(p, i)) for i in range(3)])
    tol = vec_rtol(name)
    np.testing.assert_allclose(grid, loop, rtol=tol, atol=0)
    np.testing.assert_allclose(m.predict_grid(t, p), loop, rtol=tol, atol=0)
    # one time per participant
    diag = m.predict(t[[2, 4, 6]], p)
    np.testing.assert_allclose(diag, loop[[0, 1, 2], [2, 4, 6]], rtol=tol, atol=0)


@pytest.mark.parametrize("name", MODELS)
def test_zero_before_infusion_and_log_consistent(name):
    m = get_model(name)
    p = m.typical()
    t = np.array([-1e5, -1.0, -1e-9, 0.0, 0.3, 5.0, 9.3, 12.0, 60.0, 400.0])
    y = m.predict(t, p)
    assert np.all(y[t < 0] == 0.0)
    assert np.all(y[t >= 0] > 0.0)
    ly = m.log_predict(t, m.check_params(p))
    assert np.all(np.isneginf(ly[t < 0]))
    np.testing.assert_allclose(ly[t >= 0], np.log(y[t >= 0]), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", MODELS)
def test_auc_matches_quad(name, ref_auc, level_fn):
    m = get_model(name)
    for i in (0, 2):
        p = scalar(participants(m), i)
        f = level_fn(m, p)
        d = m.derived(p)
        for key, t1 in (("auc_0_28", 28.0), ("auc_0_84", 84.0), ("auc_0_inf", math.inf)):
            np.testing.assert_allclose(d[key], ref_auc(m, p, 0.0, t1, f), rtol=1e-8,
                                       err_msg=f"{name} {key} participant {i}")
        for t0, t1 in ((2.0, 15.0), (-5.0, 3.0), (9.0, 400.0), (50.0, math.inf)):
            np.testing.assert_allclose(m.auc(t0, t1, p), ref_auc(m, p, t0, t1, f),
                                       rtol=1e-8, err_msg=f"{name} auc({t0}, {t1})")
    assert float(m.auc(-3.0, -1.0, p)) == 0.0


@pytest.mark.parametrize("name", MODELS)
def test_auc_vectorised(name):
    m = get_model(name)
    p = participants(m)
    got = m.auc(np.array([0.0, 5.0]), np.array([[28.0], [np.inf]]),
                {k: v[:, None, None] for k, v in p.items()})
    assert got.shape == (3, 2, 2)
    for i in range(3):
        pi = scalar(p, i)
        ref = [[float(m.auc(a, b, pi)) for a in (0.0, 5.0)] for b in (28.0, np.inf)]
        np.testing.assert_allclose(got[i], ref, rtol=vec_rtol(name))


@pytest.mark.parametrize("name", MODELS)
def test_time_below_hits_level(name):
    m = get_model(name)
    p = m.typical()
    d = m.derived(p, below=[1000.0, 10.0])
    peak = float(d["cmax"])
    for level in (0.5 * peak, 1000.0, 10.0, 1e-3):
        tb = float(m.time_below(level, p))
        assert tb > float(d["tmax"])
        np.testing.assert_allclose(m.predict(tb, p), level, rtol=1e-9)
        # the level is above before and below after
        assert m.predict(tb * (1 - 1e-6), p) > level > m.predict(tb * (1 + 1e-6), p)
    np.testing.assert_allclose(d["time_below_1000"], m.time_below(1000.0, p), rtol=1e-12)
    np.testing.assert_allclose(d["time_below_10"], m.time_below(10.0, p), rtol=1e-12)
    # at or above the peak: the peak time; never reached: inf
    np.testing.assert_allclose(m.time_below(2 * peak, p), d["tmax"], rtol=1e-12)
    assert np.isinf(m.time_below(0.0, p))


@pytest.mark.parametrize("name", MODELS)
def test_derived_keys(name):
    m = get_model(name)
    d = m.derived(m.typical(), below=[100.0])
    for key in ("doubling_time", "t_half_alpha", "t_half_beta", "auc_0_28", "auc_0_84",
                "auc_0_inf", "tmax", "cmax", "time_below_100"):
        assert key in d and np.all(np.isfinite(d[key])) and np.all(np.asarray(d[key]) > 0)
    assert d["auc_0_28"] < d["auc_0_84"] < d["auc_0_inf"]
    # the realised peak is the maximum of the curve
    t = np.linspace(0.0, 60.0, 6001)
    y = m.predict(t, m.typical())
    assert float(d["cmax"]) >= y.max() * (1 - 1e-12)
    assert abs(float(d["tmax"]) - t[np.argmax(y)]) <= 0.01 + 1e-12


@pytest.mark.parametrize("name", MODELS)
def test_with_dose_scales_level_param(name):
    m = get_model(name)
    p = m.typical()
    q = m.with_dose(p, 4e6, dose_ref=1e6, dose_exp=0.5)
    factor = (4e6 / 1e6) ** 0.5
    for k in m.param_names:
        expect = p[k] * factor if k == m.level_param else p[k]
        np.testing.assert_allclose(q[k], expect, rtol=1e-14)
    # every model is linear in its level parameter
    t = np.array([0.0, 3.0, 9.0, 40.0])
    np.testing.assert_allclose(m.predict(t, q), factor * m.predict(t, p), rtol=1e-9)
    # vector of doses broadcasts
    qv = m.with_dose(p, np.array([1e6, 2e6]), dose_exp=1.0)
    np.testing.assert_allclose(qv[m.level_param], p[m.level_param] * np.array([1.0, 2.0]))
    with pytest.raises(ModelSpecError, match="dose"):
        m.with_dose(p, -1.0)


@pytest.mark.parametrize("name", MODELS)
def test_bad_params_raise_with_name(name):
    m = get_model(name)
    p = m.typical()
    # the messages list every parameter, so match the specific phrase naming the culprit
    for k in m.param_names:
        missing = {j: v for j, v in p.items() if j != k}
        with pytest.raises(ModelSpecError, match=rf"missing \['{k}'\]"):
            m.predict(1.0, missing)
        spec = m.spec(k)
        bad = spec.upper * 2 if math.isfinite(spec.upper) and spec.upper > 0 else -1.0
        for value in (bad, -1.0, np.nan, np.inf):
            if spec.contains(value):
                continue
            with pytest.raises(ModelSpecError, match=rf"Invalid {k}="):
                m.predict(1.0, dict(p, **{k: value}))
            with pytest.raises(ModelSpecError, match=rf"Invalid {k}="):
                m.derived(dict(p, **{k: np.array([p[k], value])}))
    with pytest.raises(ModelSpecError, match=r"unknown \['bogus'\]"):
        m.predict(1.0, dict(p, bogus=1.0))
    with pytest.raises(ModelSpecError, match="mapping"):
        m.predict(1.0, list(p.values()))


@pytest.mark.parametrize("name", MODELS)
def test_extreme_parameters_finite_without_warnings(name):
    # pytest turns any RuntimeWarning (overflow, invalid, divide) into an error here.
    m = get_model(name)
    assert name in EXTREMES, f"add extreme parameter sets for {name}"
    t = np.array([-1e5, -1.0, 0.0, 0.5, 9.0, 28.0, 365.0, 1e5])
    for over in EXTREMES[name]:
        p = dict(m.typical(), **over)
        y = m.predict(t, p)
        assert np.all(np.isfinite(y)) and np.all(y >= 0), (name, over, y)
        ly = m.log_predict(t, m.check_params(p))
        assert not np.any(np.isnan(ly)) and not np.any(ly == np.inf), (name, over)
        d = m.derived(p, below=[1.0])
        for key, v in d.items():
            assert np.all(np.isfinite(v)), (name, over, key, v)
        assert np.isfinite(m.auc(0.0, np.inf, p))


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")
@pytest.mark.parametrize("name", MODELS)
def test_log_predict_pytensor_equals_numpy(name):
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    m = get_model(name)
    xp = pytensor_namespace()
    t = pt.dvector("t")
    sym = {k: pt.dvector(k) for k in m.param_names}
    if name in ODE_MODELS:
        with pytest.raises(ModelSpecError, match="numpy"):
            m.log_predict(t, sym, xp=xp)
        return
    fn = pytensor.function([t, *sym.values()], m.log_predict(t, sym, xp=xp),
                           mode="FAST_COMPILE")
    p = participants(m)
    tt = np.array([-1.0, 0.0, 1.0, 5.0, 9.29, 9.3, 12.0, 100.0, 1e5])
    for i in range(3):
        vals = {k: np.full(tt.shape, v[i]) for k, v in p.items()}
        got = fn(tt, *vals.values())
        ref = m.log_predict(tt, vals)
        assert np.array_equal(np.isneginf(got), np.isneginf(ref))
        fin = np.isfinite(ref)
        np.testing.assert_allclose(got[fin], ref[fin], rtol=1e-13, atol=1e-12)


@pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS:UserWarning")
@pytest.mark.parametrize("name", sorted(set(MODELS) - ODE_MODELS))
def test_pytensor_far_tail_value_and_gradient_finite(name):
    # Regression for _xp.pytensor_namespace: pt.logaddexp is log(exp(a) + exp(b)), which
    # gave -inf values and nan gradients once both terms fell below exp(-745).
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    m = get_model(name)
    t = pt.dvector("t")
    sym = {k: pt.dscalar(k) for k in m.param_names}
    out = m.log_predict(t, sym, xp=pytensor_namespace())
    grads = pt.grad(out.sum(), list(sym.values()))
    fn = pytensor.function([t, *sym.values()], [out, *grads], mode="FAST_COMPILE")
    p = dict(m.typical(), beta=0.05)
    tt = np.array([2.0, 30.0, 1e4, 1e5])
    val, *g = fn(tt, *p.values())
    np.testing.assert_allclose(val, m.log_predict(tt, m.check_params(p)), rtol=1e-12)
    assert np.all(np.isfinite(g)), dict(zip(m.param_names, g, strict=True))
