"""Benchmark: evaluate `piecewise` for 10^6 (participant, time) pairs.

Prints ns per evaluation for carkinetics' `predict` (validated parameters, overflow-safe
closed form) and `log_predict`, side by side with the bare numpy expression of the same
model in the same run, and their ratios (goal: predict within 1.5x of the bare expression).

Run: python benchmarks/predict.py [--participants 100000] [--times 10] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from carkinetics.models import get_model


def bare(t, foldx, tmax, cmax, alpha, fb, beta):
    """The expression a user would type (not overflow-safe, no validation)."""
    rho = np.log(foldx) / tmax
    r0 = cmax / foldx
    dt = t - tmax
    return np.where(t < tmax, r0 * np.exp(rho * t),
                    cmax * ((1 - fb) * np.exp(-alpha * dt) + fb * np.exp(-beta * dt)))


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--participants", type=int, default=100_000)
    ap.add_argument("--times", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(1)
    m = get_model("piecewise")
    n, k = a.participants, a.times
    typ = m.typical()
    params = {name: (typ[name] * np.exp(rng.normal(0, 0.3, n)))[:, None] for name in typ}
    params["fb"] = np.clip(params["fb"], 1e-6, 0.5)
    t = np.linspace(0.5, 730.0, k)
    pairs = n * k

    # the same numbers from each (the guard: a benchmark of a wrong result is worthless)
    ref = bare(t, **params)
    np.testing.assert_allclose(m.predict(t, params), ref, rtol=1e-10)
    with np.errstate(under="ignore"):
        np.testing.assert_allclose(np.exp(m.log_predict(t, m.check_params(params))), ref,
                                   rtol=1e-10)

    with np.errstate(over="ignore", under="ignore"):
        t_bare = best_of(lambda: bare(t, **params), a.repeat)
    t_pred = best_of(lambda: m.predict(t, params), a.repeat)
    checked = m.check_params(params)
    with np.errstate(under="ignore"):
        t_log = best_of(lambda: m.log_predict(t, checked), a.repeat)

    print(f"piecewise predict, {n} participants x {k} times = {pairs:.0e} pairs "
          f"(best of {a.repeat})")
    print(f"{'implementation':<40}{'ns/eval':>10}{'ratio':>8}")
    for label, sec in (("bare numpy expression (baseline)", t_bare),
                       ("carkinetics predict (validated)", t_pred),
                       ("carkinetics log_predict (log scale)", t_log)):
        print(f"{label:<40}{sec / pairs * 1e9:>10.1f}{sec / t_bare:>8.2f}")


if __name__ == "__main__":
    main()
