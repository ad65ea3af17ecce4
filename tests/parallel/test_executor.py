"""carkinetics.parallel: backends give identical results; retry; streaming; arguments."""

import math

import numpy as np
import pytest

from carkinetics.exceptions import ModelSpecError
from carkinetics.parallel import UnitFailure, iter_units, map_units, scheduler_workers

from .parallel_units import broken, draw, flaky, killer

UNITS = [(2024, i) for i in range(40)]


def _expected():
    """Independent computation: the same seeded draws, done here unit by unit."""
    out = []
    for seed, i in UNITS:
        ss = np.random.SeedSequence(seed).spawn(i + 1)[i]
        x = np.random.default_rng(ss).standard_normal(50)
        out.append(x)
    return out


def _same(results, expected):
    assert len(results) == len(expected)
    for i, (r, x) in enumerate(zip(results, expected, strict=True)):
        assert r["i"] == i
        assert r["x"].tobytes() == x.tobytes()  # bit-identical
        assert r["mean"] == float(x.mean())


@pytest.mark.parametrize("kw", [
    {"workers": 1},
    {"scheduler": "in-process", "workers": 4},
    {"workers": 2},
    {"scheduler": "processes", "workers": 3, "chunksize": 7},
])
def test_local_backends_are_bit_identical(kw):
    _same(map_units(draw, UNITS, progress=False, **kw), _expected())


def test_dask_cluster_is_bit_identical(dask_address):
    _same(map_units(draw, UNITS, scheduler=dask_address, progress=False), _expected())
    _same(map_units(draw, UNITS, scheduler=dask_address, chunksize=1, progress=False),
          _expected())
    assert scheduler_workers(dask_address, 1) == 2


def test_local_dask_starts_and_closes_its_own_cluster():
    pytest.importorskip("distributed")
    _same(map_units(draw, UNITS[:6], scheduler="local-dask", workers=1, progress=False),
          _expected()[:6])


def test_streaming_yields_every_index_once_from_a_generator():
    seen = {}
    stats = {}
    gen = ((7, i) for i in range(25))
    for i, r in iter_units(draw, gen, workers=2, chunksize=4, progress=False, stats=stats):
        assert i not in seen
        seen[i] = r["mean"]
    assert sorted(seen) == list(range(25))
    assert stats["computed"] == 25 and stats["loaded"] == 0 and stats["failed"] == 0


def test_closing_the_stream_early_stops_the_workers():
    it = iter_units(draw, UNITS, workers=2, chunksize=2, progress=False)
    first = next(it)
    it.close()
    assert first[0] in range(40)


@pytest.mark.parametrize("kw", [{"workers": 1}, {"workers": 2, "chunksize": 2}])
def test_a_unit_that_raises_once_is_retried(tmp_path, kw):
    units = [(str(tmp_path), i) for i in range(7)]
    stats = {}
    out = map_units(flaky, units, progress=False, stats=stats, **kw)
    assert out == [i * i for i in range(7)]
    attempts = {i: len(list(tmp_path.glob(f"u{i}-*"))) for i in range(7)}
    assert attempts == {i: 2 if i % 3 == 0 else 1 for i in range(7)}
    assert stats["failed"] == 0


def test_retries_zero_records_the_first_failure(tmp_path):
    out = map_units(flaky, [(str(tmp_path), 3)], retries=0, progress=False)
    assert isinstance(out[0], UnitFailure) and out[0].attempts == 1
    assert out[0].message == "transient failure of unit 3"


@pytest.mark.parametrize("kw", [{"workers": 1}, {"scheduler": "processes", "workers": 1}])
def test_a_unit_that_always_raises_is_recorded_with_its_reason(tmp_path, kw):
    units = [(str(tmp_path), i) for i in range(5)]
    out = map_units(broken, units, progress=False, **kw)
    assert [out[i] for i in (0, 1, 3, 4)] == [0, 1, 3, 4]
    f = out[2]
    assert isinstance(f, UnitFailure)
    assert (f.index, f.error, f.message, f.attempts) == (2, "ValueError",
                                                         "unit 2 is always wrong", 2)
    assert "Traceback" in f.traceback
    assert len(list(tmp_path.glob("u2-*"))) == 2


def test_a_worker_that_dies_is_retried_and_the_batch_completes(tmp_path):
    units = [(str(tmp_path), i) for i in range(6)]
    stats = {}
    out = map_units(killer, units, workers=2, chunksize=2, scheduler="processes",
                    progress=False, stats=stats)
    assert [out[i] for i in (0, 1, 2, 4, 5)] == [0, -1, -2, -4, -5]
    f = out[3]
    assert isinstance(f, UnitFailure) and f.error == "WorkerDied" and f.index == 3
    assert f.attempts == 2 and "exit code 17" in f.message
    # unit 1 died once (its chunk [0, 1] re-ran unit by unit); unit 3 died on both attempts
    assert len(list(tmp_path.glob("u1-*"))) == 2
    assert len(list(tmp_path.glob("u3-*"))) == 2
    assert stats["failed"] == 1 and stats["worker_deaths"] == 3


def test_a_dask_worker_that_dies_is_retried_and_the_batch_completes(tmp_path, dask_address):
    units = [(str(tmp_path), i) for i in (2, 3)]  # one chunk: unit 3 always kills its worker
    stats = {}
    out = map_units(killer, units, chunksize=2, scheduler=dask_address, progress=False,
                    stats=stats)
    assert out[0] == -2  # re-run alone after the chunk's worker died
    f = out[1]
    assert isinstance(f, UnitFailure) and f.error == "WorkerDied" and f.attempts == 2
    assert "KilledWorker" in f.message
    assert len(list(tmp_path.glob("u3-*"))) == 2
    assert stats["failed"] == 1 and stats["worker_deaths"] == 2


def test_arguments():
    with pytest.raises(ModelSpecError, match="scheduler='proceses'.*Did you mean 'processes'"):
        map_units(abs, [1], scheduler="proceses")
    with pytest.raises(ModelSpecError, match="retries"):
        map_units(abs, [1], retries=-1)
    with pytest.raises(ModelSpecError, match="workers"):
        map_units(abs, [1], workers=True)
    assert map_units(math.floor, [], workers=2) == []


@pytest.mark.parametrize("scheduler", ["local-dask", "tcp://127.0.0.1:1"])
def test_dask_scheduler_without_dask_names_the_extra(monkeypatch, scheduler):
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ModelSpecError, match=r"pip install carkinetics\[dask\]"):
        map_units(abs, [1, 2], scheduler=scheduler, progress=False)
