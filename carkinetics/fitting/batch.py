"""Individual fits of every participant of a table, and model comparison per participant.

Each participant (or participant x endpoint) is one unit of
:func:`carkinetics.parallel.map_units`: fits run in worker processes, results come back in
input order and do not depend on the number of workers. A unit that raises (no rows of the
endpoint, every row BLQ, a start outside its bounds...) becomes a recorded
:class:`~carkinetics.fitting.results.FitFailure`; the batch goes on. Flags that a single fit
would raise as warnings are kept as flags only.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting.individual import _method, _model, fit_individual
from carkinetics.fitting.results import FitFailure, FitResult, FitResults
from carkinetics.parallel import UnitFailure, map_units

__all__ = ["fit_individuals", "compare_models", "model_comparison", "EACH"]

#: ``endpoint=EACH`` fits every kinetic endpoint of each participant separately.
EACH = "each"


def _fit_unit(task: tuple[Any, str, pd.DataFrame, dict[str, Any]]) -> FitResult:
    """Worker: one fit, warnings kept as messages, lmfit's object dropped (not picklable)."""
    pid, endpoint, frame, kw = task
    start = kw.pop("start", None)
    if isinstance(start, pd.DataFrame):
        start = ({k: float(v) for k, v in start.loc[pid].items() if np.isfinite(v)}
                 if pid in start.index else None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_individual(frame, id=pid, endpoint=endpoint, start=start, warn=False, **kw)
    extra = tuple(f"warning: {w.category.__name__}: {w.message}" for w in caught)
    return dataclasses.replace(res, raw=None, messages=res.messages + extra)


def _units(data: pd.DataFrame, endpoint: str, ids: Sequence[Any] | None,
           kinetic: Sequence[str]) -> list[tuple[Any, str, pd.DataFrame]]:
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"Invalid data of type {type(data).__name__}; expected a pandas "
                             "DataFrame in the long format.")
    missing = [c for c in ("id", "time", "dv") if c not in data.columns]
    if missing:
        raise DataError([f"column {c!r} is missing." for c in missing], source="fit")
    order = list(pd.unique(data["id"])) if ids is None else list(ids)
    groups = {k: g for k, g in data.groupby("id", sort=False)}
    out = []
    for pid in order:
        g = groups.get(pid, data.iloc[:0].assign(id=[]))
        if endpoint == EACH:
            eps = [e for e in kinetic if "endpoint" in g and (g["endpoint"] == e).any()]
            out += [(pid, e, g) for e in (eps or [kinetic[0]])]
        else:
            out.append((pid, endpoint, g))
    return out


def fit_individuals(
    data: pd.DataFrame,
    model: str = "piecewise",
    *,
    endpoint: str = "car_qpcr",
    method: str = "m3",
    ids: Sequence[Any] | None = None,
    start: Mapping[str, float] | pd.DataFrame | None = None,
    workers: int = 1,
    progress: bool = True,
    **options: Any,
) -> FitResults:
    """Fit ``model`` to every participant of ``data``.

    Parameters
    ----------
    data : DataFrame
        Long-format table (see :func:`~carkinetics.fitting.fit_individual`).
    model : str, default "piecewise"
        Registered model name (an unknown name raises at once, for every participant).
    endpoint : str, default "car_qpcr"
        An endpoint, ``"joint"`` (qPCR and flow together) or ``"each"`` (every kinetic
        endpoint of each participant, separately).
    method : {"m1", ..., "m7"}, default "m3"
        Censoring method.
    ids : sequence, optional
        Participants to fit, in this order (default: all, in order of appearance); an id
        without rows becomes a failure.
    start : mapping or DataFrame, optional
        Starting values: one mapping for everybody, or a DataFrame indexed by id with one
        column per parameter (NaN = data-based start).
    workers : int, default 1
        Worker processes (see :func:`carkinetics.parallel.map_units`); results are
        identical for any number.
    progress : bool, default True
        Show a progress bar.
    **options
        Passed to :func:`~carkinetics.fitting.fit_individual` (``observation``, ``bounds``,
        ``fixed``, ``n_starts``, ``profile``, ``ci_level``, ``max_iter``, ``max_nfev``).

    Returns
    -------
    FitResults

    Raises
    ------
    ModelSpecError
        Unknown model or method (before any fit).
    DataError
        ``data`` lacks ``id``, ``time`` or ``dv``.
    """
    t0 = time.perf_counter()
    mod = _model(model)
    meth = _method(method)
    from carkinetics.data.schema import CK_ENDPOINTS

    units = _units(data, endpoint, ids, CK_ENDPOINTS)
    kw = dict(options, model=mod, method=meth)
    tasks = [(pid, ep, g, dict(kw, start=start)) for pid, ep, g in units]
    out = map_units(_fit_unit, tasks, workers=workers, progress=progress,
                    desc=f"fit {mod.name}")
    fits, failures = [], []
    for (pid, ep, _g), r in zip(units, out, strict=True):
        if isinstance(r, UnitFailure):
            reason = r.message if r.error in ("DataError", "ModelSpecError") else (
                f"{r.message}\n{r.traceback}")
            failures.append(FitFailure(pid, ep, r.error, reason))
        else:
            fits.append(r)
    total = time.perf_counter() - t0
    per_fit = float(np.mean([f.timing for f in fits])) * 1e3 if fits else math.nan
    return FitResults(model=mod.name, endpoint=endpoint, method=meth, fits=tuple(fits),
                      failures=tuple(failures),
                      timing={"total_s": total, "per_fit_ms": per_fit, "workers": workers})


def model_comparison(fits: Iterable[FitResult] | Iterable[FitResults]) -> pd.DataFrame:
    """AIC, BIC and Akaike weights per participant across the models of ``fits``.

    Parameters
    ----------
    fits : iterable of FitResult or FitResults
        Fits of the same participants and rows under different models.

    Returns
    -------
    DataFrame
        One row per (id, endpoint, model): ``method, ofv, n_par, n_obs, aic, bic,
        delta_aic, aic_weight, delta_bic, bic_weight, converged, flags``, sorted by id and
        AIC. ``aic_weight = exp(-delta_aic / 2) / sum(...)`` within a participant.

    Raises
    ------
    ModelSpecError
        If a participant's fits differ in ``n_obs`` or censoring method (their likelihoods
        are then not comparable).
    """
    flat: list[FitResult] = []
    for f in fits:
        flat.extend(f.fits if isinstance(f, FitResults) else [f])
    rows = pd.DataFrame([{
        "id": f.id, "endpoint": f.endpoint, "model": f.model, "method": f.method,
        "ofv": f.ofv, "n_par": f.n_par, "n_obs": f.n_obs, "aic": f.aic, "bic": f.bic,
        "converged": f.converged, "flags": ";".join(f.flags)} for f in flat])
    if rows.empty:
        return rows
    out = []
    for key, g in rows.groupby(["id", "endpoint"], sort=False):
        if g["n_obs"].nunique() > 1 or g["method"].nunique() > 1:
            raise ModelSpecError(
                f"participant {key[0]!r} ({key[1]}): fits differ in n_obs "
                f"{sorted(g['n_obs'].unique())} or method {sorted(g['method'].unique())}; "
                "likelihoods are comparable only on the same rows and method.")
        g = g.copy()
        for crit in ("aic", "bic"):
            d = g[crit] - g[crit].min()
            w = np.exp(-0.5 * d)
            g[f"delta_{crit}"] = d
            g[f"{crit}_weight"] = w / w.sum()
        out.append(g.sort_values("aic", kind="stable"))
    cols = ["id", "endpoint", "model", "method", "ofv", "n_par", "n_obs", "aic", "bic",
            "delta_aic", "aic_weight", "delta_bic", "bic_weight", "converged", "flags"]
    return pd.concat(out, ignore_index=True)[cols]


def compare_models(data: pd.DataFrame, models: Sequence[str], **kwargs: Any) -> pd.DataFrame:
    """Fit each of ``models`` to every participant and compare them (:func:`model_comparison`).

    ``kwargs`` go to :func:`fit_individuals` (same endpoint, method and options for every
    model). Participants that fail under a model are left out of its rows.
    """
    if isinstance(models, str) or not models:
        raise ModelSpecError(f"Invalid models={models!r}; expected a sequence of model names.")
    return model_comparison([fit_individuals(data, m, **kwargs) for m in models])
