"""The pytensor twin of :func:`carkinetics.observation.loglik_obs`.

:func:`loglik_obs_pt` builds the same per-observation log-likelihood (Beal's M1-M7, above-ULOQ
rows, interval censoring through ``limit``, the four error kinds, ``jacobian``) as a pytensor
graph of the predictions and sigmas, so that a PyMC model uses the censored likelihood of
the rest of the package and not a second one. The data (``dv``, ``cens``, limits, the M6
mask) are constants of the graph: each row class is computed only on its own rows, so the
graph has no branches on data. The tests check it against the numpy function for every
method and error kind, on quantified and censored rows, far into both tails.

Numerics. ``log Phi(z)`` is computed as ``log(erfcx(-z / sqrt 2) / 2) - z^2 / 2`` for
``z < -1`` and ``log1p(-erfc(z / sqrt 2) / 2)`` otherwise, each branch on an argument
clamped to its own side so that neither the value nor the gradient of the branch that is
not taken can be NaN (the usual double-``where``). This has full relative precision in the
lower tail (``log Phi(-40)`` is about -804.6) like :func:`scipy.special.log_ndtr`.
Interval probabilities ``log(Phi(b) - Phi(a))`` follow :func:`~carkinetics.observation.
log_ndtr_diff` (upper-tail symmetry, ``log1mexp``, and the midpoint rule with its
second-order correction for very narrow intervals).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.observation.censoring import _cens_array, _method
from carkinetics.observation.error import ErrorModel, _as_error

__all__ = ["log_ndtr_pt", "log_ndtr_diff_pt", "loglik_obs_pt"]

_SQRT2 = math.sqrt(2.0)
_LN2 = math.log(2.0)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def _pt():
    import pytensor.tensor as pt

    return pt


def log_ndtr_pt(z: Any) -> Any:
    """Stable ``log Phi(z)`` of a pytensor tensor (finite gradient for finite ``z``).

    Parameters
    ----------
    z : TensorVariable or array_like
        Standardised values; ``+inf`` gives 0 and ``-inf`` gives ``-inf``.

    Returns
    -------
    TensorVariable
    """
    pt = _pt()
    z = pt.as_tensor_variable(z)
    lo = pt.minimum(z, -1.0)
    hi = pt.maximum(z, -1.0)
    lower = pt.log(pt.erfcx(-lo / _SQRT2) / 2.0) - 0.5 * lo * lo
    upper = pt.log1p(-pt.erfc(hi / _SQRT2) / 2.0)
    return pt.switch(z < -1.0, lower, upper)


def _log1mexp(x: Any) -> Any:
    """``log(1 - exp(x))`` for ``x <= 0`` (the two-branch form of the numpy version)."""
    pt = _pt()
    x = pt.minimum(x, 0.0)
    near = pt.log(-pt.expm1(pt.maximum(x, -_LN2)))
    far = pt.log1p(-pt.exp(pt.minimum(x, -_LN2)))
    return pt.switch(x > -_LN2, near, far)


def log_ndtr_diff_pt(a: Any, b: Any) -> Any:
    """Stable ``log(Phi(b) - Phi(a))`` for ``a <= b`` (pytensor twin of ``log_ndtr_diff``).

    Parameters
    ----------
    a, b : TensorVariable or array_like
        Standardised bounds; ``-inf``/``+inf`` mean no bound.

    Returns
    -------
    TensorVariable
        ``-inf`` where ``a == b``.
    """
    pt = _pt()
    a, b = pt.as_tensor_variable(a), pt.as_tensor_variable(b)
    upper = a > 0
    hi = pt.switch(upper, -a, b)
    lo = pt.switch(upper, -b, a)
    lhi = log_ndtr_pt(hi)
    llo = log_ndtr_pt(lo)
    d = llo - lhi
    out = lhi + _log1mexp(pt.switch(pt.isnan(d), -np.inf, d))
    mid, w = 0.5 * (a + b), b - a
    narrow = (w > 0) & ~pt.isinf(w) & (w * (1.0 + pt.abs(mid)) < 1e-3)
    w_safe = pt.switch(narrow, w, 1.0)
    m_safe = pt.switch(narrow, mid, 0.0)
    taylor = (pt.log(w_safe) - 0.5 * m_safe * m_safe - _HALF_LOG_2PI
              + pt.log1p((m_safe * m_safe - 1.0) * w_safe * w_safe / 24.0))
    out = pt.switch(narrow, taylor, out)
    return pt.switch(pt.eq(a, b), -np.inf, out)


def _standardize(x: Any, mean: Any, sd: Any) -> Any:
    """``(x - mean) / sd`` with the limits of :func:`carkinetics.observation.error.standardize`.

    ``x`` is a numpy constant (a transformed data bound); ``mean`` and ``sd`` are tensors.
    """
    pt = _pt()
    x = np.asarray(x, dtype=float)
    xf = np.where(np.isfinite(x), x, 0.0)
    d = xf - mean
    pos = sd > 0
    z = pt.switch(pos, d / pt.switch(pos, sd, 1.0), pt.sign(d) * np.inf)
    z = pt.switch(pt.eq(d, 0.0), 0.0, z)
    z = pt.switch(pt.isinf(mean), -pt.sign(mean) * np.inf, z)
    if np.any(~np.isfinite(x)):
        z = pt.switch(np.isinf(x), x, z)
    return z


def _normal_logpdf(x: Any, mean: Any, sd: Any) -> Any:
    pt = _pt()
    z = _standardize(x, mean, sd)
    out = -0.5 * z * z - pt.log(sd) - _HALF_LOG_2PI
    return pt.switch(pt.isinf(z), -np.inf, out)


def _moments(em: ErrorModel, log_pred: Any, pred: Any, sigma: Any) -> tuple[Any, Any]:
    """Mean and SD on the observation scale, as :meth:`ErrorModel.moments`."""
    pt = _pt()
    if em.kind == "combined":
        if not isinstance(sigma, tuple | list) or len(sigma) != 2:
            raise ModelSpecError(
                f"Invalid sigma={sigma!r} for error kind 'combined'; expected a pair "
                "(sigma_add, sigma_prop) of tensors or numbers."
            )
        s_add, s_prop = (pt.as_tensor_variable(s) for s in sigma)
    else:
        if isinstance(sigma, tuple | list):
            raise ModelSpecError(
                f"Invalid sigma={sigma!r} for error kind {em.kind!r}; expected one tensor or "
                "number, not a sequence."
            )
        s = pt.as_tensor_variable(sigma)
    if em.kind == "log_additive":
        mean = log_pred if log_pred is not None else pt.log(pred)
        return mean, s + pt.zeros_like(mean)
    f = pred if pred is not None else pt.exp(log_pred)
    if em.kind == "proportional":
        return f, s * pt.abs(f)
    if em.kind == "additive":
        return f, s + pt.zeros_like(f)
    return f, pt.sqrt(s_add * s_add + (s_prop * f) ** 2)


def loglik_obs_pt(
    dv: ArrayLike,
    cens: ArrayLike,
    *,
    error: ErrorModel | str,
    sigma: Any,
    pred: Any = None,
    log_pred: Any = None,
    lloq: ArrayLike | None = None,
    uloq: ArrayLike | None = None,
    limit: ArrayLike | None = None,
    method: str = "m3",
    m6_first: ArrayLike | None = None,
    jacobian: bool = False,
) -> Any:
    """Per-observation censored log-likelihood as a pytensor graph.

    The twin of :func:`carkinetics.observation.loglik_obs` (same methods, error kinds,
    limits and ``jacobian`` convention; see its docstring for the table of terms), with the
    predictions and sigmas symbolic and the data constant.

    Parameters
    ----------
    dv : array_like, shape (n,)
        Observations (a BLQ row holds its LLOQ, an above-ULOQ row its ULOQ).
    cens : array_like of {0, 1, -1}, shape (n,)
        Censoring codes.
    error : ErrorModel or str
        Residual-error model (or its kind).
    sigma : tensor or float, or a pair for ``combined``
        Sigma(s): a scalar or a per-row vector; for ``combined`` ``(sigma_add, sigma_prop)``.
    pred : tensor, shape (n,), optional
        Predictions on the dv scale.
    log_pred : tensor, shape (n,), optional
        Natural log of the predictions (preferred for ``log_additive``: no ``exp``/``log``
        round trip). Exactly one of ``pred`` and ``log_pred`` is given.
    lloq, uloq, limit : array_like, optional
        Per-row limits, as in ``loglik_obs`` (``lloq`` needed by M2).
    method : {"m1", "m2", "m3", "m4", "m5", "m6", "m7"}, default "m3"
        Censoring method.
    m6_first : array_like of bool, optional
        First BLQ row of each run (M6 only).
    jacobian : bool, default False
        Density terms on the dv scale (subtract ``log y`` for ``log_additive``).

    Returns
    -------
    TensorVariable, shape (n,)
        Log-likelihood of each row (0 on rows the method discards).

    Raises
    ------
    ModelSpecError
        As ``loglik_obs`` (unknown method or kind, M2 without ``lloq``, M6 without
        ``m6_first``, M7 with ``log_additive``), or if not exactly one of ``pred`` and
        ``log_pred`` is given.
    DataError
        Bad cens codes, non-finite dv, or dv <= 0 on the log scale.

    Examples
    --------
    >>> import numpy as np, pytensor
    >>> import pytensor.tensor as pt
    >>> lp = pt.vector("lp")
    >>> ll = loglik_obs_pt([100.0, 10.0], [0, 1], error="log_additive", sigma=0.5, log_pred=lp)
    >>> f = pytensor.function([lp], ll)
    >>> f(np.log([80.0, 5.0])).round(4).tolist()
    [-0.3254, -0.0865]
    """
    pt = _pt()
    em = _as_error(error)
    m = _method(method)
    if (pred is None) == (log_pred is None):
        raise ModelSpecError("Give exactly one of pred= and log_pred= (a tensor of predictions).")
    if m == "m7" and em.log_scale:
        raise ModelSpecError(
            "Invalid method='m7' with the log_additive error model: M7 replaces BLQ values by "
            "0, which has no density under a log-normal error. Use method='m3'."
        )
    if m == "m2" and lloq is None:
        raise ModelSpecError("method='m2' needs the per-row lloq. Pass lloq=...")
    if m == "m6" and m6_first is None:
        raise ModelSpecError("method='m6' needs m6_first; compute it with m6_first_mask().")
    y = np.asarray(dv, dtype=float).ravel()
    n = y.size
    c = _cens_array(cens).ravel()
    if c.size != n:
        raise ModelSpecError(f"cens has {c.size} rows; expected {n} (one per dv).")
    if np.any(~np.isfinite(y)):
        raise DataError(f"dv: {int(np.sum(~np.isfinite(y)))} rows are not finite.")
    if em.log_scale and np.any(y <= 0):
        raise DataError(f"dv: {int(np.sum(y <= 0))} rows are <= 0, impossible under the "
                        "log_additive error model.")

    def col(v: ArrayLike | None) -> np.ndarray:
        return np.full(n, np.nan) if v is None else np.broadcast_to(
            np.asarray(v, dtype=float), (n,)).copy()

    lq, lim = col(lloq), col(limit)
    first = (np.zeros(n, bool) if m6_first is None
             else np.broadcast_to(np.asarray(m6_first, dtype=bool), (n,)))
    if log_pred is not None:
        log_pred = pt.as_tensor_variable(log_pred)
    else:
        pred = pt.as_tensor_variable(pred)
    mean, sd = _moments(em, log_pred, pred, sigma)
    mean = mean + pt.zeros((n,))
    sd = sd + pt.zeros((n,))
    tr = em.transform
    q, b, a = c == 0, c == 1, c == -1
    fin_lim = np.isfinite(lim)

    def z(bound: np.ndarray, rows: np.ndarray) -> Any:
        return _standardize(tr(bound[rows]), mean[rows], sd[rows])

    def density(value: np.ndarray, rows: np.ndarray) -> Any:
        v = value[rows]
        out = _normal_logpdf(tr(v), mean[rows], sd[rows])
        return out - tr(v) if jacobian and em.log_scale else out

    # the M2/M4 normaliser of the retained rows (M4 on the log scale is M3: F(0) = 0)
    m_eff = "m3" if (m == "m4" and em.log_scale) else m
    log_norm = None
    if m_eff == "m2":
        log_norm = log_ndtr_pt(-_standardize(tr(np.where(np.isnan(lq), -np.inf, lq)),
                                             mean, sd))
    elif m_eff == "m4":
        log_norm = log_ndtr_pt(-_standardize(np.zeros(n), mean, sd))

    if m_eff in ("m1", "m3") and not np.any(fin_lim) and em.kind in ("log_additive",
                                                                      "additive"):
        # the common case in a PyMC model: a constant, positive SD per row, no intervals.
        # One standardised residual per row and no guards (an infinite mean still gives
        # the right limits: z = +-inf), as the numpy fast path of loglik_obs
        x = tr(y)
        zz = (x - mean) / sd
        ll = pt.zeros((n,))
        iq = np.flatnonzero(q)
        if iq.size:
            dens = -0.5 * zz[iq] ** 2 - pt.log(sd[iq]) - _HALF_LOG_2PI
            ll = pt.set_subtensor(ll[iq], dens - x[iq] if jacobian and em.log_scale else dens)
        ib = np.flatnonzero(b)
        if ib.size and m_eff == "m3":
            ll = pt.set_subtensor(ll[ib], log_ndtr_pt(zz[ib]))
        ia = np.flatnonzero(a)
        if ia.size:
            ll = pt.set_subtensor(ll[ia], log_ndtr_pt(-zz[ia]))
        return ll

    def conditioned(num: Any, rows: np.ndarray) -> Any:
        if log_norm is None:
            return num
        cn = log_norm[rows]
        return pt.switch(pt.isinf(cn) & (cn < 0), -np.inf, num - cn)

    ll = pt.zeros((n,))
    iq = np.flatnonzero(q)
    if iq.size:
        ll = pt.set_subtensor(ll[iq], conditioned(density(y, q), iq))
    ia = np.flatnonzero(a)
    if ia.size:
        upper = np.where(fin_lim, lim, np.inf)
        term = log_ndtr_diff_pt(z(y, a), z(upper, a)) if np.any(fin_lim[a]) \
            else log_ndtr_pt(-z(y, a))
        ll = pt.set_subtensor(ll[ia], pt.minimum(conditioned(term, ia), 0.0))
    ib = np.flatnonzero(b)
    if ib.size and m_eff in ("m3", "m4"):
        lower = np.where(fin_lim, lim, -np.inf)
        if m_eff == "m4":
            lower = np.maximum(lower, 0.0)
        if m_eff == "m3" and not np.any(fin_lim[b]):
            term = log_ndtr_pt(z(y, b))
        else:
            term = log_ndtr_diff_pt(z(lower, b), z(y, b))
        ll = pt.set_subtensor(ll[ib], pt.minimum(conditioned(term, ib), 0.0))
    elif ib.size and m_eff == "m5":
        ll = pt.set_subtensor(ll[ib], density(y / 2.0, b))
    elif m_eff == "m6" and np.any(b & first):
        keep = b & first
        ll = pt.set_subtensor(ll[np.flatnonzero(keep)], density(y / 2.0, keep))
    elif ib.size and m_eff == "m7":
        ll = pt.set_subtensor(ll[ib], density(np.zeros(n), b))
    return ll
