"""Stein 2019 piecewise model: exponential expansion to Tmax, then bi-exponential decline.

Clinical parameterisation (``piecewise``)::

    rho = ln(foldx) / tmax,  r0 = cmax / foldx
    C(t) = r0 * exp(rho * t)                                        0 <= t < tmax
    C(t) = cmax * [(1 - fb) exp(-alpha (t - tmax)) + fb exp(-beta (t - tmax))]  t >= tmax

Rate parameterisation (``piecewise_rate``): ``r0, rho, tmax, alpha, fb, beta`` with
``foldx = exp(rho * tmax)`` and ``cmax = r0 * foldx`` (exact conversion both ways:
:func:`clinical_to_rate`, :func:`rate_to_clinical`).

Reference: Stein AM et al. Tisagenlecleucel model-based cellular kinetic analysis of
chimeric antigen receptor-T cells. CPT Pharmacometrics Syst Pharmacol 2019;8:285-295.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics.models._xp import NUMPY, Namespace
from carkinetics.models.base import LN2, Model, ParameterSpec

__all__ = ["PiecewiseModel", "PiecewiseRateModel", "clinical_to_rate", "rate_to_clinical",
           "decline_time_below", "biexp_auc"]

_SRC = "Stein 2019 (CPT:PSP 8:285) Table 1, as transcribed in nlmixr2lib (S)"

FOLDX = ParameterSpec("foldx", "1", 3900.0, 1.0, 1e9, "log",
                      "fold expansion from r0 to cmax", _SRC)
TMAX = ParameterSpec("tmax", "day", 9.3, 0.0, 365.0, "log", "time of peak expansion", _SRC)
CMAX = ParameterSpec("cmax", "copies/ug", 24000.0, 0.0, 1e12, "log", "peak level", _SRC)
ALPHA = ParameterSpec("alpha", "1/day", 0.16, 0.0, 50.0, "log",
                      "rate of the initial (contraction) decline", _SRC)
FB = ParameterSpec("fb", "1", 0.0079, 0.0, 1.0, "logit",
                   "fraction of cmax in the slow (persistence) phase", _SRC)
BETA = ParameterSpec("beta", "1/day", 0.0032, 0.0, 50.0, "log",
                     "rate of the terminal (persistence) decline", _SRC)
R0 = ParameterSpec("r0", "copies/ug", 24000.0 / 3900.0, 0.0, 1e12, "log",
                   "level extrapolated to the infusion time, cmax / foldx", _SRC)
RHO = ParameterSpec("rho", "1/day", float(np.log(3900.0) / 9.3), 0.0, 50.0, "log",
                    "expansion rate, ln(foldx) / tmax", _SRC)


def clinical_to_rate(params: Mapping[str, ArrayLike]) -> dict[str, NDArray]:
    """Convert (foldx, tmax, cmax, alpha, fb, beta) to (r0, rho, tmax, alpha, fb, beta)."""
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    return {"r0": p["cmax"] / p["foldx"], "rho": np.log(p["foldx"]) / p["tmax"],
            "tmax": p["tmax"], "alpha": p["alpha"], "fb": p["fb"], "beta": p["beta"]}


def rate_to_clinical(params: Mapping[str, ArrayLike]) -> dict[str, NDArray]:
    """Convert (r0, rho, tmax, alpha, fb, beta) to (foldx, tmax, cmax, alpha, fb, beta)."""
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    foldx = np.exp(p["rho"] * p["tmax"])
    return {"foldx": foldx, "tmax": p["tmax"], "cmax": p["r0"] * foldx,
            "alpha": p["alpha"], "fb": p["fb"], "beta": p["beta"]}


def biexp_auc(d: NDArray, alpha: NDArray, fb: NDArray, beta: NDArray) -> NDArray:
    """Integral over [0, d] of (1 - fb) exp(-alpha s) + fb exp(-beta s) (d may be inf)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.where(alpha > 0, -np.expm1(-alpha * d) / alpha, d)
        slow = np.where(beta > 0, -np.expm1(-beta * d) / beta, d)
    return (1.0 - fb) * fast + fb * slow


def decline_time_below(q: ArrayLike, alpha: ArrayLike, fb: ArrayLike, beta: ArrayLike,
                       iters: int = 60) -> NDArray:
    """Time s >= 0 at which (1 - fb) e^{-alpha s} + fb e^{-beta s} first equals ``q``.

    Vectorised Newton iteration on h(s) = log g(s) - log q, which is convex and
    decreasing when alpha >= beta; started from s0 = -log(q) / max(alpha, beta) (where
    h >= 0) the iterates increase monotonically to the root. Returns 0 where q >= 1 and
    inf where the level never falls that low (q <= 0, or beta == 0 and fb >= q).
    """
    q, alpha, fb, beta = np.broadcast_arrays(*(np.asarray(x, dtype=float)
                                               for x in (q, alpha, fb, beta)))
    out = np.zeros(q.shape)
    never = (q <= 0) | ((beta <= 0) & (fb >= q))
    todo = (q < 1) & ~never
    out[never] = np.inf
    if np.any(todo):
        lq = np.log(q[todo])
        a, f, b = alpha[todo], fb[todo], beta[todo]
        hi_rate = np.maximum(a, b)
        s = -lq / hi_rate
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            lf, ls = np.log1p(-f), np.log(f)
            for _ in range(iters):
                u, v = lf - a * s, ls - b * s
                lg = np.logaddexp(u, v)
                w = np.exp(u - lg)  # weight of the fast phase
                slope = -(a * w + b * (1.0 - w))
                step = (lg - lq) / slope
                s = s - step
                if np.all(np.abs(step) <= 1e-13 * np.maximum(1.0, s)):
                    break
        out[todo] = s
    return out


class PiecewiseModel(Model):
    """Stein 2019 piecewise CAR-T kinetic model, clinical parameterisation.

    Parameters are ``foldx`` (fold expansion), ``tmax`` (day), ``cmax`` (level unit),
    ``alpha`` (1/day), ``fb`` (fraction) and ``beta`` (1/day).

    Examples
    --------
    >>> from carkinetics.models import get_model
    >>> m = get_model("piecewise")
    >>> round(float(m.derived(m.typical())["doubling_time"]), 2)
    0.78
    """

    name = "piecewise"
    description = "exponential expansion to tmax, then bi-exponential contraction (Stein 2019)"
    level_param = "cmax"
    closed_form = True
    reference = "Stein AM et al. CPT Pharmacometrics Syst Pharmacol 2019;8:285-295"
    params = (FOLDX, TMAX, CMAX, ALPHA, FB, BETA)

    def _clinical(self, p: Mapping[str, NDArray]) -> Mapping[str, NDArray]:
        return p

    def log_predict(self, t, params, *, xp: Namespace = NUMPY):
        """Log level; overflow-safe (each branch is evaluated on clamped times)."""
        p = self._clinical(params)
        tmax, log_cmax = p["tmax"], xp.log(p["cmax"])
        log_foldx = xp.log(p["foldx"])
        rho = log_foldx / tmax
        t_up = xp.minimum(xp.maximum(t, 0.0), tmax)
        dt = xp.maximum(t - tmax, 0.0)
        up = log_cmax - log_foldx + rho * t_up
        down = log_cmax + xp.logaddexp(xp.log1p(-p["fb"]) - p["alpha"] * dt,
                                       xp.log(p["fb"]) - p["beta"] * dt)
        out = xp.where(t < tmax, up, down)
        return xp.where(t < 0, -np.inf, out)

    def _linear(self, t: NDArray, p: Mapping[str, NDArray]) -> NDArray:
        # Linear-scale closed form, overflow-safe: the expansion branch is evaluated on
        # times clamped at tmax, the decline branch on times clamped at tmax from below,
        # so every exp() argument is at most log(cmax). Per-participant constants are
        # formed once and full-size temporaries are updated in place.
        tmax, cmax, fb = p["tmax"], p["cmax"], p["fb"]
        shape = np.broadcast_shapes(t.shape, *(np.shape(v) for v in p.values()))
        rho = np.log(p["foldx"]) / tmax
        log_r0 = np.log(cmax) - rho * tmax
        up = np.minimum(t, tmax, out=np.empty(shape))
        up *= rho
        up += log_r0
        np.exp(up, out=up)
        down = np.subtract(t, tmax, out=np.empty(shape))
        np.maximum(down, 0.0, out=down)
        fast = np.multiply(down, -p["alpha"], out=np.empty(shape))
        np.exp(fast, out=fast)
        fast *= cmax * (1.0 - fb)
        down *= -p["beta"]
        np.exp(down, out=down)
        down *= cmax * fb
        down += fast
        np.copyto(down, up, where=np.broadcast_to(t < tmax, shape))
        if np.any(t < 0):
            down[np.broadcast_to(t < 0, shape)] = 0.0
        return down

    def predict(self, t: ArrayLike, params) -> NDArray[np.float64]:
        """Predicted level at days ``t`` (closed form on the linear scale, overflow-safe)."""
        p = self._clinical(self.check_params(params))
        with np.errstate(under="ignore"):
            return self._linear(np.asarray(t, dtype=float), p)

    def breakpoints(self, params):
        """Kinks of the curve: the infusion and tmax."""
        return [0.0, float(self._clinical({k: np.asarray(v) for k, v in params.items()})["tmax"])]

    def cumulative_auc(self, t: ArrayLike, params) -> NDArray[np.float64]:
        """Closed-form AUC from 0 to ``t`` (level unit x day); ``t`` may be ``inf``."""
        p = self._clinical(self.check_params(params))
        t = np.asarray(t, dtype=float)
        tmax, cmax, foldx = p["tmax"], p["cmax"], p["foldx"]
        rho = np.log(foldx) / tmax
        m = np.clip(t, 0.0, tmax)
        # r0 (exp(rho m) - 1) / rho, written with cmax to avoid r0 * huge products
        with np.errstate(under="ignore"):
            up = cmax * np.exp(rho * (m - tmax)) * (-np.expm1(-rho * m)) / rho
            d = np.maximum(t - tmax, 0.0)
            down = cmax * biexp_auc(d, p["alpha"], p["fb"], p["beta"])
        return up + down

    def auc(self, t0: ArrayLike, t1: ArrayLike, params) -> NDArray[np.float64]:
        """Closed-form AUC from ``t0`` to ``t1`` (level unit x day)."""
        return self.cumulative_auc(t1, params) - self.cumulative_auc(t0, params)

    def time_below(self, level: ArrayLike, params) -> NDArray[np.float64]:
        """First time after tmax at which the level falls below ``level`` (day)."""
        p = self._clinical(self.check_params(params))
        q = np.asarray(level, dtype=float) / p["cmax"]
        return p["tmax"] + decline_time_below(q, p["alpha"], p["fb"], p["beta"])

    def derived(self, params, *, below: Sequence[float] = ()) -> dict[str, NDArray]:
        """Closed-form derived quantities; see :meth:`Model.derived`.

        Also returns ``rho``, ``r0`` and ``foldx``.
        """
        p = self._clinical(self.check_params(params))
        rho = np.log(p["foldx"]) / p["tmax"]
        out = {
            "doubling_time": LN2 / rho,
            "t_half_alpha": LN2 / p["alpha"],
            "t_half_beta": LN2 / p["beta"],
            "tmax": p["tmax"],
            "cmax": p["cmax"],
            "rho": rho,
            "r0": p["cmax"] / p["foldx"],
            "foldx": p["foldx"],
            "auc_0_28": self.cumulative_auc(28.0, params),
            "auc_0_84": self.cumulative_auc(84.0, params),
            "auc_0_inf": self.cumulative_auc(np.inf, params),
        }
        for level in below:
            out[f"time_below_{level:g}"] = self.time_below(level, params)
        return out


class PiecewiseRateModel(PiecewiseModel):
    """The Stein 2019 model in its rate parameterisation (r0, rho, tmax, alpha, fb, beta)."""

    name = "piecewise_rate"
    description = "piecewise model parameterised by r0 and the expansion rate rho"
    level_param = "r0"
    params = (R0, RHO, TMAX, ALPHA, FB, BETA)

    def _clinical(self, p):
        return rate_to_clinical(p)

    def predict(self, t: ArrayLike, params) -> NDArray[np.float64]:
        """Predicted level; evaluated on the log scale so exp(rho * tmax) is never formed."""
        p = self.check_params(params)
        with np.errstate(divide="ignore", under="ignore"):
            return np.exp(self.log_predict(np.asarray(t, dtype=float), p))

    def log_predict(self, t, params, *, xp: Namespace = NUMPY):
        """Log level in the rate parameterisation (no exp(rho * tmax) formed)."""
        tmax, rho, log_r0 = params["tmax"], params["rho"], xp.log(params["r0"])
        t_up = xp.minimum(xp.maximum(t, 0.0), tmax)
        dt = xp.maximum(t - tmax, 0.0)
        up = log_r0 + rho * t_up
        down = log_r0 + rho * tmax + xp.logaddexp(xp.log1p(-params["fb"]) - params["alpha"] * dt,
                                                  xp.log(params["fb"]) - params["beta"] * dt)
        out = xp.where(t < tmax, up, down)
        return xp.where(t < 0, -np.inf, out)
