"""Nonparametric case bootstrap by participant, as a batch job.

A bootstrap replicate draws the participants' ids with replacement (optionally within
strata such as the dose level, keeping each stratum's size), stacks the drawn
participants' rows and **relabels** them ``"<id>#<position>"`` so that a participant drawn
twice enters the refit as two distinct individuals. The statistic (a FOCE-I fit, a summary
of individual fits, any function of the table) is evaluated on each replicate.

Each replicate is one unit of :func:`carkinetics.parallel.map_units`; replicate ``k``
draws from child ``k`` of ``numpy.random.SeedSequence(seed).spawn(n)``, so its result does
not depend on the number of workers, the chunking or the other replicates of the batch
(``replicates=[k]`` reruns it alone). A replicate that raises is recorded as ``failed``
with the reason; one whose fit did not converge is kept as ``unconverged`` (left out of
the intervals unless ``include_unconverged=True``); a non-finite value of one parameter
(e.g. a median over participants none of whom has an estimate) leaves that parameter out of
its interval only (``n_used``), with the reason. Nothing is dropped silently.

Intervals (:func:`bootstrap_intervals`), for each parameter with ``B`` usable replicates
``theta*_b`` and the estimate ``theta^`` on the data:

* bootstrap SE: ``sd(theta*_b)`` (``ddof=1``);
* percentile: ``numpy.percentile(theta*, [100 a/2, 100 (1 - a/2)])`` (linear interpolation);
* basic: ``[2 theta^ - q(1 - a/2), 2 theta^ - q(a/2)]``;
* BCa (Efron & Tibshirani 1993, ch. 14): bias correction ``z0 = Phi^-1(p)``, ``p`` the
  fraction of ``theta*_b`` below ``theta^`` (ties count one half), acceleration
  ``a = sum d_i^3 / (6 (sum d_i^2)^(3/2))`` with ``d_i = mean(theta_(.)) - theta_(i)`` from
  the leave-one-participant-out jackknife (one more batch unit per participant), limits
  ``percentile(theta*, 100 Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q))))`` for
  ``z_q = Phi^-1(a/2), Phi^-1(1 - a/2)``.

Individual fits are independent per participant and deterministic, so refitting a
resampled participant reproduces its own fit: :func:`bootstrap_individuals` fits every
participant once and resamples the fitted estimates (identical to refitting each
replicate; checked in the tests).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from carkinetics._validation import check_option
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting._jobs import (
    captured,
    check_indices,
    child_seeds,
    job_fingerprint,
    run_units,
)
from carkinetics.parallel import UnitFailure

__all__ = [
    "BootstrapResult",
    "Estimate",
    "FOCEIStatistic",
    "Summary",
    "bootstrap_focei",
    "bootstrap_individuals",
    "bootstrap_intervals",
    "bootstrap_participants",
    "resample_ids",
    "resample_table",
    "write_bootstrap_outputs",
]

#: Default root seed of the bootstrap.
DEFAULT_SEED = 20240409
#: Separator of the relabelled ids: ``"<id>#<position>"`` (position 1-based).
SEP = "#"
#: Replicate statuses.
STATUSES = ("ok", "unconverged", "failed")
#: Columns of :meth:`BootstrapResult.to_frame`.
ESTIMATE_COLUMNS = ("replicate", "parameter", "estimate", "converged", "status")
#: Columns of the interval table.
INTERVAL_COLUMNS = ("parameter", "estimate", "boot_mean", "boot_median", "bias", "se",
                    "pct_lower", "pct_upper", "basic_lower", "basic_upper", "bca_lower",
                    "bca_upper", "z0", "acceleration", "n_used")


# -- statistics -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """What a bootstrap statistic returns for one table.

    Attributes
    ----------
    values : mapping of str to float
        Estimate of each parameter.
    converged : bool, default True
        Whether the fit behind the values converged.
    message : str, default ""
        Why it did not converge, or notes (warnings raised by the fit).
    """

    values: Mapping[str, float]
    converged: bool = True
    message: str = ""


_HOW = ("median", "mean", "geomean")


@dataclass(frozen=True)
class Summary:
    """Statistic: a summary across participants of a per-participant table.

    Parameters
    ----------
    how : {"median", "mean", "geomean"}, default "median"
        Summary of ``value`` over the rows (the geometric mean needs positive values).
    value : str, default "estimate"
        Column summarised.
    by : str, optional, default "parameter"
        Column naming the parameters (a long table); ``None`` summarises the whole
        ``value`` column as one parameter named after it.

    Examples
    --------
    >>> tab = pd.DataFrame({"id": [1, 2, 3], "x": [1.0, 2.0, 6.0]})
    >>> Summary("mean", value="x", by=None)(tab).values
    {'x': 3.0}
    """

    how: str = "median"
    value: str = "estimate"
    by: str | None = "parameter"

    def __post_init__(self) -> None:
        check_option("how", self.how, _HOW, exc=ModelSpecError)

    def __call__(self, table: pd.DataFrame) -> Estimate:
        """Summarise ``table`` (rows of the participants drawn)."""
        def agg(x: pd.Series) -> float:
            v = x.to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if not v.size:
                return math.nan
            if self.how == "median":
                return float(np.median(v))
            if self.how == "mean":
                return float(np.mean(v))
            return float(np.exp(np.mean(np.log(v)))) if np.all(v > 0) else math.nan

        if self.by is None:
            return Estimate({self.value: agg(table[self.value])})
        vals = {str(k): agg(g) for k, g in table.groupby(self.by, sort=False)[self.value]}
        return Estimate(vals)


@dataclass(frozen=True)
class FOCEIStatistic:
    """Statistic: a FOCE-I fit of a :class:`PopulationSpec` (estimates only).

    Parameters
    ----------
    spec : PopulationSpec
        The model specification.
    theta0, omega0, sigma0 : optional
        Starting values (the original fit's estimates in :func:`bootstrap_focei`).
    options : mapping, optional
        Further keywords of :func:`~carkinetics.fitting.population.fit_focei`
        (``maxiter``, ``gtol``, ...); the covariance step and diagnostics are skipped.
    """

    spec: Any
    theta0: Mapping[str, float] | None = None
    omega0: np.ndarray | None = None
    sigma0: Mapping[str, float] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, table: pd.DataFrame) -> Estimate:
        """Fit ``table``; the reported parameters (omega as variances, sigma as SDs)."""
        from carkinetics.fitting.population.focei import fit_focei

        with captured() as cap:
            res = fit_focei(self.spec, table, theta0=self.theta0, omega0=self.omega0,
                            sigma0=self.sigma0, covariance=False, diagnostics=False,
                            **dict(self.options))
        fr = res.to_frame()
        vals = dict(zip(fr["parameter"], fr["estimate"].astype(float), strict=True))
        msg = "; ".join(res.warnings) if res.warnings else "; ".join(cap.messages)
        return Estimate(vals, bool(res.converged), msg)


# -- resampling ---------------------------------------------------------------------------------
def resample_ids(ids: Sequence[Hashable], seed: np.random.SeedSequence | int, *,
                 strata: Sequence[Hashable] | None = None) -> np.ndarray:
    """Draw ``len(ids)`` ids with replacement (within strata when given).

    Parameters
    ----------
    ids : sequence
        The distinct participant ids.
    seed : SeedSequence or int
        The replicate's seed.
    strata : sequence, optional
        Stratum of each id (same length): each stratum is resampled to its own size, in
        order of first appearance.

    Returns
    -------
    ndarray of object
        The drawn ids (with repeats), stratum by stratum.

    Examples
    --------
    >>> out = resample_ids(["a", "b", "c", "d"], 1, strata=["x", "x", "y", "y"])
    >>> len(out), set(out[:2]) <= {"a", "b"}, set(out[2:]) <= {"c", "d"}
    (4, True, True)
    """
    arr = np.asarray(list(ids), dtype=object)
    rng = np.random.default_rng(seed)
    if strata is None:
        return arr[rng.integers(0, len(arr), len(arr))]
    st = pd.Series(list(strata))
    if len(st) != len(arr):
        raise ModelSpecError(f"Invalid strata of length {len(st)}; expected one per id "
                             f"({len(arr)}).")
    out = []
    for level in pd.unique(st):
        members = arr[(st == level).to_numpy()]
        out.append(members[rng.integers(0, len(members), len(members))])
    return np.concatenate(out)


def resample_table(table: pd.DataFrame, drawn: Sequence[Hashable], *,
                   relabel: bool = True) -> pd.DataFrame:
    """Stack the rows of the drawn participants, relabelled ``"<id>#<position>"``.

    Parameters
    ----------
    table : DataFrame
        Long table with an ``id`` column.
    drawn : sequence
        Drawn ids, with repeats (see :func:`resample_ids`); an id without rows adds none.
    relabel : bool, default True
        Give the ``j``-th drawn participant (1-based) the id ``f"{id}#{j}"`` so duplicates
        are distinct individuals; ``False`` keeps the ids (a jackknife sample).

    Returns
    -------
    DataFrame
        The rows, participant by participant in the order drawn, index reset.

    Examples
    --------
    >>> tab = pd.DataFrame({"id": ["a", "a", "b"], "dv": [1.0, 2.0, 3.0]})
    >>> resample_table(tab, ["b", "a", "b"])["id"].tolist()
    ['b#1', 'a#2', 'a#2', 'b#3']
    """
    pos = table.groupby("id", sort=False).indices
    none = np.zeros(0, dtype=np.int64)
    parts = [pos.get(i, none) for i in drawn]
    out = table.iloc[np.concatenate(parts) if parts else none].reset_index(drop=True)
    if relabel:
        labels = [f"{i}{SEP}{j}" for j, i in enumerate(drawn, start=1)]
        out["id"] = np.repeat(np.asarray(labels, dtype=object), [len(p) for p in parts])
    return out


# -- the batch unit -----------------------------------------------------------------------------
def _unit(task: tuple[Callable[[pd.DataFrame], Any], pd.DataFrame, str, np.ndarray]
          ) -> tuple[dict[str, float], bool, str, float]:
    """Worker: evaluate the statistic on one replicate (or jackknife sample)."""
    statistic, table, kind, drawn = task
    t0 = time.perf_counter()
    sample = resample_table(table, drawn, relabel=kind == "boot")
    with captured() as cap:
        est = statistic(sample)
    if not isinstance(est, Estimate):
        est = Estimate(dict(est))
    msg = est.message or "; ".join(cap.messages)
    vals = {str(k): float(v) for k, v in est.values.items()}
    return vals, bool(est.converged), msg, time.perf_counter() - t0


# -- intervals ----------------------------------------------------------------------------------
def _pct(x: np.ndarray, q: float | np.ndarray) -> Any:
    return np.percentile(x, q)


def bootstrap_intervals(replicates: pd.DataFrame, original: Mapping[str, float], *,
                        ci_level: float = 0.95,
                        jackknife: pd.DataFrame | None = None) -> pd.DataFrame:
    """Bootstrap SE and percentile, basic and BCa intervals per parameter.

    Parameters
    ----------
    replicates : DataFrame
        Wide: one row per usable replicate, one column per parameter (NaN = not usable
        for that parameter).
    original : mapping
        Estimate of each parameter on the original data.
    ci_level : float, default 0.95
        Two-sided level.
    jackknife : DataFrame, optional
        Wide leave-one-participant-out estimates (one row per participant left out); BCa
        limits are NaN without it, or where a jackknife estimate is missing, or where every
        replicate lies on one side of the estimate (``z0`` infinite).

    Returns
    -------
    DataFrame
        Columns :data:`INTERVAL_COLUMNS`, one row per parameter of ``original``.

    Examples
    --------
    >>> reps = pd.DataFrame({"m": [0.9, 1.0, 1.1, 1.2]})
    >>> out = bootstrap_intervals(reps, {"m": 1.0}, ci_level=0.5)
    >>> out[["pct_lower", "pct_upper", "basic_lower", "basic_upper"]].round(3).values.tolist()
    [[0.975, 1.125, 0.875, 1.025]]
    """
    if not 0 < ci_level < 1:
        raise ModelSpecError(f"Invalid ci_level={ci_level!r}; expected a number in (0, 1).")
    alpha = 1.0 - ci_level
    qs = np.array([alpha / 2, 1 - alpha / 2])
    rows = []
    for p, est in original.items():
        x = replicates[p].to_numpy(dtype=float) if p in replicates else np.zeros(0)
        x = x[np.isfinite(x)]
        est = float(est)
        row: dict[str, Any] = dict.fromkeys(INTERVAL_COLUMNS, math.nan)
        row.update(parameter=p, estimate=est, n_used=int(x.size))
        if x.size:
            lo, hi = _pct(x, 100 * qs)
            row.update(boot_mean=float(x.mean()), boot_median=float(np.median(x)),
                       bias=float(x.mean() - est), pct_lower=float(lo), pct_upper=float(hi),
                       basic_lower=2 * est - float(hi), basic_upper=2 * est - float(lo))
        if x.size > 1:
            row["se"] = float(np.std(x, ddof=1))
        if x.size and jackknife is not None and p in jackknife and len(jackknife) > 1:
            jk = jackknife[p].to_numpy(dtype=float)
            frac = (np.count_nonzero(x < est) + 0.5 * np.count_nonzero(x == est)) / x.size
            if np.all(np.isfinite(jk)) and 0 < frac < 1:
                z0 = float(stats.norm.ppf(frac))
                d = jk.mean() - jk
                den = 6.0 * float(np.sum(d**2)) ** 1.5
                acc = float(np.sum(d**3) / den) if den > 0 else 0.0
                zq = stats.norm.ppf(qs)
                adj = stats.norm.cdf(z0 + (z0 + zq) / (1 - acc * (z0 + zq)))
                blo, bhi = _pct(x, 100 * adj)
                row.update(bca_lower=float(blo), bca_upper=float(bhi), z0=z0,
                           acceleration=acc)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(INTERVAL_COLUMNS))


# -- result -------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class BootstrapResult:
    """A case bootstrap by participant (frozen).

    Attributes
    ----------
    method : str
        What was refitted (``"focei"``, ``"individual"`` or the statistic's name).
    estimates : DataFrame
        Long: ``replicate, parameter, estimate, converged, status`` (every replicate that
        returned estimates, including unconverged ones).
    replicates : DataFrame
        One row per replicate: ``replicate, status`` (ok, unconverged, failed),
        ``reason`` (error, non-convergence message, parameters without a finite value;
        "" when there is nothing to report), ``seconds``.
    samples : DataFrame
        ``replicate, position, id, label``: who was drawn (label = relabelled id).
    original : Series
        Estimates on the original data, by parameter.
    intervals : DataFrame
        :func:`bootstrap_intervals` of the usable replicates (columns
        :data:`INTERVAL_COLUMNS`; FOCE-I adds ``se_model``, the covariance-step SE).
    jackknife : DataFrame
        Long: ``left_out, parameter, estimate, converged`` (empty without BCa).
    ci_level : float
        Level of the intervals.
    n, seed : int
        Number of replicates of the design and root seed.
    stratify : str or None
        Stratification column.
    include_unconverged : bool
        Whether unconverged replicates enter the intervals.
    info : dict
        Timings, workers, scheduler, notes.
    """

    method: str
    estimates: pd.DataFrame
    replicates: pd.DataFrame
    samples: pd.DataFrame
    original: pd.Series
    intervals: pd.DataFrame
    jackknife: pd.DataFrame
    ci_level: float
    n: int
    seed: int
    stratify: str | None = None
    include_unconverged: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """Replicate estimates, long (:data:`ESTIMATE_COLUMNS`)."""
        return self.estimates.copy()

    @property
    def counts(self) -> dict[str, int]:
        """Replicates per status (``ok``, ``unconverged``, ``failed``) and in total."""
        vc = self.replicates["status"].value_counts()
        out = {s: int(vc.get(s, 0)) for s in STATUSES}
        out["total"] = int(len(self.replicates))
        return out

    def wide(self) -> pd.DataFrame:
        """Usable replicates' estimates, wide (a row per replicate, a column per parameter)."""
        ok = ("ok", "unconverged") if self.include_unconverged else ("ok",)
        est = self.estimates[self.estimates["status"].isin(ok)]
        return est.pivot(index="replicate", columns="parameter", values="estimate")

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: design, counts, failure reasons, intervals."""
        bad = self.replicates[self.replicates["status"] != "ok"]
        return {
            "method": self.method, "n_replicates": self.n, "seed": self.seed,
            "stratify": self.stratify, "ci_level": self.ci_level,
            "include_unconverged": self.include_unconverged, "counts": self.counts,
            "not_ok": [{"replicate": int(r.replicate), "status": r.status, "reason": r.reason}
                       for r in bad.itertuples()],
            "intervals": self.intervals.to_dict(orient="records"),
            **{k: v for k, v in self.info.items()},
        }


# -- the job ------------------------------------------------------------------------------------
def _strata(table: pd.DataFrame, ids: Sequence[Hashable],
            stratify: str | Mapping[Hashable, Hashable] | None) -> list[Hashable] | None:
    if stratify is None:
        return None
    if isinstance(stratify, Mapping):
        miss = [i for i in ids if i not in stratify]
        if miss:
            raise ModelSpecError(f"Invalid stratify: no stratum for ids {miss[:5]}.")
        return [stratify[i] for i in ids]
    if stratify not in table.columns:
        from carkinetics._validation import closest

        raise DataError(f"stratify={stratify!r} is not a column of the data (columns: "
                        f"{list(table.columns)})." + closest(stratify, list(table.columns)),
                        source="bootstrap")
    per = table.groupby("id", sort=False)[stratify].nunique(dropna=False)
    varying = per[per > 1]
    if len(varying):
        raise DataError(f"stratify={stratify!r} varies within participant(s) "
                        f"{list(varying.index[:5])}; expected one value per participant.",
                        source="bootstrap")
    first = table.groupby("id", sort=False)[stratify].first()
    return [first.get(i) for i in ids]


def bootstrap_participants(
    table: pd.DataFrame,
    statistic: Callable[[pd.DataFrame], Estimate | Mapping[str, float]],
    *,
    n: int = 200,
    seed: int = DEFAULT_SEED,
    stratify: str | Mapping[Hashable, Hashable] | None = None,
    ids: Sequence[Hashable] | None = None,
    replicates: Sequence[int] | None = None,
    original: Mapping[str, float] | None = None,
    ci_level: float = 0.95,
    bca: bool = True,
    include_unconverged: bool = False,
    workers: int = 1,
    scheduler: str | None = None,
    progress: bool = True,
    store: str | os.PathLike[str] | None = None,
    resume: bool = False,
    method: str | None = None,
    chunksize: int | None = None,
) -> BootstrapResult:
    """Case bootstrap by participant of any statistic of a long table.

    Parameters
    ----------
    table : DataFrame
        Long table with an ``id`` column (data rows, or per-participant estimates).
    statistic : callable
        ``statistic(table) -> Estimate or mapping of parameter -> value``, applied to each
        resampled (relabelled) table. With ``workers > 1`` it must be picklable (a
        module-level function or an instance such as :class:`Summary` or
        :class:`FOCEIStatistic`).
    n : int, default 200
        Number of replicates ``B``.
    seed : int, default 20240409
        Root seed; replicate ``k`` draws from ``SeedSequence(seed).spawn(n)[k]``.
    stratify : str or mapping, optional
        Column constant within participant (e.g. ``"dose"``) or ``{id: stratum}``: resample
        within each stratum, keeping its size.
    ids : sequence, optional
        The participants resampled (default: the ids of ``table`` in order of appearance);
        ids without rows in ``table`` are drawn like the others and contribute no rows.
    replicates : sequence of int, optional
        Run only these replicates of the design (each identical to its run in the full
        batch); intervals use those run.
    original : mapping, optional
        Estimates on the original data (default: ``statistic(table)``, run here).
    ci_level : float, default 0.95
        Level of the intervals.
    bca : bool, default True
        Also run the leave-one-participant-out jackknife (one unit per participant) for the
        BCa acceleration.
    include_unconverged : bool, default False
        Use unconverged replicates in the intervals (they are reported either way).
    workers : int, default 1
        Worker processes of :func:`~carkinetics.parallel.map_units`; results do not depend
        on it.
    scheduler : str, optional
        Executor backend of ``map_units`` (local processes, in-process, dask).
    progress : bool, default True
        Progress bar.
    store : path-like, optional
        Resume store directory: each finished replicate is written there at once (atomic
        rename), so an interrupted run loses nothing.
    resume : bool, default False
        Reuse the replicates already in ``store`` (refused if the store was made by a
        different job: other data, statistic, seed or settings).
    method : str, optional
        Label of the result (default: the statistic's class name).
    chunksize : int, optional
        Units per task of the executor (default: 1 below 64 units, else the executor's);
        results do not depend on it. Use 1 for expensive statistics (refits) so that
        workers stay balanced.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    ModelSpecError
        Bad ``n``, ``seed``, ``replicates``, ``ci_level`` or ``workers``.
    DataError
        No ``id`` column, or a ``stratify`` column missing or varying within participant.

    Examples
    --------
    >>> tab = pd.DataFrame({"id": range(8), "x": [1.0, 2, 3, 4, 5, 6, 7, 8]})
    >>> res = bootstrap_participants(tab, Summary("mean", value="x", by=None), n=50, seed=1,
    ...                              progress=False)
    >>> res.counts["ok"], round(float(res.original["x"]), 2)
    (50, 4.5)
    """
    t0 = time.perf_counter()
    if not isinstance(table, pd.DataFrame) or "id" not in table.columns:
        raise DataError("the bootstrap table needs an 'id' column (long format).",
                        source="bootstrap")
    seeds = child_seeds(seed, n)
    which = check_indices("replicates", replicates, n)
    ids = list(pd.unique(table["id"])) if ids is None else list(ids)
    if len(ids) < 2:
        raise DataError(f"the bootstrap needs at least 2 participants; got {len(ids)}.",
                        source="bootstrap")
    if not 0 < ci_level < 1:
        raise ModelSpecError(f"Invalid ci_level={ci_level!r}; expected a number in (0, 1).")
    strata = _strata(table, ids, stratify)
    if original is None:
        with captured():
            est0 = statistic(table)
        original = est0.values if isinstance(est0, Estimate) else dict(est0)
    orig = pd.Series({str(k): float(v) for k, v in original.items()}, dtype=float,
                     name="estimate")
    orig.index.name = "parameter"
    drawn = {k: resample_ids(ids, seeds[k], strata=strata) for k in which}
    units = [(statistic, table, "boot", drawn[k]) for k in which]
    jk_ids = ids if bca else []
    units += [(statistic, table, "jack", np.asarray([j for j in ids if j != i], dtype=object))
              for i in jk_ids]
    label = method or type(statistic).__name__
    t1 = time.perf_counter()
    fingerprint = None
    if store is not None:
        fingerprint = job_fingerprint(table, "bootstrap", repr(statistic), int(seed), int(n),
                                      which, repr(stratify), None if ids is None else
                                      [str(i) for i in ids], bool(bca), chunksize)
    out = run_units(_unit, units, workers=workers, scheduler=scheduler, progress=progress,
                    desc=f"bootstrap {label}",
                    chunksize=chunksize or (1 if len(units) < 64 else None), store=store,
                    resume=resume, fingerprint=fingerprint)
    t_batch = time.perf_counter() - t1
    est_rows, rep_rows = [], []
    for k, res in zip(which, out[:len(which)], strict=True):
        if isinstance(res, UnitFailure):
            rep_rows.append({"replicate": k, "status": "failed",
                             "reason": f"{res.error}: {res.message}", "seconds": math.nan})
            continue
        vals, conv, msg, sec = res
        bad = [p for p, v in vals.items() if not math.isfinite(v)]
        note = f"non-finite estimate(s) of {bad}" if bad else ""
        if not vals or len(bad) == len(vals):
            status, reason = "failed", "; ".join(x for x in (
                note or "no estimate returned", msg) if x)
        elif not conv:
            status, reason = "unconverged", "; ".join(
                x for x in (msg or "the fit did not converge", note) if x)
        else:  # a parameter without a finite value is left out of its own interval only
            status, reason = "ok", note
        rep_rows.append({"replicate": k, "status": status, "reason": reason, "seconds": sec})
        est_rows += [{"replicate": k, "parameter": p, "estimate": v, "converged": conv,
                      "status": status} for p, v in vals.items()]
    jk_rows, jk_notes = [], []
    for i, res in zip(jk_ids, out[len(which):], strict=True):
        if isinstance(res, UnitFailure):
            jk_notes.append(f"jackknife without {i!r} failed ({res.error}: {res.message}); "
                            "no BCa limits")
            continue
        vals, conv, msg, _ = res
        if not conv:
            jk_notes.append(f"jackknife without {i!r} did not converge ({msg})")
        jk_rows += [{"left_out": i, "parameter": p, "estimate": v, "converged": conv}
                    for p, v in vals.items()]
    estimates = pd.DataFrame(est_rows, columns=list(ESTIMATE_COLUMNS))
    reps = pd.DataFrame(rep_rows, columns=["replicate", "status", "reason", "seconds"])
    jack = pd.DataFrame(jk_rows, columns=["left_out", "parameter", "estimate", "converged"])
    samples = pd.DataFrame(
        [{"replicate": k, "position": j, "id": i, "label": f"{i}{SEP}{j}"}
         for k in which for j, i in enumerate(drawn[k], start=1)],
        columns=["replicate", "position", "id", "label"])
    usable = ("ok", "unconverged") if include_unconverged else ("ok",)
    wide = estimates[estimates["status"].isin(usable)].pivot(
        index="replicate", columns="parameter", values="estimate")
    jk_wide = None
    if bca and len(jack) and not any("failed" in s for s in jk_notes):
        jk_wide = jack.pivot(index="left_out", columns="parameter", values="estimate")
        if len(jk_wide) != len(ids):
            jk_wide = None
    intervals = bootstrap_intervals(wide, orig.to_dict(), ci_level=ci_level,
                                    jackknife=jk_wide)
    info = {"workers": workers, "scheduler": scheduler, "n_participants": len(ids),
            "n_run": len(which), "timings": {"batch_s": t_batch,
                                            "total_s": time.perf_counter() - t0},
            "notes": jk_notes}
    return BootstrapResult(method=label, estimates=estimates, replicates=reps,
                           samples=samples, original=orig, intervals=intervals,
                           jackknife=jack, ci_level=ci_level, n=int(n), seed=int(seed),
                           stratify=stratify if isinstance(stratify, str) else (
                               None if stratify is None else "mapping"),
                           include_unconverged=include_unconverged, info=info)


def bootstrap_focei(spec: Any, data: pd.DataFrame, *, n: int = 200, seed: int = DEFAULT_SEED,
                    stratify: str | None = None, fit: Any = None,
                    replicates: Sequence[int] | None = None, ci_level: float = 0.95,
                    bca: bool = True, include_unconverged: bool = False, workers: int = 1,
                    scheduler: str | None = None, progress: bool = True,
                    store: str | os.PathLike[str] | None = None, resume: bool = False,
                    **fit_options: Any) -> BootstrapResult:
    """Case bootstrap by participant of a FOCE-I population fit.

    The original data are fitted once (with the covariance step, unless ``fit`` is
    given); every replicate is refitted with the same specification, started from the
    original estimates, without covariance step or diagnostics.

    Parameters
    ----------
    spec : PopulationSpec
        The model specification.
    data : DataFrame
        Long-format data.
    n, seed, stratify, replicates, ci_level, bca, include_unconverged, workers, scheduler,
    progress, store, resume
        As in :func:`bootstrap_participants` (``stratify``: a column such as ``"dose"``).
    fit : FOCEIResult, optional
        The fit of ``data`` with ``spec`` (default: fitted here).
    **fit_options
        Further keywords of :func:`~carkinetics.fitting.population.fit_focei` for the
        refits (``maxiter``, ``gtol``, ``full_omega`` ...).

    Returns
    -------
    BootstrapResult
        ``method="focei"``; its ``intervals`` have ``se_model``, the covariance-step SE of
        the original fit, beside the bootstrap SE.
    """
    from carkinetics.fitting.population.focei import fit_focei
    from carkinetics.fitting.population.spec import PopulationSpec

    if not isinstance(spec, PopulationSpec):
        raise ModelSpecError(f"Invalid spec of type {type(spec).__name__}; expected a "
                             "PopulationSpec.")
    t0 = time.perf_counter()
    if fit is None:
        with captured():
            fit = fit_focei(spec, data, diagnostics=False, ci_level=ci_level,
                            **fit_options)
    t_fit = time.perf_counter() - t0
    fr = fit.to_frame()
    stat = FOCEIStatistic(spec, theta0=dict(fit.theta), omega0=np.asarray(fit.omega),
                          sigma0=dict(fit.sigma), options=dict(fit_options))
    res = bootstrap_participants(
        data, stat, n=n, seed=seed, stratify=stratify, replicates=replicates,
        original=dict(zip(fr["parameter"], fr["estimate"], strict=True)), ci_level=ci_level,
        bca=bca, include_unconverged=include_unconverged, workers=workers,
        scheduler=scheduler, progress=progress, method="focei", chunksize=1, store=store,
        resume=resume)
    iv = res.intervals.copy()
    se = fr.set_index("parameter")["se"] if "se" in fr else pd.Series(dtype=float)
    iv["se_model"] = iv["parameter"].map(se).astype(float)
    info = dict(res.info, original_fit={"ofv": fit.ofv, "converged": bool(fit.converged),
                                        "seconds": t_fit, "warnings": list(fit.warnings)})
    from dataclasses import replace

    return replace(res, intervals=iv, info=info)


def bootstrap_individuals(data: pd.DataFrame, model: str = "piecewise", *,
                          endpoint: str = "car_qpcr", method: str = "m3",
                          how: str = "median", converged_only: bool = False,
                          n: int = 200, seed: int = DEFAULT_SEED,
                          stratify: str | None = None, fits: Any = None,
                          replicates: Sequence[int] | None = None, ci_level: float = 0.95,
                          bca: bool = True, workers: int = 1, scheduler: str | None = None,
                          progress: bool = True, **fit_options: Any) -> BootstrapResult:
    """Case bootstrap by participant of a summary of individual fits.

    The statistic is, per parameter, the ``how`` (median by default) of the participants'
    individual estimates. Each participant is fitted once
    (:func:`~carkinetics.fitting.fit_individuals`); as individual fits are independent
    and deterministic, a replicate's statistic equals the one from refitting its resampled
    data, at a fraction of the cost. Participants whose fit failed are resampled like the
    others and contribute no estimate (their number and reasons are in ``info``).

    Parameters
    ----------
    data : DataFrame
        Long-format data.
    model, endpoint, method
        As in :func:`~carkinetics.fitting.fit_individuals` (with ``endpoint="each"`` the
        parameters are named ``"<endpoint>:<parameter>"``).
    how : {"median", "mean", "geomean"}, default "median"
        Summary across participants.
    converged_only : bool, default False
        Leave the participants whose fit did not converge out of the summaries.
    n, seed, stratify, replicates, ci_level, bca, workers, scheduler, progress
        As in :func:`bootstrap_participants`.
    fits : FitResults, optional
        Individual fits of ``data`` (default: fitted here with ``workers``).
    **fit_options
        Passed to :func:`~carkinetics.fitting.fit_individuals`.

    Returns
    -------
    BootstrapResult
        ``method="individual"``.
    """
    from carkinetics.fitting.batch import EACH, fit_individuals

    stat = Summary(how)
    if fits is None:
        kw = dict(fit_options)
        if scheduler is not None:
            kw["scheduler"] = scheduler
        with captured():
            fits = fit_individuals(data, model, endpoint=endpoint, method=method,
                                   workers=workers, progress=progress, **kw)
    tab = fits.to_frame(include_failed=False)
    if len(tab):
        tab = tab[~tab["fixed"].astype(bool)]
    if converged_only and len(tab):
        tab = tab[tab["converged"].astype(bool)]
    tab = pd.DataFrame({
        "id": tab["id"].to_numpy(dtype=object),
        "parameter": (tab["endpoint"].astype(str) + ":" + tab["parameter"].astype(str)
                      if endpoint == EACH else tab["parameter"].astype(str)).to_numpy(),
        "estimate": tab["estimate"].to_numpy(dtype=float)})
    all_ids = list(pd.unique(data["id"]))
    strata = None
    if stratify is not None:
        strata = dict(zip(all_ids, _strata(data, all_ids, stratify), strict=True))
    res = bootstrap_participants(tab, stat, n=n, seed=seed, stratify=strata, ids=all_ids,
                                 replicates=replicates, ci_level=ci_level, bca=bca,
                                 workers=workers, scheduler=scheduler, progress=progress,
                                 method="individual")
    c = fits.counts
    info = dict(res.info, individual_fits={
        "model": fits.model, "endpoint": endpoint, "method": method, "summary": how,
        "converged_only": converged_only, **c,
        "failed_ids": [{"id": f.id, "endpoint": f.endpoint, "error": f.error,
                        "reason": f.reason.splitlines()[0] if f.reason else ""}
                       for f in fits.failures]})
    from dataclasses import replace

    return replace(res, stratify=stratify, info=info)


# -- outputs ------------------------------------------------------------------------------------
def write_bootstrap_outputs(result: BootstrapResult, out: Any, *,
                            extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write a bootstrap's tidy tables and ``summary.json`` to a folder, atomically.

    Files: ``replicates.csv`` (:meth:`BootstrapResult.to_frame`), ``replicate_status.csv``
    (status and reason of every replicate), ``intervals.csv``, ``samples.csv`` (who was
    drawn), ``jackknife.csv`` (with BCa) and ``summary.json`` (design, counts, reasons,
    intervals, ``extra``).

    Returns
    -------
    dict of str to Path
        The files written, by name.
    """
    import json
    from pathlib import Path

    from carkinetics import __version__
    from carkinetics._atomic import atomic_write, write_table
    from carkinetics.fitting.population.outputs import _clean

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"replicates": write_table(result.to_frame(), out / "replicates.csv"),
             "replicate_status": write_table(result.replicates, out / "replicate_status.csv"),
             "intervals": write_table(result.intervals, out / "intervals.csv"),
             "samples": write_table(result.samples, out / "samples.csv")}
    if len(result.jackknife):
        paths["jackknife"] = write_table(result.jackknife, out / "jackknife.csv")
    summary = {"carkinetics_version": __version__, **result.summary(), **dict(extra or {})}
    paths["summary"] = atomic_write(out / "summary.json", lambda p: Path(p).write_text(
        json.dumps(_clean(summary), indent=2, default=str) + "\n"))
    return paths
