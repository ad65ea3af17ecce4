"""Unit functions of the executor tests (module-level: importable by spawned workers)."""

import os
from pathlib import Path

import numpy as np


def draw(unit):
    """A seeded random computation: identical wherever it runs."""
    seed, i = unit
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(i + 1)[i])
    x = rng.standard_normal(50)
    return {"i": i, "mean": float(x.mean()), "x": x}


def _attempt(folder, i):
    """Count this attempt of unit ``i`` in a file per attempt (works across processes)."""
    folder = Path(folder)
    k = len(list(folder.glob(f"u{i}-*")))
    (folder / f"u{i}-{k}-{os.getpid()}").touch()
    return k


def flaky(unit):
    """Raise on the first attempt of every unit divisible by 3, then succeed."""
    folder, i = unit
    k = _attempt(folder, i)
    if i % 3 == 0 and k == 0:
        raise RuntimeError(f"transient failure of unit {i}")
    return i * i


def broken(unit):
    """Unit 2 always raises; the others succeed."""
    folder, i = unit
    _attempt(folder, i)
    if i == 2:
        raise ValueError("unit 2 is always wrong")
    return i


def killer(unit):
    """Unit 1 kills its worker process on its first attempt; unit 3 on every attempt."""
    folder, i = unit
    k = _attempt(folder, i)
    if (i == 1 and k == 0) or i == 3:
        os._exit(17)
    return -i
