"""Adverse events of a simulated trial, and daily CRS/ICANS observations consistent with them.

CRS and ICANS rise with the true CAR-T Cmax; cytopenias, infections and
hypogammaglobulinaemia complete the picture.

Functions only: the trial lead calls :func:`simulate_adverse_events` on a
:class:`~carkinetics.simulate.SimulatedTrial`. Every number of :class:`SafetyModel` is
chosen here (I) to look like autoimmune CAR-T reports (CLINICAL.md 2h, 5.2: CRS mostly
grade 1 at 1e6 cells/kg, rare grade >= 3; almost no new CRS after week 2; expansion
associated with CRS and ICANS severity); none is a fitted estimate.

CRS and ICANS: a latent severity ``L = a + b * ln(Cmax / cmax_ref) + z`` with ``z ~ N(0, 1)``
and the participant's **true** ``Cmax`` (``truth["participants"][k]["params_at_dose"]
["cmax"]``); the grade is the number of cut points ``L`` exceeds (0 = no event), so both the
probability and the grade rise with Cmax. ICANS shares a fraction ``icans_crs_corr`` of the
CRS latent.

Reproducibility: ``numpy.random.SeedSequence([seed, 0x5AFE]).spawn(n)`` gives one stream per
participant slot, in the order of ``truth["participants"]``; a participant's events do not
depend on the others. Events with onset after the participant's follow-up are dropped, and
events still going on at the end of follow-up have no resolution day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SafetyModel", "simulate_adverse_events", "simulate_crs_observations",
           "simulate_icans_observations"]

_STREAM = 0x5AFE
_INFECTIONS = ("Upper respiratory tract infection", "Pneumonia", "Urinary tract infection",
               "Herpes zoster", "COVID-19")
_INFECTION_P = (0.4, 0.15, 0.2, 0.1, 0.15)


@dataclass(frozen=True)
class SafetyModel:
    """Parameters of the simulated adverse events (all chosen here, I).

    Attributes
    ----------
    cmax_ref : float
        Reference Cmax (copies/ug; the typical value of the CK population).
    crs_intercept, crs_slope : float
        CRS latent mean at ``cmax_ref`` and its slope per unit of ln(Cmax / cmax_ref).
    crs_cuts : tuple of float
        Latent cut points of grades 1-4 (at ``cmax_ref``: P(CRS) ~ 0.6, P(>= 2) ~ 0.2,
        P(>= 3) ~ 0.03).
    icans_intercept, icans_slope, icans_crs_corr : float
        ICANS latent mean, slope and share of the CRS latent.
    icans_cuts : tuple of float
        Latent cut points of ICANS grades 1-4.
    cytopenia_grade_p : mapping
        Term -> probabilities of grades 0-4 after lymphodepletion.
    prolonged_neutropenia_p : float
        Probability at ``cmax_ref`` that neutropenia lasts beyond day 28 (x sqrt(Cmax ratio)).
    infection_rate_per_year : float
        Infections per participant-year at ``cmax_ref``.
    hypogamma_p : float
        Probability of hypogammaglobulinaemia at ``cmax_ref`` (logit slope 0.8).
    """

    cmax_ref: float = 15000.0
    crs_intercept: float = 0.25
    crs_slope: float = 0.9
    crs_cuts: tuple[float, ...] = (0.0, 1.2, 2.4, 3.0)
    icans_intercept: float = -1.6
    icans_slope: float = 0.9
    icans_crs_corr: float = 0.5
    icans_cuts: tuple[float, ...] = (0.0, 1.0, 2.0, 2.8)
    cytopenia_grade_p: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: {
        "Neutrophil count decreased": (0.15, 0.05, 0.10, 0.35, 0.35),
        "Lymphocyte count decreased": (0.05, 0.0, 0.05, 0.40, 0.50),
        "Platelet count decreased": (0.50, 0.20, 0.15, 0.10, 0.05),
        "Anaemia": (0.50, 0.25, 0.20, 0.05, 0.0),
    })
    prolonged_neutropenia_p: float = 0.08
    infection_rate_per_year: float = 0.8
    hypogamma_p: float = 0.5


def _grade(latent: float, cuts: tuple[float, ...]) -> int:
    return int(sum(latent > c for c in cuts))


def _event(pid, term, onset, duration, grade, serious, category, follow):
    if onset > follow:
        return None
    end = onset + duration - 1
    return {"id": pid, "term": term, "onset_day": float(onset),
            "resolution_day": float(end) if end <= follow else np.nan, "grade": int(grade),
            "serious": bool(serious), "category": category}


def _participant(rng: np.random.Generator, p: Mapping[str, Any], m: SafetyModel) -> list:
    pid, follow = p["id"], float(p["follow_up_days"])
    x = float(np.log(p["params_at_dose"]["cmax"] / m.cmax_ref))
    events = []
    z = rng.normal()
    crs = _grade(m.crs_intercept + m.crs_slope * x + z, m.crs_cuts)
    crs_onset = 1 + int(rng.poisson(1.5))
    if crs:
        serious = crs >= 3 or (crs == 2 and rng.random() < 0.3)
        events.append(_event(pid, "Cytokine release syndrome", crs_onset,
                             1 + int(rng.poisson(1 + crs)), crs, serious, "crs", follow))
    r = m.icans_crs_corr
    zi = r * z + np.sqrt(1 - r * r) * rng.normal()
    icans = _grade(m.icans_intercept + m.icans_slope * x + zi, m.icans_cuts)
    onset = crs_onset + 1 + int(rng.poisson(2)) if crs else 3 + int(rng.poisson(3))
    if icans:
        serious = icans >= 3 or (icans == 2 and rng.random() < 0.5)
        events.append(_event(pid, "Immune effector cell-associated neurotoxicity syndrome",
                             onset, 1 + int(rng.poisson(1 + icans)), icans, serious, "icans",
                             follow))
    for term, probs in m.cytopenia_grade_p.items():
        g = int(rng.choice(5, p=np.asarray(probs) / np.sum(probs)))
        start = -2 if term.startswith("Lymphocyte") else int(rng.integers(0, 5))
        duration = 3 + int(rng.poisson(6 if g < 4 else 10))
        if term.startswith("Neutrophil") and g >= 3 and rng.random() < min(
                1.0, m.prolonged_neutropenia_p * np.exp(0.5 * x)):
            duration += 25 + int(rng.poisson(15))
        if g:
            events.append(_event(pid, term, start, duration, g, g >= 4 and duration > 28,
                                 "cytopenia", follow))
    years = max(follow - 14.0, 0.0) / 365.25
    for _ in range(int(rng.poisson(m.infection_rate_per_year * years * np.exp(0.3 * x)))):
        term = str(rng.choice(_INFECTIONS, p=_INFECTION_P))
        g = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.5, 0.13, 0.02]))
        events.append(_event(pid, term, int(rng.uniform(14.0, max(follow, 15.0))),
                             3 + int(rng.poisson(7)), g, g >= 3, "infection", follow))
    logit = np.log(m.hypogamma_p / (1 - m.hypogamma_p)) + 0.8 * x
    if rng.random() < 1.0 / (1.0 + np.exp(-logit)):
        g = 2 if rng.random() < 0.6 else 1
        events.append(_event(pid, "Hypogammaglobulinaemia", int(rng.integers(30, 121)),
                             90 + int(rng.poisson(180)), g, False, "hypogammaglobulinaemia",
                             follow))
    return [e for e in events if e is not None]


def simulate_adverse_events(trial, seed: int, *, model: SafetyModel | None = None
                            ) -> pd.DataFrame:
    """Simulate the adverse events of a simulated trial.

    Parameters
    ----------
    trial : SimulatedTrial
        Data and truth of :func:`carkinetics.simulate.simulate_trial`; the truth's
        ``participants`` (``id``, ``follow_up_days``, ``params_at_dose["cmax"]``) are used.
    seed : int
        Root seed (>= 0).
    model : SafetyModel, optional
        Event-generating parameters.

    Returns
    -------
    pandas.DataFrame
        The AE format of :mod:`carkinetics.endpoints.inputs`: ``id``, ``term``,
        ``onset_day``, ``resolution_day`` (NaN = ongoing), ``grade``, ``serious``,
        ``category``, one row per event, sorted by id and onset.

    Examples
    --------
    >>> from carkinetics.simulate import simulate_trial
    >>> ae = simulate_adverse_events(simulate_trial(seed=1), seed=1)
    >>> sorted(ae["category"].unique())[:2]
    ['crs', 'cytopenia']
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"Invalid seed={seed!r}; expected a non-negative integer.")
    m = model or SafetyModel()
    people = trial.truth["participants"]
    streams = np.random.SeedSequence([int(seed), _STREAM]).spawn(len(people))
    rows = []
    for p, ss in zip(people, streams, strict=True):
        rows.extend(_participant(np.random.default_rng(ss), p, m))
    cols = ["id", "term", "onset_day", "resolution_day", "grade", "serious", "category"]
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["id", "onset_day", "term"], kind="stable", ignore_index=True)


_CRS_PEAK = {1: ("none", "none"), 2: ("fluids", "low_flow"), 3: ("vasopressor", "high_flow"),
             4: ("multiple_vasopressors", "positive_pressure"),
             5: ("multiple_vasopressors", "positive_pressure")}


def _days(ae: pd.DataFrame, category: str):
    for _, e in ae[ae["category"] == category].iterrows():
        end = e["resolution_day"]
        last = int(e["onset_day"] + 6) if np.isnan(end) else int(end)
        yield str(e["id"]), int(e["onset_day"]), last, int(e["grade"]), np.isnan(end)


def simulate_crs_observations(ae: pd.DataFrame) -> pd.DataFrame:
    """Daily CRS observations that grade (ASTCT 2019) to the CRS events of ``ae``.

    Each episode is preceded and (if resolved) followed by a normal day. Before the peak
    (the middle day) there is fever only; on the peak day the hypotension and hypoxia of
    the event's grade, and for grade >= 2 tocilizumab is given, so fever is masked
    afterwards and the remaining days are graded on ``"fluids"`` hypotension (grade 2)
    without fever. An ongoing event is observed for 7 days.

    Parameters
    ----------
    ae : pandas.DataFrame
        Adverse events (e.g. from :func:`simulate_adverse_events`).

    Returns
    -------
    pandas.DataFrame
        The daily CRS format of :mod:`carkinetics.endpoints.inputs`: ``id``, ``day``,
        ``temperature``, ``hypotension``, ``hypoxia``, ``antipyretic``, ``anticytokine``,
        ``death``.
    """
    rows = []
    for pid, onset, last, g, ongoing in _days(ae, "crs"):
        peak = onset + (last - onset) // 2
        days = range(onset - 1, last + (1 if ongoing else 2))
        for d in days:
            row = {"id": pid, "day": float(d), "temperature": 36.8, "hypotension": "none",
                   "hypoxia": "none", "antipyretic": False, "anticytokine": False,
                   "death": False}
            if onset <= d <= last:
                if d < peak or g == 1:
                    row["temperature"] = 38.6
                elif d == peak:
                    row.update(temperature=39.2, anticytokine=g >= 2, death=g == 5)
                    row["hypotension"], row["hypoxia"] = _CRS_PEAK[g]
                else:
                    row.update(hypotension="fluids")
            rows.append(row)
    return pd.DataFrame(rows, columns=["id", "day", "temperature", "hypotension", "hypoxia",
                                       "antipyretic", "anticytokine", "death"])


_ICANS_STATE = {1: (8, "awake"), 2: (5, "awake"), 3: (1, "awakens_to_touch"),
                4: (0, "unarousable")}


def simulate_icans_observations(ae: pd.DataFrame) -> pd.DataFrame:
    """Daily ICANS observations that grade (ASTCT 2019) to the ICANS events of ``ae``.

    The event's grade is reached on its middle day through the ICE score and level of
    consciousness (grade 1: ICE 8; 2: ICE 5; 3: ICE 1 and awakens only to touch; 4:
    unarousable, ICE 0); other event days have ICE 8 (grade 1); the days before and after
    are normal (ICE 10).

    Returns
    -------
    pandas.DataFrame
        ``id``, ``day``, ``ice_score``, ``consciousness``, ``seizure``, ``motor``,
        ``raised_icp``.
    """
    rows = []
    for pid, onset, last, g, ongoing in _days(ae, "icans"):
        peak = onset + (last - onset) // 2
        for d in range(onset - 1, last + (1 if ongoing else 2)):
            ice, con = 10, "awake"
            if onset <= d <= last:
                ice, con = _ICANS_STATE[min(g, 4)] if d == peak else (8, "awake")
            rows.append({"id": pid, "day": float(d), "ice_score": ice, "consciousness": con,
                         "seizure": "none", "motor": "none", "raised_icp": "none"})
    return pd.DataFrame(rows, columns=["id", "day", "ice_score", "consciousness", "seizure",
                                       "motor", "raised_icp"])
