import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carkinetics.data import (
    ENDPOINTS,
    UNITS,
    UnitError,
    convert,
    dose_per_kg_to_total,
    to_canonical,
    total_to_dose_per_kg,
)
from carkinetics.data.units import dimension, factor
from carkinetics.exceptions import DataError


@pytest.mark.parametrize(
    ("value", "src", "dst", "expected"),
    [
        (1.0, "g/L", "mg/dL", 100.0),
        (850.0, "mg/dL", "g/L", 8.5),
        (1.0, "g/L", "mg/L", 1000.0),
        (7.3, "mg/L", "g/L", 0.0073),
        (1.0, "mg/dL", "mg/L", 10.0),
        (12.0, "mg/L", "mg/dL", 1.2),  # CRP
        (250.0, "cells/uL", "cells/mm3", 250.0),
        (1.0, "cells/uL", "cells/L", 1e6),
        (1.0, "cells/uL", "10^9/L", 1e-3),
        (0.012, "10^9/L", "cells/uL", 12.0),
        (3e9, "cells/L", "10^9/L", 3.0),
        (4.5, "cm", "mm", 45.0),
        (73.0, "mm", "cm", 7.3),
        (52000.0, "copies/ug gDNA", "copies/ug", 52000.0),
        (5.0, "%", "%", 5.0),
    ],
)
def test_convert_hand_values(value, src, dst, expected):
    # Each expected value is the decimal result worked by hand; the conversion is a single
    # correctly rounded operation, so it equals the nearest double exactly.
    assert convert(value, src, dst) == expected


def test_exact_factors():
    assert factor("g/L", "mg/dL") == 100
    assert factor("mg/dL", "mg/L") == 10
    assert str(factor("cells/uL", "10^9/L")) == "1/1000"
    assert str(factor("10^9/L", "cells/uL")) == "1000"
    assert dimension("mg/dL") == "mass concentration"


def test_convert_keeps_container_types():
    s = pd.Series([850.0, np.nan, 120.0], index=[10, 11, 12], name="dv")
    out = convert(s, "mg/dL", "g/L")
    assert isinstance(out, pd.Series)
    assert out.index.tolist() == [10, 11, 12] and out.name == "dv"
    np.testing.assert_array_equal(out.to_numpy(), [8.5, np.nan, 1.2])
    arr = convert([[1.0, 2.0]], "cm", "mm")
    assert isinstance(arr, np.ndarray) and arr.shape == (1, 2) and arr.tolist() == [[10.0, 20.0]]
    assert isinstance(convert(1, "g/L", "g/L"), float)
    assert convert(np.inf, "g/L", "mg/dL") == np.inf


def test_unknown_unit_hint():
    with pytest.raises(UnitError, match=r"Unknown unit from_unit='mg/dl'.*Did you mean 'mg/dL'"):
        convert(1.0, "mg/dl", "g/L")
    with pytest.raises(ValueError, match="to_unit='cells/ul'"):  # a ValueError subclass
        convert(1.0, "cells/uL", "cells/ul")


def test_incompatible_units():
    with pytest.raises(UnitError, match=r"Cannot convert .*'g/L' \(mass concentration\) to "
                                        r"to_unit='cells/uL' \(cell concentration\)"):
        convert(1.0, "g/L", "cells/uL")


def test_every_endpoint_unit_converts_to_canonical():
    for info in ENDPOINTS.values():
        assert info.unit in info.units
        for u in info.units:
            assert u in UNITS
            assert dimension(u) == dimension(info.unit)


def test_to_canonical():
    df = pd.DataFrame({
        "id": [1, 1, 1, 1, 2],
        "endpoint": ["igg", "igg", "crp", "car_flow", "vas_pain"],
        "unit": ["mg/dL", None, "mg/dL", "10^9/L", "cm"],
        "dv": [850.0, 9.0, 1.2, 0.012, 4.5],
        "lloq": [10.0, 0.1, 0.1, 0.001, np.nan],
        "uloq": [np.inf, np.nan, 25.0, np.nan, np.nan],
        "limit": [0.0, np.nan, np.nan, np.nan, np.nan],
        "note": list("abcde"),
    })
    out = to_canonical(df)
    assert out["unit"].tolist() == ["g/L", "g/L", "mg/L", "cells/uL", "mm"]
    np.testing.assert_array_equal(out["dv"], [8.5, 9.0, 12.0, 12.0, 45.0])
    np.testing.assert_array_equal(out["lloq"], [0.1, 0.1, 1.0, 1.0, np.nan])
    np.testing.assert_array_equal(out["uloq"], [np.inf, np.nan, 250.0, np.nan, np.nan])
    np.testing.assert_array_equal(out["limit"], [0.0, np.nan, np.nan, np.nan, np.nan])
    assert out["note"].tolist() == list("abcde")
    assert df["dv"].tolist() == [850.0, 9.0, 1.2, 0.012, 4.5]  # input untouched


def test_to_canonical_problems():
    df = pd.DataFrame({"endpoint": ["igg", "iggg"], "unit": ["cells/uL", "g/L"], "dv": [1.0, 2.0]})
    with pytest.raises(DataError) as err:
        to_canonical(df)
    assert err.value.problems == [
        "row 1, column 'unit': 'cells/uL' is not a unit of 'igg'; accepted: "
        "['g/L', 'mg/dL', 'mg/L'].",
        "row 2, column 'endpoint': unknown endpoint 'iggg'. Did you mean 'igg'?",
    ]
    with pytest.raises(DataError, match="needs an 'endpoint' column"):
        to_canonical(pd.DataFrame({"unit": ["g/L"], "dv": [1.0]}))
    no_unit = pd.DataFrame({"endpoint": ["igg"], "dv": [1.0]})
    pd.testing.assert_frame_equal(to_canonical(no_unit), no_unit)


def test_dose_helpers():
    assert dose_per_kg_to_total(1e6, 70.0) == 7e7
    assert total_to_dose_per_kg(7e7, 70.0) == 1e6
    np.testing.assert_array_equal(dose_per_kg_to_total([1e6, 5e6], [50.0, 80.0]), [5e7, 4e8])
    np.testing.assert_array_equal(total_to_dose_per_kg([5e7, 4e8], [50.0, 80.0]), [1e6, 5e6])
    with pytest.raises(DataError, match=r"weight\[1\] = 0 kg is not a positive finite"):
        dose_per_kg_to_total([1e6, 1e6], [70.0, 0.0])
    with pytest.raises(DataError, match="NaN kg"):
        total_to_dose_per_kg(1e8, np.nan)


@settings(max_examples=50, deadline=None)
@given(x=st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
       pair=st.sampled_from([("g/L", "mg/dL"), ("g/L", "mg/L"), ("mg/dL", "mg/L"),
                             ("cells/uL", "10^9/L"), ("cells/L", "cells/uL"), ("mm", "cm")]))
def test_convert_round_trip_property(x, pair):
    a, b = pair
    there = convert(x, a, b)
    assert there == pytest.approx(x * float(factor(a, b)), rel=1e-15)
    assert convert(there, b, a) == pytest.approx(x, rel=4e-16)
