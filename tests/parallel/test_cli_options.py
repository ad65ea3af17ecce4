"""--scheduler and --resume on the batch verbs (in-process CLI runner)."""

import json

from typer.testing import CliRunner

from carkinetics.cli import app
from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.oc import simulate_oc

TOX = "0.05,0.1,0.25,0.4"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_oc_resume_reuses_the_stored_chunks_and_gives_the_same_json(tmp_path):
    args = ("oc", "--design", "boin", "--true-tox", TOX, "--n-trials", 6000, "--seed", 5,
            "--n-cohorts", 8)
    r = run(*args, "--out", tmp_path / "a.json")
    assert r.exit_code == 0, r.output
    # an interrupted run of the same job: 2 of its 3 chunks of 2000 trials stored
    store = tmp_path / ".b.json.units"
    design = BOIN(4, 0.3, cohort_size=3, n_cohorts=8, n_earlystop=100)
    simulate_oc(design, [0.05, 0.1, 0.25, 0.4], n_trials=6000, seed=5, store=store)
    chunks = sorted(store.glob("chunk-*.bin"))
    assert len(chunks) == 3
    chunks[1].unlink()
    r = run(*args, "--out", tmp_path / "b.json", "--resume", "--scheduler", "in-process")
    assert r.exit_code == 0, r.output
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a == b
    assert not store.exists()  # the store is removed once the output is written


def test_a_store_of_other_settings_is_refused_with_exit_1(tmp_path):
    store = tmp_path / ".c.json.units"
    design = BOIN(4, 0.3, cohort_size=3, n_cohorts=8, n_earlystop=100)
    simulate_oc(design, [0.05, 0.1, 0.25, 0.4], n_trials=4000, seed=5, store=store)
    r = run("oc", "--design", "boin", "--true-tox", TOX, "--n-trials", 4000, "--seed", 6,
            "--n-cohorts", 8, "--out", tmp_path / "c.json", "--resume")
    assert r.exit_code == 1
    assert "computed from other units" in r.output


def test_bad_scheduler_is_a_usage_error(tmp_path):
    r = run("oc", "--design", "boin", "--true-tox", TOX, "--n-trials", 10, "--seed", 1,
            "--out", tmp_path / "x.json", "--scheduler", "proceses")
    assert r.exit_code == 2 and "Did you mean 'processes'" in r.output
    data = tmp_path / "d.csv"
    data.write_text("id,time,dv\n1,1,10\n")
    r = run("fit", data, "--out", tmp_path / "f", "--scheduler", "dask")
    assert r.exit_code == 2 and "--scheduler" in r.output
