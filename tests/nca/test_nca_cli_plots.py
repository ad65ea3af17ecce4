"""The `carkinetics nca` command (subprocess) and the exposure-by-dose figure."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from carkinetics.data import read_data
from carkinetics.nca import nca

ROOT = Path(__file__).parents[2]
TRIAL = ROOT / "data" / "synthetic" / "trial.csv"


def run(*args):
    return subprocess.run([sys.executable, "-m", "carkinetics", "nca", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_cli_writes_parameters_and_summary(tmp_path):
    out, summary, long = tmp_path / "nca.csv", tmp_path / "by_dose.csv", tmp_path / "long.csv"
    r = run(TRIAL, "--out", out, "--summary", summary, "--long", long)
    assert r.returncode == 0, r.stderr
    w = pd.read_csv(out)
    data = pd.read_csv(TRIAL)
    data = data[data["endpoint"].isin(["car_qpcr", "car_flow"])]  # the trial also has PD rows
    assert len(w) == data.groupby(["id", "endpoint"]).ngroups == 36
    assert {"id", "endpoint", "CMAX", "TMAX", "AUCLST", "LAMZ", "LAMZHL", "AUCIFO",
            "AUCINT_0_28", "FOLDX", "TDOUB"} <= set(w.columns)
    ref = nca(read_data(TRIAL), endpoint=["car_flow", "car_qpcr"]).to_wide()
    pd.testing.assert_series_equal(w["AUCLST"], ref["AUCLST"], rtol=1e-12)
    s = pd.read_csv(summary)
    assert sorted(s["dose_level"].unique()) == [1, 2, 3, 4]
    assert {"n", "geomean", "geocv_pct", "median", "min", "max", "dn_geomean"} <= set(s.columns)
    assert set(pd.read_csv(long)["PPTESTCD"]) >= {"CMAX", "AUCINT", "R2ADJ"}
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_cli_bad_input_exits_1(tmp_path):
    bad = tmp_path / "bad.csv"
    d = pd.read_csv(TRIAL)
    d.loc[3, "time"] = d.loc[2, "time"]  # a duplicate time
    d.to_csv(bad, index=False)
    r = run(bad, "--out", tmp_path / "o.csv")
    assert r.returncode == 1 and "bad.csv" in r.stderr and "duplicate" in r.stderr
    assert not (tmp_path / "o.csv").exists()


def test_cli_options_in_process(tmp_path):
    from typer.testing import CliRunner

    from carkinetics.cli import app

    def invoke(*args):
        return CliRunner().invoke(app, ["nca", *map(str, args)])

    out = tmp_path / "o.csv"
    r = invoke(TRIAL, "--out", out, "--auc-method", "linear", "--endpoint", "car_flow")
    assert r.exit_code == 0, r.output
    w = pd.read_csv(out)
    assert set(w["endpoint"]) == {"car_flow"} and len(w) == 18
    ref = nca(read_data(TRIAL), endpoint="car_flow", auc_method="linear").to_wide()
    pd.testing.assert_series_equal(w["AUCLST"], ref["AUCLST"], rtol=1e-12)
    r = invoke(TRIAL, "--out", out, "--endpoint", "car_qcpr")
    assert r.exit_code == 1 and "Did you mean 'car_qpcr'" in r.output
    assert invoke(tmp_path / "absent.csv", "--out", out).exit_code == 1
    assert invoke(TRIAL, "--out", tmp_path / "o.txt").exit_code == 2
    assert invoke(TRIAL, "--out", out, "--summary", tmp_path / "s.json").exit_code == 2
    assert invoke(TRIAL, "--out", out, "--auc-method", "log").exit_code == 2
    assert invoke(TRIAL, "--out", out, "--dosing", "oral").exit_code == 2
    assert invoke(TRIAL).exit_code == 2  # --out missing


def test_exposure_by_dose_figure(tmp_path):
    from carkinetics._atomic import save_figure
    from carkinetics.plots import plot_nca_by_dose

    r = nca(read_data(TRIAL), endpoint=["car_flow", "car_qpcr"])  # not the PD rows
    fig = plot_nca_by_dose(r)
    axes = fig.get_axes()
    assert len(axes) == 4
    ax = axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[:2] == ["participant", "geometric mean"] and labels[2].startswith("power")
    assert "copies/ug*day" in axes[3].get_ylabel()
    path = save_figure(fig, tmp_path / "exposure.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="AUCX"):
        plot_nca_by_dose(r, parameters=["AUCX"])
