"""Run one function over many independent units (participants, trials), in processes.

:func:`map_units` is the one executor interface of the package: batch fits, simulations
and operating characteristics call it, and a later backend (dask.distributed) will sit
behind the same signature. Its contract:

* results come back **in input order**, whatever the number of workers;
* an exception raised by ``fn`` on a unit is **captured** as a :class:`UnitFailure` in that
  unit's slot; the other units go on;
* results do not depend on ``workers`` as long as ``fn`` is deterministic (seed any
  randomness from the unit itself, never from global state);
* it is **spawn-safe**: worker processes are started with the ``spawn`` method on every
  platform (no inherited state, no fork-with-threads hazards), so ``fn`` and the units must
  be picklable and ``fn`` importable (a module-level function, not a lambda or closure);
* units are sent in chunks (fewer round trips) and a tqdm progress bar counts finished
  units.

``workers=1`` runs in the calling process (no pickling, exceptions still captured).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from carkinetics.exceptions import ModelSpecError

__all__ = ["UnitFailure", "map_units", "default_workers"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class UnitFailure:
    """The exception one unit raised, captured in its slot of :func:`map_units`' output.

    Attributes
    ----------
    index : int
        Position of the unit in the input.
    error : str
        Exception class name (e.g. ``"DataError"``).
    message : str
        ``str(exception)``.
    traceback : str
        Formatted traceback (from the worker process).
    """

    index: int
    error: str
    message: str
    traceback: str = ""


def default_workers() -> int:
    """Number of CPUs available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover  (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def _run_chunk(fn: Callable[[Any], Any], start: int, chunk: Sequence[Any]) -> list[Any]:
    """Apply ``fn`` to each unit of ``chunk``, capturing exceptions (runs in the worker)."""
    out: list[Any] = []
    for i, unit in enumerate(chunk):
        try:
            out.append(fn(unit))
        except Exception as exc:  # noqa: BLE001  (captured per unit, by contract)
            out.append(UnitFailure(start + i, type(exc).__name__, str(exc),
                                   traceback.format_exc()))
    return out


def map_units(fn: Callable[[T], R], units: Iterable[T], *, workers: int = 1,
              progress: bool = True, desc: str | None = None,
              chunksize: int | None = None) -> list[R | UnitFailure]:
    """Apply ``fn`` to every unit, in ``workers`` processes, results in input order.

    Parameters
    ----------
    fn : callable
        Function of one unit. With ``workers > 1`` it must be picklable and importable by
        a fresh interpreter (a module-level function).
    units : iterable
        The units (picklable with ``workers > 1``).
    workers : int, default 1
        Number of worker processes; 1 runs in this process. Capped at the number of units.
    progress : bool, default True
        Show a tqdm progress bar (on stderr) counting finished units.
    desc : str, optional
        Label of the progress bar.
    chunksize : int, optional
        Units per task sent to a worker; default ``ceil(n / (4 * workers))``, so each worker
        gets about four chunks (balance against round trips).

    Returns
    -------
    list
        ``fn(unit)`` for each unit in input order, or a :class:`UnitFailure` where ``fn``
        raised.

    Raises
    ------
    ModelSpecError
        If ``workers`` or ``chunksize`` is not a positive integer.

    Examples
    --------
    >>> import math
    >>> out = map_units(math.sqrt, [4.0, -1.0, 9.0], progress=False)
    >>> out[0], type(out[1]).__name__, out[2]
    (2.0, 'UnitFailure', 3.0)
    """
    from tqdm.auto import tqdm

    items = list(units)
    n = len(items)
    if not (isinstance(workers, int) and workers >= 1):
        raise ModelSpecError(f"Invalid workers={workers!r}; expected an integer >= 1.")
    if chunksize is not None and not (isinstance(chunksize, int) and chunksize >= 1):
        raise ModelSpecError(f"Invalid chunksize={chunksize!r}; expected an integer >= 1.")
    workers = min(workers, max(n, 1))
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False)
    try:
        if workers == 1:
            out: list[Any] = []
            for i, unit in enumerate(items):
                out.extend(_run_chunk(fn, i, [unit]))
                bar.update(1)
            return out
        size = chunksize or max(1, math.ceil(n / (4 * workers)))
        starts = list(range(0, n, size))
        results: list[Any] = [None] * n
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_run_chunk, fn, s, items[s:s + size]): s for s in starts}
            try:
                for fut in as_completed(futures):
                    s = futures[fut]
                    m = min(size, n - s)
                    try:
                        chunk_out = fut.result()
                    except Exception as exc:  # noqa: BLE001  (worker died, unpicklable...)
                        chunk_out = [UnitFailure(s + i, type(exc).__name__, str(exc),
                                                 traceback.format_exc()) for i in range(m)]
                    results[s:s + m] = chunk_out
                    bar.update(m)
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return results
    finally:
        bar.close()
