"""The fit's objective is the censored likelihood, checked against scipy.stats row by row."""

import math

import numpy as np
import pytest
from scipy import optimize

from carkinetics.fitting import fit_individual
from carkinetics.fitting._data import prepare_unit
from carkinetics.fitting._problem import Problem, _piecewise_jac
from carkinetics.fitting._starts import build_parameters
from carkinetics.models import get_model
from carkinetics.observation import ErrorModel, ObservationModel, default_observation_model

from .conftest import PIECEWISE, handwritten_ll

NAMES = ["foldx", "tmax", "cmax", "alpha", "fb", "beta"]


def _to_nat(x):
    """Internal (log, logit for fb) -> natural, written out here independently."""
    v = np.exp(x[:6])
    v[4] = 1.0 / (1.0 + math.exp(-x[4]))
    return dict(zip(NAMES, v, strict=True)), math.exp(x[6])


def _ofv(x, rows):
    p, s = _to_nat(x)
    pred = PIECEWISE.predict(rows["time"].to_numpy(), p)
    return -2.0 * handwritten_ll(rows, pred, s).sum()


@pytest.mark.parametrize("pid", ["P01", "P04"])
def test_censored_loglik_at_optimum_equals_scipy_rows(trial, pid):
    res = fit_individual(trial, id=pid)
    est = res.estimates
    pr = res.predictions
    assert (pr["cens"] == 1).sum() >= 3  # the BLQ rows are in the fit
    ipred = PIECEWISE.predict(pr["time"].to_numpy(), {k: est[k] for k in NAMES})
    ll = handwritten_ll(pr, ipred, est["sigma_log_car_qpcr"])
    np.testing.assert_allclose(pr["ll"], ll, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(pr["ipred"], ipred, rtol=1e-10)
    assert res.ofv == pytest.approx(-2 * ll.sum(), abs=1e-8)
    k, n = 7, len(pr)
    assert res.n_par == k and res.n_obs == n
    assert res.aic == pytest.approx(-2 * ll.sum() + 2 * k, abs=1e-8)
    assert res.bic == pytest.approx(-2 * ll.sum() + k * math.log(n), abs=1e-8)


def test_m1_discards_blq_rows_and_counts_them_out(trial):
    res = fit_individual(trial, id="P01", method="m1", warn=False)
    pr = res.predictions
    est = res.estimates
    ipred = PIECEWISE.predict(pr["time"].to_numpy(), {k: est[k] for k in NAMES})
    ll = handwritten_ll(pr, ipred, est["sigma_log_car_qpcr"], method="m1")
    np.testing.assert_allclose(pr["ll"], ll, rtol=1e-9, atol=1e-12)
    assert res.n_obs == int((pr["cens"] == 0).sum())
    assert "blq_approximate" in res.flags


def test_estimate_is_a_minimum_of_the_independent_objective(trial):
    res = fit_individual(trial, id="P05")
    rows = res.predictions
    x = res.params["estimate_internal"].to_numpy()
    f0 = _ofv(x, rows)
    assert f0 == pytest.approx(res.ofv, abs=1e-8)
    out = optimize.minimize(_ofv, x, args=(rows,), method="Nelder-Mead",
                            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
    assert out.fun > f0 - 1e-4


def test_standard_errors_from_the_observed_information(trial):
    """SE(internal) = sqrt(diag(2 H^-1)), H the OFV Hessian by independent differences."""
    res = fit_individual(trial, id="P05")
    rows = res.predictions
    x = res.params["estimate_internal"].to_numpy()
    h, p = 1e-3, x.size
    hess = np.empty((p, p))
    for i in range(p):
        for j in range(p):
            e_i, e_j = np.eye(p)[i] * h, np.eye(p)[j] * h
            hess[i, j] = (_ofv(x + e_i + e_j, rows) - _ofv(x + e_i - e_j, rows)
                          - _ofv(x - e_i + e_j, rows) + _ofv(x - e_i - e_j, rows)) / (4 * h * h)
    se = np.sqrt(np.diag(2 * np.linalg.inv(hess)))
    np.testing.assert_allclose(res.params["se_internal"], se, rtol=0.02)
    # delta method and back-transformed CI
    par = res.params
    assert par.loc["cmax", "se"] == pytest.approx(par.loc["cmax", "estimate"] * se[2], rel=0.02)
    fb = par.loc["fb", "estimate"]
    assert par.loc["fb", "se"] == pytest.approx(fb * (1 - fb) * se[4], rel=0.02)
    assert par.loc["tmax", "ci_upper"] == pytest.approx(
        math.exp(x[1] + 1.959963984540054 * par.loc["tmax", "se_internal"]), rel=1e-9)


def test_joint_fit_likelihood_and_scale(trial):
    res = fit_individual(trial, id="P02", endpoint="joint")
    est = res.estimates
    pr = res.predictions
    lat = PIECEWISE.predict(pr["time"].to_numpy(), {k: est[k] for k in NAMES})
    flow = (pr["endpoint"] == "car_flow").to_numpy()
    ipred = np.where(flow, lat * math.exp(est["log_scale_car_flow"]), lat)
    sig = np.where(flow, est["sigma_log_car_flow"], est["sigma_log_car_qpcr"])
    ll = handwritten_ll(pr, ipred, sig)
    assert res.ofv == pytest.approx(-2 * ll.sum(), abs=1e-8)
    assert res.n_par == 9
    # the same value through the ObservationModel route (pandas, per assay)
    obs = default_observation_model().with_values(
        {"sigma_log_car_qpcr": est["sigma_log_car_qpcr"],
         "sigma_log_car_flow": est["sigma_log_car_flow"],
         "log_scale_car_flow": est["log_scale_car_flow"]})
    assert -2 * obs.loglik(pr, lat).sum() == pytest.approx(res.ofv, abs=1e-8)


def test_joint_fit_recovers_the_flow_scale(trial):
    import json

    from .conftest import TRIAL
    truth = json.loads(TRIAL.with_name("trial_truth.json").read_text())
    err = []
    for p in truth["participants"][:6]:
        res = fit_individual(trial, id=p["id"], endpoint="joint", n_starts=4, warn=False)
        err.append(res.estimates["log_scale_car_flow"] - math.log(p["flow_per_copy"]))
    assert np.median(np.abs(err)) < 0.25


@pytest.mark.parametrize("method", ["m2", "m4", "m5", "m6"])
def test_other_methods_optimise_loglik_obs(trial, method):
    res = fit_individual(trial, id="P01", method=method, n_starts=3, warn=False)
    est = res.estimates
    pr = res.predictions
    lat = PIECEWISE.predict(pr["time"].to_numpy(), {k: est[k] for k in NAMES})
    obs = ObservationModel({"car_qpcr": default_observation_model().assays["car_qpcr"]})
    obs = obs.with_values({"sigma_log_car_qpcr": est["sigma_log_car_qpcr"]})
    assert -2 * obs.loglik(pr, lat, method=method).sum() == pytest.approx(res.ofv, abs=1e-8)
    assert res.converged


def test_other_error_kind(trial):
    em = ErrorModel("proportional", unit="copies/ug")
    obs = ObservationModel({"car_qpcr": default_observation_model().assays["car_qpcr"].__class__(
        "car_qpcr", error=em, sigma=0.3)})
    res = fit_individual(trial, id="P05", observation=obs, n_starts=3, warn=False)
    est = res.estimates
    lat = PIECEWISE.predict(res.predictions["time"].to_numpy(), {k: est[k] for k in NAMES})
    obs2 = obs.with_values({"sigma_prop_car_qpcr": est["sigma_prop_car_qpcr"]})
    assert -2 * obs2.loglik(res.predictions, lat).sum() == pytest.approx(res.ofv, abs=1e-8)
    assert np.isfinite(res.params["se"]).all()


def test_piecewise_analytic_jacobian_matches_differences():
    t = np.array([0.0, 0.5, 3.0, 9.9, 10.0, 10.1, 30.0, 200.0, 700.0])
    x = np.array([[math.log(1500), math.log(10.0), math.log(1.5e4), math.log(0.12),
                   math.log(0.03 / 0.97), math.log(0.006)],
                  [math.log(40), math.log(3.0), math.log(80), math.log(1.1),
                   math.log(0.4 / 0.6), math.log(0.05)]])
    specs = PIECEWISE.params
    jac = _piecewise_jac(t, x, specs)
    h = 1e-6
    for b in range(2):
        for k in range(6):
            xp, xm = x[b].copy(), x[b].copy()
            xp[k] += h
            xm[k] -= h
            nat = [{s.name: float(s.from_internal(v)) for s, v in zip(specs, xx, strict=True)}
                   for xx in (xp, xm)]
            num = (PIECEWISE.log_predict(t, nat[0]) - PIECEWISE.log_predict(t, nat[1])) / (2 * h)
            keep = np.abs(t - math.exp(x[b, 1])) > 1e-3  # the kink itself
            np.testing.assert_allclose(jac[b, keep, k], num[keep], rtol=1e-6, atol=1e-7)


def test_square_root_residuals_sum_to_the_ofv(trial):
    """STYLE 2.2.3: sum(r^2) = OFV - sum(c), c = 2 ln(sigma_floor) + ln(2 pi) on density rows."""
    unit, _ = prepare_unit(trial, "car_qpcr", default_observation_model(), id="P03")
    model = get_model("piecewise")
    infos, x, _ = build_parameters(model, unit)
    prob = Problem(unit, model, infos, "m3")
    r, jac = prob.residual_jac(x)
    ofv = prob.ofv(x[None, :])[0]
    sig_lower = math.exp(infos[-1].lower)
    c = np.where(unit.cens == 0, 2 * math.log(sig_lower / 2) + math.log(2 * math.pi), 0.0)
    assert np.sum(r**2) == pytest.approx(ofv - c.sum(), rel=1e-12)
    assert np.all(np.isfinite(jac))
    # the Jacobian of r is consistent with the OFV gradient: 2 J'r = grad
    _, g, _ = prob.ofv_grad(x[None, :])
    np.testing.assert_allclose(2 * jac.T @ r, g[0], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["piecewise_rate", "piecewise_lag", "smooth"])
def test_any_registered_model(trial, name):
    """Numerical model Jacobians; the rate parameterisation reaches piecewise's optimum."""
    model = get_model(name)
    res = fit_individual(trial, id="P05", model=name, n_starts=4, warn=False)
    est = res.estimates
    pr = res.predictions
    ipred = model.predict(pr["time"].to_numpy(), {k: est[k] for k in model.param_names})
    ll = handwritten_ll(pr, ipred, est["sigma_log_car_qpcr"])
    assert res.ofv == pytest.approx(-2 * ll.sum(), abs=1e-8)
    assert res.converged
    ref = fit_individual(trial, id="P05", n_starts=4)
    if name == "piecewise_rate":
        assert res.ofv == pytest.approx(ref.ofv, abs=1e-5)
        assert est["r0"] * np.exp(est["rho"] * est["tmax"]) == pytest.approx(
            ref.estimates["cmax"], rel=1e-3)
    else:  # nested models (tlag -> 0, kappa -> inf give piecewise): never worse
        assert res.ofv <= ref.ofv + 1e-4


def test_fused_piecewise_pairs_equal_log_predict():
    # the fitting code's fused level + Jacobian per (vector, row) pair: the level is the
    # model's own log_predict bit for bit (the Jacobian is checked against differences of
    # log_predict in test_piecewise_analytic_jacobian_matches_differences)
    from carkinetics.fitting._problem import _piecewise_pairs

    model = get_model("piecewise")
    specs = list(model.params)
    rng = np.random.default_rng(5)
    b = 7
    x = np.array([[s.to_internal(s.typical) for s in specs]] * b)
    x += rng.normal(0.0, 0.4, x.shape)
    t = np.array([-1.0, 0.0, 0.5, 3.0, 9.0, 10.0, 28.0, 90.0, 400.0, 900.0])
    vec = np.repeat(np.arange(b), t.size)
    tt = np.tile(t, b)
    jac = np.empty((vec.size, 6))
    mu = _piecewise_pairs(tt, x, vec, specs, jac)
    for k in range(b):
        nat = {s.name: float(s.from_internal(x[k, i])) for i, s in enumerate(specs)}
        np.testing.assert_array_equal(mu[vec == k], model.log_predict(t, nat))
    assert np.array_equal(mu, _piecewise_pairs(tt, x, vec, specs))  # with or without jac
