"""HAQ-DI: category scores, the aids/devices rule and missing categories."""

import math

import numpy as np
import pytest

from carkinetics.endpoints import EndpointError, aids_by_category, haq_di
from carkinetics.endpoints.haq import haq_category_score

NO = [False] * 8


def _aid(*idx):
    return [i in idx for i in range(8)]


def test_mean_of_category_scores():
    assert haq_di([0] * 8) == 0.0
    assert haq_di([3] * 8) == 3.0
    assert haq_di([1, 0, 0, 1, 2, 1, 0, 1]) == 6 / 8
    assert haq_di([1, 0, 0, 1, 2, 1, 0, 1], NO) == 6 / 8


def test_aids_raise_0_and_1_to_2_but_not_2_or_3():
    scores = [0, 1, 2, 3, 0, 0, 0, 0]
    assert haq_di(scores) == 6 / 8
    assert haq_di(scores, _aid(0)) == 8 / 8   # 0 -> 2
    assert haq_di(scores, _aid(1)) == 7 / 8   # 1 -> 2
    assert haq_di(scores, _aid(2, 3)) == 6 / 8  # 2 and 3 stay
    assert haq_di(scores, _aid(0, 1, 2, 3)) == 9 / 8


def test_unanswered_categories():
    scores = [1, 1, 1, 1, 1, 1, 1, None]
    assert haq_di(scores) == 1.0                        # 7 answered: / 7
    assert haq_di([2, 1, 1, 1, 1, 1, None, np.nan]) == 7 / 6  # 6 answered
    assert math.isnan(haq_di([1, 1, 1, 1, 1, None, None, None]))  # 5: missing index
    # an aid on an unanswered category does not answer it
    assert math.isnan(haq_di([1, 1, 1, 1, 1, None, None, None], _aid(6, 7)))
    assert haq_di([1, 1, 1, 1, 1, None, None, None], min_answered=5) == 1.0


def test_numpy_input():
    assert haq_di(np.array([1.0, 0, 0, 1, 2, 1, 0, 1]), np.array(NO)) == 0.75


@pytest.mark.parametrize("scores, aids, match", [
    ([0] * 7, None, "sequence of 8"),
    ([0] * 7 + [4], None, "activities'\\]=4"),
    ([0] * 7 + [1.5], None, "activities'\\]=1.5"),
    ([0] * 8, [1] + [False] * 7, "dressing'\\]=1"),
    ([0] * 8, [False] * 7, "sequence of 8"),
])
def test_bad_arguments(scores, aids, match):
    with pytest.raises(EndpointError, match=match):
        haq_di(scores, aids)


def test_category_score_and_devices():
    assert haq_category_score([0, 2, 1]) == 2
    assert haq_category_score([None, None]) is None
    assert aids_by_category(["cane", "jar_opener"], ["activities"]) == _aid(3, 6, 7)
    with pytest.raises(EndpointError, match="Did you mean 'walker'"):
        aids_by_category(["walkr"])
