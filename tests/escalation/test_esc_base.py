"""Trial state validation, delivered-dose counting, reproducible streams and common random
numbers."""

import numpy as np
import pytest

from carkinetics.escalation.base import Decision, TrialState, draw_pool, trial_seed
from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.crm import CRM
from carkinetics.escalation.oc import simulate_oc
from carkinetics.escalation.threeplusthree import ThreePlusThree
from carkinetics.exceptions import DataError, ModelSpecError


def test_state_counts_by_delivered_level_and_excludes_pending():
    st = TrialState(3, dose_level=[0, 0, 0, 1, 1, 1, 1], dlt=[0, 0, 0, 1, 0, 0, 0],
                    delivered_level=[0, 0, 0, 1, 0, 1, 1], pending=[0, 0, 0, 0, 0, 0, 1])
    assert st.n.tolist() == [4, 2, 0]
    assert st.y.tolist() == [0, 1, 0]
    assert st.n_pending.tolist() == [0, 1, 0]
    assert st.n_shortfall == 1 and st.current == 1


@pytest.mark.parametrize("kw,match", [
    ({"dose_level": [0, 3], "dlt": [0, 0]}, "dose level 4 is not in the design"),
    ({"dose_level": [0, 1], "dlt": [0, 1], "pending": [0, 1]}, "inside the DLT window"),
    ({"dose_level": [0, 1], "dlt": [0, 0], "delivered_level": [1, 1]}, "above assigned"),
    ({"dose_level": [0, 1], "dlt": [0, 2]}, "expected 0 or 1"),
    ({"dose_level": [0, 1], "dlt": [0]}, "1 values for 2"),
])
def test_state_errors(kw, match):
    with pytest.raises(DataError, match=match):
        TrialState(3, **kw)


def test_design_rejects_state_of_other_size():
    with pytest.raises(DataError, match="dose levels"):
        BOIN(4).decide(TrialState.from_counts([3, 0, 0], [0, 0, 0]))


def test_decision_validates_action():
    with pytest.raises(ModelSpecError):
        Decision("jump", 1, 0, "")
    d = Decision("escalate", 1, 0, "0/3", {"n": np.int64(3)})
    assert d.to_dict()["next_dose_level"] == 2 and d.to_dict()["numbers"]["n"] == 3


def test_trial_streams_are_spawn_children():
    root = np.random.SeedSequence(42)
    kids = root.spawn(3)
    assert trial_seed(42, 2).generate_state(4).tolist() == kids[2].generate_state(4).tolist()


def test_pool_chunks_equal_whole_pool():
    whole = draw_pool([0.1, 0.3, 0.5], 10, 9, seed=3)
    parts = [draw_pool([0.1, 0.3, 0.5], 4, 9, seed=3, first_trial=s) for s in (0, 4)]
    parts.append(draw_pool([0.1, 0.3, 0.5], 2, 9, seed=3, first_trial=8))
    assert np.array_equal(np.concatenate([p.dlt for p in parts]), whole.dlt)


def test_workers_and_chunking_do_not_change_results():
    d = BOIN(4, 0.3, n_cohorts=8, n_earlystop=12)
    tox = [0.1, 0.2, 0.35, 0.5]
    one = simulate_oc(d, tox, n_trials=900, seed=7, workers=1, chunk_trials=1000)
    two = simulate_oc(d, tox, n_trials=900, seed=7, workers=2, chunk_trials=250)
    assert one.to_dict() == two.to_dict()


def test_common_random_numbers_same_participants():
    # The same pool drives two designs; the first cohort (3 participants at dose 1, slots 0-2)
    # is identical, so the DLT count at dose 1 after cohort 1 is the same in every trial.
    pool = draw_pool([0.2, 0.3, 0.45, 0.6], 300, 30, seed=4)
    b = BOIN(4, 0.3, n_cohorts=1).simulate_pool(pool)
    c = CRM(4, 0.3, n_cohorts=1).simulate_pool(pool)
    t = ThreePlusThree(4).simulate_pool(pool)
    first = pool.dlt[:, 0, :3].sum(axis=1)
    assert np.array_equal(b["y"][:, 0], first) and np.array_equal(c["y"][:, 0], first)
    assert np.array_equal(np.minimum(t["y"][:, 0], 9), t["y"][:, 0])
    assert np.all(t["y"][:, 0] >= first)
    # paired comparison on a common pool gives the same OC as simulate_oc with that seed
    d = BOIN(4, 0.3, n_cohorts=10)
    pool = draw_pool([0.2, 0.3, 0.45, 0.6], 500, d.n_slots, seed=4)
    a = simulate_oc(d, pool=pool, true_tox=[0.2, 0.3, 0.45, 0.6])
    e = simulate_oc(d, [0.2, 0.3, 0.45, 0.6], n_trials=500, seed=4)
    assert a.to_dict() == e.to_dict()


def test_bad_probabilities():
    with pytest.raises(ModelSpecError, match="outside"):
        simulate_oc(BOIN(2), [0.1, 1.2], n_trials=10, seed=1)
