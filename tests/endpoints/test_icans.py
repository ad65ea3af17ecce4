"""ASTCT 2019 ICANS grading and the ICE score."""

import pandas as pd
import pytest

from carkinetics.endpoints import (
    EndpointError,
    grade_icans_days,
    icans_grade,
    ice_score,
    validate_icans_observations,
)

NONE = ("none", "none", "none")


@pytest.mark.parametrize("ice, grade", [(10, 0), (9, 1), (7, 1), (6, 2), (3, 2), (2, 3),
                                        (1, 3), (0, 3)])
def test_ice_score_bands_in_an_awake_participant(ice, grade):
    assert icans_grade(ice, "awake", *NONE) == grade


def test_ice_zero_with_and_without_arousability():
    assert icans_grade(0, "awake", *NONE) == 3  # awake with global aphasia
    assert icans_grade(0, "unarousable", *NONE) == 4
    assert icans_grade(None, "unarousable", *NONE) == 4  # ICE not possible


@pytest.mark.parametrize("consciousness, grade", [
    ("awake", 0), ("awakens_spontaneously", 1), ("awakens_to_voice", 2),
    ("awakens_to_touch", 3), ("unarousable", 4)])
def test_consciousness(consciousness, grade):
    assert icans_grade(10, consciousness, *NONE) == grade


@pytest.mark.parametrize("seizure, motor, icp, grade", [
    ("rapidly_resolving", "none", "none", 3), ("eeg_resolved_with_intervention", "none", "none", 3),
    ("prolonged", "none", "none", 4), ("repetitive", "none", "none", 4),
    ("none", "hemiparesis", "none", 4), ("none", "paraparesis", "none", 4),
    ("none", "none", "focal_oedema", 3), ("none", "none", "diffuse_oedema", 4),
    ("none", "none", "posturing", 4), ("none", "none", "cn6_palsy", 4),
    ("none", "none", "papilloedema", 4), ("none", "none", "cushings_triad", 4)])
def test_seizure_motor_and_raised_icp(seizure, motor, icp, grade):
    assert icans_grade(10, "awake", seizure, motor, icp) == grade


def test_worst_domain_decides():
    assert icans_grade(3, "awake", "rapidly_resolving", "none", "none") == 3  # consensus example
    assert icans_grade(8, "awakens_to_voice", *NONE) == 2
    assert icans_grade(5, "awakens_spontaneously", "none", "none", "focal_oedema") == 3


def test_ice_score_items():
    assert ice_score(4, 3, 1, 1, 1) == 10
    assert ice_score(2, 1, 0, 0, 1) == 4
    with pytest.raises(EndpointError, match="orientation=5"):
        ice_score(5, 3, 1, 1, 1)


def test_bad_arguments():
    with pytest.raises(EndpointError, match="ice_score=11"):
        icans_grade(11, "awake", *NONE)
    with pytest.raises(EndpointError, match="ice_score=7.5"):
        icans_grade(7.5, "awake", *NONE)
    with pytest.raises(EndpointError, match="Did you mean 'unarousable'"):
        icans_grade(0, "unarousible", *NONE)
    with pytest.raises(EndpointError, match="Did you mean 'focal_oedema'"):
        icans_grade(10, "awake", "none", "none", "focal_edema")


def test_daily_grading():
    obs = validate_icans_observations(pd.DataFrame({
        "id": ["A", "A", "A"], "day": [3, 4, 5], "ice_score": [10, None, 8],
        "consciousness": ["awake", "unarousable", "awake"], "seizure": ["none"] * 3,
        "motor": ["none"] * 3, "raised_icp": ["none"] * 3}))
    assert grade_icans_days(obs)["grade"].tolist() == [0, 4, 1]
