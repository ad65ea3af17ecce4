"""3+3: exact operating characteristics against closed-form hand calculations."""

import numpy as np
import pytest

from carkinetics.escalation.base import TrialState
from carkinetics.escalation.oc import simulate_oc
from carkinetics.escalation.threeplusthree import ThreePlusThree
from carkinetics.exceptions import ModelSpecError

P = np.array([0.1, 0.25, 0.45])


def test_plain_convention_closed_form_three_doses():
    p, q = P, 1 - P
    p0 = q ** 3                      # 0/3
    p1 = 3 * p * q ** 2              # 1/3
    esc = p0 + p1 * q ** 3           # 0/3, or 1/3 then 0/3 (1/6)
    reach = np.array([1.0, esc[0], esc[0] * esc[1]])
    sel = np.array([esc[0] * (1 - esc[1]), esc[0] * esc[1] * (1 - esc[2]), esc.prod()])
    stop = 1 - esc[0]
    pts = reach * (3 + 3 * p1)
    dlts = reach * (3 * p + 3 * p * p1)
    ex = ThreePlusThree(3, "plain").exact_oc(P)
    np.testing.assert_allclose(ex.selection, sel, rtol=1e-12)
    assert ex.stop == pytest.approx(stop, rel=1e-12)
    np.testing.assert_allclose(ex.mean_patients, pts, rtol=1e-12)
    np.testing.assert_allclose(ex.mean_dlts, dlts, rtol=1e-12)


def test_expanded_convention_closed_form_two_doses():
    p, q = P[:2], 1 - P[:2]
    a0 = q ** 3                        # 0/3
    a1 = 3 * p * q ** 2 * q ** 3       # 1/3 then 0/3
    ok_exp = q ** 3 + 3 * p * q ** 2   # expansion of a 0/3 dose: <= 1 DLT among 3 more
    esc1 = a0[0] + a1[0]
    # top dose (2) cleared: at 0/3 it is expanded; at 1/6 it is the MTD
    top_ok = a0[1] * ok_exp[1] + a1[1]
    fail2 = 1 - esc1 * 0 - (a0[1] + a1[1])  # dose 2 exceeds on the first look (>= 2 of 3 or 6)
    # dose 2 fails after expansion of 0/3
    fail2_after = a0[1] * (1 - ok_exp[1])
    # dose 1 MTD: came from dose 2 failing; dose 1 has 6 (1/6 path) or is expanded (0/3 path)
    d1_ok = (a1[0] + a0[0] * ok_exp[0]) / esc1  # P(dose 1 OK with 6 | escalated)
    sel2 = esc1 * top_ok
    sel1 = esc1 * (fail2 + fail2_after) * d1_ok
    stop = 1 - sel1 - sel2
    ex = ThreePlusThree(2, "expanded").exact_oc(P[:2])
    np.testing.assert_allclose(ex.selection, [sel1, sel2], rtol=1e-12)
    assert ex.stop == pytest.approx(stop, rel=1e-12)


def test_one_of_six_escalates_and_two_of_six_stops():
    d = ThreePlusThree(3, "plain")
    dec = d.decide(TrialState.from_counts([6, 0, 0], [1, 0, 0]))
    assert dec.action == "escalate" and dec.next_dose == 1
    dec = d.decide(TrialState.from_counts([6, 6, 0], [1, 2, 0]))
    assert dec.action == "stop" and dec.mtd == 0
    dec = d.decide(TrialState.from_counts([3, 3, 0], [0, 1, 0]))
    assert dec.action == "stay" and dec.next_dose == 1
    e = ThreePlusThree(3)  # expanded is the default
    assert e.convention == "expanded"
    dec = e.decide(TrialState.from_counts([3, 3, 0], [0, 2, 0]))
    assert dec.action == "deescalate" and dec.next_dose == 0
    dec = e.decide(TrialState.from_counts([6, 3, 0], [2, 2, 0], current=0))
    assert dec.action == "stop" and dec.mtd is None


@pytest.mark.parametrize("conv", ["plain", "expanded"])
def test_simulation_within_mc_error_of_exact(conv):
    d = ThreePlusThree(4, conv)
    tox = [0.05, 0.15, 0.3, 0.5]
    ex = d.exact_oc(tox)
    T = 20000
    sim = simulate_oc(d, tox, n_trials=T, seed=9)
    se = np.sqrt(ex.selection * (1 - ex.selection) / T)
    assert np.all(np.abs(sim.selection - ex.selection) < 4 * se + 1e-12)
    assert abs(sim.stop - ex.stop) < 4 * np.sqrt(ex.stop * (1 - ex.stop) / T)


def test_bad_convention():
    with pytest.raises(ModelSpecError, match="convention"):
        ThreePlusThree(3, "strict")
