"""Serology: autoantibodies, complement and immunoglobulins by dose level and visit.

Autoantibodies (``ana``, ``anti_dsdna``, ``anti_ro_ssa``, ``rf``, ``anti_topo1``,
``anti_rnap3``) are positive when the value is **>= the positivity threshold**.
Seroconversion to negative: positive at baseline and negative at the visit. A value below
the assay's LLOQ (``cens == 1``, stored at the LLOQ) is negative when the LLOQ is at or
below the threshold, and undetermined (NA) otherwise.

The default thresholds, :data:`POSITIVITY_THRESHOLDS`, are **placeholders (I)**: cut-offs
are assay- and laboratory-specific and none was read in a source; pass the laboratory's.

====================  =========  ==========================================================
endpoint              threshold  note
====================  =========  ==========================================================
``ana``               80         titre 1:80 (reciprocal), the 2019 EULAR/ACR SLE entry
                                 criterion (I, recalled)
``anti_dsdna``        30 IU/mL   common ELISA cut-off (I)
``anti_ro_ssa``       20 U/mL    common ELISA cut-off (I)
``rf``                20 IU/mL   nephelometry/ELISA labs use 14-20 (I)
``anti_topo1``        20 U/mL    (I)
``anti_rnap3``        20 U/mL    (I)
====================  =========  ==========================================================

Complement and immunoglobulins (``c3``, ``c4``, ``igg``, ``iga``, ``igm``, g/L) are *low*
below the lower limit of normal, :data:`LOWER_LIMITS` (adult ranges of CLINICAL.md 3, R:
C3 0.9, C4 0.16 (RCPA), IgG 7.0, IgA 0.7, IgM 0.4 g/L). Low complement that becomes normal
is *normalised*; an immunoglobulin that becomes low is *newly low* (the laboratory side of
hypogammaglobulinaemia).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from carkinetics.endpoints.ae_tables import ALL, clopper_pearson

__all__ = ["AUTOANTIBODIES", "PROTEINS", "POSITIVITY_THRESHOLDS", "LOWER_LIMITS",
           "serology_flags", "serology_summary"]

AUTOANTIBODIES: tuple[str, ...] = ("ana", "anti_dsdna", "anti_ro_ssa", "rf", "anti_topo1",
                                   "anti_rnap3")
PROTEINS: tuple[str, ...] = ("c3", "c4", "igg", "iga", "igm")
#: Positivity threshold per autoantibody, in the endpoint's canonical unit (I, placeholders).
POSITIVITY_THRESHOLDS: dict[str, float] = {"ana": 80.0, "anti_dsdna": 30.0,
                                           "anti_ro_ssa": 20.0, "rf": 20.0,
                                           "anti_topo1": 20.0, "anti_rnap3": 20.0}
#: Lower limit of normal (g/L), CLINICAL.md 3 (R).
LOWER_LIMITS: dict[str, float] = {"c3": 0.9, "c4": 0.16, "igg": 7.0, "iga": 0.7, "igm": 0.4}


def _positive(value: pd.Series, cens: pd.Series, threshold: pd.Series) -> pd.Series:
    pos = (value >= threshold).astype("boolean")
    blq = cens == 1
    pos[blq] = pd.array(np.where(value[blq] <= threshold[blq], False, pd.NA),
                        dtype="boolean")
    pos[threshold.isna()] = pd.NA
    return pos


def _is(flags: pd.Series, value: bool) -> pd.Series:
    """Elementwise ``flags == value`` with NA as False."""
    return flags.eq(value).fillna(False).astype(bool)


def _where(mask: pd.Series, values: pd.Series) -> pd.Series:
    """``values`` where ``mask``, NA elsewhere (nullable boolean)."""
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[mask.to_numpy()] = values[mask.to_numpy()].astype("boolean")
    return out


def serology_flags(cfb: pd.DataFrame, *, thresholds: Mapping[str, float] | None = None,
                   lower_limits: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Add positivity, seroconversion and low-level flags to serology rows.

    Parameters
    ----------
    cfb : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.change_from_baseline`.
    thresholds : mapping, optional
        Positivity thresholds per autoantibody (default :data:`POSITIVITY_THRESHOLDS`;
        a mapping given replaces only the endpoints it names).
    lower_limits : mapping, optional
        Lower limits of normal per protein (default :data:`LOWER_LIMITS`, same merging).

    Returns
    -------
    pandas.DataFrame
        The serology rows of ``cfb`` plus ``positive``, ``baseline_positive``,
        ``seroconverted_negative`` (autoantibodies), ``low``, ``baseline_low``,
        ``normalised``, ``newly_low`` (proteins); nullable booleans, NA where the flag does
        not apply or is undetermined.
    """
    thr = {**POSITIVITY_THRESHOLDS, **(thresholds or {})}
    lln = {**LOWER_LIMITS, **(lower_limits or {})}
    df = cfb[cfb["endpoint"].isin((*AUTOANTIBODIES, *PROTEINS))].copy().reset_index(drop=True)
    ab = df["endpoint"].isin(AUTOANTIBODIES)
    limit = df["endpoint"].map(thr).where(ab).astype("float64")
    df["positive"] = _positive(df["value"], df["cens"], limit).where(ab, pd.NA)
    base = df[df["visit"] == "Day -1"].set_index(["id", "endpoint"])
    idx = pd.MultiIndex.from_frame(df[["id", "endpoint"]])
    df["baseline_positive"] = pd.array(base["positive"].reindex(idx).to_numpy(),
                                       dtype="boolean")
    df["seroconverted_negative"] = _where(ab & _is(df["baseline_positive"], True)
                                          & df["positive"].notna(), ~df["positive"])
    prot = df["endpoint"].isin(PROTEINS)
    low_at = df["endpoint"].map(lln).where(prot).astype("float64")
    low = pd.array(np.where(prot & low_at.notna(), df["value"] < low_at, pd.NA),
                   dtype="boolean")
    df["low"] = low
    base = df[df["visit"] == "Day -1"].set_index(["id", "endpoint"])
    df["baseline_low"] = pd.array(base["low"].reindex(idx).to_numpy(), dtype="boolean")
    known = df["low"].notna()
    df["normalised"] = _where(_is(df["baseline_low"], True) & known, ~df["low"])
    df["newly_low"] = _where(_is(df["baseline_low"], False) & known, df["low"])
    return df


_COUNTS = {"n_positive": "positive", "n_baseline_positive": "baseline_positive",
           "n_seroconverted": "seroconverted_negative", "n_low": "low",
           "n_baseline_low": "baseline_low", "n_normalised": "normalised",
           "n_newly_low": "newly_low"}


def serology_summary(flags: pd.DataFrame) -> pd.DataFrame:
    """Summarise serology by endpoint, dose level (and ``"All"``) and visit.

    Parameters
    ----------
    flags : pandas.DataFrame
        Output of :func:`serology_flags`.

    Returns
    -------
    pandas.DataFrame
        ``endpoint``, ``dose_level``, ``visit``, ``nominal_day``, ``n``, ``value_median``,
        ``change_median``, ``pct_change_median``, ``n_positive``, ``n_baseline_positive``
        and, among the baseline-positive participants assessed
        (``n_assessed_seroconversion``), ``n_seroconverted`` with ``pct_seroconverted`` and
        its exact 95% CI (``ci_low``, ``ci_high``); for proteins ``n_low``,
        ``n_baseline_low``, ``n_normalised``, ``n_newly_low``.
    """
    both = pd.concat([flags, flags.assign(dose_level=ALL)], ignore_index=True)
    both["dose_level"] = both["dose_level"].astype(object)
    for name, col in _COUNTS.items():
        both[name] = both[col].fillna(False).astype("int64")
    both["n_assessed_seroconversion"] = both["seroconverted_negative"].notna().astype("int64")
    keys = ["endpoint", "dose_level", "visit"]
    g = both.groupby(keys, sort=False)
    out = g.agg(nominal_day=("nominal_day", "first"), n=("value", "size"),
                value_median=("value", "median"), change_median=("change", "median"),
                pct_change_median=("pct_change", "median")).join(
        g[[*_COUNTS, "n_assessed_seroconversion"]].sum()).reset_index()
    k = out["n_seroconverted"].to_numpy()
    n = out["n_assessed_seroconversion"].to_numpy()
    lo, hi = clopper_pearson(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["pct_seroconverted"] = np.where(n > 0, 100.0 * k / np.maximum(n, 1), np.nan)
    out["ci_low"], out["ci_high"] = 100.0 * np.asarray(lo), 100.0 * np.asarray(hi)
    cols = [*keys, "nominal_day", "n", "value_median", "change_median", "pct_change_median",
            "n_positive", "n_baseline_positive", "n_seroconverted", "n_assessed_seroconversion",
            "pct_seroconverted", "ci_low", "ci_high", "n_low", "n_baseline_low",
            "n_normalised", "n_newly_low"]
    out = out[cols]
    if out.empty:
        return out
    out["_all"] = out["dose_level"].eq(ALL)
    out["_lvl"] = out["dose_level"].map(lambda v: -1 if v == ALL else v)
    return (out.sort_values(["endpoint", "_all", "_lvl", "nominal_day"], kind="stable")
            .drop(columns=["_all", "_lvl"]).reset_index(drop=True))
