"""``carkinetics popfit``: population fit (FOCE-I or hierarchical Bayes) of a data file.

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


def _covariates(text: str | None, level_param: str) -> list[tuple[str, str, str | None]]:
    """Parse ``--covariates``: comma-separated ``column[:parameter[:kind]]``.

    ``dose`` alone is the power model on the level parameter (reference 1e6 cells/kg);
    a non-numeric column defaults to ``categorical``, others to ``power``.
    """
    out = []
    for item in (text or "").split(","):
        item = item.strip()
        if not item or item.lower() == "none":
            continue
        parts = item.split(":")
        col = parts[0]
        par = parts[1] if len(parts) > 1 and parts[1] else level_param
        kind = parts[2] if len(parts) > 2 else None
        out.append((col, par, kind))
    return out


def register(app: typer.Typer, fail: Callable[[str], None]) -> None:
    """Add the ``popfit`` verb to ``app``; ``fail(message)`` exits 1 (bad input)."""

    @app.command("popfit")
    def popfit_cmd(
        data: Annotated[Path, typer.Argument(help="Data file (CSV, Parquet or NONMEM-style).")],
        out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
        model: Annotated[str, typer.Option("--model", help="Kinetic model name.")] = "piecewise",
        method: Annotated[str, typer.Option("--method", help="focei or bayes.")] = "focei",
        covariates: Annotated[str | None, typer.Option(
            "--covariates", help="Comma-separated column[:parameter[:kind]] (kind power, "
            "linear or categorical); default 'dose' (power model on the expansion level); "
            "'none' for no covariate.")] = "dose",
        blq: Annotated[str, typer.Option("--blq", help="BLQ method m1..m7 (M3: censored "
                                         "likelihood).")] = "m3",
        endpoint: Annotated[str, typer.Option(
            "--endpoint", help="joint (qPCR and flow together), car_qpcr or car_flow.")
        ] = "joint",
        random_effects: Annotated[str | None, typer.Option(
            "--random-effects", help="Comma-separated parameters with a random effect "
            "(default all).")] = None,
        seed: Annotated[int, typer.Option("--seed", min=0, help="Root random seed.")] = 20240409,
        figures: Annotated[bool, typer.Option("--figures/--no-figures",
                                              help="Draw diagnostic figures.")] = True,
    ) -> None:
        """Population fit; writes population.csv, individual.csv, summary.json, figures.

        DIR/population.csv (parameter, estimate, se, rse, ci_lower, ci_upper),
        DIR/individual.csv (EBEs or posterior medians), DIR/summary.json (method, OFV,
        AIC/BIC, convergence, timings, warnings), DIR/gof.png, DIR/individual_fits.png,
        DIR/vpc.png (FOCE-I) and DIR/posterior.nc (bayes).
        """
        import hashlib
        import time
        import warnings

        from carkinetics.models import available_models

        if model not in available_models():
            from carkinetics._validation import closest

            _usage(f"--model {model!r} is not a model; expected one of {available_models()}."
                   + closest(model, available_models()))
        if method not in ("focei", "bayes"):
            _usage(f"--method {method!r}: expected 'focei' or 'bayes'.")
        if blq.lower() not in _METHODS:
            _usage(f"--blq {blq!r}: expected one of {list(_METHODS)}.")
        if not data.exists():
            fail(f"{data}: no such file.")

        from carkinetics.data import read_data
        from carkinetics.exceptions import DataError, ModelSpecError
        from carkinetics.fitting.population.outputs import write_population_outputs
        from carkinetics.fitting.population.spec import Covariate, PopulationSpec
        from carkinetics.models import get_model

        t0 = time.perf_counter()
        caught: list[str] = []
        try:
            df = read_data(data)
            m = get_model(model)
            covs = []
            for col, par, kind in _covariates(covariates, m.level_param):
                if col not in df.columns:
                    raise DataError(f"--covariates: column {col!r} is not in the data "
                                    f"(columns: {list(df.columns)}).", source=str(data))
                if kind is None:
                    import pandas as pd

                    numeric = pd.api.types.is_numeric_dtype(df[col])
                    kind = "power" if numeric else "categorical"
                covs.append(Covariate(col, par, kind))
            re = None if not random_effects else [r.strip() for r in random_effects.split(",")]
            spec = PopulationSpec(model=m, covariates=tuple(covs), endpoint=endpoint,
                                  censoring=blq.lower(), random_effects=re)
            with warnings.catch_warnings(record=True) as wlist:
                warnings.simplefilter("always")
                if method == "focei":
                    from carkinetics.fitting.population.focei import fit_focei

                    res = fit_focei(spec, df, seed=seed)
                else:
                    try:
                        from carkinetics.fitting.bayes import fit_bayes
                    except ImportError as exc:
                        fail("--method bayes: the Bayesian fitter "
                             "(carkinetics.fitting.bayes.fit_bayes) is not available in this "
                             f"installation ({exc}); use --method focei.")
                        return
                    res = fit_bayes(spec, df, seed=seed)
            caught = [str(w.message) for w in wlist]
        except (DataError, ModelSpecError) as exc:
            fail(str(exc))
            return
        t_fit = time.perf_counter() - t0
        paths = write_population_outputs(res, out, figures=figures, seed=seed, extra={
            "command": "carkinetics popfit", "data": str(data),
            "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "model": model, "method": method, "covariates": covariates, "blq": blq.lower(),
            "endpoint": endpoint, "seed": seed, "fit_total_s": round(t_fit, 3),
            "runtime_warnings": caught})
        typer.echo(f"carkinetics popfit ({method}): done in {t_fit:.1f} s; outputs in "
                   f"{out.resolve()}")
        for name, path in paths.items():
            typer.echo(f"  {name:<16} {path}")
