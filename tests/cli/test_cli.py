"""The command line: exit codes 0/1/2, outputs written, messages naming the problem."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "carkinetics", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_simulate_trial_then_validate(tmp_path):
    out = tmp_path / "trial.csv"
    r = run("simulate-trial", "--seed", 11, "--out", out)
    assert r.returncode == 0, r.stderr
    truth = json.loads((tmp_path / "trial_truth.json").read_text())
    assert truth["seed"] == 11
    data = pd.read_csv(out)
    assert data["id"].nunique() == len(truth["participants"]) == 18
    r = run("validate", out)
    assert r.returncode == 0, r.stderr
    assert f"{len(data)} rows" in r.stdout and "18 participants" in r.stdout


def test_validate_bad_file_exits_1_listing_every_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({
        "id": ["A", "A", "A"], "time": [1.0, np.nan, 3.0], "dv": [10.0, 5.0, -2.0],
        "endpoint": ["car_qpcr", "car_qpcr", "car_qpcr"], "dose": [1e6, 1e6, 1e6],
    }).to_csv(bad, index=False)
    r = run("validate", bad)
    assert r.returncode == 1
    assert "bad.csv" in r.stderr
    assert "time" in r.stderr and "row 2" in r.stderr  # the NaN time
    assert "row 3" in r.stderr and "dv" in r.stderr  # the negative concentration


def test_usage_errors_exit_2(tmp_path):
    assert run("simulate-trial").returncode == 2  # missing --out
    assert run("no-such-command").returncode == 2
    assert run("simulate-trial", "--out", tmp_path / "x.txt").returncode == 2


def test_missing_file_exits_1(tmp_path):
    r = run("validate", tmp_path / "absent.csv")
    assert r.returncode == 1 and "absent.csv" in r.stderr


def test_demo_writes_figure_and_table(demo_run):
    r, demo = demo_run
    assert r.returncode == 0, r.stderr
    for png in ("ck_by_dose.png", "exposure_by_dose.png", "fits/fits.png",
                "endpoints/responder_rates.png", "population/vpc.png"):
        assert (demo / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    nca = pd.read_csv(demo / "nca.csv")
    assert {"id", "CMAX", "TMAX", "AUCLST", "LAMZ", "LAMZHL", "AUCIFO"} <= set(nca.columns)
    fits = json.loads((demo / "fits" / "summary.json").read_text())
    assert fits["counts"]["fitted"] + fits["counts"]["failed"] == 18
    assert (demo / "endpoints" / "ae_summary.csv").exists()
    # the dose-level summary equals a direct computation from the per-participant table
    summary = pd.read_csv(demo / "nca_by_dose.csv")
    q = nca[nca["endpoint"] == "car_qpcr"]
    data = pd.read_csv(demo / "trial.csv")
    dose = data.groupby("id")["dose"].first()
    rows = summary[(summary["endpoint"] == "car_qpcr") & (summary["parameter"] == "CMAX")]
    assert len(rows) == 4
    for _, row in rows.iterrows():
        ids = dose.index[dose == row["dose"]]
        cmax = q.set_index("id").loc[ids, "CMAX"]
        assert row["geomean"] == pytest.approx(np.exp(np.log(cmax).mean()))
        assert row["n"] == len(ids)
        # NCA Cmax is the highest quantified post-infusion qPCR value
        obs = data[(data["endpoint"] == "car_qpcr") & (data["cens"] == 0) & (data["time"] >= 0)]
        assert cmax.to_numpy() == pytest.approx(obs.groupby("id")["dv"].max()[ids].to_numpy())


def test_demo_adds_pd_fits_escalation_and_report(demo_run):
    from scipy import stats

    r, demo = demo_run
    assert r.returncode == 0, r.stderr
    report = demo / "report.html"
    assert f"the report is {report.resolve()}" in r.stdout
    assert report.read_text().startswith("<!DOCTYPE html>")
    # sequential B-cell fits of every participant
    pdsum = json.loads((demo / "pd" / "pd_summary.json").read_text())
    assert pdsum["n_fitted"] + pdsum["n_failed"] == 18 and pdsum["mode"] == "sequential"
    par = pd.read_csv(demo / "pd" / "pd_parameters.csv")
    assert par["id"].nunique() == pdsum["n_fitted"] >= 15
    # the escalation state is the DLT table; the decision follows the BOIN boundaries
    # (Liu & Yuan 2015: lambda_e, lambda_d from phi1 = 0.6 phi, phi2 = 1.4 phi)
    state = pd.read_csv(demo / "escalation_state.csv")
    dlt = pd.read_csv(demo / "endpoints" / "dlt.csv")
    dlt = dlt[dlt["status"] != "not_evaluable"]
    assert len(state) == len(dlt) and state["dlt"].sum() == dlt["dlt"].sum()
    esc = json.loads((demo / "escalation.json").read_text())
    phi = esc["target"]
    p1, p2 = 0.6 * phi, 1.4 * phi
    lam_e = np.log((1 - p1) / (1 - phi)) / np.log(phi * (1 - p1) / (p1 * (1 - phi)))
    lam_d = np.log((1 - phi) / (1 - p2)) / np.log(p2 * (1 - phi) / (phi * (1 - p2)))
    for row in esc["decision_table"]:
        n = row["n"]
        assert row["escalate_if_le"] == np.floor(n * lam_e + 1e-12)
        assert row["deescalate_if_ge"] == np.ceil(n * lam_d - 1e-12)
        y = np.arange(n + 1)
        elim = y[stats.beta.sf(phi, 1 + y, 1 + n - y) > 0.95]
        assert row["eliminate_if_ge"] == elim.min()
    cur = esc["decision"]["current_dose_level"]
    n, y = esc["n_per_dose"][cur - 1], esc["dlt_per_dose"][cur - 1]
    assert n == (state["dose_level"] == cur).sum()
    if y / n <= lam_e:  # escalate, or stay at the highest dose
        want = min(cur + 1, esc["n_doses"])
    elif y / n >= lam_d:
        want = max(cur - 1, 1)
    else:
        want = cur
    if not esc["decision"]["numbers"]["eliminated_levels"]:
        assert esc["decision"]["next_dose_level"] == want
    # predicted exposure per dose rises with dose (dose_exp > 0 in the FOCE-I fit)
    med = [d["cmax_median"] for d in esc["per_dose"]]
    assert np.all(np.diff(med) > 0)
    timings = json.loads((demo / "demo_timings.json").read_text())["seconds"]
    assert {"PD fits (B cells)", "escalation", "report"} <= set(timings)
