"""``carkinetics report``: the committee report from the outputs of the other commands."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]


def register(app: typer.Typer, fail: Callable[[str], None]) -> None:
    """Add the ``report`` verb to ``app``; ``fail(message)`` exits 1 (bad input)."""

    @app.command("report")
    def report_cmd(
        data: Annotated[Path, typer.Option("--data", help="Long data table (CSV, Parquet or "
                                           "NONMEM-style).")],
        out: Annotated[Path, typer.Option("--out", help="HTML file to write.")],
        fit: Annotated[Path | None, typer.Option(
            "--fit", help="Output folder of 'carkinetics fit'.")] = None,
        popfit: Annotated[Path | None, typer.Option(
            "--popfit", help="Output folder of 'carkinetics popfit'.")] = None,
        nca: Annotated[Path | None, typer.Option(
            "--nca", help="NCA table of 'carkinetics nca' (.csv/.parquet).")] = None,
        endpoints: Annotated[Path | None, typer.Option(
            "--endpoints", help="Output folder of 'carkinetics endpoints'.")] = None,
        escalation: Annotated[Path | None, typer.Option(
            "--escalation", help="Decision JSON of 'carkinetics escalate'.")] = None,
        pd_dir: Annotated[Path | None, typer.Option(
            "--pd", help="Output folder of 'carkinetics pd' (or the demo's pd/).")] = None,
        seed: Annotated[int | None, typer.Option(
            "--seed", help="Root seed to record in the provenance section.")] = None,
    ) -> None:
        """Write one self-contained HTML committee report.

        Sections: cohort, CAR-T kinetics, population model, PD, safety, escalation,
        provenance; a section without its inputs is left out with a note.
        """
        if out.suffix.lower() not in (".html", ".htm"):
            from carkinetics._clitools import usage_error

            usage_error(f"--out {out}: expected an .html file name.")
        from carkinetics.exceptions import DataError
        from carkinetics.report.build import build_report

        command = " ".join(shlex.quote(a) for a in ["carkinetics", *sys.argv[1:]])
        try:
            path = build_report(data, out, fit=fit, popfit=popfit, nca=nca,
                                endpoints=endpoints, escalation=escalation, pd_dir=pd_dir,
                                command=command, seed=seed)
        except DataError as exc:
            fail(str(exc))
            return
        typer.echo(f"carkinetics report: wrote {path.resolve()} "
                   f"({path.stat().st_size / 1e6:.1f} MB)")
