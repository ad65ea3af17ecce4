"""Censoring likelihoods M1-M7, ULOQ and intervals against per-row scipy.stats references."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from obs_reference import obs_dist, ref_loglik, ref_row
from scipy import integrate
from scipy.special import erfcx
from scipy.stats import lognorm, norm

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.observation import (
    METHODS,
    ErrorModel,
    impute_blq,
    log_ndtr_diff,
    loglik_obs,
    m6_first_mask,
    ofv,
    rows_used,
)

NAN = math.nan
# Two participants, per-row LLOQs (20 and 5; one quantified row without an LLOQ), quantified,
# BLQ, above-ULOQ and interval-censored rows. ``first`` marks the first BLQ row of each run.
ROWS = [
    # id time dv      cens lloq  limit   pred    first
    (1, 1, 120.0, 0, 20.0, NAN, 100.0, False),
    (1, 2, 20.0, 1, 20.0, NAN, 30.0, True),
    (1, 3, 20.0, 1, 20.0, 2.0, 8.0, False),       # interval (2, 20]
    (1, 4, 45.0, 0, 20.0, NAN, 50.0, False),
    (1, 5, 20.0, 1, 20.0, NAN, 12.0, True),
    (1, 6, 1.0e4, -1, 20.0, NAN, 8000.0, False),  # above ULOQ
    (2, 1, 300.0, 0, 5.0, NAN, 250.0, False),
    (2, 2, 5.0, 1, 5.0, NAN, 2.0, True),
    (2, 3, 5.0, 1, 5.0, NAN, 0.5, False),
    (2, 4, 80.0, 0, 5.0, NAN, 60.0, False),
    (2, 5, 5.0e4, -1, 5.0, 2.0e5, 6.0e4, False),  # interval [5e4, 2e5)
    (2, 6, 5.0, 1, 5.0, NAN, 7.0, True),
    (2, 7, 7.0, 0, NAN, NAN, 9.0, False),         # quantified, no LLOQ recorded
]
COLS = ["id", "time", "dv", "cens", "lloq", "limit", "pred", "first"]
DF = pd.DataFrame(ROWS, columns=COLS)
N = len(DF)
ULOQ = np.where(DF.cens == -1, DF.dv, 1.0e4)

# sigma per kind: scalar, per-row array (two assays) or a (sigma_add, sigma_prop) pair
SIGMAS = {
    "log_additive": np.where(DF.id == 1, 0.6, 0.9),
    "proportional": 0.4,
    "additive": 0.35 * np.maximum(DF.dv.to_numpy(), 5.0),
    "combined": (3.0, 0.3),
}


def per_row(kind):
    s = SIGMAS[kind]
    if isinstance(s, tuple):
        return [s] * N
    return list(np.broadcast_to(s, (N,)))


def ours(kind, method, df=DF, jacobian=False, **kw):
    return loglik_obs(df.dv, df.pred, df.cens, error=ErrorModel(kind), sigma=SIGMAS[kind],
                      lloq=df.lloq, uloq=ULOQ, limit=df.limit, method=method,
                      m6_first=df["first"], jacobian=jacobian, **kw)


def reference(kind, method, jacobian=False):
    return ref_loglik(kind, DF.to_dict("records"), per_row(kind), method, jacobian=jacobian)


@pytest.mark.parametrize("jacobian", [False, True])
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("kind", ["log_additive", "proportional", "additive", "combined"])
def test_every_method_matches_per_row_reference(kind, method, jacobian):
    if kind == "log_additive" and method == "m7":
        with pytest.raises(ModelSpecError, match="m3"):
            ours(kind, method, jacobian=jacobian)
        return
    got = ours(kind, method, jacobian=jacobian)
    want = reference(kind, method, jacobian=jacobian)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(got))


def test_method_is_case_insensitive_and_checked():
    np.testing.assert_array_equal(ours("additive", "M3"), ours("additive", "m3"))
    with pytest.raises(ModelSpecError, match="Did you mean 'm3'"):
        ours("additive", "m33")


def test_m2_is_the_truncated_density_not_the_m3_term():
    """Regression for a peer's bug: 'M2' implemented as the M3 censored term."""
    for kind in SIGMAS:
        m2, m3 = ours(kind, "m2"), ours(kind, "m3")
        blq = DF.cens.to_numpy() == 1
        q = DF.cens.to_numpy() == 0
        assert np.all(m2[blq] == 0.0)
        assert np.all(m3[blq] < 0.0)
        # the peer's M2: M3's likelihood (BLQ rows as F(LLOQ), plain densities)
        peer = np.array(ref_loglik(kind, DF.to_dict("records"), per_row(kind), "m3"))
        assert not np.allclose(m2, peer)
        # quantified rows with an LLOQ are divided by 1 - F(LLOQ) of their own LLOQ
        for i in np.flatnonzero(q):
            r = DF.iloc[i]
            s = per_row(kind)[i]
            want = ref_row(kind, r.dv, r.pred, 0, s, "m1")
            if math.isfinite(r.lloq):
                dist_lp = ref_row(kind, r.lloq, r.pred, -1, s, "m1")  # log(1 - F(LLOQ))
                want -= dist_lp
                assert m2[i] > m3[i]
            assert m2[i] == pytest.approx(want, rel=1e-12)


def test_m2_uses_each_rows_own_lloq():
    kw = dict(error="additive", sigma=2.0, method="m2")
    a = loglik_obs([10.0, 10.0], [9.0, 9.0], [0, 0], lloq=[5.0, 8.0], **kw)
    assert a[0] == pytest.approx(norm.logpdf(10, 9, 2) - norm.logsf(5, 9, 2), rel=1e-12)
    assert a[1] == pytest.approx(norm.logpdf(10, 9, 2) - norm.logsf(8, 9, 2), rel=1e-12)


@pytest.mark.parametrize("kind", ["proportional", "additive", "combined"])
def test_m2_and_m4_are_proper_truncated_densities(kind):
    """Integrating exp(ll) of quantified values over the truncated support gives 1."""
    pred, lloq = 12.0, 10.0
    sig = SIGMAS[kind] if not isinstance(SIGMAS[kind], np.ndarray) else 4.0

    def dens(y, method):
        return math.exp(loglik_obs([y], [pred], [0], error=kind, sigma=sig, lloq=[lloq],
                                   method=method)[0])

    assert integrate.quad(dens, lloq, np.inf, args=("m2",))[0] == pytest.approx(1.0, rel=1e-8)
    assert integrate.quad(dens, 0.0, np.inf, args=("m4",))[0] == pytest.approx(1.0, rel=1e-8)


def test_m4_equals_m3_on_the_log_scale():
    m3, m4 = ours("log_additive", "m3"), ours("log_additive", "m4")
    np.testing.assert_allclose(m4, m3, rtol=1e-14, atol=0)
    # also with a prediction of 0 (before infusion) and a limit below 0
    kw = dict(error="log_additive", sigma=0.7, limit=[NAN, -1.0, NAN])
    a = loglik_obs([5.0, 5.0, 50.0], [0.0, 3.0, 40.0], [1, 1, 0], method="m3", **kw)
    b = loglik_obs([5.0, 5.0, 50.0], [0.0, 3.0, 40.0], [1, 1, 0], method="m4", **kw)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kind", ["proportional", "additive", "combined"])
def test_m4_differs_from_m3_on_the_linear_scale(kind):
    m3, m4 = ours(kind, "m3"), ours(kind, "m4")
    assert not np.allclose(m3, m4)
    # dividing by 1 - F(0) <= 1 raises the quantified and above-ULOQ terms
    kept = DF.cens.to_numpy() != 1
    assert np.all(m4[kept] >= m3[kept])


def test_m4_matches_quad_of_the_truncated_normal():
    pred, sd, lloq = 3.0, 2.5, 4.0
    p_blq = integrate.quad(lambda y: norm.pdf(y, pred, sd), 0, lloq)[0]
    p_pos = integrate.quad(lambda y: norm.pdf(y, pred, sd), 0, np.inf)[0]
    ll = loglik_obs([lloq], [pred], [1], error="additive", sigma=sd, method="m4")
    assert ll[0] == pytest.approx(math.log(p_blq / p_pos), rel=1e-9)


# -- above ULOQ --------------------------------------------------------------------------
@pytest.mark.parametrize("method", [m for m in METHODS if m != "m7"])
def test_above_uloq_is_right_censored_under_every_method(method):
    dv, pred, s = [1000.0, 1000.0], [700.0, 900.0], 0.5
    ll = loglik_obs(dv, pred, [-1, -1], error="log_additive", sigma=s, uloq=dv,
                    lloq=[10.0, 10.0], method=method, m6_first=[False, False])
    want = norm.logsf(np.log(dv), np.log(pred), s)
    if method == "m2":  # conditioned on y > LLOQ like the quantified rows
        want = want - norm.logsf(np.log(10.0), np.log(pred), s)
    np.testing.assert_allclose(ll, want, rtol=1e-12)
    assert rows_used([-1, -1], method, m6_first=[False, False]).all()


def test_uloq_defaults_to_dv_and_is_checked():
    a = loglik_obs([100.0], [80.0], [-1], error="additive", sigma=10.0)
    assert a[0] == pytest.approx(norm.logsf(100.0, 80.0, 10.0), rel=1e-12)
    with pytest.raises(DataError, match="uloq != dv"):
        loglik_obs([100.0], [80.0], [-1], error="additive", sigma=10.0, uloq=[200.0])
    with pytest.raises(DataError, match="lloq != dv"):
        loglik_obs([10.0], [8.0], [1], error="additive", sigma=1.0, lloq=[20.0])


# -- interval censoring --------------------------------------------------------------------
def dv_density(kind, pred, sigma):
    if kind == "log_additive":
        return lambda y: lognorm.pdf(y, s=sigma, scale=pred)
    dist, _ = obs_dist(kind, pred, sigma)
    return dist.pdf


@pytest.mark.parametrize("kind", ["log_additive", "proportional", "additive", "combined"])
def test_interval_censoring_matches_quad_of_the_density(kind):
    sig = {"log_additive": 0.8, "proportional": 0.4, "additive": 6.0, "combined": (2.0, 0.3)}[kind]
    pred = 15.0
    # BLQ in (3, 10]; above-ULOQ in [25, 60)
    ll = loglik_obs([10.0, 25.0], [pred, pred], [1, -1], error=kind, sigma=sig,
                    limit=[3.0, 60.0], method="m3")
    f = dv_density(kind, pred, sig)
    want = [integrate.quad(f, 3.0, 10.0, epsabs=0, epsrel=1e-12)[0],
            integrate.quad(f, 25.0, 60.0, epsabs=0, epsrel=1e-12)[0]]
    np.testing.assert_allclose(np.exp(ll), want, rtol=1e-9)


def test_interval_limit_on_the_wrong_side_is_a_data_error():
    with pytest.raises(DataError, match="limit >= dv"):
        loglik_obs([10.0], [5.0], [1], error="additive", sigma=1.0, limit=[12.0])
    with pytest.raises(DataError, match="limit <= dv"):
        loglik_obs([10.0], [5.0], [-1], error="additive", sigma=1.0, limit=[8.0])


def test_infinite_or_nan_limit_means_no_second_bound():
    kw = dict(error="additive", sigma=3.0, method="m3")
    a = loglik_obs([10.0, 50.0], [12.0, 40.0], [1, -1], limit=[-np.inf, np.inf], **kw)
    b = loglik_obs([10.0, 50.0], [12.0, 40.0], [1, -1], limit=[NAN, NAN], **kw)
    c = loglik_obs([10.0, 50.0], [12.0, 40.0], [1, -1], **kw)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, c)


# -- tails ---------------------------------------------------------------------------------
def log_phi_lower(x):
    """log Phi(-x) for x > 0 from the scaled complementary error function (not log_ndtr)."""
    return math.log(0.5 * erfcx(x / math.sqrt(2.0))) - 0.5 * x * x


def log_phi_asymptotic(x):
    """Mills-ratio series for log Phi(-x), x large."""
    s = 1 - 1 / x**2 + 3 / x**4 - 15 / x**6 + 105 / x**8 - 945 / x**10
    return -0.5 * x * x - math.log(x) - 0.5 * math.log(2 * math.pi) + math.log(s)


def test_reference_values_in_the_tail():
    assert log_phi_lower(40.0) == pytest.approx(-804.6084420137538, rel=1e-14)
    assert log_phi_asymptotic(40.0) == pytest.approx(-804.6084420137538, rel=1e-14)


def test_log_scale_tails_at_z_40_are_finite_and_exact():
    e = math.exp
    # BLQ with z = -40, ALQ with z = +40, upper-tail and lower-tail intervals
    ll = loglik_obs(
        [1.0, e(40.0), e(39.0), e(-39.0)],
        [e(40.0), 1.0, 1.0, 1.0],
        [1, -1, -1, 1],
        error="log_additive", sigma=1.0, limit=[NAN, NAN, e(40.0), e(-40.0)], method="m3",
    )
    assert np.all(np.isfinite(ll))
    t40, t39 = log_phi_lower(40.0), log_phi_lower(39.0)
    interval = t39 + math.log1p(-math.exp(t40 - t39))
    np.testing.assert_allclose(ll, [t40, t40, interval, interval], rtol=1e-13)
    # the naive formula underflows, so this test does test something
    with np.errstate(divide="ignore"):
        assert np.log(norm.cdf(40.0) - norm.cdf(39.0)) == -np.inf


def test_linear_scale_tails_are_finite():
    ll = loglik_obs([0.0, 80.0, 100.0], [40.0, 40.0, 60.0], [1, -1, 0], error="additive",
                    sigma=1.0, method="m3")
    assert ll[0] == pytest.approx(log_phi_lower(40.0), rel=1e-13)
    assert ll[1] == pytest.approx(log_phi_lower(40.0), rel=1e-13)
    assert ll[2] == pytest.approx(-800.0 - 0.5 * math.log(2 * math.pi), rel=1e-14)


def test_log_ndtr_diff_edges():
    t40, t39 = log_phi_lower(40.0), log_phi_lower(39.0)
    got = log_ndtr_diff([39.0, -40.0, -np.inf, -np.inf, 1.0, 3.0, np.inf],
                        [40.0, -39.0, np.inf, -40.0, 1.0, 2.0, np.inf])
    assert got[0] == pytest.approx(t39 + math.log1p(-math.exp(t40 - t39)), rel=1e-13)
    assert got[1] == pytest.approx(got[0], rel=1e-13)
    assert got[2] == 0.0
    assert got[3] == pytest.approx(t40, rel=1e-13)
    assert got[4] == -np.inf
    assert np.isnan(got[5])
    assert got[6] == -np.inf


@settings(max_examples=300, deadline=None)
@given(st.floats(-9, 9), st.floats(0, 9))
def test_log_ndtr_diff_matches_cdf_difference(a, width):
    b = a + width
    direct = norm.cdf(b) - norm.cdf(a)
    got = float(log_ndtr_diff(a, b))
    assert got <= 0.0
    if direct > 1e-6:
        assert got == pytest.approx(math.log(direct), abs=1e-9)
    assert got == pytest.approx(float(log_ndtr_diff(-b, -a)), abs=1e-12)


# -- predictions of zero -------------------------------------------------------------------
def test_prediction_zero_on_the_log_scale():
    ll = loglik_obs([5.0, 50.0, 1000.0, 5.0], [0.0, 0.0, 0.0, 0.0], [1, 0, -1, 1],
                    error="log_additive", sigma=0.5, limit=[NAN, NAN, NAN, 1.0])
    assert ll[0] == 0.0       # certainly below the LLOQ
    assert ll[1] == -np.inf   # a quantified value is impossible
    assert ll[2] == -np.inf
    assert ll[3] == -np.inf   # it is not in (1, 5] either


def test_prediction_zero_proportional_is_a_point_mass_at_zero():
    ll = loglik_obs([5.0, 50.0], [0.0, 0.0], [1, 0], error="proportional", sigma=0.3)
    assert ll[0] == 0.0 and ll[1] == -np.inf


# -- Jacobian ------------------------------------------------------------------------------
def test_jacobian_gives_the_lognormal_density():
    q = DF.cens.to_numpy() == 0
    s = SIGMAS["log_additive"]
    got = ours("log_additive", "m3", jacobian=True)[q]
    want = lognorm.logpdf(DF.dv[q], s=s[q], scale=DF.pred[q])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # censored rows are probabilities: unchanged
    np.testing.assert_array_equal(ours("log_additive", "m3", jacobian=True)[~q],
                                  ours("log_additive", "m3")[~q])


@pytest.mark.parametrize("kind", ["proportional", "additive", "combined"])
def test_jacobian_is_a_no_op_on_linear_scales(kind):
    np.testing.assert_array_equal(ours(kind, "m5", jacobian=True), ours(kind, "m5"))


# -- rows used, OFV ------------------------------------------------------------------------
def test_rows_used_counts_and_zero_contributions():
    c, first = DF.cens.to_numpy(), DF["first"].to_numpy()
    n_blq = int(np.sum(c == 1))  # 6, of which 4 start a run
    counts = {m: int(rows_used(c, m, m6_first=first).sum()) for m in METHODS}
    assert counts == {"m1": N - n_blq, "m2": N - n_blq, "m3": N, "m4": N, "m5": N,
                      "m6": N - 2, "m7": N}
    for m in METHODS:
        used = rows_used(c, m, m6_first=first)
        assert np.all(ours("additive", m)[~used] == 0.0)
    with pytest.raises(ModelSpecError, match="m6_first"):
        rows_used(c, "m6")


def test_ofv_is_minus_twice_the_sum():
    ll = ours("log_additive", "m3")
    assert ofv(ll) == pytest.approx(-2.0 * sum(reference("log_additive", "m3")), rel=1e-12)


# -- M6 runs -------------------------------------------------------------------------------
def test_m6_first_mask_on_constructed_runs_in_any_row_order():
    rng = np.random.default_rng(1)
    perm = rng.permutation(N)
    got = m6_first_mask(DF.id.to_numpy()[perm], DF.time.to_numpy()[perm],
                        DF.cens.to_numpy()[perm])
    np.testing.assert_array_equal(got, DF["first"].to_numpy()[perm])


def test_m6_first_mask_per_endpoint():
    ids = [1, 1, 1, 1, 1]
    times = [1.0, 2.0, 2.0, 3.0, 4.0]
    ep = ["car_qpcr", "car_flow", "car_qpcr", "car_flow", "car_qpcr"]
    cens = [1, 0, 1, 1, 0]
    # per endpoint: qpcr runs t1-t2 (first t1); flow run t3 (first)
    np.testing.assert_array_equal(m6_first_mask(ids, times, cens, ep),
                                  [True, False, False, True, False])
    # pooled over endpoints the quantified flow row at t2 comes before the qPCR BLQ at t2
    np.testing.assert_array_equal(m6_first_mask(ids, times, cens),
                                  [True, False, True, False, False])


# -- errors --------------------------------------------------------------------------------
def test_argument_errors():
    kw = dict(error="additive", sigma=1.0)
    with pytest.raises(ModelSpecError, match="lloq"):
        loglik_obs([1.0], [1.0], [0], method="m2", **kw)
    with pytest.raises(ModelSpecError, match="m6_first_mask"):
        loglik_obs([1.0], [1.0], [1], method="m6", **kw)
    with pytest.raises(DataError, match="cens"):
        loglik_obs([1.0], [1.0], [2], **kw)
    with pytest.raises(DataError, match="<= 0"):
        loglik_obs([0.0], [1.0], [0], error="log_additive", sigma=1.0)
    with pytest.raises(ModelSpecError, match="NaN"):
        loglik_obs([1.0], [NAN], [0], **kw)
    with pytest.raises(ModelSpecError, match="sigma_add"):
        loglik_obs([1.0], [1.0], [0], error="additive", sigma=-1.0)
    with pytest.raises(ModelSpecError, match="Did you mean 'additive'"):
        loglik_obs([1.0], [1.0], [0], error="aditive", sigma=1.0)
    with pytest.raises(ModelSpecError, match="m4"):
        loglik_obs([1.0], [1.0], [1], error="log_additive", sigma=1.0, method="m7")


def test_no_numpy_warnings_with_zero_predictions_and_every_method():
    # pytest turns warnings into errors; this exercises -inf paths for every kind
    for kind in SIGMAS:
        for m in METHODS:
            if kind == "log_additive" and m == "m7":
                continue
            pred = DF.pred.to_numpy().copy()
            pred[::3] = 0.0
            loglik_obs(DF.dv, pred, DF.cens, error=kind, sigma=SIGMAS[kind], lloq=DF.lloq,
                       limit=DF.limit, method=m, m6_first=DF["first"])


# -- imputed views -------------------------------------------------------------------------
def run_table():
    """cens 0 1 1 0 1 per participant; participant 2 with another LLOQ; rows shuffled."""
    cens = [0, 1, 1, 0, 1]
    rows = []
    for pid, lloq in ((1, 10.0), (2, 4.0)):
        for t, c in zip([0.5, 1.0, 2.0, 3.0, 4.0], cens, strict=True):
            rows.append((pid, t, lloq if c else 100.0 * pid + t, c, lloq,
                         1.0 if c and t == 2.0 else NAN))
    df = pd.DataFrame(rows, columns=["id", "time", "dv", "cens", "lloq", "limit"])
    return df.iloc[[7, 2, 0, 9, 4, 1, 3, 8, 5, 6]]


@pytest.mark.parametrize("method, new_dv", [("m5", "half"), ("m7", "zero")])
def test_impute_blq_m5_m7(method, new_dv):
    df = run_table()
    before = df.copy()
    out = impute_blq(df, method)
    pd.testing.assert_frame_equal(df, before)  # input untouched
    assert list(out.index) == list(df.index)
    blq = df.cens.to_numpy() == 1
    np.testing.assert_array_equal(out.imputed.to_numpy(), blq)
    expect = np.where(blq, df.lloq / 2 if new_dv == "half" else 0.0, df.dv)
    np.testing.assert_array_equal(out.dv.to_numpy(), expect)
    assert (out.cens == 0).all()
    assert out.cens.dtype == df.cens.dtype
    assert out.limit[out.imputed].isna().all()


def test_impute_blq_m6_keeps_first_of_each_run():
    df = run_table()
    before = df.copy()
    out = impute_blq(df, "m6").sort_values(["id", "time"])
    pd.testing.assert_frame_equal(df, before)
    # per participant: t=0.5 q, t=1 first BLQ -> LLOQ/2, t=2 dropped, t=3 q, t=4 first BLQ
    assert out[["id", "time"]].values.tolist() == [
        [1, 0.5], [1, 1.0], [1, 3.0], [1, 4.0], [2, 0.5], [2, 1.0], [2, 3.0], [2, 4.0]]
    assert out.imputed.tolist() == [False, True, False, True] * 2
    assert out.dv.tolist() == [100.5, 5.0, 103.0, 5.0, 200.5, 2.0, 203.0, 2.0]
    assert (out.cens == 0).all()


def test_impute_blq_errors():
    with pytest.raises(ModelSpecError, match="Did you mean 'm5'"):
        impute_blq(run_table(), "m55")
    with pytest.raises(DataError, match="'time'"):
        impute_blq(run_table().drop(columns="time"), "m6")


@pytest.mark.parametrize("method", ["m5", "m6", "m7"])
def test_imputed_view_reproduces_the_in_likelihood_imputation(method):
    df = run_table().assign(pred=lambda d: 0.8 * d.lloq + d.time)
    first = m6_first_mask(df.id, df.time, df.cens)
    kw = dict(error="combined", sigma=(1.0, 0.2))
    direct = loglik_obs(df.dv, df.pred, df.cens, method=method, m6_first=first, **kw)
    used = rows_used(df.cens, method, m6_first=first)
    view = impute_blq(df, method)
    via_view = loglik_obs(view.dv, view.pred, view.cens, method="m1", **kw)
    np.testing.assert_allclose(via_view, direct[used], rtol=1e-13)


@pytest.mark.parametrize("mid", [-30.0, -3.0, 0.0, 0.7, 4.0, 25.0])
@pytest.mark.parametrize("rel", [0.3, 0.999, 1.001, 3.0, 1e-9])
def test_log_ndtr_diff_narrow_intervals_match_quad(mid, rel):
    """Both sides of the switch to the midpoint expansion agree with quadrature."""
    w = rel * 1e-3 / (1.0 + abs(mid))
    a, b = mid - w / 2, mid + w / 2
    want = integrate.quad(norm.pdf, a, b, epsabs=0.0, epsrel=1e-13)[0]
    assert float(log_ndtr_diff(a, b)) == pytest.approx(math.log(want), abs=1e-9)


def test_fast_m3_path_equals_general_m4_path_on_log_scale():
    from scipy import stats

    """M3 takes the fast branch, M4 the general one; on the log scale they coincide."""
    rng = np.random.default_rng(42)
    n = 400
    pred = np.exp(rng.normal(3.0, 2.0, n))
    lloq = np.exp(rng.normal(3.0, 0.5, n))
    y = pred * np.exp(rng.normal(0.0, 0.7, n))
    cens = np.where(y < lloq, 1, np.where(y > 3e3, -1, 0))
    dv = np.where(cens == 1, lloq, np.where(cens == -1, 3e3, y))
    sigma = np.where(rng.random(n) < 0.5, 0.05, 0.7)  # far tails included
    for jac in (False, True):
        fast = loglik_obs(dv, pred, cens, error="log_additive", sigma=sigma, lloq=lloq,
                          method="m3", jacobian=jac)
        general = loglik_obs(dv, pred, cens, error="log_additive", sigma=sigma, lloq=lloq,
                             method="m4", jacobian=jac)
        unchecked = loglik_obs(dv, pred, cens, error="log_additive", sigma=sigma, lloq=lloq,
                               method="m3", jacobian=jac, check=False)
        np.testing.assert_allclose(fast, general, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(fast, unchecked)
        # hand-coded with scipy.stats, row by row
        hand = [stats.norm.logpdf(np.log(d), np.log(p), s) - (np.log(d) if jac else 0.0)
                if c == 0 else stats.norm.logcdf(np.log(d), np.log(p), s) if c == 1
                else stats.norm.logsf(np.log(d), np.log(p), s)
                for d, p, s, c in zip(dv, pred, sigma, cens, strict=True)]
        np.testing.assert_allclose(fast, hand, rtol=1e-9)
