"""Two-pool effector/memory ODE model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expit

from carkinetics.exceptions import ModelSpecError
from carkinetics.models import get_model
from carkinetics.models.library import get_card
from carkinetics.models.two_pool import from_piecewise, to_piecewise


@pytest.fixture
def tp():
    return get_model("two_pool")


def log_effector(t, p):
    """Exact log E: du/dt = (rho + alpha) g - alpha, integral of g by softplus."""
    k, tm, rho, a = p["kappa"], p["tmax"], p["rho"], p["d_e"] + p["k_em"]
    sp = np.logaddexp(0.0, k * (t - tm)) - np.logaddexp(0.0, -k * tm)
    return math.log(p["e0"]) + (rho + a) * (t - sp / k) - a * t


def memory(t, p):
    """M(t) = int_0^t (1 - g(s)) k_em E(s) exp(-beta (t - s)) ds, by adaptive quadrature."""
    def f(s):
        return (expit(p["kappa"] * (s - p["tmax"])) * p["k_em"]
                * math.exp(log_effector(s, p) - p["beta"] * (t - s)))
    pts = [x for x in (p["tmax"] - 5 / p["kappa"], p["tmax"], p["tmax"] + 5 / p["kappa"])
           if 0 < x < t]
    return quad(f, 0.0, t, points=pts or None, limit=500, epsabs=0.0, epsrel=1e-12)[0]


@pytest.mark.parametrize("over", [{}, {"kappa": 0.7}, {"kappa": 60.0, "k_em": 0.05}])
def test_ode_matches_independent_solution(tp, over):
    p = dict(tp.typical(), **over)
    sol = tp.solve(p)
    t = np.array([0.5, 4.0, 9.3, 11.0, 28.0, 84.0, 300.0])
    e = sol.effector(t)
    np.testing.assert_allclose(np.log(e), [log_effector(s, p) for s in t], rtol=0, atol=1e-8)
    m_ref = np.array([memory(s, p) for s in t])
    level = sol.level(t)
    # M is level - E: accurate relative to the level, not to M where M << E
    big = m_ref > 1e-2 * level
    np.testing.assert_allclose(sol.memory(t)[big], m_ref[big], rtol=1e-7)
    assert np.all(np.abs(sol.memory(t) - m_ref) <= 1e-7 * m_ref + 1e-9 * level)
    np.testing.assert_allclose(tp.predict(t, p), np.exp([log_effector(s, p) for s in t])
                               + m_ref, rtol=1e-8)


def test_sharp_limit_equals_piecewise(tp):
    p = dict(tp.typical(), kappa=1e3)
    pw = get_model("piecewise")
    t = np.concatenate([np.linspace(0.0, 120.0, 1201), [9.3, 9.3 + 1e-3, 400.0, 2000.0]])
    y = tp.predict(t, p)
    y_pw = pw.predict(t, to_piecewise(p))
    # the analytical bi-exponential written out: E_max [(1-fb) e^-a s + fb e^-b s]
    a, b = p["d_e"] + p["k_em"], p["beta"]
    fb = p["k_em"] / (a - b)
    emax = p["e0"] * math.exp(p["rho"] * p["tmax"])
    s = np.maximum(t - p["tmax"], 0.0)
    y_an = np.where(t < p["tmax"], p["e0"] * np.exp(p["rho"] * np.minimum(t, p["tmax"])),
                    emax * ((1 - fb) * np.exp(-a * s) + fb * np.exp(-b * s)))
    np.testing.assert_allclose(y_pw, y_an, rtol=1e-13)
    rel = np.abs(y / y_an - 1.0)
    far = np.abs(t - p["tmax"]) > 40.0 / p["kappa"]
    # away from the switch only O(1/kappa^2) effects and solver error remain
    assert rel[far].max() < 1e-5
    # within the switch the logistic blunts the peak by at most (rho + alpha) ln2 / kappa
    assert rel.max() <= (p["rho"] + a) * math.log(2) / p["kappa"] * 1.05


def test_sharp_limit_derived(tp):
    p = dict(tp.typical(), kappa=1e3)
    d, dp = tp.derived(p), get_model("piecewise").derived(to_piecewise(p))
    np.testing.assert_allclose(d["tmax"], dp["tmax"], atol=2e-3)
    np.testing.assert_allclose(d["cmax"], dp["cmax"], rtol=2e-3)
    for key in ("auc_0_28", "auc_0_84", "auc_0_inf"):
        np.testing.assert_allclose(d[key], dp[key], rtol=1e-4, err_msg=key)
    for key in ("doubling_time", "t_half_alpha", "t_half_beta"):
        np.testing.assert_allclose(d[key], dp[key], rtol=1e-13, err_msg=key)


def test_piecewise_round_trip(tp):
    stein = get_card("stein_2019").params()
    q = from_piecewise(stein, kappa=7.0)
    back = to_piecewise(q)
    for k, v in stein.items():
        np.testing.assert_allclose(back[k], v, rtol=1e-13, err_msg=k)
    assert float(q["kappa"]) == 7.0
    # the model's typical values are Stein's typical values mapped this way
    typ = from_piecewise(stein)
    for k, v in tp.typical().items():
        np.testing.assert_allclose(typ[k], v, rtol=1e-14, err_msg=k)
    # methods on the model are the same functions
    assert tp.to_piecewise(q)["fb"] == back["fb"]


def test_piecewise_conversion_errors(tp):
    p = tp.typical()
    with pytest.raises(ModelSpecError, match="d_e > beta"):
        to_piecewise(dict(p, d_e=0.001, beta=0.002))
    with pytest.raises(ModelSpecError, match="alpha > beta"):
        from_piecewise(dict(get_card("stein_2019").params(), alpha=0.001, beta=0.002))
    with pytest.raises(ModelSpecError, match="missing"):
        to_piecewise({"e0": 1.0})


def test_batches_equal_single_solve(tp):
    rng = np.random.default_rng(7)
    n = 5
    p = {k: v * np.exp(0.3 * rng.standard_normal(n)) for k, v in tp.typical().items()}
    t = np.array([0.0, 2.0, 9.0, 15.0, 60.0, 1e4])
    one = tp.solve(p)
    small = type(tp)()
    small.batch_size = 2  # three batches
    many = small.solve(p)
    assert len(many.batches) == 3
    np.testing.assert_allclose(many.level(t[None, :], np.arange(n)[:, None]),
                               one.level(t[None, :], np.arange(n)[:, None]), rtol=1e-8)
    np.testing.assert_allclose(many.cumulative_auc(np.inf), one.cumulative_auc(np.inf),
                               rtol=1e-8)


def test_auc_state_matches_quadrature_of_level(tp, ref_auc):
    # the AUC is an integrated state; check it against quad of E + M from the independent
    # closed form / convolution above (not the model's dense output)
    p = tp.typical()

    def level(s):
        return math.exp(log_effector(s, p)) + memory(s, p)

    got = tp.cumulative_auc(28.0, p)
    np.testing.assert_allclose(got, ref_auc(tp, p, 0.0, 28.0, level), rtol=1e-7)


def test_not_pytensor(tp):
    from carkinetics.models._xp import Namespace

    fake = Namespace(*(np.exp,) * 8, is_numpy=False)
    with pytest.raises(ModelSpecError, match="ODE"):
        tp.log_predict(np.array([1.0]), tp.check_params(tp.typical()), xp=fake)


def test_solve_rejects_grids(tp):
    p = {k: np.full((2, 2), v) for k, v in tp.typical().items()}
    with pytest.raises(ModelSpecError, match="1-D"):
        tp.solve(p)
