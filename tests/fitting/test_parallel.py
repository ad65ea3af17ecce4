"""carkinetics.parallel.map_units: order, captured failures, workers, arguments."""

import math
import operator

import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.parallel import UnitFailure, default_workers, map_units


def test_in_process_order_and_failures():
    out = map_units(math.sqrt, [4.0, -1.0, 9.0, "x"], progress=False)
    assert out[0] == 2.0 and out[2] == 3.0
    assert isinstance(out[1], UnitFailure) and out[1].index == 1
    assert out[1].error == "ValueError" and "math domain error" in out[1].message
    assert out[3].error == "TypeError" and "Traceback" in out[3].traceback


def test_processes_give_the_same_results_in_order():
    units = [(i, 7) for i in range(23)] + [(1, 0)]
    one = map_units(_divmod, units, progress=False)
    two = map_units(_divmod, units, workers=2, chunksize=3, progress=False)
    assert one[:-1] == two[:-1] == [divmod(i, 7) for i in range(23)]
    assert isinstance(two[-1], UnitFailure) and two[-1].index == 23
    assert two[-1].error == one[-1].error == "ZeroDivisionError"


def _divmod(pair):
    return operator.floordiv(*pair), operator.mod(*pair)


def test_arguments():
    assert map_units(abs, [], progress=False) == []
    with pytest.raises(ModelSpecError, match="workers"):
        map_units(abs, [1], workers=0)
    with pytest.raises(ModelSpecError, match="chunksize"):
        map_units(abs, [1], chunksize=0)
    assert default_workers() >= 1


def test_progress_bar_writes_to_stderr(capsys):
    map_units(abs, [-1, -2], progress=True, desc="units")
    assert "units" in capsys.readouterr().err
