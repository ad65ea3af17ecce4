"""Selecting and checking the rows of one individual fit (internal)."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.data.schema import ENDPOINTS
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting._problem import UnitData
from carkinetics.observation import Assay, ErrorModel, ObservationModel

__all__ = ["prepare_unit", "Columns", "JOINT"]

JOINT = "joint"
_NEEDED = ("id", "time", "dv")


def _label(pid: Any) -> str:
    return f"participant {pid!r}"


def _assay_for(endpoint: str, obs: ObservationModel) -> Assay:
    """The observation model's assay of ``endpoint`` or a log-additive default for it."""
    if endpoint in obs.assays:
        return obs.assays[endpoint]
    unit = ENDPOINTS[endpoint].unit if endpoint in ENDPOINTS else ""
    return Assay(endpoint, 0.0, error=ErrorModel("log_additive", unit=unit), sigma=0.5, unit=unit)


@functools.lru_cache(maxsize=64)
def _unit_observation(observation: ObservationModel, endpoint: str,
                      present: tuple[str, ...]) -> ObservationModel:
    """The observation model of a fit: the assays present, the reference's scale fixed at 0.

    Cached: every participant of a batch with the same assays shares one (frozen) model.
    """
    if endpoint == JOINT:
        ref = observation.reference if observation.reference in present else present[0]
        assays = {e: _assay_for(e, observation) for e in present}
        assays[ref] = replace(assays[ref], log_scale=0.0)
        return ObservationModel(assays, reference=ref)
    return ObservationModel({endpoint: replace(_assay_for(endpoint, observation),
                                               log_scale=0.0)}, reference=endpoint)


class Columns:
    """Columns of a long table as numpy arrays, converted once (shared by a batch)."""

    def __init__(self, data: pd.DataFrame) -> None:
        self.data = data
        self._names = frozenset(data.columns)
        self._cache: dict[str, np.ndarray] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def get(self, name: str, dtype: Any = None) -> np.ndarray:
        """Column ``name`` (object dtype for strings, float for ``dtype=float``)."""
        key = f"{name}:{dtype}"
        if key not in self._cache:
            self._cache[key] = self.data[name].to_numpy(dtype=dtype)
        return self._cache[key]


def prepare_unit(data: pd.DataFrame, endpoint: str, observation: ObservationModel, *,
                 id: Any = None, columns: Columns | None = None,
                 rows: np.ndarray | None = None) -> tuple[UnitData, list[str]]:
    """Rows of one fit, sorted by endpoint and time, and notes about dropped rows.

    Pre-infusion rows (``time < 0``), ``mdv == 1`` rows and, in joint fits, assays without
    a quantified row are left out (and noted). A batch passes the table's ``columns``
    (converted once) and the participant's ``rows`` (positions in ``data``).

    Raises
    ------
    DataError
        If a needed column is missing, the participant has no rows of the endpoint(s), or
        every remaining row is below the LLOQ.
    ModelSpecError
        If ``data`` holds several participants and ``id`` is not given.
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelSpecError(f"Invalid data of type {type(data).__name__}; expected a pandas "
                             "DataFrame in the long format (id, time, dv, ...).")
    missing = [c for c in _NEEDED if c not in data.columns]
    if missing:
        raise DataError([f"column {c!r} is missing." for c in missing], source="fit")
    cols = columns if columns is not None else Columns(data)
    if rows is None:
        all_ids = cols.get("id")
        if id is None:
            ids = pd.unique(all_ids)
            if len(ids) != 1:
                raise ModelSpecError(
                    f"data hold {len(ids)} participants; pass id=... to fit one of them (or "
                    "use fit_individuals for all).")
            id = ids[0]
        rows = np.flatnonzero(all_ids == id)
    if rows.size == 0:
        raise DataError(f"{_label(id)}: no rows in the data.", source="fit")
    n = rows.size
    default_ep = "car_qpcr" if endpoint == JOINT else endpoint
    ep = (cols.get("endpoint")[rows] if "endpoint" in cols
          else np.full(n, default_ep, dtype=object))
    cens = cols.get("cens")[rows] if "cens" in cols else np.zeros(n, dtype=np.int64)
    t = cols.get("time", float)[rows]
    dv = cols.get("dv", float)[rows]
    wanted = tuple(observation.endpoints) if endpoint == JOINT else (endpoint,)
    notes: list[str] = []
    keep = np.zeros(n, dtype=bool)
    for e in wanted:
        keep |= ep == e
    if "mdv" in cols:
        mdv = cols.get("mdv")[rows] == 1
        if np.any(keep & mdv):
            notes.append(f"{int(np.sum(keep & mdv))} row(s) with mdv == 1 left out.")
        keep &= ~mdv
    keep &= np.isfinite(dv)
    if not keep.any():
        have = sorted(map(str, pd.unique(ep)))
        raise DataError(f"{_label(id)}: no {' or '.join(wanted)} rows to fit (endpoints "
                        f"present: {have}).", source="fit")
    pre = keep & (t < 0)
    n_pre = int(pre.sum())
    keep &= ~pre
    if n_pre:
        notes.append(f"{n_pre} pre-infusion row(s) (time < 0) left out of the fit.")
    if not keep.any() or np.all(cens[keep] == 1):
        raise DataError(
            f"{_label(id)}: all {int(keep.sum())} post-infusion {' and '.join(wanted)} row(s) "
            "are below the LLOQ; there is nothing to fit (report the participant as "
            "non-quantifiable).", source="fit")
    present = [e for e in wanted if np.any(keep & (ep == e) & (cens == 0))]
    dropped = [e for e in wanted if e not in present and np.any(keep & (ep == e))]
    if dropped:
        notes.append(f"assay(s) {dropped} without a quantified row left out of the joint fit.")
    code = np.full(n, len(present))
    for i, e in enumerate(present):
        code[ep == e] = i
    keep &= code < len(present)
    idx = np.flatnonzero(keep)
    idx = idx[np.lexsort((t[idx], code[idx]))]
    obs = _unit_observation(observation, endpoint, tuple(present))
    ref = obs.reference
    dose = np.nan
    if "dose" in cols:
        d = cols.get("dose", float)[rows][keep]
        d = d[np.isfinite(d)]
        d = d[np.sort(np.unique(d, return_index=True)[1])]  # in order of appearance
        if len(d) > 1:
            notes.append(f"several doses {sorted(map(float, d))}; the first is recorded.")
        if len(d):
            dose = float(d[0])
    unit = ENDPOINTS[ref].unit if ref in ENDPOINTS else ""
    if "unit" in cols:
        units = cols.get("unit")[rows][idx][code[idx] == present.index(ref)]
        units = [u for u in units if isinstance(u, str) and u]
        unit = units[0] if units else unit
    return UnitData(id=id, endpoint=endpoint, endpoints=tuple(present), source=data,
                    index=rows[idx], columns=cols, observation=obs, dose=dose,
                    n_predose=n_pre, level_unit=unit,
                    t=t[idx], dv=dv[idx], cens=np.asarray(cens[idx], dtype=np.int64),
                    assay=code[idx]), notes
