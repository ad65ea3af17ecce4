"""Benchmark: operating characteristics of 10,000 simulated BOIN trials.

Design: 5 doses, target 0.3, 20 cohorts of 3, n_earlystop 18 (true DLT probabilities
0.05, 0.10, 0.20, 0.30, 0.45 by default). Times, in the same process:

* drawing the virtual participants (one spawned random stream per trial, SeedSequence.spawn),
* the vectorised engine (``BOIN.simulate_pool``: numpy over trials, a loop over the 20
  cohorts only, isotonic MTD selection vectorised) plus the OC summary,
* the baseline: a straightforward per-trial Python loop (``BOIN.simulate_loop``: the scalar
  trial flow and a classic PAVA, the code ``decide`` uses) on the SAME participants.

Before timing, both runs must agree trial by trial (selected dose, counts, cohorts, stop
reason), so the timing is of a correct result. Goal (issue 9): under 0.1 s for the OC.

Run: python benchmarks/escalation.py [--trials 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from carkinetics.escalation.base import draw_pool
from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.oc import summarize


def best(fn, repeat: int) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls and the last result."""
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--true-tox", default="0.05,0.10,0.20,0.30,0.45")
    a = ap.parse_args()
    tox = [float(v) for v in a.true_tox.split(",")]
    design = BOIN(len(tox), 0.3, cohort_size=3, n_cohorts=20, n_earlystop=18)

    t_draw, pool = best(lambda: draw_pool(tox, a.trials, design.n_slots, a.seed), 1)

    # correctness first: vectorised == per-trial loop, trial by trial
    vec = design.simulate_pool(pool)
    loop_t = time.perf_counter()
    ref = design.simulate_loop(pool)
    t_loop = time.perf_counter() - loop_t
    for k in vec:
        if not np.array_equal(vec[k], ref[k]):
            raise SystemExit(f"vectorised and per-trial results differ in {k!r}")
    oc_vec = summarize(design, vec, tox).to_dict()
    oc_ref = summarize(design, ref, tox).to_dict()
    assert oc_vec == oc_ref

    t_vec, res = best(lambda: summarize(design, design.simulate_pool(pool), tox), a.repeat)
    oc = res.to_dict()
    print(f"BOIN OC, {a.trials} trials, {len(tox)} doses, 20 cohorts of 3, n_earlystop 18")
    print(f"  true DLT probabilities     {tox}")
    print(f"  selection %                {[round(v, 1) for v in oc['selection_pct']]}"
          f"  (no MTD {oc['stop_pct']:.2f} %)")
    print(f"  mean patients per dose     {[round(v, 2) for v in oc['mean_patients']]}")
    reasons = {k: round(v, 2) for k, v in oc["stop_reasons_pct"].items()}
    print(f"  stop reasons %             {reasons}")
    print("  results identical trial by trial: vectorised == per-trial loop")
    print(f"  draw participants (spawned stream per trial)   {t_draw:8.3f} s")
    print(f"  vectorised engine + OC (best of {a.repeat})            {t_vec:8.4f} s")
    print(f"  per-trial Python loop (1 run)                   {t_loop:8.3f} s")
    print(f"  speed-up engine vs loop                         {t_loop / t_vec:8.1f} x")
    print(f"  goal < 0.1 s for the OC: {'met' if t_vec < 0.1 else 'NOT met'} "
          f"(engine); with drawing {t_draw + t_vec:.3f} s")


if __name__ == "__main__":
    main()
