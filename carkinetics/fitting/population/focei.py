"""FOCE-I: first-order conditional estimation with interaction (population fits).

For each participant ``i`` with random effects ``eta_i ~ N(0, Omega)`` the joint
-2 log density is ``l_i(eta) = sum_j -2 ll_ij(eta) + eta' Omega^-1 eta + log|Omega|``,
where ``ll_ij`` is the shared per-observation log-likelihood
(:func:`carkinetics.observation.loglik_obs`, so censored rows enter through their censored
term, M3 by default). The inner step finds the empirical Bayes estimates
``eta_i = argmin l_i`` (vectorised Newton over all participants); the outer step minimises

    OFV = sum_i [ l_i(eta_i) + log | Omega^-1 + A_i | ] - N_dens log(2 pi)

over fixed effects, Omega and the residual parameters, where ``A_i`` is the expected
(first-order) information of the observations about ``eta``:

* quantified rows: ``g g' / V + 1/2 (d log V)(d log V)'`` with ``g = d mean / d eta`` and
  ``V`` the residual variance at ``eta_i`` (the "interaction": V depends on eta);
* censored rows (Laplace-type Gauss-Newton term): ``lambda (lambda + z) z' z'`` with
  ``z`` the standardised limit and ``lambda = phi(z) / Phi(z)``.

The OFV is on NONMEM's scale: -2 log-likelihood without the ``N log(2 pi)`` constant of
the density rows. With these terms the OFV of the phenobarbital model at NONMEM 7's final
FOCE-I estimates equals NONMEM's 586.27605628 to 1e-7 (tests/fitting/test_focei.py).
Derivatives with respect to eta are central differences of the row-wise means and SDs.

This module is the estimation engine; issue 6 adds the CK model specification,
covariates, standard errors and diagnostics on top of it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import log_ndtr

from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.observation import ErrorModel, loglik_obs

__all__ = ["PopulationModel", "FOCEIResult", "focei_objective", "fit_focei"]

_LOG2PI = math.log(2.0 * math.pi)


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


@dataclass(frozen=True)
class FOCEIResult:
    """Estimates of a FOCE-I fit (frozen)."""

    ofv: float
    theta: dict[str, float]
    omega: np.ndarray
    sigma: dict[str, float]
    eta: pd.DataFrame
    converged: bool
    message: str
    n_evaluations: int
    seconds: float

    def to_frame(self) -> pd.DataFrame:
        """Long table ``parameter, estimate`` (omega as variances, sigma as SDs)."""
        rows = [(k, v) for k, v in self.theta.items()]
        names = list(self.eta.columns)
        rows += [(f"omega({a},{b})", float(self.omega[i, j]))
                 for i, a in enumerate(names) for j, b in enumerate(names) if j <= i]
        rows += [(k, v) for k, v in self.sigma.items()]
        return pd.DataFrame(rows, columns=["parameter", "estimate"])


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


def _from_free(spec: ParameterSpec, x: float) -> float:
    lo, hi = spec.lower, spec.upper
    if math.isfinite(lo) and math.isfinite(hi):
        return lo + (hi - lo) / (1.0 + math.exp(-x))
    if math.isfinite(lo):
        return lo + math.exp(x)
    if math.isfinite(hi):
        return hi - math.exp(-x)
    return x


class _Problem:
    """Data and model bound together; holds the warm-started EBEs between evaluations."""

    def __init__(self, model: PopulationModel, rows: pd.DataFrame, covariates: pd.DataFrame,
                 method: str, h: float = 1e-5) -> None:
        self.model = model
        self.rows = rows.reset_index(drop=True)
        self.cov = covariates.reset_index(drop=True)
        pos = {v: i for i, v in enumerate(self.cov["id"])}
        missing = sorted({v for v in self.rows["id"] if v not in pos}, key=str)
        if missing:
            raise ModelSpecError(f"Participants {missing[:5]} have rows but no covariates.")
        self.ind = self.rows["id"].map(pos).to_numpy(int)
        self.n_ind, self.k = len(self.cov), len(model.etas)
        self.ctx = model.prepare(self.rows, self.cov)
        self.method, self.h = method, h
        self.dv = self.rows["dv"].to_numpy(float)
        self.cens = (self.rows["cens"].to_numpy(int) if "cens" in self.rows
                     else np.zeros(len(self.rows), int))
        self.lloq = self.rows["lloq"].to_numpy(float) if "lloq" in self.rows else None
        self.quant = self.cens == 0
        self.eta = np.zeros((self.n_ind, self.k))

    def _sigma(self, sigma: Mapping[str, float]):
        if self.model.sigma_rows is None:
            return sigma[self.model.sigma[0].name]
        return self.model.sigma_rows(sigma, self.ctx)

    def rows_eval(self, theta, eta, sigma):
        p = self.model.individual(theta, eta, self.cov)
        pr = {k: np.asarray(v, dtype=float)[self.ind] for k, v in p.items()}
        f = self.model.predict(pr, self.ctx)
        s = self._sigma(sigma)
        mean, sd = self.model.error.moments(f, s)
        ll = loglik_obs(self.dv, f, self.cens, error=self.model.error, sigma=s,
                        lloq=self.lloq, method=self.method, check=False)
        return mean, sd, ll

    def per_ind(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.ind, weights=x, minlength=self.n_ind)

    def parts(self, theta, eta, sigma):
        """-2 log p(y | eta) per participant, its gradient and the information A_i."""
        mean0, sd0, ll0 = self.rows_eval(theta, eta, sigma)
        n_rows, k, h = len(ll0), self.k, self.h
        dm, dlogv, dll = (np.empty((n_rows, k)) for _ in range(3))
        for j in range(k):
            e = np.zeros(k)
            e[j] = h
            mp, sp, lp = self.rows_eval(theta, eta + e, sigma)
            mm, sm, lm = self.rows_eval(theta, eta - e, sigma)
            dm[:, j] = (mp - mm) / (2 * h)
            with np.errstate(divide="ignore", invalid="ignore"):
                dlogv[:, j] = (np.log(sp) - np.log(sm)) / h  # d log V = 2 d log sd
            dll[:, j] = (lp - lm) / (2 * h)
        l_i = self.per_ind(-2.0 * ll0)
        grad = np.stack([self.per_ind(-2.0 * dll[:, j]) for j in range(k)], axis=1)
        q = self.quant
        w = np.where(q, 1.0 / np.where(q, sd0, 1.0) ** 2, 0.0)
        a = np.einsum("r,ri,rj->rij", w, dm, dm)
        a += 0.5 * np.einsum("r,ri,rj->rij", q.astype(float), np.nan_to_num(dlogv),
                             np.nan_to_num(dlogv))
        c = (self.cens != 0) & (ll0 != 0)
        if np.any(c):
            bound = self.model.error.transform(self.dv[c])
            sign = np.where(self.cens[c] == 1, 1.0, -1.0)
            z = (bound - mean0[c]) / sd0[c]
            zz = sign * z
            lam = np.exp(-0.5 * zz * zz - 0.5 * _LOG2PI - log_ndtr(zz))
            dz = sign[:, None] * (-dm[c] - z[:, None] * 0.5 * dlogv[c]) / sd0[c][:, None]
            a[c] += np.einsum("r,ri,rj->rij", lam * (lam + zz), dz, dz)
        info = np.zeros((self.n_ind, k, k))
        np.add.at(info, self.ind, a)
        return l_i, grad, info

    def inner(self, theta, sigma, omega, tol: float = 1e-9, maxiter: int = 100) -> np.ndarray:
        """Empirical Bayes estimates by vectorised damped Newton (warm-started)."""
        om_inv = np.linalg.inv(omega)
        eta = self.eta.copy()

        def total(e):
            _, _, ll = self.rows_eval(theta, e, sigma)
            return self.per_ind(-2.0 * ll) + np.einsum("ni,ij,nj->n", e, om_inv, e)

        f_cur = total(eta)
        for _ in range(maxiter):
            _, g, info = self.parts(theta, eta, sigma)
            g = g + 2.0 * eta @ om_inv
            step = -np.linalg.solve(2.0 * (info + om_inv), g[..., None])[..., 0]
            alpha = np.ones(self.n_ind)
            new = eta + step
            f_new = total(new)
            for _ in range(30):
                bad = ~(f_new <= f_cur + 1e-12)
                if not bad.any():
                    break
                alpha[bad] *= 0.5
                new[bad] = eta[bad] + alpha[bad, None] * step[bad]
                f_new = total(new)
            moved = np.max(np.abs(alpha[:, None] * step))
            eta, f_prev, f_cur = new, f_cur, f_new
            if moved < tol and np.max(np.abs(f_prev - f_cur)) < 1e-10:
                break
        self.eta = eta
        return eta

    def ofv(self, theta, sigma, omega) -> float:
        eta = self.inner(theta, sigma, omega)
        om_inv = np.linalg.inv(omega)
        l_i, _, info = self.parts(theta, eta, sigma)
        _, logdet_om = np.linalg.slogdet(omega)
        _, logdet_h = np.linalg.slogdet(info + om_inv)
        per = l_i + np.einsum("ni,ij,nj->n", eta, om_inv, eta) + logdet_om + logdet_h
        return float(per.sum() - np.count_nonzero(self.quant) * _LOG2PI)


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
    return _Problem(model, rows, covariates, method).ofv(dict(theta), dict(sigma),
                                                         np.asarray(omega, dtype=float))


def fit_focei(model: PopulationModel, rows: pd.DataFrame, covariates: pd.DataFrame, *,
              theta0: Mapping[str, float] | None = None, omega0: np.ndarray | None = None,
              sigma0: Mapping[str, float] | None = None, full_omega: bool = False,
              method: str = "m3", maxiter: int = 500) -> FOCEIResult:
    """Fit a population model by FOCE-I.

    The outer optimiser (BFGS with finite-difference gradients) works on unconstrained
    transforms: bounded fixed effects through log/logit maps of their bounds, Omega through
    its Cholesky factor with a log diagonal, residual SDs through their bounds.

    Parameters
    ----------
    model, rows, covariates, method
        As in :func:`focei_objective`.
    theta0, omega0, sigma0 : optional
        Initial estimates (default: the specs' typical values and Omega = 0.1 I).
    full_omega : bool, default False
        Estimate the off-diagonal covariances of Omega (else diagonal).
    maxiter : int, default 500
        Outer iterations.

    Returns
    -------
    FOCEIResult
    """
    prob = _Problem(model, rows, covariates, method)
    k = prob.k
    theta0 = dict(theta0 or {s.name: s.typical for s in model.theta})
    sigma0 = dict(sigma0 or {s.name: s.typical for s in model.sigma})
    omega0 = np.eye(k) * 0.1 if omega0 is None else np.asarray(omega0, dtype=float)
    tril = np.tril_indices(k, -1)

    def pack(theta, omega, sigma):
        chol = np.linalg.cholesky(omega)
        x = [_to_free(s, theta[s.name]) for s in model.theta]
        x += list(np.log(np.diag(chol))) + (list(chol[tril]) if full_omega else [])
        x += [_to_free(s, sigma[s.name]) for s in model.sigma]
        return np.array(x)

    def unpack(x):
        nt = len(model.theta)
        theta = {s.name: _from_free(s, v) for s, v in zip(model.theta, x[:nt], strict=True)}
        chol = np.diag(np.exp(x[nt:nt + k]))
        i = nt + k
        if full_omega:
            chol[tril] = x[i:i + len(tril[0])]
            i += len(tril[0])
        sigma = {s.name: _from_free(s, v) for s, v in zip(model.sigma, x[i:], strict=True)}
        return theta, chol @ chol.T, sigma

    n_eval = [0]

    def objective(x):
        n_eval[0] += 1
        theta, omega, sigma = unpack(x)
        try:
            with np.errstate(over="ignore", under="ignore"):
                val = prob.ofv(theta, sigma, omega)
        except (np.linalg.LinAlgError, ModelSpecError, ValueError):
            return np.inf
        return val if np.isfinite(val) else np.inf

    t0 = time.perf_counter()
    res = optimize.minimize(objective, pack(theta0, omega0, sigma0), method="BFGS",
                            options={"gtol": 1e-5, "maxiter": maxiter})
    theta, omega, sigma = unpack(res.x)
    final = prob.ofv(theta, sigma, omega)
    eta = pd.DataFrame(prob.eta, columns=list(model.etas), index=prob.cov["id"])
    # BFGS often stops with "precision loss" at the minimum of an objective whose gradient
    # is a finite difference; accept the stop when the decrease a further quasi-Newton step
    # predicts, g' H^-1 g / 2, is below 1e-3 OFV units
    predicted = 0.5 * float(res.jac @ res.hess_inv @ res.jac)
    ok = bool(res.success or (np.isfinite(predicted) and 0 <= predicted < 1e-3))
    return FOCEIResult(ofv=final, theta=theta, omega=omega, sigma=sigma, eta=eta,
                       converged=ok, message=f"{res.message} (predicted further decrease "
                       f"{predicted:.2g})", n_evaluations=n_eval[0],
                       seconds=time.perf_counter() - t0)
