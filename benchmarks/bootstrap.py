"""Case bootstrap of a FOCE-I fit: wall time with 1 and with 2 workers (same replicates).

The data: one trial of the protocol's size simulated by
:func:`carkinetics.simulate.simulate_trial` (18 participants, dose levels 0.5/1/2/3 x10^6
cells/kg, the protocol's CK visits) from a population with between-participant variability
on cmax and alpha only; the model: FOCE-I (M3) on qPCR with random effects on cmax and
alpha and the dose power covariate (about 1-2 s per fit, so that 200 replicates take
minutes, not hours: with the default specification, a random effect on tmax, a refit takes
10-100 s, see benchmarks/README.md, simest_focei section).

:func:`carkinetics.fitting.bootstrap.bootstrap_focei` runs ``--n`` replicates (stratified
by dose, no BCa jackknife) once per worker count in ``--workers``, in this process, one
after the other; it checks that every run gives identical replicate estimates and prints
wall times, their ratio to the first, the bootstrap SE beside the covariance-step SE and
the percentile intervals.

Run: ``python benchmarks/bootstrap.py [--n 200] [--workers 1 2] [--seed 20261125]``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from carkinetics.fitting.bootstrap import bootstrap_focei
from carkinetics.fitting.population import PopulationSpec, fit_focei
from carkinetics.simulate import simulate_trial
from carkinetics.simulate.trial import CKPopulation

POPULATION = CKPopulation(omega={"foldx": 0.0, "tmax": 0.0, "cmax": 0.6, "alpha": 0.3,
                                 "fb": 0.0, "beta": 0.0}, omega_flow_scale=0.0)
SPEC = PopulationSpec(random_effects=("cmax", "alpha"), endpoint="car_qpcr")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--trial-seed", type=int, default=7)
    ap.add_argument("--scheduler", type=str, default=None)
    args = ap.parse_args(argv)
    data = simulate_trial(args.trial_seed, population=POPULATION, include_pd=False).data
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_focei(SPEC, data, diagnostics=False)
    t_fit = time.perf_counter() - t0
    print(f"data: {data['id'].nunique()} participants, {len(data)} rows (trial seed "
          f"{args.trial_seed}); original FOCE-I fit {t_fit:.2f} s, converged {fit.converged}")
    runs = []
    for w in args.workers:
        t0 = time.perf_counter()
        res = bootstrap_focei(SPEC, data, n=args.n, seed=args.seed, stratify="dose", fit=fit,
                              bca=False, workers=w, scheduler=args.scheduler)
        runs.append((w, time.perf_counter() - t0, res))
    base_w, base_t, base = runs[0]
    for w, _t, res in runs[1:]:
        same = base.to_frame().equals(res.to_frame())
        print(f"replicate estimates identical with {base_w} and {w} workers: {same}")
    print(f"{'workers':>8} {'wall s':>9} {'s/replicate':>12} {'ratio':>7}")
    for w, t, _ in runs:
        print(f"{w:>8} {t:>9.1f} {t / args.n:>12.2f} {base_t / t:>7.2f}")
    c = base.counts
    sec = base.replicates["seconds"]
    print(f"replicates: {c['ok']} ok, {c['unconverged']} unconverged, {c['failed']} failed "
          f"of {c['total']}; fit seconds per replicate median {sec.median():.2f} "
          f"(range {sec.min():.2f}-{sec.max():.2f})")
    for r in base.replicates[base.replicates["status"] != "ok"].itertuples():
        print(f"  replicate {r.replicate}: {r.status}: {r.reason[:120]}")
    iv = base.intervals
    out = pd.DataFrame({"parameter": iv["parameter"], "estimate": iv["estimate"],
                        "se_boot": iv["se"], "se_model": iv["se_model"],
                        "ratio": iv["se"] / iv["se_model"], "pct_2.5": iv["pct_lower"],
                        "pct_97.5": iv["pct_upper"], "n_used": iv["n_used"]})
    pd.set_option("display.width", 160)
    print(out.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
