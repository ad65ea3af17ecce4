"""``carkinetics demo``: the pipeline on the embedded synthetic trial.

simulate (CK, clinical scores, adverse events) -> validate -> CK figure -> NCA (table,
dose-level summary, dose proportionality, figure) -> individual censored fits (with
model-vs-NCA exposure) -> FOCE-I population fit -> sequential CK->PD fits (B cells) ->
safety and efficacy tables -> escalation recommendation (BOIN on the trial's DLTs, predicted
exposure per dose from the FOCE-I fit) -> CK/PD page and exposure-response -> the committee
report (``report.html``). Each step writes its outputs into the output folder atomically;
the report reads them like ``carkinetics report`` does.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from carkinetics._atomic import atomic_write, save_figure, write_table

__all__ = ["run_demo"]


#: Target DLT probability of the demo's BOIN recommendation (the protocol states none; 0.3
#: is the usual phase-1 target and the ``escalate`` default).
DEMO_TARGET = 0.3


def run_demo(out: str | os.PathLike[str], *, seed: int | None = None,
             progress: bool = True, workers: int = 1,
             command: str | None = None) -> dict[str, Path]:
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
        Worker processes for the individual and PD fits (results do not depend on it).
    command : str, optional
        Command line recorded in the report (default: the equivalent ``carkinetics demo``).

    Returns
    -------
    dict of str to Path
        What was written, by name.
    """
    from carkinetics.simulate import DEFAULT_SEED

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = DEFAULT_SEED if seed is None else seed
    if command is None:
        command = " ".join(shlex.quote(a) for a in
                           ("carkinetics", "demo", "--out", str(out), "--seed", str(seed)))
    state: dict = {"out": out, "seed": seed, "workers": workers, "written": {},
                   "progress": progress, "command": command}
    steps: list[tuple[str, Callable[[dict], None]]] = [
        ("simulate", _simulate), ("validate", _validate), ("CK figure", _ck_figure),
        ("NCA", _nca), ("individual fits", _fits), ("population fit (FOCE-I)", _focei),
        ("PD fits (B cells)", _pd_fits), ("endpoints", _endpoints),
        ("escalation", _escalation), ("CK->PD", _pd), ("report", _report)]
    timings: dict[str, float] = {}
    with tqdm(total=len(steps), desc="carkinetics demo", disable=not progress) as bar:
        for name, step in steps:
            bar.set_postfix_str(name)
            t0 = time.perf_counter()
            step(state)
            timings[name] = round(time.perf_counter() - t0, 2)
            bar.update()
    timings["total"] = round(sum(timings.values()), 2)
    state["written"]["timings"] = atomic_write(
        out / "demo_timings.json", lambda p: Path(p).write_text(json.dumps(
            {"workers": workers, "seconds": timings}, indent=2) + "\n"))
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
    s["endpoint_tables"] = tables
    paths = write_endpoint_tables(tables, s["out"] / "endpoints")
    s["written"].update({f"endpoints/{k}": v for k, v in paths.items()})


# -- issue 7 (CK->PD): one page of CAR-T, B cells, IgG, anti-dsDNA by dose; exposure-response
def _pd(s: dict) -> None:
    from carkinetics.pd import demo_step

    paths = demo_step(s["data"], s["out"] / "pd")
    s["written"].update({f"pd/{k}": v for k, v in paths.items()})


# -- sequential CK->PD fits (the `carkinetics pd` machinery), B-cell system ----------------
def _fit_pd_unit(unit: tuple) -> object:
    """One participant's sequential B-cell fit (module level: picklable for map_units)."""
    from carkinetics.pd.fit import fit_pd

    pid, data, ck = unit
    return fit_pd(data, "bcell", id=pid, ck_params=ck, method="m3", n_starts=4)


def _pd_fits(s: dict) -> None:
    from carkinetics.parallel import UnitFailure, map_units
    from carkinetics.pd import get_pd_model
    from carkinetics.pd.fit import read_ck_params

    data = s["data"]
    system = get_pd_model("bcell")
    ck = read_ck_params(s["written"]["fits/parameters"], names=system.modules[0].param_names)
    ids = [pid for pid in pd.unique(data["id"])]
    units = [(pid, data[data["id"] == pid], ck[pid]) for pid in ids if pid in ck]
    res = map_units(_fit_pd_unit, units, workers=s["workers"], progress=False)
    fits = [r for r in res if not isinstance(r, UnitFailure)]
    failed = pd.DataFrame(
        [{"id": u[0], "error": r.error, "reason": r.message}
         for u, r in zip(units, res, strict=True) if isinstance(r, UnitFailure)]
        + [{"id": pid, "error": "DataError", "reason": "no CK parameters"}
           for pid in ids if pid not in ck], columns=["id", "error", "reason"])
    out = s["out"] / "pd"
    w = s["written"]
    if fits:
        w["pd/parameters"] = write_table(pd.concat([f.to_frame() for f in fits],
                                                   ignore_index=True), out / "pd_parameters.csv")
        w["pd/predictions"] = write_table(pd.concat(
            [f.predictions.assign(model=f.model) for f in fits], ignore_index=True),
            out / "pd_predictions.csv")
    w["pd/failed"] = write_table(failed, out / "pd_failed.csv")
    summary = {"command": "carkinetics demo", "data": str(w["data"]), "model": "bcell",
               "mode": "sequential", "ck_params": str(w["fits/parameters"]),
               "n_fitted": len(fits), "n_converged": int(sum(f.converged for f in fits)),
               "n_failed": len(failed), "blq": "m3", "n_starts": 4}
    w["pd/summary"] = atomic_write(out / "pd_summary.json", lambda p: Path(p).write_text(
        json.dumps(summary, indent=2) + "\n"))


# -- escalation recommendation: `carkinetics escalate` on the trial's DLT state ------------
def _escalation(s: dict) -> None:
    """BOIN decision from the trial's DLTs, exposure per dose from the FOCE-I fit.

    The trial state (one row per participant: dose level, delivered dose, DLT, still in
    the DLT window) comes from the endpoints' DLT table; participants not evaluable for DLT
    are left out. The decision is made by the ``escalate`` command itself (in process), so
    the file is exactly what ``carkinetics escalate`` writes.
    """
    import contextlib
    import io

    from carkinetics.cli import app
    from carkinetics.exceptions import DataError

    dlt = s["endpoint_tables"]["dlt"]
    dlt = dlt[dlt["status"] != "not_evaluable"]
    delivered = s["data"].groupby("id")["delivered_dose"].first() \
        if "delivered_dose" in s["data"] else s["data"].groupby("id")["dose"].first()
    state = pd.DataFrame({"id": dlt["id"].to_numpy(),
                          "dose_level": dlt["dose_level"].astype(int).to_numpy(),
                          "delivered_dose": dlt["id"].map(delivered).to_numpy(),
                          "dlt": dlt["dlt"].astype(int).to_numpy(),
                          "in_window": (dlt["status"] == "pending").astype(int).to_numpy()})
    out, w = s["out"], s["written"]
    w["escalation_state"] = write_table(state, out / "escalation_state.csv")
    doses = s["trial"].truth["design"]["dose_levels"]
    args = ["escalate", str(w["escalation_state"]), "--out", str(out / "escalation.json"),
            "--design", "boin", "--target", str(DEMO_TARGET), "--cohort-size", "3",
            "--doses", ",".join(f"{d:g}" for d in doses),
            "--population", str(out / "population"), "--seed", str(s["seed"])]
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        code = app(args=args, standalone_mode=False)
    if code not in (0, None):
        raise DataError(f"carkinetics {' '.join(args)} failed: {se.getvalue().strip()}",
                        source="carkinetics demo")
    w["escalation"] = out / "escalation.json"
    s["escalation_line"] = so.getvalue().strip()


def _report(s: dict) -> None:
    from carkinetics.report import build_report

    out, w = s["out"], s["written"]
    w["report"] = build_report(
        w["data"], out / "report.html", fit=out / "fits", popfit=out / "population",
        nca=w["nca"], endpoints=out / "endpoints", escalation=w["escalation"],
        pd_dir=out / "pd", command=s["command"], seed=s["seed"])
