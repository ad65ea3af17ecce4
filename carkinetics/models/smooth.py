"""Smooth piecewise model: Stein's two branches joined by a soft minimum in log space.

The two branches of the Stein 2019 piecewise model, extended to every ``t >= 0``::

    E(t) = log r0 + rho t                                   (expansion line)
    D(t) = log cmax + log[(1 - fb) e^{-alpha (t - tmax)} + fb e^{-beta (t - tmax)}]
    log C(t) = -(1 / kappa) log(e^{-kappa E} + e^{-kappa D})
             = min(E, D) - log1p(exp(-kappa |E - D|)) / kappa

with ``rho = ln(foldx) / tmax`` and ``r0 = cmax / foldx``. ``E`` rises and ``D`` falls,
and they cross exactly at ``tmax`` (both equal ``log cmax``), so ``E < D`` before ``tmax``
and ``E > D`` after: as ``kappa -> inf`` the soft minimum tends to ``min(E, D)``, which is
the piecewise model. For finite ``kappa`` the curve is smooth (infinitely differentiable
for ``t > 0``) and lies below the piecewise curve by at most ``ln 2 / kappa`` in log
units (the gap is largest at ``tmax``, where ``C = cmax 2^(-1/kappa)``); it is zero before
the infusion. ``kappa`` has units of 1/log-unit.

The realised peak (time and level of the maximum) therefore differs from the parameters
``tmax`` and ``cmax`` by ``O(1/kappa)``; :meth:`SmoothModel.derived` reports the realised
values. Nothing here is published: the model is a smooth variant of Stein 2019 written for
gradient-based estimation (no kink at ``tmax``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics.models._xp import NUMPY, Namespace
from carkinetics.models.base import LN2, Model, ParameterSpec
from carkinetics.models.piecewise import ALPHA, BETA, CMAX, FB, FOLDX, TMAX, decline_time_below

__all__ = ["SmoothModel"]

KAPPA = ParameterSpec(
    "kappa", "1/log-unit", 4.0, 0.25, 1e9, "log",
    "sharpness of the soft minimum joining expansion and decline (inf = piecewise)",
    "I: 4 keeps the peak within ln2/4 = 0.17 log units (16%) of the piecewise cmax while "
    "rounding the corner over ~ +-1/(kappa (rho + alpha)) ~ 0.25 d; the lower bound 0.25 "
    "caps the blunting at ln2/0.25 = 2.8 log units",
)


class SmoothModel(Model):
    """Stein 2019's branches joined by a soft minimum of sharpness ``kappa``.

    Parameters are those of :class:`~carkinetics.models.piecewise.PiecewiseModel`
    (``foldx``, ``tmax``, ``cmax``, ``alpha``, ``fb``, ``beta``) plus ``kappa``
    (1/log-unit). ``tmax`` and ``cmax`` locate the crossing of the two branches; the
    realised peak is found numerically (:meth:`peak`).

    Notes
    -----
    Derived quantities are computed numerically and vectorised over participants:

    * realised peak: bisection on the sign of the closed-form derivative of ``log C``
      (``h = -kappa (E - D) + log rho - log|D'|`` changes sign from + to - at the peak;
      the sign change is unique when ``kappa (rho + min(alpha, beta)) >= alpha``, which the
      typical values satisfy by far; otherwise bisection returns one local maximum);
    * AUC: fixed 16-point Gauss-Legendre on sub-intervals graded geometrically (ratio 2,
      40 levels) towards the realised peak from 0 and from ``T_far``, the time after
      which ``kappa (E - D) >= 40``; beyond ``T_far`` the soft minimum equals ``D`` to a
      relative ``e^-40 / kappa``, so the tail is integrated in closed form (``t`` may be
      ``inf``). The grading resolves the corner, whose width is ``~1/(kappa (rho +
      alpha))``, for every admissible ``kappa``; the result matches adaptive quadrature
      (``scipy.integrate.quad``) to ~1e-10 relative;
    * ``time_below``: bisection on ``log C - log level`` between the realised peak and
      the time at which the decline branch ``D`` (an upper bound of ``log C``) reaches the
      level.

    Examples
    --------
    >>> from carkinetics.models import get_model
    >>> m = get_model("smooth")
    >>> p = dict(m.typical(), kappa=1e6)
    >>> float(m.predict(9.3, p) / 24000.0) > 0.999999
    True
    """

    name = "smooth"
    description = "Stein 2019 expansion and decline joined by a soft minimum of sharpness kappa"
    level_param = "cmax"
    closed_form = True
    reference = ("smooth variant of Stein AM et al. CPT Pharmacometrics Syst Pharmacol "
                 "2019;8:285-295")
    params = (FOLDX, TMAX, CMAX, ALPHA, FB, BETA, KAPPA)

    #: Gauss-Legendre points per sub-interval.
    n_gauss: int = 16
    #: Levels of geometric grading (ratio 2) on each side of the peak.
    n_grade: int = 40
    #: kappa (E - D) beyond which the tail is integrated in closed form.
    tail_logs: float = 40.0
    #: Maximum bisection iterations (each halves the bracket).
    max_bisect: int = 200

    # -- evaluation --------------------------------------------------------------------
    def log_predict(self, t: Any, params: Mapping[str, Any], *, xp: Namespace = NUMPY) -> Any:
        """Natural log of the level at days ``t`` (``-inf`` before infusion).

        Overflow-safe: every term is a log and the soft minimum is
        ``-logaddexp(-kappa E, -kappa D) / kappa`` (stable ``logaddexp`` of the namespace;
        written without ``minimum``/``maximum`` so that the pytensor gradient is exact
        where ``E == D``, i.e. at ``t == tmax``).
        """
        tmax, kappa = params["tmax"], params["kappa"]
        log_cmax, log_foldx = xp.log(params["cmax"]), xp.log(params["foldx"])
        rho = log_foldx / tmax
        tt = xp.maximum(t, 0.0)
        tau = tt - tmax
        e = log_cmax - log_foldx + rho * tt
        d = log_cmax + xp.logaddexp(xp.log1p(-params["fb"]) - params["alpha"] * tau,
                                    xp.log(params["fb"]) - params["beta"] * tau)
        out = -xp.logaddexp(-kappa * e, -kappa * d) / kappa
        return xp.where(t < 0, -np.inf, out)

    def breakpoints(self, params: Mapping[str, float]) -> list[float]:
        """The infusion, the branch crossing ``tmax`` and points around the corner.

        The corner has width ``w = 1 / (kappa (rho + alpha))``; for large ``kappa`` it is
        too narrow for adaptive quadrature to notice unless it is bracketed, so
        ``tmax +- w`` and ``tmax +- 8 w`` are returned as well (those at or below 0 are
        dropped).
        """
        tmax, kappa = float(params["tmax"]), float(params["kappa"])
        rho = math.log(float(params["foldx"])) / tmax
        w = 1.0 / (kappa * (rho + float(params["alpha"])))
        pts = [tmax + c * w for c in (-8.0, -1.0, 0.0, 1.0, 8.0)]
        return [0.0] + [x for x in pts if x > 0.0]

    # -- helpers on flat, broadcast parameter arrays ----------------------------------------
    def _flat(self, params, *extra: ArrayLike) -> tuple[dict[str, NDArray], list[NDArray],
                                                      tuple[int, ...]]:
        p = self.check_params(params)
        arrs = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in extra), *p.values())
        shape = arrs[0].shape if arrs else ()
        flat = [a.ravel() for a in arrs]
        q = dict(zip(p, flat[len(extra):], strict=True))
        return q, flat[:len(extra)], shape

    def _log_c(self, t: NDArray, q: Mapping[str, NDArray]) -> NDArray:
        with np.errstate(under="ignore"):
            return self.log_predict(t, q)

    @staticmethod
    def _slope_sign(t: NDArray, q: Mapping[str, NDArray]) -> NDArray:
        """``h(t)``: positive where log C increases, negative where it decreases.

        ``d log C/dt = w_E rho + w_D D'`` with ``w_E / w_D = exp(-kappa (E - D))``; its
        sign is that of ``h = -kappa (E - D) + log rho - log|D'|``.
        """
        log_foldx = np.log(q["foldx"])
        rho = log_foldx / q["tmax"]
        tau = t - q["tmax"]
        la = np.log1p(-q["fb"]) - q["alpha"] * tau
        lb = np.log(q["fb"]) - q["beta"] * tau
        lg = np.logaddexp(la, lb)
        wa = np.exp(la - lg)
        dabs = q["alpha"] * wa + q["beta"] * (1.0 - wa)
        e_minus_d = rho * t - log_foldx - lg
        return -q["kappa"] * e_minus_d + np.log(rho) - np.log(dabs)

    def _bisect(self, f, lo: NDArray, hi: NDArray) -> NDArray:
        """Vectorised bisection for a + to - sign change of ``f`` in ``[lo, hi]``."""
        lo, hi = lo.copy(), hi.copy()
        for _ in range(self.max_bisect):
            mid = 0.5 * (lo + hi)
            pos = f(mid) > 0
            lo = np.where(pos, mid, lo)
            hi = np.where(pos, hi, mid)
            if np.all(hi - lo <= 2.0 * np.finfo(float).eps * np.maximum(np.abs(hi), 1e-300)):
                break
        return 0.5 * (lo + hi)

    def _peak_flat(self, q: Mapping[str, NDArray]) -> NDArray:
        """Realised time of the maximum on ``t >= 0`` (flat arrays)."""
        with np.errstate(under="ignore"):
            rho = np.log(q["foldx"]) / q["tmax"]
            slow = np.minimum(q["alpha"], q["beta"])
            hi = q["tmax"] + (np.maximum(np.log(rho / slow), 0.0) + 1.0) / (q["kappa"]
                                                                            * (rho + slow))
            lo = np.zeros_like(hi)
            rising = self._slope_sign(lo, q) > 0
            out = np.zeros_like(hi)
            if np.any(rising):
                sub = {k: v[rising] for k, v in q.items()}
                out[rising] = self._bisect(lambda s: self._slope_sign(s, sub),
                                           lo[rising], hi[rising])
        return out

    def _cumulative_flat(self, t: NDArray, q: Mapping[str, NDArray], tpk: NDArray,
                         chunk: int = 2048) -> NDArray:
        """AUC from 0 to ``t`` for flat arrays ``t``, ``q`` and realised peak ``tpk``."""
        xi, wi = np.polynomial.legendre.leggauss(self.n_gauss)
        j = np.arange(self.n_grade + 1, dtype=float)
        frac_left = np.concatenate([1.0 - 2.0 ** -j, [1.0]])       # 0 .. 1, dense at 1
        frac_right = np.concatenate([[0.0], 2.0 ** -j[::-1]])      # 0 .. 1, dense at 0
        out = np.zeros(t.shape)
        with np.errstate(under="ignore"):
            rho = np.log(q["foldx"]) / q["tmax"]
            slow = np.minimum(q["alpha"], q["beta"])
            tfar = np.maximum(tpk, q["tmax"]) + self.tail_logs / (q["kappa"] * (rho + slow))
            for s in range(0, t.size, chunk):
                sl = slice(s, s + chunk)
                tp, tf = tpk[sl, None], tfar[sl, None]
                nodes = np.concatenate([tp * frac_left, tp + (tf - tp) * frac_right], axis=1)
                tc = np.clip(t[sl], 0.0, tfar[sl])[:, None]
                a = np.minimum(nodes[:, :-1], tc)
                b = np.minimum(nodes[:, 1:], tc)
                half = 0.5 * (b - a)
                x = (0.5 * (a + b))[..., None] + half[..., None] * xi
                qs = {k: v[sl, None, None] for k, v in q.items()}
                vals = np.exp(self._log_c(x, qs))
                out[sl] = np.einsum("ik,ikn,n->i", half, vals, wi)
            # closed-form tail beyond T_far, where log C = D to e^-40 / kappa
            past = t > tfar
            if np.any(past):
                d0 = tfar[past] - q["tmax"][past]
                span = t[past] - tfar[past]
                a, f, b = q["alpha"][past], q["fb"][past], q["beta"][past]
                tail = ((1.0 - f) * np.exp(-a * d0) * (-np.expm1(-a * span)) / a
                        + f * np.exp(-b * d0) * (-np.expm1(-b * span)) / b)
                out[past] += q["cmax"][past] * tail
        return out

    # -- public numerical derived quantities --------------------------------------------
    def peak(self, params) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Realised time (day) and level of the maximum.

        Returns
        -------
        tmax, cmax : ndarray
            Broadcast shape of the parameters.
        """
        q, _, shape = self._flat(params)
        tpk = self._peak_flat(q)
        return tpk.reshape(shape), np.exp(self._log_c(tpk, q)).reshape(shape)

    def cumulative_auc(self, t: ArrayLike, params) -> NDArray[np.float64]:
        """AUC from 0 to ``t`` (level unit x day); ``t`` may be ``inf``; 0 for ``t <= 0``."""
        q, (tf,), shape = self._flat(params, t)
        return self._cumulative_flat(tf, q, self._peak_flat(q)).reshape(shape)

    def auc(self, t0: ArrayLike, t1: ArrayLike, params) -> NDArray[np.float64]:
        """AUC from ``t0`` to ``t1`` (level unit x day)."""
        q, (a, b), shape = self._flat(params, t0, t1)
        tpk = self._peak_flat(q)
        return (self._cumulative_flat(b, q, tpk) - self._cumulative_flat(a, q, tpk)).reshape(
            shape)

    def _time_below_flat(self, level: NDArray, q: Mapping[str, NDArray],
                         tpk: NDArray) -> NDArray:
        with np.errstate(divide="ignore", under="ignore"):
            ll = np.log(level)
            lpk = self._log_c(tpk, q)
            out = np.where(level <= 0, np.inf, tpk)
            todo = (level > 0) & (ll < lpk)
            if np.any(todo):
                sub = {k: v[todo] for k, v in q.items()}
                hi = np.maximum(tpk[todo], sub["tmax"] + decline_time_below(
                    level[todo] / sub["cmax"], sub["alpha"], sub["fb"], sub["beta"]))
                llt = ll[todo]
                out[todo] = self._bisect(lambda s: self._log_c(s, sub) - llt, tpk[todo], hi)
        return out

    def time_below(self, level: ArrayLike, params) -> NDArray[np.float64]:
        """First time after the realised peak at which the level falls to ``level`` (day).

        Returns the realised peak time where ``level`` is at or above the realised peak
        level and ``inf`` where ``level <= 0``.
        """
        q, (lv,), shape = self._flat(params, level)
        return self._time_below_flat(lv, q, self._peak_flat(q)).reshape(shape)

    def derived(self, params, *, below: Sequence[float] = ()) -> dict[str, NDArray]:
        """Derived quantities (numerical where needed); see :meth:`Model.derived`.

        ``tmax`` and ``cmax`` are the realised peak, not the parameters; also returns
        ``rho``, ``r0``, ``foldx`` and ``kappa``.
        """
        q, _, shape = self._flat(params)
        tpk = self._peak_flat(q)
        rho = np.log(q["foldx"]) / q["tmax"]

        def cum(x: float) -> NDArray:
            return self._cumulative_flat(np.full(tpk.shape, x), q, tpk).reshape(shape)

        out = {
            "doubling_time": (LN2 / rho).reshape(shape),
            "t_half_alpha": (LN2 / q["alpha"]).reshape(shape),
            "t_half_beta": (LN2 / q["beta"]).reshape(shape),
            "tmax": tpk.reshape(shape),
            "cmax": np.exp(self._log_c(tpk, q)).reshape(shape),
            "rho": rho.reshape(shape),
            "r0": (q["cmax"] / q["foldx"]).reshape(shape),
            "foldx": q["foldx"].reshape(shape),
            "kappa": q["kappa"].reshape(shape),
            "auc_0_28": cum(28.0),
            "auc_0_84": cum(84.0),
            "auc_0_inf": cum(math.inf),
        }
        for level in below:
            lv = np.full(tpk.shape, float(level))
            out[f"time_below_{level:g}"] = self._time_below_flat(lv, q, tpk).reshape(shape)
        return out
