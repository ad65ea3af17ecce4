"""Write the outputs of a batch of individual fits (CSV tables, figure, summary JSON)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from carkinetics._atomic import atomic_write, save_figure, write_table

__all__ = ["write_fit_outputs"]


def write_fit_outputs(res, out: str | os.PathLike[str], *,
                      extra: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write ``parameters.csv``, ``predictions.csv``, ``fits.png`` and ``summary.json``.

    Parameters
    ----------
    res : FitResults
        Output of :func:`carkinetics.fitting.fit_individuals`.
    out : path
        Output folder (created); every file is written atomically.
    extra : mapping, optional
        Further entries for ``summary.json`` (command, data hash, timings ...).

    Returns
    -------
    dict of str to Path
        The files written, by name.
    """
    from carkinetics import __version__
    from carkinetics.plots.fits import plot_individual_fits

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "parameters": write_table(res.to_frame(), out / "parameters.csv"),
        "predictions": write_table(res.predictions(), out / "predictions.csv"),
        "fits": save_figure(plot_individual_fits(res), out / "fits.png"),
    }
    summary = {
        "carkinetics_version": __version__,
        "model": res.model, "method": res.method, "endpoint": res.endpoint,
        "counts": res.counts,
        "flags": res.flag_table()["flag"].value_counts().to_dict(),
        "failed": [{"id": str(f.id), "endpoint": f.endpoint, "error": f.error,
                    "reason": f.reason.splitlines()[0] if f.reason else ""}
                   for f in res.failures],
        "per_fit_ms": round(float(res.timing["per_fit_ms"]), 2),
        **dict(extra or {}),
    }
    paths["summary"] = atomic_write(out / "summary.json", lambda p: Path(p).write_text(
        json.dumps(summary, indent=2, default=str) + "\n"))
    return paths
