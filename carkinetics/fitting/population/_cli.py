"""``carkinetics popfit`` (population fit, FOCE-I or Bayes) and ``carkinetics bootstrap``.

Registered by :mod:`carkinetics.cli` through :func:`register`. Heavy imports happen inside
the command.
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


# -- option declarations shared by ``popfit`` and ``bootstrap`` -------------------------------
DataArg = Annotated[Path, typer.Argument(help="Data file (CSV, Parquet or NONMEM-style).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Output folder (created).")]
ModelOpt = Annotated[str, typer.Option("--model", help="Kinetic model name.")]
CovariatesOpt = Annotated[str | None, typer.Option(
    "--covariates", help="Comma-separated column[:parameter[:kind]] (kind power, "
    "linear or categorical); default 'dose' (power model on the expansion level); "
    "'none' for no covariate.")]
BlqOpt = Annotated[str, typer.Option("--blq", help="BLQ method m1..m7 (M3: censored "
                                     "likelihood).")]
EndpointOpt = Annotated[str, typer.Option(
    "--endpoint", help="joint (qPCR and flow together), car_qpcr or car_flow.")]
RandomEffectsOpt = Annotated[str | None, typer.Option(
    "--random-effects", help="Comma-separated parameters with a random effect "
    "(default all).")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Root random seed.")]


def _check_model(model: str, blq: str) -> None:
    """Usage errors (exit 2) for an unknown model or BLQ method."""
    from carkinetics.models import available_models

    if model not in available_models():
        from carkinetics._validation import closest

        _usage(f"--model {model!r} is not a model; expected one of {available_models()}."
               + closest(model, available_models()))
    if blq.lower() not in _METHODS:
        _usage(f"--blq {blq!r}: expected one of {list(_METHODS)}.")


def _build_spec(df, data: Path, model: str, covariates: str | None, endpoint: str, blq: str,
                random_effects: str | None):
    """The PopulationSpec of the shared options (raises DataError for a missing column)."""
    from carkinetics.exceptions import DataError
    from carkinetics.fitting.population.spec import Covariate, PopulationSpec
    from carkinetics.models import get_model

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
    return PopulationSpec(model=m, covariates=tuple(covs), endpoint=endpoint,
                          censoring=blq.lower(), random_effects=re)


def register(app: typer.Typer, fail: Callable[[str], None]) -> None:
    """Add the ``popfit`` and ``bootstrap`` verbs; ``fail(message)`` exits 1 (bad input)."""

    @app.command("popfit")
    def popfit_cmd(
        data: DataArg,
        out: OutOpt,
        model: ModelOpt = "piecewise",
        method: Annotated[str, typer.Option("--method", help="focei or bayes.")] = "focei",
        covariates: CovariatesOpt = "dose",
        blq: BlqOpt = "m3",
        endpoint: EndpointOpt = "joint",
        random_effects: RandomEffectsOpt = None,
        seed: SeedOpt = 20240409,
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

        _check_model(model, blq)
        if method not in ("focei", "bayes"):
            _usage(f"--method {method!r}: expected 'focei' or 'bayes'.")
        if not data.exists():
            fail(f"{data}: no such file.")

        from carkinetics.data import read_data
        from carkinetics.exceptions import DataError, ModelSpecError
        from carkinetics.fitting.population.outputs import write_population_outputs

        t0 = time.perf_counter()
        caught: list[str] = []
        try:
            df = read_data(data)
            spec = _build_spec(df, data, model, covariates, endpoint, blq, random_effects)
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

    @app.command("bootstrap")
    def bootstrap_cmd(
        data: DataArg,
        out: OutOpt,
        model: ModelOpt = "piecewise",
        method: Annotated[str, typer.Option(
            "--method", help="focei (population refits) or individual (summary of "
            "individual fits).")] = "focei",
        n: Annotated[int, typer.Option("--n", min=2, help="Bootstrap replicates.")] = 200,
        covariates: CovariatesOpt = "dose",
        blq: BlqOpt = "m3",
        endpoint: EndpointOpt = "joint",
        random_effects: RandomEffectsOpt = None,
        seed: SeedOpt = 20240409,
        stratify: Annotated[str | None, typer.Option(
            "--stratify", help="Resample within the levels of this column (constant per "
            "participant), e.g. dose or dose_level.")] = None,
        summary: Annotated[str, typer.Option(
            "--summary", help="individual: median, mean or geomean across participants."
        )] = "median",
        ci_level: Annotated[float, typer.Option("--ci-level", min=0.5, max=0.999,
                                                help="Interval level.")] = 0.95,
        bca: Annotated[bool, typer.Option("--bca/--no-bca", help="BCa intervals (adds a "
                                          "jackknife: one refit per participant).")] = True,
        include_unconverged: Annotated[bool, typer.Option(
            "--include-unconverged/--converged-only",
            help="Use unconverged replicates in the intervals.")] = False,
        workers: WorkersOpt = 1,
        scheduler: SchedulerOpt = None,
        resume: ResumeOpt = False,
        progress: Annotated[bool, typer.Option("--progress/--no-progress",
                                               help="Show a progress bar.")] = True,
    ) -> None:
        """Case bootstrap by participant; writes replicates, intervals and summary.json.

        Each replicate resamples the participants with replacement (within --stratify
        levels), relabels duplicates as distinct participants and refits: FOCE-I with the
        popfit options (started from the original estimates), or the --summary of the
        individual fits. DIR/replicates.csv (replicate, parameter, estimate, converged,
        status), DIR/replicate_status.csv (status and reason per replicate; failures are
        never dropped), DIR/intervals.csv (bootstrap SE, percentile, basic, BCa),
        DIR/samples.csv, DIR/jackknife.csv, DIR/summary.json. Results do not depend on
        --workers or --scheduler. FOCE-I replicates are stored in DIR/.units as they finish
        (removed once the outputs are written); after an interruption the same command with
        --resume refits only the replicates not stored yet.
        """
        import hashlib
        import shutil
        import time

        from carkinetics.fitting.bootstrap import _HOW

        _check_model(model, blq)
        check_scheduler(scheduler)
        if method not in ("focei", "individual"):
            _usage(f"--method {method!r}: expected 'focei' or 'individual'.")
        if summary not in _HOW:
            _usage(f"--summary {summary!r}: expected one of {list(_HOW)}.")
        if not data.exists():
            fail(f"{data}: no such file.")

        from carkinetics.data import read_data
        from carkinetics.exceptions import DataError, ModelSpecError
        from carkinetics.fitting.bootstrap import (
            bootstrap_focei,
            bootstrap_individuals,
            write_bootstrap_outputs,
        )

        t0 = time.perf_counter()
        try:
            df = read_data(data)
            common = {"n": n, "seed": seed, "stratify": stratify, "ci_level": ci_level,
                      "bca": bca, "workers": workers, "scheduler": scheduler,
                      "progress": progress}
            if method == "focei":
                spec = _build_spec(df, data, model, covariates, endpoint, blq, random_effects)
                res = bootstrap_focei(spec, df, include_unconverged=include_unconverged,
                                      store=out / ".units", resume=resume, **common)
            else:
                res = bootstrap_individuals(df, model, endpoint=endpoint, method=blq.lower(),
                                            how=summary, **common)
        except (DataError, ModelSpecError) as exc:
            fail(str(exc))
            return
        t_all = time.perf_counter() - t0
        paths = write_bootstrap_outputs(res, out, extra={
            "command": "carkinetics bootstrap", "data": str(data),
            "data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
            "model": model, "covariates": covariates if method == "focei" else None,
            "blq": blq.lower(), "endpoint": endpoint,
            "random_effects": random_effects, "total_s": round(t_all, 3)})
        shutil.rmtree(out / ".units", ignore_errors=True)
        c = res.counts
        typer.echo(f"carkinetics bootstrap ({method}): {c['ok']} ok, {c['unconverged']} "
                   f"unconverged, {c['failed']} failed of {c['total']} replicates in "
                   f"{t_all:.1f} s; outputs in {out.resolve()}")
        for name, path in paths.items():
            typer.echo(f"  {name:<16} {path}")
        if res.intervals["n_used"].max() < 2:
            fail(f"no parameter has two usable replicates; see "
                 f"{paths['replicate_status']} for the reasons.")
