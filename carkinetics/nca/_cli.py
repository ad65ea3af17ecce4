"""``carkinetics nca``: non-compartmental analysis of a data file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def _table_path(value: Path | None, option: str) -> Path | None:
    if value is not None and value.suffix.lower() not in _TABLE_SUFFIXES:
        raise typer.BadParameter(f"{value}: expected a .csv or .parquet file name.",
                                 param_hint=option)
    return value


def register(app: typer.Typer, fail) -> None:
    """Add the ``nca`` command to ``app``; ``fail(message)`` exits 1 on bad input."""

    @app.command("nca")
    def nca_cmd(
        data: Annotated[Path, typer.Argument(help="Data file (CSV, Parquet or NONMEM-style).")],
        out: Annotated[Path, typer.Option(
            "--out", help="Parameters, one row per participant and endpoint (.csv/.parquet).",
            callback=lambda v: _table_path(v, "--out"))],
        auc_method: Annotated[str, typer.Option(
            "--auc-method", help="linear-log (linear-up/log-down) or linear.")] = "linear-log",
        endpoint: Annotated[list[str] | None, typer.Option(
            "--endpoint", help="Endpoint to analyse (repeatable; default: the CAR-T kinetic "
            "endpoints in the data, or all when there are none).")] = None,
        summary: Annotated[Path | None, typer.Option(
            "--summary", help="Summary by dose level (.csv/.parquet).",
            callback=lambda v: _table_path(v, "--summary"))] = None,
        long: Annotated[Path | None, typer.Option(
            "--long", help="Also write the long table (PPTESTCD rows, exclusion reasons).",
            callback=lambda v: _table_path(v, "--long"))] = None,
        dosing: Annotated[str, typer.Option(
            "--dosing", help="cart, extravascular or iv_bolus.")] = "cart",
    ) -> None:
        """Non-compartmental analysis (NCA) with CAR-T conventions, per participant."""
        from carkinetics.nca import AUC_METHODS, DOSING

        if auc_method not in AUC_METHODS:
            raise typer.BadParameter(f"{auc_method!r} is not one of {list(AUC_METHODS)}.",
                                     param_hint="--auc-method")
        if dosing not in DOSING:
            raise typer.BadParameter(f"{dosing!r} is not one of {list(DOSING)}.",
                                     param_hint="--dosing")
        from carkinetics._atomic import write_table
        from carkinetics.data import CK_ENDPOINTS, read_data
        from carkinetics.exceptions import DataError
        from carkinetics.nca import nca, summarize_nca

        if not data.exists():
            fail(f"{data}: no such file.")
        try:
            table = read_data(data)
            if not endpoint and "endpoint" in table:
                kinetic = [e for e in CK_ENDPOINTS if (table["endpoint"] == e).any()]
                endpoint = kinetic or None
            result = nca(table, endpoint=endpoint or None, auc_method=auc_method,
                         dosing=dosing)
        except DataError as exc:
            fail(f"{data}: {exc}")
        wide = result.to_wide()
        write_table(wide, out)
        typer.echo(f"wrote {out} ({len(wide)} profiles, "
                   f"{result.groups['id'].nunique()} participants)")
        if long is not None:
            write_table(result.table, long)
            typer.echo(f"wrote {long}")
        if summary is not None:
            by = [c for c in ("dose_level", "dose") if c in wide][:1]
            write_table(summarize_nca(result, by=by, dose_unit="cells/kg"), summary)
            typer.echo(f"wrote {summary} (by {by[0] if by else 'endpoint'})")
        n_excl = int((result.table["exclude"] != "").sum())
        if n_excl:
            typer.echo(f"{n_excl} parameter values not computed; see the exclude column of "
                       "--long for the reasons.")
