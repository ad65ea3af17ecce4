"""HAQ disability index (Stanford HAQ-DI, ARAMIS scoring).

Rules (CLINICAL.md 4.8, R/S; the minimum of 6 answered categories is S: LOINC 75874-8
definition):

* 20 items in 8 categories (:data:`HAQ_CATEGORIES`), each item 0 = without any
  difficulty, 1 = with some, 2 = with much, 3 = unable to do;
* a category's score is its highest item score (:func:`haq_category_score`);
* if aids or devices, or help from another person, are used for a category, its score is
  raised from 0 or 1 to 2; a 2 or 3 stays (:data:`HAQ_DEVICES` maps each device to its
  category);
* HAQ-DI = sum of the category scores / number of categories answered, which must be at
  least 6 (otherwise the index is missing); range 0-3.

Decision (I): aids or devices marked for a category that is not answered do not make it
answered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from carkinetics.endpoints._checks import EndpointError, count, flag, is_missing, option

__all__ = ["HAQ_CATEGORIES", "HAQ_DEVICES", "MIN_ANSWERED", "haq_di", "haq_category_score",
           "aids_by_category"]

#: The 8 categories, in the order of ``category_scores``.
HAQ_CATEGORIES: tuple[str, ...] = ("dressing", "arising", "eating", "walking", "hygiene",
                                   "reach", "grip", "activities")
#: Device -> category (ARAMIS aids/devices list).
HAQ_DEVICES: dict[str, str] = {
    "button_hook": "dressing", "zipper_pull": "dressing", "long_handled_shoe_horn": "dressing",
    "built_up_chair": "arising", "built_up_utensils": "eating", "cane": "walking",
    "walker": "walking", "crutches": "walking", "wheelchair": "walking",
    "raised_toilet_seat": "hygiene", "bathtub_seat": "hygiene", "bathtub_bar": "hygiene",
    "long_handled_bathroom_appliances": "hygiene",
    "long_handled_reach_appliances": "reach", "jar_opener": "grip",
}
#: Fewest categories answered for a valid index.
MIN_ANSWERED: int = 6


def haq_category_score(item_scores: Sequence[int | None]) -> int | None:
    """Return a category's score: its highest item score (None if no item is answered).

    Examples
    --------
    >>> haq_category_score([1, None, 2])
    2
    """
    answered = [count("item score", s, hi=3) for s in item_scores if not is_missing(s)]
    return max(answered) if answered else None


def aids_by_category(devices: Iterable[str] = (), help_with: Iterable[str] = ()) -> list[bool]:
    """Return the ``aids_devices`` flags of :func:`haq_di` from devices and help needed.

    Parameters
    ----------
    devices : iterable of str
        Devices used (keys of :data:`HAQ_DEVICES`).
    help_with : iterable of str
        Categories (:data:`HAQ_CATEGORIES`) for which help from another person is needed.

    Returns
    -------
    list of bool
        One flag per category, in :data:`HAQ_CATEGORIES` order.

    Examples
    --------
    >>> aids_by_category(["cane"], ["activities"])
    [False, False, False, True, False, False, False, True]
    """
    cats = {HAQ_DEVICES[option("device", d, HAQ_DEVICES)] for d in devices}
    cats |= {option("help_with", c, HAQ_CATEGORIES) for c in help_with}
    return [c in cats for c in HAQ_CATEGORIES]


def haq_di(category_scores: Sequence[int], aids_devices: Sequence[bool] | None = None, *,
           min_answered: int = MIN_ANSWERED) -> float:
    """Return the HAQ-DI (0-3) from the 8 category scores and the aids/devices flags.

    Parameters
    ----------
    category_scores : sequence of int
        8 scores (0-3) in :data:`HAQ_CATEGORIES` order: dressing, arising, eating,
        walking, hygiene, reach, grip, activities. None or NaN = not answered.
    aids_devices : sequence of bool, optional
        8 flags, same order: aids, devices or help from another person used for the
        category. None = no aids anywhere (the "alternative DI" ignores them this way).
    min_answered : int, default 6
        Fewest answered categories for a valid index.

    Returns
    -------
    float
        Mean of the answered (aid-adjusted) category scores; NaN if fewer than
        ``min_answered`` are answered.

    Raises
    ------
    EndpointError
        For a sequence that is not of length 8, or a score or flag out of range.

    Examples
    --------
    >>> haq_di([1, 0, 0, 1, 2, 1, 0, 1])
    0.75
    >>> haq_di([1, 0, 0, 1, 2, 1, 0, 1], [False, False, False, True, False, False, False,
    ...                                   False])  # a cane: walking 1 -> 2
    0.875
    """
    scores = _eight("category_scores", category_scores)
    aids = [False] * 8 if aids_devices is None else _eight("aids_devices", aids_devices)
    n_min = count("min_answered", min_answered, lo=1, hi=8)
    total, answered = 0, 0
    for name, score, aid in zip(HAQ_CATEGORIES, scores, aids, strict=True):
        used = False if is_missing(aid) else flag(f"aids_devices[{name!r}]", aid)
        if is_missing(score):
            continue
        s = count(f"category_scores[{name!r}]", score, hi=3)
        total += max(s, 2) if used else s
        answered += 1
    return total / answered if answered >= n_min else math.nan


def _eight(name: str, values: Sequence) -> list:
    if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray) or len(
            values) != 8:
        raise EndpointError(f"Invalid {name}={values!r}; expected a sequence of 8 values, one "
                            f"per category {list(HAQ_CATEGORIES)}.")
    return list(np.asarray(values, dtype=object)) if isinstance(values, np.ndarray) \
        else list(values)
