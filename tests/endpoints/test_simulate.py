"""Synthetic adverse events and clinical scores: reproducible, Cmax-driven, valid data."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from carkinetics.data import ENDPOINTS, validate
from carkinetics.endpoints import (
    episodes_from_daily,
    grade_crs_days,
    grade_icans_days,
    syndrome_episodes,
    validate_ae,
    validate_crs_observations,
    validate_icans_observations,
)
from carkinetics.simulate import TrialDesign, simulate_trial
from carkinetics.simulate.safety import (
    simulate_adverse_events,
    simulate_crs_observations,
    simulate_icans_observations,
)
from carkinetics.simulate.scores import simulate_clinical_scores


@pytest.fixture(scope="module")
def trial():
    return simulate_trial(seed=5)


def test_reproducible_from_the_seed(trial):
    a, b = simulate_adverse_events(trial, 3), simulate_adverse_events(trial, 3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(simulate_adverse_events(trial, 4))
    s1, s2 = simulate_clinical_scores(trial, 3), simulate_clinical_scores(trial, 3)
    pd.testing.assert_frame_equal(s1, s2)
    assert not s1["dv"].equals(simulate_clinical_scores(trial, 4)["dv"])


def test_a_participant_does_not_depend_on_the_others(trial):
    small = simulate_trial(seed=5, design=TrialDesign(cohort_sizes=(3, 3, 3, 3)))
    a = simulate_adverse_events(trial, 9)
    b = simulate_adverse_events(small, 9)
    pd.testing.assert_frame_equal(a[a["id"] == "P01"], b[b["id"] == "P01"])


def _fake(cmax, n):
    people = [{"id": f"X{i:03d}", "follow_up_days": 100.0, "params_at_dose": {"cmax": cmax}}
              for i in range(n)]
    return SimpleNamespace(truth={"participants": people})


def test_crs_and_icans_rise_with_true_cmax():
    n = 400
    low, high = (simulate_adverse_events(_fake(c, n), 1) for c in (15000 / 5, 15000 * 5))

    def worst(ae, cat):
        return ae[ae["category"] == cat].groupby("id")["grade"].max().reindex(
            [f"X{i:03d}" for i in range(n)], fill_value=0)

    for cat in ("crs", "icans"):
        lo, hi = worst(low, cat), worst(high, cat)
        assert (hi > 0).mean() > (lo > 0).mean() + 0.15
        assert hi.mean() > lo.mean()
    assert (worst(high, "crs") >= 3).mean() > (worst(low, "crs") >= 3).mean()


def test_adverse_events_are_valid_and_within_follow_up(trial):
    ae = simulate_adverse_events(trial, 2)
    p = pd.DataFrame(trial.truth["participants"])[["id", "dose_level", "follow_up_days"]]
    validate_ae(ae, participants=p)  # raises on any problem
    follow = ae["id"].map(p.set_index("id")["follow_up_days"])
    assert (ae["onset_day"] <= follow).all()
    assert (ae["resolution_day"].isna() | (ae["resolution_day"] <= follow)).all()
    assert set(ae["category"]) <= {"crs", "icans", "cytopenia", "infection",
                                   "hypogammaglobulinaemia"}


def test_daily_observations_grade_back_to_the_events(trial):
    ae = validate_ae(simulate_adverse_events(trial, 11))
    for cat, make, check, grade in (
            ("crs", simulate_crs_observations, validate_crs_observations, grade_crs_days),
            ("icans", simulate_icans_observations, validate_icans_observations,
             grade_icans_days)):
        daily = episodes_from_daily(grade(check(make(ae))), cat)
        expected = syndrome_episodes(ae, (cat,))
        cols = ["id", "onset_day", "end_day", "max_grade"]
        pd.testing.assert_frame_equal(daily[cols].reset_index(drop=True),
                                      expected[cols].reset_index(drop=True), check_dtype=False)


def test_scores_are_valid_long_table_rows(trial):
    scores = simulate_clinical_scores(trial, 8)
    assert set(scores["endpoint"]) <= set(ENDPOINTS)
    data = validate(pd.concat([trial.data, scores], ignore_index=True))  # raises on problems
    assert len(data) == len(trial.data) + len(scores)
    # scores are drawn on the participant's own visit days
    ck = trial.data[["id", "visit", "time"]].drop_duplicates()
    merged = scores.merge(ck, on=["id", "visit"], suffixes=("", "_ck"))
    assert len(merged) == len(scores) and (merged["time"] == merged["time_ck"]).all()


def test_scores_consistent_with_disease(trial):
    scores = simulate_clinical_scores(trial, 8)
    disease = scores.groupby("id")["disease"].first()
    # serology now comes from the trial's mechanistic PD rows (carkinetics.simulate.pd)
    eps = pd.concat([scores, trial.data]).groupby("id")["endpoint"].agg(set)
    for pid, d in disease.items():
        if d == "SLE":
            assert {"sledai2k", "pga", "bilag2004", "anti_dsdna"} <= eps[pid]
        if d == "RA":
            assert {"sjc28", "tjc28", "vas_pain", "vas_global", "haq_di", "rf"} <= eps[pid]
            assert "sledai2k" not in eps[pid]
    base = scores[scores["visit"] == "Day -1"].pivot_table(index="id", columns="endpoint",
                                                          values="dv")
    sle = base[disease.reindex(base.index) == "SLE"]
    assert (sle["sledai2k"] >= 8).all() and (sle["bilag2004"] >= 12).all()
    sjc, tjc = (scores[scores["endpoint"] == e]["dv"] for e in ("sjc28", "tjc28"))
    assert sjc.between(0, 28).all() and tjc.between(0, 28).all()
    haq = scores[scores["endpoint"] == "haq_di"]["dv"]
    assert np.allclose(haq * 8, np.round(haq * 8)) and haq.between(0, 3).all()
    pga = scores[scores["endpoint"] == "pga"]["dv"]
    assert pga.between(0, 3).all()
