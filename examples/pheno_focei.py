"""Phenobarbital in neonates fitted by FOCE-I (the NONMEM pheno_real model).

One-compartment IV bolus with repeated doses (ADVAN1 TRANS2): CL = THETA(1) * WGT *
exp(ETA(1)), V = THETA(2) * WGT * (1 + THETA(3) if APGR < 5) * exp(ETA(2)), proportional
error Y = F + F * EPS(1), FOCE with INTERACTION. Data: tests/data/pheno/pheno.dta
(Grasela & Donn 1985, as distributed with Pharmpy).

Run from the repository root: ``python examples/pheno_focei.py``. The last line printed is
one JSON object ``{"ofv", "theta", "omega", "sigma"}`` with omega and sigma as variances in
the order of the NONMEM control stream.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from carkinetics.fitting.population.focei import PopulationModel, fit_focei
from carkinetics.models.base import ParameterSpec
from carkinetics.observation import ErrorModel

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "pheno" / "pheno.dta"


def load(path: Path = DATA) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Observation rows, dose records and per-neonate covariates."""
    raw = pd.read_csv(path, sep=r"\s+")
    raw["record"] = np.arange(len(raw))
    obs = raw[raw["AMT"] == 0].rename(columns={"ID": "id", "DV": "dv", "TIME": "time"})
    obs = obs.assign(cens=0)
    doses = raw[raw["AMT"] > 0]
    cov = (raw.groupby("ID").agg(WGT=("WGT", "first"), APGR=("APGR", "first"))
           .reset_index().rename(columns={"ID": "id"}))
    return obs, doses, cov


def dose_matrices(obs: pd.DataFrame, doses: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Amounts and times since dose of every earlier dose record, one row per observation."""
    width = int(doses.groupby("ID").size().max())
    amt = np.zeros((len(obs), width))
    since = np.zeros((len(obs), width))
    by_id = {i: g for i, g in doses.groupby("ID")}
    for r, (pid, t, rec) in enumerate(zip(obs["id"], obs["time"], obs["record"], strict=True)):
        d = by_id[pid]
        d = d[d["record"] < rec]  # NONMEM order: doses recorded before the observation
        amt[r, :len(d)] = d["AMT"].to_numpy()
        since[r, :len(d)] = t - d["TIME"].to_numpy()
    return amt, since


def build(obs: pd.DataFrame, doses: pd.DataFrame) -> PopulationModel:
    """The pheno_real model as a carkinetics PopulationModel."""
    amt, since = dose_matrices(obs, doses)

    def individual(theta, eta, cov):
        w = cov["WGT"].to_numpy(float)
        tvv = theta["v"] * w * np.where(cov["APGR"].to_numpy() < 5, 1 + theta["apgr_v"], 1.0)
        return {"cl": theta["cl"] * w * np.exp(eta[..., 0]), "v": tvv * np.exp(eta[..., 1])}

    def predict(p, ctx):
        a, s = ctx
        ke = (p["cl"] / p["v"])[..., None]
        return np.sum(a / p["v"][..., None] * np.exp(-ke * s), axis=-1)

    return PopulationModel(
        name="pheno",
        theta=(ParameterSpec("cl", "L/h/kg", 0.00469307, 0.0, 1e6, "log"),
               ParameterSpec("v", "L/kg", 1.00916, 0.0, 1e6, "log"),
               ParameterSpec("apgr_v", "1", 0.1, -0.99, 1e6, "none")),
        etas=("cl", "v"), individual=individual, predict=predict,
        error=ErrorModel("proportional"),
        sigma=(ParameterSpec("sigma_prop", "1", 0.0130865 ** 0.5, 0.0, 10.0, "log"),),
        prepare=lambda rows, cov: (amt, since), batched=True)


def main() -> None:
    """Fit pheno by FOCE-I and print the estimates as JSON."""
    obs, doses, cov = load()
    model = build(obs, doses)
    res = fit_focei(model, obs, cov, omega0=np.diag([0.0309626, 0.031128]), diagnostics=False)
    print(f"FOCE-I on pheno: {res.n_evaluations} objective evaluations in {res.seconds:.1f} s; "
          f"converged: {res.converged} ({res.message})", file=sys.stderr)
    print(json.dumps({
        "ofv": res.ofv,
        "theta": [res.theta["cl"], res.theta["v"], res.theta["apgr_v"]],
        "omega": [float(res.omega[0, 0]), float(res.omega[1, 1])],
        "sigma": [res.sigma["sigma_prop"] ** 2],
    }))


if __name__ == "__main__":
    main()
