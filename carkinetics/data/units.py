"""Unit vocabulary and exact conversions.

Every unit belongs to one *dimension* and carries an exact rational factor to that
dimension's base unit, so a conversion multiplies (or divides) by an exact integer:

=====================  ==========================================================
dimension              units (factor to the base unit, the first one)
=====================  ==========================================================
mass concentration     g/L (1); mg/dL (1/100: 1 g/L = 100 mg/dL);
                       mg/L (1/1000: 1 g/L = 1000 mg/L; so 1 mg/dL = 10 mg/L)
cell concentration     cells/L (1); cells/uL = cells/mm3 (1e6: 1 cells/uL = 1e6 cells/L);
                       10^9/L (1e9: 1 cells/uL = 1e-3 x 10^9/L)
DNA copy number        copies/ug (1); "copies/ug gDNA" is an alias (1)
length (VAS)           mm (1); cm (10)
=====================  ==========================================================

Units of the other endpoints (``%``, ``IU/mL``, ``U/mL``, ``titre``, ``mm/h``, ``score``,
``count``) and of doses (``cells/kg``, ``cells``) and weight (``kg``) are each their own
dimension: they convert only to themselves. Unit strings are matched exactly (``mg/dl`` is
not ``mg/dL``); an unknown string raises :class:`UnitError` with the nearest known unit.

Because the factors are exact, a conversion is a single correctly rounded floating-point
multiplication or division (``850 mg/dL -> 8.5 g/L`` exactly).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from carkinetics._validation import closest
from carkinetics.data._report import fmt
from carkinetics.data.schema import ENDPOINTS
from carkinetics.exceptions import CarkineticsError, DataError

__all__ = [
    "UnitError",
    "UNITS",
    "dimension",
    "factor",
    "convert",
    "to_canonical",
    "dose_per_kg_to_total",
    "total_to_dose_per_kg",
]


class UnitError(CarkineticsError, ValueError):
    """An unknown unit, or a conversion between units of different dimensions."""


_MASS = "mass concentration"
_CELLS = "cell concentration"
#: unit -> (dimension, exact factor to the dimension's base unit)
UNITS: dict[str, tuple[str, Fraction]] = {
    "g/L": (_MASS, Fraction(1)),
    "mg/dL": (_MASS, Fraction(1, 100)),
    "mg/L": (_MASS, Fraction(1, 1000)),
    "cells/L": (_CELLS, Fraction(1)),
    "cells/uL": (_CELLS, Fraction(10**6)),
    "cells/mm3": (_CELLS, Fraction(10**6)),
    "10^9/L": (_CELLS, Fraction(10**9)),
    "copies/ug": ("DNA copy number", Fraction(1)),
    "copies/ug gDNA": ("DNA copy number", Fraction(1)),
    "mm": ("length", Fraction(1)),
    "cm": ("length", Fraction(10)),
    "%": ("percentage", Fraction(1)),
    "IU/mL": ("international units per volume", Fraction(1)),
    "U/mL": ("arbitrary units per volume", Fraction(1)),
    "titre": ("titre", Fraction(1)),
    "mm/h": ("sedimentation rate", Fraction(1)),
    "score": ("score", Fraction(1)),
    "count": ("count", Fraction(1)),
    "cells/kg": ("dose per body weight", Fraction(1)),
    "cells": ("cell number", Fraction(1)),
    "kg": ("body weight", Fraction(1)),
}


def _lookup(unit: object, argument: str) -> tuple[str, Fraction]:
    try:
        return UNITS[unit]  # type: ignore[index]
    except (KeyError, TypeError):
        raise UnitError(
            f"Unknown unit {argument}={unit!r}; expected one of {list(UNITS)}."
            + closest(unit, UNITS)
        ) from None


def dimension(unit: str) -> str:
    """Return the dimension a unit measures (e.g. ``"mass concentration"`` for ``"mg/dL"``).

    Parameters
    ----------
    unit : str
        A unit of :data:`UNITS`.

    Returns
    -------
    str
        The dimension's name.

    Raises
    ------
    UnitError
        If the unit is unknown.
    """
    return _lookup(unit, "unit")[0]


def factor(from_unit: str, to_unit: str) -> Fraction:
    """Return the exact factor ``f`` with ``value_in_to_unit = f * value_in_from_unit``.

    Parameters
    ----------
    from_unit, to_unit : str
        Units of :data:`UNITS` of the same dimension.

    Returns
    -------
    fractions.Fraction
        The exact conversion factor (``factor("g/L", "mg/dL") == 100``).

    Raises
    ------
    UnitError
        If a unit is unknown or the two measure different dimensions.
    """
    dim_from, f_from = _lookup(from_unit, "from_unit")
    dim_to, f_to = _lookup(to_unit, "to_unit")
    if dim_from != dim_to:
        same = [u for u, (d, _) in UNITS.items() if d == dim_from]
        raise UnitError(
            f"Cannot convert from_unit={from_unit!r} ({dim_from}) to to_unit={to_unit!r} "
            f"({dim_to}); {from_unit!r} converts only to {same}."
        )
    return f_from / f_to


def _apply(values: np.ndarray, num: np.ndarray | int, den: np.ndarray | int) -> np.ndarray:
    # One correctly rounded operation per value: x * num when den == 1, x / den when num == 1.
    # A result beyond the float range is +-inf (IEEE rounding), without a RuntimeWarning.
    with np.errstate(over="ignore"):
        return values * num / den


def convert(values: ArrayLike, from_unit: str, to_unit: str):
    """Convert values between two units of the same dimension, exactly.

    Parameters
    ----------
    values : float, array_like or pandas.Series
        Values in ``from_unit``. NaN and infinities pass through; a result beyond the
        float range (above ~1.8e308) is +-inf.
    from_unit, to_unit : str
        Units of :data:`UNITS` of the same dimension.

    Returns
    -------
    float, numpy.ndarray or pandas.Series
        The values in ``to_unit``: a float for a scalar, a Series (same index and name)
        for a Series, otherwise a float array.

    Raises
    ------
    UnitError
        If a unit is unknown or the units measure different dimensions.

    Examples
    --------
    >>> convert(850.0, "mg/dL", "g/L")
    8.5
    >>> convert([1.0, 2.5], "cells/uL", "10^9/L").tolist()
    [0.001, 0.0025]
    """
    f = factor(from_unit, to_unit)
    if isinstance(values, pd.Series):
        out = _apply(values.to_numpy(dtype="float64"), f.numerator, f.denominator)
        return pd.Series(out, index=values.index, name=values.name)
    arr = np.asarray(values, dtype="float64")
    out = _apply(arr, f.numerator, f.denominator)
    return float(out) if np.ndim(values) == 0 else out


#: Columns holding values in the row's unit (``nm_dv``: a NONMEM file's DV, see ``io``).
_VALUE_COLUMNS = ("dv", "lloq", "uloq", "limit", "nm_dv")


def to_canonical(df: pd.DataFrame) -> pd.DataFrame:
    """Convert each row's values (dv, lloq, uloq, limit) to its endpoint's canonical unit.

    Parameters
    ----------
    df : pandas.DataFrame
        A (validated) data table with ``endpoint`` and ``unit`` columns. A missing unit
        (NaN) means the row is already in the endpoint's canonical unit.

    Returns
    -------
    pandas.DataFrame
        A new table: ``dv``, ``lloq``, ``uloq``, ``limit`` (and ``nm_dv``, the DV of a
        NONMEM file) converted (as float) and ``unit`` rewritten to the
        canonical unit of :data:`carkinetics.data.schema.ENDPOINTS` on every row. A table
        without a ``unit`` column is returned as a copy.

    Raises
    ------
    DataError
        If ``unit`` is present without ``endpoint``, or a row has an unknown endpoint or a
        unit its endpoint does not accept.
    """
    out = df.copy()
    if "unit" not in out.columns:
        return out
    if "endpoint" not in out.columns:
        raise DataError(["to_canonical needs an 'endpoint' column to know each row's canonical "
                         "unit; add it (see carkinetics.data.ENDPOINTS)."])
    ep = out["endpoint"]
    canonical = ep.map({k: v.unit for k, v in ENDPOINTS.items()})
    unit = out["unit"].where(out["unit"].notna(), canonical)
    groups = pd.DataFrame({"endpoint": ep, "unit": unit}).groupby(
        ["endpoint", "unit"], dropna=False, sort=False).indices
    num = np.ones(len(out), dtype="int64")
    den = np.ones(len(out), dtype="int64")
    problems = []
    for (e, u), rows in groups.items():  # one pass per distinct (endpoint, unit)
        info = ENDPOINTS.get(e) if isinstance(e, str) else None
        first = f"row {rows[0] + 1}" + (f" and {len(rows) - 1} more" if len(rows) > 1 else "")
        if info is None:
            problems.append(f"{first}, column 'endpoint': unknown endpoint {e!r}."
                            + closest(e, ENDPOINTS))
        elif u not in info.units:
            problems.append(f"{first}, column 'unit': {u!r} is not a unit of {e!r}; "
                            f"accepted: {list(info.units)}." + closest(u, info.units))
        elif u != info.unit:
            f = factor(u, info.unit)
            num[rows], den[rows] = f.numerator, f.denominator
    if problems:
        raise DataError(problems)
    for col in _VALUE_COLUMNS:
        if col in out.columns:
            out[col] = _apply(out[col].to_numpy(dtype="float64"), num, den)
    out["unit"] = canonical
    return out


def _check_weight(weight: np.ndarray) -> None:
    bad = np.flatnonzero(~(np.isfinite(weight) & (weight > 0)))
    if bad.size:
        raise DataError([f"weight[{i}] = {fmt(weight.flat[i])} kg is not a positive finite "
                         "body weight; fix: give the body weight in kg." for i in bad[:20]])


def dose_per_kg_to_total(dose_per_kg: ArrayLike, weight: ArrayLike):
    """Return the total number of CAR-T cells given a dose per kg and the body weight.

    Parameters
    ----------
    dose_per_kg : float or array_like
        Dose (CAR-T cells/kg).
    weight : float or array_like
        Body weight (kg), positive; broadcast against ``dose_per_kg``.

    Returns
    -------
    float or numpy.ndarray
        Total dose (CAR-T cells).

    Raises
    ------
    DataError
        If a weight is not positive and finite.

    Examples
    --------
    >>> dose_per_kg_to_total(1e6, 70.0)
    70000000.0
    """
    d = np.asarray(dose_per_kg, dtype="float64")
    w = np.asarray(weight, dtype="float64")
    _check_weight(w)
    out = d * w
    return float(out) if out.ndim == 0 else out


def total_to_dose_per_kg(total: ArrayLike, weight: ArrayLike):
    """Return the dose per kg given a total number of CAR-T cells and the body weight.

    Parameters
    ----------
    total : float or array_like
        Total dose (CAR-T cells).
    weight : float or array_like
        Body weight (kg), positive; broadcast against ``total``.

    Returns
    -------
    float or numpy.ndarray
        Dose (CAR-T cells/kg).

    Raises
    ------
    DataError
        If a weight is not positive and finite.

    Examples
    --------
    >>> total_to_dose_per_kg(7e7, 70.0)
    1000000.0
    """
    t = np.asarray(total, dtype="float64")
    w = np.asarray(weight, dtype="float64")
    _check_weight(w)
    out = t / w
    return float(out) if out.ndim == 0 else out
