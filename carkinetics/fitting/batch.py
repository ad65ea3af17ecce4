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
import os
import time
import traceback
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from carkinetics._validation import closest
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting._data import Columns
from carkinetics.fitting._jobs import job_fingerprint
from carkinetics.fitting.individual import (
    _method,
    _model,
    check_options,
    fit_setups,
    setup_fit,
)
from carkinetics.fitting.results import FitFailure, FitResult, FitResults
from carkinetics.parallel import UnitFailure, map_units

__all__ = ["fit_individuals", "compare_models", "model_comparison", "EACH"]

#: Options of :func:`fit_individuals` passed on to each fit.
_OPTIONS = ("observation", "bounds", "fixed", "n_starts", "profile", "ci_level", "max_iter",
            "max_nfev", "polish")

#: ``endpoint=EACH`` fits every kinetic endpoint of each participant separately.
EACH = "each"


#: Participants per task: they are stacked into one batched problem (results do not depend
#: on this number or on the number of workers; see ``individual.fit_setups``).
BLOCK = 32


def _fit_block(task: tuple[pd.DataFrame, list[tuple[Any, str, np.ndarray]], dict[str, Any]]
               ) -> list[Any]:
    """Worker: fit a block of participants, stacked; each entry a FitResult or a failure.

    A participant whose rows or options are invalid is a failure ``(error, message,
    traceback)``; the others are fitted together. Should the stacked fit itself raise, each
    participant is refitted alone so that only the one at fault fails.
    """
    data, items, kw = task
    kw = dict(kw)
    start = kw.pop("start", None)
    fit_kw = {k: kw.pop(k) for k in ("profile", "ci_level", "max_iter", "max_nfev", "polish")
              if k in kw}
    mod, meth = kw.pop("model"), kw.pop("method")
    columns = Columns(data)
    out: list[Any] = [None] * len(items)
    setups: dict[int, Any] = {}
    notes: dict[int, tuple[str, ...]] = {}
    for i, (pid, endpoint, rows) in enumerate(items):
        st = start
        if isinstance(st, pd.DataFrame):
            st = ({k: float(v) for k, v in st.loc[pid].items() if np.isfinite(v)}
                  if pid in st.index else None)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                setups[i] = setup_fit(data, mod, meth, id=pid, endpoint=endpoint, start=st,
                                      columns=columns, rows=rows, **kw)
            notes[i] = tuple(f"warning: {w.category.__name__}: {w.message}" for w in caught)
        except Exception as exc:  # noqa: BLE001  (recorded per participant, by contract)
            out[i] = (type(exc).__name__, str(exc), traceback.format_exc())
    groups: dict[tuple, list[int]] = {}
    for i, su in setups.items():
        groups.setdefault(su.prob.signature(), []).append(i)
    for members in groups.values():
        try:
            fits = _fit_group([setups[i] for i in members], fit_kw)
        except Exception:  # noqa: BLE001  (isolate the participant at fault)
            fits = []
            for i in members:
                try:
                    fits.append(_fit_group([setups[i]], fit_kw)[0])
                except Exception as exc:  # noqa: BLE001
                    fits.append((type(exc).__name__, str(exc), traceback.format_exc()))
        for i, f in zip(members, fits, strict=True):
            if isinstance(f, FitResult):
                f = dataclasses.replace(f, messages=f.messages + notes[i])
            out[i] = f
    return out


def _fit_group(setups: list[Any], fit_kw: dict[str, Any]) -> list[Any]:
    """Stacked fit of setups sharing a layout; warnings become messages of each fit."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fits = fit_setups(setups, keep_raw=False, **fit_kw)
    extra = tuple(f"warning (stacked fit): {w.category.__name__}: {w.message}" for w in caught)
    return [dataclasses.replace(f, messages=f.messages + extra) if extra else f for f in fits]


class _Tasks:
    """The block tasks, built lazily: each carries only its participants' rows of the table.

    A sequence (length known up front) whose items are made when the executor reads them, so
    a large table is not copied once per block all at once.
    """

    def __init__(self, data: pd.DataFrame, blocks: list[list[tuple[Any, str, np.ndarray]]],
                 kw: dict[str, Any]) -> None:
        self.data, self.blocks, self.kw = data, blocks, kw

    def __len__(self) -> int:
        return len(self.blocks)

    def __iter__(self):
        for b in self.blocks:
            rows = [r for _pid, _ep, r in b]
            take = np.unique(np.concatenate(rows)) if rows else np.zeros(0, np.int64)
            sub = self.data.iloc[take]
            items = [(pid, ep, np.searchsorted(take, r)) for pid, ep, r in b]
            yield sub, items, self.kw


def _fingerprint(data: pd.DataFrame, model: str, method: str, endpoint: str,
                 ids: Sequence[Any] | None, start: Any, options: Mapping[str, Any],
                 block: int) -> str:
    """SHA-256 identity of a batch (data, model, settings) for its resume store."""
    if isinstance(start, pd.DataFrame):
        start = (list(start.columns),
                 pd.util.hash_pandas_object(start).to_numpy().tobytes().hex())
    return job_fingerprint(data, model, method, endpoint, None if ids is None else list(ids),
                           start, sorted(options.items(), key=lambda kv: kv[0]), block)


def _units(data: pd.DataFrame, endpoint: str, ids: Sequence[Any] | None,
           kinetic: Sequence[str]) -> list[tuple[Any, str, np.ndarray]]:
    """``(id, endpoint, row positions)`` of every fit of the batch, in order."""
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"Invalid data of type {type(data).__name__}; expected a pandas "
                             "DataFrame in the long format.")
    missing = [c for c in ("id", "time", "dv") if c not in data.columns]
    if missing:
        raise DataError([f"column {c!r} is missing." for c in missing], source="fit")
    order = list(pd.unique(data["id"])) if ids is None else list(ids)
    positions = data.groupby("id", sort=False).indices
    eps = data["endpoint"].to_numpy(dtype=object) if "endpoint" in data.columns else None
    out = []
    none = np.zeros(0, dtype=np.int64)
    for pid in order:
        rows = positions.get(pid, none)
        if endpoint == EACH:
            have = [e for e in kinetic if eps is not None and np.any(eps[rows] == e)]
            out += [(pid, e, rows) for e in (have or [kinetic[0]])]
        else:
            out.append((pid, endpoint, rows))
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
    block: int = BLOCK,
    scheduler: Any = None,
    store: str | os.PathLike[str] | None = None,
    resume: bool = False,
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
        Parallel workers (see :func:`carkinetics.parallel.map_units`); results are
        identical for any number and any ``scheduler``.
    progress : bool, default True
        Show a progress bar (counting blocks).
    block : int, default 32
        Participants per stacked block (the unit of work sent to a worker, with only its
        own rows of ``data``); results do not depend on it.
    scheduler : str or distributed.Client, optional
        Backend of :func:`~carkinetics.parallel.map_units`: ``None`` (in process with one
        worker, else local processes), ``"processes"``, ``"in-process"``, ``"local-dask"``
        or ``"tcp://host:port"``.
    store : path-like, optional
        Resume store directory: each finished block is written there at once (see
        :func:`~carkinetics.parallel.map_units`).
    resume : bool, default False
        Reuse the blocks already in ``store`` (refused if the store was made from other
        data or settings) and fit only the others.
    **options
        Passed to :func:`~carkinetics.fitting.fit_individual` (``observation``, ``bounds``,
        ``fixed``, ``n_starts``, ``profile``, ``ci_level``, ``max_iter``, ``max_nfev``,
        ``polish``).

    Notes
    -----
    Participants are fitted in blocks of :data:`BLOCK`, stacked into one batched problem
    per block (one likelihood call per iteration for every start of every participant);
    each participant's estimates are those of :func:`fit_individual` on its own rows.

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
    unknown = [k for k in options if k not in _OPTIONS]
    if unknown:
        raise ModelSpecError(f"Unknown option {unknown[0]!r}; expected one of "
                             f"{sorted(_OPTIONS)}." + closest(unknown[0], sorted(_OPTIONS)))
    check_options(endpoint if endpoint != EACH else "joint", options.get("n_starts", 8),
                  options.get("ci_level", 0.95), options.get("polish", "auto"))
    kw = dict(options, model=mod, method=meth, start=start)
    kw.setdefault("n_starts", 8)
    if not (isinstance(block, int) and block >= 1):
        raise ModelSpecError(f"Invalid block={block!r}; expected an integer >= 1.")
    blocks = [units[i:i + block] for i in range(0, len(units), block)]
    fingerprint = None
    if store is not None:
        fingerprint = _fingerprint(data, mod.name, meth, endpoint, ids, start, options, block)
    run: dict[str, Any] = {}
    out_blocks = map_units(_fit_block, _Tasks(data, blocks, kw), workers=workers,
                           progress=progress, desc=f"fit {mod.name} ({block} per block)",
                           chunksize=1, scheduler=scheduler, store=store, resume=resume,
                           fingerprint=fingerprint, stats=run)
    fits, failures = [], []
    for block, res in zip(blocks, out_blocks, strict=True):
        if isinstance(res, UnitFailure):  # the block itself broke: every member fails
            res = [(res.error, res.message, res.traceback)] * len(block)
        for (pid, ep, _g), r in zip(block, res, strict=True):
            if isinstance(r, FitResult):
                fits.append(r)
            else:
                error, message, tb = r
                reason = message if error in ("DataError", "ModelSpecError") else (
                    f"{message}\n{tb}")
                failures.append(FitFailure(pid, ep, error, reason))
    total = time.perf_counter() - t0
    per_fit = float(np.mean([f.timing for f in fits])) * 1e3 if fits else math.nan
    return FitResults(model=mod.name, endpoint=endpoint, method=meth, fits=tuple(fits),
                      failures=tuple(failures),
                      timing={"total_s": total, "per_fit_ms": per_fit, "workers": workers,
                              "blocks_loaded": run.get("loaded", 0),
                              "blocks_computed": run.get("computed", 0)})


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
