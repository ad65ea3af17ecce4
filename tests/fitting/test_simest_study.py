"""Simulation-estimation batch jobs (carkinetics.fitting.simest), against hand computations.

Tiny studies (10 participants, qPCR only, random effects on cmax and alpha, 2 trials):
bias, relative bias, RMSE and coverage recomputed here from the per-trial table; truth
from the simulated trials; trial seeds from ``SeedSequence(root).spawn(n)`` (trial k's
seed does not depend on n); a fit that raises is a failure row with its reason.
"""

import math

import numpy as np
import pandas as pd
import pytest

from carkinetics.fitting.simest import (
    matching_spec,
    population_truth,
    simulation_estimation,
    simulation_estimation_individuals,
    summarise_trials,
    trial_seeds,
)
from carkinetics.simulate import simulate_trial
from carkinetics.simulate.trial import CKPopulation, TrialDesign

POP = CKPopulation(omega={"foldx": 0.0, "tmax": 0.0, "cmax": 0.6, "alpha": 0.3, "fb": 0.0,
                          "beta": 0.0}, omega_flow_scale=0.0)
DESIGN = TrialDesign(dose_levels=(1e6, 3e6), cohort_sizes=(5, 5))


def _by_hand(df: pd.DataFrame, p: str) -> dict:
    g = df[df["parameter"] == p]
    est, tru = g["estimate"].to_numpy(float), g["truth"].to_numpy(float)
    rel = np.expm1(est - tru) if p.startswith("log_") else (est - tru) / np.abs(tru)
    inside = [lo <= t <= hi for lo, t, hi in zip(g["ci_lower"], tru, g["ci_upper"],
                                                  strict=True) if not math.isnan(lo)]
    return {"bias": np.mean(est - tru), "rel_bias_pct": 100 * np.mean(rel),
            "rmse": math.sqrt(np.mean((est - tru) ** 2)),
            "rel_rmse_pct": 100 * math.sqrt(np.mean(rel**2)),
            "coverage": np.mean(inside), "n": len(g)}


def test_focei_study_metrics_equal_hand_computation():
    spec = matching_spec(POP, endpoint="car_qpcr")
    assert spec.random_effects == ("cmax", "alpha")
    res = simulation_estimation(spec, population=POP, design=DESIGN, n_trials=2, seed=9,
                                progress=False)
    df = res.to_frame()
    assert res.counts["fitted"] == 2 and res.counts["failed"] == 0
    seeds = [int(c.generate_state(1)[0]) for c in np.random.SeedSequence(9).spawn(2)]
    assert trial_seeds(9, 2) == seeds and sorted(df["seed"].unique()) == sorted(seeds)
    truth = population_truth(POP)
    assert truth["omega(cmax)"] == pytest.approx(0.36) and "omega(foldx)" not in truth
    assert (df["truth"] == df["parameter"].map(truth)).all()
    m = res.metrics().set_index("parameter")
    for p in ("cmax", "dose_exp", "omega(alpha)", "sigma_log_car_qpcr"):
        hand = _by_hand(df, p)
        for k, v in hand.items():
            assert m.loc[p, k] == pytest.approx(v, rel=1e-12, abs=1e-15), (p, k)
    # the BLQ fraction of late samples is the one of the simulated data
    data = simulate_trial(seeds[1], design=DESIGN, population=POP, include_pd=False).data
    late = data[data["time"] > 180]
    assert df.loc[df["seed"] == seeds[1], "blq_late"].iloc[0] == pytest.approx(
        (late["cens"] == 1).mean())
    # trial k is a function of its own seed: the same seed whether run alone or not
    # (the unit gets seeds[k]; FOCE-I is deterministic)
    assert (df.loc[df["trial"] == 1, "seed"] == trial_seeds(9, 5)[1]).all()


def test_individual_study_against_the_simulated_participants():
    res = simulation_estimation_individuals(population=POP, design=DESIGN, n_trials=2,
                                            seed=4, progress=False, n_starts=4)
    df = res.to_frame()
    ok = df[df["parameter"].notna()]
    assert ok["trial"].nunique() == 2 and ok["id"].nunique() == 10
    sim = simulate_trial(trial_seeds(4, 2)[0], design=DESIGN, population=POP,
                         include_pd=False)
    p3 = sim.truth["participants"][3]
    row = ok[(ok["trial"] == 0) & (ok["id"] == p3["id"]) & (ok["parameter"] == "cmax")]
    assert row["truth"].iloc[0] == pytest.approx(p3["params_at_dose"]["cmax"], rel=1e-14)
    sig = ok[ok["parameter"] == "sigma_log_car_qpcr"]
    assert (sig["truth"] == POP.sigma_qpcr).all()
    m = summarise_trials(df).set_index("parameter")
    for p in ("cmax", "beta"):
        hand = _by_hand(ok, p)
        for k, v in hand.items():
            assert m.loc[p, k] == pytest.approx(v, rel=1e-12), (p, k)
    assert math.isnan(m.loc["cmax", "truth"])  # per-participant truths differ
    assert m.loc["tmax", "truth"] == pytest.approx(10.0)  # no variability of tmax in POP


def test_failed_fits_are_recorded_with_their_reason():
    # six random effects cannot be estimated from four participants: the fit raises
    tiny = TrialDesign(dose_levels=(1e6, 3e6), cohort_sizes=(2, 2))
    res = simulation_estimation(matching_spec(CKPopulation(), endpoint="car_qpcr"),
                                population=CKPopulation(), design=tiny, n_trials=3, seed=1,
                                progress=False)
    assert res.counts == {"trials": 3, "fitted": 0, "failed": 3, "failure_rows": 3,
                          "converged": 0, "se_missing": 0}
    f = res.failures
    assert f["error"].str.contains("ModelSpecError: 6 random effects").all()
    assert sorted(f["seed"]) == sorted(trial_seeds(1, 3))
    assert res.metrics().empty
    assert res.summary()["counts"]["failed"] == 3
