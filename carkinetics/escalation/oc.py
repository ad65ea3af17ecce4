"""Operating characteristics: simulated (vectorised, common random numbers) and exact."""

from __future__ import annotations

from typing import Any

import numpy as np

from carkinetics.escalation.base import (
    Design,
    OCResult,
    ParticipantPool,
    check_probabilities,
    draw_pool,
)
from carkinetics.exceptions import ModelSpecError

__all__ = ["simulate_oc", "summarize", "summarize_paths", "run_pool"]

#: Stop reasons that end a trial without an MTD.
NO_MTD = ("lowest_dose_eliminated", "extrasafe", "no_mtd")


def run_pool(design: Design, pool: ParticipantPool) -> dict:
    """Per-trial results of ``design`` on ``pool`` (vectorised when the design has it)."""
    fn = getattr(design, "simulate_pool", None)
    try:
        return fn(pool)
    except NotImplementedError:
        return design.simulate_loop(pool)


def _chunk(args: tuple) -> dict:
    design, p, seed, start, stop = args
    pool = draw_pool(p, stop - start, design.n_slots, seed, first_trial=start)
    return run_pool(design, pool)


def simulate_oc(design: Design, true_tox: Any = None, *, n_trials: int | None = None,
                seed: int | None = None, pool: ParticipantPool | None = None, workers: int = 1,
                chunk_trials: int = 2000, overdose_fraction: float = 0.6,
                dlt_window_days: float = 28.0, progress: bool = False,
                scheduler: Any = None, store: Any = None, resume: bool = False) -> OCResult:
    """Simulated operating characteristics of ``design``.

    Parameters
    ----------
    design : Design
    true_tox : sequence of float, optional
        True DLT probability per dose (participants drawn per trial from
        ``trial_seed(seed, i)``). With ``pool`` it only defines the overdoses.
    n_trials : int
        Number of trials (with ``true_tox``).
    seed : int
        Root seed (with ``true_tox``).
    pool : ParticipantPool, optional
        Pre-drawn virtual participants (common random numbers across designs).
    workers : int, default 1
        Parallel workers (:func:`carkinetics.parallel.map_units`); results do not depend on
        it.
    chunk_trials : int, default 2000
        Trials per unit of work; results do not depend on it.
    overdose_fraction : float, default 0.6
        A trial "overdoses" when more than this fraction of its participants are treated at
        doses whose true DLT probability exceeds the target.
    dlt_window_days : float, default 28
        DLT window: duration = cohorts treated x window (cohorts enrolled sequentially).
    progress : bool, default False
    scheduler : str or distributed.Client, optional
        Backend of :func:`~carkinetics.parallel.map_units` (``"processes"``,
        ``"in-process"``, ``"local-dask"``, ``"tcp://host:port"``); results do not depend on
        it.
    store : path-like, optional
        Resume store directory: each finished chunk of trials is written there at once.
    resume : bool, default False
        Reuse the chunks already in ``store`` (same design, probabilities, seed and chunks)
        and simulate only the others.

    Returns
    -------
    OCResult
    """
    if getattr(design, "calendar_time", False):
        raise ModelSpecError(f"design {design.name!r} needs staggered accrual in calendar "
                             "time: use its own simulator (carkinetics.escalation.tite."
                             "simulate_tite_oc).")
    if true_tox is None and pool is None:
        raise ModelSpecError("give true_tox (per-dose DLT probabilities) or pool (pre-drawn "
                             "participants; true_tox then only labels overdosing).")
    if pool is not None:
        res = run_pool(design, pool)
        return summarize(design, res, true_tox, overdose_fraction=overdose_fraction,
                         dlt_window_days=dlt_window_days)
    p = check_probabilities(true_tox)
    if p.size != design.n_doses:
        raise ModelSpecError(f"true_tox has {p.size} values; the design has {design.n_doses} "
                             "doses.")
    if n_trials is None or int(n_trials) < 1:
        raise ModelSpecError(f"n_trials={n_trials!r}: expected a positive integer.")
    if seed is None:
        raise ModelSpecError("seed: a root seed is required for reproducible simulation.")
    n_trials = int(n_trials)
    starts = list(range(0, n_trials, int(chunk_trials)))
    units = [(design, p, int(seed), s, min(s + int(chunk_trials), n_trials)) for s in starts]
    from carkinetics.parallel import UnitFailure, map_units
    parts = map_units(_chunk, units, workers=workers, progress=progress, desc="trials",
                      chunksize=1, scheduler=scheduler, store=store, resume=resume)
    for part in parts:
        if isinstance(part, UnitFailure):
            raise RuntimeError(f"simulation chunk failed: {part.message}")
    res = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    return summarize(design, res, p, overdose_fraction=overdose_fraction,
                     dlt_window_days=dlt_window_days)


def summarize(design: Design, res: dict, true_tox: Any = None, *,
              overdose_fraction: float = 0.6, dlt_window_days: float = 28.0) -> OCResult:
    """Operating characteristics from per-trial results.

    ``res`` holds per-trial ``selected``, ``n``, ``y``, ``cohorts`` and ``reason``.
    """
    sel = np.asarray(res["selected"])
    T = sel.size
    D = design.n_doses
    selection = np.bincount(sel[sel >= 0], minlength=D)[:D] / T
    n = np.asarray(res["n"], float)
    y = np.asarray(res["y"], float)
    reasons, counts = np.unique(np.asarray(res["reason"]).astype(str), return_counts=True)
    stop_reasons = {str(r): float(c) / T for r, c in zip(reasons, counts, strict=True)}
    over = None
    extra: dict = {}
    p = None
    if true_tox is not None:
        p = check_probabilities(true_tox)
        od = p > design.target
        frac = (n[:, od].sum(axis=1) / np.maximum(n.sum(axis=1), 1))
        over = float(np.mean(frac > overdose_fraction))
        extra["overdose_fraction_threshold"] = overdose_fraction
        extra["mean_pct_patients_overdosed"] = 100 * float(frac.mean())
    cohorts = np.asarray(res["cohorts"], float)
    full = design.n_cohorts
    early = float(np.mean(cohorts < full))
    extra["mean_duration_days"] = float(cohorts.mean() * dlt_window_days)
    extra["dlt_window_days"] = dlt_window_days
    mc = np.sqrt(selection * (1 - selection) / T)
    extra["selection_pct_mc_se"] = (100 * mc).tolist()
    return OCResult(design.name, p, selection, float(np.mean(sel < 0)), n.mean(axis=0),
                    y.mean(axis=0), over, early, float(cohorts.mean()), stop_reasons, T, False,
                    extra)


def summarize_paths(design: Design, ends: list, true_tox: Any = None, *,
                    overdose_fraction: float = 0.6,
                    dlt_window_days: float = 28.0) -> OCResult:
    """Exact operating characteristics from enumerated end states.

    ``ends`` holds ``(probability, n, y, cohorts, reason, selected)`` tuples (``selected``
    0-based, -1 = no MTD).
    """
    D = design.n_doses
    pr = np.array([e[0] for e in ends])
    total = pr.sum()
    if abs(total - 1.0) > 1e-9:
        raise RuntimeError(f"enumerated path probabilities sum to {total}, not 1.")
    n = np.array([e[1] for e in ends], float)
    y = np.array([e[2] for e in ends], float)
    coh = np.array([e[3] for e in ends], float)
    sel = np.array([e[5] for e in ends], int)
    selection = np.array([pr[sel == i].sum() for i in range(D)])
    reasons: dict = {}
    for e, q in zip(ends, pr, strict=True):
        reasons[e[4]] = reasons.get(e[4], 0.0) + float(q)
    over = None
    extra: dict = {"n_paths": len(ends), "dlt_window_days": dlt_window_days,
                   "mean_duration_days": float(pr @ coh * dlt_window_days)}
    p = None
    if true_tox is not None:
        p = check_probabilities(true_tox)
        od = p > design.target
        frac = n[:, od].sum(axis=1) / np.maximum(n.sum(axis=1), 1)
        over = float(pr @ (frac > overdose_fraction))
        extra["overdose_fraction_threshold"] = overdose_fraction
        extra["mean_pct_patients_overdosed"] = 100 * float(pr @ frac)
    early = float(pr @ (coh < design.n_cohorts))
    return OCResult(design.name, p, selection, float(pr[sel < 0].sum()), pr @ n, pr @ y, over,
                    early, float(pr @ coh), reasons, None, True, extra)
