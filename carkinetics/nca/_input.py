"""Input checks and sorted per-profile arrays for NCA (private).

A profile is one (id, endpoint). The table needs ``id``, ``time`` and ``dv``; ``endpoint``,
``unit``, ``cens``, ``mdv``, ``dose``, ``dose_level`` and ``disease`` are used when
present. Every problem is collected and raised at once as a
:class:`~carkinetics.exceptions.DataError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics._validation import closest
from carkinetics.data._report import Problems, fmt
from carkinetics.exceptions import DataError

__all__ = ["Profiles", "prepare", "match_points", "COVARIATES", "NO_ENDPOINT"]

#: Participant-level columns carried into the results (first value per profile).
COVARIATES: tuple[str, ...] = ("dose", "dose_level", "disease")
#: Endpoint name used when the table has no ``endpoint`` column.
NO_ENDPOINT = "dv"


@dataclass
class Profiles:
    """Post-dose samples sorted by profile and time, with one row per profile in ``groups``.

    ``g`` (profile index), ``t``, ``c`` (``dv``; the LLOQ on BLQ rows), ``cens`` and
    ``row`` (input row number) have one element per post-dose sample (``time >= 0``).
    """

    groups: pd.DataFrame
    g: NDArray
    t: NDArray
    c: NDArray
    cens: NDArray
    row: NDArray
    unit: NDArray

    @property
    def n(self) -> int:
        """Number of profiles."""
        return len(self.groups)


def _codes(values: pd.Series) -> tuple[NDArray, pd.Index]:
    try:
        codes, uniq = pd.factorize(values, sort=True)
    except TypeError:  # mixed types (e.g. 1 and "A"): order by their text
        codes, uniq = pd.factorize(values.astype(str), sort=True)
    return codes, pd.Index(uniq)


def prepare(data: pd.DataFrame, *, endpoint: str | Sequence[str] | None = None,
            conc_unit: str | None = None) -> Profiles:
    """Check ``data`` and return its post-dose samples as sorted arrays.

    Raises
    ------
    DataError
        Listing every problem (missing columns, bad numbers, negative concentrations,
        unknown censoring codes, duplicate times within a profile, mixed units).
    TypeError
        If ``data`` is not a DataFrame.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"Invalid data of type {type(data).__name__}; expected a pandas "
                        "DataFrame.")
    names = [str(c) for c in data.columns]
    missing = [c for c in ("id", "time", "dv") if c not in names]
    if missing:
        raise DataError([f"column {c!r} (required) is missing; fix: add it (or rename the "
                         f"column that holds it).{closest(c, names)}" for c in missing])
    df = data.reset_index(drop=True)
    if "mdv" in df:
        df = df[~(pd.to_numeric(df["mdv"], errors="coerce") == 1).to_numpy()]
    if endpoint is not None:
        wanted = [endpoint] if isinstance(endpoint, str) else list(endpoint)
        have = list(pd.unique(df["endpoint"])) if "endpoint" in df else [NO_ENDPOINT]
        absent = [e for e in wanted if e not in have]
        if absent:
            raise DataError([f"endpoint {e!r} is not in the data; fix: use one of "
                             f"{sorted(map(str, have))}.{closest(e, map(str, have))}"
                             for e in absent])
        if "endpoint" in df:
            df = df[df["endpoint"].isin(wanted).to_numpy()]
    rows = (pd.to_numeric(df["row"], errors="coerce").fillna(-1).astype(np.int64).to_numpy()
            if "row" in df else df.index.to_numpy() + 1)
    df = df.reset_index(drop=True)
    p = Problems(None, rows)
    t = _number(df, "time", p)
    c = _number(df, "dv", p)
    p.per_row(np.isfinite(c) & (c < 0), "dv", c, "is a negative concentration",
              "correct the value (a BLQ result is dv = lloq with cens = 1)")
    if "cens" in df:
        cens = pd.to_numeric(df["cens"], errors="coerce").fillna(0.0).to_numpy()
        bad = ~np.isin(cens, (0, 1, -1))
        p.per_row(bad, "cens", df["cens"].to_numpy(dtype=object), "is not a censoring code",
                  "use 0 (quantified), 1 (below LLOQ, dv = lloq) or -1 (above ULOQ)")
        cens = np.where(bad, 0, cens).astype(np.int64)
    else:
        cens = np.zeros(len(df), dtype=np.int64)
    p.per_row(df["id"].isna().to_numpy(), "id", df["id"].to_numpy(dtype=object), "",
              "fill in the participant id")
    if "endpoint" in df:
        ep = df["endpoint"]
        p.per_row(ep.isna().to_numpy(), "endpoint", ep.to_numpy(dtype=object), "",
                  "fill in the endpoint")
    else:
        ep = pd.Series(NO_ENDPOINT, index=df.index)
    unit = _units(df, ep, conc_unit, p)
    if p.lines:
        raise DataError(p.lines)
    id_code, ids = _codes(df["id"])
    ep_code, eps = _codes(ep)
    pair = id_code.astype(np.int64) * len(eps) + ep_code
    order = np.lexsort((t, pair))
    pair_u, g_all = np.unique(pair[order], return_inverse=True)
    _duplicates(g_all, t[order], rows[order], df, order, p)
    if p.lines:
        raise DataError(p.lines)
    first = np.r_[0, np.flatnonzero(np.diff(g_all)) + 1]
    groups = pd.DataFrame({"id": ids.take(pair_u // len(eps)),
                           "endpoint": eps.take(pair_u % len(eps))})
    src = order[first]
    for col in COVARIATES:
        if col in df:
            groups[col] = df[col].to_numpy()[src]
    post = t[order] >= 0
    sel = order[post]
    return Profiles(groups=groups, g=g_all[post], t=t[sel], c=c[sel], cens=cens[sel],
                    row=rows[sel], unit=unit[src])


def _number(df: pd.DataFrame, col: str, p: Problems) -> NDArray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
    text = raw.notna().to_numpy() & np.isnan(num)
    p.per_row(text, col, raw.to_numpy(dtype=object), "is not a number", "enter a number")
    p.per_row(raw.isna().to_numpy(), col, num, "", "enter a value, or remove the row")
    p.per_row(np.isinf(num), col, num, "is not finite", "enter a finite number")
    return num


def _units(df: pd.DataFrame, ep: pd.Series, conc_unit: str | None, p: Problems) -> NDArray:
    """Concentration unit of each row (one per endpoint; ``conc_unit`` overrides)."""
    if conc_unit is not None:
        return np.full(len(df), conc_unit, dtype=object)
    if "unit" not in df:
        return np.full(len(df), "", dtype=object)
    unit = df["unit"].astype(object).where(df["unit"].notna(), "")
    per_ep = pd.DataFrame({"ep": ep.astype(str), "unit": unit}).groupby("ep")["unit"].unique()
    for e, us in per_ep.items():
        if len(us) > 1:
            p.add(f"column 'unit': endpoint {e!r} has {len(us)} units {sorted(map(str, us))}; "
                  "fix: convert to one unit (carkinetics.data.to_canonical) before NCA.")
    return unit.to_numpy(dtype=object)


def _duplicates(g: NDArray, t: NDArray, rows: NDArray, df: pd.DataFrame, order: NDArray,
                p: Problems) -> None:
    dup = np.flatnonzero((np.diff(g) == 0) & (np.diff(t) == 0))
    if not dup.size:
        return
    # group runs of equal (profile, time)
    starts = dup[np.r_[True, np.diff(dup) > 1]]
    for s in starts[:50]:
        e = s + 1
        while e + 1 < g.size and g[e + 1] == g[s] and t[e + 1] == t[s]:
            e += 1
        i = order[s]
        ep = f", endpoint {fmt(df['endpoint'].iloc[i])}" if "endpoint" in df else ""
        p.add(f"rows {', '.join(map(str, rows[s:e + 1]))}: duplicate time {fmt(t[s])} for id "
              f"{fmt(df['id'].iloc[i])}{ep}; fix: remove the repeated sample or correct its "
              "time (NCA needs one concentration per time).")
    if starts.size > 50:
        p.add(f"... and {starts.size - 50} more duplicate times.")


def match_points(prof: Profiles, points: pd.DataFrame | None, name: str) -> NDArray:
    """Mark the samples listed in ``points`` (columns id, time and optionally endpoint).

    Raises
    ------
    DataError
        If a listed point is not a post-dose sample of the data.
    """
    mark = np.zeros(prof.t.size, dtype=bool)
    if points is None or len(points) == 0:
        return mark
    if not isinstance(points, pd.DataFrame) or not {"id", "time"} <= set(points.columns):
        raise TypeError(f"Invalid {name}: expected a DataFrame with columns id, time "
                        "(and endpoint when the data have several).")
    keys = ["id", "time"] + (["endpoint"] if "endpoint" in points else [])
    samples = pd.DataFrame({"id": prof.groups["id"].to_numpy()[prof.g], "time": prof.t,
                            "endpoint": prof.groups["endpoint"].to_numpy()[prof.g],
                            "_i": np.arange(prof.t.size)})
    want = points[keys].reset_index(drop=True).assign(n_=np.arange(len(points)))
    want["time"] = pd.to_numeric(want["time"], errors="coerce").astype(float)
    hit = want.merge(samples[keys + ["_i"]], on=keys, how="left")
    lost = hit[hit["_i"].isna()]
    if len(lost):
        raise DataError([f"{name} row {int(r.n_) + 1}: no post-dose sample with "
                         + ", ".join(f"{k} {fmt(getattr(r, k))}" for k in keys)
                         + "; fix: list times exactly as in the data." for r in lost.itertuples()])
    mark[hit["_i"].to_numpy(dtype=np.int64)] = True
    return mark
