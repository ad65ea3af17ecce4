"""AE and daily-observation input validation: every problem listed with row, column, value, fix."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.endpoints import (
    participants_from_data,
    read_ae,
    validate_ae,
    validate_crs_observations,
    validate_icans_observations,
)
from carkinetics.exceptions import DataError

from .conftest import CRS


def _good():
    return pd.DataFrame({
        "id": ["P1", "P1", "P2"], "term": [CRS, " Pneumonia ", "Anaemia"],
        "onset_day": [2, 40, 3], "resolution_day": [5, np.nan, 9], "grade": [2, 3.0, 1],
        "serious": ["Y", "true", 0], "category": ["crs", "infection", "cytopenia"],
        "site": ["01", "01", "02"]})


def test_valid_table_is_typed():
    out = validate_ae(_good())
    assert out["grade"].dtype == "int64" and out["grade"].tolist() == [2, 3, 1]
    assert out["serious"].tolist() == [True, True, False]
    assert out["term"].tolist() == [CRS, "Pneumonia", "Anaemia"]
    assert np.isnan(out["resolution_day"][1])
    assert out["row"].tolist() == [1, 2, 3] and out["site"].tolist() == ["01", "01", "02"]


def test_every_problem_is_listed():
    bad = _good().astype(object)
    bad.loc[0, "grade"] = 6
    bad.loc[1, "onset_day"] = "day 40"
    bad.loc[2, "resolution_day"] = 1           # before onset 3
    bad.loc[0, "serious"] = "maybe"
    bad.loc[1, "category"] = "infecton"
    bad.loc[2, "term"] = " "
    with pytest.raises(DataError) as exc:
        validate_ae(bad, source="ae.csv")
    err = exc.value
    assert len(err.problems) == 6 and err.source == "ae.csv"
    text = str(err)
    assert "6 problems found in ae.csv" in text
    assert "row 1, column 'grade': 6 is not a whole number in [1, 5]" in text
    assert "row 2, column 'onset_day': 'day 40' is not a number" in text
    assert "row 3, column 'resolution_day': 1 is before the onset day 3" in text
    assert "row 1, column 'serious': 'maybe' is not true or false" in text
    assert "row 2, column 'category': 'infecton'" in text and "Did you mean 'infection'?" in text
    assert "row 3, column 'term'" in text
    assert all("fix:" in p for p in err.problems)


def test_missing_columns_and_synonyms():
    df = _good().rename(columns={"term": "AETERM", "grade": "AETOXGR"}).drop(columns="serious")
    with pytest.raises(DataError) as exc:
        validate_ae(df)
    text = str(exc.value)
    assert "column 'term' (required) is missing" in text and "Found 'AETERM'" in text
    assert "Found 'AETOXGR'" in text and "column 'serious' (required) is missing" in text


def test_unknown_participant(tmp_path):
    p = pd.DataFrame({"id": ["P1", "P3"]})
    with pytest.raises(DataError, match="row 3, column 'id': 'P2' is not a participant"):
        validate_ae(_good(), participants=p)
    path = tmp_path / "ae.csv"
    _good().to_csv(path, index=False)
    assert len(read_ae(path, participants=pd.DataFrame({"id": ["P1", "P2"]}))) == 3
    with pytest.raises(DataError, match="ae.csv"):
        read_ae(path, participants=p)


def test_crs_observation_problems():
    df = pd.DataFrame({
        "id": ["A", "A", "A", "A"], "day": [1, 2, 2, 3],
        "temperature": [38.5, 101.2, 37.0, 37.0],
        "hypotension": ["none", "vasopresor", "none", "none"],
        "o2_route": ["room_air", "nasal_cannula", "facemask", "hood"],
        "o2_flow": [np.nan, np.nan, np.nan, np.nan]})
    with pytest.raises(DataError) as exc:
        validate_crs_observations(df, source="crs.csv")
    text = str(exc.value)
    assert "row 2, column 'temperature': 101.2" in text and "(F - 32) * 5 / 9" in text
    assert "row 2, column 'hypotension': 'vasopresor'" in text and "'vasopressor'" in text
    assert "row 4, column 'o2_route': 'hood'" in text
    assert "row 2, column 'o2_flow': missing on a nasal-cannula row" in text
    assert "row 3, column 'day': 2 repeats an earlier row of participant 'A'" in text


def test_crs_observations_need_fever_and_hypoxia_columns():
    with pytest.raises(DataError) as exc:
        validate_crs_observations(pd.DataFrame({"id": ["A"], "day": [1],
                                                "hypotension": ["none"]}))
    text = str(exc.value)
    assert "'fever' and 'temperature' are both missing" in text
    assert "'hypoxia' and 'o2_route' are both missing" in text


def test_icans_observation_problems():
    df = pd.DataFrame({"id": ["A", "A"], "day": [1, 2], "ice_score": [11, 7.5],
                       "consciousness": ["awake", "asleep"], "seizure": ["none", "none"],
                       "motor": ["none", "none"], "raised_icp": ["none", "none"]})
    with pytest.raises(DataError) as exc:
        validate_icans_observations(df)
    text = str(exc.value)
    assert "row 1, column 'ice_score': 11" in text and "row 2, column 'ice_score': 7.5" in text
    assert "row 2, column 'consciousness': 'asleep'" in text


def test_participants_from_data():
    data = pd.DataFrame({"id": ["B", "B", "A", "C"], "time": [-1.0, 90.0, 30.0, 10.0],
                         "dv": 1.0, "dose": [2e6, 2e6, 1e6, 2e6], "disease": "RA"})
    p = participants_from_data(data)
    assert p["id"].tolist() == ["A", "B", "C"]
    assert p["dose_level"].tolist() == [1, 2, 2]
    assert p["follow_up_days"].tolist() == [30.0, 90.0, 10.0]
    data.loc[3, "id"] = "B"
    data.loc[3, "dose"] = 3e6
    with pytest.raises(DataError, match="participant 'B', column 'dose': has several values"):
        participants_from_data(data)
    with pytest.raises(DataError, match="'dose_level' and 'dose' are both missing"):
        participants_from_data(data.drop(columns="dose"))
