"""Population fits of the synthetic trial, side by side in one run.

Run from the repository root::

    python benchmarks/population_fit.py [--methods focei,bayes] [--repeat 3]
        [--draws 1000] [--tune 1000] [--chains 2] [--seeds 1 2 3] [--with-pymc]

Methods (one function each, so rows can be added without touching the others):

* ``run_focei`` (FOCE-I part): :func:`carkinetics.fitting.population.fit_focei` on
  ``PopulationSpec()`` (piecewise, random effects on all six parameters, dose power on cmax,
  qPCR + flow, M3): estimation time (best of N), and the covariance step and diagnostics.
  Goal: under 5 s.
* ``bayes_section`` (Bayes part; ``run_baseline`` and ``run_bayes``), for each seed:

  - baseline: the model a PyMC user would write by hand for the same data and the same
    population model (piecewise kinetics, log-normal/logit-normal random effects on all six
    parameters, dose power on cmax, flow/qPCR scale, one log-additive residual SD per
    assay, the same priors as carkinetics' defaults), with **centred** random effects,
    ``pm.Censored`` for the BLQ rows and the **default** sampler (``pm.sample``);
  - carkinetics: ``fit_bayes(PopulationSpec(), data)`` (non-centred random effects, the
    shared censored likelihood, nutpie where installed, chains started at the posterior
    mode); with ``--with-pymc`` also with ``sampler="pymc"``.

  Before timing, the script checks that the two models are the same: the baseline's
  ``pm.Censored`` log-likelihood at a point equals carkinetics' numpy likelihood
  (``loglik_obs`` over ``PopulationSpec.log_pred``) at the same individual parameters.

  Figure of merit: effective samples per second = min bulk ESS over the typical values
  (the eight fixed effects: six kinetic typical values, dose exponent, flow log scale)
  divided by the sampling wall time (warm-up + draws, all chains, plus carkinetics' mode
  search; the one-off graph compilation is excluded and printed separately). Goal:
  carkinetics >= 3x the baseline.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "synthetic" / "trial.csv"
TYPICAL = ("foldx", "tmax", "cmax", "alpha", "fb", "beta", "dose_exp", "log_scale_car_flow")


# -- FOCE-I ---------------------------------------------------------------------------------
def run_focei(data: pd.DataFrame, repeat: int = 3) -> dict:
    """FOCE-I: best-of-``repeat`` estimation time, then one full run (SEs, diagnostics)."""
    from carkinetics.fitting.population import PopulationSpec, fit_focei

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



# -- Bayes: the hand-built baseline and fit_bayes --------------------------------------------------
def baseline_model(data: pd.DataFrame, priors):
    """The hand-written PyMC model (centred random effects, pm.Censored).

    ``priors`` is carkinetics' default PriorSet for the same design, so both fits target
    the same posterior (the user would type the same numbers).
    """
    import pymc as pm
    import pytensor.tensor as pt

    df = data[data["time"] >= 0].reset_index(drop=True)
    codes, uniq = pd.factorize(df["id"], sort=True)
    n = len(uniq)
    dose = df.groupby("id")["dose"].first().loc[uniq].to_numpy(float)
    t = df["time"].to_numpy(float)
    flow = (df["endpoint"] == "car_flow").to_numpy()
    cens = df["cens"].to_numpy(int)
    log_dv = np.log(df["dv"].to_numpy(float))
    lower = np.where(cens == 1, np.log(df["lloq"].to_numpy(float)), -np.inf)
    upper = np.where(cens == -1, np.log(df["uloq"].to_numpy(float)), np.inf)
    th, om, sg = priors.theta, priors.omega, priors.sigma
    with pm.Model() as model:
        ind = {}
        for p in ("foldx", "tmax", "cmax", "alpha", "fb", "beta"):
            mu = pm.Normal(f"mu_{p}", th[p].loc, th[p].scale)
            sd = pm.HalfNormal(f"omega_{p}", om[p].scale)
            if p == "cmax":
                dose_exp = pm.Normal("dose_exp", th["dose_exp"].loc, th["dose_exp"].scale)
                mu = mu + dose_exp * np.log(dose / 1e6)
            ind[p] = pm.Normal(f"phi_{p}", mu, sd, shape=n)  # centred: log/logit scale
        log_scale = pm.Normal("log_scale_car_flow", th["log_scale_car_flow"].loc,
                              th["log_scale_car_flow"].scale)
        s_q = pm.HalfNormal("sigma_log_car_qpcr", sg["sigma_log_car_qpcr"].scale)
        s_f = pm.HalfNormal("sigma_log_car_flow", sg["sigma_log_car_flow"].scale)
        log_foldx, tmax = ind["foldx"][codes], pt.exp(ind["tmax"][codes])
        log_cmax = ind["cmax"][codes]
        alpha, beta = pt.exp(ind["alpha"][codes]), pt.exp(ind["beta"][codes])
        fb = pm.math.invlogit(ind["fb"][codes])
        up = log_cmax - log_foldx + log_foldx / tmax * t
        down = log_cmax + pt.log((1 - fb) * pt.exp(-alpha * (t - tmax))
                                 + fb * pt.exp(-beta * (t - tmax)))
        mu_y = pt.switch(t < tmax, up, down) + flow * log_scale
        sd_y = pt.switch(flow, s_f, s_q)
        pm.Censored("y", pm.Normal.dist(mu_y, sd_y), lower=lower, upper=upper,
                    observed=log_dv)
    return model


def check_same_model(data: pd.DataFrame, model, spec, design) -> tuple[float, float]:
    """|baseline log-lik - carkinetics numpy log-lik| at a random point (all rows), and the
    numpy log-likelihood itself."""
    from carkinetics.observation import loglik_obs

    rng = np.random.default_rng(5)
    theta = {s.name: s.typical for s in design.theta_specs}
    eta = rng.normal(0.0, 0.3, (design.n_ind, len(design.eta_names)))
    sigma = {"sigma_log_car_qpcr": 0.45, "sigma_log_car_flow": 0.35}
    phi = spec.individual_internal(theta, eta, design)
    logp = spec.log_pred(theta, eta, design)
    ref = loglik_obs(design.dv, np.exp(logp), design.cens, error=spec.error,
                     sigma=spec.row_sigma(sigma, design)[0], lloq=design.lloq).sum()
    point = model.initial_point()
    for p in ("foldx", "tmax", "cmax", "alpha", "fb", "beta"):
        point[f"phi_{p}"] = np.asarray(phi[p], dtype=float)
    point["log_scale_car_flow"] = np.asarray(theta["log_scale_car_flow"])
    point["sigma_log_car_qpcr_log__"] = np.log(sigma["sigma_log_car_qpcr"])
    point["sigma_log_car_flow_log__"] = np.log(sigma["sigma_log_car_flow"])
    # the baseline's ids are sorted like the design's
    assert list(design.ids) == sorted(design.ids)
    y_logp = model.compile_logp(vars=[model["y"]])(point)
    return float(abs(y_logp - ref)), float(ref)


def load() -> pd.DataFrame:
    """The synthetic trial's CAR-T rows (qPCR and flow; the PD rows are not modelled)."""
    d = pd.read_csv(DATA)
    return d[d["endpoint"].isin(["car_qpcr", "car_flow"])].reset_index(drop=True)


def min_bulk_ess(idata, var_names) -> tuple[float, pd.Series]:
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = az.ess(idata.posterior[var_names], method="bulk")
    vals = {}
    for v in var_names:
        arr = np.ravel(ess[v].values)
        if arr.size == 1:
            vals[v] = float(arr[0])
        else:
            for k, name in enumerate(ess[v].coords[ess[v].dims[0]].values):
                vals[str(name)] = float(arr[k])
    s = pd.Series(vals)
    return float(s.min()), s


def run_baseline(data, priors, *, draws, tune, chains, seed):
    """Fit the hand-built model with PyMC's default sampler; ESS/s over the typical values."""
    import arviz as az
    import pymc as pm

    model = baseline_model(data, priors)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with model:
            idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                              progressbar=False)
    wall = time.perf_counter() - t0
    sampling = float(idata.posterior.attrs["sampling_time"])
    names = [f"mu_{p}" for p in TYPICAL[:6]] + ["dose_exp", "log_scale_car_flow"]
    ess, per = min_bulk_ess(idata, names)
    div = int(idata.sample_stats["diverging"].sum())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = float(max(float(np.max(az.rhat(idata.posterior[n])[n].values)) for n in names))
    post = {p: float(np.median(idata.posterior[n].values)) for p, n in zip(TYPICAL, names,
                                                                          strict=True)}
    return {"label": "hand-built PyMC (centred, pm.Censored, pm.sample defaults)",
            "ess_min": ess, "ess": per, "sampling_s": sampling, "wall_s": wall,
            "compile_s": wall - sampling, "divergences": div, "median_t": post,
            "r_hat_max": rhat}


def run_bayes(data, spec, *, draws, tune, chains, seed, sampler,
              parameterization="noncentred"):
    """carkinetics fit_bayes; ESS/s over the typical values (theta_t)."""
    from carkinetics.exceptions import ConvergenceWarning
    from carkinetics.fitting.bayes import fit_bayes

    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = fit_bayes(spec, data, draws=draws, tune=tune, chains=chains, seed=seed,
                        sampler=sampler, parameterization=parameterization)
    wall = time.perf_counter() - t0
    ess, per = min_bulk_ess(res.idata, ["theta_t"])
    tm = res.summary["timings"]
    post = dict(zip(res.design.theta_names,
                    np.median(res.idata.posterior["theta_t"].values.reshape(-1, len(per)),
                              axis=0), strict=True))
    par = "non-centred" if parameterization == "noncentred" else "centred"
    return {"label": f"carkinetics fit_bayes ({par}, sampler={res.summary['sampler']})",
            "ess_min": ess, "ess": per, "wall_s": wall,
            "sampling_s": tm["sampling_seconds"] + tm["init_seconds"],  # incl. mode search
            "init_s": tm["init_seconds"],
            "compile_s": tm["compile_seconds"] + tm["build_seconds"],
            "divergences": res.summary["divergences"], "median_t": post,
            "r_hat_max": res.summary["r_hat_max"]}


def bayes_section(args) -> list[dict]:
    """Run the baseline and carkinetics' Bayes fits side by side and print the table."""
    from carkinetics.fitting.bayes import default_priors, nutpie_available
    from carkinetics.fitting.population.spec import PopulationSpec

    data = load()
    spec = PopulationSpec()
    design = spec.design(data)
    priors = default_priors(design)
    model = baseline_model(data, priors)
    diff, ref = check_same_model(data, model, spec, design)
    print(f"same model check: |baseline pm.Censored log-lik - carkinetics loglik_obs| = "
          f"{diff:.2e} (log-lik {ref:.4f}, relative {diff / abs(ref):.1e}) over "
          f"{design.n_rows} rows")
    assert diff / abs(ref) < 1e-8, diff
    samplers = ["nutpie"] if nutpie_available() else []
    if args.with_pymc or not samplers:
        samplers.append("pymc")
    all_runs = []
    for seed in args.seeds:
        kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, seed=seed)
        runs = [run_baseline(data, priors, **kw)]
        runs += [run_bayes(data, spec, sampler=s, **kw) for s in samplers]
        if args.centred:
            runs.append(run_bayes(data, spec, sampler=samplers[0], parameterization="centred",
                                  **kw))
        base = runs[0]["ess_min"] / runs[0]["sampling_s"]
        print(f"\nseed {seed}: {args.chains} chains x ({args.tune} warm-up + {args.draws} "
              "draws); ESS = min bulk ESS over the 8 typical values; ESS/s over sampling time "
              "(warm-up + draws, compile excluded)")
        print(f"{'implementation':62s} {'minESS':>7s} {'sample s':>8s} {'ESS/s':>7s} "
              f"{'ratio':>6s} {'compile s':>9s} {'div':>4s} {'R-hat':>6s}")
        for r in runs:
            rate = r["ess_min"] / r["sampling_s"]
            r["ess_per_s"], r["ratio"], r["seed"] = rate, rate / base, seed
            print(f"{r['label']:62s} {r['ess_min']:7.0f} {r['sampling_s']:8.1f} {rate:7.2f} "
                  f"{rate / base:6.2f} {r['compile_s']:9.1f} {r['divergences']:4d} "
                  f"{r['r_hat_max']:6.3f}")
        print("posterior medians of the typical values (transform scale):")
        print(pd.DataFrame({r["label"][:40]: pd.Series(r["median_t"]).values for r in runs},
                           index=list(TYPICAL)).round(3).to_string())
        all_runs += runs
    if len(args.seeds) > 1:
        df = pd.DataFrame(all_runs)
        print("\nmedian over seeds:")
        print(df.groupby("label", sort=False)[["ess_min", "sampling_s", "ess_per_s", "ratio"]]
              .median().round(2).to_string())
    return all_runs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="focei,bayes",
                    help="comma-separated: focei, bayes (the baseline runs with bayes)")
    ap.add_argument("--repeat", type=int, default=3, help="FOCE-I: best of N")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--with-pymc", action="store_true",
                    help="also run fit_bayes with PyMC's own NUTS")
    ap.add_argument("--centred", action="store_true",
                    help="also run fit_bayes with parameterization='centred'")
    ap.add_argument("--json", type=Path, help="write the Bayes figures to this JSON file")
    args = ap.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",")]
    if "focei" in methods:
        r = run_focei(load(), args.repeat)
        print(f"FOCE-I: estimation {r['seconds']:.2f} s (best of {args.repeat}; "
              f"{r['n_evaluations']} gradient evaluations, OFV {r['ofv']:.3f}, converged "
              f"{r['converged']}); with covariance step and diagnostics {r['seconds_full']:.2f} s")
    if "bayes" in methods or "baseline" in methods:
        runs = bayes_section(args)
        if args.json:
            args.json.write_text(json.dumps(
                [{k: (v.to_dict() if isinstance(v, pd.Series) else v) for k, v in r.items()}
                 for r in runs], indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
