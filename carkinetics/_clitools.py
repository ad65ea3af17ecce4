"""Small helpers shared by the command-line modules (``carkinetics/**/_cli.py``)."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

__all__ = ["usage_error", "WorkersOpt", "SchedulerOpt", "ResumeOpt", "check_scheduler"]


def usage_error(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 2 (usage error)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


#: ``--workers``: parallel workers of a batch verb (see :func:`carkinetics.parallel.map_units`).
WorkersOpt = Annotated[int, typer.Option(
    "--workers", min=1, help="Parallel workers (local processes, or LocalCluster processes "
    "with --scheduler local-dask).")]

#: ``--scheduler``: backend of a batch verb.
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", help="Backend: processes (default with --workers > 1), in-process, "
    "local-dask (a dask LocalCluster of --workers processes) or tcp://host:port (a running "
    "dask scheduler; needs pip install carkinetics[dask]).")]

#: ``--resume``: reuse the finished units of an interrupted run.
ResumeOpt = Annotated[bool, typer.Option(
    "--resume/--no-resume", help="Reuse the units finished by an interrupted run with the "
    "same inputs and settings (stored as they finish); without it the store starts over.")]


def check_scheduler(value: str | None) -> str | None:
    """Validate ``--scheduler`` (usage error naming the valid values) and return it."""
    from carkinetics.exceptions import ModelSpecError
    from carkinetics.parallel import _kind

    if value is None:
        return None
    try:
        _kind(value, 1)
    except ModelSpecError as exc:
        usage_error(f"--scheduler: {exc}")
    return value
