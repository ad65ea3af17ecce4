"""ErrorModel: metadata, moments, sigma forms, densities (against hand formulas and scipy)."""

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import lognorm, norm

from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.observation import ERROR_KINDS, ErrorModel, loglik_obs

PRED = np.array([0.0, 0.5, 20.0, 3.0e4])


def test_param_names_and_specs():
    names = {k: ErrorModel(k).param_names for k in ERROR_KINDS}
    assert names == {"log_additive": ("sigma_log",), "proportional": ("sigma_prop",),
                     "additive": ("sigma_add",), "combined": ("sigma_add", "sigma_prop")}
    specs = ErrorModel("combined", unit="copies/ug", typical=(5.0, 0.2)).params
    assert all(isinstance(s, ParameterSpec) for s in specs)
    assert [(s.name, s.unit, s.typical, s.transform) for s in specs] == [
        ("sigma_add", "copies/ug", 5.0, "log"), ("sigma_prop", "1", 0.2, "log")]
    assert specs[0].lower == 0.0 and specs[0].upper == math.inf
    assert ErrorModel().params[0].name == "sigma_log"
    assert ErrorModel().params[0].typical == 0.5


def test_bad_kind_and_typical():
    with pytest.raises(ModelSpecError, match="Did you mean 'proportional'"):
        ErrorModel("proportionnal")
    with pytest.raises(ModelSpecError, match="expected 2 value"):
        ErrorModel("combined", typical=(1.0,))
    with pytest.raises(ModelSpecError, match="outside its bounds"):
        ErrorModel("log_additive", typical=(-1.0,))


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ErrorModel().kind = "additive"


@pytest.mark.parametrize("kind, sigma, sd", [
    ("proportional", 0.3, lambda f: 0.3 * f),
    ("additive", 2.0, lambda f: np.full_like(f, 2.0)),
    ("combined", (2.0, 0.3), lambda f: np.sqrt(4.0 + 0.09 * f * f)),
])
def test_moments_linear(kind, sigma, sd):
    mean, s = ErrorModel(kind).moments(PRED, sigma)
    np.testing.assert_array_equal(mean, PRED)
    np.testing.assert_allclose(s, sd(PRED), rtol=1e-15)


def test_moments_log_additive_with_zero_prediction():
    mean, s = ErrorModel("log_additive").moments(PRED, 0.4)
    assert mean[0] == -np.inf
    np.testing.assert_allclose(mean[1:], np.log(PRED[1:]), rtol=1e-15)
    np.testing.assert_array_equal(s, 0.4)
    with pytest.raises(ModelSpecError, match=">= 0"):
        ErrorModel("log_additive").moments([-1.0], 0.4)


def test_transform():
    em = ErrorModel("log_additive")
    out = em.transform([0.0, -1.0, math.e, np.nan])
    assert out[0] == -np.inf and out[1] == -np.inf and out[2] == pytest.approx(1.0)
    assert np.isnan(out[3])
    np.testing.assert_allclose(em.untransform(out[2:3]), [math.e])
    np.testing.assert_array_equal(ErrorModel("additive").transform([-1.0, 2.0]), [-1.0, 2.0])


def test_combined_sigma_forms_agree():
    em = ErrorModel("combined")
    n = 4
    ref = em.moments(PRED, (2.0, 0.3))[1]
    for form in ([2.0, 0.3], np.array([2.0, 0.3]), np.tile([2.0, 0.3], (n, 1)),
                 {"sigma_add": 2.0, "sigma_prop": 0.3}, (np.full(n, 2.0), 0.3)):
        np.testing.assert_array_equal(em.moments(PRED, form)[1], ref)


def test_sigma_errors():
    with pytest.raises(ModelSpecError, match="shape"):
        ErrorModel("combined").sigmas(np.ones((4, 3)))
    with pytest.raises(ModelSpecError, match="both 0"):
        ErrorModel("combined").sigmas((0.0, 0.0))
    with pytest.raises(ModelSpecError, match="Did you mean 'sigma_prop'"):
        ErrorModel("combined").sigmas({"sigma_add": 1.0, "sigma_pro": 0.1})
    with pytest.raises(ModelSpecError, match="not a tuple"):
        ErrorModel("additive").sigmas((1.0, 2.0))
    with pytest.raises(ModelSpecError, match="sigma_log"):
        ErrorModel("log_additive").sigmas([0.5, np.inf])
    # a combined model may fix one component at 0
    assert ErrorModel("combined").sigmas((0.0, 0.2))[0] == 0.0


def test_logpdf_against_scipy():
    y = np.array([3.0, 40.0, 1.0e4])
    f = np.array([2.0, 30.0, 2.5e4])
    em = ErrorModel("log_additive")
    np.testing.assert_allclose(em.logpdf(y, f, 0.7), norm.logpdf(np.log(y), np.log(f), 0.7),
                               rtol=1e-13)
    np.testing.assert_allclose(em.logpdf(y, f, 0.7, jacobian=True),
                               lognorm.logpdf(y, s=0.7, scale=f), rtol=1e-13)
    np.testing.assert_allclose(ErrorModel("combined").logpdf(y, f, (1.0, 0.2)),
                               norm.logpdf(y, f, np.sqrt(1.0 + (0.2 * f) ** 2)), rtol=1e-13)


def test_per_row_combined_sigma_in_the_likelihood():
    """Two assays with different (sigma_add, sigma_prop) in one call, vs a row loop."""
    dv = np.array([12.0, 4.0, 300.0, 4.0])
    pred = np.array([10.0, 6.0, 200.0, 1.0])
    cens = np.array([0, 1, -1, 1])
    sig = np.array([[1.0, 0.2], [1.0, 0.2], [5.0, 0.1], [5.0, 0.1]])
    got = loglik_obs(dv, pred, cens, error="combined", sigma=sig, method="m3")
    want = []
    for d, p, c, (sa, sp) in zip(dv, pred, cens, sig, strict=True):
        dist = norm(p, math.hypot(sa, sp * p))
        want.append({0: dist.logpdf(d), 1: dist.logcdf(d), -1: dist.logsf(d)}[int(c)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
