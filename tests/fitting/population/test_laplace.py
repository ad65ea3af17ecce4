"""FOCE-I against independent computations on a model where they are exact.

Model: ``log y_ij = log a + eta_i - k t_j + eps_ij`` (log-additive error), i.e. a linear
Gaussian mixed model on the log scale. There the FOCE-I/Laplace objective is the exact
marginal likelihood, so the OFV must equal ``-2 sum log MVN(log y_i; m, omega 11' + s^2 I)``
(scipy.stats, minus NONMEM's ``N log(2 pi)``); with M3-censored rows it must equal a
Laplace approximation computed here by scalar minimisation and a numerical second
derivative of the hand-written joint density; the estimates must be the maximum-likelihood
estimates of the exact likelihood, the SEs the inverse numerical Hessian of it, and CWRES
the Cholesky-decorrelated residuals of the exact marginal model.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from carkinetics.fitting.population import PopulationModel, fit_focei, focei_objective
from carkinetics.models.base import ParameterSpec
from carkinetics.observation import ErrorModel

LOG2PI = math.log(2 * math.pi)
TRUE = {"a": 100.0, "k": 0.3, "omega": 0.25, "s": 0.2}


def _data(n_id=30, seed=11, lloq=None):
    rng = np.random.default_rng(seed)
    t = np.array([0.5, 1.0, 2.0, 4.0, 6.0, 8.0])
    rows = []
    for i in range(n_id):
        eta = rng.normal(0, math.sqrt(TRUE["omega"]))
        ly = math.log(TRUE["a"]) + eta - TRUE["k"] * t + rng.normal(0, TRUE["s"], t.size)
        rows.append(pd.DataFrame({"id": i, "time": t, "dv": np.exp(ly), "cens": 0}))
    d = pd.concat(rows, ignore_index=True)
    if lloq is not None:
        d["lloq"] = lloq
        blq = d["dv"] < lloq
        d.loc[blq, "dv"] = lloq
        d.loc[blq, "cens"] = 1
    return d, pd.DataFrame({"id": range(n_id)})


def _model():
    def individual(theta, eta, cov):
        a = theta["a"] * np.exp(eta[..., 0])
        return {"a": a, "k": theta["k"] + 0.0 * a}

    def predict(p, ctx):
        return p["a"] * np.exp(-p["k"] * ctx)

    return PopulationModel(
        name="linear", theta=(ParameterSpec("a", "1", 50.0, 0.0, 1e6, "log"),
                              ParameterSpec("k", "1/h", 0.1, -5.0, 5.0, "none")),
        etas=("a",), individual=individual, predict=predict,
        error=ErrorModel("log_additive"),
        sigma=(ParameterSpec("s", "1", 0.3, 0.0, 10.0, "log"),),
        prepare=lambda rows, cov: rows["time"].to_numpy(float), batched=True)


def _exact_m2ll(d, a, k, omega, s):
    """Exact -2LL (NONMEM scale) of the balanced design: one MVN call for all ids."""
    y = np.log(d["dv"].to_numpy()).reshape(d["id"].nunique(), -1)
    t = d["time"].to_numpy()[: y.shape[1]]
    m = math.log(a) - k * t
    cov = omega * np.ones((t.size, t.size)) + s**2 * np.eye(t.size)
    return -2 * stats.multivariate_normal(m, cov).logpdf(y).sum() - len(d) * LOG2PI


def test_ofv_equals_exact_marginal_likelihood():
    d, cov = _data()
    ofv = focei_objective(_model(), d, cov, {"a": 90.0, "k": 0.28}, np.array([[0.3]]),
                          {"s": 0.25})
    assert ofv == pytest.approx(_exact_m2ll(d, 90.0, 0.28, 0.3, 0.25), abs=1e-6)


def test_ofv_with_m3_censoring_equals_hand_laplace():
    d, cov = _data(lloq=40.0)
    assert 0.1 < d["cens"].mean() < 0.6
    a, k, om, s = 90.0, 0.28, 0.3, 0.25
    total = 0.0
    for _, g in d.groupby("id"):
        y = np.log(g["dv"].to_numpy())
        m = math.log(a) - k * g["time"].to_numpy()
        c = g["cens"].to_numpy() == 1

        def joint(eta, y=y, m=m, c=c):
            mu = m + eta
            ll = np.where(c, stats.norm.logcdf((y - mu) / s),
                          stats.norm.logpdf(y, mu, s))
            return -2 * ll.sum() + eta**2 / om

        e = optimize.minimize_scalar(joint, bracket=(-1, 1), tol=1e-12).x
        h = 1e-4
        hess = (joint(e + h) - 2 * joint(e) + joint(e - h)) / h**2
        total += joint(e) + math.log(om) + math.log(hess / 2) - np.count_nonzero(~c) * LOG2PI
    ofv = focei_objective(_model(), d, cov, {"a": a, "k": k}, np.array([[om]]), {"s": s})
    assert ofv == pytest.approx(total, abs=1e-4)


def test_estimates_ses_and_cwres_match_exact_likelihood():
    d, cov = _data()
    res = fit_focei(_model(), d, cov, n_sim=200)
    fr = res.to_frame().set_index("parameter")

    def f(p):
        return _exact_m2ll(d, *p)

    mle = optimize.minimize(f, [90.0, 0.28, 0.3, 0.25], method="Nelder-Mead",
                            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000}).x
    est = fr.loc[["a", "k", "omega(a)", "s"], "estimate"].to_numpy()
    np.testing.assert_allclose(est, mle, rtol=2e-4)
    assert res.ofv == pytest.approx(f(mle), abs=1e-5)
    # SEs: inverse of half the numerical Hessian of the exact -2LL in natural parameters
    h = 1e-4 * np.abs(mle)
    hess = np.empty((4, 4))
    for i in range(4):
        for j in range(4):
            def fp(si, sj, i=i, j=j):
                p = mle.copy()
                p[i] += si * h[i]
                p[j] += sj * h[j]
                return f(p)
            hess[i, j] = (fp(1, 1) - fp(1, -1) - fp(-1, 1) + fp(-1, -1)) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(hess / 2)))
    np.testing.assert_allclose(fr.loc[["a", "k", "omega(a)", "s"], "se"], se, rtol=5e-3)
    # CWRES: exact marginal model decorrelated by its Cholesky factor
    a, k, om, s = mle
    expect = []
    for _, g in d.groupby("id"):
        y = np.log(g["dv"].to_numpy())
        m = math.log(a) - k * g["time"].to_numpy()
        chol = np.linalg.cholesky(om * np.ones((len(y), len(y))) + s**2 * np.eye(len(y)))
        expect.append(np.linalg.solve(chol, y - m))
    np.testing.assert_allclose(res.table["CWRES"], np.concatenate(expect), atol=2e-3)


def test_ci_quantile_student_t_or_normal():
    """Wald CIs use t(n_participants - 1) by default, the normal quantile on request: the
    widths differ by t / z (exactly on the optimiser's free scale, a bounded map of the
    parameter; to 1e-4 on the log scale compared here)."""
    from scipy import stats

    d, cov = _data()
    n_ind = d["id"].nunique()
    t_fit = fit_focei(_model(), d, cov, diagnostics=False).to_frame().set_index("parameter")
    z_fit = fit_focei(_model(), d, cov, diagnostics=False,
                      ci_distribution="normal").to_frame().set_index("parameter")
    ratio = stats.t.ppf(0.975, n_ind - 1) / stats.norm.ppf(0.975)
    for p in ("a", "k"):  # positive, log scale
        wt = math.log(t_fit.loc[p, "ci_upper"] / t_fit.loc[p, "ci_lower"])
        wz = math.log(z_fit.loc[p, "ci_upper"] / z_fit.loc[p, "ci_lower"])
        assert wt / wz == pytest.approx(ratio, rel=1e-4)
    with pytest.raises(ValueError, match="ci_distribution"):
        fit_focei(_model(), d, cov, diagnostics=False, ci_distribution="student")
