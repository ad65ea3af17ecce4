"""Areas under the curve, vectorised over profiles.

Methods
-------
``"linear"``
    Linear trapezoidal rule on every segment.
``"linear-log"``
    Linear-up / log-down: the log trapezoid ``dt (c1 - c2) / ln(c1 / c2)`` on segments where
    the concentration falls and both ends are > 0; linear otherwise.

The first moment (AUMC) uses ``dt (t1 c1 + t2 c2) / 2`` on linear segments and, on log
segments with ``k = ln(c1 / c2) / dt``, ``(t1 c1 - t2 c2) / k + (c1 - c2) / k^2``.

Concentrations between samples are interpolated the same way (linearly, or log-linearly
inside a log segment), so the area to an interpolated time is exact for the curve the
method assumes. After the last usable concentration ``c_end`` at ``t_end`` the curve is
extrapolated only on request: ``c_end exp(-lambda_z (t - t_end))``, or 0 when ``c_end`` is
0 (a BLQ set to zero closes the profile).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from carkinetics._validation import check_option
from carkinetics.nca import _seg

__all__ = ["AUC_METHODS", "Curve", "auc_segments"]

AUC_METHODS: tuple[str, ...] = ("linear", "linear-log")


def auc_segments(t: NDArray, c: NDArray, method: str = "linear-log",
                 same: NDArray | None = None) -> tuple[NDArray, NDArray, NDArray]:
    """Area and first moment of each segment between consecutive samples.

    Parameters
    ----------
    t, c : ndarray
        Times and concentrations (``c >= 0``), sorted within each profile.
    method : {"linear", "linear-log"}, default "linear-log"
        AUC method.
    same : ndarray of bool, optional
        Length ``len(t) - 1``: whether samples i and i+1 belong to the same profile;
        segments across profiles get 0.

    Returns
    -------
    auc, aumc, is_log : ndarray
        One value per segment (length ``len(t) - 1``).

    Examples
    --------
    >>> auc, aumc, log = auc_segments(np.array([0.0, 1.0, 2.0]), np.array([0.0, 4.0, 2.0]))
    >>> auc.round(4).tolist(), log.tolist()
    ([2.0, 2.8854], [False, True])
    """
    check_option("auc_method", method, AUC_METHODS)
    t1, t2, c1, c2 = t[:-1], t[1:], c[:-1], c[1:]
    dt = t2 - t1
    is_log = (c2 < c1) & (c2 > 0) if method == "linear-log" else np.zeros(dt.size, bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(c1 / c2)
        k = lr / dt
        auc = np.where(is_log, dt * (c1 - c2) / lr, dt * (c1 + c2) / 2.0)
        aumc = np.where(is_log, (t1 * c1 - t2 * c2) / k + (c1 - c2) / (k * k),
                        dt * (t1 * c1 + t2 * c2) / 2.0)
    if same is not None:
        auc = np.where(same, auc, 0.0)
        aumc = np.where(same, aumc, 0.0)
        is_log &= same
    return auc, aumc, is_log


@dataclass
class Curve:
    """Piecewise curves of all profiles with cumulative areas (private to the engine).

    ``g, t, c`` are the profile points (sorted; each profile starts at time 0), ``q``
    marks quantified measurements. ``F`` and ``FM`` are AUC and AUMC from 0 to each point.
    """

    g: NDArray
    t: NDArray
    c: NDArray
    q: NDArray
    n: int
    method: str

    def __post_init__(self) -> None:
        same = self.g[1:] == self.g[:-1]
        auc, aumc, self.is_log = auc_segments(self.t, self.c, self.method, same)
        self.F = _seg.running(self.g, np.r_[0.0, auc], self.n)
        self.FM = _seg.running(self.g, np.r_[0.0, aumc], self.n)
        self.start, self.count, _ = _seg.positions(self.g, self.n)
        self.end = self.start + self.count - 1

    def at(self, x: float, lamz: NDArray, extrapolate: bool) -> tuple[NDArray, NDArray, NDArray]:
        """AUC from 0 to ``x`` per profile.

        Returns
        -------
        auc : ndarray
            NaN where ``x`` is after the last point and extrapolation is off or impossible.
        beyond : ndarray of bool
            ``x`` is after the last point of the profile.
        conc : ndarray
            The (interpolated or extrapolated) concentration at ``x``.
        """
        le = np.bincount(self.g, weights=(self.t <= x).astype(float), minlength=self.n)
        k = self.start + le.astype(np.int64) - 1
        k = np.clip(k, self.start, self.end)  # x >= 0 and every profile starts at 0
        beyond = x > self.t[self.end]
        inside = ~beyond & (self.t[k] < x)
        k1 = np.minimum(k + 1, self.t.size - 1)
        t1, t2, c1, c2 = self.t[k], self.t[k1], self.c[k], self.c[k1]
        log = self.is_log[np.minimum(k, self.t.size - 2)] if self.t.size > 1 else \
            np.zeros(self.n, dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            kk = np.log(c1 / c2) / (t2 - t1)
            cx_log = c1 * np.exp(-kk * (x - t1))
            cx_lin = c1 + (c2 - c1) * (x - t1) / (t2 - t1)
            cx = np.where(log, cx_log, cx_lin)
            part = np.where(log, (c1 - cx_log) / kk, (x - t1) * (c1 + cx_lin) / 2.0)
            auc = self.F[k] + np.where(inside, part, 0.0)
            conc = np.where(inside, cx, self.c[k])
            ce, te = self.c[self.end], self.t[self.end]
            tail = np.where(ce > 0, ce / lamz * -np.expm1(-lamz * (x - te)), 0.0)
            ctail = ce * np.exp(-lamz * (x - te))
        auc = np.where(beyond, self.F[self.end] + tail if extrapolate else np.nan, auc)
        conc = np.where(beyond, ctail if extrapolate else np.nan, conc)
        return auc, beyond, conc
