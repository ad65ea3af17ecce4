"""Rheumatoid arthritis: DAS28 (ESR and CRP), EULAR response and ACR20/50/70.

DAS28 (das-score.nl, the Radboud DAS site; CLINICAL.md 4.5, R)::

    DAS28-ESR(4) = 0.56*sqrt(TJC28) + 0.28*sqrt(SJC28) + 0.70*ln(ESR) + 0.014*GH
    DAS28-ESR(3) = [0.56*sqrt(TJC28) + 0.28*sqrt(SJC28) + 0.70*ln(ESR)]*1.08 + 0.16
    DAS28-CRP(4) = 0.56*sqrt(TJC28) + 0.28*sqrt(SJC28) + 0.36*ln(CRP + 1) + 0.014*GH + 0.96
    DAS28-CRP(3) = [0.56*sqrt(TJC28) + 0.28*sqrt(SJC28) + 0.36*ln(CRP + 1)]*1.10 + 1.15

ESR in mm/h, **CRP in mg/L** (a CRP in mg/dL must be multiplied by 10 first; the data
table's ``crp`` is in mg/L), GH = patient global health on a 0-100 mm VAS (a VAS in cm is
multiplied by 10). Disease activity (R): remission < 2.6, low < 3.2, moderate 3.2-5.1,
high > 5.1.

EULAR response (S: ARD response-criteria table; MDCalc): good = improvement > 1.2 and
present DAS28 <= 3.2; none = improvement <= 0.6, or improvement <= 1.2 with present DAS28
> 5.1; moderate otherwise.

ACR20/50/70 (Felson 1995; CLINICAL.md 4.4, R/S): >= x% improvement in both tender and
swollen joint counts and in >= 3 of the 5 other core-set measures (patient pain, patient
global, physician global, HAQ-DI, one acute-phase reactant: ESR or CRP). ">= x%
improvement" means ``followup / baseline <= 1 - x/100``; it is decided in exact rational
arithmetic on the decimals as recorded (:func:`carkinetics.endpoints._checks.exact`), so a
fall from 10 to 8 (exactly 20%) counts and 19.9% does not. A component with baseline 0
cannot improve and counts as not improved (I).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

from carkinetics.endpoints._checks import EndpointError, count, exact, is_missing, number, option

__all__ = [
    "ACR_COMPONENTS",
    "ACR_LEVELS",
    "das28",
    "das28_category",
    "eular_response",
    "improved",
    "acr_response",
]

#: Core-set keys of :func:`acr_response` (``esr`` and ``crp`` are the alternatives).
ACR_COMPONENTS: tuple[str, ...] = ("sjc", "tjc", "pain", "patient_global", "physician_global",
                                   "haq_di", "esr", "crp")
ACR_LEVELS: tuple[int, ...] = (20, 50, 70)
_OTHERS = ("pain", "patient_global", "physician_global", "haq_di")


def das28(tjc28: int, sjc28: int, esr: float | None = None, crp: float | None = None,
          patient_global: float | None = None) -> float:
    """Return the DAS28 (ESR or CRP version; 4 variables, or 3 without the patient global).

    Parameters
    ----------
    tjc28 : int
        Tender joint count of the 28 joints (0-28).
    sjc28 : int
        Swollen joint count (0-28).
    esr : float, optional
        Erythrocyte sedimentation rate (mm/h, > 0): DAS28-ESR.
    crp : float, optional
        C-reactive protein (**mg/L**, >= 0): DAS28-CRP. Give exactly one of esr and crp.
    patient_global : float, optional
        Patient global health (0-100 mm VAS). Without it the 3-variable formula is used.

    Returns
    -------
    float
        The DAS28, not rounded (the DAS site reports 2 decimals).

    Raises
    ------
    EndpointError
        For counts outside 0-28, ESR <= 0, CRP < 0, a VAS outside 0-100, or not exactly one
        of esr and crp.

    Examples
    --------
    >>> round(das28(4, 9, esr=25, patient_global=50), 4)  # 1.12 + 0.84 + 0.7 ln 25 + 0.7
    4.9132
    >>> das28(0, 0, crp=0, patient_global=0)  # the DAS28-CRP(4) minimum
    0.96
    """
    t = count("tjc28", tjc28, hi=28, what="tender joints of 28")
    s = count("sjc28", sjc28, hi=28, what="swollen joints of 28")
    if (esr is None) == (crp is None):
        raise EndpointError(f"Invalid esr={esr!r}, crp={crp!r}; expected exactly one of them "
                            "(DAS28-ESR or DAS28-CRP; the two are not interchangeable).")
    joints = 0.56 * math.sqrt(t) + 0.28 * math.sqrt(s)
    gh = None if patient_global is None else number("patient_global", patient_global, lo=0,
                                                    hi=100, unit="mm")
    if esr is not None:
        base = joints + 0.70 * math.log(number("esr", esr, lo=0, lo_open=True, unit="mm/h"))
        return base * 1.08 + 0.16 if gh is None else base + 0.014 * gh
    base = joints + 0.36 * math.log(number("crp", crp, lo=0, unit="mg/L") + 1.0)
    return base * 1.10 + 1.15 if gh is None else base + 0.014 * gh + 0.96


def das28_category(value: float) -> str:
    """Return the DAS28 disease-activity category.

    Parameters
    ----------
    value : float
        A DAS28.

    Returns
    -------
    str
        ``"remission"`` (< 2.6), ``"low"`` (2.6 to < 3.2), ``"moderate"`` (3.2-5.1) or
        ``"high"`` (> 5.1).

    Examples
    --------
    >>> das28_category(3.2), das28_category(5.1), das28_category(5.11)
    ('moderate', 'moderate', 'high')
    """
    v = exact(number("value", value, lo=0))
    if v < Fraction("2.6"):
        return "remission"
    if v < Fraction("3.2"):
        return "low"
    return "moderate" if v <= Fraction("5.1") else "high"


def eular_response(baseline: float, followup: float) -> str:
    """Return the EULAR response from the baseline and present DAS28.

    Parameters
    ----------
    baseline : float
        DAS28 at baseline.
    followup : float
        Present DAS28 (same version as the baseline).

    Returns
    -------
    str
        ``"good"``, ``"moderate"`` or ``"none"``. The improvement ``baseline - followup``
        is computed exactly on the decimals as given (4.7 - 3.5 is exactly 1.2).

    Examples
    --------
    >>> eular_response(4.7, 3.5), eular_response(4.8, 3.2), eular_response(6.3, 5.2)
    ('moderate', 'good', 'none')
    """
    b = exact(number("baseline", baseline, lo=0))
    f = exact(number("followup", followup, lo=0))
    gain = b - f
    if gain <= Fraction("0.6"):
        return "none"
    if gain > Fraction("1.2") and f <= Fraction("3.2"):
        return "good"
    if gain <= Fraction("1.2") and f > Fraction("5.1"):
        return "none"
    return "moderate"


def improved(baseline: float, followup: float, percent: float) -> bool:
    """Return True if ``followup`` is at least ``percent`` % lower than ``baseline``.

    Decided exactly: ``followup * 100 <= baseline * (100 - percent)`` on the decimals as
    given. A baseline of 0 cannot improve (False).

    Examples
    --------
    >>> improved(10, 8, 20), improved(10, 8.01, 20), improved(0, 0, 20)
    (True, False, False)
    """
    b = exact(number("baseline", baseline, lo=0))
    f = exact(number("followup", followup, lo=0))
    pct = exact(number("percent", percent, lo=0, hi=100, lo_open=True))
    return b > 0 and f * 100 <= b * (100 - pct)


def _component(where: str, values: Mapping, key: str):
    v = values.get(key)
    if is_missing(v):
        return None
    return number(f"{where}[{key!r}]", v, lo=0)


def acr_response(baseline: Mapping, followup: Mapping, *, acute_phase: str = "auto",
                 missing: str = "raise") -> dict[str, bool]:
    """Return ACR20, ACR50 and ACR70 responses.

    Parameters
    ----------
    baseline, followup : mapping
        Core-set values with keys ``sjc``, ``tjc`` (joint counts), ``pain``,
        ``patient_global``, ``physician_global`` (VAS, any one scale per key),
        ``haq_di`` (0-3) and ``esr`` (mm/h) and/or ``crp`` (mg/L). None or NaN = missing.
    acute_phase : {"auto", "esr", "crp"}, default "auto"
        The acute-phase reactant: ``"auto"`` uses ESR when both mappings have it (the
        protocol's visit grid lists ESR), otherwise CRP.
    missing : {"raise", "not_improved"}, default "raise"
        A missing component raises, or counts as not improved (I: a conservative
        convention; with SJC or TJC missing there is then no response).

    Returns
    -------
    dict
        ``{"acr20": bool, "acr50": bool, "acr70": bool}``.

    Raises
    ------
    EndpointError
        For unknown keys ("Did you mean ..."), negative values, or (``missing="raise"``) a
        missing component.

    Examples
    --------
    >>> b = dict(sjc=10, tjc=10, pain=50, patient_global=50, physician_global=50,
    ...          haq_di=1.5, esr=40)
    >>> f = dict(sjc=8, tjc=8, pain=40, patient_global=40, physician_global=45,
    ...          haq_di=1.5, esr=32)
    >>> acr_response(b, f)
    {'acr20': True, 'acr50': False, 'acr70': False}
    """
    option("acute_phase", acute_phase, ("auto", "esr", "crp"))
    option("missing", missing, ("raise", "not_improved"))
    for where, values in (("baseline", baseline), ("followup", followup)):
        if not isinstance(values, Mapping):
            raise EndpointError(f"Invalid {where} of type {type(values).__name__}; expected a "
                                f"mapping with keys {list(ACR_COMPONENTS)}.")
        for key in values:
            option(f"{where} key", key, ACR_COMPONENTS)
    if acute_phase == "auto":
        both = all(not is_missing(m.get("esr")) for m in (baseline, followup))
        acute_phase = "esr" if both else "crp"
    keys = ("sjc", "tjc", *_OTHERS, acute_phase)
    pairs = {}
    for key in keys:
        b, f = _component("baseline", baseline, key), _component("followup", followup, key)
        if (b is None or f is None) and missing == "raise":
            raise EndpointError(
                f"Invalid baseline/followup: component {key!r} is missing (baseline={b!r}, "
                f"followup={f!r}); expected all of {list(keys)}, or pass "
                "missing='not_improved'.")
        pairs[key] = (b, f)

    def ok(key: str, pct: int) -> bool:
        b, f = pairs[key]
        return b is not None and f is not None and improved(b, f, pct)

    out = {}
    for level in ACR_LEVELS:
        n_other = sum(ok(k, level) for k in (*_OTHERS, acute_phase))
        out[f"acr{level}"] = bool(ok("sjc", level) and ok("tjc", level) and n_other >= 3)
    return out
