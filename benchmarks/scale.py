"""Scale: batch jobs on 1 and 2 local worker processes and on a 2-worker dask LocalCluster.

Three jobs, each run through :func:`carkinetics.parallel.map_units` on every backend:

* **2,000 individual fits** (``fit_individuals``, piecewise model, M3, default 8-start
  design, blocks of 32 participants) of participants simulated by
  ``carkinetics.simulate.simulate_trial`` (kinetic rows only);
* **20,000 BOIN trials** (``simulate_oc``, 5 doses, 20 cohorts of 3, chunks of 2,000
  trials);
* **memory**: 10^4 and 10^5 small units streamed through ``iter_units`` (2 local workers)
  into a consumer that keeps only running sums, against ``map_units`` (which returns the
  list): peak of Python allocations in the calling process (tracemalloc).

Backends: ``processes`` with 1 worker (the baseline of the ratios) and with 2 workers, and a
LocalCluster of 2 processes x 1 thread (``tcp://`` address); every worker runs native thread
pools (BLAS, OpenMP) single-threaded, so the ratios measure the executor's scaling. The local pool
and the cluster are started and warmed (packages imported) before timing; their start-up
times are printed separately. Results are checked to be identical (exact frame equality for
the fits, equal OC dictionaries for the trials) before any figure is printed.

Run: ``python benchmarks/scale.py [--fits 2000] [--trials 20000]``. The machine's load
average (``os.getloadavg``) is printed with the figures: timings on a shared machine are
only comparable within one run.
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import pandas as pd

from carkinetics.escalation.boin import BOIN
from carkinetics.escalation.oc import simulate_oc
from carkinetics.fitting import fit_individuals
from carkinetics.parallel import _WORKER_ENV, iter_units, map_units
from carkinetics.simulate import TrialDesign, simulate_trial

TOX = [0.05, 0.10, 0.20, 0.30, 0.45]


def small_unit(unit: tuple[int, int]) -> tuple[float, float]:
    """A small seeded computation (the memory job's unit)."""
    seed, i = unit
    x = np.random.default_rng([seed, i]).standard_normal(20)
    return float(x.mean()), float(x.std())


def _warm(_: int) -> int:
    import carkinetics.escalation.oc  # noqa: F401
    import carkinetics.fitting  # noqa: F401  (import what the jobs import)

    return os.getpid()


def _load() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def _cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by this process and the worker ``pids``."""
    import psutil

    own = time.process_time()
    return own + sum(sum(psutil.Process(p).cpu_times()[:2]) for p in pids)


def timed(job, pids: list[int]):
    """Wall-clock and CPU seconds (this process + workers) of ``job()``, and its result."""
    c0, t0 = _cpu(pids), time.perf_counter()
    res = job()
    return time.perf_counter() - t0, _cpu(pids) - c0, res


def fit_job(data: pd.DataFrame, **kw):
    return fit_individuals(data, progress=False, **kw)


def oc_job(n_trials: int, **kw):
    design = BOIN(len(TOX), 0.3, cohort_size=3, n_cohorts=20, n_earlystop=18)
    return simulate_oc(design, TOX, n_trials=n_trials, seed=2026, **kw)


def memory_job(n: int, stream: bool, scheduler: str, workers: int) -> tuple[float, float]:
    units = ((7, i) for i in range(n))
    tracemalloc.start()
    t0 = time.perf_counter()
    if stream:
        total, count = 0.0, 0
        for _i, (m, _s) in iter_units(small_unit, units, scheduler=scheduler, workers=workers,
                                      chunksize=1000, progress=False):
            total += m
            count += 1
        assert count == n
    else:
        out = map_units(small_unit, list(units), scheduler=scheduler, workers=workers,
                        chunksize=1000, progress=False)
        assert len(out) == n
    sec = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return sec, peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fits", type=int, default=2000)
    ap.add_argument("--trials", type=int, default=20_000)
    a = ap.parse_args()
    import dask
    import distributed

    from carkinetics.parallel import _quiet

    print(f"scale benchmark ({os.cpu_count()} CPUs; {_load()} at start)")
    print(f"local and LocalCluster workers run native libraries single-threaded "
          f"({', '.join(sorted(_WORKER_ENV))} = 1)")
    t0 = time.perf_counter()
    per = a.fits // 4
    # infusions 0.2 days apart within a cohort and a late data cut-off: every participant
    # enrolled and followed for the protocol's schedule
    design = TrialDesign(cohort_sizes=(per, per, per, a.fits - 3 * per),
                         within_cohort_gap_days=0.2, data_cutoff_day=1500.0)
    data = simulate_trial(seed=2026, design=design, include_pd=False).data
    print(f"simulated {data['id'].nunique()} participants, {len(data)} rows in "
          f"{time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    pids = map_units(_warm, range(2), scheduler="processes", workers=2, chunksize=1,
                     progress=False)
    print(f"local pool of 2 processes started and warmed in {time.perf_counter() - t0:.1f} s "
          f"(pids {sorted(set(pids))})")
    t0 = time.perf_counter()
    with _quiet(), dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                           silence_logs=50)
    address = cluster.scheduler_address
    map_units(_warm, range(4), scheduler=address, chunksize=1, progress=False)
    with distributed.Client(address, set_as_default=False) as c:
        dask_pids = list(c.run(os.getpid).values())
    print(f"LocalCluster of 2 processes started and warmed in "
          f"{time.perf_counter() - t0:.1f} s (worker pids {sorted(dask_pids)})")
    from carkinetics import parallel

    local_pids = [w.proc.pid for w in parallel._IDLE]
    pids = {"1 local process": local_pids, "2 local processes": local_pids,
            "LocalCluster, 2 workers": dask_pids}
    backends = {"1 local process": {"scheduler": "processes", "workers": 1},
                "2 local processes": {"scheduler": "processes", "workers": 2},
                "LocalCluster, 2 workers": {"scheduler": address}}
    try:
        rows = []
        fits = {}
        for name, kw in backends.items():
            sec, cpu, res = timed(lambda kw=kw: fit_job(data, **kw), pids[name])
            fits[name] = res
            rows.append(("fits", name, sec, cpu))
            print(f"  fits   {name:<26} {sec:8.1f} s, CPU {cpu:8.1f} s   ({_load()})")
        base = fits["1 local process"]
        for res in fits.values():
            pd.testing.assert_frame_equal(res.to_frame(), base.to_frame(), check_exact=True)
            pd.testing.assert_frame_equal(res.predictions(), base.predictions(),
                                          check_exact=True)
        ocs = {}
        for name, kw in backends.items():
            sec, cpu, res = timed(lambda kw=kw: oc_job(a.trials, **kw), pids[name])
            ocs[name] = res.to_dict()
            rows.append(("trials", name, sec, cpu))
            print(f"  trials {name:<26} {sec:8.2f} s, CPU {cpu:8.2f} s   ({_load()})")
        assert all(v == ocs["1 local process"] for v in ocs.values())
    finally:
        with _quiet():
            cluster.close()

    print()
    print(f"results identical on every backend: {a.fits} fits (parameter and prediction "
          f"tables, exact), {a.trials} BOIN trials (OC dictionaries equal)")
    print("wall = elapsed seconds; CPU = CPU seconds of this process and the workers (what "
          "the job cost, whatever the load); CPU/wall = cores the job actually got")
    print(f"{'job':<8}{'backend':<26}{'wall s':>9}{'speed-up':>10}{'CPU s':>9}"
          f"{'CPU/wall':>10}")
    for job in ("fits", "trials"):
        one = next(r[2] for r in rows if r[0] == job)
        for j, name, sec, cpu in rows:
            if j == job:
                print(f"{job:<8}{name:<26}{sec:9.2f}{one / sec:10.2f}{cpu:9.2f}"
                      f"{cpu / sec:10.2f}")

    print()
    print("memory (peak Python allocations in the calling process, tracemalloc; 2 local "
          "workers, chunks of 1000):")
    for n in (10_000, 100_000):
        s_sec, s_mb = memory_job(n, True, "processes", 2)
        l_sec, l_mb = memory_job(n, False, "processes", 2)
        print(f"  {n:>7} units: iter_units + running sums {s_mb:7.2f} MiB ({s_sec:.1f} s); "
              f"map_units list {l_mb:7.2f} MiB ({l_sec:.1f} s)")
    print(f"({_load()} at the end)")


if __name__ == "__main__":
    main()
