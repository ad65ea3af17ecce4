"""Clinical scores and laboratory values of a simulated trial at the protocol visits.

Functions only: the trial lead calls :func:`simulate_clinical_scores` on a
:class:`~carkinetics.simulate.SimulatedTrial` and appends the rows to its long table.

Each participant gets a response depth ``D`` in (0, 1) (logit-normal, rising with the true
CAR-T Cmax) and a clinical response ``R(t) = D * (1 - exp(-t / tau))``; the scores of the
participant's disease improve with ``R`` (CLINICAL.md 1b: drug-free remission is common
after CD19/BCMA CAR-T in autoimmune disease):

* SLE: SLEDAI-2K from simulated descriptors (each active one resolves once ``R`` passes
  its own uniform draw; ``low_complement`` and ``increased_dna_binding`` follow the
  simulated C3/C4 and anti-dsDNA), PGA (0-3), BILAG-2004 numeric score from simulated
  organ-system grades (entry: SLEDAI-2K >= 8 and >= 1 A or >= 2 B, as in the protocol);
* RA: SJC28, TJC28 (binomial thinning), pain and patient-global VAS (mm), physician-global
  VAS if the endpoint vocabulary has it, HAQ-DI (multiples of 0.125), ESR, CRP, RF;
* SSc: HAQ-DI, anti-topoisomerase I or anti-RNA polymerase III; SjD: anti-Ro/SSA, RF;
* every participant: ANA (titre), C3, C4, IgG, IgA, IgM, ESR, CRP.

Autoantibodies of positive participants fall towards a floor at the rate of IgG catabolism
(t1/2 21 days, CLINICAL.md 3; I for autoantibodies); immunoglobulins fall after the
infusion (IgG t1/2 21 d, IgA 6 d, IgM 5 d: CLINICAL.md 3) by a depth rising with Cmax and
recover after about 8 months (I). Every number of :class:`ScoreModel` is chosen here (I).
Values below an assay's LLOQ are stored as ``dv == lloq`` with ``cens == 1``.

Mechanistic PD rows: when ``trial.data`` already holds laboratory endpoints (B cells,
immunoglobulins, autoantibodies, C3/C4 written by :mod:`carkinetics.simulate.pd` from the
CK->PD models), those values are used at the visits (so SLEDAI-2K's ``increased_dna_binding``
and ``low_complement`` descriptors follow the mechanistic anti-dsDNA, C3 and C4) and these
endpoints are not written again; the random draws are made all the same, so the other
scores do not depend on whether the trial has PD rows.

Reproducibility: ``numpy.random.SeedSequence([seed, 0x5C0E]).spawn(n)``, one stream per
participant in the order of ``truth["participants"]``. Visit days are the participant's own
CK visit days in ``trial.data`` (column ``visit``), so labs and scores are drawn at the same
visits and stop at the participant's data cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.data.schema import ENDPOINTS
from carkinetics.data.visits import PROTOCOL_VISITS, visit_day
from carkinetics.endpoints.sle import BILAG_SYSTEMS, bilag2004_score, sledai2k

__all__ = ["ScoreModel", "simulate_clinical_scores"]

_STREAM = 0x5C0E
_LN2 = float(np.log(2.0))
#: SLEDAI-2K clinical descriptors: baseline prevalence in the simulated SLE population (I).
_PREVALENCE = {"arthritis": 0.6, "rash": 0.5, "alopecia": 0.3, "mucosal_ulcers": 0.3,
               "proteinuria": 0.4, "hematuria": 0.2, "pyuria": 0.15, "urinary_casts": 0.15,
               "pleurisy": 0.1, "pericarditis": 0.05, "vasculitis": 0.1, "fever": 0.1,
               "thrombocytopenia": 0.1, "leukopenia": 0.2, "myositis": 0.05}
_SYSTEM = {"fever": "constitutional", "rash": "mucocutaneous", "alopecia": "mucocutaneous",
           "mucosal_ulcers": "mucocutaneous", "vasculitis": "mucocutaneous",
           "arthritis": "musculoskeletal", "myositis": "musculoskeletal",
           "pleurisy": "cardiorespiratory", "pericarditis": "cardiorespiratory",
           "proteinuria": "renal", "hematuria": "renal", "pyuria": "renal",
           "urinary_casts": "renal", "thrombocytopenia": "haematological",
           "leukopenia": "haematological"}
_LLOQ = {"anti_dsdna": 10.0, "anti_ro_ssa": 5.0, "rf": 10.0, "anti_topo1": 5.0,
         "anti_rnap3": 5.0, "ana": 40.0, "crp": 0.5}


@dataclass(frozen=True)
class ScoreModel:
    """Parameters of the simulated disease course (all chosen here, I).

    Attributes
    ----------
    cmax_ref : float
        Reference Cmax (copies/ug).
    depth_logit, depth_slope, depth_sd : float
        Response depth: logit mean at ``cmax_ref``, slope per ln(Cmax / cmax_ref), SD.
    tau_days, tau_sd : float
        Time constant of the clinical response (days) and its log-normal SD.
    sero_tau_days : float
        Time constant of the serological response (days; C3/C4 recovery).
    autoab_half_life : float
        Half-life of autoantibody decline (days; IgG catabolism).
    ig_depth : tuple of float
        Typical fractional fall of IgG, IgA, IgM at ``cmax_ref``.
    ig_recovery_day, ig_recovery_tau : float
        Start (days) and time constant (days) of immunoglobulin recovery.
    """

    cmax_ref: float = 15000.0
    depth_logit: float = 1.5
    depth_slope: float = 0.5
    depth_sd: float = 1.0
    tau_days: float = 30.0
    tau_sd: float = 0.4
    sero_tau_days: float = 60.0
    autoab_half_life: float = 21.0
    ig_depth: tuple[float, float, float] = (0.35, 0.55, 0.7)
    ig_recovery_day: float = 240.0
    ig_recovery_tau: float = 180.0


class _Person:
    """One participant's random draws and response curves."""

    def __init__(self, rng: np.random.Generator, p: dict[str, Any], m: ScoreModel) -> None:
        self.rng, self.m, self.disease = rng, m, p["disease"]
        self.x = float(np.log(p["params_at_dose"]["cmax"] / m.cmax_ref))
        logit = m.depth_logit + m.depth_slope * self.x + rng.normal(0.0, m.depth_sd)
        self.depth = 1.0 / (1.0 + np.exp(-logit))
        self.tau = m.tau_days * np.exp(rng.normal(0.0, m.tau_sd))

    def response(self, t: np.ndarray, tau: float | None = None) -> np.ndarray:
        tau = self.tau if tau is None else tau
        return self.depth * (1.0 - np.exp(-np.maximum(t, 0.0) / tau))

    def noise(self, n: int, sd: float) -> np.ndarray:
        return np.exp(self.rng.normal(0.0, sd, n))

    def autoantibody(self, t, positive: bool, base: float, threshold: float):
        if not positive:
            return np.full(t.shape, threshold * 0.3) * self.noise(t.size, 0.2)
        f = min(0.98, self.depth + 0.1)
        k = _LN2 / self.m.autoab_half_life
        return base * ((1 - f) + f * np.exp(-k * np.maximum(t, 0.0))) * self.noise(t.size, 0.15)

    def immunoglobulins(self, t) -> dict[str, np.ndarray]:
        m, out = self.m, {}
        base = {"SLE": 14.0, "SjD": 16.0}.get(self.disease, 11.0)
        rec = np.where(t < m.ig_recovery_day, 1.0,
                       np.exp(-(t - m.ig_recovery_day) / m.ig_recovery_tau))
        for name, b0, depth, half in (("igg", base, m.ig_depth[0], 21.0),
                                      ("iga", 2.2, m.ig_depth[1], 6.0),
                                      ("igm", 1.2, m.ig_depth[2], 5.0)):
            d = min(0.9, depth * np.exp(0.2 * self.x) * self.noise(1, 0.25)[0])
            b = b0 * self.noise(1, 0.2)[0]
            fall = d * (1 - np.exp(-_LN2 / half * np.maximum(t, 0.0))) * rec
            out[name] = np.round(b * (1 - fall) * self.noise(t.size, 0.06), 2)
        return out


def _round_ana(titre: np.ndarray) -> np.ndarray:
    steps = np.round(np.log2(np.maximum(titre, 1e-9) / 40.0))
    return 40.0 * 2.0 ** np.maximum(steps, -1)


def _sle(person: _Person, t: np.ndarray, lab: dict) -> dict[str, np.ndarray]:
    rng = person.rng
    dsdna, c3, c4 = lab["anti_dsdna"], lab["c3"], lab["c4"]
    sero = [d for d in ("increased_dna_binding", "low_complement")
            if (d == "increased_dna_binding" and dsdna[0] >= 30) or
            (d == "low_complement" and (c3[0] < 0.9 or c4[0] < 0.16))]
    active = [d for d, pr in _PREVALENCE.items() if rng.random() < pr]
    pool = list(_PREVALENCE)
    while sledai2k(active + sero) < 8:
        extra = [d for d in pool if d not in active]
        active.append(str(rng.choice(extra)))
    u = {d: rng.random() for d in active}
    systems = {}
    for d in active:
        s = _SYSTEM[d]
        heavy = s in ("renal", "neuropsychiatric")
        level = 3 if heavy and rng.random() < 0.5 else (2 if rng.random() < 0.6 else 1)
        systems[s] = max(systems.get(s, 0), level)
    ranked = sorted(systems, key=systems.get, reverse=True)
    if not any(v == 3 for v in systems.values()) and sum(v == 2 for v in systems.values()) < 2:
        if len(ranked) == 1:
            systems[ranked[0]] = 3
        for s in ranked[:2]:
            systems[s] = max(systems[s], 2)
    r = person.response(t)
    pga0 = rng.uniform(1.5, 2.6)
    sledai, bilag = [], []
    for i, ri in enumerate(r):
        now = [d for d in active if u[d] > ri]
        now += ["increased_dna_binding"] if dsdna[i] >= 30 else []
        now += ["low_complement"] if c3[i] < 0.9 or c4[i] < 0.16 else []
        sledai.append(sledai2k(now))
        grades = dict.fromkeys(BILAG_SYSTEMS, "E")
        for s, lvl in systems.items():
            on = any(_SYSTEM[d] == s and u[d] > ri for d in active)
            drop = 0 if ri < 0.3 else (1 if ri < 0.7 else 2)
            grades[s] = "ABC"[3 - max(1, lvl - drop)] if on else "D"
        bilag.append(bilag2004_score(grades))
    pga = np.clip(pga0 * (1 - r) + rng.normal(0.0, 0.1, t.size), 0.0, 3.0)
    return {"sledai2k": np.array(sledai, float), "pga": np.round(pga, 1),
            "bilag2004": np.array(bilag, float)}


def _ra(person: _Person, t: np.ndarray) -> dict[str, np.ndarray]:
    rng = person.rng
    r = person.response(t)
    sjc0 = min(28, 4 + int(rng.poisson(6)))
    tjc0 = min(28, sjc0 + int(rng.poisson(4)))
    keep = np.clip(1.0 - r + 0.05, 0.0, 1.0)
    out = {"sjc28": rng.binomial(sjc0, keep).astype(float),
           "tjc28": rng.binomial(tjc0, keep).astype(float)}
    out["sjc28"][0], out["tjc28"][0] = sjc0, tjc0
    for name, lo, hi in (("vas_pain", 50, 85), ("vas_global", 50, 85),
                         ("vas_physician", 45, 80)):
        b = rng.uniform(lo, hi)
        out[name] = np.round(np.clip(b * (1 - r) + rng.normal(0, 6, t.size), 0, 100))
    haq0 = rng.choice(np.arange(0.75, 2.26, 0.125))
    out["haq_di"] = _haq(rng, haq0, r, 0.85)
    return out


def _haq(rng, haq0: float, r: np.ndarray, gain: float) -> np.ndarray:
    raw = np.clip(haq0 * (1 - gain * r) + rng.normal(0.0, 0.1, r.size), 0.0, 3.0)
    raw[0] = haq0
    return np.round(raw * 8.0) / 8.0


def _labs(person: _Person, t: np.ndarray) -> dict[str, np.ndarray]:
    rng, dis = person.rng, person.disease
    r = person.response(t)
    rs = person.response(t, person.m.sero_tau_days)
    out = person.immunoglobulins(t)
    low = dis == "SLE"
    c3_0 = rng.uniform(0.5, 0.85) if low else rng.uniform(0.95, 1.5)
    c4_0 = rng.uniform(0.05, 0.14) if low else rng.uniform(0.18, 0.4)
    out["c3"] = np.round((c3_0 + (1.15 - c3_0) * rs * low) * person.noise(t.size, 0.05), 2)
    out["c4"] = np.round((c4_0 + (0.25 - c4_0) * rs * low) * person.noise(t.size, 0.08), 3)
    esr0 = float(np.exp(rng.normal(np.log(45 if dis == "RA" else 30), 0.4)))
    out["esr"] = np.maximum(2.0, np.round(esr0 * (1 - 0.6 * r) * person.noise(t.size, 0.15)))
    crp0 = float(np.exp(rng.normal(np.log({"RA": 20.0, "SLE": 5.0}.get(dis, 8.0)), 0.7)))
    out["crp"] = np.round(crp0 * (1 - 0.8 * r) * person.noise(t.size, 0.3), 1)
    ana0 = 40.0 * 2.0 ** rng.integers(2, 6)  # 1:160 - 1:1280
    ana_pos = dis in ("SLE", "SSc", "SjD") or rng.random() < 0.3
    ana = person.autoantibody(t, ana_pos, ana0, 80.0) if ana_pos else np.full(t.size, 20.0)
    out["ana"] = _round_ana(ana)
    spec = {"SLE": [("anti_dsdna", 1.0, 200.0, 30.0), ("anti_ro_ssa", 0.4, 120.0, 20.0)],
            "RA": [("rf", 0.8, 120.0, 20.0)],
            "SSc": [("anti_topo1", 0.6, 150.0, 20.0), ("anti_rnap3", 0.25, 100.0, 20.0)],
            "SjD": [("anti_ro_ssa", 0.9, 200.0, 20.0), ("rf", 0.5, 60.0, 20.0)]}
    for name, p_pos, median, thr in spec.get(dis, []):
        pos = rng.random() < p_pos
        base = median * float(np.exp(rng.normal(0.0, 0.8)))
        out[name] = np.round(person.autoantibody(t, pos, max(base, 1.5 * thr), thr), 1)
    return out


def _visits(trial, pid: str) -> tuple[list[str], np.ndarray]:
    d = trial.data
    if "visit" in d:
        rows = d[(d["id"] == pid) & d["visit"].isin(PROTOCOL_VISITS)]
        firsts = rows.groupby("visit", sort=False)["time"].first()
        labels = [v for v in PROTOCOL_VISITS if v in firsts.index]
        return labels, firsts.reindex(labels).to_numpy(dtype=float)
    follow = next(p["follow_up_days"] for p in trial.truth["participants"] if p["id"] == pid)
    labels = [v for v in PROTOCOL_VISITS if visit_day(v) <= follow]
    return labels, np.array([visit_day(v) for v in labels])


def _trial_labs(trial, pid: str, labels: list[str]) -> dict[str, np.ndarray]:
    """Non-CK laboratory values of ``pid`` already in ``trial.data`` at every visit label."""
    d = trial.data
    if "visit" not in d or "endpoint" not in d:
        return {}
    rows = d[(d["id"] == pid) & d["visit"].isin(labels) & ~d["endpoint"].isin(
        ("car_qpcr", "car_flow", "car_flow_pct", "cd19_b"))]
    out = {}
    for name, g in rows.groupby("endpoint", sort=False):
        firsts = g.groupby("visit", sort=False)["dv"].first()
        if all(v in firsts.index for v in labels):
            out[str(name)] = firsts.reindex(labels).to_numpy(dtype=float)
    return out


def simulate_clinical_scores(trial, seed: int, *, model: ScoreModel | None = None
                             ) -> pd.DataFrame:
    """Simulate the clinical scores and laboratory values of a simulated trial.

    Parameters
    ----------
    trial : SimulatedTrial
        Data and truth of :func:`carkinetics.simulate.simulate_trial`.
    seed : int
        Root seed (>= 0).
    model : ScoreModel, optional
        Disease-course parameters.

    Returns
    -------
    pandas.DataFrame
        Long-table rows (``id, time, visit, endpoint, dv, unit, lloq, uloq, cens, dose,
        dose_level, delivered_dose, weight, disease, sex, age``) at the protocol visits,
        only for endpoints of :data:`carkinetics.data.ENDPOINTS`, sorted by id, endpoint
        and time; ready to append to ``trial.data``.

    Examples
    --------
    >>> from carkinetics.simulate import simulate_trial
    >>> scores = simulate_clinical_scores(simulate_trial(seed=1, include_pd=False), seed=1)
    >>> {"sledai2k", "sjc28", "igg"} <= set(scores["endpoint"])
    True
    """
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"Invalid seed={seed!r}; expected a non-negative integer.")
    m = model or ScoreModel()
    people = trial.truth["participants"]
    streams = np.random.SeedSequence([int(seed), _STREAM]).spawn(len(people))
    cols: dict[str, list] = {c: [] for c in (
        "id", "time", "visit", "endpoint", "dv", "unit", "lloq", "cens", "dose", "dose_level",
        "weight", "disease", "sex", "age")}
    for p, ss in zip(people, streams, strict=True):
        person = _Person(np.random.default_rng(ss), p, m)
        labels, t = _visits(trial, p["id"])
        if not labels:
            continue
        values = _labs(person, t)
        mechanistic = _trial_labs(trial, p["id"], labels)
        values.update(mechanistic)
        if p["disease"] == "SLE":
            values.update(_sle(person, t, values))
        elif p["disease"] == "RA":
            values.update(_ra(person, t))
        elif p["disease"] == "SSc":
            values["haq_di"] = _haq(person.rng, float(person.rng.choice(
                np.arange(0.5, 1.51, 0.125))), person.response(t), 0.5)
        for name, dv in values.items():
            if name not in ENDPOINTS or name in mechanistic:
                continue
            lloq = _LLOQ.get(name, np.nan)
            cens = (dv < lloq).astype(int) if name in _LLOQ else np.zeros(t.size, int)
            n = t.size
            for col, v in (("id", [p["id"]] * n), ("time", t), ("visit", labels),
                           ("endpoint", [name] * n), ("dv", np.where(cens == 1, lloq, dv)),
                           ("unit", [ENDPOINTS[name].unit] * n), ("lloq", np.full(n, lloq)),
                           ("cens", cens)):
                cols[col].append(np.asarray(v))
            for col in ("dose", "dose_level", "weight", "disease", "sex", "age"):
                cols[col].append(np.repeat(np.asarray([p[col]]), n))
    out = pd.DataFrame({c: np.concatenate(v) if v else [] for c, v in cols.items()})
    out.insert(out.columns.get_loc("lloq") + 1, "uloq", np.nan)
    out.insert(out.columns.get_loc("dose_level") + 1, "delivered_dose", out["dose"])
    out["cens"] = out["cens"].astype("int64")
    return out.sort_values(["id", "endpoint", "time"], kind="stable", ignore_index=True)
