"""Analytic derivatives of the log-normal censored likelihood in its two channels.

For the ``log_additive`` error model a row's log-likelihood depends on the parameters only
through its mean on the log scale ``mu`` and its SD ``sigma``: with ``z = (log y - mu) /
sigma``,

* quantified rows: ``ll = -z^2 / 2 - log sigma - log(2 pi) / 2``;
* below-LLOQ rows under M3 (``y`` = LLOQ): ``ll = log Phi(z)``; under M1 they are dropped;
* above-ULOQ rows: ``ll = log Phi(-z)``.

:func:`lognormal_channel_derivatives` returns the first and second derivatives of ``ll`` in
``mu`` and in ``log sigma`` (the channels of the fitting code), using the inverse Mills
ratio ``lambda(w) = phi(w) / Phi(w)`` evaluated in log space. They come from the row kernel
that :func:`~carkinetics.observation.loglik_obs` uses for this case
(:mod:`carkinetics.observation._normal`); tests compare them with finite differences of
:func:`~carkinetics.observation.loglik_obs`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics.observation._normal import censored_normal_terms

__all__ = ["lognormal_channel_derivatives"]


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
    out = censored_normal_terms(np.log(y.ravel()), m.ravel(), s.ravel(),
                                c.ravel().astype(np.int64), method, deriv=True)
    return tuple(v.reshape(shape) for v in out[1:])
