"""Analytic channel derivatives of the log-normal censored likelihood vs finite differences
of ``loglik_obs`` (the one likelihood) and vs the closed form at the median."""

import math

import numpy as np
import pytest
from scipy import stats

from carkinetics.observation import loglik_obs
from carkinetics.observation.derivatives import lognormal_channel_derivatives


@pytest.mark.parametrize("method", ["m1", "m3"])
def test_derivatives_match_finite_differences_of_loglik_obs(method):
    rng = np.random.default_rng(11)
    n = 400
    y = np.exp(rng.normal(0.0, 2.0, n))
    mu = rng.normal(0.0, 2.0, n)
    ls = rng.normal(-0.5, 0.5, n)
    c = rng.choice([0, 1, -1], n)

    def f(m, s):
        return loglik_obs(y, np.exp(m), c, error="log_additive", sigma=np.exp(s),
                          method=method)

    h = 1e-5
    fd = [(f(mu + h, ls) - f(mu - h, ls)) / (2 * h),
          (f(mu + h, ls) - 2 * f(mu, ls) + f(mu - h, ls)) / h**2,
          (f(mu, ls + h) - f(mu, ls - h)) / (2 * h),
          (f(mu, ls + h) - 2 * f(mu, ls) + f(mu, ls - h)) / h**2]
    got = lognormal_channel_derivatives(y, mu, np.exp(ls), c, method)
    for g, d, tol in zip(got, fd, (1e-8, 1e-3, 1e-8, 1e-3), strict=True):
        np.testing.assert_allclose(g, d, rtol=tol, atol=tol)
    if method == "m1":
        for g in got:
            assert np.all(g[c == 1] == 0.0)


def test_closed_form_at_the_lloq_median_and_far_tail():
    # BLQ row with log(LLOQ) == mu: lambda = phi(0)/Phi(0) = 2 phi(0)
    lam = 2.0 * stats.norm.pdf(0.0)
    d_mu, d2_mu, d_ls, d2_ls = lognormal_channel_derivatives(1.0, 0.0, 0.5, 1)
    assert d_mu == pytest.approx(-lam / 0.5, rel=1e-12)
    assert d2_mu == pytest.approx(-lam * lam / 0.25, rel=1e-12)
    assert d_ls == pytest.approx(0.0, abs=1e-15)
    assert d2_ls == pytest.approx(0.0, abs=1e-15)
    # far below the mean (z = -40): lambda ~ -z, finite, d2_mu -> -1/sigma^2
    out = lognormal_channel_derivatives(math.exp(-40.0), 0.0, 1.0, 1)
    assert all(np.isfinite(v) for v in out)
    assert out[1] == pytest.approx(-1.0, rel=1e-3)


def test_invalid_method():
    with pytest.raises(ValueError, match="m1' or 'm3"):
        lognormal_channel_derivatives(1.0, 0.0, 1.0, 0, "m4")


@pytest.mark.parametrize("method", ["m1", "m3"])
def test_row_kernel_against_scipy_stats(method):
    # the kernel behind loglik_obs' common case and the fitters, written out with scipy.stats
    from carkinetics.observation._normal import censored_normal_terms

    rng = np.random.default_rng(3)
    n = 300
    x = rng.normal(0.0, 3.0, n)
    mean = rng.normal(0.0, 3.0, n)
    sd = np.exp(rng.normal(-0.3, 0.6, n))
    c = rng.choice([0, 1, -1], n)
    expect = np.where(c == 0, stats.norm.logpdf(x, mean, sd),
                      np.where(c == 1, stats.norm.logcdf(x, mean, sd) if method == "m3" else 0.0,
                               stats.norm.logsf(x, mean, sd)))
    ll, d_mu, d2_mu, d_ls, d2_ls = censored_normal_terms(x, mean, sd, c, method, deriv=True)
    np.testing.assert_allclose(ll, expect, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ll, censored_normal_terms(x, mean, sd, c, method))
    h = 1e-5

    def f(m, s):
        return censored_normal_terms(x, m, s, c, method)

    np.testing.assert_allclose(d_mu, (f(mean + h, sd) - f(mean - h, sd)) / (2 * h),
                               rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d_ls, (f(mean, sd * np.exp(h)) - f(mean, sd * np.exp(-h)))
                               / (2 * h), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d2_mu, (f(mean + h, sd) - 2 * ll + f(mean - h, sd)) / h**2,
                               rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(
        d2_ls, (f(mean, sd * np.exp(h)) - 2 * ll + f(mean, sd * np.exp(-h))) / h**2,
        rtol=1e-3, atol=1e-3)
