"""Ogasawara 2021 piecewise model: lag, exponential expansion, bi-exponential decline.

The liso-cel population model (Ogasawara 2021) is Stein's piecewise model with a lag
phase before expansion starts. With ``tmax`` measured from the infusion (``tmax > tlag``)::

    rho = ln(foldx) / (tmax - tlag),  r0 = cmax / foldx
    C(t) = r0                                                      0 <= t < tlag
    C(t) = r0 * exp(rho * (t - tlag))                              tlag <= t < tmax
    C(t) = cmax * [(1 - fb) exp(-alpha (t - tmax)) + fb exp(-beta (t - tmax))]  t >= tmax

and ``C(t) = 0`` before the infusion. ``tlag -> 0`` gives the Stein model
(:class:`~carkinetics.models.piecewise.PiecewiseModel`).

The exact parameterisation of the paper was not read (CLINICAL.md 2b, "I"); the form above
is the one that reproduces its published population means of the derived quantities: lag
3.27 d, doubling time 0.755 d, Tmax 9.29 d (from infusion), initial-decline half-life
5.00 d, terminal half-life 352 d.

Reference: Ogasawara K et al. Clin Pharmacokinet 2021 (liso-cel population cellular
kinetics, TRANSCEND NHL 001), doi:10.1007/s40262-021-01039-5, PMC8613160.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics.exceptions import ModelSpecError
from carkinetics.models._xp import NUMPY, Namespace
from carkinetics.models.base import LN2, Model, ParameterSpec
from carkinetics.models.piecewise import biexp_auc, decline_time_below

__all__ = ["PiecewiseLagModel", "OGASAWARA_2021"]

_SRC = "Ogasawara 2021 (Clin Pharmacokinet, doi:10.1007/s40262-021-01039-5) abstract (R)"

#: Published population means of the derived quantities (Ogasawara 2021 abstract, R).
OGASAWARA_2021: dict[str, float] = {
    "tlag": 3.27,
    "doubling_time": 0.755,
    "tmax": 9.29,
    "t_half_alpha": 5.00,
    "t_half_beta": 352.0,
}

_RHO = LN2 / OGASAWARA_2021["doubling_time"]
_FOLDX = math.exp(_RHO * (OGASAWARA_2021["tmax"] - OGASAWARA_2021["tlag"]))

TLAG = ParameterSpec(
    "tlag", "day", OGASAWARA_2021["tlag"], 0.0, 365.0, "log",
    "duration of the lag phase (level stays at r0) before exponential expansion",
    _SRC + ": population mean lag 3.27 d",
)
FOLDX = ParameterSpec(
    "foldx", "1", _FOLDX, 1.0, 1e9, "log",
    "fold expansion from r0 (lag level) to cmax during the growth phase",
    _SRC + ": exp(rho (tmax - tlag)) with rho = ln2 / 0.755 d, tmax 9.29 d, lag 3.27 d "
    "(computed here, I)",
)
TMAX = ParameterSpec(
    "tmax", "day", OGASAWARA_2021["tmax"], 0.0, 365.0, "log",
    "time of peak expansion, measured from the infusion (tmax > tlag)",
    _SRC + ": population mean Tmax 9.29 d",
)
CMAX = ParameterSpec(
    "cmax", "copies/ug", 24000.0, 0.0, 1e12, "log", "peak level",
    "I: not published in Ogasawara 2021's abstract; 24000 copies/ug is Stein 2019's "
    "tisagenlecleucel value, used as an order-of-magnitude placeholder",
)
ALPHA = ParameterSpec(
    "alpha", "1/day", LN2 / OGASAWARA_2021["t_half_alpha"], 0.0, 50.0, "log",
    "rate of the initial (contraction) decline",
    _SRC + ": ln2 / initial-decline half-life 5.00 d",
)
FB = ParameterSpec(
    "fb", "1", 0.0079, 0.0, 1.0, "logit",
    "fraction of cmax in the slow (persistence) phase",
    "I: not published in Ogasawara 2021's abstract; Stein 2019's tisagenlecleucel value "
    "0.0079 used as a placeholder",
)
BETA = ParameterSpec(
    "beta", "1/day", LN2 / OGASAWARA_2021["t_half_beta"], 0.0, 50.0, "log",
    "rate of the terminal (persistence) decline",
    _SRC + ": ln2 / terminal half-life 352 d",
)


class PiecewiseLagModel(Model):
    """Piecewise model with a lag phase (Ogasawara 2021, lisocabtagene maraleucel).

    Parameters are ``tlag`` (day), ``foldx`` (fold expansion during growth), ``tmax``
    (day from infusion, ``tmax > tlag``), ``cmax`` (level unit), ``alpha`` (1/day),
    ``fb`` (fraction) and ``beta`` (1/day). The level is ``r0 = cmax / foldx`` from the
    infusion to ``tlag``, grows at ``rho = ln(foldx) / (tmax - tlag)`` to ``cmax`` at
    ``tmax`` and then declines bi-exponentially.

    Examples
    --------
    >>> from carkinetics.models import get_model
    >>> m = get_model("piecewise_lag")
    >>> d = m.derived(m.typical())
    >>> round(float(d["doubling_time"]), 3), round(float(d["t_half_beta"]))
    (0.755, 352)
    """

    name = "piecewise_lag"
    description = "lag, exponential expansion to tmax, bi-exponential decline (Ogasawara 2021)"
    level_param = "cmax"
    closed_form = True
    reference = ("Ogasawara K et al. Clin Pharmacokinet 2021 (liso-cel population cellular "
                 "kinetics), doi:10.1007/s40262-021-01039-5")
    params = (TLAG, FOLDX, TMAX, CMAX, ALPHA, FB, BETA)

    def _check_relations(self, p: dict[str, NDArray[np.float64]]) -> None:
        """Require ``tlag < tmax`` elementwise.

        Raises
        ------
        ModelSpecError
            Naming ``tlag`` and ``tmax`` and the first offending pair.
        """
        tlag, tmax = np.broadcast_arrays(p["tlag"], p["tmax"])
        bad = ~(tlag < tmax)
        if np.any(bad):
            raise ModelSpecError(
                f"Invalid tlag={float(tlag[bad].ravel()[0])!r} with tmax="
                f"{float(tmax[bad].ravel()[0])!r} ({int(np.count_nonzero(bad))} bad "
                "value(s)); expected tlag < tmax (the lag must end before the peak)."
            )

    # -- evaluation --------------------------------------------------------------------
    def log_predict(self, t: Any, params: Mapping[str, Any], *, xp: Namespace = NUMPY) -> Any:
        """Natural log of the level at days ``t`` (``-inf`` before infusion).

        Overflow-safe: the growth branch is evaluated on times clamped to
        ``[tlag, tmax]``, the decline branch on ``max(t - tmax, 0)``.
        """
        tlag, tmax = params["tlag"], params["tmax"]
        log_cmax, log_foldx = xp.log(params["cmax"]), xp.log(params["foldx"])
        dur = tmax - tlag
        rho = log_foldx / dur
        grow = xp.minimum(xp.maximum(t - tlag, 0.0), dur)
        dt = xp.maximum(t - tmax, 0.0)
        up = log_cmax - log_foldx + rho * grow
        down = log_cmax + xp.logaddexp(xp.log1p(-params["fb"]) - params["alpha"] * dt,
                                       xp.log(params["fb"]) - params["beta"] * dt)
        out = xp.where(t < tmax, up, down)
        return xp.where(t < 0, -np.inf, out)

    def breakpoints(self, params: Mapping[str, float]) -> list[float]:
        """Kinks of the curve: the infusion, the end of the lag and tmax."""
        return [0.0, float(params["tlag"]), float(params["tmax"])]

    # -- exposure ----------------------------------------------------------------------
    def cumulative_auc(self, t: ArrayLike, params) -> NDArray[np.float64]:
        """Closed-form AUC from 0 to ``t`` (level unit x day); ``t`` may be ``inf``.

        ``r0 min(t, tlag) + r0 (exp(rho m) - 1) / rho + cmax B(t - tmax)`` with ``m`` the
        growth time elapsed and ``B`` the bi-exponential integral; the growth term is
        written as ``cmax exp(rho (m - d)) (1 - exp(-rho m)) / rho`` (``d = tmax - tlag``)
        so no ``exp`` of a positive argument is formed.
        """
        p = self.check_params(params)
        t = np.asarray(t, dtype=float)
        tlag, tmax, cmax, foldx = p["tlag"], p["tmax"], p["cmax"], p["foldx"]
        dur = tmax - tlag
        rho = np.log(foldx) / dur
        with np.errstate(under="ignore"):
            lag = cmax / foldx * np.clip(t, 0.0, tlag)
            m = np.clip(t - tlag, 0.0, dur)
            grow = cmax * np.exp(rho * (m - dur)) * (-np.expm1(-rho * m)) / rho
            down = cmax * biexp_auc(np.maximum(t - tmax, 0.0), p["alpha"], p["fb"], p["beta"])
        return lag + grow + down

    def auc(self, t0: ArrayLike, t1: ArrayLike, params) -> NDArray[np.float64]:
        """Closed-form AUC from ``t0`` to ``t1`` (level unit x day)."""
        return self.cumulative_auc(t1, params) - self.cumulative_auc(t0, params)

    def time_below(self, level: ArrayLike, params) -> NDArray[np.float64]:
        """First time after tmax at which the level falls to ``level`` (day).

        Returns ``tmax`` where ``level >= cmax`` and ``inf`` where ``level <= 0``.
        """
        p = self.check_params(params)
        q = np.asarray(level, dtype=float) / p["cmax"]
        return p["tmax"] + decline_time_below(q, p["alpha"], p["fb"], p["beta"])

    def derived(self, params, *, below: Sequence[float] = ()) -> dict[str, NDArray]:
        """Closed-form derived quantities; see :meth:`Model.derived`.

        Also returns ``tlag``, ``rho`` (1/day), ``r0`` and ``foldx``.
        """
        p = self.check_params(params)
        rho = np.log(p["foldx"]) / (p["tmax"] - p["tlag"])
        out = {
            "doubling_time": LN2 / rho,
            "t_half_alpha": LN2 / p["alpha"],
            "t_half_beta": LN2 / p["beta"],
            "tlag": p["tlag"],
            "tmax": p["tmax"],
            "cmax": p["cmax"],
            "rho": rho,
            "r0": p["cmax"] / p["foldx"],
            "foldx": p["foldx"],
            "auc_0_28": self.cumulative_auc(28.0, p),
            "auc_0_84": self.cumulative_auc(84.0, p),
            "auc_0_inf": self.cumulative_auc(np.inf, p),
        }
        for level in below:
            out[f"time_below_{level:g}"] = self.time_below(level, p)
        return out

    @staticmethod
    def from_derived(tlag: ArrayLike, doubling_time: ArrayLike, tmax: ArrayLike,
                     t_half_alpha: ArrayLike, t_half_beta: ArrayLike, cmax: ArrayLike,
                     fb: ArrayLike) -> dict[str, NDArray[np.float64]]:
        """Parameters from the published derived quantities (Ogasawara 2021's summary).

        Parameters
        ----------
        tlag, doubling_time, tmax, t_half_alpha, t_half_beta : array_like
            Lag, doubling time, time of peak (from infusion) and half-lives (day).
        cmax : array_like
            Peak level (level unit).
        fb : array_like
            Fraction of the peak in the slow phase.

        Returns
        -------
        dict
            ``tlag, foldx, tmax, cmax, alpha, fb, beta`` as float arrays.
        """
        rho = LN2 / np.asarray(doubling_time, dtype=float)
        tlag, tmax = np.asarray(tlag, dtype=float), np.asarray(tmax, dtype=float)
        return {"tlag": tlag, "foldx": np.exp(rho * (tmax - tlag)), "tmax": tmax,
                "cmax": np.asarray(cmax, dtype=float),
                "alpha": LN2 / np.asarray(t_half_alpha, dtype=float),
                "fb": np.asarray(fb, dtype=float),
                "beta": LN2 / np.asarray(t_half_beta, dtype=float)}
