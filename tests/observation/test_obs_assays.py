"""Two assays of one latent level: routing, scales and the summed likelihood."""

import math

import numpy as np
import pandas as pd
import pytest
from obs_reference import ref_row

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.observation import (
    Assay,
    ErrorModel,
    ObservationModel,
    default_observation_model,
    m6_first_mask,
)

NAN = math.nan
FLOW_LOG_SCALE = math.log(1.0 / 30.0)


def model():
    return ObservationModel({
        "car_qpcr": Assay("car_qpcr", error=ErrorModel("log_additive"), sigma=0.5),
        "car_flow": Assay("car_flow", FLOW_LOG_SCALE, error=ErrorModel("combined"),
                          sigma=(0.4, 0.25)),
    })


def frame():
    """Interleaved qPCR and flow rows of two participants, each row with its own limits."""
    rows = [
        # id time endpoint     dv      cens lloq  limit   latent
        (1, 1.0, "car_qpcr", 900.0, 0, 50.0, NAN, 1000.0),
        (1, 1.0, "car_flow", 40.0, 0, 1.0, NAN, 1000.0),
        (1, 7.0, "car_qpcr", 5.0e4, -1, 50.0, NAN, 4.0e4),   # above ULOQ
        (1, 7.0, "car_flow", 1500.0, 0, 1.0, NAN, 4.0e4),
        (1, 60.0, "car_qpcr", 50.0, 1, 50.0, NAN, 30.0),
        (1, 60.0, "car_flow", 1.0, 1, 1.0, NAN, 30.0),
        (1, 90.0, "car_qpcr", 50.0, 1, 50.0, 10.0, 8.0),     # interval (10, 50]
        (2, 1.0, "car_qpcr", 20.0, 1, 20.0, NAN, 5.0),
        (2, 1.0, "car_flow", 2.0, 1, 2.0, NAN, 5.0),
        (2, 14.0, "car_flow", 60.0, 0, 2.0, NAN, 2500.0),
        (2, 14.0, "car_qpcr", 2600.0, 0, 20.0, NAN, 2500.0),
        (2, 28.0, "car_flow", 2.0, 1, 2.0, NAN, 0.0),         # latent 0
    ]
    return pd.DataFrame(rows, columns=["id", "time", "endpoint", "dv", "cens", "lloq",
                                       "limit", "latent"])


def hand(fr, method, first=None):
    """Per-row: expected = exp(log_scale) * latent, then the scipy.stats row likelihood."""
    spec = {"car_qpcr": ("log_additive", 0.5, 0.0), "car_flow": ("combined", (0.4, 0.25),
                                                                  FLOW_LOG_SCALE)}
    out = []
    for i, r in enumerate(fr.itertuples()):
        kind, sig, ls = spec[r.endpoint]
        pred = math.exp(ls) * r.latent
        if kind == "log_additive" and pred == 0.0:
            raise AssertionError("not used here")
        out.append(ref_row(kind, r.dv, pred, r.cens, sig, method, lloq=r.lloq, limit=r.limit,
                           first=bool(first[i]) if first is not None else False))
    return np.array(out)


@pytest.mark.parametrize("method", ["m1", "m2", "m3", "m4", "m5", "m6"])
def test_two_assay_loglik_is_the_sum_of_per_assay_hand_computations(method):
    fr = frame()
    first = m6_first_mask(fr.id, fr.time, fr.cens, fr.endpoint)
    got = model().loglik(fr, fr.latent.to_numpy(), method=method)
    want = hand(fr, method, first)
    np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-14)
    for ep in ("car_qpcr", "car_flow"):
        rows = (fr.endpoint == ep).to_numpy()
        assert got[rows].sum() == pytest.approx(want[rows].sum(), rel=1e-11)
    assert got.sum() == pytest.approx(want.sum(), rel=1e-11)


def test_m6_runs_are_per_endpoint_and_an_explicit_mask_is_used():
    fr = frame()
    first = m6_first_mask(fr.id, fr.time, fr.cens, fr.endpoint)
    # qPCR BLQ at t=60 and t=90 of participant 1 form one run: only t=60 counts
    assert first.tolist() == [False, False, False, False, True, True, False, True, True,
                              False, False, True]
    a = model().loglik(fr, fr.latent.to_numpy(), method="m6")
    b = model().loglik(fr, fr.latent.to_numpy(), method="m6", m6_first=first)
    np.testing.assert_array_equal(a, b)
    used = model().rows_used(fr, method="m6")
    np.testing.assert_array_equal(used, (fr.cens != 1).to_numpy() | first)


def test_rows_in_any_order():
    fr = frame()
    perm = np.random.default_rng(3).permutation(len(fr))
    a = model().loglik(fr, fr.latent.to_numpy(), method="m6")
    b = model().loglik(fr.iloc[perm], fr.latent.to_numpy()[perm], method="m6")
    np.testing.assert_allclose(b, a[perm], rtol=0, atol=0)


def test_expected_applies_each_assays_scale():
    fr = frame()
    got = model().expected(fr, fr.latent.to_numpy())
    want = np.where(fr.endpoint == "car_flow", fr.latent / 30.0, fr.latent)
    np.testing.assert_allclose(got, want, rtol=1e-14)


def test_unknown_endpoint_is_named():
    fr = frame()
    fr.loc[3, "endpoint"] = "car_flw"
    with pytest.raises(ModelSpecError, match=r"\['car_flw'\].*Did you mean 'car_flow'"):
        model().loglik(fr, fr.latent.to_numpy())
    with pytest.raises(ModelSpecError, match="car_flw"):
        model().expected(fr, fr.latent.to_numpy())


def test_shape_and_column_errors():
    fr = frame()
    with pytest.raises(ModelSpecError, match="latent_pred has shape"):
        model().loglik(fr, np.ones(3))
    with pytest.raises(DataError, match="'endpoint'"):
        model().loglik(fr.drop(columns="endpoint"), fr.latent.to_numpy())
    with pytest.raises(DataError, match="'id'"):
        model().loglik(fr.drop(columns="id"), fr.latent.to_numpy(), method="m6")
    with pytest.raises(ModelSpecError, match="m7"):
        model().loglik(fr, fr.latent.to_numpy(), method="m7")  # qPCR is log_additive


def test_default_model():
    om = default_observation_model()
    assert om.endpoints == ("car_qpcr", "car_flow")
    assert om.reference == "car_qpcr"
    assert om.assays["car_qpcr"].log_scale == 0.0
    assert om.assays["car_flow"].log_scale == pytest.approx(math.log(5000.0 / 1.5e5))
    assert [s.name for s in om.param_specs()] == [
        "sigma_log_car_qpcr", "sigma_log_car_flow", "log_scale_car_flow"]
    assert default_observation_model(vcn=2.0).assays["car_flow"].scale == pytest.approx(1 / 60)


def test_with_values_and_validation():
    om = model().with_values({"sigma_add_car_flow": 0.8, "log_scale_car_flow": -2.0})
    assert om.assays["car_flow"].sigma == (0.8, 0.25)
    assert om.assays["car_flow"].log_scale == -2.0
    assert om.assays["car_qpcr"] == model().assays["car_qpcr"]
    assert model() == model() and hash(model()) == hash(model())
    with pytest.raises(ModelSpecError, match="Did you mean 'sigma_log_car_qpcr'"):
        model().with_values({"sigma_log_car_qpc": 0.3})
    with pytest.raises(ModelSpecError, match="sigma_log_car_qpcr"):
        model().with_values({"sigma_log_car_qpcr": -0.3})


def test_assay_and_model_validation():
    em = ErrorModel("log_additive")
    with pytest.raises(ModelSpecError, match="one value per sigma"):
        Assay("car_qpcr", error=em, sigma=[0.5, 0.6])
    with pytest.raises(ModelSpecError, match="log_scale"):
        Assay("car_qpcr", math.inf, error=em, sigma=0.5)
    with pytest.raises(ModelSpecError, match="differs from its endpoint"):
        ObservationModel({"car_flow": Assay("car_qpcr", error=em, sigma=0.5)})
    with pytest.raises(ModelSpecError, match="at least one"):
        ObservationModel({})
    with pytest.raises(ModelSpecError, match="Did you mean 'car_qpcr'"):
        ObservationModel([Assay("car_qpcr", error=em, sigma=0.5)], reference="car_qpc")
    # an iterable of assays is keyed by endpoint
    om = ObservationModel([Assay("car_flow", error=em, sigma=0.5)])
    assert om.reference == "car_flow"


def test_jacobian_passes_through():
    fr = frame()
    a = model().loglik(fr, fr.latent.to_numpy(), jacobian=True)
    b = model().loglik(fr, fr.latent.to_numpy())
    q = ((fr.endpoint == "car_qpcr") & (fr.cens == 0)).to_numpy()
    np.testing.assert_allclose(a[q], b[q] - np.log(fr.dv[q]), rtol=1e-14)
    np.testing.assert_array_equal(a[~q], b[~q])
