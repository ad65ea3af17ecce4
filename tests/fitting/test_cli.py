"""`carkinetics fit` on the embedded synthetic trial: four outputs, exit codes 1 and 2."""

import json
import subprocess
import sys

import pandas as pd

from carkinetics.fitting import PARAMETER_COLUMNS

from .conftest import TRIAL


def run(*args):
    return subprocess.run([sys.executable, "-m", "carkinetics", "fit", *map(str, args)],
                          capture_output=True, text=True, timeout=600)


def test_fit_writes_all_four_outputs(tmp_path):
    out = tmp_path / "fit"
    r = run(TRIAL, "--model", "piecewise", "--blq", "m3", "--endpoint", "car_qpcr",
            "--workers", 1, "--n-starts", 4, "--no-progress", "--out", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "fits.png", "parameters.csv", "predictions.csv", "summary.json"]
    par = pd.read_csv(out / "parameters.csv")
    assert list(par.columns) == list(PARAMETER_COLUMNS)
    assert par["id"].nunique() == 18 and len(par) == 18 * 7
    pred = pd.read_csv(out / "predictions.csv")
    assert {"id", "time", "dv", "cens", "ipred", "iwres"} <= set(pred.columns)
    assert (pred["time"] >= 0).all() and (pred["cens"] == 1).any()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "piecewise" and summary["method"] == "m3"
    assert summary["counts"]["fitted"] == 18 and summary["counts"]["failed"] == 0
    assert {"fit_total_s", "per_fit_ms", "total_s"} <= set(summary["timings"])
    assert (out / "fits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary files


def test_fit_exit_codes(tmp_path):
    """In process (typer's runner) to keep the suite fast; the verb is the same."""
    from typer.testing import CliRunner

    from carkinetics.cli import app

    def call(*args):
        return CliRunner().invoke(app, ["fit", *map(str, args)])

    bad = tmp_path / "bad.csv"
    pd.DataFrame({"id": ["A"], "time": [1.0]}).to_csv(bad, index=False)
    r = call(bad, "--out", tmp_path / "o")
    assert r.exit_code == 1 and "bad.csv" in r.output and "dv" in r.output
    r = call(tmp_path / "missing.csv", "--out", tmp_path / "o")
    assert r.exit_code == 1 and "no such file" in r.output
    r = call(TRIAL, "--blq", "m9", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--blq" in r.output
    r = call(TRIAL, "--model", "piecewize", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "Did you mean 'piecewise'" in r.output
    r = call(TRIAL, "--endpoint", "cd19_b", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--endpoint" in r.output
    r = call(TRIAL)
    assert r.exit_code == 2  # --out is required
    assert not (tmp_path / "o").exists()
