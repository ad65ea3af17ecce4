"""Virtual participants from a population fit and their predicted exposure."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.exceptions import ModelSpecError
from carkinetics.fitting.population import Covariate, PopulationSpec, dose_covariate
from carkinetics.pd import bcell_events, get_pd_model, ig_events
from carkinetics.simulate.virtual import (
    CovariateModel,
    Shortfall,
    VirtualSource,
    draw_virtual,
    participant_seed,
    predict_exposure,
)

DOSES = [2.5e5, 1e6, 4e6]


def _spec_design(random_effects=("cmax",), weight=False):
    covs = (dose_covariate(),)
    if weight:
        covs += (Covariate("weight", kind="power", reference=70.0),)
    spec = PopulationSpec(random_effects=list(random_effects), endpoint="car_qpcr",
                          covariates=covs)
    data = pd.DataFrame({"id": [1, 1, 2, 2], "time": [1.0, 10, 1, 10],
                         "dv": [10.0, 1e4, 20, 2e4], "endpoint": "car_qpcr",
                         "dose": [1e6, 1e6, 2e6, 2e6], "weight": [60.0, 60, 80, 80]})
    return spec, spec.design(data)


def _source(omega, covariance=None, random_effects=("cmax",), theta=None, weight=False):
    spec, d = _spec_design(random_effects, weight)
    th = {**d.theta_typical(), **(theta or {})}
    return VirtualSource.from_values(spec, d, th, np.atleast_2d(omega), d.sigma_typical(),
                                     covariance=covariance)


def test_zero_iiv_zero_uncertainty_equals_typical_prediction():
    spec, d = _spec_design(random_effects=spec_names())
    k, p = len(d.eta_names), len(d.theta_names) + len(d.eta_names) + len(d.sigma_names)
    src = VirtualSource.from_values(spec, d, d.theta_typical(), np.zeros((k, k)),
                                    d.sigma_typical(), covariance=np.zeros((p, p)))
    vp = draw_virtual(src, 6, n_sets=2, seed=3,
                      covariates=CovariateModel(b0=(150.0, 0.0), weight=(70.0, 0.0)))
    ep = predict_exposure(vp, DOSES, t_end=200.0)
    m = spec.model
    typ = m.typical()
    for i, dose in enumerate(DOSES):
        at = m.with_dose(typ, dose, 1e6, 0.5)
        der = m.derived(at)
        np.testing.assert_allclose(ep.values["cmax"][i], der["cmax"], rtol=1e-12)
        np.testing.assert_allclose(ep.values["auc_0_28"][i], der["auc_0_28"], rtol=1e-12)
        # PD of the typical participant, one simulation
        system = get_pd_model("immunoglobulins")
        par = {**system.typical(), **{k_: float(v) for k_, v in at.items()}}
        sim = system.simulate(par, 200.0)
        ev = bcell_events(sim)
        dur = ev["aplasia_duration"][0]
        dur = (200.0 - ev["time_to_aplasia"][0]) if not np.isfinite(dur) else dur
        np.testing.assert_allclose(ep.values["aplasia_duration"][i], dur, rtol=1e-9)
        np.testing.assert_allclose(ep.values["igg_nadir"][i], ig_events(sim)["igg_nadir"][0],
                                   rtol=1e-9)
    assert np.all(vp.eta == 0.0)


def spec_names():
    return ("foldx", "tmax", "cmax", "alpha", "fb", "beta")


def test_log_cmax_quantiles_match_lognormal_with_iiv_and_uncertainty():
    # IIV on log cmax and parameter uncertainty on (log cmax, dose_exp):
    # log Cmax(d) ~ N(log TV + b L, omega + v_c + L^2 v_b + 2 L c), L = log(d / 1e6)
    spec, d = _spec_design()
    names = list(d.theta_names)
    p = len(names) + 2
    cov = np.zeros((p, p))
    ic, ib = names.index("cmax"), names.index("dose_exp")
    cov[ic, ic], cov[ib, ib] = 0.04, 0.01
    cov[ic, ib] = cov[ib, ic] = 0.005
    omega = 0.5
    src = _source(omega, cov)
    n = 20000
    vp = draw_virtual(src, 1, n_sets=n, seed=11)
    dose = 4e6
    ep = predict_exposure(vp, [dose], pd_model=None)
    lc = np.log(ep.values["cmax"][0])
    big_l = math.log(dose / 1e6)
    mu = math.log(24000.0) + 0.5 * big_l
    sd = math.sqrt(omega + 0.04 + big_l ** 2 * 0.01 + 2 * big_l * 0.005)
    for q in (0.05, 0.5, 0.95):
        z = stats.norm.ppf(q)
        se = math.sqrt(q * (1 - q) / n) / stats.norm.pdf(z) * sd  # SE of a sample quantile
        assert abs(np.quantile(lc, q) - (mu + z * sd)) < 4 * se
    # the summary's median and 90 % PI are the sample quantiles
    row = ep.summary("cmax").iloc[0]
    assert abs(math.log(row["median"]) - mu) < 4 * math.sqrt(math.pi / 2 / n) * sd
    assert abs(math.log(row["upper"]) - (mu + 1.6449 * sd)) < 0.05


def test_uncertainty_draws_have_the_given_covariance():
    spec, d = _spec_design()
    p = len(d.theta_names) + 2
    rng = np.random.default_rng(0)
    a = rng.normal(size=(p, p)) * 0.1
    cov = a @ a.T + np.diag(np.full(p, 0.01))
    src = _source(0.3, cov)
    n = 4000
    th, om, sg = src.draw_sets(n, seed=5)
    x = np.column_stack([th, np.log(om[:, 0, 0]), np.log(sg[:, 0])])
    s = np.cov(x, rowvar=False)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / n)
    assert np.all(np.abs(s - cov) < 4.5 * se)
    np.testing.assert_allclose(x.mean(axis=0), src.estimate, atol=4.5 * math.sqrt(cov.max() / n))


def test_results_independent_of_chunking_and_workers():
    spec, d = _spec_design()
    p = len(d.theta_names) + 2
    src = _source(0.4, np.eye(p) * 0.01)
    kw = {"n_sets": 3, "seed": 42, "shortfall": Shortfall(0.3)}
    a = draw_virtual(src, 20, chunk_size=1000, **kw)
    b = draw_virtual(src, 20, chunk_size=7, **kw)
    c = draw_virtual(src, 20, chunk_size=25, workers=2, **kw)
    for other in (b, c):
        np.testing.assert_array_equal(a.eta, other.eta)
        np.testing.assert_array_equal(a.theta_t, other.theta_t)
        np.testing.assert_array_equal(a.dose_factor, other.dose_factor)
        pd.testing.assert_frame_equal(a.covariates, other.covariates)
    # a participant's draws do not depend on how many are drawn
    small = draw_virtual(src, 5, n_sets=1, seed=42, shortfall=Shortfall(0.3))
    np.testing.assert_array_equal(small.dose_factor, a.dose_factor[:5])
    pd.testing.assert_frame_equal(small.covariates, a.covariates.iloc[:5])
    seq = np.random.SeedSequence(42).spawn(3)[1].spawn(10)[9]
    np.testing.assert_array_equal(participant_seed(42, 1, 9).generate_state(4),
                                  seq.generate_state(4))


def test_shortfall_and_covariates_enter_the_kinetics():
    src = _source(0.0, theta={"cmax_weight": -0.75}, weight=True)
    sf = Shortfall(0.3, 0.5, 0.9)
    vp = draw_virtual(src, 4000, seed=8, shortfall=sf)
    short = vp.dose_factor < 1
    assert abs(short.mean() - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 4000)
    assert vp.dose_factor[short].min() >= 0.5 and vp.dose_factor[short].max() <= 0.9
    w = vp.covariates["weight"].to_numpy()
    cmax = vp.kinetics(2e6)["cmax"]
    expected = 24000.0 * (2e6 * vp.dose_factor / 1e6) ** 0.5 * (w / 70.0) ** -0.75
    np.testing.assert_allclose(cmax, expected, rtol=1e-12)
    assert abs(np.median(w) - 70.0) < 1.0


def test_exceedance_probability_matches_lognormal():
    src = _source(0.6)
    n = 5000
    vp = draw_virtual(src, n, seed=21)
    lim = 40000.0
    ep = predict_exposure(vp, [1e6, 4e6], pd_model=None, limits={"cmax": lim})
    df = ep.summary("cmax")
    for i, dose in enumerate([1e6, 4e6]):
        mu = math.log(24000.0) + 0.5 * math.log(dose / 1e6)
        p = float(stats.norm.sf((math.log(lim) - mu) / math.sqrt(0.6)))
        assert abs(df["p_exceed"].iloc[i] - p) < 4 * math.sqrt(p * (1 - p) / n)
        assert df["p_exceed"].iloc[i] == (ep.values["cmax"][i] > lim).mean()
    frame = ep.to_frame()
    assert set(frame["metric"]) == {"cmax", "auc_0_28"}
    assert list(frame.columns[:5]) == ["dose", "metric", "median", "lower", "upper"]


def test_from_focei_maps_the_covariance_to_the_estimation_scale():
    spec, d = _spec_design()
    theta = d.theta_typical()
    names = list(d.theta_names) + ["omega(cmax)"] + list(d.sigma_names)
    p = len(names)
    nat = np.diag(np.linspace(0.1, 1.0, p) ** 2)
    nat[2, 6] = nat[6, 2] = 0.01
    res = SimpleNamespace(engine=SimpleNamespace(model=SimpleNamespace(spec=spec, design=d)),
                          theta=theta, omega=np.array([[0.5]]), sigma=d.sigma_typical(),
                          covariance=pd.DataFrame(nat, index=names, columns=names))
    src = VirtualSource.from_focei(res)
    est = [theta[n] for n in d.theta_names] + [0.5] + list(d.sigma_typical().values())
    grad = []
    for s, v in zip(d.theta_specs, est, strict=False):
        grad.append(1 / v if s.transform == "log" else 1 / (v * (1 - v))
                    if s.transform == "logit" else 1.0)
    grad += [1 / 0.5] + [1 / v for v in est[-len(d.sigma_names):]]
    np.testing.assert_allclose(src.covariance, nat * np.outer(grad, grad), rtol=1e-12)
    # cmax is log-transformed: var(log cmax) = var(cmax) / cmax^2
    assert src.covariance[2, 2] == pytest.approx(nat[2, 2] / 24000.0 ** 2)


def test_bad_input_is_rejected():
    src = _source(0.3)
    vp = draw_virtual(src, 3, seed=1)
    with pytest.raises(ModelSpecError, match="dose"):
        predict_exposure(vp, [0.0])
    with pytest.raises(ModelSpecError, match="limit metric"):
        predict_exposure(vp, [1e6], pd_model=None, limits={"cmx": 1.0})
    with pytest.raises(ModelSpecError, match="fraction"):
        Shortfall(1.5)
    with pytest.raises(ModelSpecError, match="n_per_set"):
        draw_virtual(src, 0)
    wsrc = _source(0.3, weight=True)
    wvp = draw_virtual(wsrc, 3, seed=1, covariates=CovariateModel(
        table=pd.DataFrame({"b0": [100.0], "disease": ["SLE"]})))
    with pytest.raises(ModelSpecError, match="weight"):
        wvp.kinetics(1e6)


def test_from_bayes_uses_posterior_draws():
    import arviz as az

    spec, d = _spec_design()
    rng = np.random.default_rng(4)
    nt = len(d.theta_names)
    th = np.array([s.to_internal(s.typical) for s in d.theta_specs])
    theta_t = th + rng.normal(0, 0.1, size=(2, 50, nt))
    omega = np.abs(rng.normal(0.7, 0.05, size=(2, 50, 1)))
    sigma = np.abs(rng.normal(0.5, 0.05, size=(2, 50, 1)))
    z = rng.normal(size=(2, 50, d.n_ind, 1))
    idata = az.from_dict(posterior={"theta_t": theta_t, "omega": omega, "sigma": sigma,
                                    "z": z},
                         dims={"theta_t": ["theta_par"], "omega": ["eta_par"],
                               "sigma": ["sigma_par"], "z": ["id", "eta_par"]})
    res = SimpleNamespace(idata=idata, spec=spec, design=d)
    src = VirtualSource.from_bayes(res)
    t, o, s = src.draw_sets(7, seed=9)
    flat = theta_t.reshape(100, nt)
    for i in range(7):  # every set is one posterior draw, theta, omega and sigma together
        j = int(np.flatnonzero(np.all(flat == t[i], axis=1))[0])
        assert o[i, 0, 0] == pytest.approx(omega.reshape(100)[j] ** 2)
        assert s[i, 0] == pytest.approx(sigma.reshape(100)[j])
    np.testing.assert_allclose(src.theta_t, np.median(flat, axis=0))
