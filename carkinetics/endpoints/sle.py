"""Systemic lupus erythematosus: SLEDAI-2K, BILAG-2004 numeric score, PGA and SRI-4.

SLEDAI-2K (Gladman et al., J Rheumatol 2002;29:288; CLINICAL.md 4.6: items and weights
8/4/2 R, the last three definitions S): 24 descriptors, each scored with its fixed weight
when present at the visit or in the preceding 10 days (the protocol may use 30 days; the
caller decides what is present). Total 0-105. Descriptor names (weight):

* 8: ``seizure``, ``psychosis``, ``organic_brain_syndrome``, ``visual_disturbance``,
  ``cranial_nerve_disorder``, ``lupus_headache``, ``cva``, ``vasculitis``;
* 4: ``arthritis`` (> 2 joints with pain and signs of inflammation; sources disagree on
  "> 2" vs ">= 2", the original wording is "more than 2"), ``myositis``,
  ``urinary_casts``, ``hematuria``, ``proteinuria``, ``pyuria``;
* 2: ``rash``, ``alopecia``, ``mucosal_ulcers``, ``pleurisy``, ``pericarditis``,
  ``low_complement``, ``increased_dna_binding``;
* 1: ``fever``, ``thrombocytopenia``, ``leukopenia``.

BILAG-2004 numeric score (Yee et al., Rheumatology 2010;49:1665; CLINICAL.md 4.7, R for the
scheme): **A = 12, B = 8, C = 1, D = 0, E = 0**, summed over the 9 organ systems
(:data:`BILAG_SYSTEMS`; the list is read on the BILAG-2004 index form, S), range 0-108.
The item-to-grade algorithm (licensed glossary) is not implemented: grades are inputs.

PGA: physician global assessment on a 0-3 scale (anchors 0 none, 1 mild, 2 moderate,
3 severe: I).

SRI-4 (CLINICAL.md 4.6, R from a trial record): SLEDAI-2K decrease >= 4 from baseline; no
new BILAG A and fewer than 2 new BILAG B; no PGA worsening (increase < 0.3). "New A": a
system graded A now that was not A at baseline; "new B": a system graded B now that was C,
D or E at baseline (I: the usual reading; the record does not define "new").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from fractions import Fraction

from carkinetics.endpoints._checks import EndpointError, count, exact, number, option

__all__ = [
    "SLEDAI2K_WEIGHTS",
    "SEROLOGICAL_DESCRIPTORS",
    "BILAG_SYSTEMS",
    "BILAG2004_NUMERIC",
    "sledai2k",
    "clinical_sledai2k",
    "bilag2004_score",
    "check_pga",
    "sri4_response",
    "PGA_WORSENING",
]

#: SLEDAI-2K descriptor -> weight, in the order of the instrument.
SLEDAI2K_WEIGHTS: dict[str, int] = {
    "seizure": 8, "psychosis": 8, "organic_brain_syndrome": 8, "visual_disturbance": 8,
    "cranial_nerve_disorder": 8, "lupus_headache": 8, "cva": 8, "vasculitis": 8,
    "arthritis": 4, "myositis": 4, "urinary_casts": 4, "hematuria": 4, "proteinuria": 4,
    "pyuria": 4,
    "rash": 2, "alopecia": 2, "mucosal_ulcers": 2, "pleurisy": 2, "pericarditis": 2,
    "low_complement": 2, "increased_dna_binding": 2,
    "fever": 1, "thrombocytopenia": 1, "leukopenia": 1,
}
#: Laboratory-only descriptors left out of the "clinical SLEDAI" (DORIS 2021).
SEROLOGICAL_DESCRIPTORS: tuple[str, ...] = ("low_complement", "increased_dna_binding")
#: BILAG-2004 organ systems.
BILAG_SYSTEMS: tuple[str, ...] = ("constitutional", "mucocutaneous", "neuropsychiatric",
                                  "musculoskeletal", "cardiorespiratory", "gastrointestinal",
                                  "ophthalmic", "renal", "haematological")
#: Yee 2010 additive conversion of BILAG-2004 grades.
BILAG2004_NUMERIC: dict[str, int] = {"A": 12, "B": 8, "C": 1, "D": 0, "E": 0}
#: A PGA increase of this much (0-3 scale) or more is a worsening.
PGA_WORSENING: Fraction = Fraction(3, 10)


def _descriptors(descriptors: Iterable[str]) -> list[str]:
    if isinstance(descriptors, str) or not isinstance(descriptors, Iterable):
        raise EndpointError(f"Invalid descriptors={descriptors!r}; expected an iterable of "
                            f"descriptor names such as ['arthritis', 'rash'].")
    seen: list[str] = []
    for d in descriptors:
        option("descriptor", d, SLEDAI2K_WEIGHTS)
        if d in seen:
            raise EndpointError(f"Invalid descriptors: {d!r} is listed twice; expected each "
                                "present descriptor once.")
        seen.append(d)
    return seen


def sledai2k(descriptors: Iterable[str]) -> int:
    """Return the SLEDAI-2K score (0-105) from the descriptors present.

    Parameters
    ----------
    descriptors : iterable of str
        Names of the descriptors present (see the module notes and
        :data:`SLEDAI2K_WEIGHTS`), each at most once.

    Returns
    -------
    int
        The sum of their weights.

    Raises
    ------
    EndpointError
        For an unknown name ("Did you mean ...") or a repeated one.

    Examples
    --------
    >>> sledai2k(["arthritis", "rash", "low_complement", "increased_dna_binding"])
    10
    >>> sledai2k(SLEDAI2K_WEIGHTS)
    105
    """
    return sum(SLEDAI2K_WEIGHTS[d] for d in _descriptors(descriptors))


def clinical_sledai2k(descriptors: Iterable[str]) -> int:
    """Return the SLEDAI-2K without its serological descriptors (low complement, DNA binding).

    Examples
    --------
    >>> clinical_sledai2k(["arthritis", "low_complement"])
    4
    """
    return sum(SLEDAI2K_WEIGHTS[d] for d in _descriptors(descriptors)
               if d not in SEROLOGICAL_DESCRIPTORS)


def _grades(name: str, grades: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(grades, Mapping):
        raise EndpointError(f"Invalid {name} of type {type(grades).__name__}; expected a "
                            f"mapping system -> grade over {list(BILAG_SYSTEMS)}.")
    out = {}
    for system, grade in grades.items():
        option(f"{name} system", system, BILAG_SYSTEMS)
        g = grade.upper() if isinstance(grade, str) and len(grade) == 1 else grade
        out[system] = option(f"{name}[{system!r}]", g, BILAG2004_NUMERIC)
    absent = [s for s in BILAG_SYSTEMS if s not in out]
    if absent:
        raise EndpointError(f"Invalid {name}: systems {absent} are missing; expected a grade "
                            f"A-E for each of {list(BILAG_SYSTEMS)} (E = never involved).")
    return out


def bilag2004_score(grades: Mapping[str, str]) -> int:
    """Return the BILAG-2004 numeric score (Yee 2010: A=12, B=8, C=1, D=0, E=0; 0-108).

    Parameters
    ----------
    grades : mapping of str to str
        Grade ``"A"``-``"E"`` (lower case accepted) for each of the 9 systems of
        :data:`BILAG_SYSTEMS`.

    Returns
    -------
    int
        Sum of the converted grades.

    Raises
    ------
    EndpointError
        For an unknown system or grade, or a missing system.

    Examples
    --------
    >>> g = dict.fromkeys(BILAG_SYSTEMS, "E") | {"renal": "A", "musculoskeletal": "B",
    ...                                          "mucocutaneous": "C"}
    >>> bilag2004_score(g)
    21
    """
    return sum(BILAG2004_NUMERIC[g] for g in _grades("grades", grades).values())


def check_pga(value: float, name: str = "pga") -> float:
    """Return ``value`` if it is a PGA on the 0-3 scale; raise :class:`EndpointError`."""
    return number(name, value, lo=0, hi=3, unit="(PGA, 0-3 scale)")


def sri4_response(sledai_baseline: int, sledai_followup: int, pga_baseline: float,
                  pga_followup: float, bilag_baseline: Mapping[str, str],
                  bilag_followup: Mapping[str, str]) -> bool:
    """Return the SLE Responder Index (SRI-4) response.

    Parameters
    ----------
    sledai_baseline, sledai_followup : int
        SLEDAI-2K scores (0-105).
    pga_baseline, pga_followup : float
        PGA (0-3).
    bilag_baseline, bilag_followup : mapping of str to str
        BILAG-2004 grade per system (all 9 systems).

    Returns
    -------
    bool
        SLEDAI-2K decrease >= 4, PGA increase < 0.3 (exact decimals) and no new BILAG A
        and fewer than 2 new BILAG B.

    Examples
    --------
    >>> e = dict.fromkeys(BILAG_SYSTEMS, "D")
    >>> sri4_response(12, 8, 2.0, 2.29, e, e), sri4_response(12, 8, 2.0, 2.3, e, e)
    (True, False)
    """
    s0 = count("sledai_baseline", sledai_baseline, hi=105)
    s1 = count("sledai_followup", sledai_followup, hi=105)
    p0 = exact(check_pga(pga_baseline, "pga_baseline"))
    p1 = exact(check_pga(pga_followup, "pga_followup"))
    b0 = _grades("bilag_baseline", bilag_baseline)
    b1 = _grades("bilag_followup", bilag_followup)
    new_a = sum(b1[s] == "A" and b0[s] != "A" for s in BILAG_SYSTEMS)
    new_b = sum(b1[s] == "B" and b0[s] in ("C", "D", "E") for s in BILAG_SYSTEMS)
    return s0 - s1 >= 4 and p1 - p0 < PGA_WORSENING and new_a == 0 and new_b < 2
