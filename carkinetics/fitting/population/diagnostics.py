"""Diagnostics of a FOCE-I fit: PRED/IPRED, IWRES, CWRES, NPDE, shrinkage, VPC data.

* **CWRES** (Hooker, Staatz & Karlsson 2007): for each participant, the model linearised
  around the EBEs, ``E = m(eta_i) - G eta_i`` and ``Cov = G Omega G' + diag(V(eta_i))``
  (G: d mean / d eta, V: residual variance at the EBEs, the interaction), on the error
  model's observation scale (log for ``log_additive``); ``CWRES = L^-1 (y - E)`` with
  ``L L' = Cov``, over the quantified rows (censored rows: NaN).
* **NPDE** (Brendel et al. 2006; Comets et al. 2008), simulation-based and
  censoring-aware as in Nguyen et al. 2017: ``K`` data sets are simulated from the final
  estimates; a censored row gets a prediction discrepancy drawn uniformly in ``(0,
  p_LLOQ)`` (``p_LLOQ``: the simulated probability of being below its LLOQ; above-ULOQ
  rows in ``(p_ULOQ, 1)``) and its value is imputed as that quantile of its simulated
  distribution; each participant's observed and simulated vectors are then decorrelated
  with the Cholesky factor of the simulated covariance, and ``npde = Phi^-1(pde)``.
* **Shrinkage**: eta ``1 - SD(eta_j) / sqrt(omega_jj)``; epsilon ``1 - SD(IWRES)``.

Every random stream comes from one root ``numpy.random.SeedSequence(seed)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["diagnose", "simulate_rows", "npde", "vpc_table"]


def _theta_batch(d: dict[str, float]) -> dict[str, np.ndarray]:
    return {k: np.array([[float(v)]]) for k, v in d.items()}


def simulate_rows(eng: Any, theta: dict[str, float], omega: np.ndarray,
                  sigma: dict[str, float], n_sim: int,
                  seed: int | np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the observation rows ``n_sim`` times from population parameters.

    Returns
    -------
    y : ndarray (n_sim, n_rows)
        Simulated observations on the error model's observation scale (uncensored).
    logf : ndarray (n_sim, n_rows)
        The simulated participants' log predictions.
    """
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    s_eta, s_eps = ss.spawn(2)
    k = eng.k
    eta = (np.random.default_rng(s_eta).multivariate_normal(
        np.zeros(k), omega, size=(n_sim, eng.n_ind)) if k else np.zeros((n_sim, eng.n_ind, 0)))
    th = _theta_batch(theta)
    logf = np.empty((n_sim, eng.n))
    for a in range(0, n_sim, 100):
        with np.errstate(all="ignore"):
            logf[a:a + 100] = eng.logf(th, eta[a:a + 100])
    sig = eng._sigma(_theta_batch(sigma))
    with np.errstate(all="ignore"):
        mean, sd = eng.model.error.moments(np.exp(logf), sig)
    eps = np.random.default_rng(s_eps).standard_normal(logf.shape)
    return mean + sd * eps, logf


def npde(eng: Any, y_obs: np.ndarray, ysim: np.ndarray,
         seed: int | np.random.SeedSequence, lloq: np.ndarray | None = None,
         uloq: np.ndarray | None = None) -> pd.DataFrame:
    """Censoring-aware NPDE (see the module docstring); rows in the engine's order.

    ``y_obs``, ``ysim`` (K, n), ``lloq`` and ``uloq`` are on the observation scale. A
    censored row (``eng.cens`` 1 or -1) gets ``pd ~ U(0, p_LLOQ)`` (or ``U(p_ULOQ, 1)``)
    and the value at that quantile of its simulated distribution; the simulated data sets
    are censored at the same limits and imputed the same way, so that observed and
    simulated vectors are decorrelated alike. Returns a frame with ``pd`` (not
    decorrelated), ``npde`` and ``y_imputed``.
    """
    rng = np.random.default_rng(seed)
    k_sim, n = ysim.shape
    y = np.array(y_obs, dtype=float)
    cens = np.asarray(eng.cens)
    lo_lim = np.full(n, -np.inf) if lloq is None else np.where(np.isfinite(lloq), lloq, -np.inf)
    hi_lim = np.full(n, np.inf) if uloq is None else np.where(np.isfinite(uloq), uloq, np.inf)
    lo_lim = np.where(cens == 1, y, lo_lim)
    hi_lim = np.where(cens == -1, y, hi_lim)
    srt = np.sort(ysim, axis=0)
    p_lo = np.mean(ysim < lo_lim, axis=0)
    p_hi = np.mean(ysim < hi_lim, axis=0)

    def quantile(p, cols):
        i = np.clip(np.floor(p * k_sim).astype(int), 0, k_sim - 1)
        return srt[i, cols]

    cols = np.arange(n)
    with np.errstate(invalid="ignore"):
        pd_ = np.mean(ysim < y[None, :], axis=0)
    u = rng.uniform(size=n)
    lo_c, hi_c = cens == 1, cens == -1
    pd_[lo_c] = u[lo_c] * p_lo[lo_c]
    pd_[hi_c] = p_hi[hi_c] + u[hi_c] * (1.0 - p_hi[hi_c])
    y_imp = y.copy()
    y_imp[lo_c | hi_c] = quantile(pd_[lo_c | hi_c], cols[lo_c | hi_c])
    # the simulated data sets, censored and imputed alike
    ys = ysim.copy()
    us = rng.uniform(size=ysim.shape)
    below = ysim < lo_lim[None, :]
    above = ysim > hi_lim[None, :]
    cc = np.broadcast_to(cols, ysim.shape)
    ys[below] = quantile((us * p_lo[None, :])[below], cc[below])
    ys[above] = quantile((p_hi[None, :] + us * (1.0 - p_hi[None, :]))[above], cc[above])
    lo, hi = 1.0 / (2 * k_sim), 1.0 - 1.0 / (2 * k_sim)
    out = np.full(n, np.nan)
    for i in range(eng.n_ind):
        rows = slice(eng.starts[i], eng.starts[i] + eng.counts[i])
        yi = ys[:, rows]
        mu = yi.mean(axis=0)
        cov = np.atleast_2d(np.cov(yi, rowvar=False))
        try:
            chol = np.linalg.cholesky(cov)
            dec_obs = np.linalg.solve(chol, y_imp[rows] - mu)
            dec_sim = np.linalg.solve(chol, (yi - mu).T).T
        except np.linalg.LinAlgError:
            sd = np.sqrt(np.diag(cov))
            dec_obs = (y_imp[rows] - mu) / sd
            dec_sim = (yi - mu) / sd
        pde = np.mean(dec_sim < dec_obs[None, :], axis=0)
        out[rows] = stats.norm.ppf(np.clip(pde, lo, hi))
    return pd.DataFrame({"pd": np.clip(pd_, lo, hi), "npde": out, "y_imputed": y_imp})


def diagnose(result: Any, eng: Any, *, n_sim: int = 500, seed: int = 20240409) -> dict:
    """Diagnostics of a fit: ``individual``, ``table``, ``shrinkage`` and ``warnings``.

    ``eng`` is the fit's engine (data and model); the EBEs are ``result.eta``.
    """
    model = eng.model
    em = model.error
    theta, omega, sigma = result.theta, result.omega, result.sigma
    eta_hat = result.eta.to_numpy()[None]
    th = _theta_batch(theta)
    sig = eng._sigma(_theta_batch(sigma))
    with np.errstate(all="ignore"):
        logf_i, jac = eng.logf_jac(th, eta_hat)[:2]
        logf_0 = eng.logf(th, np.zeros_like(eta_hat))
        f_i, f_0 = np.exp(logf_i[0]), np.exp(logf_0[0])
        mean_i, sd_i = em.moments(np.exp(logf_i), sig)
        mean_i = np.broadcast_to(mean_i, logf_i.shape)[0]
        sd_i = np.broadcast_to(sd_i, logf_i.shape)[0]
        h = 1e-5
        m_p, _ = em.moments(np.exp(logf_i + h), sig)
        m_m, _ = em.moments(np.exp(logf_i - h), sig)
        dmean = (np.broadcast_to(m_p, logf_i.shape)[0]
                 - np.broadcast_to(m_m, logf_i.shape)[0]) / (2 * h)
    y = em.transform(eng.dv)
    quant = eng.cens == 0
    iwres = np.where(quant, (y - mean_i) / sd_i, np.nan)
    g = dmean[:, None] * jac[0]
    cwres = np.full(eng.n, np.nan)
    for i in range(eng.n_ind):
        rows = np.arange(eng.starts[i], eng.starts[i] + eng.counts[i])
        q = rows[quant[rows]]
        if q.size == 0:
            continue
        gi = g[q]
        e = mean_i[q] - gi @ eta_hat[0, i]
        cov = gi @ omega @ gi.T + np.diag(sd_i[q] ** 2)
        try:
            chol = np.linalg.cholesky(cov)
            cwres[q] = np.linalg.solve(chol, y[q] - e)
        except np.linalg.LinAlgError:
            cwres[q] = (y[q] - e) / np.sqrt(np.diag(cov))
    ss = np.random.SeedSequence(seed)
    s_sim, s_pd = ss.spawn(2)
    ysim, _ = simulate_rows(eng, theta, omega, sigma, n_sim, s_sim)
    rows = eng.rows
    lim = {c: (em.transform(rows[c].to_numpy(float)) if c in rows else None)
           for c in ("lloq", "uloq")}
    nd = npde(eng, y, ysim, s_pd, lloq=lim["lloq"], uloq=lim["uloq"])
    table = eng.rows.copy()
    table["PRED"] = f_0
    table["IPRED"] = f_i
    table["IWRES"] = iwres
    table["CWRES"] = cwres
    table["pd"] = nd["pd"].to_numpy()
    table["NPDE"] = nd["npde"].to_numpy()
    eta_df = result.eta
    shrink: dict[str, float] = {}
    for j, name in enumerate(eta_df.columns):
        w = float(omega[j, j])
        shrink[name] = (float(1.0 - np.std(eta_df.iloc[:, j], ddof=1) / np.sqrt(w))
                        if w > 0 and len(eta_df) > 1 else float("nan"))
    eps_shrink = float(1.0 - np.nanstd(iwres)) if np.any(quant) else float("nan")
    shrink["epsilon"] = eps_shrink
    warn = [f"eta shrinkage of {k} is {v:.0%}: its EBEs (and EBE-based diagnostics) are "
            "uninformative" for k, v in shrink.items() if k != "epsilon" and v > 0.4]
    if getattr(model, "spec", None) is not None:
        ind = model.spec.individual(theta, eta_hat[0], model.design)
        ind_df = pd.DataFrame({k: np.asarray(v, float) for k, v in ind.items()})
    else:
        p = model.individual(theta, eta_hat[0], eng.cov)
        ind_df = pd.DataFrame({k: np.broadcast_to(np.asarray(v, float), (eng.n_ind,))
                               for k, v in p.items()})
    ind_df.insert(0, "id", eng.cov["id"].to_numpy())
    return {"individual": ind_df, "table": table, "shrinkage": shrink,
            "warnings": tuple(result.warnings) + tuple(warn)}


def vpc_table(eng: Any, theta: dict[str, float], omega: np.ndarray, sigma: dict[str, float],
              *, n_sim: int = 200, seed: int = 20240409, n_bins: int = 8,
              pis: tuple[float, float, float] = (0.05, 0.5, 0.95)) -> pd.DataFrame:
    """Binned VPC statistics with censoring (per endpoint and time bin).

    Observed and simulated data are censored alike (a simulated value below its row's
    LLOQ counts as BLQ). For each bin: the observed percentiles of the quantified values
    (BLQ rows placed at their LLOQ, so percentiles below the LLOQ are not shown), the
    median and 90% interval over simulations of each simulated percentile, and the observed
    and simulated (median and 90% interval) fraction BLQ.
    """
    em = eng.model.error
    ysim, _ = simulate_rows(eng, theta, omega, sigma, n_sim, seed)
    dv_sim = em.untransform(ysim)
    rows = eng.rows
    lloq = rows["lloq"].to_numpy(float) if "lloq" in rows else np.full(eng.n, -np.inf)
    lloq = np.where(np.isfinite(lloq), lloq, -np.inf)
    t = rows["time"].to_numpy(float) if "time" in rows else np.arange(eng.n, dtype=float)
    ep = rows["endpoint"].to_numpy(object) if "endpoint" in rows else np.full(eng.n, "dv")
    out = []
    for e in pd.unique(ep):
        sel = np.flatnonzero(ep == e)
        tt = t[sel]
        qs = np.unique(np.quantile(tt, np.linspace(0, 1, n_bins + 1)))
        bins = np.clip(np.searchsorted(qs, tt, side="right") - 1, 0, max(len(qs) - 2, 0))
        for b in np.unique(bins):
            r = sel[bins == b]
            obs = np.where(eng.cens[r] == 1, lloq[r], eng.dv[r])
            sim = dv_sim[:, r]
            sim_blq = sim < lloq[r][None, :]
            sim_c = np.where(sim_blq, lloq[r][None, :], sim)
            rec = {"endpoint": e, "bin": int(b), "time": float(np.median(t[r])),
                   "t_lo": float(t[r].min()), "t_hi": float(t[r].max()), "n": len(r),
                   "blq_obs": float(np.mean(eng.cens[r] == 1))}
            fb = sim_blq.mean(axis=1)
            rec.update(blq_sim_lo=float(np.quantile(fb, 0.05)),
                       blq_sim_med=float(np.median(fb)),
                       blq_sim_hi=float(np.quantile(fb, 0.95)))
            for p in pis:
                tag = f"p{int(round(100 * p)):02d}"
                rec[f"{tag}_obs"] = float(np.quantile(obs, p))
                sp = np.quantile(sim_c, p, axis=1)
                rec[f"{tag}_sim_lo"] = float(np.quantile(sp, 0.05))
                rec[f"{tag}_sim_med"] = float(np.median(sp))
                rec[f"{tag}_sim_hi"] = float(np.quantile(sp, 0.95))
            rec["lloq"] = float(np.median(lloq[r]))
            out.append(rec)
    return pd.DataFrame(out)
