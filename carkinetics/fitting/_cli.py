"""``carkinetics fit``: individual fits of every participant of a data file.

Registered by :mod:`carkinetics.cli` through :func:`register`. Heavy imports (pandas,
lmfit, matplotlib) happen inside the command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from carkinetics._clitools import (
    ResumeOpt,
    SchedulerOpt,
    WorkersOpt,
    check_scheduler,
    usage_error,
)
from carkinetics.observation import METHODS

__all__ = ["register"]

_METHODS = METHODS
_usage = usage_error


def register(app: typer.Typer, fail: Callable[[str], None]) -> None:
    """Add the ``fit`` verb to ``app``; ``fail(message)`` exits 1 (bad input)."""

    @app.command("fit")
    def fit_cmd(
        data: Annotated[Path, typer.Argument(help="Data file (CSV, Parquet or NONMEM-style).")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
        model: Annotated[str, typer.Option("--model", help="Kinetic model name.")] = "piecewise",
        blq: Annotated[str, typer.Option("--blq", help="BLQ method m1..m7 (M3: censored "
                                         "likelihood).")] = "m3",
        endpoint: Annotated[str, typer.Option(
            "--endpoint", help="car_qpcr, car_flow, joint (qPCR and flow together) or each."
        )] = "car_qpcr",
        workers: WorkersOpt = 1,
        scheduler: SchedulerOpt = None,
        resume: ResumeOpt = False,
        n_starts: Annotated[int, typer.Option("--n-starts", min=1,
                                              help="Multi-start design size.")] = 8,
        profile: Annotated[bool, typer.Option("--profile/--no-profile",
                                              help="Profile-likelihood intervals.")] = False,
        progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                               help="Show a progress bar.")] = True,
    ) -> None:
        """Fit a kinetic model to each participant; write parameters, predictions, plots.

        Writes DIR/parameters.csv (long: id, parameter, estimate, se, CI, flags, ...),
        DIR/predictions.csv, DIR/fits.png and DIR/summary.json, each atomically.
        Finished blocks of participants are stored in DIR/.units as they finish (removed once
        the outputs are written); after an interruption, the same command with --resume fits
        only the participants not stored yet.
        """
        import hashlib
        import time

        from carkinetics.data.schema import CK_ENDPOINTS
        from carkinetics.models import available_models

        if model not in available_models():
            from carkinetics._validation import closest

            _usage(f"--model {model!r} is not a model; expected one of {available_models()}."
                   + closest(model, available_models()))
        if blq.lower() not in _METHODS:
            _usage(f"--blq {blq!r}: expected one of {list(_METHODS)}.")
        if endpoint not in (*CK_ENDPOINTS, "joint", "each"):
            _usage(f"--endpoint {endpoint!r}: expected one of {[*CK_ENDPOINTS, 'joint', 'each']}.")
        if not data.exists():
            fail(f"{data}: no such file.")
        check_scheduler(scheduler)

        from carkinetics.data import read_data
        from carkinetics.exceptions import DataError, ModelSpecError
        from carkinetics.fitting import fit_individuals
        from carkinetics.fitting.outputs import write_fit_outputs

        t0 = time.perf_counter()
        store = out / ".units"
        try:
            df = read_data(data)
            res = fit_individuals(df, model, endpoint=endpoint, method=blq.lower(),
                                  workers=workers, progress=progress, n_starts=n_starts,
                                  profile=profile, scheduler=scheduler, store=store,
                                  resume=resume)
        except (DataError, ModelSpecError) as exc:
            fail(str(exc))
            return
        t_fit = time.perf_counter() - t0
        if not res.fits:
            fail(f"{data}: no participant could be fitted:\n{res.failed.to_string(index=False)}")
        counts = res.counts
        paths = write_fit_outputs(res, out, extra={
            "command": "carkinetics fit", "data": str(data),
            "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "n_starts": n_starts, "profile": profile, "workers": workers,
            "scheduler": scheduler or ("in-process" if workers == 1 else "processes"),
            "blocks": {"resumed": res.timing["blocks_loaded"],
                       "fitted": res.timing["blocks_computed"]},
            "timings": {"fit_total_s": round(t_fit, 3),
                        "per_fit_ms": round(float(res.timing["per_fit_ms"]), 2),
                        "total_s": round(time.perf_counter() - t0, 3)}})
        import shutil

        shutil.rmtree(store, ignore_errors=True)
        typer.echo(f"carkinetics fit: {counts['fitted']} fitted ({counts['converged']} "
                   f"converged, {counts['flagged']} flagged), {counts['failed']} failed; "
                   f"outputs in {out.resolve()}")
        for name, path in paths.items():
            typer.echo(f"  {name:<12} {path}")
