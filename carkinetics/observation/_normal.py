"""The normal censored row term shared by :func:`loglik_obs` and the fitting code (internal).

:func:`censored_normal_terms` is the one implementation of the common case of the
likelihood: a normal observation on the error model's scale (``log dv`` for
``log_additive``), censoring by M1 or M3, above-ULOQ rows right-censored, no interval
limits, finite means and positive SDs. :func:`~carkinetics.observation.loglik_obs` takes this
path for that case, and the fitters call it directly (with the first and second derivatives
in the mean and in ``log sd``, which cost little once ``z`` and ``log Phi`` are known), so a
fit's objective and :func:`loglik_obs` are the same numbers from the same code.

With ``z = (x - mean) / sd``:

* quantified rows: ``ll = -z^2 / 2 - log sd - log(2 pi) / 2``;
* below-LLOQ rows (``x`` = the transformed LLOQ): ``log Phi(z)`` under M3, 0 under M1;
* above-ULOQ rows: ``log Phi(-z)``.

For a censored row with ``w = +-z`` the standardised distance inside the censored side, the
inverse Mills ratio ``lambda = phi(w) / Phi(w)`` is formed in log space from the same
``log Phi(w)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

__all__ = ["censored_normal_terms"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def censored_normal_terms(x: NDArray[np.float64], mean: NDArray[np.float64],
                          sd: NDArray[np.float64], cens: NDArray[np.int64], method: str,
                          deriv: bool = False):
    """Row log-likelihood (and its derivatives in ``mean`` and ``log sd``), M1 or M3.

    Parameters
    ----------
    x, mean, sd : ndarray (n,)
        Observation (or its limit on censored rows) on the error model's scale, mean and SD
        of its normal distribution; ``mean`` finite, ``sd > 0`` (not checked: callers
        ensure it).
    cens : ndarray of int (n,)
        0 quantified, 1 below the LLOQ, -1 above the ULOQ.
    method : {"m1", "m3"}
        Censoring method for the BLQ rows.
    deriv : bool, default False
        Also return the first and second derivatives of each row's term.

    Returns
    -------
    ll : ndarray (n,)
        With ``deriv``: ``(ll, d_mean, d2_mean, d_logsd, d2_logsd)``.
    """
    q = cens == 0
    zz = (x - mean) / sd
    ll = np.where(q, -0.5 * zz * zz - np.log(sd) - _HALF_LOG_2PI, 0.0)
    # the normal CDF only where it is needed (it costs ~10x the density)
    cen = np.flatnonzero(~q if method == "m3" else cens == -1)
    upper = cens[cen] == -1
    w = np.where(upper, -zz[cen], zz[cen])
    lnd = log_ndtr(w)
    ll[cen] = lnd
    if not deriv:
        return ll
    inv = 1.0 / sd
    z2 = zz * zz
    d_mu = zz * inv
    d2_mu = np.broadcast_to(-inv * inv, zz.shape).copy()
    d_ls = z2 - 1.0
    d2_ls = -2.0 * z2
    if method == "m1":
        drop = cens == 1
        d_mu[drop] = d2_mu[drop] = d_ls[drop] = d2_ls[drop] = 0.0
    if cen.size:
        with np.errstate(over="ignore", under="ignore"):
            lam = np.exp(-0.5 * w * w - _HALF_LOG_2PI - lnd)
        ic = inv[cen] if np.ndim(inv) else inv
        # dw/dmean = -sign / sd, dw/dlog sd = -w (sign -1 on above-ULOQ rows)
        d_mu[cen] = np.where(upper, lam, -lam) * ic
        d2_mu[cen] = -lam * (w + lam) * ic * ic
        d_ls[cen] = -lam * w
        d2_ls[cen] = lam * w * (1.0 - w * (w + lam))
    return ll, d_mu, d2_mu, d_ls, d2_ls
