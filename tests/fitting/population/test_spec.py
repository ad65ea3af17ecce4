"""The CK population specification: numbers by hand, numpy == pytensor, bad input."""

import math

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting.population import Covariate, PopulationSpec, fit_focei
from carkinetics.models import get_model

PW = get_model("piecewise")


@pytest.fixture(scope="module")
def design(trial):
    spec = PopulationSpec(covariates=(Covariate("dose"), Covariate("disease", "cmax",
                                                                   "categorical"),
                                      Covariate("weight", "alpha")),
                          scale_random_effect=True)
    return spec, spec.design(trial)


def test_names_and_dropped_rows(design, trial):
    spec, d = design
    assert d.theta_names[:7] == ("foldx", "tmax", "cmax", "alpha", "fb", "beta", "dose_exp")
    assert "log_scale_car_flow" in d.theta_names and "alpha_weight" in d.theta_names
    levels = sorted(trial.groupby("id")["disease"].first().unique())
    ref = trial.groupby("id")["disease"].first().value_counts().idxmax()
    assert {f"cmax_disease_{lv}" for lv in levels if lv != ref} <= set(d.theta_names)
    assert d.sigma_names == ("sigma_log_car_qpcr", "sigma_log_car_flow")
    assert d.eta_names[-1] == "log_scale_car_flow"
    ck = trial["endpoint"].isin(["car_qpcr", "car_flow"])
    assert d.n_rows == int((ck & (trial["time"] >= 0)).sum()) and d.n_ind == 18
    assert any("pre-infusion" in n for n in d.notes)


def test_individual_parameters_by_hand(design):
    spec, d = design
    rng = np.random.default_rng(0)
    th = {s.name: s.typical for s in d.theta_specs}
    th.update({"dose_exp": 0.7, "alpha_weight": -0.4, "log_scale_car_flow": -5.0})
    for n in d.theta_names:
        if n.startswith("cmax_disease_"):
            th[n] = 0.3
    eta = rng.normal(0, 0.3, (d.n_ind, len(d.eta_names)))
    p = spec.individual(th, eta, d)
    cov = d.covariates.set_index("id")
    j = d.eta_names.index
    for i, pid in enumerate(d.ids):
        dose, w, dis = cov.loc[pid, "dose"], cov.loc[pid, "weight"], cov.loc[pid, "disease"]
        shift = 0.3 if f"cmax_disease_{dis}" in th else 0.0
        cmax = th["cmax"] * (dose / 1e6) ** 0.7 * math.exp(shift + eta[i, j("cmax")])
        alpha = th["alpha"] * (w / np.median(cov["weight"])) ** -0.4 * math.exp(eta[i, j("alpha")])
        lfb = math.log(th["fb"] / (1 - th["fb"])) + eta[i, j("fb")]
        assert p["cmax"][i] == pytest.approx(cmax, rel=1e-12)
        assert p["alpha"][i] == pytest.approx(alpha, rel=1e-12)
        assert p["fb"][i] == pytest.approx(1 / (1 + math.exp(-lfb)), rel=1e-12)
        assert p["log_scale_car_flow"][i] == pytest.approx(-5.0 + eta[i, -1], abs=1e-12)
    # log predictions: the model's closed form plus the assay's log scale
    lp = spec.log_pred(th, eta, d)
    r = 5
    i = d.ind[r]
    kin = {k: p[k][i] for k in PW.param_names}
    expect = math.log(PW.predict(d.t[r], kin)) + (p["log_scale_car_flow"][i]
                                                  if d.assay[r] == 1 else 0.0)
    assert lp[r] == pytest.approx(expect, rel=1e-12)


def test_pytensor_graph_equals_numpy(design):
    pytensor = pytest.importorskip("pytensor")
    import pytensor.tensor as pt

    from carkinetics.models._xp import pytensor_namespace

    spec, d = design
    th = d.theta_typical()
    eta = np.random.default_rng(1).normal(0, 0.2, (d.n_ind, len(d.eta_names)))
    tv = {k: pt.dscalar(k) for k in d.theta_names}
    e = pt.dmatrix("eta")
    f = pytensor.function([*tv.values(), e],
                          spec.log_pred(tv, e, d, xp=pytensor_namespace()),
                          mode="FAST_COMPILE")
    np.testing.assert_allclose(f(*[th[k] for k in tv], eta), spec.log_pred(th, eta, d),
                               rtol=1e-12, atol=1e-12)


def test_analytic_eta_jacobian_matches_differences(design):
    spec, d = design
    th = {k: np.full((2, 1), v) for k, v in d.theta_typical().items()}
    eta = np.random.default_rng(2).normal(0, 0.3, (2, d.n_ind, len(d.eta_names)))
    _, jac = spec.log_pred_jac(th, eta, d)[:2]
    for j in range(len(d.eta_names)):
        e = eta.copy()
        e[..., j] += 1e-6
        up = spec.log_pred(th, e, d)
        e[..., j] -= 2e-6
        dn = spec.log_pred(th, e, d)
        np.testing.assert_allclose(jac[..., j], (up - dn) / 2e-6, atol=1e-6)


def test_initial_values_are_near_the_truth(trial):
    spec = PopulationSpec()
    th = spec.initial_theta(spec.design(trial))
    truth = {"tmax": 10.0, "cmax": 15000.0, "alpha": 0.12, "beta": 0.006}
    for k, v in truth.items():
        assert 0.5 * v < th[k] < 2 * v, k
    assert abs(th["log_scale_car_flow"] - math.log(0.004)) < 0.3


def test_missing_covariate_values_name_column_and_rows(trial):
    bad = trial.copy()
    bad.loc[bad["id"] == "P03", "weight"] = np.nan
    spec = PopulationSpec(covariates=(Covariate("weight"),))
    with pytest.raises(DataError, match=r"column 'weight': missing values .*P03"):
        spec.design(bad)


def test_bad_specifications():
    with pytest.raises(ModelSpecError, match="Did you mean 'tmax'"):
        PopulationSpec(random_effects=("tmaxx",))
    with pytest.raises(ModelSpecError, match="censoring"):
        PopulationSpec(censoring="m9")
    with pytest.raises(ModelSpecError, match="kind"):
        Covariate("dose", kind="spline")


def test_too_many_random_effects_stop_with_reason(trial):
    few = trial[trial["id"].isin(["P01", "P02", "P03", "P04"])]
    with pytest.raises(ModelSpecError, match="6 random effects .* 4 participants"):
        fit_focei(PopulationSpec(), few)


def test_power_covariate_must_be_positive(trial):
    bad = trial.copy()
    bad.loc[bad["id"] == "P02", "weight"] = 0.0
    with pytest.raises(DataError, match="values <= 0"):
        PopulationSpec(covariates=(Covariate("weight"),)).design(bad)


def test_categorical_reference_level_given():
    d = pd.DataFrame({"id": [1, 1, 2, 2, 3, 3], "time": [1.0, 5.0] * 3,
                      "dv": [100.0, 50.0] * 3, "endpoint": "car_qpcr",
                      "dose": 1e6, "disease": ["A", "A", "B", "B", "B", "B"]})
    spec = PopulationSpec(covariates=(Covariate("disease", "cmax", "categorical", "B"),),
                          endpoint="car_qpcr")
    des = spec.design(d)
    assert "cmax_disease_A" in des.theta_names
    np.testing.assert_array_equal(des.effects["cmax_disease_A"], [1.0, 0.0, 0.0])
