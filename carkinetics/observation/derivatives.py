"""Analytic derivatives of the log-normal censored likelihood in its two channels.

For the ``log_additive`` error model a row's log-likelihood depends on the parameters only
through its mean on the log scale ``mu`` and its SD ``sigma``: with ``z = (log y - mu) /
sigma``,

* quantified rows: ``ll = -z^2 / 2 - log sigma - log(2 pi) / 2``;
* below-LLOQ rows under M3 (``y`` = LLOQ): ``ll = log Phi(z)``; under M1 they are dropped;
* above-ULOQ rows: ``ll = log Phi(-z)``.

:func:`lognormal_channel_derivatives` returns the first and second derivatives of ``ll`` in
``mu`` and in ``log sigma`` (the channels of the fitting code), using the inverse Mills
ratio ``lambda(w) = phi(w) / Phi(w)`` evaluated in log space. The log-likelihood itself is
still :func:`~carkinetics.observation.loglik_obs`; tests compare these derivatives with
finite differences of it.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import log_ndtr

__all__ = ["lognormal_channel_derivatives"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def lognormal_channel_derivatives(
    dv: ArrayLike, mu: ArrayLike, sigma: ArrayLike, cens: ArrayLike, method: str = "m3"
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """First and second derivatives of the ``log_additive`` row log-likelihood.

    Parameters
    ----------
    dv : array_like
        Observed value (the LLOQ on BLQ rows, the ULOQ on above-ULOQ rows); positive.
    mu : array_like
        Mean of ``log dv`` (the log prediction).
    sigma : array_like
        SD of ``log dv``; positive.
    cens : array_like of {0, 1, -1}
        Censoring codes.
    method : {"m1", "m3"}, default "m3"
        Under M1 BLQ rows contribute nothing (all derivatives 0).

    Returns
    -------
    d_mu, d2_mu, d_logsigma, d2_logsigma : ndarray
        Broadcast shape of the inputs.

    Examples
    --------
    >>> d = lognormal_channel_derivatives(1.0, 0.0, 1.0, 1)  # BLQ at the median
    >>> round(float(d[0][()]), 6)  # -phi(0) / Phi(0) / sigma
    -0.797885
    """
    if method not in ("m1", "m3"):
        raise ValueError(f"Invalid method={method!r}; expected 'm1' or 'm3'.")
    y, m, s, c = np.broadcast_arrays(np.asarray(dv, float), np.asarray(mu, float),
                                     np.asarray(sigma, float), np.asarray(cens))
    shape = y.shape
    y, m, s, c = (v.ravel() for v in (y, m, s, c))
    z = (np.log(y) - m) / s
    q = c == 0
    # censored rows: w is the standardised distance inside the censored side
    w = np.where(c == -1, -z, z)
    lam = np.zeros(w.shape)
    i = np.flatnonzero(~q)
    if i.size:  # the normal CDF only where it is needed
        wi = w[i]
        with np.errstate(over="ignore", under="ignore"):
            lam[i] = np.exp(-0.5 * wi * wi - _HALF_LOG_2PI - log_ndtr(wi))
    sign = np.where(c == -1, -1.0, 1.0)  # dw/dmu = -sign / sigma, dw/dlog sigma = -w
    inv = 1.0 / s
    d_mu = np.where(q, z * inv, -sign * lam * inv)
    d2_mu = np.where(q, -inv * inv, -lam * (w + lam) * inv * inv)
    d_ls = np.where(q, z * z - 1.0, -lam * w)
    d2_ls = np.where(q, -2.0 * z * z, lam * w * (1.0 - w * (w + lam)))
    if method == "m1":
        drop = c == 1
        d_mu, d2_mu, d_ls, d2_ls = (np.where(drop, 0.0, v) for v in (d_mu, d2_mu, d_ls, d2_ls))
    return tuple(v.reshape(shape) for v in (d_mu, d2_mu, d_ls, d2_ls))
