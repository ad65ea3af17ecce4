"""TITE-BOIN: reduction to BOIN with complete data, hand-computed imputation, suspension,
staggered-accrual OC (reproducible; equal to BOIN trial by trial when accrual is slow)."""

import numpy as np
import pytest

from carkinetics.escalation.base import TrialState, draw_pool
from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.tite import TiteBOIN, TiteState, imputed_dlt_rate, simulate_tite_oc
from carkinetics.exceptions import DataError

LAM_E, LAM_D = 0.23654, 0.35846  # BOIN target 0.3 (published 0.2365 / 0.3585)


@pytest.mark.parametrize("n_earlystop", [100, 9])
def test_complete_data_equals_boin_exhaustive(n_earlystop):
    kw = dict(n_cohorts=10, cohort_size=3, n_earlystop=n_earlystop)
    tite, boin = TiteBOIN(3, 0.3, **kw), BOIN(3, 0.3, **kw)
    checked = 0
    for cur in (0, 1):
        for above in ((0, 0), (3, 0), (3, 3)):
            for n in range(1, 13):
                for y in range(n + 1):
                    nn = [3, 0, 0] if cur == 1 else [0, 0, 0]
                    yy = [0, 0, 0]
                    nn[cur], yy[cur] = n, y
                    nn[2], yy[2] = above if cur == 1 else (0, 0)
                    st = TrialState.from_counts(nn, yy, current=cur)
                    a, b = tite.decide(st), boin.decide(st)
                    assert (a.action, a.next_dose, a.mtd) == (b.action, b.next_dose, b.mtd), \
                        (cur, nn, yy)
                    # the same state as a TiteState (follow-up irrelevant when complete)
                    ts = TiteState(st, np.full(st.dose_level.size, 40.0), 28.0)
                    c = tite.decide(ts)
                    assert (c.action, c.next_dose) == (b.action, b.next_dose)
                    checked += 1
    assert checked == 2 * 3 * sum(n + 1 for n in range(1, 13))


def _state(n, y, fu_pending, window=28.0, n_doses=3, current=1):
    """n participants at `current`: y DLTs (complete), len(fu_pending) pending, the rest
    complete without DLT; 3 complete participants without DLT at dose 0."""
    c = len(fu_pending)
    lvl = [0, 0, 0] + [current] * n
    dlt = [0, 0, 0] + [1] * y + [0] * (n - y)
    pend = [0, 0, 0] + [0] * (n - c) + [1] * c
    fu = [40.0] * (3 + n - c) + list(fu_pending)
    st = TrialState(n_doses, lvl, dlt, pending=pend, current=current)
    return TiteState(st, fu, window)


def test_hand_computed_imputation():
    # n = 6, y = 1, pending followed 14, 7, 2.8 of 28 days: r = 3, STFT = 0.85
    p_hat = (1 + 0.15) / (3 + 1)
    q = p_hat / (1 - p_hat)
    hand = (1 + q * (3 - 0.85)) / 6
    assert hand == pytest.approx(0.311257, abs=1e-6)
    assert imputed_dlt_rate(1, 6, [0.5, 0.25, 0.1], 0.3) == pytest.approx(hand, rel=1e-12)
    d = TiteBOIN(3, 0.3).decide(_state(6, 1, [14.0, 7.0, 2.8]))
    assert d.numbers["stft"] == pytest.approx(0.85)
    assert d.numbers["imputed_dlt_rate"] == pytest.approx(hand, rel=1e-12)
    assert d.action == "stay"  # 0.2365 < 0.3113 < 0.3585
    # 0/6 with 3 pending, STFT 2.4: p_hat = 0.0375, imputed (0.0375/0.9625*0.6)/6
    d = TiteBOIN(3, 0.3).decide(_state(6, 0, [28 * 0.8] * 3))
    assert d.numbers["imputed_dlt_rate"] == pytest.approx(0.0375 / 0.9625 * 0.6 / 6, rel=1e-12)
    assert d.action == "escalate" and d.next_dose == 2
    # BOIN would not escalate with pending participants at the current dose
    assert BOIN(3, 0.3).decide(d_state := _state(6, 0, [28 * 0.8] * 3).state).action == "stay"
    assert d_state.n[1] == 3
    # 2/6, 2 pending at 10 % follow-up: p_hat 2.15/5, imputed 0.5596 >= lambda_d, y/n >= 0.3
    ph = 2.15 / 5
    d = TiteBOIN(3, 0.3).decide(_state(6, 2, [2.8, 2.8]))
    assert d.numbers["imputed_dlt_rate"] == pytest.approx((2 + ph / (1 - ph) * 1.8) / 6)
    assert d.action == "deescalate" and d.next_dose == 0
    # 2/9 with 4 pending at 0 follow-up: imputed 0.4704 >= lambda_d but y/n < target: stay
    ph = 2.15 / 6
    d = TiteBOIN(3, 0.3).decide(_state(9, 2, [0.0] * 4))
    assert d.numbers["imputed_dlt_rate"] == pytest.approx((2 + ph / (1 - ph) * 4) / 9)
    assert d.numbers["imputed_dlt_rate"] > LAM_D and d.action == "stay"


def test_suspension_and_rule_order():
    des = TiteBOIN(3, 0.3)
    d = des.decide(_state(6, 0, [1.0] * 4))  # 4 of 6 pending > half
    assert d.action == "stay" and d.numbers.get("suspend") is True
    d = des.decide(_state(6, 0, [27.0] * 3))  # exactly half: no suspension
    assert "suspend" not in d.numbers and d.action == "escalate"
    d = TiteBOIN(3, 0.3, max_pending_ratio=0.4).decide(_state(6, 0, [27.0] * 3))
    assert d.numbers.get("suspend") is True
    # y/n >= lambda_d de-escalates whatever the pending outcomes, before suspension
    d = des.decide(_state(8, 3, [1.0] * 5))
    assert 3 / 8 >= LAM_D and d.action == "deescalate" and "suspend" not in d.numbers
    # elimination counts pending participants as without DLT: 4/6 (2 pending) eliminates
    d = des.decide(_state(6, 4, [1.0, 1.0]))
    assert d.action == "deescalate" and d.numbers["eliminated_levels"] == [2, 3]
    d = des.decide(_state(6, 4, [1.0, 1.0], current=0).__class__(
        TrialState(3, [0] * 6, [1, 1, 1, 1, 0, 0], pending=[0, 0, 0, 0, 1, 1], current=0),
        [40, 40, 40, 40, 1, 1], 28.0))
    assert d.action == "stop" and d.mtd is None


def test_bad_tite_state():
    st = TrialState(2, [0, 0], [0, 0], pending=[0, 1])
    with pytest.raises(DataError, match="pending but followed"):
        TiteState(st, [30.0, 30.0], 28.0)
    with pytest.raises(DataError, match="follow_up"):
        TiteState(st, [1.0], 28.0)
    with pytest.raises(DataError, match="TiteState"):
        TiteBOIN(2, 0.3).decide(st)


def test_oc_reproducible_workers_and_chunks():
    des = TiteBOIN(3, 0.3, n_cohorts=5)
    kw = dict(n_trials=40, seed=11, accrual_rate=0.2, window=28.0)
    a = simulate_tite_oc(des, [0.1, 0.3, 0.5], workers=1, chunk_trials=40, **kw).to_dict()
    b = simulate_tite_oc(des, [0.1, 0.3, 0.5], workers=2, chunk_trials=10, **kw).to_dict()
    assert a == b
    assert sum(a["selection_pct"]) + a["stop_pct"] == pytest.approx(100.0)


def test_slow_accrual_equals_boin_trial_by_trial():
    """With accrual much slower than the window every decision sees complete data, and the
    participants are the same slots as draw_pool's (same per-trial stream): BOIN results."""
    from carkinetics.escalation import tite
    kw = dict(n_cohorts=6, cohort_size=3, n_earlystop=12)
    des, boin = TiteBOIN(4, 0.3, **kw), BOIN(4, 0.3, **kw)
    p = np.array([0.1, 0.25, 0.4, 0.55])
    T = 150
    ref = boin.simulate_pool(draw_pool(p, T, boin.n_slots, seed=3))
    res = tite._tite_chunk((des, p, 3, 0, T, 1e-7, 1.0))
    np.testing.assert_array_equal(res["selected"], ref["selected"])
    np.testing.assert_array_equal(res["n"], ref["n"])
    np.testing.assert_array_equal(res["y"], ref["y"])
    # fast accrual: shorter trials than slow accrual on the same seeds
    fast = tite._tite_chunk((des, p, 3, 0, T, 3.0, 1.0))
    assert fast["duration"].mean() < 0.5 * res["duration"].mean()


def test_early_stop_selects_on_evaluable_participants():
    # 9 at dose 2 complete (n_earlystop 9) and 3 pending at dose 3 (after a de-escalation)
    st = TrialState(3, [0] * 3 + [1] * 9 + [2] * 3, [0] * 3 + [1, 1] + [0] * 7 + [0] * 3,
                    pending=[0] * 12 + [1] * 3, current=1)
    des = TiteBOIN(3, 0.3, n_earlystop=9)
    d = des.decide(TiteState(st, [40.0] * 12 + [3.0] * 3, 28.0))
    assert d.action == "stop" and "n_earlystop" in d.rule
    from carkinetics.escalation.boin import boin_select_mtd
    assert d.mtd == boin_select_mtd([3, 9, 0], [0, 2, 0], 0.3)[0] == 1
