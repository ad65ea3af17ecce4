"""Exposure-informed escalation: grid posterior vs quadrature, rules, paired comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from scipy.special import expit, log_expit, logit

from carkinetics.escalation.base import TrialState
from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.exposure import (
    ExposureDesign,
    ExposurePosterior,
    exposure_pool,
    exposure_quantiles,
    make_design,
)
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting.population import PopulationSpec, dose_covariate
from carkinetics.simulate.virtual import VirtualSource, draw_virtual, predict_exposure

X = np.array([3e3, 8e3, 1.2e4, 2e4, 2.5e4, 4e4, 6e4, 9e4, 1.5e5, 3e5])
Y = np.array([0, 0, 0, 1, 0, 0, 1, 0, 1, 1])


def _unnorm(a, g, post):
    eta = a + math.exp(g) * (np.log(X) - post.lx_ref)
    ll = float(np.sum(Y * log_expit(eta) + (1 - Y) * log_expit(-eta)))
    return math.exp(ll - 0.5 * ((a - post.mu_a) / post.a_sd) ** 2
                    - 0.5 * (g / post.g_sd) ** 2)


def test_grid_posterior_matches_scipy_quadrature():
    post = ExposurePosterior(2e4, logit(0.3), 2.0, 1.0, n_grid=201)
    xd = 5e4
    limit = 0.35
    s = post.summarise(X, Y, np.array([[xd]]), (limit,))
    lo_a, hi_a = post.mu_a - 12, post.mu_a + 12
    opts = {"epsabs": 1e-13, "epsrel": 1e-9}
    z = integrate.dblquad(lambda a, g: _unnorm(a, g, post), -6, 6, lo_a, hi_a, **opts)[0]
    mean_b = integrate.dblquad(lambda a, g: math.exp(g) * _unnorm(a, g, post), -6, 6, lo_a,
                               hi_a, **opts)[0] / z
    lxd = math.log(xd) - post.lx_ref
    mean_p = integrate.dblquad(lambda a, g: expit(a + math.exp(g) * lxd) * _unnorm(a, g, post),
                               -6, 6, lo_a, hi_a, **opts)[0] / z
    # P(p_d > limit): the half-plane a > logit(limit) - exp(g) lxd, integrated exactly
    p_over = integrate.dblquad(lambda a, g: _unnorm(a, g, post), -6, 6,
                               lambda g: logit(limit) - math.exp(g) * lxd, hi_a, **opts)[0] / z
    assert s["slope_mean"] == pytest.approx(mean_b, abs=2e-3)
    assert s["p_mean"][0] == pytest.approx(mean_p, abs=1e-3)
    assert s["p_over"][0][0] == pytest.approx(p_over, abs=5e-3)


def test_incremental_likelihood_equals_full_evaluation():
    post = ExposurePosterior(2e4, logit(0.3))
    w_inc = [post.weights(X[:k], Y[:k]) for k in (3, 6, 10)][-1]
    fresh = ExposurePosterior(2e4, logit(0.3))
    np.testing.assert_allclose(w_inc, fresh.weights(X, Y), rtol=1e-10, atol=1e-300)
    # a different trial (not a prefix) is evaluated in full
    np.testing.assert_allclose(post.weights(X[::-1], Y[::-1]), fresh.weights(X, Y),
                               rtol=1e-9, atol=1e-300)


def _design():
    typ = np.array([5e3, 1e4, 2e4, 4e4, 8e4])
    return ExposureDesign(5, typ, 0.3, 3, 10)


def test_no_skipping_and_ewoc_bound():
    des = _design()
    st = TrialState(5, np.zeros(6, int), np.zeros(6), exposure=np.full(6, 5e3), current=0)
    dec = des.decide(st)
    s = des.posterior_summary(st)
    assert dec.next_dose <= 1  # never past the next untried dose
    ok = np.flatnonzero(s["p_over"][:2] < des.overdose)
    assert dec.next_dose == (ok.max() if ok.size else 0)
    # after 6 participants without DLT at a low exposure, escalation to level 2 is allowed
    assert dec.action == "escalate" and s["p_over"][1] < des.overdose
    # with the data of 12 participants at level 2 the design may go up to level 3 only
    st2 = TrialState(5, np.r_[np.zeros(6, int), np.ones(6, int)], np.zeros(12),
                     exposure=np.r_[np.full(6, 5e3), np.full(6, 1e4)], current=1)
    assert des.decide(st2).next_dose <= 2
    # posterior P(overdose) increases with dose (increasing exposure-toxicity curve)
    assert np.all(np.diff(s["p_over"]) >= -1e-12)


def test_safety_stop_and_errors():
    des = _design()
    st = TrialState(5, np.zeros(6, int), np.ones(6), exposure=np.full(6, 5e3))
    dec = des.decide(st)
    assert dec.action == "stop" and dec.next_dose is None
    assert des.select_mtd(st) is None
    with pytest.raises(DataError, match="dose level"):
        TrialState(5, np.array([7]), np.array([0]))
    with pytest.raises(ModelSpecError, match="dose_exposure"):
        ExposureDesign(5, [1.0, 2.0], 0.3)
    with pytest.raises(ModelSpecError, match="target"):
        ExposureDesign(2, [1.0, 2.0], 1.2)
    with pytest.raises(ModelSpecError, match="dose_exposure"):
        make_design(3, 0.3)
    via = make_design(5, 0.25, dose_exposure=[1e3, 2e3, 4e3, 8e3, 1.6e4], n_earlystop=18,
                      margin=0.1, cohort_size=None)
    assert (via.target, via.margin, via.cohort_size) == (0.25, 0.1, 3)
    with pytest.raises(DataError, match="exposure"):
        des.decide(TrialState(5, np.zeros(2, int), np.zeros(2), exposure=[-1.0, 2.0]))


def test_exposure_design_beats_boin_when_toxicity_follows_exposure():
    # CK model: piecewise with a dose-proportional Cmax and wide IIV on log Cmax (SD 1.4);
    # DLT: logistic in log Cmax (slope 3). Same virtual participants for both designs.
    spec = PopulationSpec(random_effects=["cmax"], endpoint="car_qpcr",
                          covariates=(dose_covariate(),))
    data = pd.DataFrame({"id": [1, 1, 2, 2], "time": [1.0, 10, 1, 10],
                         "dv": [10.0, 1e4, 20, 2e4], "endpoint": "car_qpcr",
                         "dose": [1e6, 1e6, 2e6, 2e6]})
    d = spec.design(data)
    src = VirtualSource.from_values(spec, d, {**d.theta_typical(), "dose_exp": 1.0},
                                    np.array([[2.0]]), d.sigma_typical())
    doses = [0.25e6, 0.5e6, 1e6, 2e6, 4e6]

    def curve(x):
        return expit(-0.9 + 3.0 * (np.log(x) - math.log(24000.0)))

    # truth: population DLT rate per dose (large independent set of virtual participants)
    ref = predict_exposure(draw_virtual(src, 20000, seed=1), doses, pd_model=None)
    rates = curve(ref.values["cmax"]).mean(axis=1)
    right = int(np.argmin(np.abs(rates - 0.3)))
    assert right == 1 and abs(rates[1] - 0.3) < 0.06 and rates[2] > 0.38
    # the design's dose-exposure relation from the CK model (another set of participants)
    model = predict_exposure(draw_virtual(src, 2000, seed=2), doses, pd_model=None)
    n_trials, n_slots = 100, 30
    vp = draw_virtual(src, n_trials * len(doses) * n_slots, seed=3)
    pool = exposure_pool(vp, doses, n_trials, n_slots, curve, seed=3)
    exp_res = ExposureDesign(5, exposure_quantiles(model.values["cmax"]), 0.3, 3, 10
                             ).simulate_pool(pool)
    boin_res = BOIN(5, 0.3, 3, 10).simulate_pool(pool)
    diff = (exp_res["selected"] == right).astype(float) - (boin_res["selected"] == right)
    se = diff.std(ddof=1) / math.sqrt(n_trials)
    assert diff.mean() > 3 * se
    assert (exp_res["selected"] == right).mean() > 0.7


def test_exposure_pool_in_chunks_equals_pool_at_once():
    spec = PopulationSpec(random_effects=["cmax"], endpoint="car_qpcr",
                          covariates=(dose_covariate(),))
    data = pd.DataFrame({"id": [1, 1, 2, 2], "time": [1.0, 10, 1, 10],
                         "dv": [10.0, 1e4, 20, 2e4], "endpoint": "car_qpcr",
                         "dose": [1e6, 1e6, 2e6, 2e6]})
    d = spec.design(data)
    src = VirtualSource.from_values(spec, d, d.theta_typical(), np.array([[1.0]]),
                                    d.sigma_typical())
    doses, ns = [1e6, 2e6], 6

    def curve(x):
        return expit(np.log(x) - math.log(24000.0))

    whole = exposure_pool(draw_virtual(src, 5 * 2 * ns, seed=4), doses, 5, ns, curve, seed=4)
    part = exposure_pool(draw_virtual(src, 3 * 2 * ns, seed=4, first=2 * 2 * ns), doses, 3, ns,
                         curve, seed=4, first_trial=2)
    np.testing.assert_array_equal(whole.exposure[2:], part.exposure)
    np.testing.assert_array_equal(whole.dlt[2:], part.dlt)
    # slot k of dose d in trial i is participant (i * n_doses + d) * n_slots + k at dose d
    vp = draw_virtual(src, 5 * 2 * ns, seed=4)
    eta = vp.eta[:, 0].reshape(5, 2, ns)
    expected = 24000.0 * np.sqrt(np.array(doses) / 1e6)[None, :, None] * np.exp(eta)
    np.testing.assert_allclose(whole.exposure, expected, rtol=1e-12)
