"""Simulation-estimation studies as batch jobs: simulate trials from a known truth, refit.

Each trial is one unit of :func:`carkinetics.parallel.map_units`: trial ``k`` is
:func:`carkinetics.simulate.simulate_trial` with the seed drawn from child ``k`` of
``numpy.random.SeedSequence(seed).spawn(n_trials)`` (``int(child.generate_state(1)[0])``),
so a trial's data and fit do not depend on the number of workers or on the other trials
of the batch. A fit that raises becomes a failure row with its reason (never dropped).

* :func:`simulation_estimation` fits every trial by FOCE-I and compares the population
  estimates with the population truth (:func:`population_truth`);
* :func:`simulation_estimation_individuals` fits every participant of every trial
  individually and compares each estimate with that participant's true parameters.

:func:`summarise_trials` turns the per-trial table into bias, relative bias, RMSE and
confidence-interval coverage per parameter. Relative errors are ``(estimate - truth) /
|truth|``, except for parameters on the log scale (``log_*``), whose relative error is
that of ``exp(.)``: ``exp(estimate - truth) - 1``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.exceptions import ModelSpecError
from carkinetics.fitting._jobs import captured, check_indices, child_seeds, run_units
from carkinetics.parallel import UnitFailure

__all__ = [
    "SimEstResult",
    "matching_spec",
    "population_truth",
    "simulation_estimation",
    "simulation_estimation_individuals",
    "summarise_trials",
    "trial_seeds",
]

#: Default root seed of the studies (benchmarks/simest_focei.py).
DEFAULT_SEED = 20261125
#: Samples after this day count as "late" for the BLQ fraction.
LATE_DAY = 180.0
#: Columns of the per-trial table (:meth:`SimEstResult.to_frame`).
TRIAL_COLUMNS = ("trial", "seed", "id", "parameter", "estimate", "se", "ci_lower", "ci_upper",
                 "truth", "covered", "converged", "se_missing", "seconds", "estimation_s",
                 "blq_late", "blq_all", "n_warnings", "error")


def trial_seeds(seed: int, n_trials: int) -> list[int]:
    """Seeds of the trials: ``int(c.generate_state(1)[0])`` for the spawned children."""
    return [int(c.generate_state(1)[0]) for c in child_seeds(seed, n_trials)]


def population_truth(population: Any = None) -> dict[str, float]:
    """True values of the population parameters of a ``CKPopulation``.

    Names as :func:`~carkinetics.fitting.population.fit_focei` reports them: typical
    values, ``dose_exp``, ``log_scale_car_flow`` (log flow cells per qPCR copy), ``omega(p)``
    as **variances** of the random effects with a non-zero SD (and
    ``omega(log_scale_car_flow)``), ``sigma_log_<assay>`` as SDs.
    """
    from carkinetics.simulate.trial import CKPopulation

    pop = population or CKPopulation()
    out = {k: float(v) for k, v in pop.typical.items()}
    out["dose_exp"] = float(pop.dose_exp)
    out["log_scale_car_flow"] = math.log(pop.flow_per_copy)
    for k, v in pop.omega.items():
        if v > 0:
            out[f"omega({k})"] = float(v) ** 2
    if pop.omega_flow_scale > 0:
        out["omega(log_scale_car_flow)"] = float(pop.omega_flow_scale) ** 2
    out["sigma_log_car_qpcr"] = float(pop.sigma_qpcr)
    out["sigma_log_car_flow"] = float(pop.sigma_flow)
    return out


def matching_spec(population: Any = None, **spec_options: Any) -> Any:
    """The :class:`PopulationSpec` matching a ``CKPopulation``'s structure.

    Random effects on the parameters with a non-zero SD, a flow-scale random effect when
    the population has one, the default dose power covariate; ``spec_options`` override.
    """
    from carkinetics.fitting.population.spec import PopulationSpec
    from carkinetics.simulate.trial import CKPopulation

    pop = population or CKPopulation()
    kw: dict[str, Any] = {"random_effects": tuple(k for k, v in pop.omega.items() if v > 0),
                          "scale_random_effect": pop.omega_flow_scale > 0}
    kw.update(spec_options)
    return PopulationSpec(**kw)


def _blq(data: pd.DataFrame, late_day: float) -> tuple[float, float]:
    late = data[data["time"] > late_day]
    blq_late = float((late["cens"] == 1).mean()) if len(late) else math.nan
    blq_all = float((data.loc[data["time"] >= 0, "cens"] == 1).mean())
    return blq_late, blq_all


def _failure_row(k: int, seed: int, error: str, blq: tuple[float, float]) -> pd.DataFrame:
    row = dict.fromkeys(TRIAL_COLUMNS, None)
    row.update(trial=k, seed=seed, error=error, blq_late=blq[0], blq_all=blq[1])
    return pd.DataFrame([row], columns=list(TRIAL_COLUMNS))


def _focei_trial(task: tuple[Any, ...]) -> pd.DataFrame:
    """Worker: simulate trial ``k`` and fit it by FOCE-I; one row per parameter."""
    from carkinetics.fitting.population.focei import fit_focei
    from carkinetics.simulate import simulate_trial

    k, seed, spec, population, design, truth, ci_level, late_day, options = task
    data = simulate_trial(int(seed), design=design, population=population,
                          include_pd=False).data
    blq = _blq(data, late_day)
    t0 = time.perf_counter()
    with captured() as cap:
        try:
            res = fit_focei(spec, data, diagnostics=False, ci_level=ci_level, **options)
        except Exception as exc:  # noqa: BLE001  (a failed fit is counted, not hidden)
            return _failure_row(k, seed, f"{type(exc).__name__}: {exc}", blq)
    sec = time.perf_counter() - t0
    fr = res.to_frame()
    fr["truth"] = fr["parameter"].map(truth).astype(float)
    fr["covered"] = (fr["ci_lower"] <= fr["truth"]) & (fr["truth"] <= fr["ci_upper"])
    fr["covered"] = fr["covered"].where(fr["se"].notna() & fr["truth"].notna())
    fr["trial"], fr["seed"], fr["id"] = k, seed, None
    fr["converged"] = bool(res.converged)
    fr["se_missing"] = bool(fr["se"].isna().all())
    fr["seconds"] = sec
    fr["estimation_s"] = res.timings.get("estimation", math.nan)
    fr["blq_late"], fr["blq_all"] = blq
    fr["n_warnings"] = len(cap.messages)
    fr["error"] = None
    return fr[list(TRIAL_COLUMNS)]


def _individual_trial(task: tuple[Any, ...]) -> pd.DataFrame:
    """Worker: simulate trial ``k``, fit each participant; one row per (id, parameter)."""
    from carkinetics.fitting.batch import fit_individuals
    from carkinetics.simulate import simulate_trial

    k, seed, model, endpoint, population, design, ci_level, late_day, options = task
    sim = simulate_trial(int(seed), design=design, population=population, include_pd=False)
    data = sim.data
    blq = _blq(data, late_day)
    t0 = time.perf_counter()
    with captured() as cap:
        try:
            fits = fit_individuals(data, model, endpoint=endpoint, progress=False,
                                   ci_level=ci_level, **options)
        except Exception as exc:  # noqa: BLE001
            return _failure_row(k, seed, f"{type(exc).__name__}: {exc}", blq)
    sec = time.perf_counter() - t0
    pop = sim.truth["population"]
    truth = {}
    for p in sim.truth["participants"]:
        t = dict(p["params_at_dose"])
        t["sigma_log_car_qpcr"] = float(pop["sigma_qpcr"])
        t["sigma_log_car_flow"] = float(pop["sigma_flow"])
        t["log_scale_car_flow"] = math.log(p["flow_per_copy"])
        truth[p["id"]] = t
    fr = fits.to_frame(include_failed=False)
    fr = fr[~fr["fixed"].astype(bool)].copy() if len(fr) else fr
    out = pd.DataFrame({
        "trial": k, "seed": seed, "id": fr["id"].to_numpy(dtype=object),
        "parameter": fr["parameter"].to_numpy(dtype=object),
        "estimate": fr["estimate"].to_numpy(dtype=float),
        "se": fr["se"].to_numpy(dtype=float),
        "ci_lower": fr["ci_lower"].to_numpy(dtype=float),
        "ci_upper": fr["ci_upper"].to_numpy(dtype=float)})
    out["truth"] = [truth.get(i, {}).get(p, math.nan)
                    for i, p in zip(out["id"], out["parameter"], strict=True)]
    cov = (out["ci_lower"] <= out["truth"]) & (out["truth"] <= out["ci_upper"])
    out["covered"] = cov.where(out["ci_lower"].notna() & out["ci_upper"].notna()
                               & out["truth"].notna())
    out["converged"] = fr["converged"].to_numpy(dtype=bool)
    out["se_missing"] = out["se"].isna().to_numpy()
    out["seconds"] = sec
    out["estimation_s"] = sec
    out["blq_late"], out["blq_all"] = blq
    out["n_warnings"] = len(cap.messages)
    out["error"] = None
    parts = [out]
    for f in fits.failures:  # a participant's failed fit is a failure row of the trial
        row = _failure_row(k, seed, f"{f.error}: {f.reason.splitlines()[0]}", blq)
        row["id"] = f.id
        parts.append(row)
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else out


def summarise_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Bias, relative bias, RMSE and CI coverage per parameter of a per-trial table.

    Parameters
    ----------
    trials : DataFrame
        :meth:`SimEstResult.to_frame` (``parameter, estimate, truth, covered``; rows with a
        missing parameter are failures and are left out; parameters without a truth are
        left out).

    Returns
    -------
    DataFrame
        One row per parameter: ``truth`` (the common truth, NaN when it differs between
        rows, e.g. per participant), ``mean_estimate``, ``bias`` (mean of estimate -
        truth), ``rel_bias_pct`` and ``median_rel_bias_pct`` (100 x mean / median relative
        error), ``rmse``, ``rel_rmse_pct``, ``coverage`` (fraction of the intervals that
        contain the truth, among rows with an SE and an interval), ``n``, ``n_with_ci``.

    Examples
    --------
    >>> tab = pd.DataFrame({"parameter": ["a", "a"], "estimate": [1.1, 0.8],
    ...                     "truth": [1.0, 1.0], "covered": [True, False]})
    >>> out = summarise_trials(tab)
    >>> out[["bias", "rel_bias_pct", "coverage"]].round(6).values.tolist()
    [[-0.05, -5.0, 0.5]]
    """
    ok = trials[trials["parameter"].notna() & pd.to_numeric(trials["truth"]).notna()]
    rows = []
    for p, g in ok.groupby("parameter", sort=False):
        est = g["estimate"].to_numpy(dtype=float)
        tru = g["truth"].to_numpy(dtype=float)
        d = est - tru
        rel = np.expm1(d) if str(p).startswith("log_") else d / np.abs(tru)
        has_ci = g["se"].notna() if "se" in g else pd.Series(True, index=g.index)
        cov = g.loc[has_ci, "covered"].dropna().astype(bool)
        rows.append({
            "parameter": p,
            "truth": float(tru[0]) if np.all(tru == tru[0]) else math.nan,
            "mean_estimate": float(est.mean()), "bias": float(d.mean()),
            "rel_bias_pct": 100 * float(rel.mean()),
            "median_rel_bias_pct": 100 * float(np.median(rel)),
            "rmse": float(np.sqrt(np.mean(d**2))),
            "rel_rmse_pct": 100 * float(np.sqrt(np.mean(rel**2))),
            "coverage": float(cov.mean()) if len(cov) else math.nan,
            "n": int(len(g)), "n_with_ci": int(len(cov))})
    return pd.DataFrame(rows, columns=["parameter", "truth", "mean_estimate", "bias",
                                       "rel_bias_pct", "median_rel_bias_pct", "rmse",
                                       "rel_rmse_pct", "coverage", "n", "n_with_ci"])


@dataclass(frozen=True, eq=False)
class SimEstResult:
    """A simulation-estimation study (frozen).

    Attributes
    ----------
    method : str
        ``"focei"`` or ``"individual"``.
    trials : DataFrame
        Per trial and parameter (and participant, for individual fits): columns
        :data:`TRIAL_COLUMNS`; a failed trial (or participant) is a row with
        ``parameter`` missing and ``error`` set.
    truth : dict
        The population truth (FOCE-I) or the population values (individual fits).
    ci_level : float
        Level of the confidence intervals whose coverage is reported.
    n_trials, seed : int
        Design of the study (root seed).
    info : dict
        Timings, workers, scheduler.
    """

    method: str
    trials: pd.DataFrame
    truth: Mapping[str, float]
    ci_level: float
    n_trials: int
    seed: int
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """The per-trial table (:data:`TRIAL_COLUMNS`)."""
        return self.trials.copy()

    def metrics(self) -> pd.DataFrame:
        """:func:`summarise_trials` of the per-trial table."""
        return summarise_trials(self.trials)

    @property
    def failures(self) -> pd.DataFrame:
        """``trial, seed, id, error`` of the failed trials (or participants)."""
        f = self.trials[self.trials["parameter"].isna()]
        return f[["trial", "seed", "id", "error"]].reset_index(drop=True)

    @property
    def counts(self) -> dict[str, int]:
        """Trials run, fitted, failed, failure rows, converged and with missing SEs.

        A trial is fitted when it has estimates (failed: none), converged when all its
        fits converged; ``failure_rows`` counts failed fits (participants, for individual
        fits).
        """
        ok = self.trials[self.trials["parameter"].notna()]
        per = ok.groupby("trial").agg(converged=("converged", "all"),
                                      se_missing=("se_missing", "all"))
        n = int(self.trials["trial"].nunique())
        return {"trials": n, "fitted": int(len(per)), "failed": n - int(len(per)),
                "failure_rows": int(self.trials["parameter"].isna().sum()),
                "converged": int(per["converged"].sum()),
                "se_missing": int(per["se_missing"].sum())}

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: design, counts, failures, metrics."""
        return {"method": self.method, "n_trials": self.n_trials, "seed": self.seed,
                "ci_level": self.ci_level, "counts": self.counts,
                "failures": self.failures.to_dict(orient="records"),
                "metrics": self.metrics().to_dict(orient="records"), **dict(self.info)}


def _run(fn: Any, tasks: list[Any], which: list[int], seeds: list[int], workers: int,
         scheduler: str | None, progress: bool, desc: str) -> pd.DataFrame:
    out = run_units(fn, tasks, workers=workers, scheduler=scheduler, progress=progress,
                    desc=desc, chunksize=1)
    parts = []
    for k, res in zip(which, out, strict=True):
        if isinstance(res, UnitFailure):  # the simulation itself raised
            parts.append(_failure_row(k, seeds[k], f"{res.error}: {res.message}",
                                      (math.nan, math.nan)))
        else:
            parts.append(res)
    parts = [p.astype(object) for p in parts] if len(parts) > 1 else parts
    return pd.concat(parts, ignore_index=True).infer_objects()


def simulation_estimation(spec: Any = None, *, population: Any = None, design: Any = None,
                          truth: Mapping[str, float] | None = None, n_trials: int = 100,
                          seed: int = DEFAULT_SEED, trials: Sequence[int] | None = None,
                          ci_level: float = 0.9, late_day: float = LATE_DAY,
                          workers: int = 1, scheduler: str | None = None,
                          progress: bool = True, **fit_options: Any) -> SimEstResult:
    """Simulation-estimation study of FOCE-I.

    Parameters
    ----------
    spec : PopulationSpec, optional
        Estimation model (default :func:`matching_spec` of ``population``).
    population : CKPopulation, optional
        Simulation truth (default ``CKPopulation()``).
    design : TrialDesign, optional
        Trial design (default: the protocol's).
    truth : mapping, optional
        True values by reported parameter name (default :func:`population_truth`).
    n_trials : int, default 100
        Trials of the study design.
    seed : int, default 20261125
        Root seed (trial seeds: :func:`trial_seeds`).
    trials : sequence of int, optional
        Run only these trials of the design (each identical to its run in the full study;
        shards of a long study).
    ci_level : float, default 0.9
        Level of the FOCE-I confidence intervals whose coverage is counted.
    late_day : float, default 180
        Samples after this day count as late for the BLQ fraction.
    workers : int, default 1
        Worker processes; results do not depend on it.
    scheduler : str, optional
        Executor backend of :func:`~carkinetics.parallel.map_units` (passed when given).
    progress : bool, default True
        Progress bar.
    **fit_options
        Further keywords of :func:`~carkinetics.fitting.population.fit_focei`
        (diagnostics are always off).

    Returns
    -------
    SimEstResult
    """
    from carkinetics.fitting.population.spec import PopulationSpec

    if spec is None:
        spec = matching_spec(population)
    if not isinstance(spec, PopulationSpec):
        raise ModelSpecError(f"Invalid spec of type {type(spec).__name__}; expected a "
                             "PopulationSpec.")
    if "diagnostics" in fit_options:
        raise ModelSpecError("Invalid option 'diagnostics': simulation-estimation fits "
                             "never compute diagnostics.")
    if not 0 < ci_level < 1:
        raise ModelSpecError(f"Invalid ci_level={ci_level!r}; expected a number in (0, 1).")
    seeds = trial_seeds(seed, n_trials)
    which = check_indices("trials", trials, n_trials)
    truth = dict(population_truth(population) if truth is None else truth)
    t0 = time.perf_counter()
    tasks = [(k, seeds[k], spec, population, design, truth, ci_level, late_day,
              dict(fit_options)) for k in which]
    df = _run(_focei_trial, tasks, which, seeds, workers, scheduler, progress,
              "sim-est FOCE-I")
    return SimEstResult("focei", df, truth, ci_level, int(n_trials), int(seed), info={
        "workers": workers, "scheduler": scheduler, "wall_s": time.perf_counter() - t0})


def simulation_estimation_individuals(model: str = "piecewise", *, endpoint: str = "car_qpcr",
                                      population: Any = None, design: Any = None,
                                      n_trials: int = 20, seed: int = DEFAULT_SEED,
                                      trials: Sequence[int] | None = None,
                                      ci_level: float = 0.9, late_day: float = LATE_DAY,
                                      workers: int = 1, scheduler: str | None = None,
                                      progress: bool = True,
                                      **fit_options: Any) -> SimEstResult:
    """Simulation-estimation study of individual fits (each participant against its truth).

    Every participant of every simulated trial is fitted by
    :func:`~carkinetics.fitting.fit_individuals` (in the trial's unit, one process); the
    truth of a participant's kinetic parameters is its simulated ``params_at_dose`` (the
    dose effect included), of the residual SDs the population's, of ``log_scale_car_flow``
    its own log flow scale.

    Parameters
    ----------
    model : str, default "piecewise"
        Fitted model (the simulation is the piecewise model: another model's parameters
        have no truth and are left out of the metrics).
    endpoint : str, default "car_qpcr"
        ``car_qpcr`` or ``joint``.
    population, design, n_trials, seed, trials, ci_level, late_day, workers, scheduler,
    progress
        As in :func:`simulation_estimation`.
    **fit_options
        Further keywords of :func:`~carkinetics.fitting.fit_individuals`.

    Returns
    -------
    SimEstResult
        ``method="individual"``; ``trials`` has one row per (trial, participant, parameter)
        and one failure row per participant that could not be fitted.
    """
    from carkinetics._validation import check_option

    check_option("endpoint", endpoint, ("car_qpcr", "joint"), exc=ModelSpecError)
    if not 0 < ci_level < 1:
        raise ModelSpecError(f"Invalid ci_level={ci_level!r}; expected a number in (0, 1).")
    seeds = trial_seeds(seed, n_trials)
    which = check_indices("trials", trials, n_trials)
    t0 = time.perf_counter()
    tasks = [(k, seeds[k], model, endpoint, population, design, ci_level, late_day,
              dict(fit_options)) for k in which]
    df = _run(_individual_trial, tasks, which, seeds, workers, scheduler, progress,
              f"sim-est individual {model}")
    return SimEstResult("individual", df, population_truth(population), ci_level,
                        int(n_trials), int(seed), info={
                            "workers": workers, "scheduler": scheduler, "model": model,
                            "endpoint": endpoint, "wall_s": time.perf_counter() - t0})
