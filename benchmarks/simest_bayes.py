"""Simulation-estimation study of the Bayesian population fit (coverage of 90 % intervals).

Run from the repository root::

    python benchmarks/simest_bayes.py [--trials 12] [--seed 20251125] [--draws 500]
                                      [--tune 500] [--chains 2] [--json out.json]

Each trial is ``carkinetics.simulate.simulate_trial`` (the protocol's design: 18
participants, four dose levels, qPCR + flow, per-sample LLOQ) with its seed spawned from
one root ``SeedSequence``; each is fitted by ``fit_bayes`` with the specification that
generated it (piecewise, random effects on all six kinetic parameters, dose power on cmax,
a random effect on the flow/qPCR scale, M3 censoring) and default priors. Reported: per
parameter the share of trials whose 90 % equal-tailed credible interval holds the truth
(coverage), the median relative error of the posterior median, the BLQ fraction of the late
samples (after Month 3), R-hat and divergences.

Truth: ``CKPopulation`` defaults (typical values at 1e6 cells/kg, random-effect SDs on the
transform scale, so ``omega(p)`` = SD^2, flow scale 0.004 cells/uL per copy/ug). The
simulator caps ``beta`` at ``alpha / 2`` (rarely active), which the fitted model does not
know.
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


def truth_table(pop) -> dict[str, float]:
    t = dict(pop.typical)
    t["dose_exp"] = pop.dose_exp
    t["log_scale_car_flow"] = math.log(pop.flow_per_copy)
    for k, v in pop.omega.items():
        t[f"omega({k})"] = v**2
    t["omega(log_scale_car_flow)"] = pop.omega_flow_scale**2
    t["sigma_log_car_qpcr"] = pop.sigma_qpcr
    t["sigma_log_car_flow"] = pop.sigma_flow
    return t


def main(argv=None) -> None:
    from carkinetics.exceptions import ConvergenceWarning
    from carkinetics.fitting.bayes import PriorConflictWarning, fit_bayes
    from carkinetics.fitting.population.spec import PopulationSpec
    from carkinetics.simulate.trial import CKPopulation, simulate_trial

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--seed", type=int, default=20251125)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    truth = truth_table(CKPopulation())
    spec = PopulationSpec(scale_random_effect=True)
    children = np.random.SeedSequence(args.seed).spawn(args.trials)
    rows, meta = [], []
    t_all = time.perf_counter()
    for i, child in enumerate(children):
        trial_seed, fit_seed = (int(x) for x in child.generate_state(2) % (2**31))
        data = simulate_trial(seed=trial_seed, include_pd=False).data
        late = data[data["time"] > 95]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", PriorConflictWarning)
            res = fit_bayes(spec, data, draws=args.draws, tune=args.tune, chains=args.chains,
                            seed=fit_seed)
        df = res.to_frame().set_index("parameter")
        for p, v in truth.items():
            r = df.loc[p]
            rows.append({"trial": i, "parameter": p, "truth": v, "estimate": r["estimate"],
                         "ci_lower": r["ci_lower"], "ci_upper": r["ci_upper"],
                         "covered": bool(r["ci_lower"] <= v <= r["ci_upper"])})
        s = res.summary
        meta.append({"trial": i, "seed": trial_seed, "late_blq": float(late["cens"].mean()),
                     "r_hat_max": s["r_hat_max"], "ess_bulk_min": s["ess_bulk_min"],
                     "divergences": s["divergences"], "seconds": time.perf_counter() - t0})
        print(f"trial {i + 1:2d}/{args.trials}: late BLQ {meta[-1]['late_blq']:.0%}, "
              f"R-hat max {s['r_hat_max']:.3f}, min ESS {s['ess_bulk_min']:.0f}, "
              f"divergences {s['divergences']}, {meta[-1]['seconds']:.0f} s", flush=True)
    tab = pd.DataFrame(rows)
    m = pd.DataFrame(meta)
    tab["rel_err"] = np.where(tab["parameter"].str.startswith("log_scale"),
                              tab["estimate"] - tab["truth"],
                              tab["estimate"] / tab["truth"] - 1.0)
    per = tab.groupby("parameter", sort=False).agg(
        coverage=("covered", "mean"), median_rel_err=("rel_err", "median"))
    print(f"\n{args.trials} trials, {args.chains} chains x ({args.tune} + {args.draws}), root "
          f"seed {args.seed}; total {time.perf_counter() - t_all:.0f} s")
    print(f"late (after Month 3) BLQ fraction: median {m['late_blq'].median():.0%} "
          f"(range {m['late_blq'].min():.0%}-{m['late_blq'].max():.0%})")
    print(f"R-hat max <= 1.01 in {int((m['r_hat_max'] <= 1.01).sum())}/{len(m)} fits, "
          f"<= 1.05 in {int((m['r_hat_max'] <= 1.05).sum())}; fits with divergences: "
          f"{int((m['divergences'] > 0).sum())}")
    print("coverage of the 90 % credible intervals (log_scale: error is a difference):")
    print(per.round(3).to_string())
    typ = [p for p in truth if not p.startswith(("omega", "sigma"))]
    ok = m.loc[m["r_hat_max"] <= 1.05, "trial"]
    for label, sub in (("all fits", tab), (f"fits with R-hat <= 1.05 ({len(ok)})",
                                           tab[tab["trial"].isin(ok)])):
        print(f"overall coverage, {label}: typical values "
              f"{sub[sub.parameter.isin(typ)].covered.mean():.1%}, all parameters "
              f"{sub.covered.mean():.1%} ({len(sub)} intervals)")
    print("coverage per parameter, fits with R-hat <= 1.05:")
    print(tab[tab["trial"].isin(ok)].groupby("parameter", sort=False)["covered"].mean()
          .round(3).to_string())
    if args.json:
        args.json.write_text(json.dumps({"per_parameter": per.reset_index().to_dict("records"),
                                         "fits": m.to_dict("records")}, indent=1))


if __name__ == "__main__":
    main()
