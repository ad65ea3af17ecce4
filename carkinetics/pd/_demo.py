"""The PD step of ``carkinetics demo`` (called from :mod:`carkinetics.demo`)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from carkinetics._atomic import save_figure, write_table

__all__ = ["demo_step", "ENDPOINT_ANALYSES"]

#: (name, endpoint, response kind, options, model) of the demo's exposure-response analyses.
ENDPOINT_ANALYSES = (
    ("igg_pct_change_month3", "igg", "pct_change", {"day": 91.0}, "emax"),
    ("anti_dsdna_negative_month6", "anti_dsdna", "binary",
     {"day": 183.0, "level": 30.0, "window": 30.0}, "logistic"),
    ("bcell_reconstitution", "cd19_b", "tte",
     {"level": 20.0, "below": False, "after_below": 5.0}, "cox"),
)


def demo_step(data: pd.DataFrame, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """CAR-T/B cells/IgG/anti-dsDNA page, exposure-response fits and figures.

    Parameters
    ----------
    data : DataFrame
        The trial's long table (CK and PD rows).
    out_dir : path
        Folder (created); outputs go to ``out_dir`` directly.

    Returns
    -------
    dict of str to Path
        ``ck_pd_by_dose`` (figure), ``exposure`` (per-participant NCA Cmax and AUC0-28),
        ``exposure_response`` (estimates of every analysis) and one figure per analysis
        (``er_<name>``). An analysis that cannot be fitted (e.g. too few responders) is
        listed with its reason in ``exposure_response.csv`` instead.
    """
    from carkinetics.exceptions import DataError
    from carkinetics.pd.exposure import exposure_metrics, exposure_response, response_table
    from carkinetics.plots.pd import plot_ck_pd_by_dose, plot_exposure_response

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w: dict[str, Path] = {}
    w["ck_pd_by_dose"] = save_figure(plot_ck_pd_by_dose(data), out / "ck_pd_by_dose.png")
    ex = exposure_metrics(data, source="nca", endpoint="car_qpcr")
    w["exposure"] = write_table(ex, out / "exposure.csv")
    tables = []
    for name, ep, kind, opts, model in ENDPOINT_ANALYSES:
        if not (data["endpoint"] == ep).any():
            continue
        try:
            resp = response_table(data, ep, kind=kind, **opts).dropna()
            fit = exposure_response(ex, resp, model=model, metric="auc_0_28",
                                    info={"endpoint": ep, "response": f"{kind} {opts}"})
        except DataError as exc:
            tables.append(pd.DataFrame([{"analysis": name, "model": model, "endpoint": ep,
                                         "parameter": "", "reason": str(exc)}]))
            continue
        f = fit.to_frame()
        f.insert(0, "analysis", name)
        tables.append(f)
        w[f"er_{name}"] = save_figure(plot_exposure_response(fit), out / f"er_{name}.png")
    if tables:
        w["exposure_response"] = write_table(pd.concat(tables, ignore_index=True),
                                             out / "exposure_response.csv")
    return w
