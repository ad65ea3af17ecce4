"""Selecting and checking the rows of one individual fit (internal)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.data.schema import ENDPOINTS
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting._problem import UnitData
from carkinetics.observation import Assay, ErrorModel, ObservationModel

__all__ = ["prepare_unit", "JOINT"]

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


def prepare_unit(data: pd.DataFrame, endpoint: str, observation: ObservationModel, *,
                 id: Any = None) -> tuple[UnitData, list[str]]:
    """Rows of one fit, sorted by endpoint and time, and notes about dropped rows.

    Pre-infusion rows (``time < 0``), ``mdv == 1`` rows and, in joint fits, assays without
    a quantified row are left out (and noted).

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
    if id is None:
        ids = pd.unique(data["id"])
        if len(ids) != 1:
            raise ModelSpecError(
                f"data hold {len(ids)} participants; pass id=... to fit one of them (or use "
                "fit_individuals for all).")
        id = ids[0]
    df = data if (data["id"] == id).all() else data[data["id"] == id]
    if df.empty:
        raise DataError(f"{_label(id)}: no rows in the data.", source="fit")
    n = len(df)
    default_ep = "car_qpcr" if endpoint == JOINT else endpoint
    ep = (df["endpoint"].to_numpy(dtype=object) if "endpoint" in df.columns
          else np.full(n, default_ep, dtype=object))
    cens = df["cens"].to_numpy() if "cens" in df.columns else np.zeros(n, dtype=np.int64)
    t = df["time"].to_numpy(dtype=float)
    dv = df["dv"].to_numpy(dtype=float)
    wanted = tuple(observation.endpoints) if endpoint == JOINT else (endpoint,)
    notes: list[str] = []
    keep = np.isin(ep, np.asarray(wanted, dtype=object))
    if "mdv" in df.columns:
        mdv = df["mdv"].to_numpy() == 1
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
    rows = df.iloc[idx].reset_index(drop=True)
    if "endpoint" not in rows.columns:
        rows["endpoint"] = default_ep
    if "cens" not in rows.columns:
        rows["cens"] = 0

    if endpoint == JOINT:
        ref = observation.reference if observation.reference in present else present[0]
        assays = {e: _assay_for(e, observation) for e in present}
        assays[ref] = replace(assays[ref], log_scale=0.0)
        obs = ObservationModel(assays, reference=ref)
    else:
        ref = endpoint
        obs = ObservationModel({endpoint: replace(_assay_for(endpoint, observation),
                                                  log_scale=0.0)}, reference=endpoint)
    dose = np.nan
    if "dose" in df.columns:
        d = pd.unique(df["dose"].to_numpy(dtype=float)[keep])
        d = d[np.isfinite(d)]
        if len(d) > 1:
            notes.append(f"several doses {sorted(map(float, d))}; the first is recorded.")
        if len(d):
            dose = float(d[0])
    unit = ENDPOINTS[ref].unit if ref in ENDPOINTS else ""
    if "unit" in df.columns:
        units = df["unit"].to_numpy(dtype=object)[idx][code[idx] == present.index(ref)]
        units = [u for u in units if isinstance(u, str) and u]
        unit = units[0] if units else unit
    return UnitData(id=id, endpoint=endpoint, endpoints=tuple(present), frame=rows,
                    observation=obs, dose=dose, n_predose=n_pre, level_unit=unit,
                    t=t[idx], dv=dv[idx], cens=np.asarray(cens[idx], dtype=np.int64),
                    assay=code[idx]), notes
