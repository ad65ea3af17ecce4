"""Small helpers shared by the command-line modules (``carkinetics/**/_cli.py``)."""

from __future__ import annotations

from typing import NoReturn

import typer

__all__ = ["usage_error"]


def usage_error(message: str) -> NoReturn:
    """Print ``error: message`` on stderr and exit with code 2 (usage error)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)
