"""ASTCT 2019 CRS grading: the consensus table, masked fever, oxygen and vasopressor helpers."""

import pandas as pd
import pytest

from carkinetics.endpoints import (
    EndpointError,
    crs_grade,
    crs_grade_daily,
    grade_crs_days,
    hypotension_category,
    oxygen_category,
    validate_crs_observations,
)


@pytest.mark.parametrize("fever, hypotension, hypoxia, grade", [
    (False, "none", "none", 0),
    (True, "none", "none", 1),
    (True, "fluids", "none", 2),
    (True, "none", "low_flow", 2),
    (True, "fluids", "low_flow", 2),
    (True, "vasopressor", "none", 3),
    (True, "none", "high_flow", 3),
    (True, "vasopressor", "low_flow", 3),  # the consensus' own example: the worse criterion
    (True, "fluids", "high_flow", 3),
    (True, "multiple_vasopressors", "none", 4),
    (True, "none", "positive_pressure", 4),
    (True, "multiple_vasopressors", "high_flow", 4),
    (False, "vasopressor", "high_flow", 0),  # no fever, not masked: not CRS
    (False, "multiple_vasopressors", "positive_pressure", 0),
])
def test_consensus_table(fever, hypotension, hypoxia, grade):
    assert crs_grade(fever, hypotension, hypoxia) == grade
    assert crs_grade_daily(fever, hypotension, hypoxia) == grade


@pytest.mark.parametrize("hypotension, hypoxia, grade", [
    ("none", "none", 0), ("fluids", "none", 2), ("none", "low_flow", 2),
    ("vasopressor", "none", 3), ("none", "positive_pressure", 4)])
def test_fever_masked_by_antipyretic_or_anticytokine(hypotension, hypoxia, grade):
    # without fever and without treatment: no CRS; masked: graded on hypotension/hypoxia
    assert crs_grade_daily(False, hypotension, hypoxia) == 0
    assert crs_grade_daily(False, hypotension, hypoxia, fever_masked=True) == grade
    # a fever that is present still counts when masked
    assert crs_grade_daily(True, hypotension, hypoxia, fever_masked=True) == max(1, grade)


def test_death_is_grade_5():
    assert crs_grade_daily(True, "multiple_vasopressors", "positive_pressure", death=True) == 5


@pytest.mark.parametrize("route, flow, cat", [
    ("nasal_cannula", 6, "low_flow"), ("nasal_cannula", 6.0, "low_flow"),
    ("nasal_cannula", 6.01, "high_flow"), ("nasal_cannula", 0.5, "low_flow"),
    ("blow_by", None, "low_flow"), ("high_flow_nasal_cannula", None, "high_flow"),
    ("facemask", None, "high_flow"), ("non_rebreather", None, "high_flow"),
    ("venturi_mask", None, "high_flow"), ("cpap", None, "positive_pressure"),
    ("bipap", None, "positive_pressure"), ("mechanical_ventilation", None, "positive_pressure"),
    ("room_air", None, "none"), ("none", None, "none")])
def test_oxygen_category(route, flow, cat):
    assert oxygen_category(route, flow) == cat


def test_oxygen_category_needs_flow_for_a_cannula():
    with pytest.raises(EndpointError, match="flow_l_min"):
        oxygen_category("nasal_cannula")
    with pytest.raises(EndpointError, match="flow_l_min=-1"):
        oxygen_category("nasal_cannula", -1)


@pytest.mark.parametrize("present, n, vasopressin, cat", [
    (False, 0, False, "none"), (True, 0, False, "fluids"), (True, 0, True, "vasopressor"),
    (True, 1, False, "vasopressor"), (True, 1, True, "vasopressor"),
    (True, 2, False, "multiple_vasopressors"), (True, 3, True, "multiple_vasopressors")])
def test_hypotension_category(present, n, vasopressin, cat):
    assert hypotension_category(present, n, vasopressin) == cat


def test_hypotension_category_rejects_vasopressors_without_hypotension():
    with pytest.raises(EndpointError, match="hypotension=False"):
        hypotension_category(False, 1)


def test_bad_arguments_name_argument_value_and_nearest_option():
    with pytest.raises(EndpointError) as exc:
        crs_grade(True, "vasopresor", "none")
    msg = str(exc.value)
    assert "hypotension='vasopresor'" in msg and "expected one of" in msg
    assert "Did you mean 'vasopressor'?" in msg
    assert isinstance(exc.value, ValueError)
    with pytest.raises(EndpointError, match="Did you mean 'low_flow'"):
        crs_grade(True, "none", "low flow")
    with pytest.raises(EndpointError, match="Did you mean True"):
        crs_grade("yes", "none", "none")
    with pytest.raises(EndpointError, match="fever=1"):
        crs_grade(1, "none", "none")


def _obs(rows):
    cols = ["id", "day", "fever", "hypotension", "hypoxia", "antipyretic", "anticytokine"]
    return validate_crs_observations(pd.DataFrame(rows, columns=cols))


def test_daily_grading_masks_fever_after_treatment_of_crs():
    obs = _obs([
        ("A", 1, True, "none", "none", False, False),     # grade 1
        ("A", 2, True, "fluids", "none", False, True),    # grade 2, tocilizumab given
        ("A", 3, False, "vasopressor", "none", False, False),  # masked: grade 3
        ("A", 4, False, "none", "low_flow", False, False),     # masked: grade 2
        ("A", 5, False, "none", "none", False, False),         # resolved
        ("B", 1, False, "none", "none", True, False),     # prophylactic paracetamol, no CRS
        ("B", 2, False, "fluids", "none", False, False),  # hypotension without CRS fever
        ("C", 1, True, "none", "none", True, False),      # fever treated with an antipyretic
        ("C", 2, False, "fluids", "none", False, False),  # masked: grade 2
    ])
    g = grade_crs_days(obs)
    assert g.set_index(["id", "day"])["grade"].to_dict() == {
        ("A", 1): 1, ("A", 2): 2, ("A", 3): 3, ("A", 4): 2, ("A", 5): 0,
        ("B", 1): 0, ("B", 2): 0, ("C", 1): 1, ("C", 2): 2}
    assert g["fever_masked"].tolist() == [False, True, True, True, True, False, False, True,
                                          True]
    # the looser reading: any antipyretic masks fever from the day it is given
    loose = grade_crs_days(obs, require_prior_fever=False).set_index(["id", "day"])["grade"]
    assert loose[("B", 2)] == 2


def test_temperature_threshold_and_oxygen_route_columns():
    obs = validate_crs_observations(pd.DataFrame({
        "id": ["A", "A", "A"], "day": [1, 2, 3], "temperature": [37.9, 38.0, 38.4],
        "hypotension": ["none", "none", "fluids"],
        "o2_route": ["room_air", "nasal_cannula", "nasal_cannula"], "o2_flow": [None, 6, 8]}))
    assert obs["fever"].tolist() == [False, True, True]
    assert obs["hypoxia"].tolist() == ["none", "low_flow", "high_flow"]
    assert grade_crs_days(obs)["grade"].tolist() == [0, 2, 3]
