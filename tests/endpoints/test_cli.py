"""``carkinetics endpoints`` through a subprocess: exit codes, files written, numbers."""

import subprocess
import sys

import pandas as pd
import pytest

from carkinetics.simulate import simulate_trial
from carkinetics.simulate.safety import (
    simulate_adverse_events,
    simulate_crs_observations,
    simulate_icans_observations,
)
from carkinetics.simulate.scores import simulate_clinical_scores


def run(*args):
    return subprocess.run([sys.executable, "-m", "carkinetics", *map(str, args)],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("endpoints")
    trial = simulate_trial(seed=3)
    data = pd.concat([trial.data, simulate_clinical_scores(trial, 3)], ignore_index=True)
    data.to_csv(d / "data.csv", index=False)
    ae = simulate_adverse_events(trial, 3)
    ae.to_csv(d / "ae.csv", index=False)
    simulate_crs_observations(ae).to_csv(d / "crs.csv", index=False)
    simulate_icans_observations(ae).to_csv(d / "icans.csv", index=False)
    return d


def test_endpoints_writes_tables_and_figure(files, tmp_path):
    out = tmp_path / "out"
    r = run("endpoints", files / "data.csv", "--out", out, "--ae", files / "ae.csv",
            "--crs", files / "crs.csv", "--icans", files / "icans.csv")
    assert r.returncode == 0, r.stderr
    for name in ("ae_summary", "ae_by_term", "ae_max_grade", "crs_icans_summary", "dlt",
                 "daily_summary", "change_from_baseline", "responder_rates", "serology_summary"):
        assert (out / f"{name}.csv").exists(), name
    assert (out / "responder_rates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # numbers equal a direct computation from the files written
    ae = pd.read_csv(files / "ae.csv")
    s = pd.read_csv(out / "ae_summary.csv")
    row = s[(s["category"] == "all") & (s["dose_level"] == "All") & (s["measure"] == "any")]
    assert row["n"].item() == ae["id"].nunique() and row["N"].item() == 18
    assert row["events"].item() == len(ae)
    crs = s[(s["category"] == "crs") & (s["dose_level"] == "All")
            & (s["measure"] == "grade>=3")]
    assert crs["n"].item() == ae[(ae["category"] == "crs") & (ae["grade"] >= 3)]["id"].nunique()
    dlt = pd.read_csv(out / "dlt.csv")
    assert len(dlt) == 18 and set(dlt["status"]) <= {"dlt", "no_dlt", "pending",
                                                     "not_evaluable"}
    early = ae[(ae["category"].isin(["crs", "icans"])) & (ae["grade"] >= 3)
               & (ae["onset_day"] <= 28)]
    assert set(dlt[dlt["dlt"]]["id"]) == set(early["id"])
    rates = pd.read_csv(out / "responder_rates.csv")
    assert {"acr20", "sledai_drop4"} <= set(rates["measure"])


def test_without_ae_file_no_safety_tables(files, tmp_path):
    # the same code path as the command without --ae, in-process to keep the suite quick
    from carkinetics.data import read_data
    from carkinetics.endpoints import endpoint_tables, write_endpoint_tables

    tables = endpoint_tables(read_data(files / "data.csv"))
    assert "ae_summary" not in tables and "dlt" not in tables
    paths = write_endpoint_tables(tables, tmp_path / "o", figure=False)
    assert {p.name for p in paths.values()} == {f"{n}.csv" for n in tables}


def test_bad_ae_file_exits_1_naming_row_and_column(files, tmp_path):
    ae = pd.read_csv(files / "ae.csv")
    ae.loc[1, "grade"] = 7
    ae.loc[2, "category"] = "infektion"
    ae.to_csv(tmp_path / "bad_ae.csv", index=False)
    r = run("endpoints", files / "data.csv", "--out", tmp_path / "o", "--ae",
            tmp_path / "bad_ae.csv")
    assert r.returncode == 1
    assert "bad_ae.csv" in r.stderr and "row 2, column 'grade': 7" in r.stderr
    assert "row 3, column 'category'" in r.stderr and "'infection'" in r.stderr


def test_missing_file_exits_1(tmp_path):
    r = run("endpoints", tmp_path / "absent.csv", "--out", tmp_path / "o")
    assert r.returncode == 1 and "absent.csv" in r.stderr
