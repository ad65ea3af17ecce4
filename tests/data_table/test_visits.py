import numpy as np
import pandas as pd
import pytest

from carkinetics.data import (
    ALL_VISITS,
    DAYS_PER_MONTH,
    DENSE_VISITS,
    PROTOCOL_VISITS,
    assign_visits,
    visit_day,
    visit_label,
)
from carkinetics.data.visits import visit_window

# Nominal days worked by hand: Month k = k * 365.25 / 12 days.
NOMINAL = {
    "Day -1": -1.0, "Day 14": 14.0, "Day 21": 21.0, "Day 28": 28.0, "Month 2": 60.875,
    "Month 3": 91.3125, "Month 6": 182.625, "Month 9": 273.9375, "Month 12": 365.25,
    "Month 18": 547.875, "Month 24": 730.5,
}


def test_schedule_constants():
    assert DAYS_PER_MONTH == 30.4375
    assert PROTOCOL_VISITS == tuple(NOMINAL)
    assert DENSE_VISITS == ("Day 1", "Day 4", "Day 7", "Day 10")
    assert [visit_day(v) for v in ALL_VISITS] == sorted(visit_day(v) for v in ALL_VISITS)


@pytest.mark.parametrize(("label", "day"), NOMINAL.items())
def test_visit_day_and_back(label, day):
    assert visit_day(label) == day
    assert visit_label(day) == label


@pytest.mark.parametrize(("spelling", "day"), [
    ("Day 14", 14.0), ("D14", 14.0), ("day14", 14.0), ("  DAY 14 ", 14.0), ("d 7", 7.0),
    ("Month 3", 91.3125), ("M3", 91.3125), ("month3", 91.3125), ("Mo 6", 182.625),
    ("Baseline", -1.0), ("baseline", -1.0), ("Day -1", -1.0), ("D-1", -1.0), ("Day 4", 4.0),
])
def test_visit_day_spellings(spelling, day):
    assert visit_day(spelling) == day


def test_days_per_month_override():
    assert visit_day("Month 3", days_per_month=30.0) == 90.0
    assert visit_label(90.0, days_per_month=30.0) == "Month 3"
    assert visit_label(182.0, days_per_month=30.0 + 1 / 3) == "Month 6"


@pytest.mark.parametrize("bad", ["Week 2", "Month 0", "M-1", "14", "", None])
def test_visit_day_rejects(bad):
    with pytest.raises(ValueError, match="Invalid visit label"):
        visit_day(bad)


def test_visit_label_dense_and_arrays():
    assert [visit_label(d) for d in (1, 4, 7, 10)] == list(DENSE_VISITS)
    out = visit_label(np.array([[-1.0, 60.875], [28.0, 730.5]]))
    assert out.tolist() == [["Day -1", "Month 2"], ["Day 28", "Month 24"]]


def test_visit_label_exact_unless_tolerance():
    with pytest.raises(ValueError, match=r"day=91.0: not a nominal visit day.*assign_visits"):
        visit_label(91.0)
    assert visit_label(91.0, atol=0.5) == "Month 3"  # day 91.3125 rounded to a whole day
    with pytest.raises(ValueError, match=r"day=\[15.0\]"):
        visit_label([14.0, 15.0])


def test_windows():
    assert [visit_window(v) for v in ("Day 14", "Month 2", "Month 3", "Month 6", "M24")] == \
        [2.0, 7.0, 7.0, 14.0, 14.0]


def test_assign_visits_default_windows():
    times = [-2.5, -1.2, 0.9, 12.0, 16.0, 16.1, 45.0, 54.0, 53.8, 98.3, 98.4, 169.0, 168.6,
             np.nan, 5000.0]
    expected = ["Day -1", "Day -1", "Day -1", "Day 14", "Day 14", np.nan, np.nan, "Month 2",
                np.nan, "Month 3", np.nan, "Month 6", np.nan, np.nan, np.nan]
    out = assign_visits(times)
    assert isinstance(out, np.ndarray)
    pd.testing.assert_series_equal(pd.Series(out, dtype=object), pd.Series(expected, dtype=object))


def test_assign_visits_dense_ties_and_windows():
    out = assign_visits([0.0, 2.5, 5.5, 8.5, 11.9], visits=ALL_VISITS)
    # 0 is equidistant from Day -1 and Day 1 (earlier wins); 2.5 from Day 1 and Day 4.
    assert out.tolist() == ["Day -1", "Day 1", "Day 4", "Day 7", "Day 10"]
    assert assign_visits([17.0], window=3.0).tolist() == ["Day 14"]
    assert pd.isna(assign_visits([17.0])[0])
    assert assign_visits([75.0], window={"M2": 15}).tolist() == ["Month 2"]
    with pytest.raises(ValueError, match="half-widths must be >= 0"):
        assign_visits([1.0], window=-1)


def test_assign_visits_series_and_round_trip():
    s = pd.Series([13.5, 92.0], index=["a", "b"])
    out = assign_visits(s)
    assert out.index.tolist() == ["a", "b"] and out.tolist() == ["Day 14", "Month 3"]
    nominal = [visit_day(v) for v in PROTOCOL_VISITS]
    assert assign_visits(nominal).tolist() == list(PROTOCOL_VISITS)
