"""Batch fits (identical for any number of workers), results objects, model comparison."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.fitting import (
    PARAMETER_COLUMNS,
    FitResults,
    compare_models,
    fit_individual,
    fit_individuals,
    model_comparison,
)

IDS = ["P01", "P02", "P03", "P04", "P05"]


def test_results_identical_with_one_and_two_workers(trial):
    data = trial[trial["id"].isin(IDS)]
    one = fit_individuals(data, workers=1, progress=False, n_starts=4)
    # blocks of 2 participants: three tasks, two worker processes
    two = fit_individuals(data, workers=2, progress=False, n_starts=4, block=2)
    pd.testing.assert_frame_equal(one.to_frame(), two.to_frame())
    pd.testing.assert_frame_equal(one.predictions(), two.predictions())
    for a, b in zip(one, two, strict=True):
        pd.testing.assert_frame_equal(a.starts, b.starts)
        pd.testing.assert_frame_equal(a.covariance, b.covariance)
    assert [f.id for f in one] == IDS
    assert two.timing["workers"] == 2
    # a result sent back from a worker carries its own rows, not the whole table
    assert len(two[IDS[0]].tables.unit.source) == len(two[IDS[0]].predictions)


def test_fit_result_api(trial):
    res = fit_individual(trial, id="P03")
    tab = res.to_frame()
    assert list(tab.columns) == list(PARAMETER_COLUMNS)
    assert list(tab["parameter"]) == ["foldx", "tmax", "cmax", "alpha", "fb", "beta",
                                      "sigma_log_car_qpcr"]
    assert (tab["dose"] == 5e5).all() and (tab["id"] == "P03").all()
    assert tab.loc[tab["parameter"] == "cmax", "unit"].item() == "copies/ug"
    text = res.summary()
    assert "OFV (-2LL)" in text and "participant 'P03'" in text and "sigma_log_car_qpcr" in text
    assert repr(res) == text
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.ofv = 0.0
    assert set(res.derived.index) >= {"doubling_time", "t_half_alpha", "auc_0_28", "auc_0_inf"}
    assert res.derived["doubling_time"] == pytest.approx(
        math.log(2) * res.estimates["tmax"] / math.log(res.estimates["foldx"]))
    assert set(res.curve["endpoint"]) == {"car_qpcr"}
    assert len(res.starts) == 8 and res.starts["ofv"].min() == pytest.approx(res.ofv, abs=1e-3)
    # iwres: standardised on quantified rows, conditional mean (below the limit) when BLQ
    pr = res.predictions
    q = pr["cens"] == 0
    sig = res.estimates["sigma_log_car_qpcr"]
    np.testing.assert_allclose(pr.loc[q, "iwres"],
                               (np.log(pr.loc[q, "dv"]) - np.log(pr.loc[q, "ipred"])) / sig)
    z = (np.log(pr.loc[~q, "dv"]) - np.log(pr.loc[~q, "ipred"])) / sig
    assert (pr.loc[~q, "iwres"] < z).all() and pr.loc[~q, "res"].isna().all()


def test_fit_results_api(trial):
    res = fit_individuals(trial[trial["id"].isin(IDS[:3])], endpoint="each", progress=False,
                          n_starts=3)
    assert isinstance(res, FitResults) and len(res) == 6
    assert res[("P02", "car_flow")].endpoint == "car_flow"
    assert res[("P02", "car_flow")].level_unit == "cells/uL"
    assert res["P01"].endpoint == "car_qpcr"
    with pytest.raises(KeyError):
        res["nobody"]
    tab = res.to_frame()
    assert len(tab) == 3 * 7 * 2
    assert "median estimates (car_flow)" in res.summary()
    assert list(res.flag_table().columns) == ["id", "endpoint", "flag", "message"]


def test_model_comparison(trial):
    fits = [fit_individual(trial, id="P05", model=m, n_starts=4, warn=False)
            for m in ("piecewise", "smooth")]
    tab = model_comparison(fits)
    assert list(tab["model"]) == sorted(["piecewise", "smooth"],
                                        key=lambda m: next(f.aic for f in fits if f.model == m))
    for f in fits:
        row = tab.set_index("model").loc[f.model]
        assert row["aic"] == pytest.approx(f.ofv + 2 * f.n_par)
        assert row["bic"] == pytest.approx(f.ofv + f.n_par * math.log(f.n_obs))
    d = tab["aic"] - tab["aic"].min()
    np.testing.assert_allclose(tab["aic_weight"], np.exp(-d / 2) / np.exp(-d / 2).sum())
    assert tab["aic_weight"].sum() == pytest.approx(1.0)
    with pytest.raises(ModelSpecError, match="comparable"):
        model_comparison([fits[0], fit_individual(trial, id="P05", method="m1", warn=False)])


def test_compare_models_over_a_table(trial):
    tab = compare_models(trial[trial["id"].isin(IDS[:2])], ["piecewise", "piecewise_lag"],
                         progress=False, n_starts=3)
    assert len(tab) == 4
    assert tab.groupby("id")["aic_weight"].sum().to_numpy() == pytest.approx([1.0, 1.0])


def test_multistart_is_deterministic(trial):
    """The design uses no random numbers: disturbing numpy's global state changes nothing."""
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(1)  # noqa: NPY002
        a = fit_individual(trial, id="P06")
        np.random.seed(2)  # noqa: NPY002
        _ = np.random.random(10)  # noqa: NPY002
        b = fit_individual(trial, id="P06")
    finally:
        np.random.set_state(state)  # noqa: NPY002
    pd.testing.assert_frame_equal(a.starts, b.starts)
    pd.testing.assert_frame_equal(a.params, b.params)
    assert a.info["n_starts_converged"] >= 1 and np.isfinite(a.info["ofv_spread"])


def test_profile_likelihood_limits(trial):
    """At each profile limit the re-optimised OFV is the chi-square(1) quantile above."""
    from scipy import optimize, stats

    from .conftest import PIECEWISE, handwritten_ll

    res = fit_individual(trial, id="P05", profile=["cmax", "alpha"])
    par = res.params
    q = stats.chi2.ppf(0.95, 1)
    rows = res.predictions
    x_hat = par["estimate_internal"].to_numpy()
    names = ["foldx", "tmax", "cmax", "alpha", "fb", "beta"]

    def ofv(x):
        v = np.exp(x[:6])
        v[4] = 1 / (1 + np.exp(-x[4]))
        pred = PIECEWISE.predict(rows["time"].to_numpy(), dict(zip(names, v, strict=True)))
        return -2 * handwritten_ll(rows, pred, np.exp(x[6])).sum()

    for j, name in ((2, "cmax"), (3, "alpha")):
        for side in ("profile_lower", "profile_upper"):
            v = math.log(par.loc[name, side])
            free = [i for i in range(7) if i != j]

            def prof(y, v=v, j=j, free=free):
                x = x_hat.copy()
                x[j] = v
                x[free] = y
                return ofv(x)

            best = min((optimize.minimize(prof, x_hat[free] + d, method="Nelder-Mead",
                                          options={"xatol": 1e-7, "fatol": 1e-9,
                                                   "maxiter": 6000})
                        for d in (0.0, 0.05)), key=lambda o: o.fun)
            assert best.fun - res.ofv == pytest.approx(q, abs=0.08)
        # close to the Wald interval for a well-determined parameter
        assert par.loc[name, "profile_lower"] == pytest.approx(par.loc[name, "ci_lower"],
                                                               rel=0.25)
    assert set(res.profiles["parameter"]) == {"cmax", "alpha"}
    assert par["profile_lower"].notna().sum() == 2


def test_stacked_problem_equals_each_unit_alone(trial):
    """Problem.stack evaluates each vector on its own unit's rows, exactly as alone."""
    from carkinetics.fitting.individual import setup_fit
    from carkinetics.models import get_model

    mod = get_model("piecewise")
    setups = [setup_fit(trial, mod, "m3", id=pid, endpoint="joint", n_starts=3)
              for pid in IDS]
    from carkinetics.fitting._problem import Problem

    big = Problem.stack([s.prob for s in setups])
    owner = np.array([3, 0, 4, 1, 2, 0])
    x = np.stack([setups[u].x0[k % 3] for k, u in enumerate(owner)])
    f, g, c = big.ofv_grad(x, curvature=True, owner=owner)
    for k, u in enumerate(owner):
        f1, g1, c1 = setups[u].prob.ofv_grad(x[k:k + 1], curvature=True)
        assert f[k] == f1[0]
        np.testing.assert_array_equal(g[k], g1[0])
        np.testing.assert_array_equal(c[k], c1[0])


def test_batch_equals_single_fits_and_lmfit_polish_changes_nothing(trial):
    data = trial[trial["id"].isin(IDS)]
    batch = fit_individuals(data, progress=False)
    polished = fit_individuals(data, progress=False, polish="always")
    for pid, b, p in zip(IDS, batch, polished, strict=True):
        one = fit_individual(data, id=pid, warn=False)
        pd.testing.assert_frame_equal(one.params, b.params)
        assert one.ofv == b.ofv
        # lmfit's leastsq started at the converged optimum does not move it
        assert b.converged and "no lmfit polish" in b.info["optimizer"]
        assert p.info["lmfit_nfev"] > 0
        # within the convergence test (Newton decrement 1e-4: < 1 % of an SE)
        assert p.ofv == pytest.approx(b.ofv, abs=1e-4)
        se = b.params["se_internal"].to_numpy()
        d = np.abs(p.params["estimate_internal"] - b.params["estimate_internal"]).to_numpy()
        assert np.all(d[np.isfinite(se)] < 0.01 * se[np.isfinite(se)])


def test_batch_with_mixed_layouts_groups_participants(trial):
    """Joint fits where one participant has no quantified flow: two stacked groups."""
    data = trial[trial["id"].isin(IDS)].copy()
    flow = (data["id"] == "P02") & (data["endpoint"] == "car_flow")
    data.loc[flow, "cens"] = 1
    data.loc[flow, "dv"] = data.loc[flow, "lloq"]
    res = fit_individuals(data, endpoint="joint", progress=False, n_starts=2)
    assert [f.id for f in res] == IDS
    assert res["P02"].info["n_stacked"] == 1
    assert res["P01"].info["n_stacked"] == 4
    assert "car_flow" not in res["P02"].predictions["endpoint"].unique()
    for pid in ("P01", "P02"):
        one = fit_individual(data, id=pid, endpoint="joint", n_starts=2, warn=False)
        assert one.ofv == res[pid].ofv
