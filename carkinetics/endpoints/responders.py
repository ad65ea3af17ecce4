"""Derived scores (DAS28) and responder flags per participant and visit, and their tables.

Inputs are the rows of :func:`carkinetics.endpoints.change_from_baseline`. Component
endpoints of the long data table (:data:`carkinetics.data.ENDPOINTS`):

* ACR core set: ``sjc28``, ``tjc28``, ``vas_pain``, ``vas_global`` (patient global),
  the physician global :data:`PHYSICIAN_GLOBAL_ENDPOINT` (``vas_physician``, mm; used when
  the data carry it; the vocabulary does not list it yet, so ACR is then decided on the 4
  other measures), ``haq_di``, ``esr``/``crp``. A missing non-joint component counts as
  not improved (I); SJC and TJC must be present at baseline and at the visit.
* DAS28: ``tjc28``, ``sjc28``, ``esr`` or ``crp``, ``vas_global`` (the patient global is
  used as the general-health VAS: das-score.nl accepts general health or global disease
  activity, S; without it the 3-variable formula is used; an ESR of 0 has no DAS28-ESR).
* SLE: ``sledai2k``, ``pga``, ``bilag2004`` (numeric score).

Measures (``measure`` column):

* ``acr20``, ``acr50``, ``acr70`` (:func:`carkinetics.endpoints.acr_response`);
* ``eular_good``, ``eular_moderate_or_good`` (DAS28-ESR, or DAS28-CRP without ESR);
* ``das28_remission`` (DAS28 < 2.6 at the visit; same DAS28 as EULAR);
* ``sledai_drop4`` (SLEDAI-2K decrease >= 4);
* ``sri4_bilag_numeric``: SLEDAI-2K decrease >= 4, PGA increase < 0.3 and a BILAG-2004
  numeric score no higher than at baseline. This is a **surrogate** of SRI-4 (I): the
  published "no new BILAG A, < 2 new B" needs organ-system grades, which the long table
  does not carry (use :func:`carkinetics.endpoints.sri4_response` with the grades);
  computed only where PGA and BILAG are present at baseline and the visit;
* ``haq_di_mcid`` (HAQ-DI decrease >= 0.22, the MCID; S).

Censored values (``cens != 0``) enter at their limit (e.g. a CRP below the LLOQ counts as
the LLOQ). Responder tables use the participants assessed at each visit as the
denominator (observed cases, no imputation).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd

from carkinetics.endpoints.ae_tables import ALL, incidence
from carkinetics.endpoints.baseline import BASELINE_VISIT
from carkinetics.endpoints.ra import acr_response, das28, eular_response
from carkinetics.endpoints.sle import PGA_WORSENING

__all__ = ["PHYSICIAN_GLOBAL_ENDPOINT", "ACR_ENDPOINTS", "RESPONDER_MEASURES", "das28_scores",
           "responders", "responder_table"]

PHYSICIAN_GLOBAL_ENDPOINT = "vas_physician"
#: acr_response key -> endpoint of the long table.
ACR_ENDPOINTS: dict[str, str] = {
    "sjc": "sjc28", "tjc": "tjc28", "pain": "vas_pain", "patient_global": "vas_global",
    "physician_global": PHYSICIAN_GLOBAL_ENDPOINT, "haq_di": "haq_di", "esr": "esr",
    "crp": "crp"}
RESPONDER_MEASURES: tuple[str, ...] = (
    "acr20", "acr50", "acr70", "eular_good", "eular_moderate_or_good", "das28_remission",
    "sledai_drop4", "sri4_bilag_numeric", "haq_di_mcid")
_HAQ_MCID = Fraction("0.22")
_KEYS = ["id", "visit"]


def _wide(cfb: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(values by id+visit, baselines by id, participant columns by id+visit)."""
    values = cfb.pivot_table(index=_KEYS, columns="endpoint", values="value", aggfunc="first")
    base = cfb[cfb["visit"] == BASELINE_VISIT].pivot_table(
        index="id", columns="endpoint", values="value", aggfunc="first")
    extra = [c for c in ("dose_level", "dose", "disease", "nominal_day") if c in cfb]
    info = cfb.groupby(_KEYS, sort=False)[extra].first()
    return values, base, info


def _get(row: pd.Series, key: str) -> float | None:
    v = row.get(key, np.nan)
    return None if pd.isna(v) else float(v)


def _das(row: pd.Series, acute: str) -> float:
    t, s, a = _get(row, "tjc28"), _get(row, "sjc28"), _get(row, acute)
    if t is None or s is None or a is None or (acute == "esr" and a <= 0):
        return np.nan
    return das28(t, s, **{acute: a}, patient_global=_get(row, "vas_global"))


def das28_scores(cfb: pd.DataFrame) -> pd.DataFrame:
    """Return DAS28-ESR and DAS28-CRP per participant and visit, in the layout of the input.

    Parameters
    ----------
    cfb : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.change_from_baseline`.

    Returns
    -------
    pandas.DataFrame
        Rows with ``endpoint`` ``"das28_esr"`` / ``"das28_crp"`` and the columns of the
        input (``cens`` 0, actual-day columns NaN), including baseline, change and percent
        change; empty if no participant has joint counts.
    """
    values, base, info = _wide(cfb)
    if "tjc28" not in values or "sjc28" not in values:
        return cfb.iloc[0:0].copy()
    frames = []
    for acute in ("esr", "crp"):
        if acute not in values:
            continue
        v = values.apply(_das, axis=1, acute=acute).rename("value")
        b = base.apply(_das, axis=1, acute=acute) if len(base) else pd.Series(dtype=float)
        df = pd.concat([info, v], axis=1).reset_index()
        df = df[df["value"].notna()]
        df["endpoint"] = f"das28_{acute}"
        df["baseline"] = df["id"].map(b)
        frames.append(df)
    if not frames:
        return cfb.iloc[0:0].copy()
    out = pd.concat(frames, ignore_index=True)
    out["cens"] = 0
    out["change"] = out["value"] - out["baseline"]
    out["pct_change"] = 100.0 * out["change"] / out["baseline"]
    for c in ("actual_day", "day_deviation", "baseline_day"):
        out[c] = np.nan
    return out[[c for c in cfb.columns if c in out]].sort_values(
        ["endpoint", "id", "nominal_day"], kind="stable", ignore_index=True)


def _acr(row: pd.Series, b: pd.Series) -> dict[str, bool] | None:
    if any(_get(x, "sjc28") is None or _get(x, "tjc28") is None for x in (row, b)):
        return None
    base = {k: _get(b, e) for k, e in ACR_ENDPOINTS.items()}
    now = {k: _get(row, e) for k, e in ACR_ENDPOINTS.items()}
    return acr_response(base, now, missing="not_improved")


def _sle(row: pd.Series, b: pd.Series) -> dict[str, bool]:
    out = {}
    s0, s1 = _get(b, "sledai2k"), _get(row, "sledai2k")
    if s0 is None or s1 is None:
        return out
    drop = s0 - s1 >= 4
    out["sledai_drop4"] = drop
    p0, p1, g0, g1 = (_get(b, "pga"), _get(row, "pga"), _get(b, "bilag2004"),
                      _get(row, "bilag2004"))
    if None not in (p0, p1, g0, g1):
        pga_ok = Fraction(repr(p1)) - Fraction(repr(p0)) < PGA_WORSENING
        out["sri4_bilag_numeric"] = bool(drop and pga_ok and g1 <= g0)
    return out


def responders(cfb: pd.DataFrame) -> pd.DataFrame:
    """Return responder flags per participant, post-baseline visit and measure.

    Parameters
    ----------
    cfb : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.change_from_baseline`.

    Returns
    -------
    pandas.DataFrame
        ``id``, ``dose_level``, ``dose``, ``disease`` (when present), ``visit``,
        ``nominal_day``, ``measure`` (one of :data:`RESPONDER_MEASURES`), ``responder``
        (bool); a measure appears only where it could be assessed.
    """
    das = das28_scores(cfb)
    values, base, info = _wide(cfb)
    dv = das.pivot_table(index=_KEYS, columns="endpoint", values="value", aggfunc="first") \
        if len(das) else pd.DataFrame(index=values.index)
    db = das.groupby(["id", "endpoint"])["baseline"].first().unstack() if len(das) \
        else pd.DataFrame()
    rows = []
    for (pid, visit), row in values.iterrows():
        if visit == BASELINE_VISIT or pid not in base.index:
            continue
        b = base.loc[pid]
        flags: dict[str, bool] = {}
        acr = _acr(row, b)
        if acr is not None:
            flags.update(acr)
        for name in ("das28_esr", "das28_crp"):
            now = dv[name].get((pid, visit), np.nan) if name in dv else np.nan
            before = db[name].get(pid, np.nan) if name in db else np.nan
            if pd.notna(now) and pd.notna(before):
                resp = eular_response(round(before, 10), round(now, 10))
                flags.update(eular_good=resp == "good",
                             eular_moderate_or_good=resp in ("good", "moderate"),
                             das28_remission=bool(now < 2.6))
                break
        flags.update(_sle(row, b))
        h0, h1 = _get(b, "haq_di"), _get(row, "haq_di")
        if h0 is not None and h1 is not None:
            flags["haq_di_mcid"] = Fraction(repr(h0)) - Fraction(repr(h1)) >= _HAQ_MCID
        for measure in RESPONDER_MEASURES:
            if measure in flags:
                rows.append({"id": pid, "visit": visit, "measure": measure,
                             "responder": bool(flags[measure])})
    out = pd.DataFrame(rows, columns=["id", "visit", "measure", "responder"])
    out = out.join(info, on=_KEYS)
    cols = ["id", *[c for c in ("dose_level", "dose", "disease") if c in out], "visit",
            "nominal_day", "measure", "responder"]
    out["_m"] = out["measure"].map({m: i for i, m in enumerate(RESPONDER_MEASURES)})
    return (out.sort_values(["_m", "id", "nominal_day"], kind="stable")[cols]
            .reset_index(drop=True))


def responder_table(resp: pd.DataFrame, *, conf: float = 0.95) -> pd.DataFrame:
    """Responder rates by measure, dose level (and ``"All"``) and visit, with exact CIs.

    Parameters
    ----------
    resp : pandas.DataFrame
        Output of :func:`responders`.
    conf : float, default 0.95
        Confidence level of the Clopper-Pearson intervals.

    Returns
    -------
    pandas.DataFrame
        ``measure``, ``dose_level``, ``visit``, ``nominal_day``, ``n`` (responders),
        ``N`` (assessed), ``pct``, ``ci_low``, ``ci_high``.
    """
    both = pd.concat([resp, resp.assign(dose_level=ALL)], ignore_index=True)
    both["dose_level"] = both["dose_level"].astype(object)
    g = both.groupby(["measure", "dose_level", "visit"], sort=False)
    agg = g.agg(nominal_day=("nominal_day", "first"), n_with=("responder", "sum"),
                N=("responder", "size")).reset_index()
    agg["_m"] = agg["measure"].map({m: i for i, m in enumerate(RESPONDER_MEASURES)})
    agg["_all"] = agg["dose_level"].eq(ALL)
    agg["_lvl"] = agg["dose_level"].map(lambda v: -1 if v == ALL else v)
    agg = agg.sort_values(["_m", "_all", "_lvl", "nominal_day"], kind="stable",
                          ignore_index=True)
    inc = incidence(agg["n_with"], agg["N"], conf)
    return pd.concat([agg[["measure", "dose_level", "visit", "nominal_day"]], inc], axis=1)
