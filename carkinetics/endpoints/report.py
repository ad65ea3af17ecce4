"""All safety and efficacy tables of a trial, and writing them to a folder.

What the inputs must contain:

* ``data``: the validated long table (:func:`carkinetics.data.read_data`) with ``id``,
  ``time`` (days since infusion), ``endpoint``, ``dv`` and ``dose_level`` or ``dose``.
  Clinical scores and laboratory values are rows of the long table: ``sjc28``,
  ``tjc28``, ``vas_pain``, ``vas_global``, ``haq_di``, ``esr``, ``crp`` (RA, DAS28, ACR),
  ``sledai2k``, ``pga``, ``bilag2004`` (SLE), the autoantibodies, ``c3``, ``c4`` and the
  immunoglobulins (serology), each with a pre-infusion baseline (time <= 0). CAR-T
  kinetic endpoints are ignored here.
* ``ae`` (optional): the adverse-event table (:func:`carkinetics.endpoints.validate_ae`).
* ``crs_obs`` / ``icans_obs`` (optional): daily observations to grade
  (:func:`carkinetics.endpoints.validate_crs_observations`,
  :func:`~carkinetics.endpoints.validate_icans_observations`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from carkinetics.data.schema import CK_ENDPOINTS
from carkinetics.endpoints.ae_tables import (
    ae_by_term,
    ae_summary,
    episodes_from_daily,
    max_grade_table,
    syndrome_episodes,
    syndrome_summary,
)
from carkinetics.endpoints.baseline import change_from_baseline, change_summary
from carkinetics.endpoints.crs import grade_crs_days
from carkinetics.endpoints.dlt import DEFAULT_DLT, DLTDefinition, dlt_flags
from carkinetics.endpoints.icans import grade_icans_days
from carkinetics.endpoints.inputs import AE_CATEGORIES, participants_from_data
from carkinetics.endpoints.responders import das28_scores, responder_table, responders
from carkinetics.endpoints.serology import serology_flags, serology_summary

__all__ = ["endpoint_tables", "write_endpoint_tables"]


def endpoint_tables(data: pd.DataFrame, ae: pd.DataFrame | None = None, *,
                    participants: pd.DataFrame | None = None,
                    dlt: DLTDefinition = DEFAULT_DLT,
                    crs_obs: pd.DataFrame | None = None,
                    icans_obs: pd.DataFrame | None = None,
                    window: float | Mapping[str, float] | None = None,
                    thresholds: Mapping[str, float] | None = None,
                    conf: float = 0.95) -> dict[str, pd.DataFrame]:
    """Compute every safety and efficacy table.

    Parameters
    ----------
    data : pandas.DataFrame
        Validated long table (see the module notes).
    ae : pandas.DataFrame, optional
        Validated adverse-event table; without it there are no safety tables.
    participants : pandas.DataFrame, optional
        Denominators and follow-up (default :func:`participants_from_data`).
    dlt : DLTDefinition, default DEFAULT_DLT
        DLT definition and window.
    crs_obs, icans_obs : pandas.DataFrame, optional
        Validated daily CRS / ICANS observations.
    window : float or mapping, optional
        Visit-window half-widths (days) for :func:`change_from_baseline`.
    thresholds : mapping, optional
        Autoantibody positivity thresholds (:func:`serology_flags`).
    conf : float, default 0.95
        Confidence level of the exact intervals.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``participants``; with ``ae``: ``ae_summary`` and ``ae_max_grade`` (all AEs, then
        each category present), ``ae_by_term``, ``crs_icans_episodes``,
        ``crs_icans_summary``, ``dlt``; with daily observations: ``crs_daily``,
        ``icans_daily``, ``daily_episodes``, ``daily_summary``; always
        ``change_from_baseline`` (including DAS28-ESR/CRP), ``change_summary``,
        ``responders``, ``responder_rates``, ``serology``, ``serology_summary``.
    """
    p = participants_from_data(data) if participants is None else participants
    out: dict[str, pd.DataFrame] = {"participants": p}
    if ae is not None:
        cats = [c for c in AE_CATEGORIES if (ae["category"] == c).any()]
        out["ae_summary"] = pd.concat(
            [ae_summary(ae, p, conf=conf)]
            + [ae_summary(ae, p, category=c, conf=conf) for c in cats], ignore_index=True)
        out["ae_by_term"] = ae_by_term(ae, p, conf=conf)
        out["ae_max_grade"] = pd.concat(
            [max_grade_table(ae, p, category=c, conf=conf) for c in (None, *cats)],
            ignore_index=True)
        episodes = syndrome_episodes(ae)
        out["crs_icans_episodes"] = episodes
        out["crs_icans_summary"] = syndrome_summary(episodes, p, conf=conf)
        out["dlt"] = dlt_flags(ae, p, dlt)
    daily = []
    if crs_obs is not None:
        out["crs_daily"] = grade_crs_days(crs_obs)
        daily.append(episodes_from_daily(out["crs_daily"], "crs"))
    if icans_obs is not None:
        out["icans_daily"] = grade_icans_days(icans_obs)
        daily.append(episodes_from_daily(out["icans_daily"], "icans"))
    if daily:
        out["daily_episodes"] = pd.concat(daily, ignore_index=True)
        out["daily_summary"] = syndrome_summary(out["daily_episodes"], p, conf=conf)
    eps = [e for e in data["endpoint"].dropna().unique() if e not in CK_ENDPOINTS] \
        if "endpoint" in data else []
    cfb = change_from_baseline(data, endpoints=eps, window=window)
    cfb_all = pd.concat([cfb, das28_scores(cfb)], ignore_index=True)
    out["change_from_baseline"] = cfb_all
    out["change_summary"] = change_summary(cfb_all)
    resp = responders(cfb)
    out["responders"] = resp
    out["responder_rates"] = responder_table(resp, conf=conf)
    flags = serology_flags(cfb, thresholds=thresholds)
    out["serology"] = flags
    out["serology_summary"] = serology_summary(flags)
    return out


def write_endpoint_tables(tables: Mapping[str, pd.DataFrame], out: str | os.PathLike, *,
                          figure: bool = True) -> dict[str, Path]:
    """Write each table as ``<name>.csv`` and the responder figure, atomically.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Output of :func:`endpoint_tables`.
    out : str or path-like
        Output folder (created if needed).
    figure : bool, default True
        Also draw ``responder_rates.png`` (responder rates by dose level and visit).

    Returns
    -------
    dict of str to Path
        Name -> file written.
    """
    from carkinetics._atomic import save_figure, write_table

    out = Path(out)
    paths = {name: write_table(df, out / f"{name}.csv") for name, df in tables.items()}
    rates = tables.get("responder_rates")
    if figure and rates is not None and len(rates):
        from carkinetics.plots.endpoints import responder_figure

        paths["responder_rates_figure"] = save_figure(responder_figure(rates),
                                                      out / "responder_rates.png")
    return paths
