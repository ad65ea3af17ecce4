"""fit_bayes on a small, well-identified toy population (one compiled model per module)."""

from __future__ import annotations

import math
import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.exceptions import ConvergenceWarning, ModelSpecError
from carkinetics.fitting.bayes import (
    Prior,
    PriorConflictWarning,
    card_priors,
    default_priors,
    fit_bayes,
    prior_conflict,
    resolve_priors,
)
from carkinetics.fitting.bayes.diagnostics import convergence
from carkinetics.fitting.bayes.model import build_model
from carkinetics.fitting.population.spec import PopulationSpec
from carkinetics.models import get_model
from carkinetics.observation import loglik_obs

TRUTH = {"foldx": 3900.0, "tmax": 9.3, "cmax": 24000.0, "alpha": 0.16, "fb": 0.0079,
         "beta": 0.0032}
OMEGA = {"cmax": 0.4, "alpha": 0.3}
SIGMA = 0.2
TIMES = np.array([1, 3, 5, 7, 9, 11, 14, 21, 28, 45, 60, 90, 120, 180, 270, 365], float)


def toy_data(n: int = 14, seed: int = 7) -> pd.DataFrame:
    """qPCR data simulated with the model's linear-scale closed form (not the spec's log_pred):
    random effects on cmax and alpha, log-additive error, LLOQ 50 copies/ug."""
    m = get_model("piecewise")
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    rows = []
    for i in range(n):
        p = dict(TRUTH)
        p["cmax"] *= math.exp(rng.normal(0, OMEGA["cmax"]))
        p["alpha"] *= math.exp(rng.normal(0, OMEGA["alpha"]))
        y = m.predict(TIMES, p) * np.exp(rng.normal(0, SIGMA, TIMES.size))
        cens = (y < 50.0).astype(int)
        rows.append(pd.DataFrame({"id": f"T{i:02d}", "time": TIMES, "endpoint": "car_qpcr",
                                  "dv": np.where(cens == 1, 50.0, y), "lloq": 50.0,
                                  "cens": cens, "dose": 1e6}))
    return pd.concat(rows, ignore_index=True)


SPEC = PopulationSpec(random_effects=("cmax", "alpha"), covariates=(), endpoint="car_qpcr")


@pytest.fixture(scope="module")
def result():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit_bayes(SPEC, toy_data(), draws=300, tune=400, chains=2, seed=3)


def test_recovers_truth(result):
    """Posterior medians of the typical values near the truth (within 3 posterior SDs and
    15 %), and the summary reports a clean run."""
    df = result.to_frame().set_index("parameter")
    assert list(df.columns) == ["estimate", "se", "rse", "ci_lower", "ci_upper"]
    for k, v in TRUTH.items():
        est, se = df.loc[k, "estimate"], df.loc[k, "se"]
        assert abs(est - v) < 3 * se, (k, est, se, v)
        assert abs(est / v - 1) < 0.15, (k, est, v)
        assert df.loc[k, "ci_lower"] < est < df.loc[k, "ci_upper"]
    # 14 participants: omega(cmax) = 0.16 within a factor of 2.5
    assert 0.16 / 2.5 < df.loc["omega(cmax)", "estimate"] < 0.16 * 2.5
    assert abs(df.loc["sigma_log_car_qpcr", "estimate"] - SIGMA) < 0.03
    s = result.summary
    assert s["method"] == "bayes" and s["divergences"] == 0
    assert s["r_hat_max"] < 1.1  # short chains: the classic threshold
    assert s["n_blq"] == int(toy_data()["cens"].sum()) > 20


def test_individual_frame(result):
    ind = result.individual_frame()
    assert list(ind["id"]) == [f"T{i:02d}" for i in range(14)]
    assert {"eta_cmax", "eta_alpha", "cmax", "alpha"} <= set(ind.columns)
    # parameters without a random effect are the typical value for everyone
    np.testing.assert_allclose(ind["tmax"], ind["tmax"].iloc[0])


def test_log_density_equals_numpy_joint(result):
    """At a point, -2 x (the PyMC likelihood potential + the random-effect density) equals
    the FOCE-I joint -2 log density computed in numpy: sum_j -2 loglik_obs + eta' Omega^-1 eta
    + log|Omega| + k n log(2 pi)."""
    built = build_model(SPEC, result.design, result.priors)
    model = built.model
    des = result.design
    rng = np.random.default_rng(0)
    point = model.initial_point()
    theta_t = np.array([math.log(3000.0), math.log(8.0), math.log(20000.0), math.log(0.2),
                        math.log(0.01 / 0.99), math.log(0.004)])
    omega = np.array([0.5, 0.25])
    z = rng.normal(size=(des.n_ind, 2))
    point.update({"theta_t": theta_t, "omega_log__": np.log(omega), "z": z,
                  "sigma_log__": np.log([0.3])})
    f = model.compile_fn([model.logp(vars=[model["loglik"]], sum=True),
                          model.logp(vars=[model["z"]], sum=True)],
                         inputs=model.value_vars, mode="FAST_COMPILE")
    pot, logp_z = f(point)
    eta = z * omega
    # numpy: the spec's own log predictions and the shared censored likelihood
    theta = dict(zip(des.theta_names, theta_t, strict=True))
    logf = SPEC.log_pred(theta, eta, des, internal=True)
    ll = loglik_obs(des.dv, np.exp(logf), des.cens, error="log_additive", sigma=0.3)
    om_inv = np.diag(1 / omega**2)
    n, k = eta.shape
    joint_np = (-2 * ll.sum() + np.einsum("ni,ij,nj->", eta, om_inv, eta)
                + n * np.log(np.prod(omega**2)) + n * k * math.log(2 * math.pi))
    # log N(eta; 0, Omega) = log N(z; 0, 1) - n sum log omega (change of variables)
    joint_pm = -2.0 * (pot + logp_z - n * np.log(omega).sum())
    assert abs(joint_pm - joint_np) < 1e-8 * max(1.0, abs(joint_np))
    # independent check of the random-effect part with scipy
    np.testing.assert_allclose(logp_z, stats.norm.logpdf(z).sum(), rtol=1e-12)


def test_inference_data_groups_and_netcdf(result, tmp_path):
    idata = result.idata
    for g in ("posterior", "sample_stats", "posterior_predictive", "log_likelihood",
              "observed_data", "constant_data"):
        assert g in idata.groups()
    des = result.design
    np.testing.assert_array_equal(idata.constant_data["lloq"].values, des.lloq)
    np.testing.assert_array_equal(idata.constant_data["cens"].values, des.cens)
    pp = idata.posterior_predictive
    # replicated data are censored at each row's own limit, like the observations
    rep_cens = pp["cens"].values
    np.testing.assert_array_equal(pp["dv"].values[rep_cens == 1],
                                  np.broadcast_to(des.lloq, rep_cens.shape)[rep_cens == 1])
    # the model predicts the observed BLQ fraction (posterior predictive mean within 0.05)
    assert abs((rep_cens == 1).mean() - (des.cens == 1).mean()) < 0.05
    path = tmp_path / "posterior.nc"
    idata.to_netcdf(str(path))
    back = az.from_netcdf(str(path))
    np.testing.assert_allclose(back.posterior["theta_t"].values,
                               idata.posterior["theta_t"].values)
    assert list(back.constant_data["endpoint"].values[:2]) == ["car_qpcr", "car_qpcr"]
    # log-likelihood group: the numpy likelihood per row, usable by az.loo
    ll = idata.log_likelihood["dv"].values
    assert ll.shape[-1] == des.n_rows and np.all(np.isfinite(ll))


def test_prior_conflict_table_closed_form():
    """Tail probabilities against scipy; a conflicting prior is flagged and warned."""
    rng = np.random.default_rng(1)
    post = {"theta_t": rng.normal([2.0, 0.0], [0.1, 0.5], size=(2, 400, 2)),
            "omega": np.abs(rng.normal(0.3, 0.02, size=(2, 400, 1))),
            "sigma": np.abs(rng.normal(0.2, 0.01, size=(2, 400, 1)))}
    idata = az.from_dict(posterior=post, dims={"theta_t": ["theta_par"], "omega": ["eta_par"],
                                               "sigma": ["sigma_par"]},
                         coords={"theta_par": ["a", "b"], "eta_par": ["a"],
                                 "sigma_par": ["s"]})
    from carkinetics.fitting.bayes.priors import PriorSet

    ps = PriorSet({"a": Prior("normal", 0.0, 0.5), "b": Prior("normal", 0.0, 2.0)},
                  {"a": Prior("halfnormal", 0.0, 1.0)}, {"s": Prior("halfnormal", 0.0, 1.0)})
    with pytest.warns(PriorConflictWarning, match=r"\['a'\]"):
        tab = prior_conflict(idata, ps)
    med_a = np.median(post["theta_t"][..., 0])
    np.testing.assert_allclose(tab.loc[0, "prior_tail"], 2 * stats.norm.sf(med_a / 0.5),
                               rtol=1e-10)
    med_s = np.median(post["sigma"])
    np.testing.assert_allclose(tab.loc[3, "prior_tail"], 2 * stats.norm.sf(med_s),
                               rtol=1e-10)
    assert tab["conflict"].tolist() == [True, False, False, False]
    np.testing.assert_allclose(tab.loc[1, "sd_ratio"], np.std(post["theta_t"][..., 1],
                                                             ddof=1) / 2.0, rtol=1e-12)


def test_convergence_flags_unmixed_chains():
    rng = np.random.default_rng(2)
    good = rng.normal(size=(2, 500, 1))
    bad = good + np.array([0.0, 3.0])[:, None, None]
    for x, ok in ((good, True), (bad, False)):
        idata = az.from_dict(posterior={"theta_t": x}, sample_stats={
            "diverging": np.zeros((2, 500), bool)}, dims={"theta_t": ["theta_par"]},
            coords={"theta_par": ["a"]})
        c = convergence(idata)
        assert (c["warnings"] == []) is ok
        assert (c["r_hat_max"] < 1.01) is ok


def test_priors_from_card_and_overrides():
    des = SPEC.design(toy_data(3))
    ps = card_priors(des, "stein_2019")
    assert ps.theta["foldx"].loc == pytest.approx(math.log(3900.0))
    # Stein 2019 IIV transcribed as variances: the prior scale is the SD
    assert ps.omega["cmax"].scale == pytest.approx(math.sqrt(0.65))
    assert ps.sigma["sigma_log_car_qpcr"].scale == pytest.approx(0.56)
    d = default_priors(des)
    assert d.theta["tmax"].scale == 2.0 and d.omega["alpha"].kind == "halfnormal"
    r = resolve_priors(des, {"omega_cmax": Prior("halfnormal", 0.0, 0.3)})
    assert r.omega["cmax"].scale == 0.3
    with pytest.raises(ModelSpecError, match="Did you mean 'omega_cmax'"):
        resolve_priors(des, {"omega_cmx": Prior("halfnormal", 0.0, 0.3)})
    with pytest.raises(ModelSpecError, match="stein_2019"):
        resolve_priors(des, "stein_2018")
    with pytest.raises(ModelSpecError, match="normal"):
        resolve_priors(des, {"cmax": Prior("halfnormal", 0.0, 1.0)})


def test_bad_arguments():
    d = toy_data(2)
    with pytest.raises(ModelSpecError, match="sampler"):
        fit_bayes(SPEC, d, sampler="stan")
    with pytest.raises(ModelSpecError, match="ci"):
        fit_bayes(SPEC, d, ci=90)


def test_plots(result):
    from carkinetics.plots.bayes import (
        plot_posterior_predictive,
        plot_prior_posterior,
        ppc_table,
    )

    fig = plot_prior_posterior(result)
    n = len(result.prior_check)
    assert sum(ax.axison for ax in fig.axes) == n
    rows, blq = ppc_table(result, n_bins=4)
    des = result.design
    assert len(rows) == des.n_rows
    assert np.all(rows["pp_lo"] <= rows["pp_median"]) and np.all(rows["pp_median"]
                                                                  <= rows["pp_hi"])
    # observed % BLQ per bin, weighted by bin size, gives back the overall BLQ fraction
    t = des.t
    edges = np.unique(np.quantile(t, np.linspace(0, 1, 5)))
    counts = np.bincount(np.clip(np.searchsorted(edges, t, side="right") - 1, 0,
                                 len(edges) - 2))
    np.testing.assert_allclose((blq["observed"].to_numpy() * counts).sum() / counts.sum(),
                               100 * (des.cens == 1).mean())
    fig2 = plot_posterior_predictive(result, n_bins=4)
    assert len(fig2.axes) == 2


@pytest.mark.parametrize("which", ["pymc", "nutpie"])
def test_sample_backends_on_a_normal_model(which):
    """Both samplers return the same InferenceData layout and recover N(1, 2^2)."""
    import pymc as pm

    from carkinetics.fitting.bayes.sampling import nutpie_available, sample

    if which == "nutpie" and not nutpie_available():
        with pytest.raises(ModelSpecError, match="not installed"):
            sample(pm.Model(), sampler="nutpie")
        return
    with pm.Model() as m:
        pm.Normal("x", 1.0, 2.0, shape=2)
    idata, timing = sample(m, sampler=which, draws=400, tune=300, chains=2, seed=5, cores=1)
    x = idata.posterior["x"].values
    assert x.shape == (2, 400, 2)
    assert abs(x.mean() - 1.0) < 0.3 and abs(x.std() - 2.0) < 0.3
    assert timing["sampler"] == which and timing["sampling_seconds"] > 0
    assert "diverging" in idata.sample_stats


def test_centred_parameterization_same_density(result):
    """The centred model at phi = typical + eta has the same likelihood, and its
    individual-parameter density is N(phi; typical, omega)."""
    des = result.design
    nc = build_model(SPEC, des, result.priors).model
    ce = build_model(SPEC, des, result.priors, parameterization="centred").model
    rng = np.random.default_rng(4)
    theta_t = np.log([3000.0, 8.0, 20000.0, 0.2, 0.01 / 0.99, 0.004])
    omega = np.array([0.5, 0.25])
    z = rng.normal(size=(des.n_ind, 2))
    centre = theta_t[[2, 3]]  # no covariates: every participant's typical cmax, alpha
    p_nc = nc.initial_point() | {"theta_t": theta_t, "omega_log__": np.log(omega), "z": z,
                                 "sigma_log__": np.log([0.3])}
    p_ce = ce.initial_point() | {"theta_t": theta_t, "omega_log__": np.log(omega),
                                 "phi": centre + z * omega, "sigma_log__": np.log([0.3])}
    f_nc = nc.compile_fn(nc.logp(vars=[nc["loglik"]]), inputs=nc.value_vars,
                         mode="FAST_COMPILE")
    f_ce = ce.compile_fn([ce.logp(vars=[ce["loglik"]]), ce.logp(vars=[ce["phi"]])],
                         inputs=ce.value_vars, mode="FAST_COMPILE")
    pot_ce, lp_phi = f_ce(p_ce)
    np.testing.assert_allclose(pot_ce, f_nc(p_nc), rtol=1e-12)
    np.testing.assert_allclose(lp_phi, stats.norm.logpdf(z * omega, 0, omega).sum(),
                               rtol=1e-12)
    with pytest.raises(ModelSpecError, match="parameterization"):
        build_model(SPEC, des, result.priors, parameterization="center")
