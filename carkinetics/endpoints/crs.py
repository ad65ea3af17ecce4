"""ASTCT 2019 cytokine release syndrome (CRS) grading.

Source: Lee DW et al., "ASTCT consensus grading for cytokine release syndrome and
neurologic toxicity associated with immune effector cells", Biol Blood Marrow Transplant
2019;25:625-638, table (CLINICAL.md 4.1, confidence R):

=====  =========================  ==================================  ==========================
grade  fever (>= 38.0 C)          hypotension                         and/or hypoxia
=====  =========================  ==================================  ==========================
1      yes                        none                                none
2      yes                        not requiring vasopressors          low-flow nasal cannula
                                  (``"fluids"``)                      (<= 6 L/min) or blow-by
3      yes                        one vasopressor, with or without    high-flow nasal cannula
                                  vasopressin                         (> 6 L/min), facemask,
                                                                      non-rebreather or Venturi
4      yes                        multiple vasopressors (excluding    positive pressure (CPAP,
                                  vasopressin)                        BiPAP, intubation and
                                                                      mechanical ventilation)
=====  =========================  ==================================  ==========================

Rules implemented:

* the grade is the **more severe** of the hypotension and hypoxia criteria (fever + one
  vasopressor + low-flow oxygen is grade 3);
* fever must not be attributable to another cause (the caller decides; only fever that
  counts should be passed);
* **masked fever**: "in patients who have CRS then receive antipyretic or anticytokine
  therapy (tocilizumab, steroids), fever is no longer required to grade subsequent CRS
  severity; grading is driven by hypotension and/or hypoxia" (consensus footnote, R; the
  "have CRS then receive" wording is read in the JITC and PMC8021214 reproductions of the
  table). :func:`crs_grade_daily` takes ``fever_masked``; :func:`grade_crs_days` decides it
  from the daily record (therapy given on or after the first febrile day).
* grade 5 is death due to CRS (I: standard convention, not read in the table excerpts).
* organ toxicities are graded by CTCAE v5 and do not change the CRS grade (not modelled).

Decisions marked I (not in the consensus text read): with fever masked and neither
hypotension nor hypoxia the day is graded 0 (no qualifying criterion); oxygen given for
comfort only is not hypoxia and must be recorded as ``"none"``; vasopressin alone counts as
one vasopressor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from carkinetics.endpoints._checks import EndpointError, count, flag, number, option

__all__ = [
    "HYPOTENSION",
    "HYPOXIA",
    "OXYGEN_ROUTES",
    "FEVER_THRESHOLD_C",
    "crs_grade",
    "crs_grade_daily",
    "hypotension_category",
    "oxygen_category",
    "grade_crs_days",
]

#: Hypotension categories and the CRS grade each qualifies for.
HYPOTENSION: dict[str, int] = {"none": 0, "fluids": 2, "vasopressor": 3,
                               "multiple_vasopressors": 4}
#: Hypoxia categories and the CRS grade each qualifies for.
HYPOXIA: dict[str, int] = {"none": 0, "low_flow": 2, "high_flow": 3, "positive_pressure": 4}
#: Fever: temperature >= 38.0 degrees C.
FEVER_THRESHOLD_C: float = 38.0
#: Oxygen delivery routes and their hypoxia category (``nasal_cannula`` needs the flow).
OXYGEN_ROUTES: dict[str, str | None] = {
    "none": "none", "room_air": "none", "blow_by": "low_flow", "nasal_cannula": None,
    "high_flow_nasal_cannula": "high_flow", "facemask": "high_flow",
    "non_rebreather": "high_flow", "venturi_mask": "high_flow", "cpap": "positive_pressure",
    "bipap": "positive_pressure", "mechanical_ventilation": "positive_pressure",
}
#: Low-flow nasal cannula delivers <= 6 L/min; more is high flow (consensus footnote, R).
LOW_FLOW_MAX_L_MIN: float = 6.0


def crs_grade(fever: bool, hypotension: str, hypoxia: str) -> int:
    """Return the ASTCT 2019 CRS grade (0 = no CRS) of one assessment.

    Parameters
    ----------
    fever : bool
        Temperature >= 38.0 C not attributable to another cause.
    hypotension : {"none", "fluids", "vasopressor", "multiple_vasopressors"}
        ``"fluids"``: hypotension not requiring vasopressors; ``"vasopressor"``: one
        vasopressor with or without vasopressin; ``"multiple_vasopressors"``: more than
        one (vasopressin excluded from the count). See :func:`hypotension_category`.
    hypoxia : {"none", "low_flow", "high_flow", "positive_pressure"}
        Oxygen needed: low-flow nasal cannula (<= 6 L/min) or blow-by; high-flow nasal
        cannula (> 6 L/min), facemask, non-rebreather or Venturi mask; CPAP, BiPAP or
        mechanical ventilation. See :func:`oxygen_category`.

    Returns
    -------
    int
        0 without fever (hypotension or hypoxia without fever is not CRS here; use
        :func:`crs_grade_daily` when fever is masked by antipyretic or anticytokine
        therapy), otherwise 1-4: the more severe of the hypotension and hypoxia criteria.

    Raises
    ------
    EndpointError
        If an argument is not one of the accepted values.

    Examples
    --------
    >>> crs_grade(True, "vasopressor", "low_flow")
    3
    >>> crs_grade(False, "vasopressor", "none")
    0
    """
    return crs_grade_daily(fever, hypotension, hypoxia)


def crs_grade_daily(fever: bool, hypotension: str, hypoxia: str, *, fever_masked: bool = False,
                    death: bool = False) -> int:
    """Return the CRS grade of one day, allowing for fever masked by treatment.

    Parameters
    ----------
    fever : bool
        Temperature >= 38.0 C not attributable to another cause.
    hypotension : {"none", "fluids", "vasopressor", "multiple_vasopressors"}
        As in :func:`crs_grade`.
    hypoxia : {"none", "low_flow", "high_flow", "positive_pressure"}
        As in :func:`crs_grade`.
    fever_masked : bool, default False
        The participant has had CRS and then received antipyretic or anticytokine therapy
        (tocilizumab, steroids): fever is no longer required and the grade is driven by
        hypotension and hypoxia (ASTCT 2019, R).
    death : bool, default False
        Death due to CRS on this day: grade 5 (I: standard convention).

    Returns
    -------
    int
        0-5. With fever: max(1, hypotension grade, hypoxia grade). Without fever but
        masked: max(hypotension grade, hypoxia grade), so 0 when both are ``"none"`` (I).
        Without fever and not masked: 0.

    Raises
    ------
    EndpointError
        If an argument is not one of the accepted values.

    Examples
    --------
    >>> crs_grade_daily(False, "fluids", "none", fever_masked=True)
    2
    >>> crs_grade_daily(False, "fluids", "none")
    0
    """
    fever = flag("fever", fever)
    masked = flag("fever_masked", fever_masked)
    worst = max(HYPOTENSION[option("hypotension", hypotension, HYPOTENSION)],
                HYPOXIA[option("hypoxia", hypoxia, HYPOXIA)])
    if flag("death", death):
        return 5
    if fever:
        return max(1, worst)
    return worst if masked else 0


def hypotension_category(hypotension: bool, vasopressors: int = 0,
                         vasopressin: bool = False) -> str:
    """Return the hypotension category of :func:`crs_grade` from the treatment given.

    Parameters
    ----------
    hypotension : bool
        Hypotension present (e.g. SBP < 90 mmHg, or needing fluid boluses or vasopressors;
        the consensus leaves the definition to the patient's baseline).
    vasopressors : int, default 0
        Number of vasopressors other than vasopressin.
    vasopressin : bool, default False
        Vasopressin given. It does not count towards "multiple vasopressors"; on its own
        it counts as one vasopressor (I).

    Returns
    -------
    str
        ``"none"``, ``"fluids"`` (no vasopressor), ``"vasopressor"`` (one, with or without
        vasopressin) or ``"multiple_vasopressors"`` (two or more besides vasopressin).

    Raises
    ------
    EndpointError
        If vasopressors are given without hypotension, or an argument is invalid.

    Examples
    --------
    >>> hypotension_category(True, vasopressors=1, vasopressin=True)
    'vasopressor'
    """
    present = flag("hypotension", hypotension)
    n = count("vasopressors", vasopressors, what="vasopressors other than vasopressin")
    vp = flag("vasopressin", vasopressin)
    if not present:
        if n or vp:
            raise EndpointError(
                f"Invalid hypotension={hypotension!r} with vasopressors={vasopressors!r}, "
                f"vasopressin={vasopressin!r}; expected hypotension=True when vasopressors "
                "are given.")
        return "none"
    if n >= 2:
        return "multiple_vasopressors"
    return "vasopressor" if n == 1 or vp else "fluids"


def oxygen_category(route: str, flow_l_min: float | None = None) -> str:
    """Return the hypoxia category of :func:`crs_grade` from the oxygen route and flow.

    Parameters
    ----------
    route : str
        One of :data:`OXYGEN_ROUTES`: ``"none"``, ``"room_air"``, ``"blow_by"``,
        ``"nasal_cannula"``, ``"high_flow_nasal_cannula"``, ``"facemask"``,
        ``"non_rebreather"``, ``"venturi_mask"``, ``"cpap"``, ``"bipap"``,
        ``"mechanical_ventilation"``. Oxygen given for comfort only is ``"none"``.
    flow_l_min : float, optional
        Oxygen flow (L/min); required for ``"nasal_cannula"``: <= 6 is low flow, > 6 is
        high flow.

    Returns
    -------
    str
        ``"none"``, ``"low_flow"``, ``"high_flow"`` or ``"positive_pressure"``.

    Raises
    ------
    EndpointError
        If the route is unknown, or a nasal cannula has no valid flow.

    Examples
    --------
    >>> oxygen_category("nasal_cannula", 6)
    'low_flow'
    >>> oxygen_category("nasal_cannula", 6.5)
    'high_flow'
    """
    cat = OXYGEN_ROUTES[option("route", route, OXYGEN_ROUTES)]
    if cat is not None:
        return cat
    if flow_l_min is None:
        raise EndpointError("Invalid flow_l_min=None for route='nasal_cannula'; expected the "
                            "oxygen flow in L/min (<= 6 is low flow, > 6 high flow).")
    flow = number("flow_l_min", flow_l_min, lo=0, lo_open=True, unit="L/min")
    return "low_flow" if flow <= LOW_FLOW_MAX_L_MIN else "high_flow"


def grade_crs_days(obs: pd.DataFrame, *, require_prior_fever: bool = True) -> pd.DataFrame:
    """Grade a validated table of daily CRS observations, deciding when fever is masked.

    Parameters
    ----------
    obs : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.validate_crs_observations`: columns ``id``,
        ``day``, ``fever``, ``hypotension``, ``hypoxia``, ``antipyretic``, ``anticytokine``,
        ``death`` (one row per participant and day).
    require_prior_fever : bool, default True
        Fever is masked from the first day on which antipyretic or anticytokine therapy
        is given **on or after the first febrile day** (the consensus: "patients who have
        CRS then receive ..."). With False, any such therapy masks fever from the day it
        is given (the looser reading in some reproductions of the table).

    Returns
    -------
    pandas.DataFrame
        The input columns plus ``fever_masked`` (bool) and ``grade`` (int 0-5), sorted by
        id and day.
    """
    df = obs.sort_values(["id", "day"], kind="stable").reset_index(drop=True)
    treated = (df["antipyretic"] | df["anticytokine"]).to_numpy()
    fever = df["fever"].to_numpy(dtype=bool)
    masked = np.zeros(len(df), dtype=bool)
    for _, idx in df.groupby("id", sort=False).indices.items():
        had_fever = np.maximum.accumulate(fever[idx]) if require_prior_fever \
            else np.ones(len(idx), dtype=bool)
        masked[idx] = np.maximum.accumulate(treated[idx] & had_fever)
    grades = [crs_grade_daily(bool(f), h, x, fever_masked=bool(m), death=bool(d))
              for f, h, x, m, d in zip(fever, df["hypotension"], df["hypoxia"], masked,
                                       df["death"], strict=True)]
    df["fever_masked"] = masked
    df["grade"] = np.asarray(grades, dtype="int64")
    return df
