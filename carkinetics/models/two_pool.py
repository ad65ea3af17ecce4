"""Two-pool (effector / memory) CAR-T model, solved as an ODE.

Effector cells ``E`` proliferate at ``rho`` while a logistic switch ``g(t)`` is on; once
it turns off around ``tmax`` they die at ``d_e`` and convert to memory cells ``M`` at
``k_em``; memory cells die at ``beta``::

    g(t)  = 1 / (1 + exp(kappa (t - tmax)))
    dE/dt = [rho g - (1 - g) (d_e + k_em)] E,          E(0) = e0
    dM/dt = (1 - g) k_em E - beta M,                    M(0) = 0
    level = E + M

In the sharp limit ``kappa -> inf`` the level is exactly the Stein 2019 piecewise model
with ``foldx = exp(rho tmax)``, ``cmax = e0 foldx``, ``alpha = d_e + k_em`` and
``fb = k_em / (alpha - beta)`` (see :func:`to_piecewise` and :func:`from_piecewise`).

Numerical scheme (documented choice)
------------------------------------
The level spans many decades (e0 ~ 6 to cmax ~ 2e4 and back down), so the ODE is
integrated in log space. The state of each participant is

* ``u = log E`` with ``du/dt = rho g - (1 - g)(d_e + k_em)``;
* ``w = log(E + M)`` (the log of the observed level) with
  ``dw/dt = [rho g - (1 - g) d_e] f - beta (1 - f)``, ``f = E / (E + M) = exp(u - w)``;
* ``a = AUC / c_ref`` with ``da/dt = exp(w - log c_ref)``, ``c_ref = e0 exp(rho tmax)``
  (the sharp-limit peak), so ``a`` is O(days) whatever the level scale.

All three start at known values (``u = w = log e0``, ``a = 0``); their derivatives are
bounded by the rates (no ``exp`` of a large argument, ``f <= 1``), which makes absolute
tolerances on the log states relative tolerances on the level. All participants of a
batch are stacked in one :func:`scipy.integrate.solve_ivp` call (DOP853, numpy-vectorised
right-hand side, ``rtol = atol = 1e-10``), integrated in pieces that end at every
participant's ``tmax`` so that no step can jump over a sharp switch, up to ``T_end =
max(tmax + 40 / kappa)`` where ``g < e^-40``. Beyond ``T_end`` the system is linear with
constant coefficients and is continued in closed form (level and AUC, ``t`` may be
``inf``). Values between steps come from the solver's 7th-order dense output, evaluated
once at the union of requested times.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.integrate import solve_ivp
from scipy.special import expit

from carkinetics.exceptions import ModelSpecError
from carkinetics.models._xp import NUMPY, Namespace
from carkinetics.models.base import LN2, Model, ParameterSpec

__all__ = ["TwoPoolModel", "TwoPoolSolution", "from_piecewise", "to_piecewise"]

# Stein 2019 typical values (CLINICAL.md 2a, nlmixr2lib transcription, S) mapped to the
# two-pool parameters by the sharp-limit identities (computed here).
_ST = {"foldx": 3900.0, "tmax": 9.3, "cmax": 24000.0, "alpha": 0.16, "fb": 0.0079,
       "beta": 0.0032}
_SRC = ("I: Stein 2019 typical values (foldx 3900, tmax 9.3, cmax 24000, alpha 0.16, "
        "fb 0.0079, beta 0.0032; S) mapped by the sharp-limit identities")

E0 = ParameterSpec("e0", "copies/ug", _ST["cmax"] / _ST["foldx"], 0.0, 1e12, "log",
                   "level of infused effector cells at t = 0", _SRC + ": e0 = cmax / foldx")
RHO = ParameterSpec("rho", "1/day", math.log(_ST["foldx"]) / _ST["tmax"], 0.0, 50.0, "log",
                    "effector proliferation rate while the switch is on",
                    _SRC + ": rho = ln(foldx) / tmax")
TMAX = ParameterSpec("tmax", "day", _ST["tmax"], 0.0, 365.0, "log",
                     "time at which the proliferation switch is half off", _SRC)
KAPPA = ParameterSpec(
    "kappa", "1/day", 5.0, 0.1, 1e4, "log",
    "steepness of the proliferation switch (large = sharp; inf = piecewise)",
    "I: 5 /day switches proliferation off over ~ +-0.4 d (g from 0.88 to 0.12), "
    "close to the piecewise limit yet smooth; bounds (0.1, 1e4]: a switch spread over "
    "more than weeks, or sharper than 1e-4 d, is outside what the model is meant for",
)
D_E = ParameterSpec("d_e", "1/day",
                    _ST["alpha"] * (1.0 - _ST["fb"]) + _ST["fb"] * _ST["beta"], 0.0, 50.0,
                    "log", "effector death rate after the switch",
                    _SRC + ": d_e = alpha (1 - fb) + fb beta")
K_EM = ParameterSpec("k_em", "1/day", _ST["fb"] * (_ST["alpha"] - _ST["beta"]), 0.0, 50.0,
                     "log", "effector-to-memory conversion rate after the switch",
                     _SRC + ": k_em = fb (alpha - beta)")
BETA = ParameterSpec("beta", "1/day", _ST["beta"], 0.0, 50.0, "log",
                     "memory-cell death rate", _SRC + ": beta")

#: log-units of the switch argument beyond which g is treated as 0 (g < e^-40).
_TAIL = 40.0


def to_piecewise(params: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    """Piecewise (Stein) parameters of the sharp limit of a two-pool parameter set.

    ``foldx = exp(rho tmax)``, ``cmax = e0 foldx``, ``alpha = d_e + k_em``,
    ``fb = k_em / (alpha - beta)``; ``kappa`` is ignored.

    Raises
    ------
    ModelSpecError
        If ``d_e <= beta`` (then ``fb >= 1``: the memory pool outgrows the effectors'
        decline and the sharp limit is not a Stein curve) or a value is invalid.
    """
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    missing = [k for k in ("e0", "rho", "tmax", "d_e", "k_em", "beta") if k not in p]
    if missing:
        raise ModelSpecError(f"Invalid two_pool params: missing {missing}.")
    d_e, k_em, beta = np.broadcast_arrays(p["d_e"], p["k_em"], p["beta"])
    bad = ~(d_e > beta)
    if np.any(bad):
        raise ModelSpecError(
            f"Invalid d_e={float(d_e[bad].ravel()[0])!r} with beta="
            f"{float(beta[bad].ravel()[0])!r}; the piecewise equivalent needs d_e > beta "
            "(fb = k_em / (d_e + k_em - beta) < 1)."
        )
    alpha = p["d_e"] + p["k_em"]
    foldx = np.exp(p["rho"] * p["tmax"])
    return {"foldx": foldx, "tmax": p["tmax"], "cmax": p["e0"] * foldx, "alpha": alpha,
            "fb": p["k_em"] / (alpha - p["beta"]), "beta": p["beta"]}


def from_piecewise(params: Mapping[str, ArrayLike],
                   kappa: ArrayLike = KAPPA.typical) -> dict[str, NDArray[np.float64]]:
    """Two-pool parameters whose sharp limit is the given piecewise (Stein) curve.

    ``e0 = cmax / foldx``, ``rho = ln(foldx) / tmax``, ``d_e = alpha (1 - fb) + fb beta``,
    ``k_em = fb (alpha - beta)``; ``kappa`` is supplied (default: the typical value).

    Raises
    ------
    ModelSpecError
        If ``alpha <= beta`` (no positive conversion rate reproduces the curve).
    """
    p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
    missing = [k for k in ("foldx", "tmax", "cmax", "alpha", "fb", "beta") if k not in p]
    if missing:
        raise ModelSpecError(f"Invalid piecewise params: missing {missing}.")
    alpha, beta = np.broadcast_arrays(p["alpha"], p["beta"])
    bad = ~(alpha > beta)
    if np.any(bad):
        raise ModelSpecError(
            f"Invalid alpha={float(alpha[bad].ravel()[0])!r} with beta="
            f"{float(beta[bad].ravel()[0])!r}; the two-pool equivalent needs alpha > beta."
        )
    return {"e0": p["cmax"] / p["foldx"], "rho": np.log(p["foldx"]) / p["tmax"],
            "tmax": p["tmax"], "kappa": np.asarray(kappa, dtype=float),
            "d_e": p["alpha"] * (1.0 - p["fb"]) + p["fb"] * p["beta"],
            "k_em": p["fb"] * (p["alpha"] - p["beta"]), "beta": p["beta"]}


class _Batch:
    """ODE solution of up to ``batch_size`` stacked participants (internal)."""

    def __init__(self, q: Mapping[str, NDArray], rtol: float, atol: float,
                 method: str) -> None:
        self.n = n = q["e0"].size
        self.q = q
        self.log_e0 = np.log(q["e0"])
        self.alpha = q["d_e"] + q["k_em"]
        self.log_cref = self.log_e0 + q["rho"] * q["tmax"]
        self.t_end = float(np.max(q["tmax"] + _TAIL / q["kappa"]))
        cuts = np.unique(np.concatenate([[0.0], q["tmax"], [self.t_end]]))
        self.bounds = cuts
        y = np.concatenate([self.log_e0, self.log_e0, np.zeros(n)])
        self.pieces = []
        for a, b in zip(cuts[:-1], cuts[1:], strict=True):
            sol = solve_ivp(self._rhs, (a, b), y, method=method, rtol=rtol, atol=atol,
                            dense_output=True, vectorized=True)
            if not sol.success:  # pragma: no cover - defensive
                raise ModelSpecError(f"two_pool ODE solve failed on [{a}, {b}]: {sol.message}")
            self.pieces.append(sol.sol)
            y = sol.y[:, -1]
        self.y_end = y

    def _rhs(self, t: float, y: NDArray) -> NDArray:
        n, q = self.n, self.q
        col = (slice(None), None) if y.ndim == 2 else (slice(None),)
        rho, tmax, kappa = q["rho"][col], q["tmax"][col], q["kappa"][col]
        d_e, beta, alpha = q["d_e"][col], q["beta"][col], self.alpha[col]
        u, w = y[:n], y[n:2 * n]
        z = kappa * (t - tmax)
        g, off = expit(-z), expit(z)
        f = np.exp(np.minimum(u - w, 0.0))
        du = rho * g - off * alpha
        dw = (rho * g - off * d_e) * f - beta * (1.0 - f)
        with np.errstate(over="ignore"):
            da = np.exp(w - self.log_cref[col])
        return np.concatenate([du, dw, da], axis=0)

    def slope(self, t: NDArray, j: NDArray, u: NDArray, w: NDArray) -> NDArray:
        """``d log(E + M)/dt`` for participants ``j`` at times ``t``."""
        q = self.q
        z = q["kappa"][j] * (t - q["tmax"][j])
        g, off = expit(-z), expit(z)
        f = np.exp(np.minimum(u - w, 0.0))
        return (q["rho"][j] * g - off * q["d_e"][j]) * f - q["beta"][j] * (1.0 - f)

    def states(self, t: NDArray, j: NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """``(u, w, a)`` for participants ``j`` at times ``0 <= t <= t_end`` (flat)."""
        n = self.n
        u, w, a = np.empty(t.shape), np.empty(t.shape), np.empty(t.shape)
        piece = np.clip(np.searchsorted(self.bounds, t, side="right") - 1, 0,
                        len(self.pieces) - 1)
        for k in np.unique(piece):
            sel = np.flatnonzero(piece == k)
            ut, inv = np.unique(t[sel], return_inverse=True)
            for s in range(0, ut.size, 4096):
                part = (inv >= s) & (inv < s + 4096)
                ys = self.pieces[k](ut[s:s + 4096])
                jj, col = j[sel[part]], inv[part] - s
                u[sel[part]] = ys[jj, col]
                w[sel[part]] = ys[n + jj, col]
                a[sel[part]] = ys[2 * n + jj, col]
        return u, w, a

    def tail(self, s: NDArray, j: NDArray) -> tuple[NDArray, NDArray, NDArray]:
        """Closed form beyond ``t_end``: ``(log E, log level, AUC from t_end)``, ``s >= 0``.

        With ``g = 0`` the system is linear: ``E = E1 e^{-alpha s}`` and
        ``M = M1 e^{-beta s} + k_em E1 (e^{-beta s} - e^{-alpha s}) / (alpha - beta)``.
        """
        n, q = self.n, self.q
        u1, w1, _ = self.y_end[:n][j], self.y_end[n:2 * n][j], self.y_end[2 * n:][j]
        alpha, beta, k_em = self.alpha[j], q["beta"][j], q["k_em"][j]
        lo, hi = np.minimum(alpha, beta), np.maximum(alpha, beta)
        d = hi - lo
        with np.errstate(divide="ignore", invalid="ignore", under="ignore", over="ignore"):
            log_m1 = w1 + np.log1p(-np.exp(np.minimum(u1 - w1, 0.0)))
            phi = np.where(d > 0, -np.expm1(-d * s) / d, s)  # (e^{-lo s} - e^{-hi s}) e^{lo s}/d
            log_e = u1 - alpha * s
            log_conv = np.log(k_em) + u1 - lo * s + np.log(phi)
            log_l = np.logaddexp(np.logaddexp(log_e, log_m1 - beta * s), log_conv)

            def psi(r: NDArray) -> NDArray:
                return -np.expm1(-r * s) / r

            conv_auc = (psi(lo) - np.where(np.isinf(s), 0.0, np.exp(-lo * s) * phi)) / hi
            e1, m1 = np.exp(u1), np.exp(log_m1)
            auc = e1 * psi(alpha) + m1 * psi(beta) + k_em * e1 * conv_auc
        return log_e, log_l, auc


class TwoPoolSolution:
    """Solved two-pool ODE for ``n`` participants, evaluable at any times.

    Parameters
    ----------
    params : mapping
        Checked parameter arrays, all of shape ``(n,)``.
    rtol, atol : float
        Solver tolerances (``atol`` applies to the log states and to the AUC in units of
        ``c_ref`` days).
    method : str
        :func:`scipy.integrate.solve_ivp` method.
    batch_size : int
        Participants stacked per solve (the cost of a stacked solve grows faster than
        linearly with the number of distinct switch times).

    Notes
    -----
    Methods take ``t`` (days) and ``index`` (participant numbers), broadcast together;
    ``index=None`` means ``arange(n)``.
    """

    def __init__(self, params: Mapping[str, NDArray], *, rtol: float = 1e-10,
                 atol: float = 1e-10, method: str = "DOP853", batch_size: int = 64) -> None:
        q = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in params.items()}
        self.n = n = q["e0"].size
        self.params = q
        self.batch_size = batch_size
        self.batches = [_Batch({k: v[s:s + batch_size] for k, v in q.items()}, rtol, atol,
                               method) for s in range(0, n, batch_size)]

    def _pairs(self, t: ArrayLike, index: ArrayLike | None):
        t = np.asarray(t, dtype=float)
        idx = np.arange(self.n) if index is None else np.asarray(index)
        t, idx = np.broadcast_arrays(t, idx)
        return t.ravel(), idx.ravel().astype(np.intp), t.shape

    def _eval(self, t: NDArray, idx: NDArray) -> dict[str, NDArray]:
        """Flat ``log_e``, ``log_level``, ``auc`` (cumulative from 0) at ``(t, idx)``."""
        out = {k: np.empty(t.shape) for k in ("log_e", "log_level", "auc")}
        bsel = idx // self.batch_size
        for b in np.unique(bsel):
            batch = self.batches[b]
            sel = np.flatnonzero(bsel == b)
            tt, j = t[sel], idx[sel] - b * self.batch_size
            le, ll, au = np.full(tt.shape, -np.inf), np.full(tt.shape, -np.inf), np.zeros(
                tt.shape)
            inside = (tt >= 0) & (tt <= batch.t_end)
            if np.any(inside):
                u, w, a = batch.states(tt[inside], j[inside])
                le[inside], ll[inside] = u, w
                au[inside] = a * np.exp(batch.log_cref[j[inside]])
            past = tt > batch.t_end
            if np.any(past):
                jp = j[past]
                e_, l_, a_ = batch.tail(tt[past] - batch.t_end, jp)
                a_end = batch.y_end[2 * batch.n:][jp] * np.exp(batch.log_cref[jp])
                le[past], ll[past], au[past] = e_, l_, a_end + a_
            out["log_e"][sel], out["log_level"][sel], out["auc"][sel] = le, ll, au
        return out

    def log_level(self, t: ArrayLike, index: ArrayLike | None = None) -> NDArray:
        """Log of the level ``E + M`` (``-inf`` before infusion)."""
        t, idx, shape = self._pairs(t, index)
        return self._eval(t, idx)["log_level"].reshape(shape)

    def level(self, t: ArrayLike, index: ArrayLike | None = None) -> NDArray:
        """Level ``E + M`` (0 before infusion)."""
        with np.errstate(under="ignore", over="ignore"):
            return np.exp(self.log_level(t, index))

    def effector(self, t: ArrayLike, index: ArrayLike | None = None) -> NDArray:
        """Effector level ``E`` (0 before infusion)."""
        t, idx, shape = self._pairs(t, index)
        with np.errstate(under="ignore", over="ignore"):
            return np.exp(self._eval(t, idx)["log_e"]).reshape(shape)

    def memory(self, t: ArrayLike, index: ArrayLike | None = None) -> NDArray:
        """Memory level ``M = level - E`` (0 before infusion).

        Obtained from the two log states as ``level (1 - E/level)``: accurate relative to
        the level (~1e-10), so where ``M`` is far below ``E`` (early expansion) it is
        resolved only to that absolute precision.
        """
        t, idx, shape = self._pairs(t, index)
        ev = self._eval(t, idx)
        with np.errstate(under="ignore", over="ignore", invalid="ignore"):
            m = np.exp(ev["log_level"]) * -np.expm1(np.minimum(ev["log_e"] - ev["log_level"],
                                                                0.0))
        return (np.where(t < 0, 0.0, m) + 0.0).reshape(shape)

    def cumulative_auc(self, t: ArrayLike, index: ArrayLike | None = None) -> NDArray:
        """AUC from 0 to ``t`` (level unit x day); ``t`` may be ``inf``."""
        t, idx, shape = self._pairs(t, index)
        return self._eval(t, idx)["auc"].reshape(shape)

    def _slope(self, t: NDArray, idx: NDArray) -> NDArray:
        out = np.empty(t.shape)
        bsel = idx // self.batch_size
        for b in np.unique(bsel):
            batch, sel = self.batches[b], np.flatnonzero(bsel == b)
            j = idx[sel] - b * self.batch_size
            u, w, _ = batch.states(t[sel], j)
            out[sel] = batch.slope(t[sel], j, u, w)
        return out

    def _t_end(self, idx: NDArray) -> NDArray:
        return np.array([b.t_end for b in self.batches])[idx // self.batch_size]

    @staticmethod
    def _bisect(f, lo: NDArray, hi: NDArray, iters: int = 200) -> NDArray:
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            pos = f(mid) > 0
            lo, hi = np.where(pos, mid, lo), np.where(pos, hi, mid)
            if np.all(hi - lo <= 2.0 * np.finfo(float).eps * np.maximum(np.abs(hi), 1e-300)):
                break
        return 0.5 * (lo + hi)

    def peak(self) -> tuple[NDArray, NDArray]:
        """Realised time (day) and level of the maximum of ``E + M``, shape ``(n,)``.

        Bisection on the sign of ``d log(E + M)/dt`` (from the dense output) on
        ``[0, T_end]``; the level only declines after ``T_end``.
        """
        idx = np.arange(self.n)
        t_end = self._t_end(idx)
        tpk = np.zeros(self.n)
        rising = self._slope(np.zeros(self.n), idx) > 0
        if np.any(rising):
            ir = idx[rising]
            tpk[rising] = self._bisect(lambda s: self._slope(s, ir), np.zeros(ir.size),
                                       t_end[rising])
        return tpk, self.level(tpk, idx)

    def time_below(self, level: ArrayLike, index: ArrayLike | None = None, *,
                   tpk: NDArray | None = None) -> NDArray:
        """First time after the realised peak at which ``E + M`` falls to ``level`` (day).

        ``level`` broadcasts against ``index`` (default ``arange(n)``); the result is the
        peak time where ``level`` is at or above the peak and ``inf`` where ``level <= 0``.
        ``tpk`` (shape ``(n,)``) may pass peak times already computed by :meth:`peak`.
        """
        lv, idx, shape = self._pairs(level, index)
        if tpk is None:
            tpk = self.peak()[0]
        base = np.asarray(tpk, dtype=float)[idx]
        with np.errstate(divide="ignore"):
            ll = np.log(lv)
        out = np.where(lv <= 0, np.inf, base)
        todo = (lv > 0) & (self.log_level(base, idx) > ll)
        if np.any(todo):
            it, lt, b0 = idx[todo], ll[todo], base[todo]
            hi = np.maximum(b0, self._t_end(it))
            for _ in range(200):  # widen until below: doubling the distance to the peak
                above = self.log_level(hi, it) > lt
                if not np.any(above):
                    break
                hi = np.where(above, b0 + 2.0 * (hi - b0) + 1.0, hi)
            out[todo] = self._bisect(lambda s: self.log_level(s, it) - lt, b0, hi)
        return out.reshape(shape)


class TwoPoolModel(Model):
    """Effector/memory two-pool CAR-T model with a logistic proliferation switch.

    Parameters are ``e0`` (level unit), ``rho`` (1/day), ``tmax`` (day), ``kappa``
    (1/day), ``d_e`` (1/day), ``k_em`` (1/day) and ``beta`` (1/day); see the module
    docstring for the equations and the numerical scheme. The level parameter scaled by
    dose is ``e0`` (the infused cells).

    Notes
    -----
    ``log_predict`` solves the ODE and therefore exists only for numpy (``xp=NUMPY``);
    for pytensor/PyMC use a closed-form model (``piecewise``, ``smooth``).

    Examples
    --------
    >>> from carkinetics.models import get_model
    >>> m = get_model("two_pool")
    >>> round(float(m.derived(m.typical())["t_half_beta"]))
    217
    """

    name = "two_pool"
    description = "effector and memory CAR-T pools with a logistic proliferation switch (ODE)"
    level_param = "e0"
    reference = ("mechanistic reading of Stein AM et al. CPT Pharmacometrics Syst Pharmacol "
                 "2019;8:285-295 (sharp limit)")
    params = (E0, RHO, TMAX, KAPPA, D_E, K_EM, BETA)

    #: Solver settings (see :class:`TwoPoolSolution`).
    rtol: float = 1e-10
    atol: float = 1e-10
    method: str = "DOP853"
    batch_size: int = 64

    from_piecewise = staticmethod(from_piecewise)
    to_piecewise = staticmethod(to_piecewise)

    # -- solving -----------------------------------------------------------------------
    def solve(self, params) -> TwoPoolSolution:
        """Solve the ODE for the participants in ``params`` (scalars or 1-D arrays).

        Returns
        -------
        TwoPoolSolution
            Evaluable at any times without solving again.
        """
        p = self.check_params(params)
        arrs = np.broadcast_arrays(*p.values())
        if arrs[0].ndim > 1:
            raise ModelSpecError(
                f"Invalid params shape {arrs[0].shape} for solve(); expected scalars or "
                "1-D arrays (one value per participant)."
            )
        q = {k: np.atleast_1d(v) for k, v in zip(p, arrs, strict=True)}
        return TwoPoolSolution(q, rtol=self.rtol, atol=self.atol, method=self.method,
                               batch_size=self.batch_size)

    def _solve_broadcast(self, params, *extra: ArrayLike):
        """Solve once per distinct parameter set of the broadcast ``params`` and ``extra``."""
        p = self.check_params(params)
        arrs = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in extra), *p.values())
        shape = arrs[0].shape
        ex = [a.ravel() for a in arrs[:len(extra)]]
        mat = np.stack([a.ravel() for a in arrs[len(extra):]], axis=1)
        uniq, inv = np.unique(mat, axis=0, return_inverse=True)
        q = dict(zip(p, uniq.T, strict=True))
        sol = TwoPoolSolution(q, rtol=self.rtol, atol=self.atol, method=self.method,
                              batch_size=self.batch_size)
        return sol, inv.ravel(), ex, shape

    # -- evaluation --------------------------------------------------------------------
    def log_predict(self, t: ArrayLike, params: Mapping[str, ArrayLike], *,
                    xp: Namespace = NUMPY) -> NDArray[np.float64]:
        """Natural log of the level at days ``t`` (``-inf`` before infusion).

        Raises
        ------
        ModelSpecError
            If ``xp`` is not the numpy namespace: an ODE solved by scipy has no
            pytensor graph.
        """
        if not getattr(xp, "is_numpy", False):
            raise ModelSpecError(
                "Invalid xp for model 'two_pool': it is an ODE solved with scipy, so "
                "log_predict runs only with the numpy namespace (xp=NUMPY). Use a "
                "closed-form model ('piecewise', 'smooth') under pytensor."
            )
        sol, inv, (tf,), shape = self._solve_broadcast(params, t)
        return sol.log_level(tf, inv).reshape(shape)

    def breakpoints(self, params: Mapping[str, float]) -> list[float]:
        """The infusion, the switch time ``tmax`` and ``tmax +- 8 / kappa`` (if > 0).

        The switch is smooth but can be very narrow; bracketing it lets adaptive
        quadrature see it.
        """
        tmax, w = float(params["tmax"]), 1.0 / float(params["kappa"])
        return [0.0] + [x for x in (tmax - 8.0 * w, tmax, tmax + 8.0 * w) if x > 0.0]

    # -- exposure ----------------------------------------------------------------------
    def cumulative_auc(self, t: ArrayLike, params) -> NDArray[np.float64]:
        """AUC from 0 to ``t`` (level unit x day), integrated with the ODE."""
        sol, inv, (tf,), shape = self._solve_broadcast(params, t)
        return sol.cumulative_auc(tf, inv).reshape(shape)

    def auc(self, t0: ArrayLike, t1: ArrayLike, params) -> NDArray[np.float64]:
        """AUC from ``t0`` to ``t1`` (level unit x day)."""
        sol, inv, (a, b), shape = self._solve_broadcast(params, t0, t1)
        return (sol.cumulative_auc(b, inv) - sol.cumulative_auc(a, inv)).reshape(shape)

    def peak(self, params) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Realised time (day) and level of the maximum of ``E + M``."""
        sol, inv, _, shape = self._solve_broadcast(params)
        tpk, cpk = sol.peak()
        return tpk[inv].reshape(shape), cpk[inv].reshape(shape)

    def time_below(self, level: ArrayLike, params) -> NDArray[np.float64]:
        """First time after the realised peak at which the level falls to ``level`` (day)."""
        sol, inv, (lv,), shape = self._solve_broadcast(params, level)
        return sol.time_below(lv, inv).reshape(shape)

    def derived(self, params, *, below: Sequence[float] = ()) -> dict[str, NDArray]:
        """Derived quantities; see :meth:`Model.derived`.

        ``doubling_time = ln2 / rho``, ``t_half_alpha = ln2 / (d_e + k_em)``,
        ``t_half_beta = ln2 / beta``; ``tmax``/``cmax`` are the realised peak (dense
        output) and the AUCs come from the integrated AUC state (closed-form tail).
        """
        sol, inv, _, shape = self._solve_broadcast(params)
        q = sol.params
        tpk, cpk = sol.peak()
        idx = np.arange(sol.n)

        def back(x: NDArray) -> NDArray:
            return np.asarray(x)[inv].reshape(shape)

        out = {
            "doubling_time": back(LN2 / q["rho"]),
            "t_half_alpha": back(LN2 / (q["d_e"] + q["k_em"])),
            "t_half_beta": back(LN2 / q["beta"]),
            "tmax": back(tpk),
            "cmax": back(cpk),
            "auc_0_28": back(sol.cumulative_auc(np.full(sol.n, 28.0), idx)),
            "auc_0_84": back(sol.cumulative_auc(np.full(sol.n, 84.0), idx)),
            "auc_0_inf": back(sol.cumulative_auc(np.full(sol.n, np.inf), idx)),
        }
        for level in below:
            out[f"time_below_{level:g}"] = back(sol.time_below(float(level), tpk=tpk))
        return out
