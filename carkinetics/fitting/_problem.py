"""The fit problem of one participant: its rows, its parameters and a batched objective.

Internal module. :class:`Problem` evaluates the objective ``OFV = -2 sum(ll)`` for a *batch*
of parameter vectors at once (shape ``(B, p)``, internal = transformed scale), because each
likelihood evaluation costs a fixed numpy overhead whatever the number of rows: one call
serves every start of a multi-start, every point of a Hessian or of a profile.

Likelihood. Rows whose error model is ``log_additive`` under M1/M3 without interval limits
(the common case) go to the row kernel
:func:`carkinetics.observation._normal.censored_normal_terms`, the same code that
:func:`~carkinetics.observation.loglik_obs` runs for that case; every other case calls
:func:`~carkinetics.observation.loglik_obs` itself. No second likelihood is
written anywhere.

Derivatives. Each row's log-likelihood depends on the parameters only through its mean on
the log scale, ``mu_i = log f(t_i) + log_scale[assay_i]``, and its assay's log sigma(s). The
row-wise first and second derivatives in these *channels* are analytic in the kernel's case
and otherwise central differences of ``loglik_obs`` (the perturbed copies ride along in the
same call); ``d mu / d theta`` comes from the model: analytic for ``piecewise`` (closed form
in log space, computed with the level), numerical (one batched ``log_predict``) otherwise.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import Model, ParameterSpec
from carkinetics.models.piecewise import PiecewiseModel
from carkinetics.observation import ErrorModel, ObservationModel, loglik_obs
from carkinetics.observation._normal import censored_normal_terms

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
    source: pd.DataFrame
    index: NDArray[np.int64]
    observation: ObservationModel
    dose: float
    n_predose: int
    level_unit: str
    t: NDArray[np.float64]
    dv: NDArray[np.float64]
    cens: NDArray[np.int64]
    assay: NDArray[np.int64]
    columns: Any = None  # the batch's converted columns of ``source`` (``_data.Columns``)

    @functools.cached_property
    def frame(self) -> pd.DataFrame:
        """The rows as a table (positions ``index`` of ``source``; built on first use)."""
        rows = self.source.iloc[self.index].reset_index(drop=True)
        if "endpoint" not in rows.columns:
            rows["endpoint"] = self.endpoints[0]
        if "cens" not in rows.columns:
            rows["cens"] = 0
        return rows

    def __getstate__(self) -> dict[str, Any]:
        # pickled (sent between processes) with its own rows only, never the whole table
        state = {k: v for k, v in self.__dict__.items() if k not in ("frame", "columns")}
        state.update(source=self.frame, index=np.arange(self.t.size), columns=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def column(self, name: str, dtype: Any = float) -> NDArray | None:
        """Column ``name`` of the rows as an array, or None when the source lacks it."""
        if name not in self.source.columns:
            return None
        if self.columns is not None:
            return self.columns.get(name, dtype)[self.index]
        return self.source[name].to_numpy(dtype=dtype)[self.index]


class Problem:
    """Batched objective of one fit, or of many fits stacked; see the module docstring.

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

    Notes
    -----
    **Stacking.** :meth:`stack` joins the problems of several participants that share the
    parameter layout (same model, assays, error models and method) into one problem whose
    methods take an ``owner`` array: vector ``b`` of a batch is evaluated on the rows of unit
    ``owner[b]`` with that unit's bounds. Rows are handled as flat ``(vector, row)`` *pairs*
    (no padding), so one likelihood call serves every start of every participant; sums per
    vector are segment sums (``np.add.reduceat``) and do not depend on what else is in the
    batch, so results are identical whatever the stacking. A single-unit problem is the
    case of one unit (``owner`` defaults to unit 0 for every vector).
    """

    def __init__(self, unit: UnitData, model: Model, params: Sequence[ParamInfo], method: str,
                 m6_first: NDArray[np.bool_] | None = None) -> None:
        self.unit, self.model, self.params, self.method = unit, model, tuple(params), method
        self.units = (unit,)
        self.t, self.dv, self.cens, self.assay = unit.t, unit.dv, unit.cens, unit.assay
        self.n = len(self.t)
        self.p = len(self.params)
        self.lloq = unit.column("lloq")
        self.limit = unit.column("limit")
        self.m6_first = m6_first
        self.lo = np.array([q.lower for q in self.params])
        self.hi = np.array([q.upper for q in self.params])
        self.free = np.array([not q.fixed for q in self.params])
        self.kin = np.array([i for i, q in enumerate(self.params) if q.kind == "kinetic"])
        self.kin_specs = [self.params[i].spec for i in self.kin]
        # the fused closed-form level and Jacobian (kinetic parameters are the first six)
        self.analytic = type(model) is PiecewiseModel and list(self.kin) == list(range(6))
        self.flat = bool(getattr(model, "closed_form", False))
        self.assays = list(unit.observation.assays.values())
        n_a = len(self.assays)
        self.k_sig = max(len(a.error.param_names) for a in self.assays)
        self.sig_col = np.full((self.k_sig, n_a), -1)
        self.scale_col = np.full(n_a, -1)
        for i, q in enumerate(self.params):
            if q.kind == "scale":
                self.scale_col[q.assay] = i
            elif q.kind == "sigma":
                self.sig_col[q.sigma_slot, q.assay] = i
        self.c = self._offsets()
        self._finish()

    @classmethod
    def stack(cls, problems: Sequence[Problem]) -> Problem:
        """One problem holding the rows of ``problems`` (units in that order).

        Raises
        ------
        ValueError
            If the problems differ in parameter layout, model, method or error models
            (callers group participants by :meth:`signature` first).
        """
        first = problems[0]
        sig = first.signature()
        if any(q.signature() != sig for q in problems[1:]):
            raise ValueError("problems with different parameter layouts cannot be stacked")
        if len(problems) == 1:
            return first
        new = object.__new__(cls)
        new.__dict__.update({k: v for k, v in first.__dict__.items() if not k.startswith("_")})
        new.units = tuple(q.unit for q in problems)
        cat = np.concatenate
        new.t, new.dv = cat([q.t for q in problems]), cat([q.dv for q in problems])
        new.cens, new.assay = cat([q.cens for q in problems]), cat([q.assay for q in problems])
        new.c = cat([q.c for q in problems])
        new.n = new.t.size
        for name in ("lloq", "limit", "m6_first"):
            parts = [getattr(q, name) for q in problems]
            if all(v is None for v in parts):
                setattr(new, name, None)
            else:
                fill = False if name == "m6_first" else np.nan
                setattr(new, name, cat([v if v is not None else np.full(q.n, fill)
                                        for v, q in zip(parts, problems, strict=True)]))
        new.lo_u = np.stack([q.lo for q in problems])
        new.hi_u = np.stack([q.hi for q in problems])
        new.free_u = np.stack([q.free for q in problems])
        new._finish(np.array([q.n for q in problems]))
        return new

    def signature(self) -> tuple:
        """What must agree for problems to be stacked."""
        return (id(self.model), self.method, self.k_sig,
                tuple((q.name, q.kind, q.assay, q.sigma_slot) for q in self.params),
                tuple(a.error for a in self.assays))

    def _finish(self, nrow: NDArray[np.int64] | None = None) -> None:
        """Row maps shared by every evaluation (after the row arrays are set)."""
        if nrow is None:
            nrow = np.array([self.n])
            self.lo_u, self.hi_u, self.free_u = self.lo[None], self.hi[None], self.free[None]
        self.nrow = nrow
        self.row0 = np.concatenate([[0], np.cumsum(nrow)[:-1]])
        self.n_units = nrow.size
        # per-row parameter columns of the channels (-1: none)
        self.scale_row = self.scale_col[self.assay]
        self.sig_row = self.sig_col[:, self.assay]
        self._has_scale = bool((self.scale_col >= 0).any())
        self._triu, self._diag_pos = _triu(self.p)
        # assays sharing one ErrorModel are evaluated in one loglik_obs call
        groups: dict[ErrorModel, list[int]] = {}
        for k, a in enumerate(self.assays):
            groups.setdefault(a.error, []).append(k)
        self.groups = [(em, np.ones(self.n, dtype=bool) if len(groups) == 1
                        else np.isin(self.assay, ks)) for em, ks in groups.items()]
        # the common case (log-normal error, M1/M3, no interval limits) goes straight to the
        # row kernel that loglik_obs itself uses for it, with its analytic channel
        # derivatives; other cases call loglik_obs with finite-difference channels
        no_limit = self.limit is None or not np.isfinite(self.limit).any()
        self.kernel = [em.kind == "log_additive" and self.method in ("m1", "m3") and no_limit
                       for em, _ in self.groups]
        with np.errstate(all="ignore"):
            self.logdv = np.log(self.dv) if any(self.kernel) else None

    # -- batches ------------------------------------------------------------------------
    def owner_of(self, b: int, owner: NDArray[np.int64] | None) -> NDArray[np.int64]:
        """``owner`` or unit 0 for each of ``b`` vectors."""
        return np.zeros(b, dtype=np.int64) if owner is None else np.asarray(owner)

    def pairs(self, owner: NDArray[np.int64]):
        """``(vec, row, seg)``: the (vector, row) pairs of a batch and each vector's start."""
        cnt = self.nrow[owner]
        b = owner.size
        if self.n_units == 1:
            vec = np.repeat(np.arange(b), self.n)
            row = np.tile(np.arange(self.n), b)
            return vec, row, np.arange(b) * self.n
        ends = np.cumsum(cnt)
        seg = ends - cnt
        vec = np.repeat(np.arange(b), cnt)
        row = np.arange(ends[-1]) + np.repeat(self.row0[owner] - seg, cnt)
        return vec, row, seg

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

    def unit_rows(self, u: int) -> slice:
        """The rows of unit ``u``."""
        return slice(int(self.row0[u]), int(self.row0[u] + self.nrow[u]))

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
    def _grid_predict(self, t: NDArray, params: dict[str, NDArray],
                      shape: tuple[int, ...]) -> NDArray[np.float64]:
        """``model.log_predict`` broadcast to ``shape`` (batch dims + n).

        A model that validates its parameters (e.g. an ODE model) may reject one vector of
        the batch; the batch is then evaluated vector by vector and the rejected ones get
        NaN (an impossible point: OFV ``inf``, the step is refused).
        """
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

    def latent(self, xk: NDArray[np.float64], owner: NDArray[np.int64], vec: NDArray,
               row: NDArray, seg: NDArray) -> NDArray[np.float64]:
        """Log latent level of every pair, from internal kinetic values ``xk`` (B, nk)."""
        if self.flat:
            nat = {s.name: s.from_internal(xk[vec, i]) for i, s in enumerate(self.kin_specs)}
            try:
                return np.asarray(self.model.log_predict(self.t[row], nat), dtype=float)
            except ModelSpecError:
                pass  # some vector is invalid: per-unit grids find which
        out = np.empty(vec.size)
        for u in np.unique(owner):
            bs = np.flatnonzero(owner == u)
            rs = self.unit_rows(int(u))
            n_u = rs.stop - rs.start
            nat = {s.name: s.from_internal(xk[bs, i])[:, None]
                   for i, s in enumerate(self.kin_specs)}
            lp = self._grid_predict(self.t[None, rs], nat, (bs.size, n_u))
            out[(seg[bs][:, None] + np.arange(n_u)).ravel()] = lp.ravel()
        return out

    def mu(self, x: NDArray[np.float64], jac: bool = False,
           owner: NDArray[np.int64] | None = None, pairs=None):
        """Pair means on the log scale (M,) and, with ``jac``, d mu / d x (M, p).

        With the default ``owner`` (single unit) the pairs are vector-major, so
        ``mu.reshape(B, n)`` is the (vector, row) table.
        """
        owner = self.owner_of(x.shape[0], owner)
        vec, row, seg = pairs if pairs is not None else self.pairs(owner)
        with np.errstate(all="ignore"):
            d = np.zeros((vec.size, self.p)) if jac else None
            if self.analytic:
                mu = _piecewise_pairs(self.t[row], x[:, self.kin], vec, self.kin_specs,
                                      None if d is None else d[:, :6])
            else:
                mu = self.latent(x[:, self.kin], owner, vec, row, seg)
            if self._has_scale:
                sc = self.scale_row[row]
                mu = mu + np.where(sc >= 0, x[vec, np.maximum(sc, 0)], 0.0)
            if not jac:
                return mu, None
            if not self.analytic:
                d[:, self.kin] = self._numeric_jac(x, owner, vec, row, seg)
            if self._has_scale:
                sc = self.scale_row[row]
                has = np.flatnonzero(sc >= 0)
                d[has, sc[has]] = 1.0
        return mu, d

    def _numeric_jac(self, x, owner, vec, row, seg) -> NDArray[np.float64]:
        """Central differences of ``log_predict`` in every kinetic direction, one call.

        Steps are clipped to the box, so a model is never evaluated outside its bounds
        (one-sided differences at a bound).
        """
        nk = len(self.kin)
        b = x.shape[0]
        xk = x[:, self.kin]
        lo, hi = self.lo_u[owner][:, self.kin], self.hi_u[owner][:, self.kin]
        pert = np.repeat(xk[:, None, :], 2 * nk, axis=1)
        for k in range(nk):
            pert[:, 2 * k, k] = np.minimum(xk[:, k] + H_MODEL, hi[:, k])
            pert[:, 2 * k + 1, k] = np.maximum(xk[:, k] - H_MODEL, lo[:, k])
        own2 = np.repeat(owner, 2 * nk)
        lp = self.latent(pert.reshape(b * 2 * nk, nk), own2, *self.pairs(own2))
        # pairs of the perturbed batch are vector-major: (b, 2 nk, rows of the vector)
        out = np.empty((vec.size, nk))
        cnt = self.nrow[owner]
        pos = 0
        kk = np.arange(nk)
        for bi in range(b):  # rows per vector differ between units: slice each
            n_b = int(cnt[bi])
            blk = lp[pos:pos + 2 * nk * n_b].reshape(2 * nk, n_b)
            h = pert[bi, 2 * kk, kk] - pert[bi, 2 * kk + 1, kk]
            out[seg[bi]:seg[bi] + n_b] = ((blk[0::2] - blk[1::2]) / h[:, None]).T
            pos += 2 * nk * n_b
        return out

    # -- likelihood ---------------------------------------------------------------------
    def rowwise(self, x: NDArray[np.float64], deriv: bool = True, mu=None,
                owner: NDArray[np.int64] | None = None, pairs=None):
        """Per-pair log-likelihood and its channel derivatives for a batch ``x`` (B, p).

        Returns
        -------
        ll : ndarray (M,)
        d1, d2 : ndarray (1 + k_sig, M) or None
            First and second derivatives of ``ll`` in the channels ``(mu, log sigma_1, ...)``.
        """
        owner = self.owner_of(x.shape[0], owner)
        vec, row, seg = pairs if pairs is not None else self.pairs(owner)
        if mu is None:
            mu = self.mu(x, owner=owner, pairs=(vec, row, seg))[0]
        badp = ~(np.isfinite(mu) | (mu == -np.inf))
        bad = None
        if badp.any():
            bad = np.logical_or.reduceat(badp, seg)[vec]
            mu = np.where(bad, 0.0, mu)
        m_all = vec.size
        single = len(self.groups) == 1
        ll0 = np.empty(m_all) if single else np.zeros(m_all)
        d1 = d2 = None
        if deriv:
            d1 = np.zeros((1 + self.k_sig, m_all))
            d2 = np.zeros((1 + self.k_sig, m_all))
        with np.errstate(all="ignore"):
            for (em, in_group), kernel in zip(self.groups, self.kernel, strict=True):
                if single:
                    sel, r = slice(None), row
                else:
                    sel = np.flatnonzero(in_group[row])
                    r = row[sel]
                ks = len(em.param_names)
                vs = vec[sel]
                if kernel:
                    res = censored_normal_terms(
                        self.logdv[r], np.clip(mu[sel], -MU_CLAMP, MU_CLAMP),
                        np.exp(x[vs, self.sig_row[0, r]]), self.cens[r], self.method, deriv)
                    if deriv:
                        ll0[sel] = res[0]
                        d1[0, sel], d2[0, sel], d1[1, sel], d2[1, sel] = res[1:]
                    else:
                        ll0[sel] = res
                    continue
                limit = None if self.limit is None else self.limit[r]
                # central differences of loglik_obs in each channel, the perturbed copies
                # riding along in the same call
                v = 3 + 2 * ks if deriv else 1
                m = np.clip(mu[sel], -MU_CLAMP, MU_CLAMP)
                if v > 1:
                    m = m[None, :] + np.array([0.0, H_ROW, -H_ROW] + [0.0] * (2 * ks))[:, None]
                    m = np.clip(m, -MU_CLAMP, MU_CLAMP)
                sig = []
                for j in range(ks):
                    sj = np.exp(x[vs, self.sig_row[j, r]])
                    if v > 1:
                        f = np.ones(v)
                        f[3 + 2 * j], f[4 + 2 * j] = math.exp(H_ROW), math.exp(-H_ROW)
                        sj = sj[None, :] * f[:, None]
                    sig.append(sj)
                out = loglik_obs(
                    self.dv[r], np.exp(m), self.cens[r], error=em,
                    sigma=sig[0] if ks == 1 else tuple(sig),
                    lloq=None if self.lloq is None or self.method != "m2" else self.lloq[r],
                    limit=limit, method=self.method,
                    m6_first=None if self.m6_first is None else self.m6_first[r],
                    check=False)  # rows validated once when the problem was built
                out = np.atleast_2d(out)
                ll0[sel] = out[0]
                if not deriv:
                    continue
                for ch in range(1 + ks):
                    up, dn = out[1 + 2 * ch], out[2 + 2 * ch]
                    d1[ch, sel] = (up - dn) / (2 * H_ROW)
                    d2[ch, sel] = (up - 2 * out[0] + dn) / H_ROW**2
        if bad is not None:
            ll0[bad] = -np.inf
            if deriv:
                d1[:, bad] = np.nan
                d2[:, bad] = np.nan
        return ll0, d1, d2

    def rowwise_table(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Per-row log-likelihood (B, n) of a batch of one unit's vectors (single unit)."""
        return self.rowwise(x, deriv=False)[0].reshape(x.shape[0], self.n)

    def ofv(self, x: NDArray[np.float64],
            owner: NDArray[np.int64] | None = None) -> NDArray[np.float64]:
        """``-2 sum(ll)`` for each vector of the batch (B,)."""
        owner = self.owner_of(x.shape[0], owner)
        pr = self.pairs(owner)
        return -2.0 * np.add.reduceat(self.rowwise(x, deriv=False, owner=owner, pairs=pr)[0],
                                      pr[2])

    def ofv_grad(self, x: NDArray[np.float64], curvature: bool = False,
                 owner: NDArray[np.int64] | None = None):
        """OFV (B,), its gradient (B, p) and optionally a Gauss-Newton-type curvature (B, p, p).

        The curvature is ``2 sum_i sum_ch max(-d2 ll_i / d ch^2, 0) a_ich a_ich^T`` (the
        exact Gauss-Newton matrix on quantified rows; the log-concave curvature of the
        censored terms on BLQ rows); it is positive semi-definite by construction.
        """
        owner = self.owner_of(x.shape[0], owner)
        pr = self.pairs(owner)
        vec, row, seg = pr
        mu, dmu = self.mu(x, jac=True, owner=owner, pairs=pr)
        ll, d1, d2 = self.rowwise(x, mu=mu, owner=owner, pairs=pr)
        with np.errstate(all="ignore"):
            dll = d1[0][:, None] * dmu
            sig_dirs = []
            for j in range(self.k_sig):
                col = self.sig_row[j, row]
                has = np.flatnonzero(col >= 0)
                sig_dirs.append((has, col[has]))
                dll[has, col[has]] += d1[1 + j][has]
        dll = np.where(np.isfinite(dll), dll, 0.0)
        ofv = -2.0 * np.add.reduceat(ll, seg)
        g = -2.0 * np.add.reduceat(dll, seg, axis=0)
        if not curvature:
            return ofv, g, None
        w = np.clip(-d2, 0.0, None)
        w = np.where(np.isfinite(w), w, 0.0)
        # the upper triangle only (the matrix is symmetric): pairs (i, j), i <= j
        iu, ju = self._triu
        tri = (w[0][:, None] * dmu[:, iu]) * dmu[:, ju]
        for j, (has, col) in enumerate(sig_dirs):
            tri[has, self._diag_pos[col]] += w[1 + j][has]
        tri = 2.0 * np.add.reduceat(tri, seg, axis=0)
        cur = np.empty((tri.shape[0], self.p, self.p))
        cur[:, iu, ju] = tri
        cur[:, ju, iu] = tri
        return ofv, g, cur

    def residual(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """The residuals of :meth:`residual_jac` alone (one likelihood channel, no Jacobian)."""
        ll = self.rowwise(x[None, :], deriv=False)[0]
        with np.errstate(all="ignore"):
            r = np.sqrt(np.clip(-2.0 * ll - self.c, 0.0, None))
        return np.where(np.isfinite(r), r, 1e150)

    def residual_jac(self, x: NDArray[np.float64]):
        """Residuals ``r_i = sqrt(-2 ll_i - c_i)`` and their Jacobian (n, p) at one ``x``."""
        xb = x[None, :]
        mu, dmu = self.mu(xb, jac=True)
        ll, d1, _ = self.rowwise(xb, mu=mu)
        with np.errstate(all="ignore"):
            r2 = -2.0 * ll - self.c
            r = np.sqrt(np.clip(r2, 0.0, None))
            dll = d1[0][:, None] * dmu
            for j in range(self.k_sig):
                col = self.sig_row[j]
                has = np.flatnonzero(col >= 0)
                dll[has, col[has]] += d1[1 + j][has]
            jac = np.where(r[:, None] > 1e-150, -dll / r[:, None], 0.0)
        r = np.where(np.isfinite(r), r, 1e150)
        jac = np.where(np.isfinite(jac), jac, 0.0)
        return r, jac

    def hessians(self, x: NDArray[np.float64], free: NDArray[np.bool_],
                 owner: NDArray[np.int64] | None = None, step: float = 1e-4):
        """Hessians of the OFV of several vectors (K, p) in their ``free`` (K, p) directions.

        Central differences of the (exact) gradient with ``step`` on the internal scale, all
        ``2 k + 1`` points of every vector in one call. Returns a list of ``(H, g, descent)``:
        ``descent = min(OFV(x +- step e_j)) - OFV(x)`` is negative when a coordinate step
        improves the fit (not a minimum).
        """
        x = np.atleast_2d(x)
        free = np.atleast_2d(free)
        owner = self.owner_of(x.shape[0], owner)
        pts, own, spans = [], [], []
        for v, fr, u in zip(x, free, owner, strict=True):
            idx = np.flatnonzero(fr)
            k = len(idx)
            pt = np.repeat(v[None, :], 2 * k + 1, axis=0)
            hi, lo = self.hi_u[u], self.lo_u[u]
            for j, col in enumerate(idx):
                pt[1 + 2 * j, col] = min(v[col] + step, hi[col])
                pt[2 + 2 * j, col] = max(v[col] - step, lo[col])
            spans.append((len(own), idx))
            pts.append(pt)
            own += [u] * (2 * k + 1)
        allp = np.concatenate(pts)
        f, g, _ = self.ofv_grad(allp, owner=np.array(own))
        out = []
        for (s, idx), pt in zip(spans, pts, strict=True):
            k = len(idx)
            gg = g[s:s + 2 * k + 1][:, idx]
            ff = f[s:s + 2 * k + 1]
            h = np.stack([(gg[1 + 2 * j] - gg[2 + 2 * j]) / (pt[1 + 2 * j, c] - pt[2 + 2 * j, c])
                          for j, c in enumerate(idx)]) if k else np.zeros((0, 0))
            out.append((0.5 * (h + h.T), gg[0], float(np.min(ff[1:]) - ff[0]) if k else 0.0))
        return out

    def hessian(self, x: NDArray[np.float64], free: NDArray[np.bool_],
                step: float = 1e-4) -> tuple[NDArray[np.float64], NDArray[np.float64], float]:
        """Hessian, gradient and best coordinate-step OFV change at one ``x`` (unit 0)."""
        return self.hessians(x[None, :], free[None, :], step=step)[0]


@functools.lru_cache(maxsize=16)
def _triu(p: int) -> tuple[tuple[NDArray[np.int64], NDArray[np.int64]], NDArray[np.int64]]:
    """Upper-triangle indices of a (p, p) matrix and the positions of its diagonal."""
    iu, ju = np.triu_indices(p)
    for a in (iu, ju):
        a.flags.writeable = False
    return (iu, ju), np.flatnonzero(iu == ju)


def _piecewise_jac(t: NDArray[np.float64], xk: NDArray[np.float64],
                   specs: Sequence[ParameterSpec]) -> NDArray[np.float64]:
    """D log C / d (internal parameters) on a grid: ``t`` (n,), ``xk`` (B, 6) -> (B, n, 6).

    The Jacobian of :func:`_piecewise_pairs` on every (vector, time) pair of the grid.
    """
    b, n = xk.shape[0], t.size
    jac = np.empty((b * n, 6))
    _piecewise_pairs(np.tile(t, b), xk, np.repeat(np.arange(b), n), specs, jac)
    return jac.reshape(b, n, 6)


def _piecewise_pairs(t: NDArray[np.float64], xk: NDArray[np.float64], vec: NDArray[np.int64],
                     specs: Sequence[ParameterSpec],
                     jac: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Log level of the piecewise model per (vector, row) pair, and its Jacobian in ``jac``.

    ``t`` (M,) are the pairs' times, ``xk`` (B, 6) the internal kinetic vectors and ``vec``
    (M,) each pair's vector. Natural parameters and their logs are formed once per vector
    and gathered per pair; the level is the same expression as
    :meth:`PiecewiseModel.log_predict` (tested equal), and the decline's ``logaddexp`` also
    gives the fast-phase weight of the Jacobian, written into ``jac`` (M, 6) when given.

    Internal parameters are ``log foldx, log tmax, log cmax, log alpha, logit fb, log
    beta``. Expansion (``0 <= t < tmax``): ``mu = lc - lf (1 - t / tmax)``. Decline: ``mu =
    lc + log g``, ``g = (1 - fb) e^{-alpha d} + fb e^{-beta d}``, ``d = t - tmax``; with the
    fast weight ``w = (1 - fb) e^{-alpha d} / g``: ``d/d log alpha = -w alpha d``, ``d/d log
    beta = -(1 - w) beta d``, ``d/d logit fb = (1 - fb)(1 - w) - fb w``, ``d/d log tmax =
    tmax (alpha w + beta (1 - w))``.
    """
    foldx, tmax, cmax, alpha, fb, beta = (s.from_internal(xk[:, i])
                                          for i, s in enumerate(specs))
    lf, lc = np.log(foldx), np.log(cmax)
    g = [v[vec] for v in (tmax, lc - lf, lf / tmax, lc, np.log1p(-fb), np.log(fb), alpha,
                          beta)]
    tm, base, rho, lc_p, l1fb, lfb, al, be = g
    d = np.maximum(t - tm, 0.0)
    u = l1fb - al * d
    v = lfb - be * d
    lse = np.logaddexp(u, v)
    up = t < tm
    mu = np.where(up, base + rho * np.minimum(np.maximum(t, 0.0), tm), lc_p + lse)
    mu = np.where(t < 0, -np.inf, mu)
    if jac is not None:
        w = np.exp(u - lse)
        fb_p, lf_p = fb[vec], lf[vec]
        ratio = t / tm
        jac[:, 0] = np.where(up, ratio - 1.0, 0.0)
        jac[:, 1] = np.where(up, -lf_p * ratio, tm * (al * w + be * (1.0 - w)))
        jac[:, 2] = 1.0
        jac[:, 3] = np.where(up, 0.0, -w * al * d)
        jac[:, 4] = np.where(up, 0.0, (1.0 - fb_p) * (1.0 - w) - fb_p * w)
        jac[:, 5] = np.where(up, 0.0, -(1.0 - w) * be * d)
    return mu
