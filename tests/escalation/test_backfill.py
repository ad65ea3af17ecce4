"""BOIN with backfill: off == BOIN exactly; on: more participants at lower doses, valid
selection; a constructed trial in which backfill DLTs eliminate a dose."""

import numpy as np
import pytest

from carkinetics.escalation.backfill import BackfillBOIN
from carkinetics.escalation.base import ParticipantPool, TrialState, draw_pool
from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.oc import simulate_oc

P = [0.05, 0.1, 0.25, 0.45, 0.6]
KW = dict(n_cohorts=10, cohort_size=3, n_earlystop=18)


@pytest.mark.parametrize("extra", [{}, {"extrasafe": True, "bound_mtd": True}])
def test_backfill_off_equals_boin(extra):
    off = BackfillBOIN(5, 0.3, backfill_size=0, **KW, **extra)
    ref = BOIN(5, 0.3, **KW, **extra)
    assert off.n_slots == ref.n_slots
    a = simulate_oc(off, [0.3, 0.45, 0.5, 0.6, 0.7], n_trials=1500, seed=8).to_dict()
    b = simulate_oc(ref, [0.3, 0.45, 0.5, 0.6, 0.7], n_trials=1500, seed=8).to_dict()
    a.pop("design"), b.pop("design")
    assert a == b
    pool = draw_pool(P, 1500, ref.n_slots, seed=9)
    r1, r0 = off.simulate_pool(pool), ref.simulate_pool(pool)
    for key in ("selected", "n", "y", "cohorts", "reason"):
        np.testing.assert_array_equal(r1[key], r0[key])
    assert r1["n_backfill"].sum() == 0


def test_backfill_on_more_patients_low_doses_valid_selection():
    on = BackfillBOIN(5, 0.3, backfill_size=3, backfill_cap=12, **KW)
    ref = BOIN(5, 0.3, **KW)
    pool = draw_pool(P, 2000, on.n_slots, seed=4)  # same participants for both designs
    r1 = on.simulate_pool(pool)
    r0 = ref.simulate_pool(pool)
    a = simulate_oc(on, P, pool=pool)
    b = simulate_oc(ref, P, pool=pool)
    assert a.mean_patients[0] > b.mean_patients[0] + 3
    assert a.mean_patients[1] > b.mean_patients[1] + 3
    assert a.mean_patients[:2].sum() > 2 * b.mean_patients[:2].sum()
    assert a.selection.sum() + a.stop == pytest.approx(1.0)
    assert np.all(a.selection >= 0)
    # backfill participants only below the dose finally reached, never above the cap
    nb = r1["n_backfill"]
    assert nb.sum() > 0 and nb[:, -1].sum() == 0
    # a dose is cleared only after a main cohort there, and backfill fills up to the cap
    assert nb.max() == on.backfill_cap - 3
    np.testing.assert_array_equal(r1["n"].sum(axis=1) - nb.sum(axis=1),
                                  3 * r1["cohorts"])
    # main cohorts are the same count as BOIN's budget
    assert np.all(r1["cohorts"] <= 10) and np.all(r0["cohorts"] <= 10)


def _constructed_pool(n_slots):
    dlt = np.zeros((1, 3, n_slots), bool)
    dlt[0, 1, [3, 4, 6, 7, 8]] = True  # backfill participants at dose 2 (1-based)
    dlt[0, 2, 0] = True
    return ParticipantPool(dlt)


def test_backfill_dlts_eliminate_a_dose():
    """Cohorts: d1 0/3 -> d2 0/3 (+3 backfill at d1) -> d3 1/3 (+3 backfill at d2, 2 DLTs:
    2/6) -> d3 0/3 (+3 backfill at d2, 3 DLTs: 5/9 >= elimination boundary 5 for n = 9) ->
    dose 2 and 3 eliminated, the trial continues at dose 1."""
    on = BackfillBOIN(3, 0.3, backfill_size=3, backfill_cap=12, n_cohorts=6)
    assert on.bounds.eliminate_if_ge[8] == 5 and on.bounds.deescalate_if_ge[5] == 3
    r = on.simulate_pool(_constructed_pool(on.n_slots))
    assert r["n"][0].tolist() == [12, 9, 6]
    assert r["y"][0].tolist() == [0, 5, 1]
    assert r["n_backfill"][0].tolist() == [3, 6, 0]
    assert r["selected"][0] == 0
    # the same participants without backfill: no elimination, dose 3 (1-based) is reached
    ref = BOIN(3, 0.3, n_cohorts=6).simulate_pool(_constructed_pool(on.n_slots))
    assert ref["y"][0, 1] == 0 and ref["selected"][0] != 0
    # the state-side decision sees the elimination and opens no backfill at eliminated doses
    st = TrialState.from_counts([6, 9, 6], [0, 5, 1], current=2)
    dec = BackfillBOIN(3, 0.3, backfill_size=3, n_cohorts=10).decide(st)
    assert dec.numbers["eliminated_levels"] == [2, 3] and dec.next_dose == 0
    assert dec.action == "deescalate"
    # plain BOIN never recommends a dose eliminated through lower-dose (backfill) data
    assert BOIN(3, 0.3, n_cohorts=10).decide(st).next_dose == 0
    assert dec.numbers["backfill_open_levels"] == [1]
    assert on.decide(TrialState.from_counts([6, 3, 0], [0, 0, 0], current=1)).numbers[
        "backfill_open_levels"] == [1]


def test_backfill_deescalation_boundary_returns_main_cohort():
    on = BackfillBOIN(2, 0.3, backfill_size=3, backfill_cap=12, n_cohorts=5)
    dlt = np.zeros((1, 2, on.n_slots), bool)
    dlt[0, 0, 3:6] = True  # first backfill cohort at dose 1: 3/6
    dlt[0, 0, 6:9] = True  # the main cohort back at dose 1
    r = on.simulate_pool(ParticipantPool(dlt))
    # after cohort 2 (dose 2, 0/3; backfill 3/3 at dose 1 -> 3/6 >= de-escalation 3): the
    # main cohort returns to dose 1 and backfill closes: dose 2 keeps its 3 participants.
    assert r["n"][0].tolist()[1] == 3
    assert r["n_backfill"][0].tolist() == [3, 0]
    assert r["y"][0, 0] >= 3


def test_make_design_and_guards():
    from carkinetics.escalation.designs import make_design
    from carkinetics.escalation.tite import TiteBOIN
    from carkinetics.exceptions import ModelSpecError
    d = make_design("boin-backfill", 4, 0.25, backfill_size=2, backfill_cap=9, n_earlystop=12,
                    unused=1)
    assert isinstance(d, BackfillBOIN) and d.backfill_cap == 9 and d.n_earlystop == 12
    t = make_design("tite-boin", 4, 0.3, max_pending_ratio=0.4, n_earlystop=15)
    assert isinstance(t, TiteBOIN) and t.max_pending_ratio == 0.4 and t.n_earlystop == 15
    with pytest.raises(ModelSpecError, match="simulate_tite_oc"):
        simulate_oc(t, [0.1, 0.2, 0.3, 0.4], n_trials=5, seed=1)
    with pytest.raises(ModelSpecError, match="simulate_tite_oc"):
        t.exact_oc([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ModelSpecError, match="backfill"):
        d.exact_oc([0.1, 0.2, 0.3, 0.4])
    # without backfill the exact OC is BOIN's
    off = BackfillBOIN(3, 0.3, n_cohorts=3)
    np.testing.assert_allclose(off.exact_oc([0.1, 0.3, 0.5]).selection,
                               BOIN(3, 0.3, n_cohorts=3).exact_oc([0.1, 0.3, 0.5]).selection,
                               rtol=0, atol=0)
