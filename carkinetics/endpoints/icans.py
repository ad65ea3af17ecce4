"""ASTCT 2019 immune effector cell-associated neurotoxicity syndrome (ICANS) grading, adults.

Source: Lee DW et al., Biol Blood Marrow Transplant 2019;25:625-638 (CLINICAL.md 4.2,
confidence R). The ICE score (0-10; 10 = normal) is orientation to year, month, city and
hospital (4 points), naming 3 objects (3), following simple commands (1), writing a
standard sentence (1) and attention, counting back from 100 by 10 (1).

Grades by domain (the grade is that of the worst domain):

* ICE score: 7-9 -> 1; 3-6 -> 2; 0-2 -> 3; 0 and unarousable -> 4.
* depressed consciousness: awakens spontaneously -> 1; awakens to voice -> 2; awakens only
  to tactile stimulus -> 3; unarousable, or needs vigorous or repetitive tactile stimuli,
  stupor or coma -> 4.
* seizure: any clinical seizure (focal or generalised) that resolves rapidly, or a
  non-convulsive seizure on EEG that resolves with intervention -> 3; a life-threatening
  prolonged seizure (> 5 min), or repetitive clinical or electrical seizures without
  return to baseline in between -> 4.
* motor findings: deep focal motor weakness (hemiparesis, paraparesis) -> 4.
* raised ICP / cerebral oedema: focal or local oedema on neuroimaging -> 3; diffuse
  oedema on imaging, decerebrate or decorticate posturing, cranial nerve VI palsy,
  papilloedema or Cushing's triad -> 4.

The grade is that of the **most severe** domain not attributable to another cause. An ICE
score of 0 is grade 3 in an awake participant (global aphasia) and grade 4 in an
unarousable one (through the consciousness domain). Depressed consciousness must not be
caused by anything else (e.g. sedatives): pass ``"awake"`` in that case. Tremor and
myoclonus (CTCAE) and intracranial haemorrhage are not part of ICANS grading. ICE 10 with
no other finding is no ICANS (I: implied by the table).

Accepted strings
----------------
consciousness : ``"awake"`` (normal), ``"awakens_spontaneously"`` (1), ``"awakens_to_voice"``
    (2), ``"awakens_to_touch"`` (3), ``"unarousable"`` (4; also vigorous or repetitive
    stimuli needed, stupor, coma).
seizure : ``"none"``, ``"rapidly_resolving"`` (3), ``"eeg_resolved_with_intervention"`` (3),
    ``"prolonged"`` (4; > 5 min, life-threatening), ``"repetitive"`` (4; without return
    to baseline in between).
motor : ``"none"``, ``"hemiparesis"`` (4), ``"paraparesis"`` (4).
raised_icp : ``"none"``, ``"focal_oedema"`` (3), ``"diffuse_oedema"`` (4), ``"posturing"``
    (4), ``"cn6_palsy"`` (4), ``"papilloedema"`` (4), ``"cushings_triad"`` (4).
"""

from __future__ import annotations

import pandas as pd

from carkinetics.endpoints._checks import count, is_missing, option

__all__ = [
    "CONSCIOUSNESS",
    "SEIZURE",
    "MOTOR",
    "RAISED_ICP",
    "ice_score",
    "icans_grade",
    "grade_icans_days",
]

#: Level of consciousness and its ICANS grade.
CONSCIOUSNESS: dict[str, int] = {"awake": 0, "awakens_spontaneously": 1, "awakens_to_voice": 2,
                                 "awakens_to_touch": 3, "unarousable": 4}
#: Seizure categories and their ICANS grade.
SEIZURE: dict[str, int] = {"none": 0, "rapidly_resolving": 3,
                           "eeg_resolved_with_intervention": 3, "prolonged": 4,
                           "repetitive": 4}
#: Motor findings and their ICANS grade.
MOTOR: dict[str, int] = {"none": 0, "hemiparesis": 4, "paraparesis": 4}
#: Raised intracranial pressure / cerebral oedema and their ICANS grade.
RAISED_ICP: dict[str, int] = {"none": 0, "focal_oedema": 3, "diffuse_oedema": 4,
                              "posturing": 4, "cn6_palsy": 4, "papilloedema": 4,
                              "cushings_triad": 4}
_ICE_ITEMS = {"orientation": 4, "naming": 3, "commands": 1, "writing": 1, "attention": 1}


def ice_score(orientation: int, naming: int, commands: int, writing: int, attention: int) -> int:
    """Return the ICE score (0-10) from its five items.

    Parameters
    ----------
    orientation : int
        Correct answers to year, month, city and hospital (0-4).
    naming : int
        Objects named (0-3).
    commands : int
        Follows simple commands (0-1).
    writing : int
        Writes a standard sentence (0-1).
    attention : int
        Counts back from 100 by 10 (0-1).

    Returns
    -------
    int
        The sum, 0-10 (10 = normal).

    Examples
    --------
    >>> ice_score(4, 3, 1, 0, 1)
    9
    """
    given = dict(orientation=orientation, naming=naming, commands=commands, writing=writing,
                 attention=attention)
    return sum(count(k, v, hi=_ICE_ITEMS[k]) for k, v in given.items())


def _ice_grade(score: int) -> int:
    if score == 10:
        return 0
    if score >= 7:
        return 1
    return 2 if score >= 3 else 3


def icans_grade(ice_score: int | None, consciousness: str, seizure: str, motor: str,
                raised_icp: str) -> int:
    """Return the ASTCT 2019 ICANS grade (0 = no ICANS) of one adult assessment.

    Parameters
    ----------
    ice_score : int or None
        ICE score 0-10; None when it could not be assessed (the other domains then decide;
        an unarousable participant is grade 4 through ``consciousness``).
    consciousness : str
        ``"awake"``, ``"awakens_spontaneously"``, ``"awakens_to_voice"``,
        ``"awakens_to_touch"`` or ``"unarousable"`` (see the module notes).
    seizure : str
        ``"none"``, ``"rapidly_resolving"``, ``"eeg_resolved_with_intervention"``,
        ``"prolonged"`` or ``"repetitive"``.
    motor : str
        ``"none"``, ``"hemiparesis"`` or ``"paraparesis"``.
    raised_icp : str
        ``"none"``, ``"focal_oedema"``, ``"diffuse_oedema"``, ``"posturing"``,
        ``"cn6_palsy"``, ``"papilloedema"`` or ``"cushings_triad"``.

    Returns
    -------
    int
        0-4: the most severe domain.

    Raises
    ------
    EndpointError
        If an argument is not one of the accepted values.

    Examples
    --------
    >>> icans_grade(0, "awake", "none", "none", "none")
    3
    >>> icans_grade(0, "unarousable", "none", "none", "none")
    4
    >>> icans_grade(3, "awake", "rapidly_resolving", "none", "none")
    3
    """
    ice = 0 if is_missing(ice_score) else _ice_grade(count("ice_score", ice_score, hi=10))
    return max(ice, CONSCIOUSNESS[option("consciousness", consciousness, CONSCIOUSNESS)],
               SEIZURE[option("seizure", seizure, SEIZURE)],
               MOTOR[option("motor", motor, MOTOR)],
               RAISED_ICP[option("raised_icp", raised_icp, RAISED_ICP)])


def grade_icans_days(obs: pd.DataFrame) -> pd.DataFrame:
    """Grade a validated table of daily ICANS observations.

    Parameters
    ----------
    obs : pandas.DataFrame
        Output of :func:`carkinetics.endpoints.validate_icans_observations`: columns
        ``id``, ``day``, ``ice_score`` (NaN = not assessed), ``consciousness``,
        ``seizure``, ``motor``, ``raised_icp``.

    Returns
    -------
    pandas.DataFrame
        The input plus ``grade`` (int 0-4), sorted by id and day.
    """
    df = obs.sort_values(["id", "day"], kind="stable").reset_index(drop=True)
    df["grade"] = pd.array(
        [icans_grade(None if is_missing(i) else int(i), c, s, m, r) for i, c, s, m, r in zip(
            df["ice_score"], df["consciousness"], df["seizure"], df["motor"], df["raised_icp"],
            strict=True)], dtype="int64")
    return df
