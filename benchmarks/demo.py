"""`carkinetics demo` wall time per step, with 2 workers against 1 worker (the baseline).

Usage: python benchmarks/demo.py [--out DIR]

Runs the whole demo (simulate -> ... -> report) twice in this process, first with
``workers=1`` (baseline), then with ``workers=2``, and prints each step's wall time side
by side, the CPU time used (this process and its worker processes) and the load average
of the machine before and after (the machine is shared: a load above the number of cores
stretches wall times). Before timing it checks that both runs wrote the same tables.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd


def cpu_seconds() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def run(out: Path, workers: int) -> dict:
    from carkinetics.demo import run_demo

    load0, cpu0, t0 = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
    written = run_demo(out, workers=workers, progress=False)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    steps = json.loads(Path(written["timings"]).read_text())["seconds"]
    return {"steps": steps, "wall": wall, "cpu": cpu, "load": (load0, os.getloadavg()[0]),
            "report_mb": Path(written["report"]).stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="ck-demo-bench-"))
    base = run(root / "w1", 1)
    two = run(root / "w2", 2)
    for f in ("nca.csv", "population/population.csv", "pd/pd_parameters.csv"):
        a, b = pd.read_csv(root / "w1" / f), pd.read_csv(root / "w2" / f)
        pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-9)
    e1 = json.loads((root / "w1" / "escalation.json").read_text())["decision"]
    e2 = json.loads((root / "w2" / "escalation.json").read_text())["decision"]
    assert e1 == e2
    print(f"{'step':<26} {'workers=1 (s)':>14} {'workers=2 (s)':>14} {'ratio':>7}")
    for k in base["steps"]:
        a, b = base["steps"][k], two["steps"][k]
        print(f"{k:<26} {a:>14.1f} {b:>14.1f} {b / a if a else float('nan'):>7.2f}")
    print(f"{'wall (whole run)':<26} {base['wall']:>14.1f} {two['wall']:>14.1f} "
          f"{two['wall'] / base['wall']:>7.2f}")
    print(f"{'CPU s (incl. workers)':<26} {base['cpu']:>14.1f} {two['cpu']:>14.1f}")
    print(f"load average 1 min before/after: workers=1 {base['load'][0]:.1f}/"
          f"{base['load'][1]:.1f}, workers=2 {two['load'][0]:.1f}/{two['load'][1]:.1f} "
          f"on {os.cpu_count()} CPUs")
    print(f"report.html: {two['report_mb']:.2f} MB")


if __name__ == "__main__":
    main()
