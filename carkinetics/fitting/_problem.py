"""The fit problem of one participant: its rows, its parameters and a batched objective.

Internal module. :class:`Problem` evaluates the objective ``OFV = -2 sum(ll)`` for a *batch*
of parameter vectors at once (shape ``(B, p)``, internal = transformed scale), because the
one likelihood, :func:`carkinetics.observation.loglik_obs`, costs a fixed ~0.5 ms per call
whatever the number of rows: one call serves every start of a multi-start, every point of
a Hessian or of a profile.

Derivatives. Each row's log-likelihood depends on the parameters only through its mean on
the log scale, ``mu_i = log f(t_i) + log_scale[assay_i]``, and its assay's log sigma(s). The
row-wise first and second derivatives in these *channels* come from central differences of
``loglik_obs`` itself (the perturbed copies ride along in the same call, so no second
likelihood is written anywhere), and ``d mu / d theta`` comes from the model: analytic for
``piecewise`` (closed form in log space), numerical (one batched ``log_predict``) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics.models.base import Model, ParameterSpec
from carkinetics.models.piecewise import PiecewiseModel
from carkinetics.observation import ErrorModel, ObservationModel, loglik_obs

__all__ = ["ParamInfo", "UnitData", "Problem"]

#: Step of the row-wise central differences of ``loglik_obs`` in mu and log sigma.
H_ROW = 1e-4
#: Step of the numerical model Jacobian on the internal scale.
H_MODEL = 1e-6
#: Clamp of the log prediction (keeps exp() finite and positive).
MU_CLAMP = 700.0
#: sigma_floor as a fraction of each sigma's lower bound (STYLE 2.2.3: strictly below it).
SIGMA_FLOOR_RATIO = 0.5


@dataclass(frozen=True)
class ParamInfo:
    """One estimated (or fixed) quantity of a fit, on its internal (transformed) scale.

    ``lower``/``upper`` bound the internal value: the transform of the natural bounds,
    clipped to a practical box of +-``width`` around the typical value for bounds that the
    transform sends to infinity (e.g. ``fb -> 0``). ``kind`` is ``"kinetic"``, ``"sigma"``
    or ``"scale"``; ``assay`` indexes the assay of observation parameters (-1 if kinetic).
    """

    name: str
    spec: ParameterSpec
    kind: str
    assay: int
    lower: float
    upper: float
    fixed: bool = False
    sigma_slot: int = 0

    @property
    def internal_name(self) -> str:
        """Name of the lmfit Parameter (``log_cmax``, ``logit_fb``, ``log_scale_car_flow``)."""
        t = self.spec.transform
        return self.name if t == "none" else f"{t}_{self.name}"


@dataclass(frozen=True, eq=False)
class UnitData:
    """The rows of one fit (one participant, one endpoint or both), sorted by endpoint, time.

    ``t``, ``dv``, ``cens`` and ``assay`` (index into ``endpoints``) are the frame's columns
    as arrays.
    """

    id: Any
    endpoint: str
    endpoints: tuple[str, ...]
    frame: pd.DataFrame
    observation: ObservationModel
    dose: float
    n_predose: int
    level_unit: str
    t: NDArray[np.float64]
    dv: NDArray[np.float64]
    cens: NDArray[np.int64]
    assay: NDArray[np.int64]


class Problem:
    """Batched objective of one fit; see the module docstring.

    Parameters
    ----------
    unit : UnitData
        The rows.
    model : Model
        Kinetic model (its prediction is the latent level in the reference assay's unit).
    params : sequence of ParamInfo
        Kinetic parameters in the model's order, then the observation parameters.
    method : str
        Censoring method for ``loglik_obs``.
    m6_first : ndarray of bool, optional
        First-BLQ-of-run mask (M6).
    """

    def __init__(self, unit: UnitData, model: Model, params: Sequence[ParamInfo], method: str,
                 m6_first: NDArray[np.bool_] | None = None) -> None:
        self.unit, self.model, self.params, self.method = unit, model, tuple(params), method
        fr = unit.frame
        self.t, self.dv, self.cens, self.assay = unit.t, unit.dv, unit.cens, unit.assay
        self.n = len(self.t)
        self.p = len(self.params)
        self.lloq = fr["lloq"].to_numpy(dtype=float) if "lloq" in fr else None
        self.limit = fr["limit"].to_numpy(dtype=float) if "limit" in fr else None
        self.m6_first = m6_first
        self.lo = np.array([q.lower for q in self.params])
        self.hi = np.array([q.upper for q in self.params])
        self.free = np.array([not q.fixed for q in self.params])
        self.kin = np.array([i for i, q in enumerate(self.params) if q.kind == "kinetic"])
        self.kin_specs = [self.params[i].spec for i in self.kin]
        self.analytic = type(model) is PiecewiseModel
        assays = list(unit.observation.assays.values())
        self.assays = assays
        n_a = len(assays)
        # channel maps: row -> scale column, row -> sigma column(s)
        self.k_sig = max(len(a.error.param_names) for a in assays)
        self.a_scale = np.zeros((self.n, self.p))
        self.a_sig = np.zeros((self.k_sig, self.n, self.p))
        self.sig_col = np.full((self.k_sig, n_a), -1)
        self.scale_col = np.full(n_a, -1)
        for i, q in enumerate(self.params):
            rows = self.assay == q.assay
            if q.kind == "scale":
                self.a_scale[rows, i] = 1.0
                self.scale_col[q.assay] = i
            elif q.kind == "sigma":
                self.a_sig[q.sigma_slot, rows, i] = 1.0
                self.sig_col[q.sigma_slot, q.assay] = i
        # assays sharing one ErrorModel are evaluated in one loglik_obs call
        groups: dict[ErrorModel, list[int]] = {}
        for k, a in enumerate(assays):
            groups.setdefault(a.error, []).append(k)
        self.groups = [(em, np.flatnonzero(np.isin(self.assay, ks))) for em, ks in groups.items()]
        # hot-path helpers (same numbers): a group covering every row is indexed by a slice,
        # and each group's per-row arguments of loglik_obs are sliced once here
        self._group_args = []
        for em, rows in self.groups:
            sl = slice(None) if rows.size == self.n else rows
            ks = len(em.param_names)
            self._group_args.append((em, sl, ks, [self.sig_col[j, self.assay[rows]]
                                                  for j in range(ks)], dict(
                dv=self.dv[sl], cens=self.cens[sl],
                lloq=None if self.lloq is None or self.method != "m2" else self.lloq[sl],
                limit=None if self.limit is None else self.limit[sl],
                m6_first=None if self.m6_first is None else self.m6_first[sl])))
        self._has_scale = bool((self.scale_col >= 0).any())
        self.c = self._offsets()

    # -- constants ------------------------------------------------------------------------
    def density_rows(self) -> NDArray[np.bool_]:
        """Rows whose term is a density (quantified, or imputed BLQ under M5/M6/M7)."""
        blq = self.cens == 1
        dens = self.cens == 0
        if self.method in ("m5", "m7"):
            dens = dens | blq
        elif self.method == "m6":
            dens = dens | (blq & self.m6_first)
        return dens

    def _offsets(self) -> NDArray[np.float64]:
        """``c_i = 2 ln(sd_floor_i) + ln(2 pi)`` on density rows, 0 elsewhere (STYLE 2.2.3).

        ``sd_floor`` is :data:`SIGMA_FLOOR_RATIO` times the sigma's lower bound (times
        ``|dv|`` for the proportional kind, whose SD scales with the level), so that
        ``-2 ll_i - c_i > 0`` for every admissible parameter value.
        """
        c = np.zeros(self.n)
        dens = self.density_rows()
        for k, a in enumerate(self.assays):
            rows = dens & (self.assay == k)
            cols = [self.sig_col[j, k] for j in range(len(a.error.param_names))]
            floors = [SIGMA_FLOOR_RATIO * math.exp(self.lo[j]) for j in cols]
            if a.error.kind == "proportional":
                sd = floors[0] * (np.abs(self.dv[rows]) + 1e-300)
            else:  # log_additive, additive; combined: sd >= sigma_add
                sd = np.full(np.count_nonzero(rows), floors[0])
            c[rows] = 2.0 * np.log(sd) + math.log(2.0 * math.pi)
        return c

    # -- parameters -------------------------------------------------------------------------
    def natural_kinetic(self, x: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        """Natural-scale kinetic parameters of a batch ``x`` (B, p), each of shape (B, 1)."""
        return {s.name: s.from_internal(x[:, i])[:, None]
                for s, i in zip(self.kin_specs, self.kin, strict=True)}

    def natural(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Natural values of every parameter of one vector ``x`` (p,)."""
        return np.array([float(q.spec.from_internal(v)) for q, v in zip(self.params, x,
                                                                         strict=True)])

    # -- model ------------------------------------------------------------------------------
    def _log_predict(self, t: NDArray, params: dict[str, NDArray],
                     shape: tuple[int, ...]) -> NDArray[np.float64]:
        """``model.log_predict`` broadcast to ``shape`` (batch dims + n).

        A model that validates its parameters (e.g. an ODE model) may reject one vector of
        the batch; the batch is then evaluated vector by vector and the rejected ones get
        NaN (an impossible point: OFV ``inf``, the step is refused).
        """
        from carkinetics.exceptions import ModelSpecError

        try:
            return np.broadcast_to(self.model.log_predict(t, params), shape)
        except ModelSpecError:
            out = np.full(shape, np.nan)
            for idx in np.ndindex(shape[:-1]):
                one = {k: v[idx] for k, v in params.items()}
                try:
                    out[idx] = self.model.log_predict(t.reshape(-1), one)
                except ModelSpecError:
                    pass
            return out

    def mu(self, x: NDArray[np.float64],
           jac: bool = False) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        """Row means on the log scale (B, n) and, with ``jac``, d mu / d x (B, n, p)."""
        with np.errstate(all="ignore"):
            lat = self._log_predict(self.t[None, :], self.natural_kinetic(x),
                                    (x.shape[0], self.n))
            mu = lat + self._scale_offsets(x) if self._has_scale else np.array(lat)
            if not jac:
                return mu, None
            d = np.zeros((x.shape[0], self.n, self.p))
            if self.analytic:
                d[:, :, self.kin] = _piecewise_jac(self.t, x[:, self.kin], self.kin_specs)
            else:
                d[:, :, self.kin] = self._numeric_jac(x)
            if self._has_scale:
                d += self.a_scale[None]
        return mu, d

    def _scale_offsets(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        off = np.zeros((x.shape[0], self.n))
        for k, col in enumerate(self.scale_col):
            if col >= 0:
                off[:, self.assay == k] = x[:, col:col + 1]
        return off

    def _numeric_jac(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Central differences of ``log_predict`` in every kinetic direction, one call.

        Steps are clipped to the box, so a model is never evaluated outside its bounds
        (one-sided differences at a bound).
        """
        nk = len(self.kin)
        xk = x[:, self.kin]
        lo, hi = self.lo[self.kin], self.hi[self.kin]
        pert = np.repeat(xk[:, None, :], 2 * nk, axis=1)
        for k in range(nk):
            pert[:, 2 * k, k] = np.minimum(xk[:, k] + H_MODEL, hi[k])
            pert[:, 2 * k + 1, k] = np.maximum(xk[:, k] - H_MODEL, lo[k])
        params = {s.name: s.from_internal(pert[:, :, i])[:, :, None]
                  for i, s in enumerate(self.kin_specs)}
        lp = self._log_predict(self.t[None, None, :], params, (x.shape[0], 2 * nk, self.n))
        return np.stack([(lp[:, 2 * k] - lp[:, 2 * k + 1])
                         / (pert[:, 2 * k, k] - pert[:, 2 * k + 1, k])[:, None]
                         for k in range(nk)], axis=-1)

    # -- likelihood ---------------------------------------------------------------------
    def rowwise(self, x: NDArray[np.float64], deriv: bool = True, mu=None):
        """Per-row log-likelihood and its channel derivatives for a batch ``x`` (B, p).

        Returns
        -------
        ll : ndarray (B, n)
        d1, d2 : ndarray (1 + k_sig, B, n) or None
            First and second derivatives of ``ll`` in the channels ``(mu, log sigma_1, ...)``.
        """
        b = x.shape[0]
        if mu is None:
            mu = self.mu(x)[0]
        bad = ~(np.isfinite(mu) | (mu == -np.inf)).all(axis=1)
        any_bad = bool(bad.any())
        if any_bad:
            mu = np.where(bad[:, None], 0.0, mu)
        nv = 3 + 2 * self.k_sig if deriv else 1
        ll = np.empty((b, nv, self.n)) if len(self.groups) == 1 else np.zeros((b, nv, self.n))
        with np.errstate(all="ignore"):
            for em, rows, ks, sig_cols, args in self._group_args:
                v = 3 + 2 * ks if deriv else 1
                if deriv:
                    off_mu = np.zeros(v)
                    off_mu[1:3] = (H_ROW, -H_ROW)
                    m = np.clip(mu[:, None, rows] + off_mu[None, :, None], -MU_CLAMP, MU_CLAMP)
                else:
                    m = np.clip(mu[:, None, rows], -MU_CLAMP, MU_CLAMP)
                sig = []
                for j, cols in enumerate(sig_cols):
                    s = np.repeat(np.exp(x[:, None, cols]), v, axis=1)
                    if deriv:
                        s[:, 3 + 2 * j] *= math.exp(H_ROW)
                        s[:, 4 + 2 * j] *= math.exp(-H_ROW)
                    sig.append(s)
                out = loglik_obs(
                    args["dv"], np.exp(m), args["cens"], error=em,
                    sigma=sig[0] if ks == 1 else tuple(sig), lloq=args["lloq"],
                    limit=args["limit"], method=self.method, m6_first=args["m6_first"],
                    check=False)  # rows validated once when the problem was built
                ll[:, :v, rows] = out
                if v < nv:
                    ll[:, v:, rows] = out[:, :1]  # channels this error kind does not have
        if any_bad:
            ll[bad] = -np.inf
        ll0 = ll[:, 0]
        if not deriv:
            return ll0, None, None
        d1 = np.empty((1 + self.k_sig, b, self.n))
        d2 = np.empty_like(d1)
        with np.errstate(all="ignore"):  # impossible rows (ll = -inf) give NaN, zeroed later
            for ch in range(1 + self.k_sig):
                up, dn = ll[:, 1 + 2 * ch], ll[:, 2 + 2 * ch]
                d1[ch] = (up - dn) / (2 * H_ROW)
                d2[ch] = (up - 2 * ll0 + dn) / H_ROW**2
        return ll0, d1, d2

    def ofv(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """``-2 sum(ll)`` for each vector of the batch (B,)."""
        return -2.0 * self.rowwise(x, deriv=False)[0].sum(axis=1)

    def _dll(self, d1: NDArray, dmu: NDArray) -> NDArray[np.float64]:
        """D ll_i / d x (B, n, p) from channel derivatives."""
        out = d1[0][:, :, None] * dmu
        for j in range(self.k_sig):
            out += d1[1 + j][:, :, None] * self.a_sig[j][None]
        return out

    def ofv_grad(self, x: NDArray[np.float64], curvature: bool = False):
        """OFV (B,), its gradient (B, p) and optionally a Gauss-Newton-type curvature (B, p, p).

        The curvature is ``2 sum_i sum_ch max(-d2 ll_i / d ch^2, 0) a_ich a_ich^T`` (the
        exact Gauss-Newton matrix on quantified rows; the log-concave curvature of the
        censored terms on BLQ rows); it is positive semi-definite by construction.
        """
        mu, dmu = self.mu(x, jac=True)
        ll, d1, d2 = self.rowwise(x, mu=mu)
        with np.errstate(all="ignore"):
            dll = self._dll(d1, dmu)
        ok = np.isfinite(dll)
        dll = np.where(ok, dll, 0.0)
        ofv = -2.0 * ll.sum(axis=1)
        g = -2.0 * dll.sum(axis=1)
        if not curvature:
            return ofv, g, None
        w = np.clip(-d2, 0.0, None)
        w = np.where(np.isfinite(w), w, 0.0)
        cur = 2.0 * np.einsum("bn,bnp,bnq->bpq", w[0], dmu, dmu)
        for j in range(self.k_sig):
            a = self.a_sig[j]
            cur += 2.0 * np.einsum("bn,np,nq->bpq", w[1 + j], a, a)
        return ofv, g, cur

    def residual(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The residuals of :meth:`residual_jac` alone (one likelihood channel, no Jacobian)."""
        ll = self.rowwise(x[None, :], deriv=False)[0]
        with np.errstate(all="ignore"):
            r = np.sqrt(np.clip(-2.0 * ll[0] - self.c, 0.0, None))
        return np.where(np.isfinite(r), r, 1e150)

    def residual_jac(self, x: NDArray[np.float64]):
        """Residuals ``r_i = sqrt(-2 ll_i - c_i)`` and their Jacobian (n, p) at one ``x``."""
        xb = x[None, :]
        mu, dmu = self.mu(xb, jac=True)
        ll, d1, _ = self.rowwise(xb, mu=mu)
        with np.errstate(all="ignore"):
            r2 = -2.0 * ll[0] - self.c
            r = np.sqrt(np.clip(r2, 0.0, None))
            dll = self._dll(d1, dmu)[0]
            jac = np.where(r[:, None] > 1e-150, -dll / r[:, None], 0.0)
        r = np.where(np.isfinite(r), r, 1e150)
        jac = np.where(np.isfinite(jac), jac, 0.0)
        return r, jac

    def hessian(self, x: NDArray[np.float64], free: NDArray[np.bool_],
                step: float = 1e-4) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Hessian of the OFV in the ``free`` directions, the gradient and the best OFV change.

        Central differences of the (exact) gradient with ``step`` on the internal scale, all
        ``2 k + 1`` points in one call. The third value is ``min(OFV(x +- step e_j)) -
        OFV(x)``: negative when a coordinate step improves the fit (not a minimum).
        """
        idx = np.flatnonzero(free)
        k = len(idx)
        pts = np.repeat(x[None, :], 2 * k + 1, axis=0)
        for j, col in enumerate(idx):
            pts[1 + 2 * j, col] = min(x[col] + step, self.hi[col])
            pts[2 + 2 * j, col] = max(x[col] - step, self.lo[col])
        f, g, _ = self.ofv_grad(pts)
        g = g[:, idx]
        h = np.stack([(g[1 + 2 * j] - g[2 + 2 * j]) / (pts[1 + 2 * j, c] - pts[2 + 2 * j, c])
                      for j, c in enumerate(idx)])
        return 0.5 * (h + h.T), g[0], float(np.min(f[1:]) - f[0]) if k else 0.0


def _piecewise_jac(t: NDArray[np.float64], xk: NDArray[np.float64],
                   specs: Sequence[ParameterSpec]) -> NDArray[np.float64]:
    """Analytic d log C / d (internal parameters) of the Stein piecewise model, (B, n, 6).

    Internal parameters are ``log foldx, log tmax, log cmax, log alpha, logit fb, log beta``.
    Expansion (``0 <= t < tmax``): ``mu = lc - lf (1 - t / tmax)``. Decline: ``mu = lc +
    log g``, ``g = (1 - fb) e^{-alpha d} + fb e^{-beta d}``, ``d = t - tmax``; with the fast
    weight ``w = (1 - fb) e^{-alpha d} / g``: ``d/d log alpha = -w alpha d``, ``d/d log beta =
    -(1 - w) beta d``, ``d/d logit fb = (1 - fb)(1 - w) - fb w``, ``d/d log tmax = tmax
    (alpha w + beta (1 - w))``.
    """
    nat = [s.from_internal(xk[:, i])[:, None] for i, s in enumerate(specs)]
    foldx, tmax, _cmax, alpha, fb, beta = nat
    lf = np.log(foldx)
    tt = t[None, :]
    up = tt < tmax
    d = np.maximum(tt - tmax, 0.0)
    u = np.log1p(-fb) - alpha * d
    v = np.log(fb) - beta * d
    w = np.exp(u - np.logaddexp(u, v))
    b, n = xk.shape[0], t.size
    out = np.zeros((b, n, 6))
    out[..., 0] = np.where(up, -(1.0 - tt / tmax), 0.0)
    out[..., 1] = np.where(up, -lf * tt / tmax, tmax * (alpha * w + beta * (1.0 - w)))
    out[..., 2] = 1.0
    out[..., 3] = np.where(up, 0.0, -w * alpha * d)
    out[..., 4] = np.where(up, 0.0, (1.0 - fb) * (1.0 - w) - fb * w)
    out[..., 5] = np.where(up, 0.0, -(1.0 - w) * beta * d)
    return out
