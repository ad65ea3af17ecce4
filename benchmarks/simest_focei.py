"""Simulation-estimation study of FOCE-I on trials of the protocol's size.

Each trial is :func:`carkinetics.simulate.simulate_trial` with the protocol design (18
participants, dose levels 0.5/1/2/3 x10^6 cells/kg, the protocol's CK visits, qPCR and flow
with per-sample LLOQs) and the default population truth (``CKPopulation``: piecewise model,
log-normal/logit-normal between-participant variability, a power dose effect on cmax,
log-additive residuals), except that tmax and the flow/qPCR scale are the same for
everyone (``omega`` of tmax and ``omega_flow_scale`` set to 0). Why: with a random effect
on tmax, participants' EBEs sit on the kink of the piecewise curve at an observed peak and
a FOCE-I fit then takes 1-7 minutes instead of seconds (see benchmarks/README.md), too
long for 100 trials here; the specification supports both (``random_effects`` with
``tmax``, ``scale_random_effect=True``).
Seeds of the trials are spawned from one root ``numpy.random.SeedSequence``.

Every trial is fitted by FOCE-I (M3) with the matching specification: random effects on
foldx, cmax, alpha, fb and beta, dose power covariate on cmax, one flow scale. Reported:
relative bias (mean of (estimate - truth) / truth, %), relative RMSE and coverage of the
90% confidence intervals (Wald on the estimation scale, mapped back) for every parameter,
the late-sample BLQ fraction, failures and timings.

Run: ``python benchmarks/simest_focei.py [--trials 100] [--seed 20261125] [--out CSV]``.
Acceptance (issue 6): typical values |bias| < 10% and 90% CI coverage within 82-96%.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from carkinetics.fitting.population import PopulationSpec, fit_focei
from carkinetics.simulate import simulate_trial
from carkinetics.simulate.trial import CKPopulation

#: samples after this day count as "late" for the BLQ fraction
LATE_DAY = 180.0
TYPICAL = ("foldx", "tmax", "cmax", "alpha", "fb", "beta", "dose_exp", "log_scale_car_flow")


#: the study's truth: the default population without between-participant variability of
#: tmax and of the flow scale (see the module docstring)
POPULATION = CKPopulation(omega={"foldx": 0.6, "tmax": 0.0, "cmax": 0.6, "alpha": 0.3,
                                 "fb": 0.5, "beta": 0.4}, omega_flow_scale=0.0)
RANDOM_EFFECTS = ("foldx", "cmax", "alpha", "fb", "beta")
#: ``--tmax-variability``: the default population (tmax varies too), flow scale fixed
POPULATION_TMAX = CKPopulation(omega_flow_scale=0.0)


def truth_table(pop: CKPopulation | None = None) -> dict[str, float]:
    """True values of the fitted parameters (omegas as variances, sigmas as SDs)."""
    pop = pop or POPULATION
    out = dict(pop.typical)
    out["dose_exp"] = pop.dose_exp
    out["log_scale_car_flow"] = math.log(pop.flow_per_copy)
    for k, v in pop.omega.items():
        if v > 0:
            out[f"omega({k})"] = v**2
    if pop.omega_flow_scale > 0:
        out["omega(log_scale_car_flow)"] = pop.omega_flow_scale**2
    out["sigma_log_car_qpcr"] = pop.sigma_qpcr
    out["sigma_log_car_flow"] = pop.sigma_flow
    return out


def spec() -> PopulationSpec:
    """The estimation model matching the simulation truth."""
    if POPULATION is POPULATION_TMAX:
        return PopulationSpec()
    return PopulationSpec(random_effects=RANDOM_EFFECTS)


def run_trial(seed: int, *, ci_level: float = 0.9) -> pd.DataFrame:
    """Simulate one trial and fit it; one row per parameter (or one failure row)."""
    data = simulate_trial(int(seed), population=POPULATION, include_pd=False).data
    late = data[(data["time"] > LATE_DAY)]
    blq_late = float((late["cens"] == 1).mean()) if len(late) else math.nan
    blq_all = float((data.loc[data["time"] >= 0, "cens"] == 1).mean())
    truth = truth_table()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as wl:
        warnings.simplefilter("always")
        try:
            res = fit_focei(spec(), data, diagnostics=False, ci_level=ci_level)
        except Exception as exc:  # a failed fit is counted, not hidden
            return pd.DataFrame([{"seed": seed, "parameter": None, "error": repr(exc),
                                  "blq_late": blq_late, "blq_all": blq_all}])
    sec = time.perf_counter() - t0
    fr = res.to_frame()
    fr["truth"] = fr["parameter"].map(truth)
    fr["covered"] = (fr["ci_lower"] <= fr["truth"]) & (fr["truth"] <= fr["ci_upper"])
    fr["seed"] = seed
    fr["converged"] = res.converged
    fr["se_missing"] = bool(fr["se"].isna().all())
    fr["seconds"] = sec
    fr["estimation_s"] = res.timings.get("estimation", math.nan)
    fr["blq_late"] = blq_late
    fr["blq_all"] = blq_all
    fr["n_warnings"] = len(wl)
    fr["error"] = None
    return fr


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE (relative to truth for non-zero truths) and CI coverage per parameter."""
    ok = df[df["parameter"].notna()]
    rows = []
    for p, g in ok.groupby("parameter", sort=False):
        t = float(g["truth"].iloc[0])
        if p == "log_scale_car_flow":  # on the log scale: relative bias of exp(.)
            rel = np.exp(g["estimate"] - t) - 1.0
        else:
            rel = (g["estimate"] - t) / abs(t)
        cov = g.loc[g["se"].notna(), "covered"]
        rows.append({"parameter": p, "truth": t, "mean_estimate": float(g["estimate"].mean()),
                     "bias_pct": 100 * float(rel.mean()),
                     "median_bias_pct": 100 * float(rel.median()),
                     "rmse_pct": 100 * float(np.sqrt(np.mean(rel**2))),
                     "coverage_90": float(cov.mean()) if len(cov) else math.nan,
                     "n": int(len(g)), "n_with_ci": int(len(cov))})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--out", type=Path, default=None,
                    help="CSV of per-trial estimates (appended trial by trial).")
    ap.add_argument("--shard", type=str, default="0/1",
                    help="i/n: run every n-th trial starting at i (parallel shards).")
    ap.add_argument("--summarise", type=Path, nargs="*", default=None,
                    help="Only summarise these CSVs (from --out) instead of running.")
    ap.add_argument("--tmax-variability", action="store_true",
                    help="Simulate and fit with a random effect on tmax (slow).")
    args = ap.parse_args(argv)
    if args.tmax_variability:
        global POPULATION
        POPULATION = POPULATION_TMAX
    children = np.random.SeedSequence(args.seed).spawn(args.trials)
    seeds = [int(c.generate_state(1)[0]) for c in children]
    t0 = time.perf_counter()
    if args.summarise:
        df = pd.concat([pd.read_csv(p) for p in args.summarise], ignore_index=True)
    else:
        from tqdm import tqdm

        i, n = (int(v) for v in args.shard.split("/"))
        parts = []
        for s in tqdm(seeds[i::n], desc="sim-est", file=sys.stderr):
            part = run_trial(s)
            parts.append(part)
            if args.out:
                part.to_csv(args.out, mode="a", header=not args.out.exists(), index=False)
        df = pd.concat(parts, ignore_index=True)
    wall = time.perf_counter() - t0
    failed = df[df["parameter"].isna()]
    ok = df[df["parameter"].notna()]
    per_trial = ok.groupby("seed").first()
    summ = summarise(df)
    pd.set_option("display.width", 160)
    print(f"trials: {df['seed'].nunique()} of {args.trials} (root seed {args.seed}); fitted "
          f"{per_trial.shape[0]}, "
          f"failed {failed['seed'].nunique()}; converged {int(per_trial['converged'].sum())}; "
          f"SEs missing (non-PD Hessian) {int(per_trial['se_missing'].sum())}")
    blq = df.groupby("seed")["blq_late"].first()
    print(f"late-sample (day > {LATE_DAY:g}) BLQ fraction: median {blq.median():.0%}, range "
          f"{blq.min():.0%}-{blq.max():.0%}; all samples: median "
          f"{df.groupby('seed')['blq_all'].first().median():.0%}")
    print(f"seconds per trial (fit incl. covariance step): median "
          f"{per_trial['seconds'].median():.2f}, estimation alone "
          f"{per_trial['estimation_s'].median():.2f}; wall {wall:.0f} s")
    print(summ.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typ = summ[summ["parameter"].isin(TYPICAL)]
    ok_bias = bool((typ["bias_pct"].abs() < 10).all())
    ok_cov = bool(typ["coverage_90"].between(0.82, 0.96).all())
    print(f"acceptance: typical values |bias| < 10%: {ok_bias}; 90% CI coverage in "
          f"[82%, 96%]: {ok_cov}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
