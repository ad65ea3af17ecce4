"""``carkinetics endpoints``: safety and efficacy tables from the long table and an AE file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

_HELP = (
    "Write the safety and efficacy tables (CSV) and a responder figure to --out.\n\n"
    "DATA is the long data table (CSV, Parquet or NONMEM-style) with id, time (days since "
    "infusion), endpoint, dv and dose_level or dose. Clinical scores are rows of it: sjc28, "
    "tjc28, vas_pain, vas_global, haq_di, esr, crp (RA: DAS28, EULAR, ACR20/50/70), sledai2k, "
    "pga, bilag2004 (SLE), the autoantibodies, c3, c4 and immunoglobulins (serology), each "
    "with a pre-infusion baseline (time <= 0).\n\n"
    "--ae is a CSV with one row per adverse event: id, term, onset_day, resolution_day (empty "
    "= ongoing), grade (1-5), serious (true/false), category (crs, icans, cytopenia, "
    "infection, hypogammaglobulinaemia, other). Without it no safety tables are written.\n\n"
    "--crs / --icans are CSVs of daily observations to grade (ASTCT 2019): see "
    "carkinetics.endpoints.inputs."
)


def register(app: typer.Typer, fail) -> None:
    """Add the ``endpoints`` command to ``app``; ``fail(message)`` exits with code 1."""

    @app.command("endpoints", help=_HELP)
    def endpoints_cmd(
        data: Annotated[Path, typer.Argument(help="Long data table with scores and labs.")],
        out: Annotated[Path, typer.Option("--out", help="Output folder.")],
        ae: Annotated[Path | None, typer.Option("--ae", help="Adverse-event CSV.")] = None,
        crs: Annotated[Path | None, typer.Option("--crs", help="Daily CRS observations "
                                                 "CSV.")] = None,
        icans: Annotated[Path | None, typer.Option("--icans", help="Daily ICANS observations "
                                                   "CSV.")] = None,
        dlt_window: Annotated[float, typer.Option("--dlt-window", min=1.0, help="DLT window "
                                                  "(days after infusion).")] = 28.0,
    ) -> None:
        from carkinetics.data import read_data
        from carkinetics.data._text import read_csv
        from carkinetics.endpoints import (
            DEFAULT_DLT,
            DLTDefinition,
            endpoint_tables,
            participants_from_data,
            read_ae,
            validate_crs_observations,
            validate_icans_observations,
            write_endpoint_tables,
        )
        from carkinetics.exceptions import DataError

        for path in (data, ae, crs, icans):
            if path is not None and not path.exists():
                fail(f"{path}: no such file.")
        try:
            table = read_data(data)
            participants = participants_from_data(table)
            events = None if ae is None else read_ae(ae, participants=participants)
            crs_obs = None if crs is None else validate_crs_observations(
                read_csv(crs, dtype={"id": str}), source=str(crs))
            icans_obs = None if icans is None else validate_icans_observations(
                read_csv(icans, dtype={"id": str}), source=str(icans))
            dlt = DLTDefinition(criteria=DEFAULT_DLT.criteria, window_days=dlt_window)
            tables = endpoint_tables(table, events, participants=participants, dlt=dlt,
                                     crs_obs=crs_obs, icans_obs=icans_obs)
        except (DataError, ValueError) as exc:
            fail(str(exc))
        paths = write_endpoint_tables(tables, out)
        typer.echo(f"carkinetics endpoints: {len(paths)} files in {out.resolve()}"
                   + ("" if ae is not None else " (no --ae: no safety tables)"))
        for name, path in paths.items():
            typer.echo(f"  {name:<24} {path.name}")
