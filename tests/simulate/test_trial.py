"""The virtual trial: determinism, independence of streams, and agreement with its truth."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.simulate import DEFAULT_SEED, TrialDesign, simulate_trial, truth_path_for

REPO = Path(__file__).resolve().parents[2]


def bare_piecewise(t, foldx, tmax, cmax, alpha, fb, beta):
    """Stein 2019 closed form typed out independently of carkinetics.models."""
    rho = np.log(foldx) / tmax
    t = np.asarray(t, float)
    out = np.where(t < tmax, cmax / foldx * np.exp(rho * np.minimum(t, tmax)),
                   cmax * ((1 - fb) * np.exp(-alpha * np.maximum(t - tmax, 0))
                           + fb * np.exp(-beta * np.maximum(t - tmax, 0))))
    return np.where(t < 0, 0.0, out)


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(DEFAULT_SEED)


def test_deterministic_for_a_seed(trial):
    again = simulate_trial(DEFAULT_SEED)
    pd.testing.assert_frame_equal(trial.data, again.data)
    assert trial.truth == again.truth
    other = simulate_trial(DEFAULT_SEED + 1)
    assert not np.allclose(other.data["dv"].to_numpy()[:50], trial.data["dv"].to_numpy()[:50])


def test_embedded_trial_is_the_default_simulation(trial):
    committed = pd.read_csv(REPO / "data" / "synthetic" / "trial.csv")
    fresh = trial.data.reset_index(drop=True)
    assert list(committed.columns) == list(fresh.columns)
    assert len(committed) == len(fresh)
    np.testing.assert_allclose(committed["dv"], fresh["dv"], rtol=1e-12)
    np.testing.assert_array_equal(committed["cens"], fresh["cens"])
    assert (committed["id"] == fresh["id"]).all()
    import json

    truth = json.loads((REPO / "data" / "synthetic" / "trial_truth.json").read_text())
    assert truth["seed"] == DEFAULT_SEED
    assert [p["id"] for p in truth["participants"]] == sorted(fresh["id"].unique())


def test_shape_matches_protocol(trial):
    d = trial.data
    assert d["id"].nunique() == 18
    counts = d.groupby("dose")["id"].nunique()
    assert counts.to_dict() == {0.5e6: 3, 1.0e6: 6, 2.0e6: 3, 3.0e6: 6}
    # CK rows (the PD rows added by include_pd=True are checked in test_pd.py)
    assert {"car_qpcr", "car_flow"} <= set(d["endpoint"])
    d = d[d["endpoint"].isin(["car_qpcr", "car_flow"])]
    assert {"Day -1", "Day 14", "Day 21", "Day 28", "Month 2", "Month 3", "Month 6",
            "Month 9", "Month 12", "Month 18", "Month 24", "Day 1", "Day 4", "Day 7",
            "Day 10"} == set(d["visit"])
    # censoring lives in the data: BLQ rows carry dv == lloq, never 0 or LLOQ/2
    blq = d[d["cens"] == 1]
    assert (blq["dv"] == blq["lloq"]).all()
    assert (d.loc[d["cens"] == 0, "dv"] >= d.loc[d["cens"] == 0, "lloq"]).all()
    # every pre-infusion sample is BLQ (no CAR-T before infusion)
    assert (d.loc[d["time"] < 0, "cens"] == 1).all()
    # realistic censoring: a quarter to a third of all samples, most late ones
    frac = (d["cens"] == 1).mean()
    assert 0.15 < frac < 0.4
    late = d[d["time"] > 300]
    assert (late["cens"] == 1).mean() > 0.4
    # staggered enrolment and a data cut-off shorten later participants' follow-up
    last = d.groupby("id")["time"].max()
    assert last.iloc[0] > 700 and last.iloc[-1] < 700


def test_observations_agree_with_truth(trial):
    """Quantified samples scatter around the true curve with the stated residual SD."""
    d = trial.data
    truth = {p["id"]: p for p in trial.truth["participants"]}
    sig = trial.truth["residual"]
    for endpoint, scale_key in (("car_qpcr", None), ("car_flow", "flow_per_copy")):
        res = []
        for pid, g in d[(d["endpoint"] == endpoint) & (d["cens"] == 0)].groupby("id"):
            p = truth[pid]
            pred = bare_piecewise(g["time"].to_numpy(), **p["params_at_dose"])
            if scale_key:
                pred = pred * p[scale_key]
            res.append(np.log(g["dv"].to_numpy()) - np.log(pred))
        r = np.concatenate(res)
        sd = sig[endpoint]["sigma"]
        # censoring removes low residuals near the LLOQ, so allow a small positive shift
        assert abs(r.mean()) < 3 * sd / np.sqrt(r.size) + 0.05
        assert 0.8 * sd < r.std(ddof=1) < 1.15 * sd


def test_dose_power_relation_in_truth(trial):
    pop = trial.truth["population"]
    for p in trial.truth["participants"]:
        ratio = p["params_at_dose"]["cmax"] / p["params"]["cmax"]
        assert ratio == pytest.approx((p["dose"] / pop["dose_ref"]) ** pop["dose_exp"], rel=1e-12)


def test_streams_do_not_depend_on_later_participants():
    small = simulate_trial(7, design=TrialDesign(cohort_sizes=(3, 3, 3, 3)))
    big = simulate_trial(7)
    a = {p["id"]: p["params"] for p in small.truth["participants"]}
    b = {p["id"]: p["params"] for p in big.truth["participants"]}
    for pid in ("P01", "P02", "P03"):
        assert a[pid] == b[pid]


def test_write_writes_data_and_truth(tmp_path, trial):
    path, truth = trial.write(tmp_path / "t.csv")
    assert truth == truth_path_for(path) == tmp_path / "t_truth.json"
    back = pd.read_csv(path)
    assert len(back) == len(trial.data)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left behind
    pq, _ = trial.write(tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(pq), trial.data)


@pytest.mark.parametrize("kwargs, match", [
    ({"cohort_sizes": (3, 3)}, "cohort_sizes"),
    ({"dose_levels": (2e6, 1e6, 3e6, 4e6)}, "dose_levels"),
    ({"disease_probs": (0.5, 0.5, 0.5, 0.5)}, "disease_probs"),
])
def test_bad_design_raises(kwargs, match):
    with pytest.raises(ModelSpecError, match=match):
        TrialDesign(**kwargs)


def test_bad_seed_raises():
    with pytest.raises(ModelSpecError, match="seed"):
        simulate_trial(-3)
