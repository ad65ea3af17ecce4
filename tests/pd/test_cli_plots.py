"""`carkinetics pd`, the demo step and the PD figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from carkinetics.cli import app

ROOT = Path(__file__).resolve().parents[2]
TRIAL = ROOT / "data" / "synthetic" / "trial.csv"
TRUTH = ROOT / "data" / "synthetic" / "trial_truth.json"


def test_cli_pd_sequential_from_ck_parameters(tmp_path):
    data = pd.read_csv(TRIAL)
    ids = ["P01"]
    truth = json.loads(TRUTH.read_text())
    long = pd.DataFrame([{"id": p["id"], "parameter": k, "estimate": v}
                         for p in truth["participants"] if p["id"] in ids
                         for k, v in p["params_at_dose"].items()])
    ck = tmp_path / "parameters.csv"
    long.to_csv(ck, index=False)
    sub = tmp_path / "trial.csv"
    data[data["id"].isin(ids + ["P03"])].to_csv(sub, index=False)  # P03: no CK parameters
    out = tmp_path / "pd"
    r = CliRunner().invoke(app, ["pd", str(sub), "--model", "bcell", "--ck-params", str(ck),
                                 "--out", str(out), "--no-progress", "--n-starts", "1",
                                 "--estimate", "b0", "--estimate", "kb", "--estimate", "ec50"])
    assert r.exit_code == 0, r.output
    p = pd.read_csv(out / "pd_parameters.csv")
    assert set(p["id"]) == set(ids) and (p["mode"] == "sequential").all()
    assert {"b0", "kb", "kmax", "ec50", "sigma_cd19_b"} <= set(p["parameter"])
    fixed = p.set_index("parameter")["fixed"]
    assert not fixed["b0"] and not fixed["ec50"] and fixed["kmax"] and fixed["hill"]
    # B-cell baselines estimated near the participants' truth
    tp = {q["id"]: q["params"] for q in truth["pd"]["participants"]}
    for pid in ids:
        est = p[(p["id"] == pid) & (p["parameter"] == "b0")]["estimate"].iloc[0]
        assert abs(est / tp[pid]["b0"] - 1) < 0.35
    assert list(pd.read_csv(out / "pd_failed.csv")["id"]) == ["P03"]
    assert json.loads((out / "pd_summary.json").read_text())["n_fitted"] == 1


def test_cli_pd_usage_errors(tmp_path):
    r = CliRunner().invoke(app, ["pd", str(TRIAL), "--model", "bcel", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean 'bcell'" in r.output
    r = CliRunner().invoke(app, ["pd", str(tmp_path / "none.csv"), "--out", str(tmp_path)])
    assert r.exit_code == 1
    r = CliRunner().invoke(app, ["pd", str(TRIAL), "--out", str(tmp_path), "--estimate", "kmx"])
    assert r.exit_code == 1 and "Did you mean 'kmax'" in r.output


def test_demo_step_writes_page_and_exposure_response(tmp_path):
    from matplotlib.image import imread

    from carkinetics.pd import demo_step

    w = demo_step(pd.read_csv(TRIAL), tmp_path)
    img = imread(w["ck_pd_by_dose"])
    assert img.shape[0] > 500 and img.shape[1] > 500
    er = pd.read_csv(w["exposure_response"])
    assert {"igg_pct_change_month3", "bcell_reconstitution"} <= set(er["analysis"])
    assert any(k.startswith("er_") for k in w)


def test_ck_pd_figure_rows():
    from carkinetics.plots.pd import plot_ck_pd_by_dose

    fig = plot_ck_pd_by_dose(pd.read_csv(TRIAL))
    axes = fig.get_axes()
    assert len(axes) == 4 * 4
    assert [a.get_ylabel().split(" ")[0] for a in axes[::4]] == [
        "car_qpcr", "cd19_b", "igg", "anti_dsdna"]
