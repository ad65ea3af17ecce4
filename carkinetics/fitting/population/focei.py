"""FOCE-I: first-order conditional estimation with interaction (population fits).

For each participant ``i`` with random effects ``eta_i ~ N(0, Omega)`` the joint
-2 log density is ``l_i(eta) = sum_j -2 ll_ij(eta) + eta' Omega^-1 eta + log|Omega|``,
where ``ll_ij`` is the shared per-observation log-likelihood
(:func:`carkinetics.observation.loglik_obs`, so censored rows enter through their censored
term, M3 by default, as NONMEM does with LAPLACE). The inner step finds the empirical Bayes
estimates ``eta_i = argmin l_i`` (vectorised damped Gauss-Newton over all participants);
the outer step minimises

    OFV = sum_i [ l_i(eta_i) + log | Omega^-1 + A_i | ] - N_dens log(2 pi)

over fixed effects, Omega (diagonal or full block) and the residual parameters, where
``A_i`` is the expected (first-order) information of the observations about ``eta``:

* quantified rows: ``g g' / V + 1/2 (d log V)(d log V)'`` with ``g = d mean / d eta`` and
  ``V`` the residual variance at ``eta_i`` (the "interaction": V depends on eta);
* censored rows (Laplace-type Gauss-Newton term): ``lambda (lambda + z) z' z'`` with
  ``z`` the standardised limit and ``lambda = phi(z) / Phi(z)``.

**The OFV is on NONMEM's scale**: -2 log-likelihood without the ``N log(2 pi)`` constant of
the density rows, so it can be compared with the OFV of a NONMEM run of the same model and
data. With these terms the OFV of the phenobarbital model at NONMEM 7's final FOCE-I
estimates equals NONMEM's 586.27605628 to 1e-3 (tests/fitting/population/test_focei.py).

Speed: the outer optimiser (BFGS) gets central-difference gradients computed as *one
batch* of ``2 P + 1`` parameter vectors (see :mod:`._engine`), each with its own inner
problem warm-started at the current EBEs; ``d log f / d eta`` is analytic for the CK
specification (:meth:`PopulationModel.from_spec`).

After the fit (:func:`fit_focei`): covariance step (inverse Hessian of the OFV and the
sandwich estimator), SEs, RSE%, correlation matrix, condition number, EBEs, shrinkage,
PRED/IPRED, CWRES and NPDE (:mod:`.diagnostics`).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from carkinetics._validation import check_option
from carkinetics.exceptions import ConvergenceWarning, IdentifiabilityWarning, ModelSpecError
from carkinetics.fitting.population._engine import _LOG2PI, Engine
from carkinetics.models.base import ParameterSpec
from carkinetics.observation import METHODS, ErrorModel

__all__ = ["PopulationModel", "FOCEIResult", "focei_objective", "fit_focei"]


@dataclass(frozen=True)
class PopulationModel:
    """A population model: fixed effects, random effects, prediction and residual error.

    Parameters
    ----------
    name : str
        Model name.
    theta : tuple of ParameterSpec
        Fixed effects; their bounds are respected by the outer optimiser.
    etas : tuple of str
        Names of the random effects (their order is the order of Omega).
    individual : callable
        ``individual(theta: dict, eta: ndarray (n_ind, k), covariates: DataFrame) ->
        dict of ndarray (n_ind,)``: the individual parameters.
    predict : callable
        ``predict(params_rows: dict of ndarray (n_obs,), context) -> ndarray (n_obs,)``: the
        prediction (dv scale) of each observation row.
    error : ErrorModel
        Residual-error model.
    sigma : tuple of ParameterSpec
        Residual parameters (SDs, in the order of ``error.param_names``, or more when
        ``sigma_rows`` maps several to rows).
    prepare : callable, optional
        ``prepare(rows, covariates) -> context``, called once per data set (dosing
        matrices, assay masks ...).
    sigma_rows : callable, optional
        ``sigma_rows(sigma: dict, context) -> per-row sigma``; default: the first sigma.
    batched : bool, default False
        Whether ``individual`` and ``predict`` accept a leading batch axis: theta values of
        shape ``(B, 1)``, eta of shape ``(B, n_ind, k)``, parameters per row ``(B, n_obs)``
        (write ``eta[..., j]`` and ``[..., None]``). Batched models are much faster; others
        are evaluated one vector at a time.
    log_jacobian : callable, optional
        ``log_jacobian(theta, eta, context) -> (log f (B, n_obs), d log f / d eta (B, n_obs,
        k))`` for a batched model (default: central differences in eta).
    spec, design : optional
        The :class:`~carkinetics.fitting.population.spec.PopulationSpec` and its
        :class:`~carkinetics.fitting.population.spec.PopulationDesign` when built by
        :meth:`from_spec` (used for simulation and outputs).
    """

    name: str
    theta: tuple[ParameterSpec, ...]
    etas: tuple[str, ...]
    individual: Callable[..., dict[str, np.ndarray]]
    predict: Callable[..., np.ndarray]
    error: ErrorModel
    sigma: tuple[ParameterSpec, ...]
    prepare: Callable[..., Any] = field(default=lambda rows, cov: rows)
    sigma_rows: Callable[..., Any] | None = None
    batched: bool = False
    log_jacobian: Callable[..., Any] | None = None
    spec: Any = None
    design: Any = None

    @classmethod
    def from_spec(cls, spec: Any, design: Any) -> PopulationModel:
        """The FOCE-I model of a :class:`PopulationSpec` bound to its design."""
        n_sig = len(spec.error.param_names)

        def individual(theta, eta, cov):
            return spec.individual(theta, eta, design)

        def predict(pr, ctx):
            with np.errstate(over="ignore", under="ignore"):
                return np.exp(_rows_log_pred(spec, design, pr))

        def sigma_rows(sigma, ctx):
            rs = spec.row_sigma(sigma, design)
            return rs[0] if n_sig == 1 else tuple(rs)

        def log_jacobian(theta, eta, ctx):
            return spec.log_pred_jac(theta, eta, design)

        return cls(name=f"{spec.model.name} population", theta=design.theta_specs,
                   etas=design.eta_names, individual=individual, predict=predict,
                   error=spec.error, sigma=design.sigma_specs, sigma_rows=sigma_rows,
                   batched=True, log_jacobian=log_jacobian, spec=spec, design=design)


def _rows_log_pred(spec, design, pr):
    """Return the log expected value of each row from per-row natural parameters (batched)."""
    kin = {k: v for k, v in pr.items() if k in spec.kinetic_names}
    out = spec.model.log_predict(design.t, kin)
    for k, e in enumerate(design.endpoints):
        key = f"log_scale_{e}"
        if key in pr:
            out = out + pr[key] * design.assay_mask[k]
    return out


# -- free (unconstrained) scale of the outer optimiser ----------------------------------------
def _to_free(spec: ParameterSpec, v: float) -> float:
    lo, hi = spec.lower, spec.upper
    if math.isfinite(lo) and math.isfinite(hi):
        u = (v - lo) / (hi - lo)
        return math.log(u) - math.log1p(-u)
    if math.isfinite(lo):
        return math.log(v - lo)
    if math.isfinite(hi):
        return -math.log(hi - v)
    return v


def _from_free(spec: ParameterSpec, x):
    lo, hi = spec.lower, spec.upper
    x = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        if math.isfinite(lo) and math.isfinite(hi):
            return lo + (hi - lo) / (1.0 + np.exp(-x))
        if math.isfinite(lo):
            return lo + np.exp(x)
        if math.isfinite(hi):
            return hi - np.exp(-x)
    return x


class _Packing:
    """Map between the free vector and (theta, Omega, sigma), batched."""

    def __init__(self, model: PopulationModel, full_omega: bool) -> None:
        self.model, self.full = model, full_omega
        self.k = len(model.etas)
        self.tril = np.tril_indices(self.k, -1)
        self.nt, self.ns = len(model.theta), len(model.sigma)
        self.n_om = self.k + (len(self.tril[0]) if full_omega else 0)
        self.p = self.nt + self.n_om + self.ns

    def pack(self, theta, omega, sigma) -> np.ndarray:
        chol = np.linalg.cholesky(omega)
        x = [_to_free(s, theta[s.name]) for s in self.model.theta]
        x += list(np.log(np.diag(chol))) + (list(chol[self.tril]) if self.full else [])
        x += [_to_free(s, sigma[s.name]) for s in self.model.sigma]
        return np.array(x, dtype=float)

    def unpack(self, xb: np.ndarray):
        """Batch (B, P) -> theta {name: (B, 1)}, Omega (B, k, k), sigma {name: (B, 1)}."""
        xb = np.atleast_2d(xb)
        b = xb.shape[0]
        theta = {s.name: _from_free(s, xb[:, i])[:, None]
                 for i, s in enumerate(self.model.theta)}
        i = self.nt
        chol = np.zeros((b, self.k, self.k))
        d = np.arange(self.k)
        chol[:, d, d] = np.exp(np.clip(xb[:, i:i + self.k], -30, 30))
        i += self.k
        if self.full:
            chol[:, self.tril[0], self.tril[1]] = xb[:, i:i + len(self.tril[0])]
            i += len(self.tril[0])
        omega = chol @ np.swapaxes(chol, 1, 2)
        sigma = {s.name: _from_free(s, xb[:, i + j])[:, None]
                 for j, s in enumerate(self.model.sigma)}
        return theta, omega, sigma

    def natural(self, x: np.ndarray) -> np.ndarray:
        """Reported parameters (theta, Omega lower triangle or diagonal, sigma) of one x."""
        theta, omega, sigma = self.unpack(x[None])
        om = omega[0]
        if self.full:
            r, c = np.tril_indices(self.k)
            omv = om[r, c]
        else:
            omv = np.diag(om)
        return np.concatenate([[float(theta[s.name][0, 0]) for s in self.model.theta], omv,
                               [float(sigma[s.name][0, 0]) for s in self.model.sigma]])

    def names(self) -> list[str]:
        et = self.model.etas
        if self.full:
            r, c = np.tril_indices(self.k)
            om = [f"omega({et[i]})" if i == j else f"omega({et[i]},{et[j]})"
                  for i, j in zip(r, c, strict=True)]
        else:
            om = [f"omega({e})" for e in et]
        return [s.name for s in self.model.theta] + om + [s.name for s in self.model.sigma]

    def free_ci(self, x: np.ndarray, se_x: np.ndarray, z: float):
        """CI bounds of the reported parameters from Wald limits on the free scale.

        Each theta, sigma and diagonal-Omega entry is a monotone function of one free
        coordinate, so its interval maps exactly; off-diagonal Omega entries get NaN here
        (the caller uses delta-method limits for them).
        """
        lo_x, hi_x = x - z * se_x, x + z * se_x
        lo, hi = [], []
        for i, s in enumerate(self.model.theta):
            lo.append(float(_from_free(s, lo_x[i])))
            hi.append(float(_from_free(s, hi_x[i])))
        i = self.nt
        if self.full:
            r, c = np.tril_indices(self.k)
            for a, b in zip(r, c, strict=True):
                if a == b == 0:
                    lo.append(math.exp(2 * lo_x[i]))
                    hi.append(math.exp(2 * hi_x[i]))
                else:
                    lo.append(math.nan)
                    hi.append(math.nan)
        else:
            for j in range(self.k):
                lo.append(math.exp(2 * lo_x[i + j]))
                hi.append(math.exp(2 * hi_x[i + j]))
        i += self.n_om
        for j, s in enumerate(self.model.sigma):
            lo.append(float(_from_free(s, lo_x[i + j])))
            hi.append(float(_from_free(s, hi_x[i + j])))
        return np.array(lo), np.array(hi)


# -- result -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FOCEIResult:
    """A FOCE-I fit (frozen).

    Attributes
    ----------
    ofv : float
        Objective function value on NONMEM's scale (-2 log-likelihood without the
        ``N log(2 pi)`` constant of the density rows).
    theta, sigma : dict
        Fixed effects (natural scale) and residual parameters (SDs).
    omega : ndarray (k, k)
        Covariance matrix of the random effects (variances on the diagonal).
    eta : DataFrame
        EBEs, one row per participant (index ``id``), columns the random effects.
    converged : bool
        Whether the outer optimiser met its tolerance.
    message : str
        Optimiser message.
    n_evaluations : int
        Objective evaluations (each a batch of ``2 P + 1`` vectors after the first).
    seconds : float
        Estimation time (s), without the covariance step and diagnostics.
    parameters : DataFrame
        ``parameter, estimate, se, rse, ci_lower, ci_upper, se_sandwich`` (RSE in %;
        CI from Wald limits on the estimation scale, mapped back).
    covariance, correlation : DataFrame
        Covariance (inverse-Hessian) and correlation of the reported parameters.
    condition_number : float
        Ratio of the largest to the smallest eigenvalue of the correlation matrix.
    shrinkage : dict
        Eta shrinkage ``1 - SD(eta_j) / sqrt(omega_jj)`` per random effect.
    individual : DataFrame
        Individual parameters (natural scale) at the EBEs.
    table : DataFrame
        The rows with ``PRED``, ``IPRED``, ``CWRES``, ``NPDE`` (and ``pd``).
    warnings : tuple of str
        Problems found (non-convergence, singular Omega, non-PD Hessian, ...).
    n_obs, n_par : int
        Rows contributing to the likelihood and estimated parameters.
    timings : dict
        Seconds per stage.
    ci_level : float
        Level of the confidence intervals.
    method : str
        Censoring method.
    """

    ofv: float
    theta: dict[str, float]
    omega: np.ndarray
    sigma: dict[str, float]
    eta: pd.DataFrame
    converged: bool
    message: str
    n_evaluations: int
    seconds: float
    parameters: pd.DataFrame | None = None
    covariance: pd.DataFrame | None = None
    correlation: pd.DataFrame | None = None
    condition_number: float = math.nan
    shrinkage: dict[str, float] = field(default_factory=dict)
    individual: pd.DataFrame | None = None
    table: pd.DataFrame | None = None
    warnings: tuple[str, ...] = ()
    n_obs: int = 0
    n_par: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    ci_level: float = 0.95
    method: str = "m3"
    notes: tuple[str, ...] = ()
    engine: Any = field(default=None, repr=False, compare=False)

    def vpc(self, *, n_sim: int = 200, seed: int = 20240409, n_bins: int = 8) -> pd.DataFrame:
        """Binned VPC statistics with censoring (see :func:`.diagnostics.vpc_table`)."""
        from carkinetics.fitting.population.diagnostics import vpc_table

        return vpc_table(self.engine, self.theta, self.omega, self.sigma, n_sim=n_sim,
                         seed=seed, n_bins=n_bins)

    def simulate(self, n_sim: int, seed: int = 20240409) -> np.ndarray:
        """Simulate the fitted rows ``n_sim`` times (observation scale, uncensored)."""
        from carkinetics.fitting.population.diagnostics import simulate_rows

        return simulate_rows(self.engine, self.theta, self.omega, self.sigma, n_sim, seed)[0]

    @property
    def aic(self) -> float:
        """AIC on the OFV scale: ``OFV + 2 n_par``."""
        return self.ofv + 2 * self.n_par

    @property
    def bic(self) -> float:
        """BIC on the OFV scale: ``OFV + n_par log(n_obs)``."""
        return self.ofv + self.n_par * math.log(max(self.n_obs, 1))

    def to_frame(self) -> pd.DataFrame:
        """Long table ``parameter, estimate, se, rse, ci_lower, ci_upper, se_sandwich``.

        Omega as variances, sigma as SDs.
        """
        if self.parameters is not None:
            return self.parameters.copy()
        rows = [(k, v) for k, v in self.theta.items()]
        names = list(self.eta.columns)
        rows += [(f"omega({a})" if i == j else f"omega({a},{b})", float(self.omega[i, j]))
                 for i, a in enumerate(names) for j, b in enumerate(names) if j <= i]
        rows += [(k, v) for k, v in self.sigma.items()]
        return pd.DataFrame(rows, columns=["parameter", "estimate"])

    def individual_frame(self) -> pd.DataFrame:
        """EBEs and individual parameters, one row per participant."""
        eta = self.eta.add_prefix("eta_").reset_index()
        if self.individual is None:
            return eta
        return eta.merge(self.individual, on="id", how="left")

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (method, OFV, AIC/BIC, convergence, timings, warnings)."""
        return {
            "method": "focei", "censoring": self.method, "ofv": self.ofv,
            "ofv_scale": "NONMEM (-2LL without the N log(2 pi) constant)",
            "aic": self.aic, "bic": self.bic, "n_obs": self.n_obs, "n_par": self.n_par,
            "n_individuals": int(len(self.eta)), "converged": self.converged,
            "message": self.message, "n_evaluations": self.n_evaluations,
            "condition_number": (None if not math.isfinite(self.condition_number)
                                 else self.condition_number),
            "shrinkage": self.shrinkage, "timings": self.timings,
            "warnings": list(self.warnings), "notes": list(self.notes),
        }


# -- public API -----------------------------------------------------------------------------
def _batch(d: Mapping[str, float]) -> dict[str, np.ndarray]:
    return {k: np.array([[float(v)]]) for k, v in d.items()}


def focei_objective(model: PopulationModel, rows: pd.DataFrame, covariates: pd.DataFrame,
                    theta: Mapping[str, float], omega: np.ndarray,
                    sigma: Mapping[str, float], *, method: str = "m3") -> float:
    """FOCE-I objective function value (NONMEM scale) at given parameter values.

    Parameters
    ----------
    model : PopulationModel
        The model.
    rows : DataFrame
        Observation rows (``id, dv, cens``; ``lloq``; whatever ``model.prepare`` needs).
    covariates : DataFrame
        One row per participant with ``id`` and the covariates ``model.individual`` uses.
    theta, sigma : mapping
        Fixed effects and residual parameters (SDs).
    omega : ndarray (k, k)
        Covariance matrix of the random effects (variances on the diagonal).
    method : str, default "m3"
        Censoring method for BLQ rows.

    Returns
    -------
    float
        -2 log-likelihood (Laplace/FOCE-I approximation) without ``N log(2 pi)``.
    """
    check_option("method", method, METHODS, exc=ModelSpecError)
    eng = Engine(model, rows, covariates, method)
    om = np.asarray(omega, dtype=float)[None]
    th, sg = _batch(theta), _batch(sigma)
    with np.errstate(all="ignore"):
        eng.best_eta(th, sg, om[0])
        return float(eng.ofv(th, sg, om, exact=True)[0][0])


def fit_focei(model: Any, rows: pd.DataFrame, covariates: pd.DataFrame | None = None, *,
              theta0: Mapping[str, float] | None = None, omega0: np.ndarray | None = None,
              sigma0: Mapping[str, float] | None = None, full_omega: bool = False,
              method: str = "m3", maxiter: int = 500, covariance: bool = True,
              diagnostics: bool = True, n_sim: int = 500, seed: int = 20240409,
              ci_level: float = 0.95, ci_distribution: str = "t", gtol: float = 1e-3,
              batch_maxiter: int = 60, fd_step: float = 1e-4,
              batch_tol: float = 1e-6) -> FOCEIResult:
    """Fit a population model by FOCE-I.

    The outer optimiser (BFGS) works on unconstrained transforms: bounded fixed effects
    through log/logit maps of their bounds, Omega through its Cholesky factor with a log
    diagonal, residual SDs through their bounds. Its gradient is a central difference
    computed as one batch (see the module docstring).

    Parameters
    ----------
    model : PopulationModel or PopulationSpec
        The model; with a :class:`~carkinetics.fitting.population.spec.PopulationSpec`,
        ``rows`` is the long data table, ``covariates`` is not given, and the censoring
        method, starting values (:meth:`PopulationSpec.initial_theta`) and Omega start
        come from the specification.
    rows, covariates, method
        As in :func:`focei_objective`.
    theta0, omega0, sigma0 : optional
        Initial estimates (default: the specs' typical values and Omega = 0.1 I).
    full_omega : bool, default False
        Estimate the off-diagonal covariances of Omega (else diagonal).
    maxiter : int, default 500
        Outer iterations.
    covariance : bool, default True
        Run the covariance step (SEs, correlation, condition number, sandwich).
    diagnostics : bool, default True
        Compute PRED/IPRED, CWRES, NPDE and individual parameters.
    n_sim : int, default 500
        Simulated replicates for NPDE.
    seed : int, default 20240409
        Root seed of the NPDE simulations.
    ci_level : float, default 0.95
        Level of the confidence intervals.
    ci_distribution : {"t", "normal"}, default "t"
        Quantile of the Wald intervals: Student's t with ``n_participants - 1`` degrees of
        freedom (a small-sample correction for the few participants of a dose-escalation
        study, as nlme uses t quantiles for fixed effects), or the normal (NONMEM's
        convention). In the 100-trial simulation-estimation study of the protocol
        (benchmarks/README.md) the normal-quantile 90 % intervals covered the truth 80-90 %
        of the time, the t intervals 82-91 %.
    gtol : float, default 1e-3
        Tolerance on the largest OFV gradient component (free scale).
    fd_step : float, default 1e-4
        Step (free scale) of the central-difference outer gradient.
    batch_tol : float, default 1e-6
        Inner tolerance (largest eta step) of the difference points.
    batch_maxiter : int, default 60
        Inner iterations of the finite-difference points (chord Newton from the centre's
        EBEs; a fixed small number keeps the difference quotients smooth where an EBE sits
        on a kink of the model, e.g. tmax at an observed peak).

    Returns
    -------
    FOCEIResult

    Raises
    ------
    ModelSpecError
        For an unknown censoring method or inconsistent initial values.
    """
    from carkinetics.fitting.population.spec import PopulationSpec

    t_start = time.perf_counter()
    notes: tuple[str, ...] = ()
    if isinstance(model, PopulationSpec):
        spec = model
        design = spec.design(rows)
        notes = design.notes
        model = PopulationModel.from_spec(spec, design)
        rows, covariates = design.rows, design.covariates
        method = spec.censoring
        theta0 = {**spec.initial_theta(design), **dict(theta0 or {})}
        if omega0 is None:
            omega0 = np.eye(len(design.eta_names)) * spec.omega0
    elif covariates is None:
        raise ModelSpecError("covariates is required with a PopulationModel (one row per "
                             "participant with id and the covariates the model uses).")
    check_option("method", method, METHODS, exc=ModelSpecError)
    eng = Engine(model, rows, covariates, method)
    if len(model.etas) >= eng.n_ind:
        raise ModelSpecError(
            f"{len(model.etas)} random effects {list(model.etas)} cannot be estimated from "
            f"{eng.n_ind} participants (Omega would be singular); use fewer random effects.")
    pk = _Packing(model, full_omega)
    k = pk.k
    theta0 = {**{s.name: s.typical for s in model.theta}, **dict(theta0 or {})}
    sigma0 = {**{s.name: s.typical for s in model.sigma}, **dict(sigma0 or {})}
    omega0 = np.eye(k) * 0.1 if omega0 is None else np.asarray(omega0, dtype=float)
    if omega0.shape != (k, k):
        raise ModelSpecError(f"Invalid omega0 of shape {omega0.shape}; expected ({k}, {k}) for "
                             f"the random effects {list(model.etas)}.")
    h = float(fd_step)
    n_eval = [0]
    eye = np.eye(pk.p)

    def fg(x):
        # the centre first (B = 1, warm start at the last EBEs), then the 2P difference
        # points as one batch, each warm-started at the centre's EBEs (2-3 iterations)
        n_eval[0] += 1
        with np.errstate(all="ignore"):
            fc, eta_c, _ = eng.ofv(*_unpack3(pk, x[None]), exact=True)
            if not np.isfinite(fc[0]):
                return np.inf, np.zeros(pk.p)
            eng.eta = eta_c[0]
            _, _, om1 = _unpack3(pk, x[None])
            hess_l = eng.hess_l
            xb = np.vstack([x + h * eye, x - h * eye])
            if hess_l is None or not np.all(
                    np.linalg.eigvalsh(hess_l + 2.0 * np.linalg.inv(om1[0])) > 0):
                f, _, _ = eng.ofv(*_unpack3(pk, xb))
            else:  # chord iterations with the centre's exact Hessian, warm-started there
                f, _, _ = eng.ofv(*_unpack3(pk, xb), hess_l=hess_l, maxiter=batch_maxiter,
                                  tol=batch_tol)
        fp, fm, f0 = f[:pk.p], f[pk.p:], fc[0]
        g = np.where(np.isfinite(fp) & np.isfinite(fm), (fp - fm) / (2 * h),
                     np.where(np.isfinite(fp), (fp - f0) / h,
                              np.where(np.isfinite(fm), (f0 - fm) / h, 0.0)))
        return float(f0), g

    x0 = pk.pack(theta0, omega0, sigma0)
    opts: dict[str, Any] = {"gtol": gtol, "maxiter": maxiter}
    with np.errstate(all="ignore"):
        th0b, sg0b, om0b = _unpack3(pk, x0[None])
        eng.best_eta(th0b, sg0b, om0b[0])
    res = optimize.minimize(fg, x0, jac=True, method="BFGS", options=opts)
    x = res.x
    # the EBEs of the optimum, re-checked from several starts: a participant found in a
    # better local minimum of its individual objective restarts the outer optimiser
    for _ in range(3):
        f_here = fg(x)[0]
        with np.errstate(all="ignore"):
            thb, sgb, omb = _unpack3(pk, x[None])
            eng.best_eta(thb, sgb, omb[0])
            f_multi = float(eng.ofv(thb, sgb, omb, eta0=eng.eta[None], exact=True)[0][0])
        if not f_multi < f_here - 1e-3:
            fg(x)
            break
        res = optimize.minimize(fg, x, jac=True, method="BFGS", options=opts)
        x = res.x
    f_final, _ = fg(x)
    t_est = time.perf_counter() - t_start
    theta, omega, sigma = _unpack1(pk, x)
    predicted = 0.5 * float(res.jac @ res.hess_inv @ res.jac)
    ok = bool(res.success or (np.isfinite(predicted) and 0 <= predicted < 1e-3))
    warn: list[str] = []
    if not ok:
        warn.append(f"outer optimiser did not converge: {res.message} (predicted further "
                    f"OFV decrease {predicted:.3g})")
    eta = pd.DataFrame(eng.eta, columns=list(model.etas),
                       index=pd.Index(eng.cov["id"], name="id"))
    sd_om = np.sqrt(np.diag(omega))
    small = [e for e, s in zip(model.etas, sd_om, strict=True) if s < 1e-3]
    if small:
        warn.append(f"Omega is (near) singular: random effect(s) {small} have SD < 1e-3; the "
                    "data do not support them (drop them from random_effects).")
    ev = np.linalg.eigvalsh(omega / np.outer(sd_om, sd_om)) if k else np.array([1.0])
    if k > 1 and ev.min() < 1e-6:
        warn.append("Omega is (near) singular: its correlation matrix has an eigenvalue "
                    f"{ev.min():.2g}.")
    n_obs = int(np.count_nonzero((eng.cens == 0) | (method not in ("m1", "m2"))))
    timings = {"estimation": t_est}
    cov_out: dict[str, Any] = {}
    if covariance:
        t0 = time.perf_counter()
        check_option("ci_distribution", ci_distribution, ("t", "normal"),
                     exc=ModelSpecError)
        df = eng.n_ind - 1 if ci_distribution == "t" and eng.n_ind > 1 else None
        cov_out = _covariance_step(eng, pk, x, ci_level, df=df)
        warn += cov_out.pop("warnings")
        timings["covariance"] = time.perf_counter() - t0
    result = FOCEIResult(
        ofv=f_final, theta=theta, omega=omega, sigma=sigma, eta=eta, converged=ok,
        message=f"{res.message} (predicted further decrease {predicted:.2g})",
        n_evaluations=n_eval[0], seconds=t_est, n_obs=n_obs, n_par=pk.p,
        timings=timings, ci_level=ci_level, method=method, warnings=tuple(warn), engine=eng,
        notes=notes, **cov_out)
    if diagnostics:
        from dataclasses import replace

        from carkinetics.fitting.population.diagnostics import diagnose

        t0 = time.perf_counter()
        diag = diagnose(result, eng, n_sim=n_sim, seed=seed)
        timings = dict(timings, diagnostics=time.perf_counter() - t0)
        result = replace(result, timings=timings, **diag)
    for w in result.warnings:
        cat = ConvergenceWarning if "converge" in w or "Hessian" in w else \
            IdentifiabilityWarning
        warnings.warn(w, cat, stacklevel=2)
    return result


def _unpack3(pk: _Packing, xb: np.ndarray):
    theta, omega, sigma = pk.unpack(xb)
    return theta, sigma, omega


def _unpack1(pk: _Packing, x: np.ndarray):
    theta, omega, sigma = pk.unpack(x[None])
    return ({k: float(v[0, 0]) for k, v in theta.items()}, omega[0],
            {k: float(v[0, 0]) for k, v in sigma.items()})


def _covariance_step(eng: Engine, pk: _Packing, x: np.ndarray, ci_level: float,
                     h: float = 1e-3, df: int | None = None) -> dict[str, Any]:
    """Hessian of the OFV by central second differences (one batch), SEs and sandwich.

    ``R = H / 2`` (H: Hessian of the OFV = -2 LL on the free scale), ``S = sum_i g_i g_i' / 4``
    with ``g_i`` the gradient of participant i's OFV contribution; covariance
    ``R^-1`` (reported ``se``) and ``R^-1 S R^-1`` (``se_sandwich``), mapped to the reported
    parameters by the delta method.
    """
    p = pk.p
    pts = [x]
    for i in range(p):
        e = np.zeros(p)
        e[i] = h
        pts += [x + e, x - e]
    pairs = [(i, j) for i in range(p) for j in range(i)]
    for i, j in pairs:
        for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            e = np.zeros(p)
            e[i] += si * h
            e[j] += sj * h
            pts.append(x + e)
    xb = np.array(pts)
    per = np.empty((len(xb), eng.n_ind))
    with np.errstate(all="ignore"):
        th1, sg1, om1 = _unpack3(pk, x[None])
        _, eta_c, _ = eng.ofv(th1, sg1, om1, exact=True)
        eng.eta = eta_c[0]
        hess_l = eng.hess_l
        use_near = hess_l is not None and np.all(
            np.linalg.eigvalsh(hess_l + 2.0 * np.linalg.inv(om1[0])) > 0)
        for a in range(0, len(xb), 128):
            theta, sigma, omega = _unpack3(pk, xb[a:a + 128])
            if use_near:  # chord iterations with the centre's exact Hessian
                per[a:a + 128] = eng.ofv(theta, sigma, omega, hess_l=hess_l)[2]
            else:
                per[a:a + 128] = eng.ofv(theta, sigma, omega)[2]
    per -= np.add.reduceat(eng.quant.astype(float), eng.starts) * _LOG2PI
    f = per.sum(axis=1)
    hess = np.empty((p, p))
    gi = np.empty((eng.n_ind, p))
    for i in range(p):
        fp, fm = f[1 + 2 * i], f[2 + 2 * i]
        hess[i, i] = (fp - 2 * f[0] + fm) / h**2
        gi[:, i] = (per[1 + 2 * i] - per[2 + 2 * i]) / (2 * h)
    base = 1 + 2 * p
    for n, (i, j) in enumerate(pairs):
        a, b, c, d = f[base + 4 * n: base + 4 * n + 4]
        hess[i, j] = hess[j, i] = (a - b - c + d) / (4 * h * h)
    names = pk.names()
    q = 0.5 + ci_level / 2
    z = float(stats.norm.ppf(q) if df is None else stats.t.ppf(q, df))
    est = pk.natural(x)
    jac = np.empty((len(est), p))
    for i in range(p):
        e = np.zeros(p)
        e[i] = 1e-6
        jac[:, i] = (pk.natural(x + e) - pk.natural(x - e)) / 2e-6
    nan = np.full(len(est), np.nan)
    out: dict[str, Any] = {"warnings": []}
    r = hess / 2.0
    ok = bool(np.all(np.isfinite(r)))
    ev = np.linalg.eigvalsh(0.5 * (r + r.T)) if ok else np.array([np.nan])
    if not ok or ev.min() <= 1e-7 * ev.max():
        why = ("non-finite OFV near the estimates" if not ok else
               f"smallest eigenvalue {ev.min():.3g}, largest {ev.max():.3g}: singular, "
               "some parameter combination is not identified" if ev.min() > 0 else
               f"smallest eigenvalue {ev.min():.3g}")
        out["warnings"].append(f"Hessian of the OFV is not positive definite ({why}); "
                               "standard errors are missing.")
        se = se_sw = lo = hi = nan
        cov_q = np.full((len(est), len(est)), np.nan)
        cond = math.nan
    else:
        r_inv = np.linalg.inv(r)
        r_inv = 0.5 * (r_inv + r_inv.T)
        s = gi.T @ gi / 4.0
        sw = r_inv @ s @ r_inv
        cov_q = jac @ r_inv @ jac.T
        se = np.sqrt(np.clip(np.diag(cov_q), 0, None))
        se_sw = np.sqrt(np.clip(np.diag(jac @ sw @ jac.T), 0, None))
        se_x = np.sqrt(np.diag(r_inv))
        lo, hi = pk.free_ci(x, se_x, z)
        wald = np.isnan(lo)
        lo = np.where(wald, est - z * se, lo)
        hi = np.where(wald, est + z * se, hi)
        d = np.sqrt(np.diag(cov_q))
        with np.errstate(all="ignore"):
            corr = cov_q / np.outer(d, d)
        cev = np.linalg.eigvalsh(np.nan_to_num(corr))
        cond = float(cev.max() / cev.min()) if cev.min() > 0 else math.inf
        out["correlation"] = pd.DataFrame(corr, index=names, columns=names)
        if cond > 1e3:
            out["warnings"].append(f"Hessian is ill-conditioned (condition number of the "
                                   f"correlation matrix {cond:.3g} > 1000): some parameters "
                                   "are poorly identified.")
    with np.errstate(all="ignore"):
        rse = 100.0 * se / np.abs(est)
    out["parameters"] = pd.DataFrame({
        "parameter": names, "estimate": est, "se": se, "rse": rse, "ci_lower": lo,
        "ci_upper": hi, "se_sandwich": se_sw})
    out["covariance"] = pd.DataFrame(cov_q, index=names, columns=names)
    out["condition_number"] = cond
    return out
