"""CLI: dose -> exposure relation from a population fit (--population / --ck-params) and the
per-dose committee table of ``escalate`` (predicted exposure and the design's P(DLT))."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import isotonic_regression
from typer.testing import CliRunner

from carkinetics.cli import app
from carkinetics.escalation.base import TrialState
from carkinetics.escalation.exposure import (
    ExposureDesign,
    exposure_quantiles,
    read_population,
)
from carkinetics.simulate.virtual import draw_virtual, predict_exposure

DOSES = [2.5e5, 5e5, 1e6, 2e6]
DOSES_TXT = ",".join(f"{d:g}" for d in DOSES)
# population.csv as written by `carkinetics popfit` (piecewise model, default dose covariate);
# values are the model's documented typical values with invented SEs (a fixture, not a fit).
POP = pd.DataFrame({
    "parameter": ["foldx", "tmax", "cmax", "alpha", "fb", "beta", "dose_exp", "omega(tmax)",
                  "omega(cmax)", "omega(cmax,tmax)", "sigma_log_car_qpcr"],
    "estimate": [3900, 9.3, 24000, 0.16, 0.0079, 0.0032, 0.5, 0.1, 0.5, 0.05, 0.8],
    "se": [500, 1.0, 3000, 0.02, 0.001, 0.0005, 0.1, 0.03, 0.1, np.nan, 0.05]})
for _c in ("rse", "ci_lower", "ci_upper"):
    POP[_c] = np.nan
STATE = pd.DataFrame({"id": [1, 2, 3, 4, 5, 6, 7, 8, 9],
                      "dose_level": [1, 1, 1, 2, 2, 2, 3, 3, 3],
                      "delivered_dose": [2.5e5] * 3 + [5e5, 5e5, 4.5e5] + [1e6] * 3,
                      "dlt": [0, 0, 0, 0, 1, 0, 1, 0, 0], "in_window": 0})


class _Result:
    def __init__(self, r):
        self.returncode = r.exit_code
        self.output = r.output


def run(*args):
    return _Result(CliRunner().invoke(app, [str(a) for a in args]))


@pytest.fixture()
def files(tmp_path):
    pop = tmp_path / "fit"
    pop.mkdir()
    POP.to_csv(pop / "population.csv", index=False)
    (pop / "summary.json").write_text(json.dumps({"model": "piecewise", "method": "focei"}))
    state = tmp_path / "state.csv"
    STATE.to_csv(state, index=False)
    return pop, state


def _escalate(files, tmp_path, design, *extra):
    pop, state = files
    out = tmp_path / f"dec_{design}.json"
    r = run("escalate", state, "--out", out, "--design", design, "--doses", DOSES_TXT,
            "--population", pop, "--n-virtual", 400, "--n-sets", 20, "--seed", 11,
            "--cmax-limit", 40000, "--auc-limit", 3e5, *extra)
    assert r.returncode == 0, r.output
    return json.loads(out.read_text())


def _reference_prediction(pop):
    src = read_population(pop)
    vp = draw_virtual(src, 20, n_sets=20, seed=11)
    return predict_exposure(vp, DOSES, limits={"cmax": 40000, "auc_0_28": 3e5},
                            pd_model=None)


@pytest.mark.parametrize("design", ["boin", "crm", "exposure"])
def test_escalate_committee_table(files, tmp_path, design):
    obj = _escalate(files, tmp_path, design)
    ref = _reference_prediction(files[0])
    rows = pd.DataFrame(obj["per_dose"])
    assert rows["dose_level"].tolist() == [1, 2, 3, 4]
    assert rows["dose"].tolist() == DOSES
    # delivered 4.5e5 < 5e5 counts at level 1
    assert rows["n"].tolist() == [4, 2, 3, 0] and rows["dlt"].tolist() == [0, 1, 1, 0]
    assert obj["virtual"] == {"n_sets": 20, "n_per_set": 20, "seed": 11,
                              "uncertainty": "standard errors (diagonal)",
                              "metrics": "cmax, auc_0_28 (closed forms at the delivered dose)",
                              "prediction_interval": 0.9}
    for m in ("cmax", "auc_0_28"):
        s = ref.summary(m)
        np.testing.assert_allclose(rows[f"{m}_median"], s["median"], rtol=1e-12)
        np.testing.assert_allclose(rows[f"{m}_lower"], s["lower"], rtol=1e-12)
        np.testing.assert_allclose(rows[f"{m}_upper"], s["upper"], rtol=1e-12)
        np.testing.assert_allclose(rows[f"{m}_p_exceed"], s["p_exceed"], rtol=1e-12)
        assert (rows[f"{m}_lower"] < rows[f"{m}_median"]).all()
        assert (rows[f"{m}_median"] < rows[f"{m}_upper"]).all()
    # Cmax increases with dose; P(Cmax > 40000) increases with dose
    assert np.all(np.diff(rows["cmax_median"]) > 0)
    assert np.all(np.diff(rows["cmax_p_exceed"]) >= 0) and rows["cmax_p_exceed"].iloc[-1] > 0
    p = rows["p_dlt"]
    tried = rows["n"] > 0
    assert p[tried].notna().all()
    assert ((p[tried] >= 0) & (p[tried] <= 1)).all()
    assert obj["p_dlt_estimate"]
    if design == "boin":
        # isotonic estimate written independently: scipy's PAVA with BOIN's weights
        n, y = np.array([4.0, 2, 3]), np.array([0.0, 1, 1])  # 1/2 > 1/3: pooled
        ph = (y + 0.05) / (n + 0.1)
        w = 1 / ((y + 0.05) * (n - y + 0.05) / ((n + 0.1) ** 2 * (n + 1.1)))
        iso = isotonic_regression(ph, weights=w).x
        np.testing.assert_allclose(p[:3], iso, rtol=1e-12)
        assert p[1] == pytest.approx(p[2]) and p[1] < ph[1]
        assert p.iloc[3] is None or np.isnan(p.iloc[3])
        assert "decision_table" in obj
    else:
        assert p.notna().all()
        assert np.all(np.diff(p) > 0)  # both models are increasing in dose
    if design == "exposure":
        d = ExposureDesign(4, exposure_quantiles(ref.values["cmax"]), 0.3, 3, 10)
        st = TrialState(4, STATE["dose_level"] - 1, STATE["dlt"],
                        delivered_level=np.array([0, 0, 0, 1, 1, 0, 2, 2, 2]))
        np.testing.assert_allclose(p, d.posterior_summary(st)["p_mean"], rtol=1e-10)
        assert obj["decision"]["action"] in ("escalate", "stay", "deescalate", "stop")


def test_escalate_3plus3_without_source_has_counts_only(tmp_path):
    state = tmp_path / "s.csv"
    STATE.assign(delivered_dose=np.nan).to_csv(state, index=False)
    out = tmp_path / "d.json"
    r = run("escalate", state, "--out", out, "--design", "3+3", "--n-doses", 4)
    assert r.returncode == 0, r.output
    obj = json.loads(out.read_text())
    assert [row["p_dlt"] for row in obj["per_dose"]] == [None] * 4
    assert "cmax_median" not in obj["per_dose"][0]


def test_ck_params_typical_values_closed_form(tmp_path, files):
    # typical values only: no IIV, no uncertainty -> every virtual participant has the
    # typical Cmax = cmax * (dose / 1e6) ** dose_exp (the documented dose power model)
    ck = tmp_path / "ck.csv"
    pd.DataFrame({"parameter": ["foldx", "tmax", "cmax", "alpha", "fb", "beta", "dose_exp"],
                  "value": [3900, 9.3, 24000, 0.16, 0.0079, 0.0032, 0.6]}).to_csv(ck,
                                                                                    index=False)
    out = tmp_path / "d.json"
    r = run("escalate", files[1], "--out", out, "--design", "boin", "--doses", DOSES_TXT,
            "--ck-params", ck, "--n-virtual", 50, "--cmax-limit", 30000)
    assert r.returncode == 0, r.output
    rows = pd.DataFrame(json.loads(out.read_text())["per_dose"])
    expect = 24000 * (np.array(DOSES) / 1e6) ** 0.6
    np.testing.assert_allclose(rows["cmax_median"], expect, rtol=1e-10)
    np.testing.assert_allclose(rows["cmax_lower"], expect, rtol=1e-10)
    np.testing.assert_allclose(rows["cmax_upper"], expect, rtol=1e-10)
    assert rows["cmax_p_exceed"].tolist() == [0.0, 0.0, 0.0, 1.0]  # 36377 > 30000 only


def test_oc_exposure_design_from_population(files, tmp_path):
    out = tmp_path / "oc.json"
    r = run("oc", "--design", "exposure", "--true-tox", "0.05,0.15,0.3,0.5", "--doses",
            DOSES_TXT, "--population", files[0], "--n-virtual", 400, "--n-sets", 20,
            "--n-trials", 8, "--seed", 11, "--n-cohorts", 4, "--out", out)
    assert r.returncode == 0, r.output
    obj = json.loads(out.read_text())
    ref = _reference_prediction(files[0])
    np.testing.assert_allclose(obj["dose_exposure_quantiles"],
                               exposure_quantiles(ref.values["cmax"]), rtol=1e-12)
    assert sum(obj["selection_pct"]) + obj["stop_pct"] == pytest.approx(100.0)


def test_bad_inputs_exit_1(files, tmp_path):
    pop, state = files
    out = tmp_path / "x.json"
    r = run("escalate", state, "--out", out, "--design", "boin", "--doses", DOSES_TXT,
            "--population", tmp_path / "nofit")
    assert r.returncode == 1 and "no such file" in r.output and "popfit" in r.output
    r = run("escalate", state, "--out", out, "--design", "exposure", "--n-doses", 4)
    assert r.returncode == 1 and "--population" in r.output
    r = run("escalate", state, "--out", out, "--design", "boin", "--n-doses", 5,
            "--doses", DOSES_TXT, "--population", pop)
    assert r.returncode == 1 and "--doses has 4 values but --n-doses is 5" in r.output
    r = run("oc", "--design", "exposure", "--true-tox", "0.1,0.2,0.3", "--doses", DOSES_TXT,
            "--population", pop, "--n-trials", 5, "--seed", 1, "--out", out)
    assert r.returncode == 1 and "--doses has 4 values but --true-tox has 3" in r.output
    r = run("oc", "--design", "exposure", "--true-tox", "0.1,0.2,0.3,0.4", "--n-trials", 5,
            "--seed", 1, "--out", out)
    assert r.returncode == 1 and "needs the dose -> exposure relation" in r.output
    r = run("escalate", state, "--out", out, "--doses", DOSES_TXT, "--population", pop,
            "--ck-params", pop / "population.csv")
    assert r.returncode == 1 and "not both" in r.output
    bad = tmp_path / "bad"
    bad.mkdir()
    POP[POP["parameter"] != "tmax"].assign(
        parameter=lambda d: d["parameter"].replace("dose_exp", "cmax_weight")).to_csv(
        bad / "population.csv", index=False)
    r = run("escalate", state, "--out", out, "--doses", DOSES_TXT, "--population", bad)
    assert r.returncode == 1
    assert "'tmax' is missing" in r.output and "cmax_weight" in r.output
    nodose = tmp_path / "nodose.csv"
    POP[POP["parameter"] != "dose_exp"].to_csv(nodose, index=False)
    r = run("escalate", state, "--out", out, "--doses", DOSES_TXT, "--ck-params", nodose)
    assert r.returncode == 1 and "no dose effect 'dose_exp'" in r.output
    assert not out.exists()


def test_end_to_end_popfit_then_escalate(tmp_path, files):
    # the real chain on the embedded synthetic trial: popfit (FOCE-I, ~6-10 s) -> escalate
    from pathlib import Path

    trial = Path(__file__).parents[2] / "data" / "synthetic" / "trial.csv"
    fit = tmp_path / "fit"
    r = run("popfit", trial, "--out", fit, "--no-figures")
    assert r.returncode == 0, r.output
    out = tmp_path / "d.json"
    r = run("escalate", files[1], "--out", out, "--design", "exposure", "--doses", DOSES_TXT,
            "--population", fit, "--n-virtual", 300, "--n-sets", 30, "--seed", 5,
            "--cmax-limit", 40000)
    assert r.returncode == 0, r.output
    obj = json.loads(out.read_text())
    src = read_population(fit)
    assert src.covariance is not None and "log_scale_car_flow" in src.design.theta_names
    est = pd.read_csv(fit / "population.csv").set_index("parameter")["estimate"]
    np.testing.assert_allclose(src.theta_t[src.design.theta_names.index("cmax")],
                               np.log(est["cmax"]), rtol=1e-12)
    ref = predict_exposure(draw_virtual(src, 10, n_sets=30, seed=5), DOSES,
                           limits={"cmax": 40000}, pd_model=None).summary("cmax")
    rows = pd.DataFrame(obj["per_dose"])
    np.testing.assert_allclose(rows["cmax_median"], ref["median"], rtol=1e-12)
    np.testing.assert_allclose(rows["cmax_p_exceed"], ref["p_exceed"], rtol=1e-12)
    assert rows["p_dlt"].between(0, 1).all()


def test_exposure_column_of_the_state(files, tmp_path):
    # observed exposures (e.g. Cmax) in the state CSV drive the exposure design's posterior;
    # a missing value falls back to the dose's typical exposure
    pop, _ = files
    obs = [5e3, 8e3, 1.1e4, 2e4, 3.5e4, np.nan, 6e4, 2.5e4, 1.5e4]
    state = tmp_path / "s.csv"
    STATE.assign(exposure=obs).to_csv(state, index=False)
    out = tmp_path / "d.json"
    r = run("escalate", state, "--out", out, "--design", "exposure", "--doses", DOSES_TXT,
            "--population", pop, "--n-virtual", 400, "--n-sets", 20, "--seed", 11)
    assert r.returncode == 0, r.output
    p = [row["p_dlt"] for row in json.loads(out.read_text())["per_dose"]]
    ref = _reference_prediction(pop)
    d = ExposureDesign(4, exposure_quantiles(ref.values["cmax"]), 0.3, 3, 10)
    lvl = np.array([0, 0, 0, 1, 1, 0, 2, 2, 2])
    st = TrialState(4, STATE["dose_level"] - 1, STATE["dlt"], delivered_level=lvl,
                    exposure=np.array(obs))
    np.testing.assert_allclose(p, d.posterior_summary(st)["p_mean"], rtol=1e-10)
    st0 = TrialState(4, STATE["dose_level"] - 1, STATE["dlt"], delivered_level=lvl)
    assert not np.allclose(p, d.posterior_summary(st0)["p_mean"], rtol=1e-3)
