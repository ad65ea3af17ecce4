"""PD fits: simulation-estimation recovery, sequential vs joint, fit_individual adaptor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting import fit_individual
from carkinetics.pd import get_pd_model
from carkinetics.pd.fit import PDEndpointModel, fit_pd, fit_pd_all, read_ck_params

CK = {"foldx": 1500.0, "tmax": 10.0, "cmax": 15000.0, "alpha": 0.12, "fb": 0.03,
      "beta": 0.006}
TIMES = np.array([-1, 1, 3, 4, 5, 6, 7, 8, 10, 14, 21, 28, 42, 56, 70, 84, 100, 120, 150,
                  180, 240, 300, 365], float)
EST = ["b0", "kb", "kmax", "ec50"]


def simulate(system, truth, rng, pid, sd, lloq, times=TIMES):
    sim = system.simulate(truth, float(times.max()), times=times[times >= 0],
                          record_every=0.0)
    rows = []
    for ep in sd:
        v = sim.at(ep, times)[0] * np.exp(rng.normal(0.0, sd[ep], times.size))
        c = (v < lloq[ep]).astype(int)
        rows.append(pd.DataFrame({"id": pid, "time": times, "endpoint": ep,
                                  "dv": np.where(c == 1, lloq[ep], v), "lloq": lloq[ep],
                                  "cens": c}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def recovery():
    """Four participants, B-cell PD parameters drawn around the typical values."""
    system = get_pd_model("bcell")
    rng = np.random.default_rng(2024)
    out = []
    for i in range(4):
        truth = system.typical()
        truth.update(CK)
        for n in EST:
            truth[n] *= float(np.exp(rng.normal(0.0, 0.3)))
        data = simulate(system, truth, rng, f"R{i}", {"cd19_b": 0.15}, {"cd19_b": 0.5})
        fit = fit_pd(data, system, ck_params=CK, estimate=EST)
        out.append((truth, fit, data))
    return out


def test_sequential_fit_recovers_truth(recovery):
    errs = []
    for truth, fit, _ in recovery:
        assert fit.converged and fit.mode == "sequential"
        est = fit.estimates
        errs += [abs(est[n] / truth[n] - 1.0) for n in EST]
        # CK held at the given values
        assert est["cmax"] == CK["cmax"] and fit.params.loc["cmax", "fixed"]
    assert np.median(errs) < 0.15
    # the Wald intervals cover the truth in most cases
    cover = [fit.params.loc[n, "ci_lower"] <= truth[n] <= fit.params.loc[n, "ci_upper"]
             for truth, fit, _ in recovery for n in EST]
    assert np.mean(cover) >= 0.6


def test_objective_is_the_censored_likelihood(recovery):
    """OFV = -2 sum of independently computed normal log-densities / log-CDFs (M3)."""
    from scipy import stats

    truth, fit, data = recovery[0]
    pr = fit.predictions
    s = fit.estimates["sigma_cd19_b"]
    z = (np.log(pr["dv"]) - np.log(pr["pred"])) / s
    ll = np.where(pr["cens"] == 1, stats.norm.logcdf(z), stats.norm.logpdf(z) - np.log(s))
    assert fit.ofv == pytest.approx(-2.0 * ll.sum(), rel=1e-9)
    assert fit.aic == pytest.approx(fit.ofv + 2 * 5)
    frame = fit.to_frame()
    assert {"id", "parameter", "estimate", "se", "ci_lower", "ci_upper"} <= set(frame.columns)


def test_fit_individual_with_the_model_adaptor_agrees(recovery):
    truth, fit, data = recovery[1]
    system = get_pd_model("bcell")
    model = PDEndpointModel(system, "cd19_b", CK, EST)
    res = fit_individual(data, model, endpoint="cd19_b", n_starts=2, warn=False,
                         start={n: fit.estimates[n] for n in EST})
    for n in EST:
        assert res.estimates[n] == pytest.approx(fit.estimates[n], rel=0.02)
    # fit_individual leaves the pre-infusion row out; fit_pd keeps it (the baseline)
    pre = fit.predictions["time"] < 0
    assert res.ofv == pytest.approx(fit.ofv + 2.0 * fit.predictions.loc[pre, "ll"].sum(),
                                    abs=0.05)


def test_joint_ck_and_bcell_fit_of_the_antigen_model():
    """Mechanistic joint fit: CAR-T (qPCR) and B cells inform the antigen-driven model."""
    system = get_pd_model("antigen")
    truth = system.typical()
    rng = np.random.default_rng(7)
    truth.update(rho=1.3, d_e=0.22, kmax=12.0, ec50=900.0)
    data = simulate(system, truth, rng, "J", {"car_qpcr": 0.2, "cd19_b": 0.15},
                    {"car_qpcr": 5.0, "cd19_b": 0.5}, times=TIMES[TIMES <= 240])
    est = ["kmax", "ec50"]
    fixed = {n: truth[n] for n in ("ag50", "k_em", "beta", "w_bcma", "e0", "k_exh")}
    fit = fit_pd(data, system, ck_params=None, estimate=est, fixed=fixed)
    assert fit.mode == "joint" and set(fit.info["endpoints"]) == {"car_qpcr", "cd19_b"}
    for n in ("rho", "d_e", "ec50"):
        assert fit.estimates[n] == pytest.approx(truth[n], rel=0.15), n
    # the killing ceiling is seen only through how fast B cells cross the LLOQ: wide CI
    assert fit.params.loc["kmax", "ci_lower"] <= truth["kmax"] <= fit.params.loc[
        "kmax", "ci_upper"]


def test_read_ck_params_and_batch(tmp_path, recovery):
    long = pd.DataFrame([{"id": "R0", "parameter": k, "estimate": v} for k, v in CK.items()])
    path = tmp_path / "parameters.csv"
    long.to_csv(path, index=False)
    ck = read_ck_params(path)
    assert ck == {"R0": CK}
    data = pd.concat([recovery[0][2], recovery[1][2]])
    fits, failed = fit_pd_all(data, "bcell", ck_params=ck, estimate=EST, n_starts=1)
    assert [f.id for f in fits] == ["R0"] and list(failed["id"]) == ["R1"]
    assert "no CK parameters" in failed["reason"].iloc[0]
    with pytest.raises(DataError, match="expected the long"):
        read_ck_params(pd.DataFrame({"x": [1]}))


def test_fit_errors():
    system = get_pd_model("bcell")
    d = pd.DataFrame({"id": "A", "time": [1.0, 2.0], "endpoint": "cd19_b", "dv": [1.0, 1.0],
                      "cens": [1, 1], "lloq": [1.0, 1.0]})
    with pytest.raises(DataError, match="below the LLOQ"):
        fit_pd(d, system, ck_params=CK)
    with pytest.raises(ModelSpecError, match="missing"):
        fit_pd(d.assign(cens=0), system, ck_params={"cmax": 1.0})
    with pytest.raises(ModelSpecError, match="Did you mean 'kmax'"):
        fit_pd(d.assign(cens=0), system, ck_params=CK, estimate=["kmx"])


def test_multi_endpoint_sequential_fit_recovers_truth():
    """B cells, IgG and anti-dsDNA fitted together (three error models, one system)."""
    system = get_pd_model("autoantibodies")
    truth = system.typical()
    truth.update(CK)
    truth.update(b0=180.0, kb=0.025, kmax=8.0, ec50=1200.0, igg0=13.0, f_short_igg=0.3,
                 anti_dsdna0=300.0, f_short_anti_dsdna=0.8)
    rng = np.random.default_rng(99)
    data = simulate(system, truth, rng, "M", {"cd19_b": 0.15, "igg": 0.06, "anti_dsdna": 0.12},
                    {"cd19_b": 0.5, "igg": 0.3, "anti_dsdna": 10.0}, times=TIMES[TIMES <= 240])
    est = ["b0", "kb", "kmax", "ec50", "igg0", "f_short_igg", "anti_dsdna0",
           "f_short_anti_dsdna"]
    fit = fit_pd(data, system, ck_params=CK, estimate=est, n_starts=4)
    assert fit.converged and set(fit.info["endpoints"]) == {"cd19_b", "igg", "anti_dsdna"}
    err = [abs(fit.estimates[n] / truth[n] - 1) for n in est]
    assert np.median(err) < 0.15
    assert fit.estimates["sigma_igg"] == pytest.approx(0.06, rel=0.5)


def test_fit_with_a_parameter_at_its_upper_bound():
    """Regression (found by notebooks/02): with kmax at its upper bound (1000 /day) the
    forward-difference Jacobian stepped outside the domain and the fit raised
    ModelSpecError ('Invalid kmax=1000.000997'); it now steps inwards and reports the
    parameter at its bound."""
    system = get_pd_model("bcell")
    truth = {**system.typical(), **CK, "kmax": 1000.0, "kb": 2.0, "ec50": 600.0}
    data = simulate(system, truth, np.random.default_rng(5), "B", {"cd19_b": 0.06},
                    {"cd19_b": 1.0})
    fixed = {k: truth[k] for k in ("b0", "kb", "ec50")}
    fit = fit_pd(data, system, ck_params=CK, estimate=["kmax"], fixed=fixed, n_starts=2)
    row = fit.params.loc["kmax"]
    assert bool(row["at_bound"]) and 999.0 < row["estimate"] <= 1000.0
    assert np.isnan(row["se"])  # no Wald SE for a parameter at its bound
    assert np.isfinite(fit.ofv)
