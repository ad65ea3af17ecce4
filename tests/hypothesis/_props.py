"""Shared strategies and helpers of the property-based suite (not a test module).

Example counts: the "ci" profile (default, see tests/hypothesis/conftest.py) runs ``n``
examples per test as given to :func:`examples`; CARKINETICS_HYPOTHESIS_PROFILE=long scales
them to the long profile's 2000 (x n / 40).
"""

from __future__ import annotations

import os

import pandas as pd
from hypothesis import settings
from hypothesis import strategies as st

LONG = os.environ.get("CARKINETICS_HYPOTHESIS_PROFILE", "ci") == "long"


def examples(n: int) -> settings:
    """Settings with ``n`` examples in CI, ``2000 * n / 40`` in the long profile."""
    return settings(max_examples=max(n, 2000 * n // 40) if LONG else n)


#: Floats spanning the whole double range, but finite (subnormals included).
finite = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)
#: Positive finite floats from subnormal to 1e308.
positive = st.floats(min_value=5e-324, max_value=1.7e308, allow_nan=False,
                     allow_infinity=False)
#: Any float, NaN and infinities included.
any_float = st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True)

NA_TOKENS = ["NA", "nan", "NaN", "None", "null", "NULL", "N/A", "n/a", "#N/A", "<NA>"]
#: Text that pandas would not read as a number: unicode, odd characters, NA tokens,
#: leading zeros, spaces, quotes, separators and newlines.
odd_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
            min_size=1, max_size=8),
    st.sampled_from(NA_TOKENS + ["007", " a ", 'say "hi"', "a,b", "line\nbreak", "é", "日本",
                                 "\u200b", "TRUE", "-", "+", "1,5", "<5", ">1e3", " "]),
)


def is_number_text(s: str) -> bool:
    """Whether pandas would read ``s`` as a number."""
    return bool(pd.notna(pd.to_numeric(pd.Series([s]), errors="coerce")[0]))


def same_cell(x, y) -> bool:
    """Equality of two cells: exact for numbers, NaN/None equal to each other, text exact."""
    if isinstance(x, str) or isinstance(y, str):
        return x == y
    if pd.isna(x) or pd.isna(y):
        return bool(pd.isna(x) and pd.isna(y))
    return bool(x == y)


def same_values(a, b) -> bool:
    """Element-wise :func:`same_cell` of two sequences of equal length."""
    a, b = list(a), list(b)
    return len(a) == len(b) and all(same_cell(x, y) for x, y in zip(a, b, strict=True))
