"""PD rows of the virtual trial: agree with the models and the truth, stream-independent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carkinetics.data import validate
from carkinetics.pd import bcell_events
from carkinetics.simulate import simulate_clinical_scores, simulate_trial
from carkinetics.simulate.pd import PD_ENDPOINTS, trial_pd_system

REPO = Path(__file__).resolve().parents[2]
CK = ["car_qpcr", "car_flow"]


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(11)


def test_ck_rows_do_not_depend_on_pd(trial):
    bare = simulate_trial(11, include_pd=False)
    ck = trial.data[trial.data["endpoint"].isin(CK)].reset_index(drop=True)
    pd.testing.assert_frame_equal(ck, bare.data.reset_index(drop=True), check_dtype=False)
    assert "pd" in trial.truth and "pd" not in bare.truth


def test_pd_rows_valid_and_censoring_in_data(trial):
    d = trial.data
    validate(d, source="trial with PD")
    pdr = d[~d["endpoint"].isin(CK)]
    assert set(pdr["endpoint"]) <= set(PD_ENDPOINTS)
    assert {"cd19_b", "igg", "iga", "igm", "c3", "c4"} <= set(pdr["endpoint"])
    blq = pdr[pdr["cens"] == 1]
    assert (blq["dv"] == blq["lloq"]).all()
    # B-cell aplasia: most Day 14-28 samples below the LLOQ, baseline never
    b = pdr[pdr["endpoint"] == "cd19_b"]
    assert (b.loc[b["time"] < 0, "cens"] == 0).all()
    assert (b.loc[b["time"].between(14, 28), "cens"] == 1).mean() > 0.6
    # SLE participants carry anti-dsDNA, RA participants no anti-dsDNA rows
    sle = set(d.loc[d["disease"] == "SLE", "id"])
    assert sle and set(pdr.loc[pdr["endpoint"] == "anti_dsdna", "id"]) == sle


def test_pd_rows_scatter_around_the_model(trial):
    """Quantified rows minus the model at the true parameters: the stated residual SD."""
    system = trial_pd_system()
    people = trial.truth["participants"]
    pdt = {p["id"]: p for p in trial.truth["pd"]["participants"]}
    params = {n: np.array([p["params_at_dose"].get(n, pdt[p["id"]]["params"].get(n, np.nan))
                           for p in people]) for n in system.param_names}
    sim = system.simulate(params, 800.0, record_every=0.25)
    ids = [p["id"] for p in people]
    sig = trial.truth["pd"]["population"]["sigma"]
    d = trial.data
    for ep in ("cd19_b", "igg", "c3"):
        res = []
        for pid, g in d[(d["endpoint"] == ep) & (d["cens"] == 0)].groupby("id"):
            i = ids.index(pid)
            t = g["time"].to_numpy(float)
            pred = sim.at(ep, t)[i]
            keep = np.isin(np.clip(t, 0, None), sim.times)
            res.append(np.log(g["dv"].to_numpy()[keep]) - np.log(pred[keep]))
        r = np.concatenate(res)
        assert abs(r.mean()) < 4 * sig[ep] / np.sqrt(r.size) + 0.03, ep
        assert 0.75 * sig[ep] < r.std(ddof=1) < 1.3 * sig[ep], ep
    ev = bcell_events(sim)
    for i, pid in enumerate(ids):
        assert pdt[pid]["events"]["time_to_aplasia"] == pytest.approx(
            ev["time_to_aplasia"][i], rel=0.02)


def test_scores_read_the_mechanistic_serology(trial):
    s = simulate_clinical_scores(trial, 11)
    assert not set(s["endpoint"]) & {"igg", "c3", "c4", "anti_dsdna"}
    assert {"sledai2k", "ana"} <= set(s["endpoint"])
    # without PD rows the scores simulate their own labs, and every other score is unchanged
    bare = simulate_clinical_scores(simulate_trial(11, include_pd=False), 11)
    assert {"igg", "c3"} <= set(bare["endpoint"])
    for ep in ("sjc28", "haq_di", "ana"):
        a = s[s["endpoint"] == ep].reset_index(drop=True)
        b = bare[bare["endpoint"] == ep].reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


def test_embedded_truth_holds_pd():
    truth = json.loads((REPO / "data" / "synthetic" / "trial_truth.json").read_text())
    assert len(truth["pd"]["participants"]) == 18
    committed = pd.read_csv(REPO / "data" / "synthetic" / "trial.csv")
    assert "cd19_b" in set(committed["endpoint"])
