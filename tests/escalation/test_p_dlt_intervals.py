"""Posterior intervals of P(DLT) in the committee table, against independent computations:
a Beta closed form (BOIN), adaptive quadrature of the CRM posterior, and weighted sampling
of the exposure design's grid posterior."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate
from typer.testing import CliRunner

from carkinetics.cli import app
from carkinetics.escalation.base import TrialState, weighted_quantiles
from carkinetics.escalation.crm import CRM
from carkinetics.escalation.exposure import ExposureDesign


def run(*args):
    r = CliRunner().invoke(app, [str(a) for a in args])
    return r


def test_weighted_quantiles_equal_weights_are_hazen_quantiles():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(41, 3))
    got = weighted_quantiles(v, np.ones(41), [0.05, 0.5, 0.95])
    np.testing.assert_allclose(got, np.quantile(v, [0.05, 0.5, 0.95], axis=0,
                                                method="hazen"), rtol=1e-12)


def test_boin_interval_is_the_uniform_prior_beta_posterior(tmp_path):
    st = tmp_path / "state.csv"
    pd.DataFrame({"id": range(1, 10), "dose_level": [1, 1, 1, 2, 2, 2, 2, 2, 2],
                  "dlt": [0, 0, 0, 0, 1, 0, 0, 0, 0], "in_window": 0}).to_csv(st, index=False)
    out = tmp_path / "d.json"
    r = run("escalate", st, "--design", "boin", "--target", 0.3, "--n-doses", 3, "--out", out)
    assert r.exit_code == 0, r.output
    per = json.loads(out.read_text())["per_dose"]
    # 0/3 DLTs: Beta(1, 4), CDF 1 - (1 - p)^4 -> quantile 1 - (1 - q)^(1/4)
    assert per[0]["p_dlt_lower"] == pytest.approx(1 - 0.95 ** 0.25, rel=1e-10)
    assert per[0]["p_dlt_upper"] == pytest.approx(1 - 0.05 ** 0.25, rel=1e-10)
    # 1/6 DLTs: Beta(2, 6); its CDF by quadrature of the density at the limits
    dens = lambda p: p * (1 - p) ** 5 / (math.gamma(2) * math.gamma(6) / math.gamma(8))  # noqa: E731
    assert integrate.quad(dens, 0, per[1]["p_dlt_lower"])[0] == pytest.approx(0.05, abs=1e-9)
    assert integrate.quad(dens, 0, per[1]["p_dlt_upper"])[0] == pytest.approx(0.95, abs=1e-9)
    assert per[2]["p_dlt_lower"] is None and per[2]["p_dlt_upper"] is None  # no data


def test_crm_interval_against_adaptive_quadrature():
    d = CRM(4, target=0.3, skeleton=[0.08, 0.18, 0.3, 0.45], prior_var=1.34)
    n, y = np.array([3, 6, 3, 0]), np.array([0, 1, 2, 0])
    lo, hi = d.posterior_interval(n, y, 0.9)
    sk = np.log(d.skeleton)

    def post(a):  # unnormalised posterior of a (empiric model p_d = skeleton_d ** exp(a))
        lp = np.exp(a) * sk
        return math.exp(float(y @ lp + (n - y) @ np.log(-np.expm1(lp)))
                        - 0.5 * a * a / 1.34)

    z = integrate.quad(post, -10, 10, limit=200)[0]
    for k in range(4):
        # p_k decreases in a: P(p_k <= q) = P(a >= log(log q / log skeleton_k))
        for q, target in ((lo[k], 0.05), (hi[k], 0.95)):
            a_q = math.log(math.log(q) / sk[k])
            cdf = integrate.quad(post, a_q, 10, limit=200)[0] / z
            assert cdf == pytest.approx(target, abs=2e-3)


def test_exposure_design_interval_against_weighted_sampling():
    expo = np.array([2e3, 5e3, 1.2e4, 3e4])
    d = ExposureDesign(4, expo, target=0.3)
    st = TrialState(4, np.array([0, 0, 0, 1, 1, 1]), np.array([0, 0, 0, 0, 1, 0]),
                    exposure=np.array([1.5e3, 2.5e3, 2e3, 6e3, 9e3, 4e3]), current=1)
    lo, hi = d.posterior_interval(st, 0.9)
    w = d.posterior.weights(*d._exposures(st))
    rng = np.random.default_rng(7)
    draws = d._p_grid[rng.choice(w.size, size=400_000, p=w)]
    np.testing.assert_allclose(lo, np.quantile(draws, 0.05, axis=0), atol=0.01)
    np.testing.assert_allclose(hi, np.quantile(draws, 0.95, axis=0), atol=0.01)
    mean = d.posterior_summary(st)["p_mean"]
    assert np.all((lo < mean) & (mean < hi))
