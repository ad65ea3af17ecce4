"""CLI verbs boundaries, oc, escalate: outputs and exit codes."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from carkinetics.cli import app

DATA = Path(__file__).parents[1] / "data"


class _Result:
    def __init__(self, r):
        self.returncode = r.exit_code
        self.stderr = r.output  # the runner merges stdout and stderr


def run(*args):
    """Run the CLI in-process (typer's runner: same app, same exit codes, no interpreter
    start-up per call)."""
    return _Result(CliRunner().invoke(app, [str(a) for a in args]))


def test_boundaries_csv(tmp_path):
    out = tmp_path / "b.csv"
    r = run("boundaries", "--design", "boin", "--target", 0.3, "--max-n", 30, "--out", out)
    assert r.returncode == 0, r.stderr
    got = pd.read_csv(out)
    assert got.columns.tolist() == ["n", "escalate_if_le", "deescalate_if_ge",
                                    "eliminate_if_ge"]
    assert got["n"].tolist() == list(range(1, 31))
    ref = pd.read_csv(DATA / "boin_boundaries_target030.csv")
    sub = got[got["n"] % 3 == 0].reset_index(drop=True).astype(int)
    pd.testing.assert_frame_equal(sub, ref)
    assert got.loc[got["n"] < 3, "eliminate_if_ge"].isna().all()  # empty where none qualifies


def test_oc_json_and_exact(tmp_path):
    out = tmp_path / "oc.json"
    r = run("oc", "--design", "boin", "--true-tox", "0.1,0.25,0.4,0.55", "--n-cohorts", 5,
            "--n-trials", 4000, "--seed", 3, "--out", out)
    assert r.returncode == 0, r.stderr
    sim = json.loads(out.read_text())
    for key in ("selection_pct", "stop_pct", "mean_patients", "mean_dlts",
                "overdose_risk_pct", "early_stop_pct", "mean_duration_cohorts",
                "stop_reasons_pct"):
        assert key in sim
    assert len(sim["selection_pct"]) == 4 and len(sim["mean_dlts"]) == 4
    assert sum(sim["selection_pct"]) + sim["stop_pct"] == pytest.approx(100)
    r = run("oc", "--design", "boin", "--true-tox", "0.1,0.25,0.4,0.55", "--n-cohorts", 5,
            "--exact", "--out", out)
    assert r.returncode == 0, r.stderr
    ex = json.loads(out.read_text())
    assert ex["exact"] is True
    se = np.sqrt(np.array(ex["selection_pct"]) * (100 - np.array(ex["selection_pct"])) / 4000)
    assert np.all(np.abs(np.array(sim["selection_pct"]) - ex["selection_pct"]) < 4 * se + 1e-9)
    r = run("oc", "--design", "3+3", "--true-tox", "0.1,0.25,0.45", "--out", out)
    assert r.returncode == 0 and json.loads(out.read_text())["convention"] == "expanded"


def test_escalate_decision(tmp_path):
    st = tmp_path / "state.csv"
    pd.DataFrame({"id": range(1, 7), "dose_level": [1, 1, 1, 2, 2, 2],
                  "delivered_dose": [1, 1, 1, 2, 2, 2], "dlt": [0, 0, 0, 1, 1, 0],
                  "in_window": 0}).to_csv(st, index=False)
    out = tmp_path / "d.json"
    r = run("escalate", st, "--design", "boin", "--target", 0.3, "--n-doses", 4, "--out", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["decision"]["action"] == "deescalate" and d["decision"]["next_dose_level"] == 1
    assert d["decision"]["numbers"]["deescalate_if_ge"] == 2
    assert d["decision_table"][0] == {"n": 3, "escalate_if_le": 0, "deescalate_if_ge": 2,
                                      "eliminate_if_ge": 3}
    # delivered dose in cells/kg below the assigned level counts at the lower level
    pd.DataFrame({"id": range(1, 7), "dose_level": [1, 1, 1, 2, 2, 2],
                  "delivered_dose": [5e5, 5e5, 5e5, 1e6, 1e6, 6e5], "dlt": [0, 0, 0, 1, 1, 0],
                  "in_window": 0}).to_csv(st, index=False)
    r = run("escalate", st, "--doses", "5e5,1e6,2e6,3e6", "--out", out)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["n_per_dose"] == [4, 2, 0, 0] and d["participants_below_assigned_dose"] == 1


@pytest.mark.parametrize("args,code,msg", [
    (["boundaries", "--target", 1.2, "--out", "x.csv"], 1, "target"),
    (["oc", "--design", "boin", "--true-tox", "0.1,1.3", "--n-trials", 5, "--seed", 1,
      "--out", "x.json"], 1, "outside [0, 1]"),
    (["oc", "--design", "boin", "--true-tox", "0.1,0.3", "--out", "x.json"], 2, "--n-trials"),
    (["oc", "--design", "bion", "--true-tox", "0.1", "--out", "x.json"], 2, "boin"),
])
def test_exit_codes(tmp_path, args, code, msg):
    r = run(*[tmp_path / a if str(a).startswith("x.") else a for a in args])
    assert r.returncode == code
    assert msg in r.stderr


def test_escalate_bad_state_exit_1(tmp_path):
    st = tmp_path / "state.csv"
    pd.DataFrame({"id": [1, 2], "dose_level": [1, 7], "delivered_dose": [1, 7],
                  "dlt": [1, 0], "in_window": [1, 0]}).to_csv(st, index=False)
    r = run("escalate", st, "--n-doses", 4, "--out", tmp_path / "d.json")
    assert r.returncode == 1
    assert "dose level 7 is not in the design" in r.stderr
    assert "inside the DLT window" in r.stderr
    assert not (tmp_path / "d.json").exists()


def test_oc_tite_boin_and_backfill(tmp_path):
    """The CLI runs TITE-BOIN (staggered accrual) and BOIN with backfill; backfill of size
    0 gives BOIN's OC exactly, and TITE-BOIN with near-zero accrual gives BOIN's selection."""
    tox = "0.05,0.15,0.30,0.50"
    common = ("--true-tox", tox, "--n-cohorts", 6, "--n-trials", 300, "--seed", 11)
    res = {}
    for name, extra in (("boin", ()), ("bf0", ("--backfill-size", 0)),
                        ("bf3", ("--backfill-size", 3)),
                        ("tite_slow", ("--accrual-rate", 1e-7)),
                        ("tite_fast", ("--accrual-rate", 0.2))):
        design = {"boin": "boin", "bf0": "boin-backfill", "bf3": "boin-backfill"}.get(
            name, "tite-boin")
        out = tmp_path / f"{name}.json"
        r = run("oc", "--design", design, *common, *extra, "--out", out)
        assert r.returncode == 0, r.stderr
        res[name] = json.loads(out.read_text())
        assert sum(res[name]["selection_pct"]) + res[name]["stop_pct"] == pytest.approx(100)
    assert res["bf0"]["selection_pct"] == res["boin"]["selection_pct"]
    assert res["bf0"]["mean_patients"] == res["boin"]["mean_patients"]
    assert sum(res["bf3"]["mean_patients"][:2]) > sum(res["boin"]["mean_patients"][:2]) + 2
    assert res["tite_slow"]["selection_pct"] == pytest.approx(res["boin"]["selection_pct"])
    assert res["tite_fast"]["accrual_rate"] == 0.2
    r = run("oc", "--design", "tite-boin", *common, "--out", tmp_path / "x.json")
    assert r.returncode == 1 and "accrual-rate" in r.stderr
    state = tmp_path / "state.csv"
    pd.DataFrame({"id": [1, 2, 3], "dose_level": [1, 1, 1], "delivered_dose": [np.nan] * 3,
                  "dlt": [0, 0, 0], "in_window": [0, 0, 0]}).to_csv(state, index=False)
    r = run("escalate", state, "--design", "tite-boin", "--n-doses", 4, "--out",
            tmp_path / "d.json")
    assert r.returncode == 1 and "follow-up" in r.stderr
