"""Censoring likelihoods for data below/above the limits of quantification (Beal 2001).

The per-observation log-likelihood :func:`loglik_obs` is the single source of truth that the
individual fits, population fits, PyMC models and diagnostics use. Censoring lives in the
data (``dv == lloq`` and ``cens == 1`` on a BLQ row, ``dv == uloq`` and ``cens == -1`` on an
above-ULOQ row); the imputing methods M5-M7 are applied inside the likelihood, or as a
derived table by :func:`impute_blq`.

Notation: ``F`` and ``f`` are the CDF and density of the error model's normal distribution
on its observation scale (see :mod:`carkinetics.observation.error`), evaluated for the row's
prediction and sigma; ``L`` is the row's LLOQ (its dv on a BLQ row) and ``U`` its ULOQ (its
dv on an above-ULOQ row).

======  ========================================  ==========================================
method  BLQ rows (``cens == 1``)                  quantified rows (``cens == 0``)
======  ========================================  ==========================================
m1      discarded (contribute 0)                  ``f(y)``
m2      discarded (contribute 0)                  ``f(y) / (1 - F(L))``, truncated at the
                                                  row's own LLOQ
m3      ``F(L)``                                  ``f(y)``
m4      ``(F(L) - F(0)) / (1 - F(0))``            ``f(y) / (1 - F(0))``
m5      ``f(L/2)``: replaced by ``L/2``            ``f(y)``
m6      first BLQ of a run: ``f(L/2)``; later     ``f(y)``
        BLQ rows of the run discarded
m7      ``f(0)``: replaced by 0 (impossible for   ``f(y)``
        ``log_additive``: raises)
======  ========================================  ==========================================

Above-ULOQ rows (``cens == -1``) are right-censored under **every** method, M1 included:
they contribute ``1 - F(U)``. The values are known to be high, and discarding them would
bias the peak downwards; none of Beal's methods discards them. Under the truncated methods
(M2, M4) they are divided by the same normaliser as the quantified rows (``1 - F(L)`` and
``1 - F(0)``), so that the retained rows follow one truncated distribution.

Interval censoring (NONMEM/Monolix ``LIMIT``): a BLQ row with a finite ``limit`` lies in
``(limit, dv]`` and contributes ``F(dv) - F(limit)`` under M3 (under M4, with ``limit``
raised to at least 0, divided by ``1 - F(0)``); an above-ULOQ row with a finite ``limit``
lies in ``[dv, limit)`` and contributes ``F(limit) - F(dv)`` (under every method).
``limit`` is NaN or infinite where there is no second bound. Methods M1, M2 and M5-M7 ignore
``limit`` on BLQ rows (they discard or impute them).

On the log scale (``log_additive``) ``F(0) = 0``, so **M4 is identical to M3**. M6 runs
are consecutive BLQ rows of one participant (and endpoint) in time order; see
:func:`m6_first_mask`.

References
----------
Beal SL. Ways to fit a PK model with some data below the quantification limit. J
Pharmacokinet Pharmacodyn 2001;28:481-504.
Ahn JE, Karlsson MO, Dunne A, Ludden TM. Likelihood based approaches to handling data
below the quantification limit using NONMEM VI. J Pharmacokinet Pharmacodyn
2008;35:401-421.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

from carkinetics._validation import check_option
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.observation._normal import censored_normal_terms
from carkinetics.observation.error import (
    ErrorModel,
    SigmaLike,
    _as_error,
    normal_logpdf,
    standardize,
)

__all__ = [
    "METHODS",
    "log_ndtr_diff",
    "loglik_obs",
    "rows_used",
    "ofv",
    "m6_first_mask",
    "impute_blq",
]

METHODS: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
_LN2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# -- numerics ----------------------------------------------------------------------------
def _log1mexp(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate near 0 and for very negative ``x``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        near = np.log(-np.expm1(np.minimum(x, 0.0)))
        far = np.log1p(-np.exp(np.minimum(x, -_LN2)))
    return np.where(x > -_LN2, near, far)


def log_ndtr_diff(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Stable ``log(Phi(b) - Phi(a))`` for standard-normal ``a <= b`` (elementwise).

    When both lie in the upper tail (``a > 0``) the symmetry ``Phi(b) - Phi(a) =
    Phi(-a) - Phi(-b)`` moves the computation to the lower tail, where
    :func:`scipy.special.log_ndtr` keeps full relative precision; the difference is then
    ``log Phi(hi) + log1p(-exp(log Phi(lo) - log Phi(hi)))``. Intervals so narrow that the
    two log-CDFs agree to rounding (``(b - a)(1 + |m|) < 1e-3``, ``m`` the midpoint) use the
    density at the midpoint with its second-order correction instead. The result is finite
    wherever the probability is representable (e.g. ``log_ndtr_diff(39, 40)`` is about
    -765.08).

    Parameters
    ----------
    a, b : array_like
        Lower and upper standardised bounds; ``-inf``/``+inf`` mean no bound.

    Returns
    -------
    ndarray
        ``-inf`` where ``a == b``; NaN where ``a > b`` or an input is NaN.
    """
    a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
    upper = a > 0
    hi = np.where(upper, -a, b)
    lo = np.where(upper, -b, a)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lhi = log_ndtr(hi)
        llo = log_ndtr(lo)
        out = lhi + _log1mexp(llo - lhi)
        # very narrow intervals: the two log-CDFs agree to the last bits, so integrate the
        # density instead: Phi(b) - Phi(a) = phi(m) w (1 + (m^2 - 1) w^2 / 24 + O((m w)^4))
        mid, w = 0.5 * (a + b), b - a
        narrow = (w > 0) & np.isfinite(w) & (w * (1.0 + np.abs(mid)) < 1e-3)
        taylor = (np.log(np.where(narrow, w, 1.0)) - 0.5 * mid * mid - _HALF_LOG_2PI
                  + np.log1p((mid * mid - 1.0) * w * w / 24.0))
    out = np.where(narrow, taylor, out)
    out = np.where(a == b, -np.inf, out)
    return np.where((a > b) | np.isnan(a) | np.isnan(b), np.nan, out)


# -- validation helpers ------------------------------------------------------------------
def _method(method: str) -> str:
    m = method.lower() if isinstance(method, str) else method
    return check_option("method", m, METHODS, exc=ModelSpecError)


def _rows(mask: NDArray[np.bool_], limit: int = 5) -> str:
    idx = np.flatnonzero(np.ravel(mask))
    shown = ", ".join(str(i) for i in idx[:limit]) + (", ..." if idx.size > limit else "")
    return f"{idx.size} row{'s' if idx.size != 1 else ''} (positions {shown})"


def _cens_array(cens: ArrayLike) -> NDArray[np.int64]:
    c = np.asarray(cens)
    try:
        cf = c.astype(float)
    except (TypeError, ValueError):
        raise DataError(f"cens must be numeric codes 0, 1 or -1; got dtype {c.dtype}.") from None
    bad = ~np.isin(cf, (0.0, 1.0, -1.0))
    if np.any(bad):
        raise DataError(
            f"cens: {_rows(bad)} hold values other than 0 (quantified), 1 (below LLOQ) or -1 "
            f"(above ULOQ), e.g. {cf[bad].ravel()[0]!r}."
        )
    return cf.astype(np.int64)


def _optional(values: ArrayLike | None, fill: float) -> NDArray[np.float64]:
    if values is None:
        return np.asarray(fill, dtype=float)
    return np.asarray(values, dtype=float)


# -- the likelihood ----------------------------------------------------------------------
def loglik_obs(
    dv: ArrayLike,
    pred: ArrayLike,
    cens: ArrayLike,
    *,
    error: ErrorModel | str,
    sigma: SigmaLike,
    lloq: ArrayLike | None = None,
    uloq: ArrayLike | None = None,
    limit: ArrayLike | None = None,
    method: str = "m3",
    m6_first: ArrayLike | None = None,
    jacobian: bool = False,
    check: bool = True,
) -> NDArray[np.float64]:
    """Per-observation log-likelihood with censoring (Beal's M1-M7, ULOQ, intervals).

    ======  ========================================  ======================================
    method  BLQ rows (``cens == 1``)                  quantified rows (``cens == 0``)
    ======  ========================================  ======================================
    m1      discarded (0)                             ``log f(y)``
    m2      discarded (0)                             ``log f(y) - log(1 - F(L))``
    m3      ``log F(L)``                              ``log f(y)``
    m4      ``log(F(L) - F(0)) - log(1 - F(0))``      ``log f(y) - log(1 - F(0))``
    m5      ``log f(L/2)``                            ``log f(y)``
    m6      first of a run ``log f(L/2)``, rest 0     ``log f(y)``
    m7      ``log f(0)`` (not for ``log_additive``)   ``log f(y)``
    ======  ========================================  ======================================

    Above-ULOQ rows contribute ``log(1 - F(U))`` under every method (minus the M2/M4
    normaliser); see the module docstring for interval censoring through ``limit``.

    Parameters
    ----------
    dv : array_like
        Observations on the dv scale. A BLQ row holds its LLOQ, an above-ULOQ row its ULOQ.
    pred : array_like
        Predictions on the dv scale (may be 0, e.g. before infusion).
    cens : array_like of {0, 1, -1}
        0 quantified, 1 below the LLOQ, -1 above the ULOQ.
    error : ErrorModel or str
        Residual-error model (or its kind).
    sigma : scalar, array_like, tuple or mapping
        Sigma(s) of the error model: scalar or per-row array (e.g. two assays with different
        sigmas); for ``combined`` a pair ``(sigma_add, sigma_prop)`` or an ``(n, 2)`` array.
        See :meth:`ErrorModel.sigmas`.
    lloq : array_like, optional
        Per-row LLOQ. Needed by M2 (the truncation point of each quantified row; NaN means
        no truncation). On BLQ rows it must equal ``dv``.
    uloq : array_like, optional
        Per-row ULOQ; on above-ULOQ rows it must equal ``dv`` (which is used).
    limit : array_like, optional
        Second bound for interval censoring (NONMEM/Monolix ``LIMIT``): a BLQ row lies in
        ``(limit, dv]``, an above-ULOQ row in ``[dv, limit)``. NaN/inf means no bound.
    method : {"m1", "m2", "m3", "m4", "m5", "m6", "m7"}, default "m3"
        Censoring method (case-insensitive).
    m6_first : array_like of bool, optional
        For M6 (required): marks the first BLQ row of each run; see :func:`m6_first_mask`.
    jacobian : bool, default False
        If True, density terms are on the dv scale (for ``log_additive``, ``log y`` is
        subtracted: the log-normal density), so that OFV/AIC compare across error models.
        By default they are on the error model's observation scale (``log dv`` for
        ``log_additive``), as in NONMEM with log-transformed data. Probabilities of censored
        rows are unaffected.
    check : bool, default True
        Check the data (finite dv, censored rows carrying their limit, limits on the right
        side). Fitters that validated the same rows once pass ``False`` inside their loops
        (PKNCA's ``check=FALSE`` idea); the numbers are the same either way.

    Returns
    -------
    ndarray
        Log-likelihood of each row (broadcast shape of the inputs); 0 for rows the method
        discards (see :func:`rows_used`). ``-inf`` where the data are impossible under the
        prediction (e.g. a quantified value with a prediction of 0 on the log scale).

    Raises
    ------
    ModelSpecError
        Unknown method or error kind, bad sigma, NaN or (log scale) negative predictions, M2
        without ``lloq``, M6 without ``m6_first``, or M7 with ``log_additive``.
    DataError
        Bad cens codes, non-finite dv, dv <= 0 on the log scale, lloq/uloq that differ from
        dv on censored rows, or a ``limit`` on the wrong side of dv.

    Examples
    --------
    >>> ll = loglik_obs([100.0, 10.0], [80.0, 5.0], [0, 1], error="log_additive", sigma=0.5)
    >>> ll.round(4).tolist()
    [-0.3254, -0.0865]
    """
    em = _as_error(error)
    m = _method(method)
    if m == "m7" and em.log_scale:
        raise ModelSpecError(
            "Invalid method='m7' with the log_additive error model: M7 replaces BLQ values by "
            "0, and log(0) = -inf has no density under a log-normal error. Use method='m3' "
            "(or 'm4', identical on the log scale) to keep the BLQ rows as censored."
        )
    if m == "m2" and lloq is None:
        raise ModelSpecError(
            "method='m2' needs the per-row lloq: each quantified row's density is truncated "
            "at its own LLOQ. Pass lloq=..."
        )
    if m == "m6" and m6_first is None:
        raise ModelSpecError(
            "method='m6' needs m6_first, the mask of the first BLQ row of each run; compute it "
            "with m6_first_mask(ids, times, cens)."
        )
    # trusted callers (check=False: rows validated once) skip the code check of cens
    c = _cens_array(cens) if check else np.asarray(cens, dtype=np.int64)
    try:
        arrays = np.broadcast_arrays(
            np.asarray(dv, dtype=float), np.asarray(pred, dtype=float), c,
            _optional(lloq, np.nan), _optional(uloq, np.nan), _optional(limit, np.nan),
            np.asarray(False if m6_first is None else m6_first, dtype=bool),
        )
    except ValueError as exc:
        raise ModelSpecError(f"dv, pred, cens, lloq, uloq, limit and m6_first do not "
                             f"broadcast together: {exc}") from None
    y, f, c, lq, uq, lim, first = arrays
    shape = y.shape
    b, a = c == 1, c == -1

    # data checks, every problem listed at once
    problems = []
    if not check:
        return _loglik_unchecked(em, m, y, f, c, lq, uq, lim, first, sigma, jacobian, shape)
    if np.any(~np.isfinite(y)):
        problems.append(f"dv: {_rows(~np.isfinite(y))} are not finite.")
    if em.log_scale and np.any(y <= 0):
        problems.append(f"dv: {_rows(y <= 0)} are <= 0, impossible under the log_additive "
                        "error model.")
    if lloq is not None:
        bad = b & np.isfinite(lq) & ~np.isclose(lq, y, rtol=1e-9, atol=0.0)
        if np.any(bad):
            problems.append(f"lloq: {_rows(bad)} with cens == 1 have lloq != dv (a BLQ row "
                            "keeps its LLOQ in dv).")
    if uloq is not None:
        bad = a & np.isfinite(uq) & ~np.isclose(uq, y, rtol=1e-9, atol=0.0)
        if np.any(bad):
            problems.append(f"uloq: {_rows(bad)} with cens == -1 have uloq != dv (an above-ULOQ "
                            "row keeps its ULOQ in dv).")
    fin_lim = np.isfinite(lim)
    if np.any(b & fin_lim & (lim >= y)):
        problems.append(f"limit: {_rows(b & fin_lim & (lim >= y))} with cens == 1 have "
                        "limit >= dv; the interval is (limit, dv].")
    if np.any(a & fin_lim & (lim <= y)):
        problems.append(f"limit: {_rows(a & fin_lim & (lim <= y))} with cens == -1 have "
                        "limit <= dv; the interval is [dv, limit).")
    if problems:
        raise DataError(problems, source="loglik_obs")
    return _loglik_unchecked(em, m, y, f, c, lq, uq, lim, first, sigma, jacobian, shape)


def _loglik_unchecked(em, m, y, f, c, lq, uq, lim, first, sigma, jacobian, shape):
    """The likelihood proper, on broadcast arrays whose data were checked (or trusted)."""
    q, b, a = c == 0, c == 1, c == -1
    fin_lim = np.isfinite(lim)
    if np.any(np.isnan(f)):
        raise ModelSpecError(f"Invalid pred: {_rows(np.isnan(f))} are NaN.")

    try:
        mean, sd = em.moments(f, sigma)
        mean, sd = np.broadcast_to(mean, shape).ravel(), np.broadcast_to(sd, shape).ravel()
    except ValueError as exc:
        if isinstance(exc, ModelSpecError):
            raise
        raise ModelSpecError(f"sigma does not broadcast against {shape} rows: {exc}") from None

    if m in ("m1", "m3") and not np.any(np.isfinite(lim)) and np.all(np.isfinite(mean)) \
            and np.all(sd > 0):
        # the common case in fitting loops: no intervals, no degenerate predictions; the
        # same formulas as below without the bookkeeping for infinite means and zero SDs
        x = em.transform(y).ravel()
        ll = censored_normal_terms(x, mean, sd, c.ravel(), m)
        if jacobian and em.log_scale:
            ll = np.where(q.ravel(), ll - x, ll)
        return ll.reshape(shape)

    # work on flat copies (boolean-mask assignment needs 1-d arrays); reshape at the end
    out_shape = shape
    y, lq, lim, first, q, b, a = (v.ravel() for v in (y, lq, lim, first, q, b, a))
    shape = y.shape
    fin_lim = np.isfinite(lim)
    tr = em.transform

    def z(bound: NDArray[np.float64], rows: NDArray[np.bool_]) -> NDArray[np.float64]:
        return standardize(tr(bound[rows]), mean[rows], sd[rows])

    def density(value: NDArray[np.float64], rows: NDArray[np.bool_]) -> NDArray[np.float64]:
        v = value[rows]
        out = normal_logpdf(tr(v), mean[rows], sd[rows])
        if jacobian and em.log_scale:
            out = out - tr(v)
        return out

    # log of the truncation normaliser shared by every retained row (M2, M4)
    log_norm = np.zeros(shape)
    if m == "m2":
        trunc = q | a
        log_norm[trunc] = log_ndtr(-z(np.where(np.isnan(lq), -np.inf, lq), trunc))
    elif m == "m4":
        log_norm = log_ndtr(-z(np.zeros(shape), np.ones(shape, dtype=bool)))

    def conditioned(num: NDArray[np.float64], rows: NDArray[np.bool_]) -> NDArray[np.float64]:
        # divide by the normaliser; conditioning on an impossible event (normaliser 0, e.g.
        # a prediction of 0 on the log scale under M2) makes the row impossible: -inf
        cn = log_norm[rows]
        with np.errstate(invalid="ignore"):
            return np.where(np.isneginf(cn), -np.inf, num - cn)

    ll = np.zeros(shape)
    ll[q] = conditioned(density(y, q), q)
    upper = np.where(fin_lim, lim, np.inf)
    # a log-probability: clip the rounding noise of the normaliser at 0
    ll[a] = np.minimum(conditioned(log_ndtr_diff(z(y, a), z(upper, a)), a), 0.0)

    if m in ("m3", "m4"):
        lower = np.where(fin_lim, lim, -np.inf)
        if m == "m4":
            lower = np.maximum(lower, 0.0)
        ll[b] = np.minimum(conditioned(log_ndtr_diff(z(lower, b), z(y, b)), b), 0.0)
    elif m == "m5":
        ll[b] = density(y / 2.0, b)
    elif m == "m6":
        keep = b & first
        ll[keep] = density(y / 2.0, keep)
    elif m == "m7":
        ll[b] = density(np.zeros(shape), b)
    return ll.reshape(out_shape)


def rows_used(cens: ArrayLike, method: str, m6_first: ArrayLike | None = None) -> NDArray[np.bool_]:
    """Rows that count towards ``n_obs`` (and so AIC/BIC) under ``method``.

    M1 and M2 drop BLQ rows; M6 drops the BLQ rows after the first of each run; every other
    row is used (above-ULOQ rows always are).

    Parameters
    ----------
    cens : array_like of {0, 1, -1}
        Censoring codes.
    method : {"m1", ..., "m7"}
        Censoring method.
    m6_first : array_like of bool, optional
        Required for M6; see :func:`m6_first_mask`.

    Returns
    -------
    ndarray of bool
    """
    m = _method(method)
    c = _cens_array(cens)
    blq = c == 1
    if m in ("m1", "m2"):
        return ~blq
    if m == "m6":
        if m6_first is None:
            raise ModelSpecError("method='m6' needs m6_first; compute it with m6_first_mask().")
        return ~blq | (blq & np.asarray(m6_first, dtype=bool))
    return np.ones(c.shape, dtype=bool)


def ofv(ll: ArrayLike) -> float:
    """Objective function value ``-2 * sum(ll)`` (NONMEM's OFV without its constant)."""
    return float(-2.0 * np.sum(np.asarray(ll, dtype=float)))


# -- runs of BLQ rows and imputed views --------------------------------------------------
def m6_first_mask(ids: ArrayLike, times: ArrayLike, cens: ArrayLike,
                  endpoint: ArrayLike | None = None) -> NDArray[np.bool_]:
    """Mark the first BLQ row of each run of consecutive BLQ rows (for M6).

    A run is a maximal sequence of BLQ rows (``cens == 1``) of one participant, and of one
    endpoint when ``endpoint`` is given, in time order; a quantified or above-ULOQ row ends
    it. Rows may come in any order; ties in time keep their input order.

    Parameters
    ----------
    ids : array_like
        Participant of each row.
    times : array_like
        Time of each row (finite).
    cens : array_like of {0, 1, -1}
        Censoring codes.
    endpoint : array_like, optional
        Endpoint of each row; runs are then formed per participant and endpoint.

    Returns
    -------
    ndarray of bool
        True on the first BLQ row of each run, in the input order.

    Examples
    --------
    >>> m6_first_mask([1] * 5, [0, 1, 2, 3, 4], [0, 1, 1, 0, 1]).tolist()
    [False, True, False, False, True]
    """
    c = _cens_array(cens).ravel()
    t = np.asarray(times, dtype=float).ravel()
    idc = pd.factorize(pd.Series(np.asarray(ids, dtype=object).ravel()), use_na_sentinel=False)[0]
    if endpoint is None:
        epc = np.zeros(c.shape, dtype=np.int64)
    else:
        epc = pd.factorize(pd.Series(np.asarray(endpoint, dtype=object).ravel()),
                           use_na_sentinel=False)[0]
    if not (t.size == c.size == idc.size == epc.size):
        raise ModelSpecError(
            f"ids ({idc.size}), times ({t.size}), cens ({c.size}) and endpoint ({epc.size}) "
            "must have the same length."
        )
    if np.any(~np.isfinite(t)):
        raise DataError(f"time: {_rows(~np.isfinite(t))} are not finite.")
    order = np.lexsort((t, idc, epc))
    blq = c[order] == 1
    same = np.zeros(blq.shape, dtype=bool)
    same[1:] = (idc[order][1:] == idc[order][:-1]) & (epc[order][1:] == epc[order][:-1])
    prev_blq = np.zeros(blq.shape, dtype=bool)
    prev_blq[1:] = blq[:-1]
    out = np.empty(blq.shape, dtype=bool)
    out[order] = blq & ~(same & prev_blq)
    return out


def impute_blq(df: pd.DataFrame, method: str) -> pd.DataFrame:
    """Derived table with BLQ rows imputed for M5, M6 or M7.

    The input is left unchanged (censoring lives in the data); the result is a new
    DataFrame with the original index in which imputed BLQ rows get ``dv = LLOQ/2`` (M5,
    and the first BLQ row of each run for M6) or ``dv = 0`` (M7), ``cens = 0``, ``limit =
    NaN`` (if present) and ``imputed = True``; every other row has ``imputed = False``. For
    M6 the later BLQ rows of each run are **removed**: this is the one place where rows are
    dropped, because the method itself defines it.

    Parameters
    ----------
    df : DataFrame
        Long-format data with ``dv`` and ``cens``; ``lloq`` is used when present (else
        ``dv``, which equals the LLOQ on a BLQ row); M6 also needs ``id`` and ``time`` (and
        uses ``endpoint`` when present).
    method : {"m5", "m6", "m7"}
        Imputation rule.

    Returns
    -------
    DataFrame

    Raises
    ------
    ModelSpecError
        If ``method`` is not one of the imputing methods.
    DataError
        If a needed column is missing or cens holds bad codes.
    """
    m = method.lower() if isinstance(method, str) else method
    check_option("method", m, ("m5", "m6", "m7"), exc=ModelSpecError)
    need = ["dv", "cens"] + (["id", "time"] if m == "m6" else [])
    missing = [col for col in need if col not in df.columns]
    if missing:
        raise DataError([f"column {col!r} is missing (needed by method {m!r})."
                         for col in missing], source="impute_blq")
    c = _cens_array(df["cens"].to_numpy())
    blq = c == 1
    dv = df["dv"].to_numpy(dtype=float)
    if "lloq" in df.columns:
        lq = df["lloq"].to_numpy(dtype=float)
        lq = np.where(np.isfinite(lq), lq, dv)
    else:
        lq = dv
    if m == "m6":
        ep = df["endpoint"].to_numpy() if "endpoint" in df.columns else None
        first = m6_first_mask(df["id"].to_numpy(), df["time"].to_numpy(), c, ep)
        imputed = blq & first
    else:
        imputed = blq
    new_dv = 0.0 if m == "m7" else lq / 2.0
    out = df.copy()
    out["dv"] = np.where(imputed, new_dv, dv)
    cens_new = np.where(imputed, 0, df["cens"].to_numpy())
    try:
        out["cens"] = pd.Series(cens_new, index=out.index).astype(df["cens"].dtype)
    except (TypeError, ValueError):
        out["cens"] = cens_new
    if "limit" in out.columns:
        out["limit"] = np.where(imputed, np.nan, out["limit"].to_numpy(dtype=float))
    out["imputed"] = imputed
    if m == "m6":
        out = out.loc[~blq | imputed]
    return out
