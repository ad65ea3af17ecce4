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


def test_demo_writes_figure_and_table(tmp_path):
    r = run("demo", "--out", tmp_path / "demo")
    assert r.returncode == 0, r.stderr
    demo = tmp_path / "demo"
    for png in ("ck_by_dose.png", "exposure_by_dose.png", "fits/fits.png",
                "endpoints/responder_rates.png"):
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
