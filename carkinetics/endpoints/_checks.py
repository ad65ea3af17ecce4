"""Argument checks and exact arithmetic shared by the scoring functions (private).

Every bad argument raises :class:`EndpointError` (a ``ValueError``) whose message names the
argument, the bad value, what was expected and, where one exists, the nearest valid option
("Did you mean ...?"), as :func:`carkinetics._validation.check_option` does.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from fractions import Fraction

import numpy as np

from carkinetics._validation import check_option, closest
from carkinetics.exceptions import CarkineticsError

__all__ = ["EndpointError", "option", "flag", "number", "count", "exact", "is_missing"]


class EndpointError(CarkineticsError, ValueError):
    """A bad argument to a scoring or grading function (a ``ValueError``)."""


def option(name: str, value: object, options: Collection[str]) -> str:
    """Return ``value`` if it is one of ``options``; raise :class:`EndpointError` otherwise."""
    if not isinstance(value, str):
        raise EndpointError(f"Invalid {name}={value!r}; expected one of "
                            f"{sorted(map(str, options))} (a string)." + closest(value, options))
    return check_option(name, value, options, exc=EndpointError)


def flag(name: str, value: object) -> bool:
    """Return ``value`` as a bool if it is ``True``/``False`` (Python or NumPy)."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    hint = ""
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "y", "1"):
        hint = " Did you mean True?"
    elif isinstance(value, str) and value.strip().lower() in ("false", "no", "n", "0"):
        hint = " Did you mean False?"
    raise EndpointError(f"Invalid {name}={value!r}; expected True or False.{hint}")


def is_missing(value: object) -> bool:
    """Return True for ``None`` and float NaN (pandas' NA included)."""
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN and pd.NA-like values
    except (TypeError, ValueError):
        return False


def number(name: str, value: object, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, unit: str = "") -> float:
    """Return ``value`` as a finite float within ``[lo, hi]`` (``(lo, hi]`` if ``lo_open``)."""
    where = _range_text(lo, hi, lo_open, unit)
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise EndpointError(f"Invalid {name}={value!r}; expected a number {where}.")
    x = float(value)
    if not math.isfinite(x) or (lo is not None and (x <= lo if lo_open else x < lo)) or (
            hi is not None and x > hi):
        raise EndpointError(f"Invalid {name}={value!r}; expected a finite number {where}.")
    return x


def count(name: str, value: object, *, lo: int = 0, hi: int | None = None, what: str = "") -> int:
    """Return ``value`` as an int in ``[lo, hi]``; a float with a whole value is accepted."""
    where = _range_text(lo, hi, False, "") + (f" ({what})" if what else "")
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise EndpointError(f"Invalid {name}={value!r}; expected a whole number {where}.")
    x = float(value)
    if not math.isfinite(x) or not x.is_integer():
        raise EndpointError(f"Invalid {name}={value!r}; expected a whole number {where}.")
    if x < lo or (hi is not None and x > hi):
        raise EndpointError(f"Invalid {name}={value!r}; expected a whole number {where}.")
    return int(x)


def exact(value: float | int) -> Fraction:
    """Return ``value`` as the exact decimal it prints as (``repr``), e.g. 0.8 -> 4/5.

    Scores are recorded as short decimals (an ESR of 19.9, a VAS of 56.5), so reading the
    shortest round-trip decimal of a float gives exact rational arithmetic: ``80 / 100``
    is exactly 0.8, and a 20% improvement is exactly 20%, not 19.999999999999996%.
    """
    if isinstance(value, numbers.Integral):
        return Fraction(int(value))
    return Fraction(repr(float(value)))


def _range_text(lo, hi, lo_open, unit) -> str:
    u = f" {unit}" if unit else ""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo:g}, {hi:g}]{u}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo:g}{u}"
    if hi is not None:
        return f"<= {hi:g}{u}"
    return ""
