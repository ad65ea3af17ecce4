"""``carkinetics demo``: the pipeline on the embedded synthetic trial.

simulate (CK, clinical scores, adverse events) -> validate -> CK figure -> NCA (table,
dose-level summary, dose proportionality, figure) -> individual censored fits (with
model-vs-NCA exposure) -> safety and efficacy tables. Each step writes its outputs into
the output folder atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from carkinetics._atomic import save_figure, write_table

__all__ = ["run_demo"]


def run_demo(out: str | os.PathLike[str], *, seed: int | None = None,
             progress: bool = True, workers: int = 1) -> dict[str, Path]:
    """Run the pipeline on the synthetic trial and write figures and tables to ``out``.

    Parameters
    ----------
    out : path
        Output folder (created).
    seed : int, optional
        Root seed (default: the embedded trial's seed).
    progress : bool, default True
        Show a progress bar.
    workers : int, default 1
        Worker processes for the individual fits (results do not depend on it).

    Returns
    -------
    dict of str to Path
        What was written, by name.
    """
    from carkinetics.simulate import DEFAULT_SEED

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = DEFAULT_SEED if seed is None else seed
    state: dict = {"out": out, "seed": seed, "workers": workers, "written": {}}
    steps: list[tuple[str, Callable[[dict], None]]] = [
        ("simulate", _simulate), ("validate", _validate), ("CK figure", _ck_figure),
        ("NCA", _nca), ("individual fits", _fits), ("population fit (FOCE-I)", _focei),
        ("endpoints", _endpoints), ("CK->PD", _pd)]
    with tqdm(total=len(steps), desc="carkinetics demo", disable=not progress) as bar:
        for name, step in steps:
            bar.set_postfix_str(name)
            step(state)
            bar.update()
    return state["written"]


def _simulate(s: dict) -> None:
    from carkinetics.simulate import (
        simulate_adverse_events,
        simulate_clinical_scores,
        simulate_trial,
    )

    trial = simulate_trial(s["seed"])
    w = s["written"]
    w["data"], w["truth"] = trial.write(s["out"] / "trial.csv")
    s["scores"] = simulate_clinical_scores(trial, s["seed"])
    w["scores"] = write_table(s["scores"], s["out"] / "clinical_scores.csv")
    s["ae"] = simulate_adverse_events(trial, s["seed"])
    w["adverse_events"] = write_table(s["ae"], s["out"] / "adverse_events.csv")
    s["trial"] = trial


def _validate(s: dict) -> None:
    from carkinetics.data import validate
    from carkinetics.endpoints import validate_ae

    s["data"] = validate(s["trial"].data, source=str(s["written"]["data"]))
    both = pd.concat([s["trial"].data, s["scores"]], ignore_index=True)
    s["all_data"] = validate(both, source="trial + clinical scores")
    s["ae"] = validate_ae(s["ae"], source=str(s["written"]["adverse_events"]))


def _ck_figure(s: dict) -> None:
    from carkinetics.plots import plot_ck_by_dose

    path = s["out"] / "ck_by_dose.png"
    s["written"]["ck_by_dose_figure"] = save_figure(plot_ck_by_dose(s["data"]), path)


def _nca(s: dict) -> None:
    from carkinetics.nca import dose_proportionality, nca, summarize_nca
    from carkinetics.plots import plot_nca_by_dose

    res = nca(s["data"], endpoint=["car_flow", "car_qpcr"])  # CK only: the trial has PD rows
    w, out = s["written"], s["out"]
    w["nca"] = write_table(res.to_wide(), out / "nca.csv")
    w["nca_long"] = write_table(res.table, out / "nca_long.csv")
    w["nca_by_dose"] = write_table(summarize_nca(res, dose_unit="cells/kg"),
                                   out / "nca_by_dose.csv")
    w["dose_proportionality"] = write_table(dose_proportionality(res),
                                            out / "dose_proportionality.csv")
    w["nca_figure"] = save_figure(plot_nca_by_dose(res), out / "exposure_by_dose.png")
    s["nca"] = res


def _fits(s: dict) -> None:
    from carkinetics.fitting import fit_individuals
    from carkinetics.fitting.outputs import write_fit_outputs
    from carkinetics.nca import compare_with_model

    res = fit_individuals(s["data"], "piecewise", endpoint="joint", workers=s["workers"],
                          progress=False)
    s["fits"] = res
    # joint fits: the latent level is on the qPCR scale, so compare with qPCR NCA
    derived = pd.DataFrame([{"id": f.id, **f.derived.to_dict()} for f in res.fits])
    s["written"]["nca_vs_model"] = write_table(
        compare_with_model(s["nca"], derived, endpoint="car_qpcr"), s["out"] / "nca_vs_model.csv")
    s["written"].update({f"fits/{k}": v for k, v in
                        write_fit_outputs(res, s["out"] / "fits").items()})


# -- population fit (FOCE-I; issue 6) ------------------------------------------------------
def _focei(s: dict) -> None:
    """FOCE-I fit of the piecewise population model (dose power covariate on cmax)."""
    import warnings

    from carkinetics.fitting.population import PopulationSpec, fit_focei
    from carkinetics.fitting.population.outputs import write_population_outputs

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_focei(PopulationSpec(), s["data"], seed=s["seed"])
    s["focei"] = res
    paths = write_population_outputs(res, s["out"] / "population", seed=s["seed"], extra={
        "command": "carkinetics demo", "runtime_warnings": [str(w.message) for w in caught]})
    s["written"].update({f"population/{k}": v for k, v in paths.items()})
# -- end of the population fit block ---------------------------------------------------------


def _endpoints(s: dict) -> None:
    from carkinetics.endpoints import endpoint_tables, write_endpoint_tables

    tables = endpoint_tables(s["all_data"], s["ae"])
    paths = write_endpoint_tables(tables, s["out"] / "endpoints")
    s["written"].update({f"endpoints/{k}": v for k, v in paths.items()})


# -- issue 7 (CK->PD): one page of CAR-T, B cells, IgG, anti-dsDNA by dose; exposure-response
def _pd(s: dict) -> None:
    from carkinetics.pd import demo_step

    paths = demo_step(s["data"], s["out"] / "pd")
    s["written"].update({f"pd/{k}": v for k, v in paths.items()})
