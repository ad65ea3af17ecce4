"""Batched FOCE-I computations (internal).

Everything here works on a *batch* of ``B`` population parameter vectors at once: fixed
effects and sigmas as arrays of shape ``(B, 1)``, Omega as ``(B, k, k)`` and the random
effects as ``(B, n_ind, k)``. One batch serves the centre and every central-difference
point of the outer gradient (``2 P + 1`` vectors), so the likelihood
(:func:`~carkinetics.observation.loglik_obs`, with a fixed cost per call) is called a
handful of times per outer iteration instead of hundreds.

Row-level derivatives. Each row's log-likelihood depends on the random effects only
through its prediction ``f``; its first and second derivatives in ``log f`` (and those of
the error model's mean and SD) are central differences of ``loglik_obs`` / ``moments``
in ``log f`` (the perturbed copies ride along in the same call: no second likelihood is
written), and ``d log f / d eta`` comes from the model: analytic where the model
provides ``log_jacobian`` (the CK specification: the piecewise closed form), else central
differences of the prediction in eta (one batched call).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from carkinetics.exceptions import ModelSpecError
from carkinetics.observation import loglik_obs

_LOG2PI = math.log(2.0 * math.pi)
#: step of the row-wise central differences in log f
H_ROW = 1e-4
#: step of the numerical d log f / d eta
H_ETA = 1e-5


class Engine:
    """Data and model bound together; holds the warm-started EBEs between evaluations."""

    def __init__(self, model: Any, rows: pd.DataFrame, covariates: pd.DataFrame,
                 method: str) -> None:
        self.model = model
        self.cov = covariates.reset_index(drop=True)
        pos = {v: i for i, v in enumerate(self.cov["id"])}
        missing = sorted({v for v in rows["id"] if v not in pos}, key=str)
        if missing:
            raise ModelSpecError(f"Participants {missing[:5]} have rows but no covariates.")
        ind = rows["id"].map(pos).to_numpy(int)
        order = np.argsort(ind, kind="stable")
        self.order = order
        self.rows = rows.iloc[order].reset_index(drop=True)
        self.ind = ind[order]
        self.n_ind, self.k = len(self.cov), len(model.etas)
        counts = np.bincount(self.ind, minlength=self.n_ind)
        if np.any(counts == 0):
            empty = list(self.cov["id"][counts == 0])[:5]
            raise ModelSpecError(f"Participants {empty} have covariates but no rows.")
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.counts = counts
        self.ctx = model.prepare(self.rows, self.cov)
        self.method = method
        self.dv = self.rows["dv"].to_numpy(float)
        self.n = len(self.dv)
        self.cens = (self.rows["cens"].to_numpy(int) if "cens" in self.rows
                     else np.zeros(self.n, int))
        self.lloq = self.rows["lloq"].to_numpy(float) if "lloq" in self.rows else None
        self.quant = self.cens == 0
        self.n_dens = int(np.count_nonzero(self.quant))
        self.bound = model.error.transform(self.dv)
        self.sign = np.where(self.cens == -1, -1.0, 1.0)
        self.eta = np.zeros((self.n_ind, self.k))
        self.log_additive = model.error.kind == "log_additive"

    # -- batch helpers ------------------------------------------------------------------------
    def per_ind(self, x: np.ndarray) -> np.ndarray:
        """Sum over each participant's rows along the last row axis: (..., n) -> (..., n_ind)."""
        return np.add.reduceat(x, self.starts, axis=-1)

    def _sigma(self, sigma: dict[str, np.ndarray]):
        if self.model.sigma_rows is None:
            return sigma[self.model.sigma[0].name]
        return self.model.sigma_rows(sigma, self.ctx)

    def logf(self, theta: dict[str, np.ndarray], eta: np.ndarray) -> np.ndarray:
        """Return log f of every row, (B, n)."""
        m = self.model
        if m.batched:
            p = m.individual(theta, eta, self.cov)
            pr = {k: np.asarray(v, dtype=float)[..., self.ind] for k, v in p.items()}
            with np.errstate(divide="ignore"):
                return np.log(m.predict(pr, self.ctx))
        out = np.empty((eta.shape[0], self.n))
        for b in range(eta.shape[0]):
            th = {k: float(np.asarray(v).reshape(-1)[b]) if np.size(v) > 1 else float(v)
                  for k, v in theta.items()}
            p = m.individual(th, eta[b], self.cov)
            pr = {k: np.asarray(v, dtype=float)[self.ind] for k, v in p.items()}
            with np.errstate(divide="ignore"):
                out[b] = np.log(m.predict(pr, self.ctx))
        return out

    def logf_jac(self, theta, eta):
        """Return log f (B, n), d log f / d eta (B, n, k) [and one-sided pairs on kinks]."""
        if self.model.log_jacobian is not None:
            return self.model.log_jacobian(theta, eta, self.ctx)
        b, k = eta.shape[0], self.k
        pert = np.repeat(eta[:, None], 2 * k + 1, axis=1)
        for j in range(k):
            pert[:, 1 + 2 * j, :, j] += H_ETA
            pert[:, 2 + 2 * j, :, j] -= H_ETA
        th = {n: np.repeat(np.broadcast_to(np.asarray(v, float), (b, 1)), 2 * k + 1, axis=0)
              for n, v in theta.items()}
        lf = self.logf(th, pert.reshape(b * (2 * k + 1), self.n_ind, k))
        lf = lf.reshape(b, 2 * k + 1, self.n)
        jac = np.stack([(lf[:, 1 + 2 * j] - lf[:, 2 + 2 * j]) / (2 * H_ETA) for j in range(k)],
                       axis=-1)
        return lf[:, 0], jac

    def ll(self, logf: np.ndarray, sig) -> np.ndarray:
        """Row log-likelihoods (same shape as ``logf``); ``-inf`` where log f is NaN."""
        bad = np.isnan(logf)
        if bad.any():
            logf = np.where(bad, 0.0, logf)
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            out = loglik_obs(self.dv, np.exp(logf), self.cens, error=self.model.error,
                             sigma=sig, lloq=self.lloq if self.method == "m2" else None,
                             method=self.method, check=False)
        return np.where(bad, -np.inf, out) if bad.any() else out

    def channels(self, logf: np.ndarray, sig):
        """ll0, d ll / d log f and the FOCE-I information weight of every row, (B, n) each."""
        em = self.model.error
        bad = np.isnan(logf)
        if bad.any():
            logf = np.where(bad, 0.0, logf)
        off = np.array([0.0, H_ROW, -H_ROW])[:, None, None]
        lf3 = logf[None] + off
        with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
            f3 = np.exp(lf3)
            ll3 = loglik_obs(self.dv, f3, self.cens, error=em, sigma=sig,
                             lloq=self.lloq if self.method == "m2" else None,
                             method=self.method, check=False)
            ll0 = ll3[0]
            d1 = (ll3[1] - ll3[2]) / (2 * H_ROW)
            if self.log_additive:  # mean = log f, sd = sigma: exact channel derivatives
                mean, sd = logf, np.broadcast_to(sig, logf.shape)
                dmean, dlogsd = 1.0, 0.0
            else:
                mean3, sd3 = em.moments(f3, sig)
                mean3 = np.broadcast_to(mean3, f3.shape)
                sd3 = np.broadcast_to(sd3, f3.shape)
                dmean = (mean3[1] - mean3[2]) / (2 * H_ROW)
                dlogsd = (np.log(sd3[1]) - np.log(sd3[2])) / (2 * H_ROW)
                mean, sd = mean3[0], sd3[0]
            w = np.where(self.quant, dmean**2 / sd**2 + 2.0 * dlogsd**2, 0.0)
            c = (~self.quant) & (ll0 != 0)
            if np.any(c):
                z = (self.bound - mean) / sd
                zz = self.sign * z
                lam = np.exp(-0.5 * zz * zz - 0.5 * _LOG2PI - log_ndtr(zz))
                dz = (-dmean - z * dlogsd) / sd
                w = np.where(c, lam * (lam + zz) * dz * dz, w)
        if bad.any():
            ll0 = np.where(bad, -np.inf, ll0)
        return ll0, np.nan_to_num(d1), np.nan_to_num(w)

    def parts(self, theta, eta, sig):
        """-2 log p(y | eta) per participant (B, n_ind), its gradient (B, n_ind, k) and A_i."""
        out = self.logf_jac(theta, eta)
        logf, jac = out[0], out[1]
        ll0, d1, w = self.channels(logf, sig)
        l_i = self.per_ind(-2.0 * ll0)
        grad = np.add.reduceat(-2.0 * d1[..., None] * jac, self.starts, axis=1)
        if len(out) > 2:  # rows on a kink: mean of the one-sided outer products
            j_lo, j_hi = out[2]
            jj = 0.5 * w[..., None, None] * (j_lo[..., :, None] * j_lo[..., None, :]
                                             + j_hi[..., :, None] * j_hi[..., None, :])
        else:
            jj = w[..., None, None] * jac[..., :, None] * jac[..., None, :]
        info = np.add.reduceat(jj, self.starts, axis=1)
        return l_i, grad, info

    # -- inner problem and OFV ------------------------------------------------------------------
    def inner(self, theta, sigma, omega_inv, eta0, tol: float = 1e-6, maxiter: int = 60,
              exact: bool = False, hess_l: np.ndarray | None = None):
        """EBEs by vectorised damped Newton over (batch x participants).

        The Newton matrix is the Gauss-Newton (FOCE-I information) matrix, or with ``exact``
        (single vector, ``B == 1``) the exact Hessian (:meth:`hessian_l`) for participants
        where it is positive definite. Returns eta (B, n_ind, k), l_i and the information
        at eta, the number of iterations and whether every unit converged. With ``exact``,
        the last exact Hessian of ``l_i`` is kept in ``self.hess_l``; a given ``hess_l``
        (n_ind, k, k) (a nearby centre's) is used as the Newton matrix instead (chord
        iterations, for the points of a finite-difference gradient).
        """
        sig = self._sigma(sigma)
        eta = np.array(eta0, dtype=float)
        self.hess_l = None

        def total(e):
            l_e = self.per_ind(-2.0 * self.ll(self.logf(theta, e), sig))
            return l_e + np.einsum("bni,bij,bnj->bn", e, omega_inv, e)

        it = 0
        converged = False
        done = np.zeros(eta.shape[:2], dtype=bool)
        for it in range(1, maxiter + 1):  # noqa: B007
            l_i, g, info = self.parts(theta, eta, sig)
            f_cur = l_i + np.einsum("bni,bij,bnj->bn", eta, omega_inv, eta)
            g = g + 2.0 * np.einsum("bij,bnj->bni", omega_inv, eta)
            hess = 2.0 * (info + omega_inv[:, None])
            if hess_l is not None:
                hess = hess_l[None] + 2.0 * omega_inv[:, None]
            elif exact and eta.shape[0] == 1:
                hl = self.hessian_l(theta, sig, eta[0])
                he = hl[None] + 2.0 * omega_inv[:, None]
                pd_ok = np.all(np.linalg.eigvalsh(he) > 0, axis=-1)
                hess = np.where(pd_ok[..., None, None], he, hess)
                self.hess_l = hl
            try:
                step = -np.linalg.solve(hess, g[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step = -g / np.maximum(np.einsum("...ii->...i", hess), 1e-12)
            step = np.where(np.isfinite(step) & ~done[..., None], step, 0.0)
            size = np.max(np.abs(step), axis=-1) if step.size else np.zeros(done.shape)
            done |= size < tol
            if done.all():
                converged = True
                break
            alpha = np.ones(f_cur.shape)
            new = eta + step
            f_new = total(new)
            for _ in range(20):
                bad = ~(f_new <= f_cur + 1e-12 * np.abs(f_cur))
                if not bad.any():
                    break
                alpha = np.where(bad, 0.5 * alpha, alpha)
                new = np.where(bad[..., None], eta + alpha[..., None] * step, new)
                f_new = np.where(bad, total(new), f_new)
            stuck = ~(f_new <= f_cur + 1e-12 * np.abs(f_cur))
            eta = np.where(stuck[..., None], eta, new)
            done |= stuck | (alpha * size < tol)
            if done.all():
                l_i, _, info = self.parts(theta, eta, sig)
                converged = not np.any(stuck & (size > 1e-4))
                break
        else:  # iterations exhausted: the terms at the final eta
            l_i, _, info = self.parts(theta, eta, sig)
        return eta, l_i, info, it, converged

    def best_eta(self, theta, sigma, omega) -> np.ndarray:
        """Multi-start EBEs for one parameter vector (kept in ``self.eta``).

        The individual objective can have several local minima (e.g. tmax on either side
        of an observed peak). Starts: the current EBEs, zero and +-1 SD of each random
        effect, solved as one batch; each participant keeps its lowest ``l_i + eta'
        Omega^-1 eta``.
        """
        k = self.k
        om = omega.reshape(k, k)
        sd = np.sqrt(np.clip(np.diag(om), 0, None))
        starts = [self.eta, np.zeros_like(self.eta)]
        for j in range(k):
            for sgn in (1.0, -1.0):
                e = np.zeros_like(self.eta)
                e[:, j] = sgn * sd[j]
                starts.append(e)
        eta0 = np.stack(starts)
        s = len(starts)
        th = {n: np.repeat(np.asarray(v, float).reshape(1, -1)[:, :1], s, axis=0)
              for n, v in theta.items()}
        sg = {n: np.repeat(np.asarray(v, float).reshape(1, -1)[:, :1], s, axis=0)
              for n, v in sigma.items()}
        om_inv = np.repeat(np.linalg.inv(om)[None], s, axis=0)
        eta, l_i, _, _, _ = self.inner(th, sg, om_inv, eta0)
        obj = l_i + np.einsum("bni,bij,bnj->bn", eta, om_inv, eta)
        obj = np.where(np.isfinite(obj), obj, np.inf)
        best = np.argmin(obj, axis=0)
        self.eta = eta[best, np.arange(self.n_ind)]
        return self.eta

    def hessian_l(self, theta, sig, eta_c: np.ndarray, delta: float = 1e-5) -> np.ndarray:
        """Exact Hessian in eta of ``l_i`` (-2 log p(y | eta)) at ``eta_c`` (n_ind, k, k).

        Central differences of the analytic gradient, every participant and direction in
        one batch of ``2 k`` vectors (each participant's gradient depends on its own eta).
        ``theta`` and the per-row sigma ``sig`` belong to one parameter vector.
        """
        k = self.k
        pert = np.repeat(eta_c[None], 2 * k, axis=0)
        for j in range(k):
            pert[2 * j, :, j] += delta
            pert[2 * j + 1, :, j] -= delta
        _, g, _ = self.parts(theta, pert, sig)
        hess = np.stack([(g[2 * j] - g[2 * j + 1]) / (2 * delta) for j in range(k)], axis=-1)
        return 0.5 * (hess + np.swapaxes(hess, -1, -2))

    def ofv(self, theta, sigma, omega, eta0=None, exact: bool = False,
            hess_l: np.ndarray | None = None, maxiter: int = 60, tol: float = 1e-6):
        """OFV (B,) on NONMEM's scale, the EBEs (B, n_ind, k) and per-participant terms."""
        b = omega.shape[0]
        if eta0 is None:
            eta0 = np.broadcast_to(self.eta, (b, self.n_ind, self.k))
        omega_inv = np.linalg.inv(omega)
        eta, l_i, info, _, _ = self.inner(theta, sigma, omega_inv, eta0, exact=exact,
                                          hess_l=hess_l, maxiter=maxiter, tol=tol)
        _, logdet_om = np.linalg.slogdet(omega)
        sgn, logdet_h = np.linalg.slogdet(info + omega_inv[:, None])
        quad = np.einsum("bni,bij,bnj->bn", eta, omega_inv, eta)
        per = l_i + quad + logdet_om[:, None] + np.where(sgn > 0, logdet_h, np.inf)
        out = per.sum(axis=1) - self.n_dens * _LOG2PI
        return np.where(np.isfinite(out), out, np.inf), eta, per

