"""Shared plumbing of the resampling batch jobs (bootstrap, simulation-estimation).

One replicate (a bootstrap resample, a simulated trial) is one unit of
:func:`carkinetics.parallel.map_units`; its random stream is child ``k`` of
``numpy.random.SeedSequence(root).spawn(n)``, so a replicate's result depends on the root
seed and on ``k`` only (not on the number of workers, the chunking, or which other
replicates run in the same batch).
"""

from __future__ import annotations

import hashlib
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.exceptions import ModelSpecError
from carkinetics.parallel import map_units

__all__ = ["run_units", "job_fingerprint", "child_seeds", "check_indices", "captured"]


def run_units(fn: Callable[[Any], Any], units: Iterable[Any], *, workers: int = 1,
              scheduler: str | None = None, progress: bool = True, desc: str | None = None,
              chunksize: int | None = None, store: Any = None, resume: bool = False,
              fingerprint: str | None = None) -> list[Any]:
    """:func:`~carkinetics.parallel.map_units` with the jobs' defaults (one executor)."""
    return map_units(fn, units, workers=workers, progress=progress, desc=desc,
                     chunksize=chunksize, scheduler=scheduler, store=store, resume=resume,
                     fingerprint=fingerprint)


def job_fingerprint(table: pd.DataFrame, *parts: Any) -> str:
    """SHA-256 identity of a batch job (its table and settings) for its resume store.

    ``parts`` are hashed by ``repr``: pass only values whose ``repr`` is stable across runs
    (numbers, strings, tuples, frozen dataclasses of those).
    """
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    h.update(repr([(str(c), str(t)) for c, t in table.dtypes.items()]).encode())
    # object addresses (default reprs) differ between runs: leave them out
    h.update(re.sub(r" at 0x[0-9a-fA-F]+", "", repr(parts)).encode())
    return h.hexdigest()


def child_seeds(seed: int, n: int) -> list[np.random.SeedSequence]:
    """The ``n`` children of the root seed (``SeedSequence(seed).spawn(n)``).

    Child ``k`` is the same for every ``n > k`` (``spawn`` keys children by position).
    """
    if not (isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 1):
        raise ModelSpecError(f"Invalid n={n!r}; expected an integer >= 1.")
    if not (isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0):
        raise ModelSpecError(f"Invalid seed={seed!r}; expected a non-negative integer.")
    return np.random.SeedSequence(int(seed)).spawn(int(n))


def check_indices(name: str, indices: Sequence[int] | None, n: int) -> list[int]:
    """Validate a subset of replicate indices (default: all ``range(n)``)."""
    if indices is None:
        return list(range(n))
    out = [int(i) for i in indices]
    bad = [i for i in out if not 0 <= i < n]
    if bad or len(set(out)) != len(out):
        raise ModelSpecError(f"Invalid {name}={list(indices)!r}; expected distinct integers in "
                             f"[0, {n - 1}].")
    return out


class captured:  # noqa: N801  (used as a context manager, like warnings.catch_warnings)
    """Record the warnings raised inside the block as strings (``.messages``)."""

    def __enter__(self) -> captured:
        self._cm = warnings.catch_warnings(record=True)
        self._list = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(f"{w.category.__name__}: {w.message}" for w in self._list)
