"""Population fits of the synthetic trial, side by side in one run.

Methods (one function each, so rows can be added without touching the others):

* ``run_focei``: :func:`carkinetics.fitting.population.fit_focei` on
  ``PopulationSpec()`` (piecewise, random effects on all six parameters, dose power on cmax,
  qPCR + flow, M3): estimation time (best of N), and the covariance step and diagnostics;
* ``run_pymc_baseline``: what a user would write by hand in PyMC: a *centred*
  hierarchical model of the same specification (same closed form, through
  ``log_predict(xp=pytensor)``), BLQ/above-ULOQ rows through ``pm.Censored``, PyMC's default
  sampler (``pm.sample``); reported: wall time and effective samples per second (minimum
  bulk ESS over the typical values);
* ``run_bayes``: :func:`carkinetics.fitting.bayes.fit_bayes` where installed (issue 6,
  Bayesian half), same measures.

Goals (issue 6): FOCE-I under 5 s; Bayes at least 3x the ESS/s of the baseline.

Run: ``python benchmarks/population_fit.py [--repeat 3] [--methods focei,baseline,bayes]
[--draws 1000] [--tune 1000] [--chains 4]``.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from carkinetics.fitting.population import PopulationSpec, fit_focei

TRIAL = Path(__file__).resolve().parents[1] / "data" / "synthetic" / "trial.csv"
TYPICAL = ("foldx", "tmax", "cmax", "alpha", "fb", "beta")


def run_focei(data: pd.DataFrame, repeat: int = 3) -> dict:
    """FOCE-I: best-of-``repeat`` estimation time, then one full run (SEs, diagnostics)."""
    best = math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeat):
            t0 = time.perf_counter()
            res = fit_focei(PopulationSpec(), data, covariance=False, diagnostics=False)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        full = fit_focei(PopulationSpec(), data)
        t_full = time.perf_counter() - t0
    return {"method": "carkinetics FOCE-I", "seconds": best, "seconds_full": t_full,
            "ofv": res.ofv, "converged": res.converged, "n_evaluations": res.n_evaluations,
            "estimates": full.to_frame().set_index("parameter")["estimate"].to_dict()}


def _ess_per_s(idata, seconds: float, names) -> tuple[float, float]:
    import arviz as az

    ess = az.ess(idata, var_names=list(names))
    low = min(float(np.min(ess[v].values)) for v in names)
    return low, low / seconds


def run_pymc_baseline(data: pd.DataFrame, draws: int = 1000, tune: int = 1000,
                      chains: int = 4, seed: int = 1) -> dict:
    """The hand-built centred PyMC model (pm.Censored, default sampler)."""
    import pymc as pm
    import pytensor.tensor as pt

    from carkinetics.models._xp import pytensor_namespace

    spec = PopulationSpec()
    d = spec.design(data)
    m = spec.model
    xp = pytensor_namespace()
    log_dose = np.log(d.covariates["dose"].to_numpy(float) / 1e6)
    y = np.log(d.dv)
    lower = np.where(d.cens == 1, y, -np.inf)
    upper = np.where(d.cens == -1, y, np.inf)
    flow = d.assay_mask[1]
    with pm.Model():
        params = {}
        dose_exp = pm.Normal("dose_exp", 0.5, 1.0)
        for p in TYPICAL:
            s = m.spec(p)
            tv = pm.Normal(f"tv_{p}", float(s.to_internal(s.typical)), 2.0)
            om = pm.HalfNormal(f"omega_{p}", 1.0)
            mean = tv + (dose_exp * log_dose if p == "cmax" else 0.0)
            phi = pm.Normal(f"phi_{p}", mean, om, shape=d.n_ind)  # centred
            params[p] = pt.exp(phi) if s.transform == "log" else pm.math.invlogit(phi)
        log_scale = pm.Normal("log_scale_car_flow", -5.0, 2.0)
        s_q = pm.HalfNormal("sigma_qpcr", 1.0)
        s_f = pm.HalfNormal("sigma_flow", 1.0)
        rows = {k: v[d.ind] for k, v in params.items()}
        mu = m.log_predict(d.t, rows, xp=xp) + log_scale * flow
        sd = s_q * (1 - flow) + s_f * flow
        pm.Censored("y", pm.Normal.dist(mu, sd), lower=lower, upper=upper, observed=y)
        t0 = time.perf_counter()
        idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                          progressbar=False)
        sec = time.perf_counter() - t0
    names = [f"tv_{p}" for p in TYPICAL]
    ess, rate = _ess_per_s(idata, sec, names)
    div = int(idata.sample_stats["diverging"].sum())
    return {"method": "hand-built PyMC (centred, pm.Censored, pm.sample)", "seconds": sec,
            "min_ess": ess, "ess_per_s": rate, "divergences": div}


def run_bayes(data: pd.DataFrame, draws: int = 1000, tune: int = 1000, chains: int = 4,
              seed: int = 1) -> dict:
    """carkinetics' Bayesian fit, where installed."""
    try:
        from carkinetics.fitting.bayes import fit_bayes
    except ImportError as exc:
        return {"method": "carkinetics Bayes", "error": f"not available: {exc}"}
    t0 = time.perf_counter()
    res = fit_bayes(PopulationSpec(), data, draws=draws, tune=tune, chains=chains, seed=seed)
    sec = time.perf_counter() - t0
    post = res.idata.posterior
    names = [v for v in post.data_vars if any(v.endswith(p) for p in TYPICAL)][:6]
    ess, rate = _ess_per_s(res.idata, sec, names) if names else (math.nan, math.nan)
    return {"method": "carkinetics Bayes", "seconds": sec, "min_ess": ess, "ess_per_s": rate}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--methods", default="focei,baseline,bayes")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    args = ap.parse_args(argv)
    data = pd.read_csv(TRIAL)
    methods = args.methods.split(",")
    rows = []
    if "focei" in methods:
        r = run_focei(data, args.repeat)
        rows.append(r)
        print(f"FOCE-I: estimation {r['seconds']:.2f} s (best of {args.repeat}; "
              f"{r['n_evaluations']} gradient evaluations, OFV {r['ofv']:.3f}, converged "
              f"{r['converged']}); with covariance step and diagnostics {r['seconds_full']:.2f} s")
    kw = {"draws": args.draws, "tune": args.tune, "chains": args.chains}
    if "baseline" in methods:
        rows.append(run_pymc_baseline(data, **kw))
    if "bayes" in methods:
        rows.append(run_bayes(data, **kw))
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "estimates"} for r in rows])
    base = table.loc[table["method"].str.startswith("hand-built"), "seconds"]
    if len(base):
        table["time_ratio_to_baseline"] = table["seconds"] / float(base.iloc[0])
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
