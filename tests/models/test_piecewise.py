"""Stein 2019 piecewise model: published numbers, parameterisations, closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from carkinetics.models import get_model
from carkinetics.models.library import get_card
from carkinetics.models.piecewise import clinical_to_rate, rate_to_clinical


@pytest.fixture
def stein():
    return get_card("stein_2019").params()


def test_stein_published_derived_numbers(stein):
    # Source: Stein AM et al. CPT Pharmacometrics Syst Pharmacol 2019;8:285, abstract (R):
    # "The doubling time, initial decline half-life, and terminal half-life ... were 0.78,
    # 4.3, and 220 days" (rounded). Typical values: Stein 2019 Table 1 via nlmixr2lib (S).
    d = get_model("piecewise").derived(stein)
    assert round(float(d["doubling_time"]), 2) == 0.78
    assert round(float(d["t_half_alpha"]), 1) == 4.3
    assert round(float(d["t_half_beta"]), -1) == 220.0
    # the same numbers written out by hand
    assert math.isclose(float(d["doubling_time"]), math.log(2) * 9.3 / math.log(3900),
                        rel_tol=1e-14)
    assert math.isclose(float(d["t_half_beta"]), math.log(2) / 0.0032, rel_tol=1e-14)


def test_predictions_match_hand_formula(stein):
    m = get_model("piecewise")
    t = np.array([0.0, 2.0, 9.29, 9.3, 10.0, 50.0, 700.0])
    rho, r0 = math.log(3900) / 9.3, 24000 / 3900
    def decline(s):
        return 24000 * (0.9921 * math.exp(-0.16 * s) + 0.0079 * math.exp(-0.0032 * s))

    expect = [r0 * math.exp(rho * s) if s < 9.3 else decline(s - 9.3) for s in t]
    np.testing.assert_allclose(m.predict(t, stein), expect, rtol=1e-13)
    # hand-integrated AUC to infinity
    auc_inf = r0 * (3900 - 1) / rho + 24000 * (0.9921 / 0.16 + 0.0079 / 0.0032)
    np.testing.assert_allclose(m.derived(stein)["auc_0_inf"], auc_inf, rtol=1e-13)


def test_clinical_rate_round_trip(stein):
    rng = np.random.default_rng(1)
    p = {k: v * np.exp(0.3 * rng.standard_normal(50)) if k != "fb" else np.full(50, v)
         for k, v in stein.items()}
    back = rate_to_clinical(clinical_to_rate(p))
    for k in p:
        np.testing.assert_allclose(back[k], p[k], rtol=1e-13)
    rate = clinical_to_rate(p)
    again = clinical_to_rate(rate_to_clinical(rate))
    for k in rate:
        np.testing.assert_allclose(again[k], rate[k], rtol=1e-13)
    np.testing.assert_allclose(rate["r0"], p["cmax"] / p["foldx"], rtol=1e-15)
    np.testing.assert_allclose(rate["rho"], np.log(p["foldx"]) / p["tmax"], rtol=1e-15)


def test_rate_model_equals_clinical(stein):
    pw, pr = get_model("piecewise"), get_model("piecewise_rate")
    rate = clinical_to_rate(stein)
    t = np.array([-1.0, 0.0, 3.0, 9.3, 20.0, 300.0])
    np.testing.assert_allclose(pr.predict(t, rate), pw.predict(t, stein), rtol=1e-13)
    np.testing.assert_allclose(pr.log_predict(t, rate)[1:], pw.log_predict(t, stein)[1:],
                               rtol=1e-13)
    d_rate, d_clin = pr.derived(rate, below=[50.0]), pw.derived(stein, below=[50.0])
    for key, val in d_clin.items():
        np.testing.assert_allclose(d_rate[key], val, rtol=1e-12, err_msg=key)
    np.testing.assert_allclose(pr.auc(2.0, 40.0, rate), pw.auc(2.0, 40.0, stein), rtol=1e-13)
