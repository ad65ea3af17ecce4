"""CTCAE v5.0 grades of the laboratory-defined cytopenias.

A helper: AE grades are carried as recorded in the AE table.

**Confidence.** The CTCAE v5.0 term tables were not retrieved (CLINICAL.md 4.3). The grade
3/4 cut-offs of neutrophil and platelet counts are S (a secondary page: ANC < 1.0 grade 3,
< 0.5 grade 4; platelets < 50 grade 3, < 25 grade 4, x 10^9/L); every other threshold and
the default lower limits of normal are **I (recalled from CTCAE v5.0; verify against the
NCI document before use)**.

Grades (x 10^9/L; haemoglobin g/L), a value at or above the LLN being grade 0:

==============================  ===========  ===========  ===========  ========
term                            grade 1      grade 2      grade 3      grade 4
==============================  ===========  ===========  ===========  ========
Neutrophil count decreased      < LLN - 1.5  < 1.5 - 1.0  < 1.0 - 0.5  < 0.5
Platelet count decreased        < LLN - 75   < 75 - 50    < 50 - 25    < 25
Lymphocyte count decreased      < LLN - 0.8  < 0.8 - 0.5  < 0.5 - 0.2  < 0.2
White blood cell decreased      < LLN - 3.0  < 3.0 - 2.0  < 2.0 - 1.0  < 1.0
Anaemia (haemoglobin, g/L)      < LLN - 100  < 100 - 80   < 80         (clinical)
==============================  ===========  ===========  ===========  ========

Conversions: 1 x 10^9/L = 1000/mm^3 (so ANC 1.5 x 10^9/L is 1500/mm^3); haemoglobin
10.0 g/dL = 100 g/L. Grade 4 anaemia (life-threatening) and grade 5 are clinical and are
not assigned from a value.
"""

from __future__ import annotations

from carkinetics.endpoints._checks import number, option

__all__ = ["CTCAE_LAB_TERMS", "DEFAULT_LLN", "ctcae_lab_grade"]

#: Term -> (unit, upper bounds of grades 2, 3, 4: a value below bound k has grade >= k).
CTCAE_LAB_TERMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "Neutrophil count decreased": ("10^9/L", (1.5, 1.0, 0.5)),
    "Platelet count decreased": ("10^9/L", (75.0, 50.0, 25.0)),
    "Lymphocyte count decreased": ("10^9/L", (0.8, 0.5, 0.2)),
    "White blood cell decreased": ("10^9/L", (3.0, 2.0, 1.0)),
    "Anaemia": ("g/L", (100.0, 80.0)),
}
#: Default lower limits of normal (I: typical adult values; use the laboratory's).
DEFAULT_LLN: dict[str, float] = {
    "Neutrophil count decreased": 1.8, "Platelet count decreased": 150.0,
    "Lymphocyte count decreased": 1.0, "White blood cell decreased": 4.0, "Anaemia": 120.0,
}


def ctcae_lab_grade(term: str, value: float, lln: float | None = None) -> int:
    """Return the CTCAE v5.0 grade (0-4) of a low blood count.

    Parameters
    ----------
    term : str
        One of :data:`CTCAE_LAB_TERMS`.
    value : float
        The count (x 10^9/L) or haemoglobin (g/L).
    lln : float, optional
        The laboratory's lower limit of normal (default :data:`DEFAULT_LLN`, I).

    Returns
    -------
    int
        0 at or above the LLN; otherwise the grade of the table in the module notes.

    Examples
    --------
    >>> ctcae_lab_grade("Neutrophil count decreased", 0.5), ctcae_lab_grade(
    ...     "Neutrophil count decreased", 0.49)
    (3, 4)
    """
    unit, bounds = CTCAE_LAB_TERMS[option("term", term, CTCAE_LAB_TERMS)]
    x = number("value", value, lo=0, unit=unit)
    limit = DEFAULT_LLN[term] if lln is None else number("lln", lln, lo=0, lo_open=True,
                                                          unit=unit)
    if x >= limit:
        return 0
    return 1 + sum(x < b for b in bounds)
