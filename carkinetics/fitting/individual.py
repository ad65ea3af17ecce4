"""Individual (per-participant) maximum-likelihood fits of a kinetic model, BLQ-aware.

The objective is the full log-likelihood of the observation model, computed by
:func:`carkinetics.observation.loglik_obs` (the one likelihood of the package): M3 by
default, any of M1-M7 on request, censored rows included.

How a fit runs
--------------
1. **Rows and parameters.** The participant's post-infusion rows of the endpoint (or of
   qPCR and flow jointly: shared kinetics, an assay-specific log scale factor and residual
   SD). Every parameter is estimated on its transformed scale (log/logit from its
   :class:`~carkinetics.models.ParameterSpec`), so natural bounds at 0 or 1 are never
   crossed; bounds the transform sends to infinity are replaced by a practical box of +-20
   internal units around the typical value (``fb`` ~ 1e-11 is "at its bound").
2. **Multi-start.** A fixed design of starts (data-based, typical, Halton perturbations;
   see ``_starts``) is optimised *together* by a batched Levenberg-Marquardt iteration
   (``_optim.lm_batch``), one likelihood call per iteration for all starts. The spread of
   the optima is reported in ``FitResult.starts``.
3. **lmfit.** Unless the batched optimiser met its convergence test (``polish="auto"``;
   ``"always"`` forces it), the best optimum is polished by :meth:`lmfit.Minimizer.leastsq`
   on the residual vector ``r_i = sqrt(-2 ll_i - c_i)`` (``c_i = 2 ln(sigma_floor) + ln(2 pi)`` on
   density rows, 0 on censored rows; every sigma's lower bound is twice its floor), so that
   ``sum(r^2) = OFV - sum(c)``; ``scale_covar=False``; the Jacobian ``Dfun`` is analytic in
   the model for ``piecewise`` and uses row-wise derivatives of ``loglik_obs``.
4. **Uncertainty.** lmfit's covariance ``inv(J'J)`` is *not* used: for square-root
   residuals it is not the observed information (it vanishes on rows fitted exactly).
   The covariance is ``2 inv(H)``, ``H`` the Hessian of the OFV in the internal scale
   (central differences of the exact gradient, all points in one likelihood call), over
   the free parameters not at a bound. SEs are carried to the natural scale by the delta
   method; Wald CIs are computed on the internal scale and back-transformed. Profile-
   likelihood intervals on request (``profile=``).
5. **OFV, AIC, BIC** are computed here from the likelihood (``n_obs`` from
   :func:`~carkinetics.observation.rows_used`), never taken from lmfit.

Batches (:func:`~carkinetics.fitting.fit_individuals`) stack the participants that share a
parameter layout into one problem (``Problem.stack``): steps 2 and 4 then run for every
participant at once, and each participant's numbers are the same as in a single fit. The
result tables are built on first access from the fit's arrays.
"""

from __future__ import annotations

import functools
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from carkinetics._validation import check_option
from carkinetics.exceptions import (
    CensoringWarning,
    ConvergenceWarning,
    IdentifiabilityWarning,
    ModelSpecError,
)
from carkinetics.fitting._data import JOINT, Columns, prepare_unit
from carkinetics.fitting._optim import lm_batch, profile_intervals
from carkinetics.fitting._problem import Problem
from carkinetics.fitting._report import Tables
from carkinetics.fitting._starts import build_parameters, design, observed_summary
from carkinetics.fitting.results import FitResult
from carkinetics.models import Model, get_model
from carkinetics.observation import (
    METHODS,
    ObservationModel,
    default_observation_model,
    rows_used,
)
from carkinetics.observation.censoring import m6_first_mask

__all__ = ["fit_individual", "FLAGS", "POLISH"]

#: When lmfit polishes the multi-start optimum (see :func:`fit_individual`).
POLISH = ("auto", "always", "never")

#: Flag codes, their meaning and the warning class a single fit emits for them.
FLAGS: dict[str, tuple[str, type[Warning]]] = {
    "tmax_at_first_sample": ("the peak is at (or before) the first sample: expansion not "
                             "observed", IdentifiabilityWarning),
    "tmax_at_last_sample": ("the peak is at (or after) the last sample: decline not observed",
                            IdentifiabilityWarning),
    "few_post_peak": ("fewer than 3 quantified samples after the peak: alpha cannot be "
                      "separated from beta/fb", IdentifiabilityWarning),
    "all_post_peak_blq": ("every sample after the peak is below the LLOQ: the decline is "
                          "known only through censored values", CensoringWarning),
    "tmax_on_sample": ("the fitted tmax sits on a sample time (a kink of the piecewise "
                       "likelihood)", IdentifiabilityWarning),
    "at_bound": ("a parameter is at a bound", IdentifiabilityWarning),
    "not_converged": ("the optimiser did not converge", ConvergenceWarning),
    "n_obs_lt_n_par": ("fewer observations than parameters", IdentifiabilityWarning),
    "se_unavailable": ("the Hessian is not positive definite: no standard errors",
                       IdentifiabilityWarning),
    "blq_approximate": ("BLQ rows are discarded or imputed (not M3/M4): estimates of the "
                        "decline may be biased", CensoringWarning),
    "profile_open": ("a profile-likelihood limit was not reached inside the bounds",
                     IdentifiabilityWarning),
}
_BOUND_TOL = 1e-3
#: A start still running after 6 iterations more than this OFV above the best converged
#: start is abandoned (see ``_optim.lm_batch``).
PRUNE_MARGIN = 5.0
#: Convergence test of the multi-start optimiser: Newton decrement ``g' G^-1 g`` below this
#: many OFV units. Twice the OFV gap to the optimum, it bounds each parameter's distance from
#: it by ``sqrt(LM_TOL / 2)`` standard errors, about 0.7 % of an SE.
LM_TOL = 1e-4


def _method(method: str) -> str:
    m = method.lower() if isinstance(method, str) else method
    return check_option("method", m, METHODS, exc=ModelSpecError)


def _model(model: str | Model) -> Model:
    if isinstance(model, Model):
        return model
    return get_model(model)


@functools.lru_cache(maxsize=16)
def _z(ci_level: float) -> float:
    """Two-sided normal quantile of ``ci_level`` (scipy's ppf costs ~0.1 ms a call)."""
    return float(stats.norm.ppf(0.5 + ci_level / 2.0))


def _polish(prob: Problem, x0: np.ndarray, max_nfev: int | None):
    """Lmfit ``leastsq`` from ``x0`` on the square-root residuals; returns (result, x)."""
    import lmfit

    names = [q.internal_name for q in prob.params]
    params = lmfit.Parameters()
    for q, v in zip(prob.params, x0, strict=True):
        params.add(q.internal_name, value=float(v), min=q.lower, max=q.upper, vary=not q.fixed)
    free = prob.free
    m = max(prob.n, int(free.sum()))
    cache: list[list] = []  # [x, r, jac or None], most recent first

    def values(p) -> np.ndarray:
        return np.array([p[n].value for n in names])

    def evaluate(x: np.ndarray, jac: bool):
        # lmfit's bounds transform round-trips values with ~1e-16 relative error, so the
        # last few evaluations are reused within 1e-13 (MINPACK asks for the residuals and
        # the Jacobian at the same point, and re-evaluates its best point at the end); the
        # Jacobian (5 likelihood channels) is computed only where MINPACK asks for it
        for item in cache:
            xc = item[0]
            # np.allclose(x, xc, rtol=1e-13, atol=1e-13), without its overhead
            if (np.abs(x - xc) <= 1e-13 + 1e-13 * np.abs(xc)).all():
                if jac and item[2] is None:  # the Jacobian at the cached point
                    r, jc = prob.residual_jac(xc)
                    item[2] = np.pad(jc[:, free], ((0, m - r.size), (0, 0)))
                return item[1], item[2]
        if jac:
            r, jc = prob.residual_jac(x)
            jc = np.pad(jc[:, free], ((0, m - r.size), (0, 0)))
        else:
            r, jc = prob.residual(x), None
        item = [x.copy(), np.pad(r, (0, m - r.size)), jc]
        cache.insert(0, item)
        del cache[4:]
        return item[1], item[2]

    def fcn(p):
        return evaluate(values(p), False)[0]

    def dfun(p):
        return evaluate(values(p), True)[1]

    mini = lmfit.Minimizer(fcn, params, scale_covar=False, nan_policy="raise")
    res = mini.leastsq(Dfun=dfun, max_nfev=max_nfev or 100 * (int(free.sum()) + 1))
    return res, values(res.params)


def _covariance(prob: Problem, hess: tuple[np.ndarray, np.ndarray, float], use: np.ndarray):
    """(cov over ``use``, decrement, ok, descent, flat): ``2 inv(H)`` of the OFV Hessian.

    ``hess`` is the ``(H, g, descent)`` of :meth:`Problem.hessians`; ``flat`` names the
    parameter loading most on the flattest direction when H is not positive definite.
    """
    if not use.any():
        return np.zeros((0, 0)), 0.0, False, 0.0, ""
    h, g, descent = hess
    flat = ""
    try:
        ev, vec = np.linalg.eigh(h)
        ok = bool(np.all(np.isfinite(h)) and ev.min() > 1e-10 * max(ev.max(), 1e-300))
        if not ok and np.all(np.isfinite(vec)):
            names = [q.name for q, u in zip(prob.params, use, strict=True) if u]
            flat = names[int(np.argmax(np.abs(vec[:, 0])))]
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        return np.full(h.shape, np.nan), math.nan, False, descent, flat
    hinv = np.linalg.inv(h)
    return 2.0 * hinv, float(g @ hinv @ g), True, descent, flat


@functools.lru_cache(maxsize=1)
def _default_observation() -> ObservationModel:
    """The default observation model (frozen; built once)."""
    return default_observation_model()


@dataclass
class Setup:
    """One participant's prepared fit: its problem, notes and multi-start design."""

    prob: Problem
    notes: list[str]
    x0: np.ndarray
    origin: list[str]


def setup_fit(data: pd.DataFrame, mod: Model, meth: str, *, id: Any = None,
              endpoint: str = "car_qpcr", observation: ObservationModel | None = None,
              start: Mapping[str, float] | None = None,
              bounds: Mapping[str, tuple[float, float]] | None = None,
              fixed: Mapping[str, float] | None = None, n_starts: int = 8,
              columns: Columns | None = None, rows: np.ndarray | None = None) -> Setup:
    """Rows, parameters and starts of one fit (raises DataError / ModelSpecError)."""
    obs = observation if observation is not None else _default_observation()
    unit, notes = prepare_unit(data, endpoint, obs, id=id, columns=columns, rows=rows)
    infos, x_data, x_typ = build_parameters(mod, unit, start=start, bounds=bounds, fixed=fixed)
    first = None
    if meth == "m6":
        first = m6_first_mask(np.zeros(unit.t.size), unit.t, unit.cens, unit.assay)
    prob = Problem(unit, mod, infos, meth, first)
    x0, origin = design(x_data, x_typ, infos, int(n_starts))
    return Setup(prob, notes, x0, origin)


def check_options(endpoint: Any, n_starts: Any, ci_level: Any, polish: Any) -> None:
    """Validate the scalar options shared by single and batch fits."""
    if endpoint != JOINT and not isinstance(endpoint, str):
        raise ModelSpecError(f"Invalid endpoint={endpoint!r}; expected an endpoint name or "
                             "'joint'.")
    if not (isinstance(n_starts, int | np.integer) and n_starts >= 1):
        raise ModelSpecError(f"Invalid n_starts={n_starts!r}; expected an integer >= 1.")
    if not 0 < ci_level < 1:
        raise ModelSpecError(f"Invalid ci_level={ci_level!r}; expected a value in (0, 1).")
    check_option("polish", polish, POLISH, exc=ModelSpecError)


def fit_setups(setups: Sequence[Setup], *, profile: bool | Sequence[str] = False,
               ci_level: float = 0.95, max_iter: int = 100, max_nfev: int | None = None,
               polish: str = "auto", keep_raw: bool = True) -> list[FitResult]:
    """Estimate every prepared fit, stacked into one batched problem (see the module doc).

    All setups must share the parameter layout (one model, method and set of assays).
    Each participant's numbers depend only on its own rows and starts.
    """
    t_start = time.perf_counter()
    probs = [s.prob for s in setups]
    big = Problem.stack(probs)
    n_u = len(setups)
    sizes = np.array([len(s.x0) for s in setups])
    owner = np.repeat(np.arange(n_u), sizes)
    x0 = np.concatenate([s.x0 for s in setups])
    free = big.free_u[owner]
    # 1-2. multi-start: every start of every participant in one batch
    lm = lm_batch(big, x0, free, max_iter=max_iter, tol=LM_TOL, prune=PRUNE_MARGIN,
                  owner=owner)
    bounds_ = np.concatenate([[0], np.cumsum(sizes)])
    best = np.empty(n_u, dtype=np.int64)
    for u in range(n_u):
        sl = slice(bounds_[u], bounds_[u + 1])
        f = np.where(np.isfinite(lm.ofv[sl]), lm.ofv[sl], np.inf)
        # the lowest OFV; among starts within LM_TOL of it, a converged one (a pruned start
        # can sit at the same optimum without having passed the convergence test)
        tie = f <= f.min() + LM_TOL
        pick = np.where(tie & lm.converged[sl], f, np.inf)
        best[u] = bounds_[u] + int(np.argmin(pick if np.isfinite(pick).any() else f))
    x_hat = lm.x[best].copy()
    lm_ok = lm.converged[best]
    # 3. lmfit polish where the batched optimiser did not reach its convergence test (or
    # always, on request); the better of the two points is kept
    raws: list[Any] = [None] * n_u
    for u in range(n_u):
        if polish == "always" or (polish == "auto" and not lm_ok[u]):
            res, x2 = _polish(probs[u], x_hat[u], max_nfev)
            f2 = probs[u].ofv(np.stack([x2, x_hat[u]]))
            if f2[0] <= f2[1] or not np.isfinite(f2[1]):
                x_hat[u] = x2
            raws[u] = res
    ll_flat = big.rowwise(x_hat, deriv=False, owner=np.arange(n_u))[0]
    ll_u = np.split(ll_flat, np.cumsum(big.nrow)[:-1])
    # 4. uncertainty: the Hessians of every participant in one call
    lo_u, hi_u = big.lo_u, big.hi_u
    at_lo = x_hat <= lo_u + _BOUND_TOL
    at_hi = x_hat >= hi_u - _BOUND_TOL
    at_bound = big.free_u & (at_lo | at_hi)
    use = big.free_u & ~at_bound
    has = np.flatnonzero(use.any(axis=1))
    hess: dict[int, Any] = {}
    if has.size:
        for u, h in zip(has, big.hessians(x_hat[has], use[has], owner=has), strict=True):
            hess[int(u)] = h
    z = _z(float(ci_level))
    share = (time.perf_counter() - t_start) / n_u
    out = []
    for u, s in enumerate(setups):
        t_u = time.perf_counter()
        prob = s.prob
        sl = slice(bounds_[u], bounds_[u + 1])
        cov, decrement, cov_ok, descent, flat = _covariance(prob, hess.get(u, (None,) * 3),
                                                            use[u])
        # converged: the optimiser's test held and the point is a minimum, either smooth
        # (small Newton decrement) or on a kink (no coordinate step of 1e-4 lowers the OFV
        # by 1e-3)
        ofv_hat = float(-2.0 * ll_u[u].sum())
        opt_ok = bool(raws[u].success) if raws[u] is not None else bool(lm_ok[u])
        smooth_min = cov_ok and decrement <= 1e-2
        converged = opt_ok and bool(np.isfinite(ofv_hat)) and (smooth_min or descent > -1e-3)
        se_int = np.full(prob.p, np.nan)
        se_int[use[u]] = np.sqrt(np.clip(np.diag(cov), 0.0, None)) if cov_ok else np.nan
        prof: dict[int, tuple[float, float]] = {}
        trace: list[dict] = []
        if profile:
            names = [q.name for q in prob.params]
            want = names if profile is True else list(profile)
            for n in want:
                if n not in names:
                    raise ModelSpecError(f"Unknown parameter {n!r} in profile; expected "
                                         f"names among {names}.")
            which = [names.index(n) for n in want if prob.free[names.index(n)]]
            prof, trace = profile_intervals(prob, x_hat[u], ofv_hat, which, se_int,
                                            level=ci_level)
        used = rows_used(prob.cens, prob.method, prob.m6_first)
        n_obs = int(used.sum())
        flags = _flags(prob, n_obs, x_hat[u], at_bound[u], at_lo[u], converged, raws[u],
                       lm_ok[u], decrement, cov_ok, flat, prof)
        conv_ofv = lm.ofv[sl][lm.converged[sl]]
        res = raws[u]
        info = {
            "n_starts": int(sizes[u]), "n_starts_converged": int(lm.converged[sl].sum()),
            "ofv_spread": float(np.ptp(conv_ofv)) if conv_ofv.size else math.nan,
            "n_at_best": int(np.sum(lm.ofv[sl] <= lm.ofv[best[u]] + 0.01)),
            "multistart_calls": lm.n_calls,
            "lmfit_nfev": int(res.nfev) if res is not None else 0,
            "lmfit_message": str(res.message) if res is not None else "",
            "optimizer_message": _opt_message(res, bool(lm_ok[u]), int(lm.n_iter[best[u]])),
            "newton_decrement": decrement, "ci_level": ci_level, "z": z,
            "optimizer": ("batched LM multistart, lmfit.leastsq polish" if res is not None
                          else "batched LM multistart (converged; no lmfit polish needed)"
                          if lm_ok[u] else "batched LM multistart (no lmfit polish)"),
            "n_stacked": n_u,
        }
        tables = Tables(prob=prob, model=prob.model, unit=prob.unit, x_hat=x_hat[u],
                        se_int=se_int, cov=cov, use=use[u], at_bound=at_bound[u], prof=prof,
                        trace=trace, ll=ll_u[u], used=used, z=z, starts={
                            "origin": s.origin, "ofv_start": lm.ofv_start[sl],
                            "ofv": lm.ofv[sl], "converged": lm.converged[sl],
                            "pruned": lm.pruned[sl], "n_iter": lm.n_iter[sl], "x": lm.x[sl]})
        notes = list(s.notes)
        out.append(FitResult(
            id=prob.unit.id, model=prob.model.name, endpoint=prob.unit.endpoint,
            method=prob.method, ofv=ofv_hat, n_obs=n_obs, n_blq=int((prob.cens == 1).sum()),
            dose=prob.unit.dose, level_unit=prob.unit.level_unit, converged=converged,
            flags=tuple(code for code, _ in flags),
            messages=tuple(f"{code}: {detail}" for code, detail in flags) + tuple(notes),
            info=info, timing=share + time.perf_counter() - t_u,
            raw=res if keep_raw else None, tables=tables))
    return out


def _opt_message(res: Any, lm_ok: bool, n_iter: int | None = None) -> str:
    if res is not None:
        return f"lmfit: {res.message}"
    its = "" if n_iter is None else f" {'in' if lm_ok else 'after'} {n_iter} iterations"
    return (f"batched LM converged{its}" if lm_ok
            else f"batched LM stopped{its} without converging")


def _flags(prob: Problem, n_obs: int, x_hat: np.ndarray, at_bound: np.ndarray,
           at_lo: np.ndarray, converged: bool, res: Any, lm_ok: bool, decrement: float,
           cov_ok: bool, flat: str, prof: dict[int, tuple[float, float]]
           ) -> list[tuple[str, str]]:
    """The flags of one fit, each with its detail."""
    unit, infos, meth = prob.unit, prob.params, prob.method
    summ = observed_summary(unit)
    n_free = int(prob.free.sum())
    flags: list[tuple[str, str]] = []
    nat = dict(zip([q.name for q in infos], prob.natural(x_hat), strict=True))
    tmax_fit = nat.get("tmax", math.nan)
    if summ["peak_first"] or tmax_fit <= summ["t_first"]:
        flags.append(("tmax_at_first_sample", f"observed Tmax {summ['tmax_obs']:g} d, fitted "
                      f"{tmax_fit:.3g} d, first sample {summ['t_first']:g} d"))
    if summ["peak_last"] or tmax_fit >= summ["t_last"]:
        flags.append(("tmax_at_last_sample", f"observed Tmax {summ['tmax_obs']:g} d, fitted "
                      f"{tmax_fit:.3g} d, last sample {summ['t_last']:g} d"))
    if summ["n_post_q"] < 3:
        flags.append(("few_post_peak", f"{summ['n_post_q']} quantified sample(s) after the "
                      "peak"))
    if summ["n_post"] > 0 and summ["n_post_q"] == 0:
        flags.append(("all_post_peak_blq", f"{summ['n_post_blq']} sample(s) after the peak, "
                      "all BLQ"))
    if prob.model.name.startswith("piecewise") and np.isfinite(tmax_fit) and np.any(
            np.abs(prob.t - tmax_fit) <= 1e-4 * tmax_fit):
        flags.append(("tmax_on_sample", f"fitted tmax {tmax_fit:.6g} d equals a sample time: "
                      "the objective has a kink there and the SE of tmax is not reliable"))
    if at_bound.any():
        flags.append(("at_bound", ", ".join(
            f"{infos[i].name} at its {'lower' if at_lo[i] else 'upper'} bound"
            for i in np.flatnonzero(at_bound))))
    if not converged:
        flags.append(("not_converged", f"{_opt_message(res, lm_ok)}; Newton decrement "
                      f"{decrement:.3g}"))
    if n_obs < n_free:
        flags.append(("n_obs_lt_n_par", f"{n_obs} observation(s) for {n_free} parameters"))
    if not cov_ok and (prob.free & ~at_bound).any():
        flags.append(("se_unavailable", "Hessian of the OFV not positive definite; the "
                      f"flattest direction is mostly {flat or '?'}; consider fixing it"))
    n_blq = int((prob.cens == 1).sum())
    if meth in ("m1", "m2", "m5", "m6", "m7") and n_blq:
        flags.append(("blq_approximate", f"{n_blq} BLQ row(s) handled by {meth.upper()}"))
    open_ = [infos[j].name for j, (a, b) in prof.items() if not (np.isfinite(a)
                                                                   and np.isfinite(b))]
    if open_:
        flags.append(("profile_open", f"open profile for {open_}"))
    return flags


def fit_individual(
    data: pd.DataFrame,
    model: str | Model = "piecewise",
    *,
    id: Any = None,
    endpoint: str = "car_qpcr",
    method: str = "m3",
    observation: ObservationModel | None = None,
    start: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    fixed: Mapping[str, float] | None = None,
    n_starts: int = 8,
    profile: bool | Sequence[str] = False,
    ci_level: float = 0.95,
    max_iter: int = 100,
    max_nfev: int | None = None,
    polish: str = "auto",
    warn: bool = True,
) -> FitResult:
    """Fit a kinetic model to one participant's data by maximum likelihood.

    Parameters
    ----------
    data : DataFrame
        Long-format table (``id, time, dv``; ``endpoint``, ``cens``, ``lloq``, ``limit``,
        ``dose`` used when present). BLQ rows carry ``dv == lloq`` and ``cens == 1``.
    model : str or Model, default "piecewise"
        Registered model name (see :func:`carkinetics.models.available_models`) or instance.
    id : optional
        Participant to fit; needed when ``data`` holds several.
    endpoint : str, default "car_qpcr"
        Endpoint to fit (``car_qpcr``, ``car_flow``, ...) or ``"joint"``: every assay of
        the observation model with quantified data, sharing the kinetics, each with its own
        residual SD and (except the reference) log scale factor.
    method : {"m1", ..., "m7"}, default "m3"
        Censoring method of :func:`~carkinetics.observation.loglik_obs`.
    observation : ObservationModel, optional
        Assays and error models; default :func:`default_observation_model`. In a
        single-endpoint fit the endpoint's assay is the reference (its level is the model's
        level, in the endpoint's unit).
    start, fixed : mapping of str to float, optional
        Natural-scale starting or fixed values by parameter name (kinetic names, or
        ``sigma_log_<endpoint>``, ``log_scale_<endpoint>``).
    bounds : mapping of str to (float, float), optional
        Natural-scale bounds narrowing the parameter's own.
    n_starts : int, default 8
        Size of the fixed multi-start design (1 = the data-based start only).
    profile : bool or sequence of str, default False
        Profile-likelihood intervals for all free parameters (True) or the named ones.
    ci_level : float, default 0.95
        Level of the Wald and profile intervals.
    max_iter : int, default 100
        Iteration limit of the multi-start optimiser.
    max_nfev : int, optional
        Evaluation limit of the lmfit polish (default ``100 * (n_free + 1)``).
    polish : {"auto", "always", "never"}, default "auto"
        When lmfit's ``leastsq`` polishes the best multi-start optimum: "auto" when the
        batched optimiser has not met its convergence test (Newton decrement below 1e-6 OFV
        units, or a stalled minimum on a kink), "always", or "never". At a converged
        optimum the polish does not move the estimate (tests check this), so "auto" only
        saves time.
    warn : bool, default True
        Emit a warning (:mod:`carkinetics.exceptions` classes) for each flag; batch fits
        pass False and keep the flags only.

    Returns
    -------
    FitResult

    Raises
    ------
    DataError
        No rows of the endpoint, or every post-infusion row below the LLOQ.
    ModelSpecError
        Unknown model, method or parameter name; bounds or start values outside the bounds.
    """
    mod = _model(model)
    meth = _method(method)
    check_options(endpoint, n_starts, ci_level, polish)
    setup = setup_fit(data, mod, meth, id=id, endpoint=endpoint, observation=observation,
                      start=start, bounds=bounds, fixed=fixed, n_starts=int(n_starts))
    result = fit_setups([setup], profile=profile, ci_level=ci_level, max_iter=max_iter,
                        max_nfev=max_nfev, polish=polish)[0]
    if warn:
        for code in result.flags:
            text, cls = FLAGS[code]
            detail = next((m.partition(": ")[2] for m in result.messages
                           if m.startswith(code + ":")), "")
            warnings.warn(f"participant {result.id!r}: {text} ({detail}).", cls, stacklevel=2)
    return result
