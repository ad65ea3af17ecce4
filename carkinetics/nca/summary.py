"""NCA summaries by dose level (and disease) and the power-model dose-proportionality test.

Summary statistics per group, endpoint and parameter: ``n`` (reported values),
``n_missing``, geometric mean and geometric CV% (``100 sqrt(exp(s^2) - 1)``, ``s`` the SD
of the logs; positive values only), arithmetic mean and SD, median, min and max, and for
exposure parameters (concentrations and areas) the geometric mean of the dose-normalised
value (value / dose, ``dn_geomean``).

Dose proportionality: the power model ``log(P) = a + b log(dose)`` fitted by ordinary
least squares over participants; ``b`` with its ``level`` (default 90%) t-interval. ``b = 1``
is proportionality. With the dose ratio ``r = max dose / min dose``, the interval is also
compared with Smith et al. (2000)'s criterion ``(1 + ln(0.8)/ln r, 1 + ln(1.25)/ln r)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from carkinetics.nca._table import ALL_PARAMETERS, wide_names

__all__ = ["summarize_nca", "dose_proportionality", "DEFAULT_SUMMARY"]

#: Parameters summarised by default (those present in the result).
DEFAULT_SUMMARY: tuple[str, ...] = ("CMAX", "TMAX", "AUCINT_0_28", "AUCINT_0_84", "AUCLST",
                                    "AUCIFO", "CLST", "TLST", "LAMZHL", "FOLDX", "TDOUB",
                                    "HLEARLY", "TFBLQ")
_EXPOSURE = ("conc", "auc", "aumc")


def _wide(result) -> pd.DataFrame:
    if hasattr(result, "to_wide"):
        return result.to_wide()
    if isinstance(result, pd.DataFrame):
        return result
    raise TypeError(f"Invalid result of type {type(result).__name__}; expected an NCAResult "
                    "or its wide table.")


def _kind(name: str) -> str:
    return "auc" if name.startswith("AUCINT_") else ALL_PARAMETERS.get(name, ("", "none"))[1]


def summarize_nca(result, *, by: Sequence[str] = ("dose_level",),
                  parameters: Sequence[str] | None = None, dose: str = "dose",
                  dose_unit: str | None = None) -> pd.DataFrame:
    """Summary statistics of NCA parameters by group and endpoint.

    Parameters
    ----------
    result : NCAResult or DataFrame
        The result of :func:`carkinetics.nca.nca`, or its wide table.
    by : sequence of str, default ("dose_level",)
        Grouping columns, e.g. ``("dose_level", "disease")``; columns missing from the
        table are skipped (no grouping at all gives one overall group per endpoint).
    parameters : sequence of str, optional
        Wide-table columns to summarise; default :data:`DEFAULT_SUMMARY` (those present).
    dose : str, default "dose"
        Dose column for dose-normalised geometric means.
    dose_unit : str, optional
        Unit of the dose, for ``dn_unit`` (e.g. ``"cells/kg"``); default ``"dose"``.

    Returns
    -------
    DataFrame
        One row per (group, endpoint, parameter): the group columns, ``endpoint``,
        ``parameter``, ``unit``, ``dose`` (median, when not grouped by it), ``n``,
        ``n_missing``, ``geomean``, ``geocv_pct``, ``mean``, ``sd``, ``median``, ``min``,
        ``max``, ``dn_geomean``, ``dn_unit``.
    """
    wide = _wide(result)
    by = [b for b in by if b in wide]
    params = [p for p in (parameters or DEFAULT_SUMMARY) if p in wide]
    if parameters is not None:
        absent = [p for p in parameters if p not in wide]
        if absent:
            raise ValueError(f"Invalid parameters {absent}; not columns of the NCA table "
                             f"(have {[c for c in wide.columns if c.isupper() or '_' in c]}).")
    keys = [*by, "endpoint"]
    has_dose = dose in wide
    units = _units(result)
    long = wide.melt(id_vars=keys + ([dose] if has_dose and dose not in keys else []),
                     value_vars=params, var_name="parameter", value_name="value")
    v = long["value"].astype(float)
    pos = v.where(v > 0)
    long["_log"] = np.log(pos)
    rows = []
    for key, grp in long.groupby([*keys, "parameter"], sort=True, dropna=False):
        val = grp["value"].astype(float)
        lv = grp["_log"].dropna()
        s = float(lv.std(ddof=1)) if len(lv) > 1 else np.nan
        rec = dict(zip([*keys, "parameter"], key, strict=True))
        name = rec["parameter"]
        unit = units.get((rec["endpoint"], name), "")
        rec.update(unit=unit)
        if has_dose and dose not in keys:
            rec[dose] = float(grp[dose].median())
        rec.update(n=int(val.notna().sum()), n_missing=int(val.isna().sum()),
                   geomean=float(np.exp(lv.mean())) if len(lv) else np.nan,
                   geocv_pct=float(100 * np.sqrt(np.expm1(s * s))) if len(lv) > 1 else np.nan,
                   mean=float(val.mean()), sd=float(val.std(ddof=1)),
                   median=float(val.median()), min=float(val.min()), max=float(val.max()))
        if has_dose and _kind(name) in _EXPOSURE:
            d = grp[dose].astype(float)
            ok = (val > 0) & (d > 0)
            rec["dn_geomean"] = float(np.exp(np.mean(np.log(val[ok] / d[ok])))) if ok.any() \
                else np.nan
            rec["dn_unit"] = f"({unit})/({dose_unit or 'dose'})" if unit else ""
        else:
            rec["dn_geomean"], rec["dn_unit"] = np.nan, ""
        rows.append(rec)
    table = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(params)}
    if len(table):
        table = table.sort_values([*keys, "parameter"], key=lambda s: s.map(order)
                                  if s.name == "parameter" else s, kind="stable")
    return table.reset_index(drop=True)


def _units(result) -> dict[tuple[str, str], str]:
    """(endpoint, wide column) -> unit, from the long table when there is one."""
    table = getattr(result, "table", None)
    if table is None:
        return {}
    u = pd.DataFrame({"e": table["endpoint"], "p": wide_names(table), "u": table["PPORRESU"]})
    u = u.drop_duplicates(["e", "p"])
    return {(e, p): x for e, p, x in zip(u["e"], u["p"], u["u"], strict=True)}


def dose_proportionality(result, *, parameters: Sequence[str] = ("CMAX", "AUCINT_0_28"),
                         dose: str = "dose", level: float = 0.90,
                         theta: tuple[float, float] = (0.8, 1.25)) -> pd.DataFrame:
    """Power-model dose proportionality: ``log(P) = a + b log(dose)`` per endpoint.

    Parameters
    ----------
    result : NCAResult or DataFrame
        The NCA result or its wide table (needs a ``dose`` column).
    parameters : sequence of str, default ("CMAX", "AUCINT_0_28")
        Wide-table columns to test.
    dose : str, default "dose"
        Dose column.
    level : float, default 0.90
        Confidence level of the interval of ``b``.
    theta : (float, float), default (0.8, 1.25)
        Equivalence limits of Smith et al.'s criterion.

    Returns
    -------
    DataFrame
        One row per (endpoint, parameter): ``n``, ``n_doses``, ``a``, ``b``, ``se_b``,
        ``ci_low``, ``ci_high``, ``level``, ``r2``, ``dose_ratio``, ``smith_low``,
        ``smith_high``, ``contains_1`` and ``proportional`` (interval inside Smith's
        limits). NaN where fewer than 3 participants or 2 doses have positive values.

    Examples
    --------
    >>> w = pd.DataFrame({"endpoint": "x", "dose": [1, 1, 2, 2, 4, 4.0],
    ...                   "CMAX": [1.0, 1.1, 2.1, 1.9, 4.2, 3.8]})
    >>> r = dose_proportionality(w, parameters=["CMAX"])
    >>> round(float(r["b"].iloc[0]), 2), bool(r["contains_1"].iloc[0])
    (0.96, True)
    """
    if not 0 < level < 1:
        raise ValueError(f"Invalid level={level!r}; expected a number in (0, 1).")
    wide = _wide(result)
    if dose not in wide:
        raise ValueError(f"Invalid dose={dose!r}: the NCA table has no such column (the data "
                         "need a dose column).")
    absent = [p for p in parameters if p not in wide]
    if absent:
        raise ValueError(f"Invalid parameters {absent}; not columns of the NCA table.")
    if "endpoint" not in wide:
        wide = wide.assign(endpoint="dv")
    rows = []
    for ep, grp in wide.groupby("endpoint", sort=True):
        for p in parameters:
            y, x = grp[p].astype(float).to_numpy(), grp[dose].astype(float).to_numpy()
            ok = (y > 0) & (x > 0) & np.isfinite(y) & np.isfinite(x)
            rows.append({"endpoint": ep, "parameter": p,
                         **_power_fit(np.log(x[ok]), np.log(y[ok]), level, theta)})
    return pd.DataFrame(rows)


def _power_fit(lx, ly, level, theta) -> dict:
    from scipy import stats

    n, nd = lx.size, np.unique(lx).size
    rec = {"n": n, "n_doses": nd}
    names = ("a", "b", "se_b", "ci_low", "ci_high", "r2", "dose_ratio", "smith_low",
             "smith_high")
    if n < 3 or nd < 2:
        return {**rec, **dict.fromkeys(names, np.nan), "level": level, "contains_1": False,
                "proportional": False}
    xbar, ybar = lx.mean(), ly.mean()
    sxx = np.sum((lx - xbar) ** 2)
    b = np.sum((lx - xbar) * (ly - ybar)) / sxx
    a = ybar - b * xbar
    resid = ly - a - b * lx
    s2 = np.sum(resid**2) / (n - 2)
    se = float(np.sqrt(s2 / sxx))
    q = stats.t.ppf(0.5 + level / 2, n - 2)
    syy = np.sum((ly - ybar) ** 2)
    r = float(np.exp(lx.max() - lx.min()))
    lo, hi = 1 + np.log(theta[0]) / np.log(r), 1 + np.log(theta[1]) / np.log(r)
    ci = (b - q * se, b + q * se)
    return {**rec, "a": float(a), "b": float(b), "se_b": se, "ci_low": float(ci[0]),
            "ci_high": float(ci[1]), "level": level,
            "r2": float(1 - np.sum(resid**2) / syy) if syy > 0 else np.nan,
            "dose_ratio": r, "smith_low": float(lo), "smith_high": float(hi),
            "contains_1": bool(ci[0] <= 1 <= ci[1]),
            "proportional": bool(lo <= ci[0] and ci[1] <= hi)}
