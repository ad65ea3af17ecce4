"""``carkinetics pd``: sequential (or joint) CK->PD fits of every participant of a data file.

Registered by :mod:`carkinetics.cli` through :func:`register`. Heavy imports happen inside
the command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from carkinetics._clitools import usage_error
from carkinetics.observation import METHODS

__all__ = ["register"]

_METHODS = METHODS
_usage = usage_error


def register(app: typer.Typer, fail: Callable[[str], None]) -> None:
    """Add the ``pd`` verb to ``app``; ``fail(message)`` exits 1 (bad input)."""

    @app.command("pd")
    def pd_cmd(
        data: Annotated[Path, typer.Argument(help="Data file (CSV, Parquet or NONMEM-style).")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
        model: Annotated[str, typer.Option("--model", help="PD system name.")] = "bcell",
        ck_params: Annotated[Path | None, typer.Option(
            "--ck-params", help="CAR-T parameters per participant (parameters.csv of "
            "`carkinetics fit`, or a wide id + parameter table). Without it the CAR-T "
            "parameters are estimated jointly with the PD ones.")] = None,
        endpoint: Annotated[list[str] | None, typer.Option(
            "--endpoint", help="PD endpoint to fit (repeatable; default: the model's "
            "endpoints present in the data).")] = None,
        estimate: Annotated[list[str] | None, typer.Option(
            "--estimate", help="PD parameter to estimate (repeatable; default: those of the "
            "fitted endpoints' models; all others stay at their typical values).")] = None,
        blq: Annotated[str, typer.Option("--blq", help="BLQ method m1..m7.")] = "m3",
        n_starts: Annotated[int, typer.Option("--n-starts", min=1,
                                              help="Start design size.")] = 4,
        progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                               help="Show a progress bar.")] = True,
    ) -> None:
        """Fit a CK->PD model to each participant; write parameters, predictions, events.

        Writes DIR/pd_parameters.csv (long: id, parameter, estimate, se, CI, ...),
        DIR/pd_predictions.csv, DIR/pd_failed.csv and DIR/pd_summary.json, atomically.
        """
        import json

        from carkinetics.pd import available_pd_models

        if model not in available_pd_models():
            from carkinetics._validation import closest

            _usage(f"--model {model!r} is not a PD model; expected one of "
                   f"{available_pd_models()}." + closest(model, available_pd_models()))
        if blq.lower() not in _METHODS:
            _usage(f"--blq {blq!r}: expected one of {list(_METHODS)}.")
        if not data.exists():
            fail(f"{data}: no such file.")
        if ck_params is not None and not ck_params.exists():
            fail(f"{ck_params}: no such file.")

        import pandas as pd

        from carkinetics._atomic import atomic_write, write_table
        from carkinetics.data import read_data
        from carkinetics.exceptions import DataError, ModelSpecError
        from carkinetics.pd import get_pd_model
        from carkinetics.pd.fit import fit_pd_all, read_ck_params

        try:
            df = read_data(data)
            system = get_pd_model(model)
            ck = read_ck_params(ck_params, names=system.modules[0].param_names) \
                if ck_params is not None else None
            for name in estimate or ():
                system.spec(name)  # unknown names raise with a hint
            fits, failed = fit_pd_all(df, system, ck_params=ck, endpoints=endpoint or None,
                                      estimate=estimate or None, method=blq.lower(),
                                      n_starts=n_starts, progress=progress)
        except (DataError, ModelSpecError) as exc:
            fail(str(exc))
            return
        if not fits:
            fail(f"{data}: no participant could be fitted:\n{failed.to_string(index=False)}")
        out.mkdir(parents=True, exist_ok=True)
        params = pd.concat([f.to_frame() for f in fits], ignore_index=True)
        preds = pd.concat([f.predictions.assign(model=f.model) for f in fits],
                          ignore_index=True)
        paths = {
            "parameters": write_table(params, out / "pd_parameters.csv"),
            "predictions": write_table(preds, out / "pd_predictions.csv"),
            "failed": write_table(failed, out / "pd_failed.csv"),
        }
        summary = {"command": "carkinetics pd", "data": str(data), "model": model,
                   "mode": "sequential" if ck is not None else "joint",
                   "ck_params": str(ck_params) if ck_params else None,
                   "n_fitted": len(fits), "n_converged": int(sum(f.converged for f in fits)),
                   "n_failed": len(failed), "blq": blq.lower()}
        paths["summary"] = atomic_write(out / "pd_summary.json", lambda p: Path(p).write_text(
            json.dumps(summary, indent=2) + "\n"))
        typer.echo(f"carkinetics pd: {len(fits)} fitted ({summary['n_converged']} converged), "
                   f"{len(failed)} failed; outputs in {out.resolve()}")
        for name, path in paths.items():
            typer.echo(f"  {name:<12} {path}")
