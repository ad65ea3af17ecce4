"""CRM: posterior against scipy quadrature, skeleton by indifference intervals, rules."""

import numpy as np
import pytest
from scipy import integrate, special

from carkinetics.escalation.base import TrialState, draw_pool
from carkinetics.escalation.crm import CRM, crm_posterior, crm_skeleton


def _probs(a, sk, model):
    if model == "empiric":
        return sk ** np.exp(a)
    return special.expit(3 + np.exp(a) * (special.logit(sk) - 3))


@pytest.mark.parametrize("model", ["empiric", "logistic"])
@pytest.mark.parametrize("n,y", [([3, 6, 3, 0, 0], [0, 1, 2, 0, 0]),
                                 ([3, 0, 0, 0, 0], [0, 0, 0, 0, 0]),
                                 ([6, 9, 9, 6, 3], [0, 1, 3, 4, 3])])
def test_posterior_equals_quad(model, n, y):
    sk = crm_skeleton(0.05, 0.3, 3, 5, model)
    n, y = np.array(n), np.array(y)

    def joint(a):
        p = _probs(a, sk, model)
        return np.prod(p ** y * (1 - p) ** (n - y)) * np.exp(-a * a / 2.68) / np.sqrt(
            2 * np.pi * 1.34)

    z = integrate.quad(joint, -15, 15, epsabs=0, epsrel=1e-11, limit=200)[0]
    am = integrate.quad(lambda a: a * joint(a), -15, 15, epsabs=0, epsrel=1e-11,
                        limit=200)[0] / z
    pm = [integrate.quad(lambda a, i=i: _probs(a, sk, model)[i] * joint(a), -15, 15,
                         epsabs=0, epsrel=1e-11, limit=200)[0] / z for i in range(5)]
    post = crm_posterior(n, y, sk, model)
    assert post["marginal"] == pytest.approx(z, rel=1e-8)
    assert post["a_mean"] == pytest.approx(am, rel=1e-8, abs=1e-10)
    np.testing.assert_allclose(post["p_mean"], pm, rtol=1e-8)
    np.testing.assert_allclose(post["p_hat"], _probs(am, sk, model), rtol=1e-8)


@pytest.mark.parametrize("model", ["empiric", "logistic"])
def test_skeleton_indifference_intervals(model):
    target, delta, nu, k = 0.25, 0.05, 3, 5
    sk = crm_skeleton(delta, target, nu, k, model)
    assert sk[nu - 1] == pytest.approx(target)
    # At every switching point between doses i and i+1 the two are at target -+ delta:
    # solve p_{i+1}(a) = target + delta independently with brentq, then check p_i.
    for i in range(k - 1):
        a = __import__("scipy").optimize.brentq(
            lambda a, i=i: _probs(a, sk, model)[i + 1] - (target + delta), -10, 10)
        assert _probs(a, sk, model)[i] == pytest.approx(target - delta, abs=1e-10)


def test_no_skipping_and_coherence():
    c = CRM(5, 0.3, skeleton=[0.05, 0.1, 0.2, 0.3, 0.45], n_cohorts=10)
    # 0/3 at dose 1: the model would jump higher; no skipping -> dose 2
    dec = c.decide(TrialState(5, [0, 0, 0], [0, 0, 0]))
    assert dec.numbers["unrestricted_recommendation_level"] > 2
    assert dec.action == "escalate" and dec.next_dose == 1
    # a DLT in the last cohort: no escalation even if the estimate says so
    st = TrialState(5, [0] * 9 + [1] * 3, [0] * 9 + [1, 0, 0])
    post = c.posterior(st.n, st.y)
    assert int(np.argmin(np.abs(post["p_hat"] - 0.3))) > 1
    dec = c.decide(st)
    assert dec.next_dose == 1 and "coherence" in dec.rule


@pytest.mark.parametrize("opts", [{}, {"model": "logistic", "stop_cutoff": 0.9}])
def test_vectorised_equals_loop(opts):
    c = CRM(4, 0.3, n_cohorts=6, **opts)
    pool = draw_pool([0.2, 0.35, 0.5, 0.6], 200, c.n_slots, seed=8)
    a = c.simulate_pool(pool)
    b = c.simulate_loop(pool)
    for k in a:
        assert np.array_equal(a[k], b[k]), k


def test_exact_oc_and_simulation_agree():
    from carkinetics.escalation.oc import simulate_oc
    c = CRM(4, 0.3, n_cohorts=4, stop_cutoff=0.9)
    tox = [0.1, 0.25, 0.4, 0.55]
    ex = c.exact_oc(tox)
    assert ex.selection.sum() + ex.stop == pytest.approx(1.0, abs=1e-12)
    T = 10000
    sim = simulate_oc(c, tox, n_trials=T, seed=21)
    se = np.sqrt(ex.selection * (1 - ex.selection) / T)
    assert np.all(np.abs(sim.selection - ex.selection) < 4.5 * se)
    assert np.all(np.abs(sim.mean_patients - ex.mean_patients) < 4.5 * 6 / np.sqrt(T))
