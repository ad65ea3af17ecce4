"""Exposure-response: Cox against hand computation and the exponential model; slopes."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.exceptions import DataError
from carkinetics.pd.exposure import (
    cox_partial_loglik,
    exposure_metrics,
    exposure_response,
    fit_cox,
    fit_emax,
    fit_logistic,
    kaplan_meier,
    response_table,
)


def test_cox_partial_likelihood_by_hand():
    # times 1, 2, 2, 3, 4 with a tie at 2 (both events), subject 4 censored
    t = [1.0, 2.0, 2.0, 3.0, 4.0]
    d = [1, 1, 1, 0, 1]
    z = [0.5, -1.0, 2.0, 0.0, 1.0]
    for b in (-0.7, 0.0, 0.4):
        e = [math.exp(b * v) for v in z]
        r1 = sum(e)               # risk set at t=1: everyone
        r2 = e[1] + e[2] + e[3] + e[4]   # t=2 (Breslow: both tied events share it)
        r4 = e[4]
        hand = (b * z[0] - math.log(r1)) + (b * z[1] - math.log(r2)) + (
            b * z[2] - math.log(r2)) + (b * z[4] - math.log(r4))
        ll, g, h = cox_partial_loglik(b, t, d, z)
        assert ll == pytest.approx(hand, rel=1e-12)
        eps = 1e-6
        num_g = (cox_partial_loglik(b + eps, t, d, z)[0] - cox_partial_loglik(b - eps, t, d, z)[
            0]) / (2 * eps)
        assert g == pytest.approx(num_g, rel=1e-6)
        num_h = (cox_partial_loglik(b + eps, t, d, z)[1] - cox_partial_loglik(b - eps, t, d, z)[
            1]) / (2 * eps)
        assert h == pytest.approx(num_h, rel=1e-5)


def test_cox_matches_exponential_model_closed_form():
    """Two groups, exponential times: Cox log-HR ~ log((d1/T1) / (d0/T0)) (the MLE)."""
    rng = np.random.default_rng(5)
    n = 600
    grp = rng.integers(0, 2, n)
    hr = 2.5
    t = rng.exponential(1.0 / (0.01 * np.where(grp == 1, hr, 1.0)))
    c = rng.uniform(0, 300, n)
    time, event = np.minimum(t, c), (t <= c).astype(float)
    x = 10.0 ** grp  # log10(x) = group indicator
    fit = fit_cox(x, time, event)
    closed = math.log((event[grp == 1].sum() / time[grp == 1].sum())
                      / (event[grp == 0].sum() / time[grp == 0].sum()))
    assert fit.slope == pytest.approx(closed, abs=0.05)
    p = fit.params.loc["beta"]
    assert p["ci_lower"] < math.log(hr) < p["ci_upper"]
    assert p["hazard_ratio"] == pytest.approx(math.exp(fit.slope))


def test_logistic_recovers_slope_and_is_the_mle():
    rng = np.random.default_rng(11)
    x = 10 ** rng.uniform(3, 6, 400)
    true = (-6.0, 1.5)
    y = (rng.random(400) < stats.logistic.cdf(true[0] + true[1] * np.log10(x))).astype(float)
    fit = fit_logistic(x, y)
    p = fit.params
    assert p.loc["slope", "ci_lower"] < true[1] < p.loc["slope", "ci_upper"]
    # independent likelihood: scipy.stats.bernoulli at the estimate, and a maximum
    b = p["estimate"].to_numpy()

    def ll(bb):
        return stats.bernoulli.logpmf(y, stats.logistic.cdf(bb[0] + bb[1] * np.log10(x))).sum()

    assert fit.loglik == pytest.approx(ll(b), rel=1e-10)
    for d in ([1e-3, 0], [0, 1e-3], [-1e-3, 0], [0, -1e-3]):
        assert ll(b + np.array(d)) < ll(b)
    with pytest.raises(DataError, match="separation"):
        fit_logistic([1, 10, 100, 1000], [0, 0, 1, 1])


def test_emax_recovers_parameters():
    rng = np.random.default_rng(2)
    x = 10 ** rng.uniform(3, 6, 120)
    y = -10.0 - 60.0 * x / (2e4 + x) + rng.normal(0, 5.0, x.size)
    fit = fit_emax(x, y)
    p = fit.params
    assert p.loc["emax", "ci_lower"] < -60.0 < p.loc["emax", "ci_upper"]
    assert p.loc["ec50", "ci_lower"] < 2e4 < p.loc["ec50", "ci_upper"]
    assert fit.info["sigma"] == pytest.approx(5.0, rel=0.2)


def test_kaplan_meier_by_hand():
    t, s = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 0, 1])
    np.testing.assert_allclose(t, [1, 2, 4])
    np.testing.assert_allclose(s, [4 / 5, 4 / 5 * 3 / 4, 0.0])


def test_on_the_simulated_trial_tables():
    d = pd.read_csv(__import__("pathlib").Path(__file__).resolve().parents[2]
                    / "data" / "synthetic" / "trial.csv")
    ex = exposure_metrics(d)
    assert len(ex) == 18 and (ex["cmax"] > 0).all()
    igg = response_table(d, "igg", kind="pct_change", day=91.0)
    assert (igg["response"] < 0).mean() > 0.8  # IgG falls after the infusion
    rec = response_table(d, "cd19_b", kind="tte", level=20.0, below=False, after_below=5.0)
    assert set(rec["event"].dropna()) <= {0.0, 1.0}
    fit = exposure_response(ex, rec.dropna(), model="cox")
    assert fit.n >= 10 and np.isfinite(fit.params.loc["beta", "se"])
    f = fit.to_frame()
    assert {"model", "parameter", "estimate", "ci_lower", "ci_upper"} <= set(f.columns)
