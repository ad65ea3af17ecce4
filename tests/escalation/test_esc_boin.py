"""BOIN: boundaries vs the published table and formulas, trial flow, select.mtd, exact vs
simulated operating characteristics."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from carkinetics.escalation.base import TrialState, draw_pool
from carkinetics.escalation.boin import BOIN, boin_boundaries, boin_select_mtd, pava
from carkinetics.escalation.oc import simulate_oc
from carkinetics.exceptions import ModelSpecError

DATA = Path(__file__).parents[1] / "data"


def test_target_030_matches_published_table():
    b = boin_boundaries(0.3, max_n=30)
    assert round(b.lambda_e, 4) == 0.2365 and round(b.lambda_d, 4) == 0.3585
    ref = pd.read_csv(DATA / "boin_boundaries_target030.csv")
    got = b.to_frame(cohort_size=3)
    for col in ref.columns:
        assert got[col].astype(int).tolist() == ref[col].tolist(), col


def _independent(target, max_n=30):
    """Boundaries from the formulas written out again, elimination by scipy.stats.beta.cdf."""
    p1, p2 = 0.6 * target, 1.4 * target
    le = np.log((1 - p1) / (1 - target)) / np.log(target * (1 - p1) / (p1 * (1 - target)))
    ld = np.log((1 - target) / (1 - p2)) / np.log(p2 * (1 - target) / (target * (1 - p2)))
    rows = []
    for n in range(1, max_n + 1):
        esc = max(y for y in range(n + 1) if y / n <= le)
        dee = [y for y in range(n + 1) if y / n >= ld]
        eli = [y for y in range(n + 1)
               if n >= 3 and 1 - stats.beta.cdf(target, y + 1, n - y + 1) > 0.95]
        rows.append((n, esc, dee[0] if dee else -1, eli[0] if eli else -1))
    return le, ld, np.array(rows)


@pytest.mark.parametrize("target", [0.2, 0.25, 0.3, 0.33])
def test_boundaries_equal_formula_and_beta_elimination(target):
    le, ld, ref = _independent(target)
    b = boin_boundaries(target, 30)
    assert b.lambda_e == pytest.approx(le, rel=1e-12)
    assert b.lambda_d == pytest.approx(ld, rel=1e-12)
    assert b.n.tolist() == ref[:, 0].tolist()
    assert b.escalate_if_le.tolist() == ref[:, 1].tolist()
    assert b.deescalate_if_ge.tolist() == ref[:, 2].tolist()
    assert b.eliminate_if_ge.tolist() == ref[:, 3].tolist()


def test_published_lambdas_other_targets():
    # Liu & Yuan (2015) Table 1 (3 decimals): 0.2 -> 0.157/0.238; 0.25 -> 0.197/0.298
    b = boin_boundaries(0.2)
    assert (round(b.lambda_e, 3), round(b.lambda_d, 3)) == (0.157, 0.238)
    b = boin_boundaries(0.25)
    assert (round(b.lambda_e, 3), round(b.lambda_d, 3)) == (0.197, 0.298)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2, 1.5])
def test_bad_target(bad):
    with pytest.raises(ModelSpecError, match="target"):
        boin_boundaries(bad)


def test_pava_equals_scipy_isotonic_regression():
    rng = np.random.default_rng(3)
    for _ in range(50):
        x = rng.random(6)
        w = rng.random(6) + 0.1
        ref = optimize.isotonic_regression(x, weights=w).x
        np.testing.assert_allclose(pava(x, w), ref, atol=1e-12)


def test_select_mtd_hand_example():
    # n = 3, 6, 9, 3; y = 0, 1, 4, 1. Dose 3 (4/9) and dose 4 (1/3) violate monotonicity.
    n = np.array([3, 6, 9, 3])
    y = np.array([0, 1, 4, 1])
    ph = (y + 0.05) / (n + 0.1)
    v = (y + 0.05) * (n - y + 0.05) / ((n + 0.1) ** 2 * (n + 1.1))
    w = 1 / v
    pooled = (ph[2] * w[2] + ph[3] * w[3]) / (w[2] + w[3])
    est = np.array([ph[0], ph[1], pooled, pooled]) + np.arange(1, 5) * 1e-10
    mtd, fit = boin_select_mtd(n, y, 0.3)
    np.testing.assert_allclose(fit, est - np.arange(1, 5) * 1e-10, rtol=1e-12)
    assert mtd == int(np.argmin(np.abs(est - 0.3)))
    # Elimination: 3/3 at the lowest dose -> no MTD; 4/6 at dose 2 removes doses 2-4.
    assert boin_select_mtd([3, 0], [3, 0], 0.3)[0] is None
    assert boin_select_mtd([6, 6, 3], [0, 4, 0], 0.3)[0] == 0


def test_decide_follows_the_package_order():
    d = BOIN(4, 0.3, n_cohorts=10)
    assert d.decide(TrialState.from_counts([3, 0, 0, 0], [0, 0, 0, 0])).action == "escalate"
    dec = d.decide(TrialState.from_counts([3, 3, 0, 0], [0, 1, 0, 0]))
    assert dec.action == "stay" and dec.next_dose == 1
    dec = d.decide(TrialState.from_counts([3, 3, 0, 0], [0, 2, 0, 0]))
    assert dec.action == "deescalate" and dec.next_dose == 0
    # elimination at the lowest dose: stop, no MTD
    dec = d.decide(TrialState.from_counts([3, 0, 0, 0], [3, 0, 0, 0]))
    assert dec.action == "stop" and dec.mtd is None
    # dose 2 eliminated (4/6): at dose 1 with 0/6 the design stays instead of escalating
    dec = d.decide(TrialState.from_counts([6, 6, 0, 0], [0, 4, 0, 0], current=0))
    assert dec.action == "stay" and "eliminated" in dec.rule
    # n_earlystop: stop and select the MTD
    e = BOIN(4, 0.3, n_earlystop=9)
    dec = e.decide(TrialState.from_counts([3, 9, 0, 0], [0, 2, 0, 0]))
    assert dec.action == "stop" and dec.mtd == 1


@pytest.mark.parametrize("opts,tox", [
    ({"n_earlystop": 18}, [0.05, 0.1, 0.2, 0.3, 0.45]),
    ({"extrasafe": True}, [0.3, 0.4, 0.5, 0.6, 0.7]),
    ({"titration": True}, [0.02, 0.05, 0.1, 0.3, 0.5]),
    ({"bound_mtd": True, "n_earlystop": 12}, [0.1, 0.2, 0.35, 0.5, 0.6]),
])
def test_vectorised_equals_per_trial_loop(opts, tox):
    d = BOIN(5, 0.3, cohort_size=3, n_cohorts=12, **opts)
    pool = draw_pool(tox, 600, d.n_slots, seed=11)
    a = d.simulate_pool(pool)
    b = d.simulate_loop(pool)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_stop_reasons():
    d = BOIN(3, 0.3, n_cohorts=10, n_earlystop=12, extrasafe=True)
    res = d.simulate_pool(draw_pool([0.5, 0.6, 0.7], 2000, d.n_slots, seed=2))
    reasons = set(res["reason"])
    assert {"lowest_dose_eliminated", "extrasafe", "n_earlystop"} <= reasons
    assert np.all(res["selected"][np.isin(res["reason"],
                                          ["lowest_dose_eliminated", "extrasafe"])] == -1)
    # without extrasafe, the lowest dose is eliminated at 3/3, 4/6...: every such trial has
    # y1 >= elimination boundary
    d2 = BOIN(3, 0.3, n_cohorts=10)
    r2 = d2.simulate_pool(draw_pool([0.5, 0.6, 0.7], 2000, d2.n_slots, seed=2))
    el = r2["reason"] == "lowest_dose_eliminated"
    b = boin_boundaries(0.3, 30)
    n1 = r2["n"][el, 0]
    assert np.all(r2["y"][el, 0] >= b.eliminate_if_ge[n1 - 1])


def test_simulated_oc_within_mc_error_of_exact():
    d = BOIN(4, 0.3, cohort_size=3, n_cohorts=5)
    tox = [0.1, 0.25, 0.4, 0.55]
    ex = d.exact_oc(tox)
    assert ex.selection.sum() + ex.stop == pytest.approx(1.0, abs=1e-12)
    T = 20000
    sim = simulate_oc(d, tox, n_trials=T, seed=5)
    se = np.sqrt(ex.selection * (1 - ex.selection) / T)
    assert np.all(np.abs(sim.selection - ex.selection) < 4 * se + 1e-12)
    # mean patients per dose: 0..15 patients, sd <= 7.5
    assert np.all(np.abs(sim.mean_patients - ex.mean_patients) < 4 * 7.5 / np.sqrt(T))
    assert np.all(np.abs(sim.mean_dlts - ex.mean_dlts) < 4 * 7.5 / np.sqrt(T))
