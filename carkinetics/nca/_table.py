"""Parameter codes, units and the long and wide result tables (private)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["PARAMETERS", "CART_PARAMETERS", "unit_of", "interval_name", "Collector",
           "to_wide", "wide_names"]

#: CDISC PP test code -> (test name, unit kind).
PARAMETERS: dict[str, tuple[str, str]] = {
    "C0": ("Initial Conc (back-extrapolated)", "conc"),
    "CMAX": ("Max Conc", "conc"),
    "TMAX": ("Time of CMAX", "time"),
    "CLST": ("Last Nonzero Conc", "conc"),
    "TLST": ("Time of Last Nonzero Conc", "time"),
    "AUCLST": ("AUC to Last Nonzero Conc", "auc"),
    "AUCALL": ("AUC All", "auc"),
    "AUMCLST": ("AUMC to Last Nonzero Conc", "aumc"),
    "LAMZ": ("Lambda z", "rate"),
    "LAMZHL": ("Half-Life Lambda z", "time"),
    "LAMZNPT": ("Number of Points for Lambda z", "count"),
    "LAMZLL": ("Lambda z Lower Limit", "time"),
    "LAMZUL": ("Lambda z Upper Limit", "time"),
    "R2": ("R Squared", "none"),
    "R2ADJ": ("R Squared Adjusted", "none"),
    "CLSTP": ("Last Nonzero Conc Predicted", "conc"),
    "AUCIFO": ("AUC Infinity Obs", "auc"),
    "AUCIFP": ("AUC Infinity Pred", "auc"),
    "AUCPEO": ("AUC %Extrapolation Obs", "pct"),
    "AUCPEP": ("AUC %Extrapolation Pred", "pct"),
    "AUMCIFO": ("AUMC Infinity Obs", "aumc"),
    "AUCINT": ("AUC from T1 to T2", "auc"),
}
#: CAR-T parameters (not CDISC codes; eight characters at most, like CDISC's).
CART_PARAMETERS: dict[str, tuple[str, str]] = {
    "FOLDX": ("Fold expansion: Cmax / first post-infusion level (LLOQ if BLQ)", "none"),
    "KEXP": ("Expansion rate constant (log-linear, first quantified to Tmax)", "rate"),
    "TDOUB": ("Doubling time of the expansion phase", "time"),
    "KEXPNPT": ("Number of points for the expansion rate", "count"),
    "KEARLY": ("Early-decline rate constant (log-linear, Tmax to early_end)", "rate"),
    "HLEARLY": ("Early-decline half-life", "time"),
    "KEARLNPT": ("Number of points for the early-decline rate", "count"),
    "TFBLQ": ("Time of the first BLQ sample after Tmax", "time"),
}
ALL_PARAMETERS = {**PARAMETERS, **CART_PARAMETERS}


def unit_of(kind: str, conc: str, time: str) -> str:
    """Unit text of a parameter kind, e.g. ``"copies/ug*day"`` for an AUC."""
    if kind in ("none", "count"):
        return ""
    if kind == "pct":
        return "%"
    if kind == "time":
        return time
    if kind == "rate":
        return f"1/{time}"
    if not conc:
        return ""
    return {"conc": conc, "auc": f"{conc}*{time}", "aumc": f"{conc}*{time}^2"}[kind]


def interval_name(start: float, end: float) -> str:
    """Wide-table column of an AUC interval: ``AUCINT_0_28``."""
    return f"AUCINT_{start:g}_{end:g}"


class Collector:
    """Accumulates per-profile parameter columns, then builds the long table."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.cols: list[tuple[str, float, float, NDArray, NDArray, NDArray]] = []

    def add(self, code: str, values: NDArray, exclude: NDArray | None = None,
            note: NDArray | None = None, start: float = 0.0, end: float = np.inf) -> None:
        """Add one parameter; ``values`` NaN where ``exclude`` gives the reason."""
        values = np.asarray(values, dtype=float).copy()
        ex = np.full(self.n, "", dtype=object) if exclude is None else exclude.copy()
        nt = np.full(self.n, "", dtype=object) if note is None else note.copy()
        ex[(ex != "") & ~np.isnan(values)] = ""
        ex[(ex == "") & np.isnan(values)] = "not computed"
        values[ex != ""] = np.nan
        self.cols.append((code, start, end, values, ex, nt))

    def override(self, mask: NDArray, reason: NDArray) -> None:
        """Set every parameter of the masked profiles to NaN with ``reason``."""
        for _, _, _, values, ex, nt in self.cols:
            values[mask] = np.nan
            ex[mask] = reason[mask]
            nt[mask] = ""

    def long(self, groups: pd.DataFrame, conc_unit: NDArray, time_unit: str) -> pd.DataFrame:
        """The long table: one row per profile and parameter.

        Text columns other than ``id`` are categorical (few distinct values; fast).
        """
        p = len(self.cols)
        codes = [c[0] for c in self.cols]
        kinds = [ALL_PARAMETERS[c][1] for c in codes]
        ulist = list(pd.unique(pd.Series(conc_unit, dtype=object)))
        ucode = pd.Index(ulist).get_indexer(conc_unit) if self.n else np.zeros(0, np.int64)
        utab = [[unit_of(k, str(u), time_unit) for k in kinds] for u in ulist]
        ucats = list(pd.unique(pd.Series([x for row in utab for x in row] or [""])))
        umat = np.array([[ucats.index(x) for x in row] for row in utab], dtype=np.int64)
        rep = np.repeat(np.arange(self.n), p)
        pcodes = np.tile(np.arange(p), self.n)
        return pd.DataFrame({
            "id": groups["id"].take(rep).reset_index(drop=True),
            "endpoint": _cat(groups["endpoint"].to_numpy(dtype=object)[rep]),
            "start": np.tile([c[1] for c in self.cols], self.n),
            "end": np.tile([c[2] for c in self.cols], self.n),
            "PPTESTCD": _codes_cat(pcodes, codes),
            "PPTEST": _codes_cat(pcodes, [ALL_PARAMETERS[c][0] for c in codes]),
            "PPORRES": np.column_stack([c[3] for c in self.cols]).ravel() if p else [],
            "PPORRESU": pd.Categorical.from_codes(
                umat[ucode].ravel() if self.n else np.zeros(0, np.int64), ucats),
            "exclude": _cat(np.column_stack([c[4] for c in self.cols]).ravel()),
            "note": _cat(np.column_stack([c[5] for c in self.cols]).ravel()),
        })

    def wide(self, groups: pd.DataFrame) -> pd.DataFrame:
        """The wide table (values only) straight from the columns."""
        cols = {(interval_name(a, b) if code == "AUCINT" else code): v
                for code, a, b, v, _, _ in self.cols}
        return pd.concat([groups.reset_index(drop=True), pd.DataFrame(cols)], axis=1)


def _codes_cat(codes: NDArray, labels: list[str]) -> pd.Categorical:
    uniq = list(dict.fromkeys(labels))
    remap = np.array([uniq.index(x) for x in labels], dtype=np.int64)
    return pd.Categorical.from_codes(remap[codes] if codes.size else codes, uniq)


def _cat(values: NDArray) -> pd.Categorical:
    codes, uniq = pd.factorize(values)
    return pd.Categorical.from_codes(codes, [str(u) for u in uniq])


def wide_names(table: pd.DataFrame) -> NDArray:
    """Wide-table column of each long-table row (``AUCINT_a_b`` for intervals)."""
    col = table["PPTESTCD"].to_numpy(dtype=object).copy()
    m = col == "AUCINT"
    if m.any():
        iv = pd.MultiIndex.from_arrays([table["start"].to_numpy()[m], table["end"].to_numpy()[m]])
        uniq = iv.unique()
        label = np.array([interval_name(a, b) for a, b in uniq], dtype=object)
        col[m] = label[uniq.get_indexer(iv)]
    return col


def to_wide(table: pd.DataFrame, groups: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (id, endpoint), one column per parameter (AUCINT as ``AUCINT_a_b``).

    Parameters
    ----------
    table : DataFrame
        The long table (``NCAResult.table``).
    groups : DataFrame, optional
        Per-profile columns (id, endpoint, dose, ...) put first.

    Returns
    -------
    DataFrame
        Values only (NaN where excluded); column order follows the long table.
    """
    col = wide_names(table)
    names = list(pd.unique(col))
    key = table[["id", "endpoint"]]
    wide = pd.DataFrame({"_v": table["PPORRES"].to_numpy(), "_c": col,
                         "id": key["id"].to_numpy(), "endpoint": key["endpoint"].to_numpy()})
    out = wide.pivot(index=["id", "endpoint"], columns="_c", values="_v")
    out = out[names].reset_index()
    out.columns.name = None
    if groups is not None:
        out = groups.merge(out, on=["id", "endpoint"], how="left")
    return out
