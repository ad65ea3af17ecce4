"""Benchmark: the full CK->PD system for 10,000 virtual participants over 2 years.

System ``full`` of :mod:`carkinetics.pd` (piecewise CAR-T -> B cells -> short- and
long-lived plasma cells -> IgG/IgA/IgM -> six autoantibodies -> C3/C4 -> SLEDAI-2K; 15
states), parameters drawn per participant (30 % log-normal spread on every CK and PD
parameter, logit-normal on fractions). Timed side by side in the same run:

* ``carkinetics`` :meth:`CKPDSystem.simulate`: exponential-midpoint steps shared by all
  participants (vectorised over the participant axis; 0.1 d to day 60, 0.5 d after);
* baseline: :func:`scipy.integrate.solve_ivp` (LSODA, rtol 1e-6, atol 1e-9), one
  participant at a time on the same right-hand side, split at the CAR-T kink ``tmax``.
  The loop runs on ``--baseline-n`` participants and its time is scaled to ``--n``
  (per-participant cost is constant: the loop has no shared work).

Before timing, the vectorised solution is checked against a tight solve_ivp reference
(rtol 1e-10) on ``--check-n`` participants: maximum |log(ours / reference)| over every
endpoint at the weekly output days, on values above 1e-3 of their baseline (deep B-cell
aplasia, far below any assay limit, is compared in absolute terms relative to baseline).

Run: python benchmarks/pd.py [--n 10000] [--baseline-n 100] [--check-n 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from carkinetics.pd import get_pd_model, solve_ivp_reference


def draw(system, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    ck = {"foldx": 1500.0, "tmax": 10.0, "cmax": 15000.0, "alpha": 0.12, "fb": 0.03,
          "beta": 0.006}
    out = {}
    for s in system.params:
        typ = ck.get(s.name, s.typical)
        x = s.to_internal(typ) + rng.normal(0.0, 0.3, n)
        v = s.from_internal(x)
        out[s.name] = np.clip(v, s.lower * 1.0001 + 1e-12, s.upper * 0.9999)
    out["beta"] = np.minimum(out["beta"], 0.5 * out["alpha"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--baseline-n", type=int, default=100)
    ap.add_argument("--check-n", type=int, default=20)
    ap.add_argument("--days", type=float, default=730.0)
    a = ap.parse_args()
    system = get_pd_model("full")
    rng = np.random.default_rng(20261125)
    p = draw(system, a.n, rng)
    weekly = np.arange(0.0, a.days + 1e-9, 7.0)

    # 1. agreement with a tight solve_ivp reference
    sub = {k: v[: a.check_n] for k, v in p.items()}
    ours = system.simulate(sub, a.days, times=weekly, record_every=0.0)
    ref = solve_ivp_reference(system, sub, weekly, rtol=1e-10, atol=1e-12)
    worst = {}
    for i, s in enumerate(system.states):
        o = ours[s][:, np.searchsorted(ours.times, weekly)]
        r = ref[i]
        base = np.abs(r[:, :1])
        ok = r > 1e-3 * base
        rel = np.abs(np.log(o[ok] / r[ok])).max()
        absd = (np.abs(o - r)[~ok] / np.broadcast_to(base, r.shape)[~ok]).max(initial=0.0)
        worst[s] = (rel, absd)
    print(f"agreement with solve_ivp (rtol 1e-10) on {a.check_n} participants, weekly days:")
    for s, (rel, absd) in worst.items():
        print(f"  {s:<12} max |log ratio| {rel:.2e}   (values < 1e-3 baseline: max |diff| / "
              f"baseline {absd:.1e})")
    worst_rel = max(v[0] for v in worst.values())
    assert worst_rel < 2e-2, worst_rel

    # 2. timing
    t0 = time.perf_counter()
    sim = system.simulate(p, a.days, times=weekly, record_every=0.0)
    t_vec = time.perf_counter() - t0
    assert np.all(np.isfinite(sim["igg"]))
    nb = min(a.baseline_n, a.n)
    subb = {k: v[:nb] for k, v in p.items()}
    t0 = time.perf_counter()
    solve_ivp_reference(system, subb, weekly, rtol=1e-6, atol=1e-9)
    t_loop = (time.perf_counter() - t0) / nb * a.n
    print(f"\n{a.n} participants x {a.days:g} days, {len(system.states)} states:")
    print(f"  solve_ivp loop (baseline, {nb} run, scaled) {t_loop:9.2f} s   "
          f"{t_loop / a.n * 1e3:8.2f} ms/participant   1.0x")
    print(f"  carkinetics simulate (vectorised)          {t_vec:9.2f} s   "
          f"{t_vec / a.n * 1e3:8.3f} ms/participant   {t_loop / t_vec:.1f}x")


if __name__ == "__main__":
    main()
