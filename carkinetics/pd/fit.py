"""Sequential and joint CK->PD fits of one participant, censored likelihood on every endpoint.

Why not :func:`carkinetics.fitting.fit_individual` alone: it fits *one* latent level seen
by one or more assays (shared kinetics, assay scale factors). A PD fit predicts *several
different* quantities (B cells, IgG, anti-dsDNA, C3 ...) from one system, each with its
own error model, so it needs a residual vector built per endpoint. This module therefore
uses the same building blocks as the individual fits and nothing else: the parameters'
own transforms (:class:`~carkinetics.models.ParameterSpec`), the one likelihood
:func:`~carkinetics.observation.loglik_obs` (M1-M7 censoring) and :mod:`lmfit`'s
``leastsq`` on the square-root residuals ``r_i = sqrt(-2 ll_i - c_i)`` with
``scale_covar=False`` (``sum r^2 = OFV - sum c``), as in ``carkinetics.fitting``; the
covariance is ``2 inv(H)`` of the OFV Hessian, never lmfit's. A *single* PD endpoint with
the CK fixed can also go through ``fit_individual`` itself with :class:`PDEndpointModel`
(a :class:`~carkinetics.models.Model` adaptor); the tests check both agree.

* **Sequential** (``ck_params`` given): CAR-T parameters fixed (e.g. the estimates of
  ``carkinetics fit``, read with :func:`read_ck_params`), PD parameters estimated.
* **Joint** (``ck_params=None``): CAR-T parameters estimated with the PD parameters, and the
  ``car_qpcr`` rows enter the likelihood (for ``antigen`` systems this is the
  mechanistic joint CK + B-cell fit).

Every batch of parameter vectors (multi-start design, Jacobian columns, Hessian points) is
simulated in *one* vectorised call of :meth:`CKPDSystem.simulate`.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from carkinetics.data.schema import ENDPOINTS
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.models.base import Model, ParameterSpec
from carkinetics.observation import ErrorModel, loglik_obs, rows_used
from carkinetics.pd._base import CKPDSystem, default_grid

__all__ = ["fit_pd", "fit_pd_all", "PDFitResult", "PDEndpointModel", "read_ck_params",
           "SCORE_ENDPOINTS", "fit_grid"]

#: Endpoints fitted with an additive error (scores); all others are log-normal.
SCORE_ENDPOINTS = ("sledai2k", "pga", "haq_di", "bilag2004")
_BOX = 20.0
_FLOOR_RATIO = 0.5


def fit_grid(t_end: float) -> NDArray:
    """Integration grid of the fits: 0.25 d to day 60, 1 d after (checked in the tests)."""
    return default_grid(max(t_end, 1.0), fine=0.25, coarse=1.0)


def _sigma_spec(endpoint: str) -> ParameterSpec:
    if endpoint in SCORE_ENDPOINTS:
        return ParameterSpec(f"sigma_{endpoint}", "score", 1.0, 0.01, 100.0, "log",
                             f"additive residual SD of {endpoint}", "I: start value")
    return ParameterSpec(f"sigma_{endpoint}", "1", 0.3, 0.01, 10.0, "log",
                         f"log-scale residual SD of {endpoint}", "I: start value")


def _internal_bounds(spec: ParameterSpec) -> tuple[float, float]:
    with np.errstate(divide="ignore"):
        lo = float(spec.to_internal(spec.lower)) if spec.transform == "none" or spec.lower > 0 \
            else -math.inf
        hi = float(spec.to_internal(spec.upper)) if math.isfinite(spec.upper) and (
            spec.transform != "logit" or spec.upper < 1) else math.inf
    typ = float(spec.to_internal(spec.typical))
    return max(lo, typ - _BOX), min(hi, typ + _BOX)


@dataclass(frozen=True, eq=False)
class PDFitResult:
    """Result of one PD fit (frozen; pandas tables).

    Attributes
    ----------
    id : participant
    model : str
        Name of the system.
    mode : {"sequential", "joint"}
    params : DataFrame
        Index ``parameter``; columns ``estimate, se, ci_lower, ci_upper, unit, transform,
        kind`` (``pd``, ``ck``, ``sigma``), ``fixed``.
    predictions : DataFrame
        The fitted rows with ``pred`` and ``ll`` (per-row log-likelihood).
    ofv, aic, bic : float
        ``-2 log L`` (from :func:`loglik_obs`), ``ofv + 2 k``, ``ofv + k log n``.
    n_obs, n_blq : int
    converged : bool
    info : dict
        Optimiser details, timing, CI level.
    """

    id: Any
    model: str
    mode: str
    params: pd.DataFrame
    predictions: pd.DataFrame
    ofv: float
    aic: float
    bic: float
    n_obs: int
    n_blq: int
    converged: bool
    info: dict = field(default_factory=dict)

    @property
    def estimates(self) -> dict[str, float]:
        """Natural-scale estimates (and fixed values) by parameter name."""
        return {k: float(v) for k, v in self.params["estimate"].items()}

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per parameter with the fit's id, model, objective."""
        p = self.params.reset_index()
        for k, v in (("id", self.id), ("model", self.model), ("mode", self.mode),
                     ("ofv", self.ofv), ("aic", self.aic), ("bic", self.bic),
                     ("n_obs", self.n_obs), ("converged", self.converged)):
            p[k] = v
        first = ["id", "model", "mode", "parameter"]
        return p[first + [c for c in p.columns if c not in first]]

    def summary(self) -> str:
        """A short fit report."""
        lines = [f"[[PD fit]] participant {self.id!r}  model {self.model}  ({self.mode})",
                 f"    OFV {self.ofv:.3f}  AIC {self.aic:.3f}  n_obs {self.n_obs} "
                 f"(BLQ {self.n_blq})  converged {self.converged}"]
        free = self.params[~self.params["fixed"]]
        lines += [f"    {n:<22} {r.estimate:12.5g}  se {r.se:10.3g}  "
                  f"[{r.ci_lower:.4g}, {r.ci_upper:.4g}]" for n, r in free.iterrows()]
        return "\n".join(lines)


class _Objective:
    """Rows, parameters and the batched residuals of one PD fit (internal)."""

    def __init__(self, system: CKPDSystem, rows: pd.DataFrame, free: list[ParameterSpec],
                 fixed: dict[str, float], method: str) -> None:
        self.system, self.rows, self.free, self.fixed, self.method = (system, rows, free,
                                                                       fixed, method)
        self.t = rows["time"].to_numpy(dtype=float)
        self.dv = rows["dv"].to_numpy(dtype=float)
        self.cens = rows["cens"].to_numpy(dtype=np.int64)
        self.ep = rows["endpoint"].to_numpy(dtype=object)
        self.lloq = rows["lloq"].to_numpy(dtype=float) if "lloq" in rows else None
        self.eps = list(dict.fromkeys(self.ep))
        self.grid = fit_grid(float(self.t.max()))
        self.tq = np.unique(np.clip(self.t, 0.0, None))
        self.col = np.searchsorted(self.tq, np.clip(self.t, 0.0, None))
        self.lo = np.array([_internal_bounds(s)[0] for s in free])
        self.hi = np.array([_internal_bounds(s)[1] for s in free])
        self.index = {s.name: i for i, s in enumerate(free)}
        self.dens = self.cens == 0
        self.log_floor = np.array([math.log(_FLOOR_RATIO * _sigma_spec(e).lower)
                                   for e in self.ep])
        self.log_scale = np.array([e not in SCORE_ENDPOINTS for e in self.ep])
        self.n_res = self.t.size + int(self.dens.sum())

    def natural(self, x: NDArray) -> dict[str, NDArray]:
        """Natural values of a batch ``x`` (B, q) for every free and fixed name."""
        with np.errstate(over="ignore"):
            # clipped to the domain: from_internal at a bound may round just outside it
            out = {s.name: np.clip(np.asarray(s.from_internal(x[:, i]), dtype=float),
                                   s.lower, s.upper)
                   for i, s in enumerate(self.free)}
        b = x.shape[0]
        for k, v in self.fixed.items():
            out[k] = np.full(b, float(v))
        return out

    def predict(self, x: NDArray) -> NDArray:
        """Predictions (B, n_rows) for a batch of internal vectors."""
        nat = self.natural(x)
        p = {k: nat[k] for k in self.system.param_names}
        sim = self.system.simulate(p, times=self.tq, grid=self.grid, record_every=0.0)
        j = np.searchsorted(sim.times, self.tq)
        pred = np.empty((x.shape[0], self.t.size))
        for e in self.eps:
            m = self.ep == e
            pred[:, m] = sim[e][:, j][:, self.col[m]]
        return pred

    def loglik(self, x: NDArray, *, with_pred: bool = False):
        """Row-wise log-likelihood (B, n_rows) (and the predictions and sigmas)."""
        x = np.atleast_2d(x)
        nat = self.natural(x)
        pred = self.predict(x)
        sig_rows = np.empty_like(pred)
        ll = np.empty_like(pred)
        for e in self.eps:
            m = self.ep == e
            sig = nat[f"sigma_{e}"][:, None]
            sig_rows[:, m] = sig
            kind = "additive" if e in SCORE_ENDPOINTS else "log_additive"
            pe = pred[:, m] if kind == "additive" else np.maximum(pred[:, m], 1e-300)
            ll[:, m] = loglik_obs(self.dv[m], pe, self.cens[m], error=ErrorModel(kind),
                                  sigma=sig, lloq=None if self.lloq is None else self.lloq[m],
                                  method=self.method, check=False)
        return (ll, pred, sig_rows) if with_pred else ll

    def ofv(self, x: NDArray) -> NDArray:
        return -2.0 * self.loglik(x).sum(axis=1)

    def residual(self, x: NDArray) -> NDArray:
        """Residuals (B, n_rows + n_density_rows) whose squares sum to ``OFV - const``.

        From the row likelihoods of :func:`loglik_obs`: a quantified row ``i`` gives
        ``-2 ll_i = ln(2 pi) + 2 ln sigma_i + z_i^2``, split into the *signed* ``z_i`` (the
        sign of the observed minus predicted value on the error scale: smooth for
        Levenberg-Marquardt) and ``sqrt(2 ln(sigma_i / sigma_floor))``; a censored row
        gives ``sqrt(-2 ll_i)``. The constant is ``sum (ln(2 pi) + 2 ln sigma_floor)`` over
        quantified rows.
        """
        ll, pred, sig = self.loglik(x, with_pred=True)
        m2 = -2.0 * ll
        dn = self.dens
        z2 = m2[:, dn] - math.log(2.0 * math.pi) - 2.0 * np.log(sig[:, dn])
        with np.errstate(divide="ignore", invalid="ignore"):
            diff = np.where(self.log_scale[dn], np.log(self.dv[dn]) - np.log(
                np.maximum(pred[:, dn], 1e-300)), self.dv[dn] - pred[:, dn])
        z = np.sign(diff) * np.sqrt(np.clip(z2, 0.0, None))
        s_part = np.sqrt(np.clip(2.0 * (np.log(sig[:, dn]) - self.log_floor[dn]), 0.0, None))
        cen = np.sqrt(np.clip(m2[:, ~dn], 0.0, None))
        r = np.concatenate([z, s_part, cen], axis=1)
        return np.nan_to_num(r, nan=1e5, posinf=1e5, neginf=-1e5)


def _rows(data: pd.DataFrame, id: Any, endpoints: Sequence[str]) -> pd.DataFrame:
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"Invalid data of type {type(data).__name__}; expected a pandas "
                             "DataFrame in the long format.")
    missing = [c for c in ("id", "time", "dv", "endpoint") if c not in data.columns]
    if missing:
        raise DataError([f"column {c!r} is missing." for c in missing], source="fit_pd")
    if id is None:
        ids = pd.unique(data["id"])
        if len(ids) != 1:
            raise ModelSpecError(f"data hold {len(ids)} participants; pass id=...")
        id = ids[0]
    df = data[(data["id"] == id) & data["endpoint"].isin(list(endpoints))]
    df = df[np.isfinite(df["dv"].to_numpy(dtype=float))]
    if "mdv" in df.columns:
        df = df[df["mdv"] != 1]
    if df.empty:
        raise DataError(f"participant {id!r}: no rows of {list(endpoints)} to fit.",
                        source="fit_pd")
    df = df.copy()
    if "cens" not in df.columns:
        df["cens"] = 0
    for e in endpoints:
        sub = df[df["endpoint"] == e]
        if len(sub) and (sub["cens"] == 1).all():
            raise DataError(f"participant {id!r}: every {e} row is below the LLOQ; nothing "
                            "to fit for it.", source="fit_pd")
    return df.sort_values(["endpoint", "time"], kind="stable").reset_index(drop=True)


def _hessian(obj: _Objective, x: NDArray, use: NDArray, h: float = 1e-3):
    idx = np.flatnonzero(use)
    k = idx.size
    pts = [x]
    for a in range(k):
        for sa in (1, -1):
            z = x.copy()
            z[idx[a]] += sa * h
            pts.append(z)
    pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
    for a, b in pairs:
        for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            z = x.copy()
            z[idx[a]] += sa * h
            z[idx[b]] += sb * h
            pts.append(z)
    f = obj.ofv(np.array(pts))
    f0 = f[0]
    hm = np.empty((k, k))
    for a in range(k):
        hm[a, a] = (f[1 + 2 * a] - 2 * f0 + f[2 + 2 * a]) / h ** 2
    off = 1 + 2 * k
    for i, (a, b) in enumerate(pairs):
        fpp, fpm, fmp, fmm = f[off + 4 * i: off + 4 * i + 4]
        hm[a, b] = hm[b, a] = (fpp - fpm - fmp + fmm) / (4 * h ** 2)
    return hm


def fit_pd(data: pd.DataFrame, system: CKPDSystem | str, *, id: Any = None,
           endpoints: Sequence[str] | None = None,
           ck_params: Mapping[str, float] | None = None,
           estimate: Sequence[str] | None = None,
           fixed: Mapping[str, float] | None = None,
           start: Mapping[str, float] | None = None,
           method: str = "m3", n_starts: int = 8, ci_level: float = 0.95,
           max_nfev: int | None = None, seed: int = 0) -> PDFitResult:
    """Fit the PD (and optionally CAR-T) parameters of one participant.

    Parameters
    ----------
    data : DataFrame
        Long table (``id, time, endpoint, dv``; ``cens``, ``lloq`` used when present).
        Pre-infusion rows are kept: they inform the baseline (the state at infusion).
    system : CKPDSystem or str
        The system, or a name for :func:`carkinetics.pd.get_pd_model`.
    id : optional
        Participant (needed when ``data`` holds several).
    endpoints : sequence of str, optional
        Endpoints to fit (default: the system's endpoints present in the data; without
        ``car_qpcr`` in a sequential fit).
    ck_params : mapping, optional
        CAR-T parameters (at the participant's dose) held fixed: a *sequential* fit. If
        None the CAR-T parameters are estimated with the PD ones (*joint* fit) and the
        ``car_qpcr`` rows are fitted too.
    estimate : sequence of str, optional
        PD parameters to estimate (default: each module's ``params_for(endpoints)``: the
        parameters of every module with a fitted endpoint, except its ``fixed_by_default``
        ones such as the B-cell ``hill``, and for antibodies only those of the fitted
        antibodies); all others are fixed at ``fixed`` or their typical values.
    fixed, start : mapping, optional
        Natural-scale fixed values and starting values by name (PD, CK or ``sigma_<ep>``).
    method : str, default "m3"
        Censoring method of :func:`~carkinetics.observation.loglik_obs`.
    n_starts : int, default 8
        Starting points evaluated in one batch (the start and Sobol perturbations of +-1
        internal unit); the best is polished by lmfit.
    ci_level : float, default 0.95
    max_nfev : int, optional
        Evaluation limit of lmfit (default ``100 (q + 1)``).
    seed : int, default 0
        Seed of the start design.

    Returns
    -------
    PDFitResult

    Raises
    ------
    DataError
        No rows to fit, or an endpoint entirely below the LLOQ.
    ModelSpecError
        Unknown parameter or endpoint names.
    """
    import lmfit

    t0 = time.perf_counter()
    if isinstance(system, str):
        from carkinetics.pd import get_pd_model

        system = get_pd_model(system)
    if not 0 < ci_level < 1:
        raise ModelSpecError(f"Invalid ci_level={ci_level!r}; expected a value in (0, 1).")
    ck = system.modules[0]
    ck_names = set(ck.param_names)
    joint = ck_params is None
    present = set(pd.unique(data["endpoint"])) if "endpoint" in data else set()
    if endpoints is None:
        endpoints = [e for e in system.endpoints if e in present
                     and (joint or e != "car_qpcr")]
    endpoints = list(endpoints)
    bad = [e for e in endpoints if e not in system.endpoints]
    if bad:
        raise ModelSpecError(f"Invalid endpoints {bad}; the system predicts "
                             f"{list(system.endpoints)}.")
    if not endpoints:
        raise DataError(f"no endpoint of the system {list(system.endpoints)} in the data "
                        f"(endpoints present: {sorted(map(str, present))}).", source="fit_pd")
    rows = _rows(data, id, endpoints)
    pid = rows["id"].iloc[0]
    fixed = dict(fixed or {})
    start = dict(start or {})
    if estimate is None:
        estimate = [n for m in system.modules[1:] for n in m.params_for(endpoints)]
    estimate = list(estimate)
    if joint:
        estimate = [n for n in ck.param_names if n not in fixed] + [
            n for n in estimate if n not in ck_names]
    else:
        miss = [n for n in ck.param_names if n not in ck_params]
        if miss:
            raise ModelSpecError(f"Invalid ck_params: missing {miss} (expected every one of "
                                 f"{list(ck.param_names)}).")
        for n in ck.param_names:
            fixed[n] = float(ck_params[n])
        estimate = [n for n in estimate if n not in ck_names]
    for n in [*estimate, *fixed, *start]:
        if n.startswith("sigma_"):
            continue
        system.spec(n)  # raises with a hint for unknown names
    free_specs = [system.spec(n) for n in estimate if n not in fixed]
    sig_specs = [_sigma_spec(e) for e in endpoints]
    free = free_specs + [s for s in sig_specs if s.name not in fixed]
    all_fixed = {p.name: p.typical for p in system.params if p.name not in estimate}
    all_fixed.update(fixed)
    obj = _Objective(system, rows, free, all_fixed, method)

    # start: given values, else typical; sigma starts from the data would need a fit
    x_start = np.array([float(s.to_internal(start.get(s.name, s.typical))) for s in free])
    x_start = np.clip(x_start, obj.lo + 1e-6, obj.hi - 1e-6)
    q = x_start.size
    design = [x_start]
    if n_starts > 1:
        sob = stats.qmc.Sobol(q, scramble=True, seed=seed).random(
            1 << max(1, math.ceil(math.log2(n_starts - 1))))[: n_starts - 1]
        design += list(np.clip(x_start + 2.0 * sob - 1.0, obj.lo + 1e-6, obj.hi - 1e-6))
    design = np.array(design)
    f_design = obj.ofv(design)
    best = int(np.argmin(np.where(np.isfinite(f_design), f_design, np.inf)))

    names = [f"p{i}" for i in range(q)]
    params = lmfit.Parameters()
    for i, n in enumerate(names):
        params.add(n, value=float(design[best, i]), min=obj.lo[i], max=obj.hi[i])
    m_rows = max(obj.n_res, q)
    h = 1e-6

    def vals(p) -> NDArray:
        return np.array([p[n].value for n in names])

    def fcn(p):
        return np.pad(obj.residual(vals(p)[None, :])[0], (0, m_rows - obj.n_res))

    def dfun(p):
        x = vals(p)
        # step inwards for a parameter at its upper bound: a forward step would leave the
        # parameter's domain (e.g. kmax = 1000.001 > 1000), which the system rejects
        step = np.where(x + h <= obj.hi, h, -h)
        pts = np.vstack([x, x + np.diag(step)])
        r = obj.residual(pts)
        jac = (r[1:] - r[0]).T / step
        return np.pad(jac, ((0, m_rows - obj.n_res), (0, 0)))

    mini = lmfit.Minimizer(fcn, params, scale_covar=False, nan_policy="raise")
    res = mini.leastsq(Dfun=dfun, max_nfev=max_nfev or 60 * (q + 1), ftol=1e-6, xtol=1e-6)
    x_hat = vals(res.params)
    ll = obj.loglik(x_hat[None, :])[0]
    ofv = float(-2.0 * ll.sum())
    if f_design[best] < ofv:  # lmfit never loses, but be sure
        x_hat = design[best]
        ll = obj.loglik(x_hat[None, :])[0]
        ofv = float(-2.0 * ll.sum())

    at_bound = (x_hat <= obj.lo + 1e-3) | (x_hat >= obj.hi - 1e-3)
    use = ~at_bound
    se_int = np.full(q, np.nan)
    cov_ok = False
    if use.any():
        hm = _hessian(obj, x_hat, use)
        try:
            ev = np.linalg.eigvalsh(hm)
            cov_ok = bool(np.all(np.isfinite(hm)) and ev.min() > 1e-10 * max(ev.max(), 1e-300))
        except np.linalg.LinAlgError:
            cov_ok = False
        if cov_ok:
            se_int[use] = np.sqrt(np.clip(np.diag(2.0 * np.linalg.inv(hm)), 0.0, None))
    z = float(stats.norm.ppf(0.5 + ci_level / 2.0))
    recs = []
    with np.errstate(over="ignore"):  # back-transformed CI limits may overflow to 0/1
        for i, s in enumerate(free):
            est = float(s.from_internal(x_hat[i]))
            lo, hi = (float(s.from_internal(x_hat[i] - z * se_int[i])),
                      float(s.from_internal(x_hat[i] + z * se_int[i])))
            d = float(s.from_internal(x_hat[i] + 1e-6) - s.from_internal(x_hat[i] - 1e-6)) / 2e-6
            kind = ("sigma" if s.name.startswith("sigma_") else
                    "ck" if s.name in ck_names else "pd")
            recs.append({"parameter": s.name, "estimate": est, "se": abs(d) * se_int[i],
                         "ci_lower": lo, "ci_upper": hi, "unit": s.unit, "transform": s.transform,
                         "kind": kind, "fixed": False, "at_bound": bool(at_bound[i])})
    for n, v in all_fixed.items():
        s = system.spec(n) if not n.startswith("sigma_") else _sigma_spec(n[6:])
        recs.append({"parameter": n, "estimate": float(v), "se": np.nan, "ci_lower": np.nan,
                     "ci_upper": np.nan, "unit": s.unit, "transform": s.transform,
                     "kind": "ck" if n in ck_names else "pd", "fixed": True, "at_bound": False})
    table = pd.DataFrame(recs).set_index("parameter")
    pred = obj.predict(x_hat[None, :])[0]
    out = rows.copy()
    out["pred"] = pred
    out["ll"] = ll
    used = np.zeros(len(rows), dtype=bool)
    for e in obj.eps:
        m = obj.ep == e
        used[m] = rows_used(obj.cens[m], method)
    n_obs = int(used.sum())
    k = int(q)
    converged = bool(res.success) and np.isfinite(ofv) and cov_ok
    return PDFitResult(
        id=pid, model=getattr(system, "name", type(system).__name__),
        mode="joint" if joint else "sequential", params=table, predictions=out, ofv=ofv,
        aic=ofv + 2 * k, bic=ofv + k * math.log(max(n_obs, 1)), n_obs=n_obs,
        n_blq=int((obj.cens == 1).sum()), converged=converged,
        info={"lmfit_message": str(res.message), "lmfit_nfev": int(res.nfev),
              "ofv_design": f_design.tolist(), "ci_level": ci_level, "se_available": cov_ok,
              "endpoints": endpoints, "timing_s": time.perf_counter() - t0})


def read_ck_params(path_or_frame: str | os.PathLike[str] | pd.DataFrame,
                   names: Sequence[str] = ("foldx", "tmax", "cmax", "alpha", "fb", "beta"),
                   ) -> dict[Any, dict[str, float]]:
    """CAR-T parameters by participant from a ``carkinetics fit`` parameters table.

    Accepts the long table (``id, parameter, estimate``; the CLI's ``parameters.csv``) or a
    wide table (``id`` and one column per parameter). Participants missing a parameter (an
    empty or non-finite estimate, or a failed fit) are left out.

    Raises
    ------
    DataError
        If the table has neither layout, an id is missing, a participant (or, in the long
        layout, a participant's parameter) appears twice, or an estimate is text that is not
        a number.
    """
    from carkinetics.data._text import read_csv

    if isinstance(path_or_frame, pd.DataFrame):
        df, source = path_or_frame, "ck-params"
    else:
        df, source = read_csv(path_or_frame), str(path_or_frame)
    long = {"id", "parameter", "estimate"} <= set(df.columns)
    if not long and not ("id" in df.columns and set(names) <= set(df.columns)):
        raise DataError(f"CK parameter table has columns {list(df.columns)}; expected the long "
                        "layout (id, parameter, estimate) of `carkinetics fit` or a wide "
                        f"layout (id, {', '.join(names)}).", source=source)
    df = df.reset_index(drop=True)
    problems = [f"row {i + 1}, column 'id': missing; fix: fill in the participant id."
                for i in np.flatnonzero(df["id"].isna().to_numpy())]
    value_cols = ["estimate"] if long else list(names)
    values = {}
    for c in value_cols:
        num = pd.to_numeric(df[c], errors="coerce").astype("float64")
        text = df[c].notna().to_numpy() & num.isna().to_numpy()
        problems += [f"row {i + 1}, column {c!r}: {df[c].iloc[i]!r} is not a number; fix: "
                     "enter the estimate, or leave the cell empty." for i in np.flatnonzero(text)]
        values[c] = num
    keys = ["id", "parameter"] if long else ["id"]
    kept = df
    if long and "status" in df.columns:
        kept = df[df["status"].fillna("ok") != "failed"]
    dup = kept.duplicated(keys, keep=False) & kept["id"].notna()
    for key, grp in kept[dup].groupby(keys, sort=False, dropna=False):
        problems.append(f"rows {', '.join(str(i + 1) for i in grp.index)}: "
                        f"{' and '.join(keys)} {key!r} repeated; fix: keep one row.")
    if problems:
        raise DataError(problems, source=source)
    df = df.assign(**values)
    if long:
        if "status" in df.columns:
            df = df[df["status"].fillna("ok") != "failed"]
        wide = df.pivot_table(index="id", columns="parameter", values="estimate",
                              aggfunc="first", dropna=False)
    else:
        wide = df.set_index("id")
    out = {}
    for pid, row in wide.iterrows():
        vals = {n: float(row[n]) for n in names if n in row and np.isfinite(row[n])}
        if len(vals) == len(names):
            out[pid] = vals
    return out


def fit_pd_all(data: pd.DataFrame, system: CKPDSystem | str, *,
               ck_params: Mapping[Any, Mapping[str, float]] | None = None,
               progress: bool = False, **kwargs) -> tuple[list[PDFitResult], pd.DataFrame]:
    """Fit every participant; failures are recorded, never raised.

    Parameters
    ----------
    data : DataFrame
    system : CKPDSystem or str
    ck_params : mapping of id to mapping, optional
        Per-participant CAR-T parameters (sequential fits); participants without them are
        recorded as failed. None: joint fits.
    progress : bool, default False
        tqdm progress bar.
    **kwargs
        Passed to :func:`fit_pd`.

    Returns
    -------
    (list of PDFitResult, DataFrame of failures with columns id, error, reason)
    """
    from tqdm.auto import tqdm

    fits, failed = [], []
    for pid in tqdm(list(pd.unique(data["id"])), desc="PD fits", disable=not progress):
        try:
            ck = None
            if ck_params is not None:
                if pid not in ck_params:
                    raise DataError(f"participant {pid!r}: no CK parameters.", source="fit_pd")
                ck = ck_params[pid]
            fits.append(fit_pd(data, system, id=pid, ck_params=ck, **kwargs))
        except (DataError, ModelSpecError, ValueError, FloatingPointError) as exc:
            failed.append({"id": pid, "error": type(exc).__name__, "reason": str(exc)})
    return fits, pd.DataFrame(failed, columns=["id", "error", "reason"])


class PDEndpointModel(Model):
    """One PD endpoint of a system as a :class:`~carkinetics.models.Model` (CK fixed).

    With it, :func:`carkinetics.fitting.fit_individual` fits a single PD endpoint (e.g.
    ``cd19_b``) with the participant's CAR-T parameters fixed: its parameters are the
    ``estimate`` PD parameters; every other parameter is held at ``fixed`` (which must
    hold the CAR-T parameters) or its typical value.

    Parameters
    ----------
    system : CKPDSystem
    endpoint : str
        Endpoint predicted as the level.
    fixed : mapping
        CAR-T (and any other held) parameter values.
    estimate : sequence of str
        Parameters of the adaptor.
    """

    level_param = ""

    def __init__(self, system: CKPDSystem, endpoint: str, fixed: Mapping[str, float],
                 estimate: Sequence[str]) -> None:
        if endpoint not in system.endpoints:
            raise ModelSpecError(f"Invalid endpoint={endpoint!r}; the system predicts "
                                 f"{list(system.endpoints)}.")
        self.system, self.endpoint = system, endpoint
        self.params = tuple(system.spec(n) for n in estimate)
        self.level_param = self.params[0].name
        self.name = f"{getattr(system, 'name', 'pd')}:{endpoint}"
        self.level_unit = ENDPOINTS[endpoint].unit if endpoint in ENDPOINTS else ""
        self._fixed = {p.name: float(fixed.get(p.name, p.typical)) for p in system.params
                       if p.name not in estimate}

    def log_predict(self, t: ArrayLike, params, *, xp=None):
        """Log of the endpoint at days ``t`` (pre-infusion days take the baseline)."""
        p = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        arrs = np.broadcast_arrays(np.asarray(t, dtype=float), *p.values())
        shape = arrs[0].shape
        tf = arrs[0].ravel()
        mat = np.stack([a.ravel() for a in arrs[1:]], axis=1)
        uniq, inv = np.unique(mat, axis=0, return_inverse=True)
        inv = inv.ravel()
        full = {k: np.full(uniq.shape[0], v) for k, v in self._fixed.items()}
        full.update({k: uniq[:, i] for i, k in enumerate(p)})
        tq = np.unique(np.clip(tf, 0.0, None))
        sim = self.system.simulate(full, times=tq, grid=fit_grid(float(tq.max())),
                                   record_every=0.0)
        vals = sim[self.endpoint][:, np.searchsorted(sim.times, tq)]
        col = np.searchsorted(tq, np.clip(tf, 0.0, None))
        with np.errstate(divide="ignore"):
            return np.log(vals[inv, col]).reshape(shape)
