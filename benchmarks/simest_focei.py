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

The study itself is :func:`carkinetics.fitting.simest.simulation_estimation` (one trial =
one unit of the package's executor, ``--workers``/``--scheduler``); this script only sets
the truth and prints the figures.

Run: ``python benchmarks/simest_focei.py [--trials 100] [--seed 20261125] [--workers 2]
[--out CSV]``.
Acceptance (issue 6): typical values |bias| < 10% and 90% CI coverage within 82-96%.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

from carkinetics.fitting.population import PopulationSpec
from carkinetics.fitting.simest import (
    LATE_DAY,
    population_truth,
    simulation_estimation,
    summarise_trials,
)
from carkinetics.simulate.trial import CKPopulation

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
    return population_truth(pop or POPULATION)


def spec() -> PopulationSpec:
    """The estimation model matching the simulation truth."""
    if POPULATION is POPULATION_TMAX:
        return PopulationSpec()
    return PopulationSpec(random_effects=RANDOM_EFFECTS)


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE (relative to truth) and 90% CI coverage per parameter (printed names)."""
    out = summarise_trials(df)
    return out.rename(columns={"rel_bias_pct": "bias_pct",
                               "median_rel_bias_pct": "median_bias_pct",
                               "rel_rmse_pct": "rmse_pct", "coverage": "coverage_90"})[
        ["parameter", "truth", "mean_estimate", "bias_pct", "median_bias_pct", "rmse_pct",
         "coverage_90", "n", "n_with_ci"]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scheduler", type=str, default=None,
                    help="Executor backend of carkinetics.parallel.map_units.")
    ap.add_argument("--out", type=Path, default=None,
                    help="CSV of per-trial estimates (written at the end).")
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
    t0 = time.perf_counter()
    if args.summarise:
        df = pd.concat([pd.read_csv(p) for p in args.summarise], ignore_index=True)
    else:
        i, n = (int(v) for v in args.shard.split("/"))
        res = simulation_estimation(spec(), population=POPULATION, truth=truth_table(),
                                    n_trials=args.trials, seed=args.seed,
                                    trials=range(args.trials)[i::n], workers=args.workers,
                                    scheduler=args.scheduler)
        df = res.to_frame()
        if args.out:
            from carkinetics._atomic import write_table

            write_table(df, args.out)
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
    for r in failed.itertuples():
        print(f"  failed trial {r.trial} (seed {r.seed}): {r.error}")
    blq = df.groupby("seed")["blq_late"].first()
    print(f"late-sample (day > {LATE_DAY:g}) BLQ fraction: median {blq.median():.0%}, range "
          f"{blq.min():.0%}-{blq.max():.0%}; all samples: median "
          f"{df.groupby('seed')['blq_all'].first().median():.0%}")
    print(f"seconds per trial (fit incl. covariance step): median "
          f"{per_trial['seconds'].median():.2f}, estimation alone "
          f"{per_trial['estimation_s'].median():.2f}; wall {wall:.0f} s "
          f"({args.workers} worker(s))")
    print(summ.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typ = summ[summ["parameter"].isin(TYPICAL)]
    ok_bias = bool((typ["bias_pct"].abs() < 10).all())
    ok_cov = bool(typ["coverage_90"].between(0.82, 0.96).all())
    print(f"acceptance: typical values |bias| < 10%: {ok_bias}; 90% CI coverage in "
          f"[82%, 96%]: {ok_cov}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
