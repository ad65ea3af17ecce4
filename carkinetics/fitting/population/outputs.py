"""Write the outputs of a population fit (tables, summary JSON, figures)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from carkinetics._atomic import atomic_write, save_figure, write_table

__all__ = ["write_population_outputs", "POPULATION_COLUMNS"]

#: Columns of ``population.csv``.
POPULATION_COLUMNS = ("parameter", "estimate", "se", "rse", "ci_lower", "ci_upper")


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def write_population_outputs(result: Any, out: str | os.PathLike[str], *,
                             extra: Mapping[str, Any] | None = None,
                             figures: bool = True, n_sim_vpc: int = 200,
                             seed: int = 20240409) -> dict[str, Path]:
    """Write ``population.csv``, ``individual.csv``, ``summary.json`` and figures.

    Parameters
    ----------
    result : FOCEIResult or a Bayesian result
        Anything with ``to_frame()`` (columns :data:`POPULATION_COLUMNS` at least),
        ``individual_frame()`` and ``summary()`` or a ``summary`` dict. A result with an
        ``idata`` attribute also gets ``posterior.nc``; one with a diagnostics ``table``
        (FOCE-I) gets ``gof.png``, ``individual_fits.png`` and ``vpc.png`` (with a %BLQ
        panel).
    out : path
        Output folder (created); every file is written atomically.
    extra : mapping, optional
        Further entries for ``summary.json`` (command, data, timings ...).
    figures : bool, default True
        Draw the diagnostic figures.
    n_sim_vpc : int, default 200
        Simulated replicates of the VPC.
    seed : int, default 20240409
        Root seed of the VPC simulations.

    Returns
    -------
    dict of str to Path
        The files written, by name.
    """
    from carkinetics import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pop = result.to_frame()
    for c in POPULATION_COLUMNS:
        if c not in pop.columns:
            pop[c] = np.nan
    cols = list(POPULATION_COLUMNS) + [c for c in pop.columns if c not in POPULATION_COLUMNS]
    paths = {"population": write_table(pop[cols], out / "population.csv"),
             "individual": write_table(result.individual_frame(), out / "individual.csv")}
    summ = result.summary() if callable(getattr(result, "summary", None)) else \
        dict(getattr(result, "summary", {}) or {})
    summary = {"carkinetics_version": __version__, **summ, **dict(extra or {})}
    idata = getattr(result, "idata", None)
    if idata is not None:
        paths["posterior"] = atomic_write(out / "posterior.nc",
                                          lambda p: idata.to_netcdf(p))
    table = getattr(result, "table", None)
    if figures and table is not None and {"PRED", "IPRED", "CWRES", "NPDE"} <= set(table):
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        from carkinetics.plots.population import (
            gof_figure,
            individual_fits_figure,
            vpc_figure,
        )

        paths["table"] = write_table(table, out / "diagnostics.csv")
        for name, make in (("gof", lambda: gof_figure(table)),
                           ("individual_fits", lambda: individual_fits_figure(result)),
                           ("vpc", lambda: vpc_figure(result.vpc(n_sim=n_sim_vpc,
                                                                  seed=seed)))):
            fig = make()
            paths[name] = save_figure(fig, out / f"{name}.png")
            plt.close(fig)
    elif figures:
        summary.setdefault("notes", []).append(
            "diagnostic figures need PRED/IPRED/CWRES/NPDE tables, which this result does "
            "not provide")
    paths["summary"] = atomic_write(out / "summary.json", lambda p: Path(p).write_text(
        json.dumps(_clean(summary), indent=2, default=str) + "\n"))
    return paths
