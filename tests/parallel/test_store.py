"""Resume store: chunks written as they finish, reused on resume, foreign stores refused."""

import json

import pytest

from carkinetics._unitstore import StoreMismatchError
from carkinetics.parallel import UnitFailure, map_units

from .parallel_units import broken, draw

UNITS = [(11, i) for i in range(20)]


def _files(store):
    return sorted(p.name for p in store.glob("chunk-*.bin"))


def _eq(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x["i"] == y["i"] and x["x"].tobytes() == y["x"].tobytes()


def test_resume_loads_stored_chunks_and_computes_only_the_rest(tmp_path):
    store = tmp_path / "s"
    ref = map_units(draw, UNITS, chunksize=3, progress=False)
    stats = {}
    first = map_units(draw, UNITS, chunksize=3, store=store, progress=False, stats=stats)
    _eq(first, ref)
    assert len(_files(store)) == 7 and stats["computed"] == 20
    for name in _files(store)[1::2]:  # as if the run had stopped before these chunks
        (store / name).unlink()
    stats = {}
    again = map_units(draw, UNITS, store=store, resume=True, progress=False, stats=stats)
    _eq(again, ref)
    # chunks [3,6), [9,12), [15,18) were missing: 9 units computed, 11 loaded
    assert (stats["loaded"], stats["computed"], stats["chunksize"]) == (11, 9, 3)
    runs = json.loads((store / "manifest.json").read_text())["runs"]
    assert [(r["loaded"], r["computed"]) for r in runs] == [(0, 20), (11, 9)]


def test_resume_with_other_workers_keeps_the_stored_chunking(tmp_path):
    store = tmp_path / "s"
    map_units(draw, UNITS, chunksize=4, store=store, progress=False)
    stats = {}
    out = map_units(draw, UNITS, workers=2, store=store, resume=True, progress=False,
                    stats=stats)
    _eq(out, map_units(draw, UNITS, progress=False))
    assert (stats["loaded"], stats["computed"]) == (20, 0)


def test_without_resume_the_store_starts_over(tmp_path):
    store = tmp_path / "s"
    map_units(draw, UNITS, chunksize=5, store=store, progress=False)
    stats = {}
    map_units(draw, UNITS, chunksize=10, store=store, progress=False, stats=stats)
    assert stats["computed"] == 20 and len(_files(store)) == 2


def test_a_store_of_another_job_is_refused(tmp_path):
    store = tmp_path / "s"
    map_units(draw, UNITS, chunksize=5, store=store, progress=False)
    other = [(12, i) for i in range(20)]  # other seeds: other units, same count
    with pytest.raises(StoreMismatchError, match="computed from other units"):
        map_units(draw, other, store=store, resume=True, progress=False)
    with pytest.raises(StoreMismatchError, match="another job .*n=20"):
        map_units(draw, UNITS[:10], store=store, resume=True, progress=False)
    with pytest.raises(StoreMismatchError, match="fn="):
        map_units(broken, UNITS, store=store, resume=True, progress=False)
    map_units(draw, UNITS, chunksize=5, store=tmp_path / "f", fingerprint="job-a",
              progress=False)
    with pytest.raises(StoreMismatchError, match="fingerprint"):
        map_units(draw, UNITS, store=tmp_path / "f", fingerprint="job-b", resume=True)


def test_a_tampered_or_foreign_store_is_never_unpickled(tmp_path, monkeypatch):
    store = tmp_path / "s"
    map_units(draw, UNITS, chunksize=5, store=store, progress=False)
    f = store / _files(store)[0]
    blob = bytearray(f.read_bytes())
    blob[-3] ^= 1
    f.write_bytes(bytes(blob))
    with pytest.raises(StoreMismatchError, match="not signed"):
        map_units(draw, UNITS, store=store, resume=True, progress=False)
    # another user's key: the manifest itself is refused
    monkeypatch.setenv("CARKINETICS_STORE_KEY_FILE", str(tmp_path / "other.key"))
    with pytest.raises(StoreMismatchError, match="manifest is not signed"):
        map_units(draw, UNITS, store=store, resume=True, progress=False)


def test_chunks_with_failures_are_computed_again_on_resume(tmp_path):
    store = tmp_path / "s"
    units = [(str(tmp_path), i) for i in range(6)]
    out = map_units(broken, units, chunksize=2, store=store, progress=False)
    assert isinstance(out[2], UnitFailure)
    stats = {}
    again = map_units(broken, units, store=store, resume=True, progress=False, stats=stats)
    assert (stats["loaded"], stats["computed"], stats["failed"]) == (4, 2, 1)
    assert again[:2] == [0, 1] and again[3:] == [3, 4, 5] and again[2].message == out[2].message
    assert len(list(tmp_path.glob("u2-*"))) == 4  # 2 attempts in each run
    assert len(list(tmp_path.glob("u3-*"))) == 2  # unit 3 shares unit 2's chunk
    assert len(list(tmp_path.glob("u0-*"))) == 1
