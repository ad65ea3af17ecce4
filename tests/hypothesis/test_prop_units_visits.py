"""Property tests of the unit and visit vocabularies: arbitrary strings and numbers give a
value or a clear error (UnitError / ValueError naming the argument), never another
exception; conversions are exact and invertible where the factor allows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from _props import any_float, examples, odd_text
from hypothesis import event, given
from hypothesis import strategies as st

from carkinetics.data import ALL_VISITS, UNITS, UnitError, convert, to_canonical
from carkinetics.data.visits import assign_visits, visit_day, visit_label

_UNIT = st.one_of(st.sampled_from(list(UNITS)), odd_text, st.sampled_from(["mg/dl", "G/L",
                                                                           " g/L", None, 1]))


@examples(30)
@given(values=st.lists(any_float, max_size=5), a=_UNIT, b=_UNIT)
def test_convert_is_exact_or_a_unit_error(values, a, b):
    try:
        out = convert(values, a, b)
    except UnitError as err:
        event("UnitError")
        assert "unit" in str(err)
        return
    event("converted")
    x = np.asarray(values, dtype=float)
    assert out.shape == x.shape
    np.testing.assert_array_equal(np.isnan(out), np.isnan(x))
    # the same dimension both ways: back-conversion of a finite, non-overflowing value
    back = convert(out, b, a)
    ok = np.isfinite(out) & np.isfinite(x) & (np.abs(x) < 1e290) & (np.abs(x) > 1e-290)
    np.testing.assert_allclose(back[ok], x[ok], rtol=4e-16)


def test_convert_overflow_is_inf_without_a_warning():
    # regression (long profile): 1.8e306 g/L -> mg/dL overflowed with a RuntimeWarning
    out = convert([1.797693134862316e306, -1e307, 1.0], "g/L", "mg/dL")
    assert out.tolist() == [np.inf, -np.inf, 100.0]


@examples(20)
@given(data=st.data())
def test_to_canonical_converts_rows_or_raises_data_error(data):
    from carkinetics.data.schema import ENDPOINTS
    from carkinetics.exceptions import DataError

    n = data.draw(st.integers(0, 5))
    ep = [data.draw(st.one_of(st.sampled_from(["igg", "crp", "car_flow", "vas_pain"]),
                              odd_text)) for _ in range(n)]
    unit = [data.draw(st.one_of(st.none(), _UNIT)) for _ in range(n)]
    dv = [data.draw(any_float) for _ in range(n)]
    df = pd.DataFrame({"endpoint": ep, "unit": unit, "dv": dv}, dtype=object)
    try:
        out = to_canonical(df)
    except DataError as err:
        event("DataError")
        assert err.problems
        return
    event("converted")
    assert len(out) == n
    for i in range(n):
        info = ENDPOINTS[ep[i]]
        assert out["unit"][i] == info.unit
        u = info.unit if unit[i] is None else unit[i]
        expect = convert(float(dv[i]), u, info.unit)
        assert (np.isnan(expect) and np.isnan(out["dv"][i])) or out["dv"][i] == expect


@examples(30)
@given(label=st.one_of(odd_text, st.sampled_from(list(ALL_VISITS)),
                       st.from_regex(r"\A\s*(day|d|month|mo|m|Day|M)\s*[+-]?\d{1,4}\s*\Z"),
                       st.none(), st.integers()))
def test_visit_labels_parse_or_raise_value_error(label):
    try:
        day = visit_day(label)
    except ValueError as err:
        event("ValueError")
        assert "visit label" in str(err)
        return
    event("parsed")
    assert np.isfinite(day)
    if isinstance(label, str) and label in ALL_VISITS:
        assert visit_label(day) == label


@examples(20)
@given(times=st.lists(any_float, max_size=8), window=st.one_of(st.none(), any_float))
def test_assign_visits_labels_or_nan_or_value_error(times, window):
    try:
        out = assign_visits(times, window)
    except ValueError as err:
        event("ValueError")
        assert "window" in str(err)
        return
    assert len(out) == len(times)
    for t, lab in zip(times, out, strict=True):
        if isinstance(lab, str):
            assert abs(visit_day(lab) - t) <= (window if window is not None else 14.0)
        else:
            assert pd.isna(lab)
