"""A virtual dose-escalation trial shaped like the protocol (NCT06503224).

Up to 18 participants in dose levels 0.5, 1, 2 and 3 x10^6 CAR-T cells/kg, cohorts of 3
(expanded to 6 at some levels), a mix of SLE, RA, SSc and Sjogren's, dense early CAR-T
sampling (days 1, 4, 7, 10) plus the protocol visits, qPCR and flow cytometry of one latent
CAR-T level with assay-specific scale and error, per-sample LLOQs, between-participant
variability and staggered enrolment with a data cut-off.

Reproducibility: one root ``numpy.random.SeedSequence(seed)`` is spawned into one child
per participant slot; every random quantity of a participant (covariates, kinetic
parameters, visit days, LLOQs, residuals) comes from that participant's own stream, so a
participant's data do not depend on how many others are simulated or in what order.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carkinetics._atomic import atomic_write, write_table
from carkinetics.data.visits import ALL_VISITS, DAYS_PER_MONTH, visit_day
from carkinetics.exceptions import ModelSpecError
from carkinetics.models import get_model

__all__ = [
    "DEFAULT_SEED",
    "TrialDesign",
    "CKPopulation",
    "SimulatedTrial",
    "simulate_trial",
    "truth_path_for",
]

#: Seed of the embedded synthetic trial in ``data/synthetic/`` (the trial's start date).
DEFAULT_SEED = 20240409


def _protocol_schedule() -> tuple[tuple[str, float, float], ...]:
    """(label, nominal day, half-width of the visit window in days) for every CK visit."""
    def half_width(label: str) -> float:
        day = visit_day(label)
        if day <= 7:
            return 0.0  # pre-infusion and dense early samples are taken on the day
        if day <= 10:
            return 1.0
        if day <= 28:
            return 2.0
        return 7.0 if day <= 3 * DAYS_PER_MONTH + 1 else 14.0

    return tuple((label, visit_day(label), half_width(label)) for label in ALL_VISITS)


@dataclass(frozen=True)
class TrialDesign:
    """Who is dosed with what, when, and when they are sampled.

    Attributes
    ----------
    dose_levels : tuple of float
        Assigned doses (CAR-T cells/kg), lowest first.
    cohort_sizes : tuple of int
        Participants per dose level (cohorts of 3, expanded to 6 at some levels).
    diseases, disease_probs : tuple
        Disease groups and their allocation probabilities.
    schedule : tuple of (label, nominal day, window half-width)
        CK sampling visits; actual days are drawn uniformly (whole days) within the window.
    cohort_gap_days, within_cohort_gap_days : float
        Enrolment stagger: between dose levels (the DLT window) and between participants.
    data_cutoff_day : float
        Study day (from the first infusion) of the data cut-off: later participants have
        shorter follow-up.
    """

    dose_levels: tuple[float, ...] = (0.5e6, 1.0e6, 2.0e6, 3.0e6)
    cohort_sizes: tuple[int, ...] = (3, 6, 3, 6)
    diseases: tuple[str, ...] = ("SLE", "RA", "SSc", "SjD")
    disease_probs: tuple[float, ...] = (0.4, 0.25, 0.2, 0.15)
    schedule: tuple[tuple[str, float, float], ...] = field(default_factory=_protocol_schedule)
    cohort_gap_days: float = 35.0
    within_cohort_gap_days: float = 7.0
    data_cutoff_day: float = 790.0

    def __post_init__(self) -> None:
        if len(self.dose_levels) != len(self.cohort_sizes):
            raise ModelSpecError(
                f"Invalid cohort_sizes={self.cohort_sizes!r}; expected one size per dose level "
                f"({len(self.dose_levels)})."
            )
        if any(d <= 0 for d in self.dose_levels) or list(self.dose_levels) != sorted(
                self.dose_levels):
            raise ModelSpecError(
                f"Invalid dose_levels={self.dose_levels!r}; expected increasing doses > 0.")
        if any(n < 1 for n in self.cohort_sizes):
            raise ModelSpecError(f"Invalid cohort_sizes={self.cohort_sizes!r}; expected >= 1.")
        if len(self.diseases) != len(self.disease_probs) or not math.isclose(
                sum(self.disease_probs), 1.0):
            raise ModelSpecError(
                f"Invalid disease_probs={self.disease_probs!r}; expected one probability per "
                f"disease {self.diseases!r}, summing to 1.")

    @property
    def n_participants(self) -> int:
        """Total number of participants."""
        return int(sum(self.cohort_sizes))


@dataclass(frozen=True)
class CKPopulation:
    """Population truth of the CAR-T kinetics (piecewise model) and the two assays.

    Typical values apply at ``dose_ref``; ``cmax`` scales with dose as
    ``(dose / dose_ref) ** dose_exp``. Between-participant variability ``omega`` is the SD
    of a normal random effect on each parameter's transform scale (log; logit for ``fb``).
    Sources: Tmax about 10 d in CAR-T for autoimmune disease (CLINICAL.md 1d); faster
    persistence decline than in oncology (YTB323 median clearance about 2 months); Cmax,
    fold expansion and assay constants are chosen here (I) to give realistic BLQ fractions.
    """

    typical: Mapping[str, float] = field(default_factory=lambda: {
        "foldx": 1500.0, "tmax": 10.0, "cmax": 15000.0, "alpha": 0.12, "fb": 0.03,
        "beta": 0.006})
    omega: Mapping[str, float] = field(default_factory=lambda: {
        "foldx": 0.6, "tmax": 0.2, "cmax": 0.6, "alpha": 0.3, "fb": 0.5, "beta": 0.4})
    dose_ref: float = 1.0e6
    dose_exp: float = 0.5
    #: flow CAR+ cells/uL per qPCR copies/ug (typical) and its between-participant SD (log)
    flow_per_copy: float = 0.004
    omega_flow_scale: float = 0.3
    sigma_qpcr: float = 0.4
    sigma_flow: float = 0.3
    #: per-sample LLOQ: nominal value times a log-normal factor (DNA input / events acquired)
    lloq_qpcr: float = 50.0
    lloq_flow: float = 0.2
    lloq_cv: float = 0.25
    uloq_qpcr: float = 1.0e6
    uloq_flow: float = 5.0e3


@dataclass(frozen=True)
class SimulatedTrial:
    """A simulated trial: the long-format data table and the truth that generated it."""

    data: pd.DataFrame
    truth: dict[str, Any]

    def write(self, path: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write the data (CSV or Parquet by suffix) and the truth JSON beside it.

        Both files are written to temporary names and renamed into place.

        Returns
        -------
        (Path, Path)
            The data file and the truth file (``<stem>_truth.json``).
        """
        path = Path(path)
        truth = truth_path_for(path)
        write_table(self.data, path)
        atomic_write(truth, lambda p: Path(p).write_text(
            json.dumps(self.truth, indent=2, sort_keys=False) + "\n"))
        return path, truth


def truth_path_for(path: str | os.PathLike[str]) -> Path:
    """Where the truth JSON of a simulated data file lives: ``<stem>_truth.json``."""
    path = Path(path)
    return path.with_name(f"{path.stem}_truth.json")


def _round_sig(x: np.ndarray, digits: int = 4) -> np.ndarray:
    """Round to ``digits`` significant figures (as a lab report would)."""
    x = np.asarray(x, dtype=float)
    out = x.copy()
    pos = np.isfinite(x) & (x > 0)
    mag = np.floor(np.log10(x[pos]))
    scale = 10.0 ** (digits - 1 - mag)
    out[pos] = np.round(x[pos] * scale) / scale
    return out


def _draw_participant(rng: np.random.Generator, pop: CKPopulation) -> dict[str, float]:
    model = get_model("piecewise")
    params = {}
    for name in model.param_names:
        spec = model.spec(name)
        eta = rng.normal(0.0, pop.omega.get(name, 0.0))
        params[name] = float(spec.from_internal(spec.to_internal(pop.typical[name]) + eta))
    # keep the fast phase faster than the slow one (label identifiability)
    if params["beta"] >= params["alpha"]:
        params["beta"] = 0.5 * params["alpha"]
    return params


def simulate_trial(seed: int = DEFAULT_SEED, *, design: TrialDesign | None = None,
                   population: CKPopulation | None = None, include_pd: bool = True,
                   pd_population: Any = None) -> SimulatedTrial:
    """Simulate a virtual trial in the long data format, with its truth.

    Parameters
    ----------
    seed : int, default DEFAULT_SEED
        Root seed; the result is a deterministic function of it (and of the design and
        population).
    design : TrialDesign, optional
        Dose levels, cohorts, diseases, sampling; the protocol's by default.
    population : CKPopulation, optional
        Kinetic and assay truth.
    include_pd : bool, default True
        Add the PD rows (B cells, immunoglobulins, autoantibodies, complement) generated by
        :func:`carkinetics.simulate.pd.simulate_pd` from the true CAR-T kinetics, and their
        truth under ``truth["pd"]``. The CK rows do not depend on it (separate streams).
    pd_population : carkinetics.simulate.pd.PDPopulation, optional
        PD population truth.

    Returns
    -------
    SimulatedTrial
        ``data`` has one row per (participant, visit, assay) with columns ``id, time,
        visit, endpoint, dv, unit, lloq, uloq, cens, dose, dose_level, delivered_dose,
        weight, disease, sex, age``; below-LLOQ rows carry ``dv == lloq`` and ``cens == 1``.
        ``truth`` holds the population values and each participant's parameters.

    Examples
    --------
    >>> trial = simulate_trial(seed=1, include_pd=False)
    >>> sorted(trial.data["endpoint"].unique())
    ['car_flow', 'car_qpcr']
    """
    design = design or TrialDesign()
    pop = population or CKPopulation()
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ModelSpecError(f"Invalid seed={seed!r}; expected a non-negative integer.")
    model = get_model("piecewise")
    children = np.random.SeedSequence(int(seed)).spawn(design.n_participants)
    n_digits = max(2, len(str(design.n_participants)))

    rows: list[pd.DataFrame] = []
    participants: list[dict[str, Any]] = []
    k = 0
    for level, (dose, size) in enumerate(zip(design.dose_levels, design.cohort_sizes,
                                             strict=True), start=1):
        for j in range(size):
            rng = np.random.default_rng(children[k])
            pid = f"P{k + 1:0{n_digits}d}"
            start = (level - 1) * design.cohort_gap_days + j * design.within_cohort_gap_days
            if j >= 3:  # expansion cohort enrols after the first three cleared the DLT window
                start += design.cohort_gap_days / 2
            disease = str(rng.choice(design.diseases, p=design.disease_probs))
            weight = float(np.round(65.0 * np.exp(rng.normal(0.0, 0.18)), 1))
            sex = "F" if rng.random() < 0.8 else "M"
            age = int(rng.integers(18, 66))
            params = _draw_participant(rng, pop)
            flow_scale = pop.flow_per_copy * math.exp(rng.normal(0.0, pop.omega_flow_scale))

            labels = [s[0] for s in design.schedule]
            nominal = np.array([s[1] for s in design.schedule])
            half = np.array([s[2] for s in design.schedule])
            times = np.where(half > 0, np.round(nominal + rng.uniform(-half, half)), nominal)
            keep = start + times <= design.data_cutoff_day
            n_t = len(times)

            p_dose = model.with_dose(params, dose, pop.dose_ref, pop.dose_exp)
            latent = model.predict(times, p_dose)
            frames = []
            for endpoint, unit, scale, sigma, lloq0, uloq in (
                    ("car_qpcr", "copies/ug", 1.0, pop.sigma_qpcr, pop.lloq_qpcr, pop.uloq_qpcr),
                    ("car_flow", "cells/uL", flow_scale, pop.sigma_flow, pop.lloq_flow,
                     pop.uloq_flow)):
                eps = rng.normal(0.0, sigma, n_t)
                lloq = _round_sig(lloq0 * np.exp(rng.normal(0.0, pop.lloq_cv, n_t)), 2)
                with np.errstate(divide="ignore"):
                    value = _round_sig(scale * latent * np.exp(eps))
                cens = np.where(value < lloq, 1, np.where(value > uloq, -1, 0))
                dv = np.where(cens == 1, lloq, np.where(cens == -1, uloq, value))
                frames.append(pd.DataFrame({
                    "id": pid, "time": times, "visit": labels, "endpoint": endpoint,
                    "dv": dv, "unit": unit, "lloq": lloq, "uloq": uloq,
                    "cens": cens.astype(int)})[keep])
            df = pd.concat(frames, ignore_index=True)
            df["dose"] = dose
            df["dose_level"] = level
            df["delivered_dose"] = dose
            df["weight"] = weight
            df["disease"] = disease
            df["sex"] = sex
            df["age"] = age
            rows.append(df)
            participants.append({
                "id": pid, "dose": dose, "dose_level": level, "weight": weight,
                "disease": disease, "sex": sex, "age": age, "enrolment_day": start,
                "follow_up_days": float(min(design.data_cutoff_day - start, nominal.max())),
                "params": params, "params_at_dose": {k2: float(v) for k2, v in p_dose.items()},
                "flow_per_copy": flow_scale,
            })
            k += 1

    data = pd.concat(rows, ignore_index=True)
    pd_truth = None
    if include_pd:
        from carkinetics.simulate.pd import simulate_pd

        pd_rows, pd_truth = simulate_pd(data, participants, int(seed), population=pd_population)
        data = pd.concat([data, pd_rows], ignore_index=True)
    data = data.sort_values(["id", "endpoint", "time"], kind="stable", ignore_index=True)
    from carkinetics import __version__

    truth = {
        "generator": "carkinetics.simulate.simulate_trial",
        "carkinetics_version": __version__,
        "seed": int(seed),
        "model": "piecewise",
        "design": {k2: (list(map(list, v)) if k2 == "schedule" else
                        list(v) if isinstance(v, tuple) else v)
                   for k2, v in asdict(design).items()},
        "population": {k2: (dict(v) if isinstance(v, Mapping) else v)
                       for k2, v in asdict(pop).items()},
        "omega_scale": "sd of the random effect on the parameter's transform scale",
        "residual": {"car_qpcr": {"kind": "log_additive", "sigma": pop.sigma_qpcr},
                     "car_flow": {"kind": "log_additive", "sigma": pop.sigma_flow}},
        "participants": participants,
    }
    if pd_truth is not None:
        truth["pd"] = pd_truth
    return SimulatedTrial(data=data, truth=truth)


def blq_fraction(data: pd.DataFrame, by: Sequence[str] = ("endpoint",)) -> pd.Series:
    """Fraction of rows below LLOQ, by the given columns."""
    return data.groupby(list(by))["cens"].apply(lambda c: float(np.mean(c == 1)))
