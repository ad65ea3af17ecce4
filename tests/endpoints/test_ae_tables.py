"""AE tables checked against counts worked by hand on a six-participant trial (conftest)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.endpoints import (
    EndpointError,
    ae_by_term,
    ae_summary,
    clopper_pearson,
    max_grade,
    max_grade_table,
    syndrome_episodes,
    syndrome_summary,
)

from .conftest import CRS


def test_clopper_pearson_closed_forms_and_known_values():
    lo, hi = clopper_pearson(0, 3)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 3))  # 0.7076
    lo, hi = clopper_pearson(6, 6)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 6))  # 0.5407
    lo, hi = clopper_pearson(2, 3)
    assert (lo, hi) == pytest.approx((0.0943, 0.9916), abs=1e-4)
    assert lo == pytest.approx(stats.beta.ppf(0.025, 2, 2))
    assert hi == pytest.approx(stats.beta.ppf(0.975, 3, 1))
    lo, hi = clopper_pearson(np.array([1, 5]), np.array([10, 10]), conf=0.9)
    assert lo[1] == pytest.approx(1 - hi[1]) and lo[0] == pytest.approx(stats.beta.ppf(0.05, 1, 10))
    assert all(np.isnan(clopper_pearson(0, 0)))
    with pytest.raises(EndpointError, match="0 <= k <= n"):
        clopper_pearson(4, 3)


def _row(table, **keys):
    sel = table
    for k, v in keys.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, keys
    return sel.iloc[0]


@pytest.mark.parametrize("level, measure, n, N, events", [
    (1, "any", 2, 3, 4), (1, "grade>=3", 2, 3, 2), (1, "serious", 1, 3, 2),
    (1, "grade 5", 0, 3, 0),
    (2, "any", 2, 3, 6), (2, "grade>=3", 2, 3, 3), (2, "serious", 2, 3, 2),
    ("All", "any", 4, 6, 10), ("All", "grade>=3", 4, 6, 5), ("All", "serious", 3, 6, 4),
])
def test_ae_summary_by_hand(ae, participants, level, measure, n, N, events):
    r = _row(ae_summary(ae, participants), dose_level=level, measure=measure)
    assert (r["n"], r["N"], r["events"]) == (n, N, events)
    assert r["pct"] == pytest.approx(100 * n / N)
    lo, hi = clopper_pearson(n, N)
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((100 * lo, 100 * hi))


def test_ae_summary_by_category(ae, participants):
    t = ae_summary(ae, participants, category="crs")
    assert (_row(t, dose_level=1, measure="any")[["n", "events"]] == [2, 3]).all()
    assert _row(t, dose_level=1, measure="grade>=3")["n"] == 1
    assert _row(t, dose_level=2, measure="any")["n"] == 1
    assert _row(t, dose_level=2, measure="grade>=3")["n"] == 0
    cyto = ae_summary(ae, participants, category="cytopenia")
    assert _row(cyto, dose_level="All", measure="grade>=3")["n"] == 2
    inf = ae_summary(ae, participants, category="infection")
    assert _row(inf, dose_level=2, measure="any")[["n", "events"]].tolist() == [2, 2]
    assert _row(inf, dose_level=2, measure="serious")["n"] == 1
    assert _row(inf, dose_level=2, measure="any")["dose"] == 1e6


def test_ae_by_term(ae, participants):
    t = ae_by_term(ae, participants)
    assert _row(t, term=CRS, dose_level=1, grade="any")[["n", "events"]].tolist() == [2, 3]
    assert _row(t, term=CRS, dose_level=1, grade="grade>=3")[["n", "events"]].tolist() == [1, 1]
    assert _row(t, term=CRS, dose_level="All", grade="any")[["n", "events"]].tolist() == [3, 4]
    assert _row(t, term="Pneumonia", dose_level=2, grade="grade>=3")["n"] == 1
    # every term has a row for each level and band, even without events
    assert len(t) == ae["term"].nunique() * 3 * 2
    # the most frequent term of a category comes first
    crs_terms = t[t["category"] == "crs"]["term"].unique()
    assert list(crs_terms) == [CRS]


def test_max_grade(ae, participants):
    mg = max_grade(ae, participants).set_index("id")["max_grade"].to_dict()
    assert mg == {"P1": 4, "P2": 3, "P3": 0, "P4": 3, "P5": 3, "P6": 0}
    crs = max_grade(ae, participants, category="crs").set_index("id")["max_grade"].to_dict()
    assert crs == {"P1": 1, "P2": 3, "P3": 0, "P4": 1, "P5": 0, "P6": 0}
    t = max_grade_table(ae, participants, category="crs")
    counts = {(r.dose_level, r.max_grade): r.n for r in t.itertuples()}
    assert counts[(1, 0)] == 1 and counts[(1, 1)] == 1 and counts[(1, 3)] == 1
    assert counts[(2, 0)] == 2 and counts[(2, 1)] == 1
    assert counts[("All", 3)] == 1 and counts[("All", 4)] == 0
    assert t.groupby("dose_level")["n"].sum().to_dict() == {1: 3, 2: 3, "All": 6}


def test_crs_icans_episodes_and_summary(ae, participants):
    ep = syndrome_episodes(ae)
    got = {(r.id, r.category, r.episode): (r.onset_day, r.end_day, r.duration_days,
                                            r.max_grade) for r in ep.itertuples()}
    assert got[("P1", "crs", 1)] == (2, 4, 3, 1)
    assert got[("P2", "crs", 1)] == (1, 5, 5, 3)  # two records merged
    p4 = got[("P4", "crs", 1)]
    assert p4[0] == 3 and np.isnan(p4[1]) and np.isnan(p4[2])
    assert got[("P5", "icans", 1)] == (6, 8, 3, 3) and got[("P5", "icans", 2)] == (12, 12, 1, 1)
    s = syndrome_summary(ep, participants)
    r = _row(s, category="crs", dose_level=1)
    assert (r["n"], r["N"], r["onset_median"], r["onset_min"], r["onset_max"]) == (2, 3, 1.5, 1,
                                                                                  2)
    assert (r["duration_median"], r["duration_min"], r["duration_max"], r["n_ongoing"]) == (
        4, 3, 5, 0)
    r = _row(s, category="crs", dose_level=2)
    assert r["n"] == 1 and r["onset_median"] == 3 and np.isnan(r["duration_median"])
    assert r["n_ongoing"] == 1
    r = _row(s, category="crs", dose_level="All")
    assert (r["n"], r["onset_median"], r["duration_median"]) == (3, 2, 4)
    r = _row(s, category="icans", dose_level=2)
    assert (r["n"], r["events"], r["onset_median"], r["duration_median"]) == (1, 2, 6, 4)


def test_participant_ids_compared_as_text():
    from carkinetics.endpoints import validate_ae

    p = pd.DataFrame({"id": [1, 2], "dose_level": [1, 1], "follow_up_days": [30.0, 30.0]})
    a = validate_ae(pd.DataFrame({"id": ["1"], "term": [CRS], "onset_day": [1],
                                  "resolution_day": [2], "grade": [1], "serious": ["no"],
                                  "category": ["crs"]}), participants=p)
    assert _row(ae_summary(a, p), dose_level=1, measure="any")["n"] == 1


def test_unknown_category_is_an_error(ae, participants):
    with pytest.raises(EndpointError, match="Did you mean 'infection'"):
        ae_summary(ae, participants, category="infections")
