"""Run one function over many independent units (participants, trials), on any backend.

:func:`map_units` (ordered list) and :func:`iter_units` (a stream of results as they finish)
are the one executor interface of the package: batch fits, bootstrap, simulation-estimation,
operating characteristics and virtual trials all go through them. The contract:

* **backends** (``scheduler``): in this process (``"in-process"``/``"sync"``), local spawn
  processes (``"processes"``; the default when ``workers > 1``), a dask.distributed
  LocalCluster (``"local-dask"``) or an existing dask scheduler (``"tcp://host:port"`` or a
  ``distributed.Client``);
* results come back **in input order** (:func:`map_units`) and do **not** depend on the
  backend, the number of workers or the chunking, as long as ``fn`` is deterministic given
  its unit (seed randomness from the unit: ``SeedSequence.spawn`` from one root, never
  global state);
* an exception raised by ``fn`` is **retried** once, then **captured** as a
  :class:`UnitFailure` in that unit's slot; a chunk whose worker process dies is re-run
  unit by unit in a fresh worker and a unit that kills its worker again becomes a
  ``UnitFailure(error="WorkerDied")``: the batch always completes;
* units are sent in **chunks** with a bounded number in flight (one per local worker, two per
  dask thread), read lazily from ``units``, and results **stream** back with a tqdm progress
  bar: with :func:`iter_units` and a ``store`` memory stays flat whatever the number of units;
* with ``store=DIR`` each finished chunk is written at once (atomic rename) and a rerun with
  ``resume=True`` loads the stored chunks and computes only the others
  (:mod:`carkinetics._unitstore`: signed files, refused when made by another job or user);
* **spawn-safe**: worker processes start with the ``spawn`` method, so ``fn`` and the units
  must be picklable and ``fn`` importable (a module-level function, not a lambda).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from multiprocessing.connection import wait as _wait
from typing import Any, TypeVar

from carkinetics._validation import closest
from carkinetics.exceptions import ModelSpecError

__all__ = ["UnitFailure", "map_units", "iter_units", "default_workers", "SCHEDULERS",
           "scheduler_workers", "shutdown_workers"]

T = TypeVar("T")
R = TypeVar("R")

#: Named schedulers (besides ``"tcp://host:port"`` addresses and ``distributed.Client``).
SCHEDULERS = ("processes", "in-process", "sync", "local-dask")

#: Largest default chunk (units per task); bounds the memory of a chunk in flight.
MAX_CHUNK = 1024


@dataclass(frozen=True)
class UnitFailure:
    """The exception one unit raised, captured in its slot of :func:`map_units`' output.

    Attributes
    ----------
    index : int
        Position of the unit in the input.
    error : str
        Exception class name (e.g. ``"DataError"``), or ``"WorkerDied"`` when the unit's
        worker process died on every attempt.
    message : str
        ``str(exception)``, or how the worker died.
    traceback : str
        Formatted traceback (from the worker process).
    attempts : int, default 1
        Times the unit was run.
    """

    index: int
    error: str
    message: str
    traceback: str = ""
    attempts: int = 1


def default_workers() -> int:
    """Number of CPUs available to this process (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover  (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def _run_chunk(fn: Callable[[Any], Any], start: int, chunk: list[Any],
               retries: int = 0) -> list[Any]:
    """Apply ``fn`` to each unit of ``chunk``; a unit that raises is retried ``retries`` times.

    Runs in the worker. An exception on the last attempt becomes a :class:`UnitFailure`.
    """
    out: list[Any] = []
    for i, unit in enumerate(chunk):
        for attempt in range(1, retries + 2):
            try:
                out.append(fn(unit))
                break
            except Exception as exc:  # noqa: BLE001  (captured per unit, by contract)
                if attempt > retries:
                    out.append(UnitFailure(start + i, type(exc).__name__, str(exc),
                                           traceback.format_exc(), attempt))
    return out


# -- scheduler resolution --------------------------------------------------------------------

def _is_client(obj: Any) -> bool:
    return type(obj).__name__ == "Client" and type(obj).__module__.startswith("distributed")


def _kind(scheduler: Any, workers: int) -> str:
    """``"sync"``, ``"processes"`` or ``"dask"`` for a ``scheduler`` argument."""
    if scheduler is None:
        return "sync" if workers == 1 else "processes"
    if _is_client(scheduler):
        return "dask"
    if isinstance(scheduler, str):
        if scheduler in ("in-process", "sync"):
            return "sync"
        if scheduler == "processes":
            return "processes"
        if scheduler == "local-dask" or scheduler.startswith(("tcp://", "tls://")):
            return "dask"
    raise ModelSpecError(f"Invalid scheduler={scheduler!r}; expected one of "
                         f"{list(SCHEDULERS)}, a dask scheduler address 'tcp://host:port' or a "
                         "distributed.Client." + closest(scheduler, SCHEDULERS))


def _dask():
    try:
        import distributed
    except ImportError as exc:
        raise ModelSpecError("A dask scheduler needs dask.distributed: "
                             "pip install carkinetics[dask]") from exc
    return distributed


def scheduler_workers(scheduler: Any, workers: int) -> int:
    """Parallelism of ``scheduler`` (what chunk sizes are balanced over).

    ``workers`` for local backends and ``"local-dask"``, the cluster's threads for an address
    or a ``Client``, 1 in process.
    """
    kind = _kind(scheduler, workers)
    if kind == "sync":
        return 1
    if kind == "dask" and scheduler != "local-dask":
        return max(1, _cluster_threads(scheduler))
    return workers


def _cluster_threads(scheduler: Any) -> int:
    if _is_client(scheduler):
        return sum(scheduler.nthreads().values())
    distributed = _dask()
    with _quiet(), distributed.Client(scheduler, set_as_default=False) as c:
        return sum(c.nthreads().values())


@contextlib.contextmanager
def _quiet():
    """Silence distributed's info logging while a client or cluster starts and stops."""
    import logging

    names = ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.worker",
             "distributed.core", "distributed.http.proxy", "distributed.client")
    loggers = [logging.getLogger(n) for n in names]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old, strict=True):
            lg.setLevel(lv)


# -- executors: run(fn, tasks, retries, tick, counts) -> iterator of (chunk, start, results) --
# A task is (chunk, start, units, attempt): ``chunk`` is the start of the chunk it belongs to.
# A chunk first runs whole (attempt 0); after its worker died, each of its units runs alone
# (attempts 1..retries), and a unit whose worker died on every attempt is a WorkerDied failure.

class _Counts:
    def __init__(self) -> None:
        self.deaths = 0


def _died(task: tuple, retries: int, why: str, queue: deque, counts: _Counts
          ) -> list[Any] | None:
    """Requeue the units of a task whose worker died, or their failures when out of tries."""
    chunk, start, units, attempt = task
    counts.deaths += 1
    if attempt < retries:
        for i, u in enumerate(units):
            queue.append((chunk, start + i, [u], attempt + 1))
        return None
    return [UnitFailure(start + i, "WorkerDied", f"{why}; the unit ran {attempt + 1} times",
                        "", attempt + 1) for i in range(len(units))]


def _sync_run(fn, tasks, retries, tick, counts):
    for chunk, start, units, _ in tasks:
        out = []
        for i, u in enumerate(units):
            out += _run_chunk(fn, start + i, [u], retries)
            tick(1)
        yield chunk, start, out


def _worker_main(conn) -> None:  # pragma: no cover  (runs in the worker process)
    """Loop of a local worker process: receive ``(fn, start, units, retries)``, send results."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles interruption
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        fn, start, units, retries = msg
        out = _run_chunk(fn, start, units, retries)
        try:
            conn.send(out)
        except Exception:  # noqa: BLE001  (an unpicklable result fails alone)
            import pickle

            safe = []
            for i, r in enumerate(out):
                try:
                    pickle.dumps(r)
                    safe.append(r)
                except Exception as exc:  # noqa: BLE001
                    safe.append(UnitFailure(start + i, type(exc).__name__,
                                            f"result cannot be sent back: {exc}",
                                            traceback.format_exc()))
            conn.send(safe)


#: Thread pools of native libraries in a worker: one thread each (the workers are the
#: parallelism; more would oversubscribe the cores). Set only where the user has not.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "VECLIB_MAXIMUM_THREADS": "1", "NUMEXPR_NUM_THREADS": "1"}


class _Worker:
    """One local spawn worker process and its pipe (it exits when the pipe closes)."""

    def __init__(self, ctx) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True)
        added = {k: v for k, v in _WORKER_ENV.items() if k not in os.environ}
        os.environ.update(added)  # inherited by the spawned interpreter
        try:
            self.proc.start()
        finally:
            for k in added:
                os.environ.pop(k, None)
        child.close()
        self.task: tuple | None = None

    def close(self, graceful: bool) -> None:
        if graceful:
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(None)
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)
        self.conn.close()


#: Idle local workers kept between calls (a spawn worker takes seconds to import the package).
_IDLE: list[_Worker] = []


def shutdown_workers() -> None:
    """Stop the idle local worker processes kept for the next :func:`map_units` call."""
    while _IDLE:
        _IDLE.pop().close(graceful=True)


atexit.register(shutdown_workers)


def _process_run(fn, tasks, retries, tick, counts, workers):
    """Local spawn processes, one task in flight per worker (see the executor contract).

    Workers left idle by the previous call are reused (they hold no state between units
    beyond imported modules); new ones start as needed.
    """
    ctx = multiprocessing.get_context("spawn")
    pool: list[_Worker] = []
    while _IDLE and len(pool) < workers:
        w = _IDLE.pop()
        if w.proc.is_alive():
            pool.append(w)
        else:
            w.close(graceful=False)
    queue: deque = deque()
    source = iter(tasks)
    exhausted = False
    clean = False
    try:
        while True:
            # hand a task to every idle worker (starting workers up to `workers`)
            while queue or not exhausted:
                idle = [w for w in pool if w.task is None]
                if not idle and len(pool) >= workers:
                    break
                if queue:
                    task = queue.popleft()
                else:
                    task = next(source, None)
                    if task is None:
                        exhausted = True
                        break
                if idle:
                    w = idle[0]
                else:
                    w = _Worker(ctx)
                    pool.append(w)
                w.task = task
                with contextlib.suppress(OSError, ValueError):  # a dead worker: found below
                    w.conn.send((fn, task[1], task[2], retries))
            busy = [w for w in pool if w.task is not None]
            if not busy:
                break
            ready = set(_wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
            for w in busy:
                if w.conn not in ready and w.proc.sentinel not in ready:
                    continue
                task, out = w.task, None
                try:
                    if w.conn.poll():
                        out = w.conn.recv()
                except (EOFError, OSError):
                    out = None
                if out is None:
                    if w.proc.sentinel not in ready and w.proc.is_alive():
                        continue
                    w.proc.join(5)
                    pool.remove(w)
                    w.close(graceful=False)
                    why = f"worker process died (exit code {w.proc.exitcode})"
                    out = _died(task, retries, why, queue, counts)
                    if out is None:
                        continue
                w.task = None
                tick(len(task[2]))
                yield task[0], task[1], out
        clean = True
    finally:
        for w in pool:
            if clean and w.proc.is_alive() and w.task is None:
                _IDLE.append(w)
            else:
                w.close(graceful=False)


def _dask_run(fn, tasks, retries, tick, counts, client, in_flight):
    """dask.distributed futures, at most ``in_flight`` tasks submitted at a time."""
    distributed = _dask()
    queue: deque = deque()
    source = iter(tasks)
    info: dict[Any, tuple] = {}
    ac = distributed.as_completed(loop=client.loop)

    def top_up() -> None:
        # After a death, the retries run one at a time with nothing else in flight, so that a
        # unit that kills its worker again is identified (dask fails every task the dead
        # worker held).
        while len(info) < in_flight:
            if queue:
                if info:
                    return
                task = queue.popleft()
                fut = client.submit(_run_chunk, fn, task[1], task[2], retries, pure=False)
                info[fut] = task
                ac.add(fut)
                return
            task = next(source, None)
            if task is None:
                return
            fut = client.submit(_run_chunk, fn, task[1], task[2], retries, pure=False)
            info[fut] = task
            ac.add(fut)

    try:
        top_up()
        while info:
            fut = next(ac)
            task = info.pop(fut)
            try:
                out = fut.result()
            except Exception as exc:  # noqa: BLE001  (worker lost: KilledWorker, comm error)
                out = _died(task, retries, f"dask task failed ({type(exc).__name__}: {exc})",
                            queue, counts)
            fut.release()
            if out is not None:
                tick(len(task[2]))
                yield task[0], task[1], out
            top_up()
    finally:
        for fut in info:
            fut.cancel()


@contextlib.contextmanager
def _dask_client(scheduler: Any, workers: int):
    """A client for ``scheduler``: a new LocalCluster for ``"local-dask"``, else connect."""
    if _is_client(scheduler):
        yield scheduler
        return
    distributed = _dask()
    import dask

    with _quiet():
        if scheduler == "local-dask":
            with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=50)
            client = distributed.Client(cluster, set_as_default=False)
        else:
            cluster = None
            client = distributed.Client(scheduler, set_as_default=False)
    try:
        yield client
    finally:
        with _quiet():
            client.close()
            if cluster is not None:
                cluster.close()


# -- the interface ---------------------------------------------------------------------------

def _chunks(units: Iterable[Any], size: int) -> Iterator[tuple[int, list[Any]]]:
    it = iter(units)
    start = 0
    while True:
        chunk = list(islice(it, size))
        if not chunk:
            return
        yield start, chunk
        start += len(chunk)


def _fn_name(fn: Any) -> str:
    return f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', repr(fn))}"


def iter_units(fn: Callable[[T], R], units: Iterable[T], *, workers: int = 1,
               progress: bool = True, desc: str | None = None, chunksize: int | None = None,
               scheduler: Any = None, retries: int = 1, store: Any = None,
               resume: bool = False, fingerprint: str | None = None,
               stats: dict[str, Any] | None = None) -> Iterator[tuple[int, R | UnitFailure]]:
    """Apply ``fn`` to every unit and yield ``(index, result)`` as chunks finish.

    Same arguments and guarantees as :func:`map_units`, but results stream back chunk by
    chunk in completion order (not input order), and ``units`` is read lazily (a generator
    is fine; only the chunks in flight are held), so a consumer that writes each result
    away keeps memory flat. Closing the iterator early stops the workers.

    Yields
    ------
    (int, object)
        Index of the unit in the input and ``fn(unit)`` or its :class:`UnitFailure`.
    """
    from tqdm.auto import tqdm

    if not (isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1):
        raise ModelSpecError(f"Invalid workers={workers!r}; expected an integer >= 1.")
    if chunksize is not None and not (isinstance(chunksize, int) and chunksize >= 1):
        raise ModelSpecError(f"Invalid chunksize={chunksize!r}; expected an integer >= 1.")
    if not (isinstance(retries, int) and retries >= 0):
        raise ModelSpecError(f"Invalid retries={retries!r}; expected an integer >= 0.")
    kind = _kind(scheduler, workers)
    n = len(units) if hasattr(units, "__len__") else None  # type: ignore[arg-type]
    par = scheduler_workers(scheduler, workers)
    size = chunksize or (max(1, min(MAX_CHUNK, math.ceil(n / (4 * par)))) if n is not None
                         else 64)
    if kind == "processes" and n is not None:
        par = min(par, max(1, math.ceil(n / size)))
    st = None
    if store is not None:
        from carkinetics._unitstore import UnitStore

        st = UnitStore(store, {"fn": _fn_name(fn), "chunksize": size, "n": n,
                               "fingerprint": fingerprint,
                               "adopt_chunksize": chunksize is None}, resume=resume)
        size = st.chunksize
    counts = _Counts()
    tally: dict[str, Any] = {"loaded": 0, "computed": 0, "failed": 0}
    stored: deque = deque()  # finished chunks found in the store, not loaded yet
    lengths: dict[int, int] = {}
    hashes: dict[int, str | None] = {}

    def pending() -> Iterator[tuple[int, int, list[Any], int]]:
        for start, chunk in _chunks(units, size):
            stop = start + len(chunk)
            if st is not None:
                sha = None if fingerprint is not None else _unit_hash(chunk)
                if resume and st.failed(start, stop) == 0:
                    stored.append((start, stop, sha))
                    continue
                hashes[start] = sha
            lengths[start] = len(chunk)
            yield start, start, chunk, 0

    def emit_stored() -> Iterator[tuple[int, Any]]:
        while stored:
            start, stop, sha = stored.popleft()
            res = st.load(start, stop, sha)
            tally["loaded"] += len(res)
            bar.update(len(res))
            yield from enumerate(res, start)

    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False)
    t0 = time.perf_counter()
    parts: dict[int, dict[int, Any]] = {}  # chunks re-run unit by unit come back in pieces
    try:
        with (_dask_client(scheduler, workers) if kind == "dask"
              else contextlib.nullcontext()) as client:
            if kind == "dask":
                run = _dask_run(fn, pending(), retries, bar.update, counts, client, 2 * par)
            elif kind == "processes":
                run = _process_run(fn, pending(), retries, bar.update, counts, par)
            else:
                run = _sync_run(fn, pending(), retries, bar.update, counts)
            for chunk, start, out in run:
                yield from emit_stored()
                if chunk == start and len(out) == lengths[chunk]:
                    whole = out
                else:
                    got = parts.setdefault(chunk, {})
                    got.update(enumerate(out, start))
                    if len(got) < lengths[chunk]:
                        continue
                    whole = [got[i] for i in range(chunk, chunk + lengths[chunk])]
                    del parts[chunk]
                m = lengths.pop(chunk)
                bad = sum(isinstance(r, UnitFailure) for r in whole)
                if st is not None:
                    st.save(chunk, chunk + m, whole, hashes.pop(chunk, None), bad)
                tally["computed"] += m
                tally["failed"] += bad
                yield from enumerate(whole, chunk)
            yield from emit_stored()
    finally:
        bar.close()
        tally.update(units=tally["loaded"] + tally["computed"], worker_deaths=counts.deaths,
                     seconds=round(time.perf_counter() - t0, 3),
                     scheduler=scheduler if isinstance(scheduler, str | None) else "client",
                     workers=par, chunksize=size)
        if stats is not None:
            stats.update(tally)
        if st is not None:
            with contextlib.suppress(OSError):
                st.log_run(tally)


def _unit_hash(chunk: list[Any]) -> str:
    from carkinetics._unitstore import unit_hash

    return unit_hash(chunk)


def map_units(fn: Callable[[T], R], units: Iterable[T], *, workers: int = 1,
              progress: bool = True, desc: str | None = None,
              chunksize: int | None = None, scheduler: Any = None, retries: int = 1,
              store: Any = None, resume: bool = False, fingerprint: str | None = None,
              stats: dict[str, Any] | None = None) -> list[R | UnitFailure]:
    """Apply ``fn`` to every unit on the chosen backend; results in input order.

    Parameters
    ----------
    fn : callable
        Function of one unit. Outside ``"in-process"`` it must be picklable and importable by
        a fresh interpreter (a module-level function). It should be deterministic given the
        unit (seed from the unit), so that results do not depend on the backend.
    units : iterable
        The units (picklable outside ``"in-process"``); read lazily, chunk by chunk.
    workers : int, default 1
        Parallel workers. With ``scheduler=None``: 1 runs in this process, more starts that
        many local processes. With ``"processes"`` or ``"local-dask"``: the number of worker
        processes (1 thread each). Ignored by ``"in-process"``/``"sync"`` and by an existing
        dask scheduler (its threads are the parallelism).
    progress : bool, default True
        Show a tqdm progress bar (on stderr) counting finished units.
    desc : str, optional
        Label of the progress bar.
    chunksize : int, optional
        Units per task; default ``ceil(n / (4 * parallelism))`` capped at :data:`MAX_CHUNK`
        (64 when ``units`` has no length). Results do not depend on it. A resumed store
        keeps its own chunk size unless one is given.
    scheduler : str or distributed.Client, optional
        Backend: ``None`` (see ``workers``), ``"processes"`` (local spawn processes),
        ``"in-process"`` or ``"sync"`` (this process), ``"local-dask"`` (a dask.distributed
        LocalCluster of ``workers`` processes, started and closed here), ``"tcp://host:port"``
        (an existing dask scheduler) or a ``distributed.Client``. Dask backends need
        ``pip install carkinetics[dask]``.
    retries : int, default 1
        Extra attempts of a unit that raises, and of a unit whose worker process died (its
        chunk is re-run unit by unit in a fresh worker). In process, a unit that ends the
        process cannot be caught.
    store : path-like, optional
        Resume store directory: each finished chunk is written there at once (atomically,
        signed; see :mod:`carkinetics._unitstore`), with a ``manifest.json`` logging every
        run's counts.
    resume : bool, default False
        Reuse the finished chunks in ``store`` (the store must come from the same job: same
        ``fn``, number of units, chunk size and ``fingerprint``, and, without a fingerprint,
        the same pickled units per chunk); compute only the others. Chunks holding failures
        are computed again. False clears ``store`` first.
    fingerprint : str, optional
        Identity of the job (e.g. a hash of the inputs and settings), checked on resume;
        without it each chunk's pickled units are hashed instead.
    stats : dict, optional
        Filled with the run's counts: ``loaded`` (from the store), ``computed``,
        ``failed``, ``worker_deaths``, ``seconds``, ``chunksize``, ``workers``.

    Returns
    -------
    list
        ``fn(unit)`` for each unit in input order, or a :class:`UnitFailure` where ``fn``
        raised (or killed its worker) on every attempt.

    Raises
    ------
    ModelSpecError
        Invalid ``workers``, ``chunksize``, ``retries`` or ``scheduler``; a dask scheduler
        without dask installed.
    carkinetics._unitstore.StoreMismatchError
        ``resume`` with a store of another job, or not signed by this user.

    See Also
    --------
    iter_units : the same, streaming ``(index, result)`` as chunks finish.

    Examples
    --------
    >>> import math
    >>> out = map_units(math.sqrt, [4.0, -1.0, 9.0], progress=False)
    >>> out[0], type(out[1]).__name__, out[1].attempts, out[2]
    (2.0, 'UnitFailure', 2, 3.0)
    """
    results: list[Any] = []
    for i, r in iter_units(fn, units, workers=workers, progress=progress, desc=desc,
                           chunksize=chunksize, scheduler=scheduler, retries=retries,
                           store=store, resume=resume, fingerprint=fingerprint, stats=stats):
        if i >= len(results):
            results.extend([None] * (i + 1 - len(results)))
        results[i] = r
    return results
