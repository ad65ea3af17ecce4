"""DLT flags: definition, window, evaluable / pending / not evaluable."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.endpoints import (
    DEFAULT_DLT,
    TYPICAL_DLT,
    DLTCriterion,
    DLTDefinition,
    EndpointError,
    dlt_flags,
    validate_ae,
)

from .conftest import ANC, CRS, ICANS

NAN = np.nan


def _ae(rows):
    df = pd.DataFrame(rows, columns=["id", "term", "onset_day", "resolution_day", "grade",
                                     "serious", "category"])
    return validate_ae(df)


def _people(follow, discontinued=None):
    p = pd.DataFrame({"id": [f"P{i + 1}" for i in range(len(follow))],
                      "dose_level": 1, "follow_up_days": follow})
    if discontinued is not None:
        p["discontinued"] = discontinued
    return p


def _status(flags):
    return flags.set_index("id")["status"].to_dict()


def test_default_definition():
    ae = _ae([("P1", CRS, 5, 8, 3, True, "crs"),       # grade 3 CRS in window: DLT
              ("P2", CRS, 3, 6, 2, False, "crs"),      # grade 2: not a DLT
              ("P3", ICANS, 28, 30, 3, True, "icans"),  # day 28: inside (inclusive)
              ("P4", ICANS, 29, 30, 4, True, "icans"),  # day 29: outside
              ("P5", "Pneumonia", 10, 20, 4, True, "infection")])  # not in the default
    f = dlt_flags(ae, _people([100.0] * 6), DEFAULT_DLT)
    assert _status(f) == {"P1": "dlt", "P2": "no_dlt", "P3": "dlt", "P4": "no_dlt",
                          "P5": "no_dlt", "P6": "no_dlt"}
    assert f["dlt"].tolist() == [True, False, True, False, False, False]
    assert f["evaluable"].all()
    p1 = f.set_index("id").loc["P1"]
    assert p1["dlt_day"] == 5 and "Cytokine release syndrome grade 3" in p1["dlt_reason"]


def test_pending_and_not_evaluable():
    ae = _ae([("P3", CRS, 2, 4, 4, True, "crs")])
    f = dlt_flags(ae, _people([20.0, 27.9, 10.0, 28.0], [False, True, False, False]))
    assert _status(f) == {"P1": "pending", "P2": "not_evaluable", "P3": "dlt", "P4": "no_dlt"}
    assert f["evaluable"].tolist() == [False, False, True, True]


def test_configurable_window():
    ae = _ae([("P1", CRS, 20, 22, 3, True, "crs")])
    d14 = DLTDefinition(window_days=14)
    assert _status(dlt_flags(ae, _people([30.0]), d14)) == {"P1": "no_dlt"}
    assert _status(dlt_flags(ae, _people([30.0]))) == {"P1": "dlt"}
    assert _status(dlt_flags(ae, _people([10.0]), d14)) == {"P1": "pending"}


def test_typical_definition_durations_and_persistence():
    ae = _ae([
        ("P1", CRS, 2, 3, 3, True, "crs"),      # grade 3 for 2 days: not a DLT
        ("P2", CRS, 2, 4, 3, True, "crs"),      # grade 3 for 3 days: DLT on day 4
        ("P3", ANC, 1, 20, 4, False, "cytopenia"),   # recovered by day 28
        ("P4", ANC, 1, NAN, 4, False, "cytopenia"),  # ongoing past day 28: DLT on day 28
        ("P5", ANC, 1, NAN, 4, False, "cytopenia"),  # ongoing, follow-up 25: undecided
        ("P6", CRS, 2, 2, 4, True, "crs"),      # any grade 4 CRS
    ])
    f = dlt_flags(ae, _people([60.0, 60.0, 60.0, 60.0, 25.0, 60.0]), TYPICAL_DLT)
    assert _status(f) == {"P1": "no_dlt", "P2": "dlt", "P3": "no_dlt", "P4": "dlt",
                          "P5": "pending", "P6": "dlt"}
    days = f.set_index("id")["dlt_day"]
    assert days["P2"] == 4 and days["P4"] == 28 and days["P6"] == 2


def test_ongoing_event_undecided_until_followed_long_enough():
    ae = _ae([("P1", CRS, 27, NAN, 3, True, "crs")])
    crit = DLTDefinition(criteria=(DLTCriterion("crs", 3, min_duration_days=3),))
    assert _status(dlt_flags(ae, _people([28.0]), crit)) == {"P1": "pending"}
    assert _status(dlt_flags(ae, _people([29.0]), crit)) == {"P1": "dlt"}


def test_bad_definitions():
    with pytest.raises(EndpointError, match="Did you mean 'icans'"):
        DLTCriterion("icns", 3)
    with pytest.raises(EndpointError, match="min_grade=6"):
        DLTCriterion("crs", 6)
    with pytest.raises(EndpointError, match="window_days=0"):
        DLTDefinition(window_days=0)
    with pytest.raises(EndpointError, match="follow_up_days"):
        dlt_flags(_ae([]), pd.DataFrame({"id": ["P1"], "dose_level": [1]}))
    assert "grade 3 crs lasting >= 3 d" in TYPICAL_DLT.criteria[1].describe()


def test_discontinued_column_with_empty_cells():
    ae = _ae([])
    p = _people([10.0, 10.0], [True, np.nan])
    assert _status(dlt_flags(ae, p)) == {"P1": "not_evaluable", "P2": "pending"}
