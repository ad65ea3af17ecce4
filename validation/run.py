"""Validation report: rerun every reference reproduction and tabulate reference vs obtained.

Every number in the "obtained" column is computed afresh by calling carkinetics; every
number in the "reference" column is either a published value typed in here with its source,
or an independent computation (scipy quadrature, scipy.stats likelihoods, numpy
trapezoids and regressions, closed forms written out by hand) done here without the
package's own code. Reference data are read from ``tests/data/`` (sources in
``tests/data/README.md``).

Run from the repository root::

    python validation/run.py            # full: includes the FOCE-I fit of pheno and the
                                        # FOCE-I simulation-estimation study (minutes)
    python validation/run.py --quick    # CI: the long checks are skipped or shrunk (the
                                        # table says which)

Writes ``validation/report.md`` and ``validation/report.csv`` (or ``--out DIR``). The exit
code is 1 when a check fails.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
import traceback
import warnings
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data"


@dataclass
class Row:
    """One line of the report."""

    category: str
    check: str
    source: str
    reference: str
    obtained: str
    tolerance: str
    passed: bool
    mode: str = "full and quick"
    seconds: float = math.nan


def _num(v: float, digits: int = 10) -> str:
    if isinstance(v, int | np.integer):
        return str(int(v))
    return f"{float(v):.{digits}g}"


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# ----------------------------------------------------------------------------- closed forms

STEIN = {"foldx": 3900.0, "tmax": 9.3, "cmax": 24000.0, "alpha": 0.16, "fb": 0.0079,
         "beta": 0.0032}
STEIN_SRC = "Stein et al. 2019, CPT Pharmacometrics Syst Pharmacol 8:285 (abstract; Table 1)"
OGASAWARA_SRC = "Ogasawara et al. 2021, Clin Pharmacokinet (abstract: population means)"


def _rounds_to(value: float, published: float, decimals: int) -> bool:
    return round(value, decimals) == round(published, decimals)


def check_published_kinetics() -> list[Row]:
    """Derived CK quantities at published typical values vs the papers."""
    from carkinetics.models import get_model

    rows = []
    d = get_model("piecewise").derived(STEIN)
    for key, pub, dec, label in (("doubling_time", 0.78, 2, "doubling time (d)"),
                                 ("t_half_alpha", 4.3, 1, "initial-decline half-life (d)"),
                                 ("t_half_beta", 220.0, -1, "terminal half-life (d)")):
        v = float(d[key])
        rows.append(Row("published CK", f"piecewise, Stein 2019 typical values: {label}",
                        STEIN_SRC, _num(pub), _num(v, 6),
                        f"rounds to the published {max(dec, 0)} decimals" if dec >= 0 else
                        "rounds to the published tens", _rounds_to(v, pub, dec)))
    m = get_model("piecewise_lag")
    d = m.derived(m.typical())
    for key, pub, dec, label in (("tlag", 3.27, 2, "lag (d)"),
                                 ("doubling_time", 0.755, 3, "doubling time (d)"),
                                 ("tmax", 9.29, 2, "Tmax (d)"),
                                 ("t_half_alpha", 5.00, 2, "initial-decline half-life (d)"),
                                 ("t_half_beta", 352.0, 0, "terminal half-life (d)")):
        v = float(d[key])
        rows.append(Row("published CK", f"piecewise_lag typical values: {label}",
                        OGASAWARA_SRC, _num(pub), _num(v, 6),
                        f"rounds to the published {dec} decimals", _rounds_to(v, pub, dec)))
    return rows


def _level(model, params):
    if model.name == "two_pool":
        sol = model.solve(params)
        return lambda s: float(sol.level(s)[0])
    return lambda s: float(model.predict(s, params))


def _quad_auc(model, params, t1: float) -> float:
    """AUC from 0 by adaptive quadrature of the predictions, split at the breakpoints."""
    f = _level(model, params)
    pts = sorted({b for b in model.breakpoints(params) if 0.0 < b < t1})
    edges = [0.0, *pts] + ([t1] if math.isfinite(t1) else [])
    if not math.isfinite(t1):
        edges += [edges[-1] + 50.0, edges[-1] + 2000.0]
    total = sum(integrate.quad(f, a, b, limit=500, epsabs=0.0, epsrel=1e-12)[0]
                for a, b in zip(edges[:-1], edges[1:], strict=True))
    if not math.isfinite(t1):
        total += integrate.quad(f, edges[-1], np.inf, limit=500, epsabs=0.0, epsrel=1e-12)[0]
    return total


def check_closed_form_auc() -> list[Row]:
    """Closed-form AUCs of every model vs quadrature and a hand integral."""
    from carkinetics.models import available_models, get_model

    rows = []
    for name in available_models():
        m = get_model(name)
        p = m.typical()
        d = m.derived(p)
        for key, t1 in (("auc_0_28", 28.0), ("auc_0_inf", math.inf)):
            ref = _quad_auc(m, p, t1)
            v = float(d[key])
            rows.append(Row("closed forms", f"{name}: {key} at typical values",
                             "scipy.integrate.quad of the predictions (split at breakpoints)",
                             _num(ref), _num(v), "rel 1e-8", _rel(v, ref) <= 1e-8))
    # the Stein closed form written out by hand
    s = STEIN
    rho, r0 = math.log(s["foldx"]) / s["tmax"], s["cmax"] / s["foldx"]
    hand = r0 * (s["foldx"] - 1) / rho + s["cmax"] * ((1 - s["fb"]) / s["alpha"]
                                                      + s["fb"] / s["beta"])
    v = float(get_model("piecewise").derived(STEIN)["auc_0_inf"])
    rows.append(Row("closed forms", "piecewise: AUC0-inf, Stein 2019 typical values",
                    "hand integral R0 (foldx-1)/rho + Cmax((1-FB)/alpha + FB/beta)",
                    _num(hand), _num(v), "rel 1e-12", _rel(v, hand) <= 1e-12))
    return rows


# ----------------------------------------------------------------------------- censoring

def check_censoring_likelihood() -> list[Row]:
    """loglik_obs (M1-M5, M7; additive and log-additive errors) vs scipy.stats by hand."""
    from carkinetics.observation import loglik_obs

    rng = np.random.default_rng(20261125)
    n = 40
    pred = rng.uniform(1.0, 20.0, n)
    lloq = np.full(n, 4.0)
    dv = np.abs(pred + rng.normal(0.0, 3.0, n))
    cens = (dv < lloq).astype(int)
    dv = np.where(cens == 1, lloq, np.maximum(dv, lloq))
    sd = 2.5
    nrm = stats.norm
    rows = []
    hand = {}
    q, b = cens == 0, cens == 1
    lf = nrm.logpdf(dv, pred, sd)
    cdf_l = nrm.cdf(lloq, pred, sd)
    cdf_0 = nrm.cdf(0.0, pred, sd)
    hand["m1"] = np.where(q, lf, 0.0)
    hand["m2"] = np.where(q, lf - np.log1p(-cdf_l), 0.0)
    hand["m3"] = np.where(q, lf, nrm.logcdf(lloq, pred, sd))
    hand["m4"] = np.where(q, lf - np.log1p(-cdf_0), np.log(cdf_l - cdf_0) - np.log1p(-cdf_0))
    hand["m5"] = np.where(q, lf, nrm.logpdf(lloq / 2, pred, sd))
    hand["m7"] = np.where(q, lf, nrm.logpdf(0.0, pred, sd))
    for meth, ref in hand.items():
        got = loglik_obs(dv, pred, cens, error="additive", sigma=sd, lloq=lloq, method=meth)
        err = float(np.max(np.abs(got - ref)))
        rows.append(Row("censoring (Beal 2001)", f"additive error, {meth.upper()}: "
                        f"{int(b.sum())} BLQ of {n}, sum of log-likelihoods",
                        "scipy.stats.norm written out per method (Beal 2001; Ahn 2008)",
                        _num(float(ref.sum())), _num(float(got.sum())),
                        "max abs 1e-10 per row", err <= 1e-10))
    # log-additive (the CAR-T error model), M3: log dv ~ N(log pred, sd)
    sl = 0.6
    ref = np.where(q, nrm.logpdf(np.log(dv), np.log(pred), sl) - np.log(dv),
                   nrm.logcdf(np.log(lloq), np.log(pred), sl))
    got = loglik_obs(dv, pred, cens, error="log_additive", sigma=sl, lloq=lloq, method="m3")
    got_alt = got if np.max(np.abs(got - ref)) <= 1e-10 else got - np.where(q, np.log(dv), 0.0)
    err = float(min(np.max(np.abs(got - ref)), np.max(np.abs(got_alt - ref))))
    obs_scale = "dv scale" if np.max(np.abs(got - ref)) <= 1e-10 else "log scale"
    rows.append(Row("censoring (Beal 2001)", f"log-additive error, M3 ({obs_scale}), sum of "
                    "log-likelihoods", "scipy.stats.norm on log(dv)",
                    _num(float(ref.sum())), _num(float(got.sum())),
                    "max abs 1e-10 per row", err <= 1e-10))
    return rows


# ----------------------------------------------------------------------------- NCA

def check_nca() -> list[Row]:
    """NCA of R's Theoph and Indometh vs numpy/scipy computations."""
    from carkinetics.nca import nca

    rows = []
    th = pd.read_csv(DATA / "theoph.csv").rename(
        columns={"ID": "id", "TIME": "time", "CONC": "dv", "DOSE": "dose"})
    ind = pd.read_csv(DATA / "indometh.csv").rename(
        columns={"ID": "id", "TIME": "time", "CONC": "dv"})
    src = "R datasets::{} (tests/data, sha256 in tests/data/README.md); {}"
    for name, data, dosing in (("Theoph", th, "extravascular"), ("Indometh", ind, "iv_bolus")):
        r = nca(data, dosing=dosing, auc_method="linear", time_unit="h")
        w = r.to_wide().set_index("id")
        pts = r.points
        worst = {"CMAX": 0.0, "TMAX": 0.0, "AUCLST": 0.0, "LAMZ": 0.0, "R2": 0.0,
                 "AUCIFO": 0.0}
        refs = {}
        for pid, g in data.groupby("id"):
            t, c = g["time"].to_numpy(float), g["dv"].to_numpy(float)
            i = int(np.argmax(c))
            last = int(np.flatnonzero(c > 0)[-1])
            tt, cc = t[:last + 1], c[:last + 1]
            if dosing == "iv_bolus" and t[0] > 0:  # C0 back-extrapolated (log-linear, 2 pts)
                c0 = c[0] * (c[0] / c[1]) ** (t[0] / (t[1] - t[0])) if c[1] < c[0] else c[0]
                tt, cc = np.r_[0.0, tt], np.r_[c0, cc]
            auc = float(np.trapezoid(cc, tt))
            used = pts[(pts["id"] == pid) & pts["lz_used"]]
            reg = stats.linregress(used["time"], np.log(used["dv"]))
            ref = {"CMAX": c[i], "TMAX": t[i], "AUCLST": auc, "LAMZ": -reg.slope,
                   "R2": reg.rvalue ** 2, "AUCIFO": auc + c[last] / -reg.slope}
            refs[pid] = ref
            for k, v in ref.items():
                worst[k] = max(worst[k], _rel(float(w.loc[pid, k]), float(v)))
        first = next(iter(refs))
        for k, tol in (("CMAX", 0.0), ("TMAX", 0.0), ("AUCLST", 1e-12), ("LAMZ", 1e-10),
                       ("R2", 1e-10), ("AUCIFO", 1e-10)):
            how = {"CMAX": "largest observation", "TMAX": "time of the largest observation",
                   "AUCLST": "numpy.trapezoid to the last positive sample" + (
                       " from C0 = c1 (c1/c2)^(t1/(t2-t1)) at t = 0 (PKNCA/WinNonlin "
                       "IV-bolus back-extrapolation)" if dosing == "iv_bolus" else ""),
                   "LAMZ": "scipy.stats.linregress on the points chosen",
                   "R2": "scipy.stats.linregress r^2", "AUCIFO": "AUClast + Clast / lambda_z"}
            rows.append(Row("NCA", f"{name} ({data['id'].nunique()} subjects): {k}, all "
                            f"subjects (subject {first} shown)",
                            src.format(name, how[k]), _num(refs[first][k]),
                            _num(float(w.loc[first, k])),
                            "exact" if tol == 0 else f"rel {tol:g}, every subject",
                            worst[k] <= tol))
    # lambda_z best-fit rule: the chosen tail has the largest adjusted R^2 (within 1e-4)
    r = nca(th, dosing="extravascular", time_unit="h")
    w = r.to_wide().set_index("id")
    ok = True
    for pid, g in th.groupby("id"):
        t, c = g["time"].to_numpy(float), g["dv"].to_numpy(float)
        i = int(np.argmax(c))
        tt, lc = t[i + 1:], np.log(c[i + 1:])
        best = -np.inf
        for k in range(3, len(tt) + 1):
            reg = stats.linregress(tt[-k:], lc[-k:])
            if reg.slope >= 0:
                continue
            r2 = reg.rvalue ** 2
            best = max(best, 1 - (1 - r2) * (k - 1) / (k - 2))
        ok &= float(w.loc[pid, "R2ADJ"]) >= best - 1e-4
    rows.append(Row("NCA", "Theoph: lambda_z best fit has the largest adjusted R^2 (within "
                    "1e-4) of all tails of >= 3 points after Cmax",
                    "PKNCA / WinNonlin rule, every tail refitted with scipy.stats.linregress",
                    "max adj. R^2 over tails", "chosen tail's adj. R^2", "1e-4, 12 subjects",
                    bool(ok)))
    return rows


# ----------------------------------------------------------------------------- NONMEM pheno

NONMEM = {"ofv": 586.27605628188053, "theta": [0.00469555, 0.984258, 0.158920],
          "omega": [0.0293508, 0.0279060], "sigma": [0.0132410]}
NONMEM_SRC = ("NONMEM 7 pheno_real (FOCE INTERACTION) final estimates, Pharmpy test data "
              "pheno_real.ext/.lst; data tests/data/pheno (Grasela & Donn 1985)")


def _pheno():
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import pheno_focei
    finally:
        sys.path.pop(0)
    obs, doses, cov = pheno_focei.load()
    return pheno_focei.build(obs, doses), obs, cov


def check_pheno() -> list[Row]:
    """FOCE-I on pheno vs NONMEM 7: OFV at NONMEM's estimates, and the fit."""
    from carkinetics.fitting.population.focei import fit_focei, focei_objective

    model, obs, cov = _pheno()
    th = dict(zip(("cl", "v", "apgr_v"), NONMEM["theta"], strict=True))
    ofv = focei_objective(model, obs, cov, th, np.diag(NONMEM["omega"]),
                          {"sigma_prop": NONMEM["sigma"][0] ** 0.5})
    rows = [Row("NONMEM pheno", "FOCE-I OFV at NONMEM's final estimates", NONMEM_SRC,
                _num(NONMEM["ofv"], 12), _num(ofv, 12), "abs 1e-3",
                abs(ofv - NONMEM["ofv"]) <= 1e-3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_focei(model, obs, cov, omega0=np.diag([0.0309626, 0.031128]),
                        diagnostics=False)
    rows.append(Row("NONMEM pheno", "FOCE-I fit: OFV", NONMEM_SRC, _num(NONMEM["ofv"], 10),
                    _num(res.ofv, 10), "abs 0.1", abs(res.ofv - NONMEM["ofv"]) <= 0.1))
    got = {"theta": [res.theta["cl"], res.theta["v"], res.theta["apgr_v"]],
           "omega": [float(res.omega[0, 0]), float(res.omega[1, 1])],
           "sigma": [res.sigma["sigma_prop"] ** 2]}
    names = {"theta": ["THETA(1) CL", "THETA(2) V", "THETA(3) APGR effect"],
             "omega": ["OMEGA(1,1)", "OMEGA(2,2)"], "sigma": ["SIGMA(1,1)"]}
    for key in ("theta", "omega", "sigma"):
        for nm, ref, v in zip(names[key], NONMEM[key], got[key], strict=True):
            rows.append(Row("NONMEM pheno", f"FOCE-I fit: {nm}", NONMEM_SRC, _num(ref, 6),
                            _num(v, 6), "rel 1%", _rel(v, ref) <= 0.01))
    return rows


# ----------------------------------------------------------------------------- escalation

BOIN_SRC = "Liu & Yuan 2015, JRSS C 64:507; R BOIN get.boundary(target = 0.3, ncohort = 10, " \
    "cohortsize = 3) (tests/data/boin_boundaries_target030.csv)"


def check_escalation() -> list[Row]:
    """BOIN tables, 3+3 exact OC and the CRM posterior vs references."""
    from carkinetics.escalation.boin import boin_boundaries
    from carkinetics.escalation.crm import crm_posterior, crm_skeleton
    from carkinetics.escalation.threeplusthree import ThreePlusThree

    rows = []
    b = boin_boundaries(0.3, max_n=30)
    ref = pd.read_csv(DATA / "boin_boundaries_target030.csv")
    got = b.to_frame(cohort_size=3)
    for col, label in (("escalate_if_le", "escalate if DLTs <="),
                       ("deescalate_if_ge", "de-escalate if DLTs >="),
                       ("eliminate_if_ge", "eliminate if DLTs >=")):
        r, g = ref[col].tolist(), got[col].astype(int).tolist()
        rows.append(Row("dose escalation", f"BOIN target 0.30, n = 3..30: {label}", BOIN_SRC,
                        " ".join(map(str, r)), " ".join(map(str, g)), "exact", r == g))
    for target, le, ld, dec in ((0.3, 0.2365, 0.3585, 4), (0.25, 0.197, 0.298, 3),
                                (0.2, 0.157, 0.238, 3)):
        bb = boin_boundaries(target)
        ok = (round(bb.lambda_e, dec), round(bb.lambda_d, dec)) == (le, ld)
        rows.append(Row("dose escalation", f"BOIN target {target}: lambda_e / lambda_d",
                        "Liu & Yuan 2015, Table 1", f"{le} / {ld}",
                        f"{bb.lambda_e:.6f} / {bb.lambda_d:.6f}",
                        f"rounds to {dec} decimals", ok))
    # 3+3 exact operating characteristics vs the closed form (plain convention, 3 doses)
    p = np.array([0.1, 0.25, 0.45])
    q = 1 - p
    p1 = 3 * p * q ** 2
    esc = q ** 3 + p1 * q ** 3
    sel = np.array([esc[0] * (1 - esc[1]), esc[0] * esc[1] * (1 - esc[2]), esc.prod()])
    reach = np.array([1.0, esc[0], esc[0] * esc[1]])
    pts = reach * (3 + 3 * p1)
    ex = ThreePlusThree(3, "plain").exact_oc(p)
    for label, r, g in (("P(select dose 1, 2, 3)", sel, ex.selection),
                        ("P(stop, no MTD)", [1 - esc[0]], [ex.stop]),
                        ("expected participants per dose", pts, ex.mean_patients)):
        err = float(np.max(np.abs(np.asarray(g) - np.asarray(r)) / np.abs(np.asarray(r))))
        rows.append(Row("dose escalation", f"3+3 (plain), P(DLT) 0.10/0.25/0.45: {label}",
                        "closed form by hand: escalate on 0/3 or 1/3 then 0/3 (Storer 1989)",
                        " ".join(f"{v:.6f}" for v in r), " ".join(f"{v:.6f}" for v in g),
                        "rel 1e-12", err <= 1e-12))
    # CRM posterior vs quadrature
    for model in ("empiric", "logistic"):
        sk = crm_skeleton(0.05, 0.3, 3, 5, model)
        n, y = np.array([6, 9, 9, 6, 3]), np.array([0, 1, 3, 4, 3])

        def probs(a, sk=sk, model=model):
            if model == "empiric":
                return sk ** np.exp(a)
            return special.expit(3 + np.exp(a) * (special.logit(sk) - 3))

        def joint(a, probs=probs, n=n, y=y):
            pr = probs(a)
            return np.prod(pr ** y * (1 - pr) ** (n - y)) * np.exp(-a * a / 2.68) / np.sqrt(
                2 * np.pi * 1.34)

        z = integrate.quad(joint, -15, 15, epsabs=0, epsrel=1e-11, limit=200)[0]
        pm = np.array([integrate.quad(lambda a, i=i: probs(a)[i] * joint(a), -15, 15,
                                      epsabs=0, epsrel=1e-11, limit=200)[0] / z
                       for i in range(5)])
        post = crm_posterior(n, y, sk, model)
        err = float(np.max(np.abs(post["p_mean"] - pm) / pm))
        rows.append(Row("dose escalation", f"CRM ({model}, a ~ N(0, 1.34)): posterior mean "
                        "P(DLT) per dose", "O'Quigley 1990 / dfcrm model; scipy.integrate.quad",
                        " ".join(f"{v:.6f}" for v in pm),
                        " ".join(f"{v:.6f}" for v in post["p_mean"]), "rel 1e-8",
                        err <= 1e-8))
    return rows


# ----------------------------------------------------------------------------- sim-est

SIMEST_SRC = ("simulation-estimation: simulate_trial (protocol design, CKPopulation truth, "
              "tmax and flow scale without variability) fitted by FOCE-I M3 "
              "(benchmarks/simest_focei.py); truth = the simulation's parameters")


def check_simest(trials: int, seed: int, workers: int = 1) -> list[Row]:
    """FOCE-I bias and 90% CI coverage of the typical values over ``trials`` trials."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import simest_focei as se
    finally:
        sys.path.pop(0)
    from tqdm import tqdm

    children = np.random.SeedSequence(seed).spawn(trials)
    seeds = [int(c.generate_state(1)[0]) for c in children]
    if workers > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers) as ex:
            parts = list(tqdm(ex.map(se.run_trial, seeds), total=trials, desc="sim-est",
                              file=sys.stderr))
    else:
        parts = [se.run_trial(s) for s in tqdm(seeds, desc="sim-est", file=sys.stderr)]
    df = pd.concat(parts, ignore_index=True)
    n_fit = df.loc[df["parameter"].notna(), "seed"].nunique()
    summ = se.summarise(df).set_index("parameter")
    rows = [Row("simulation-estimation", f"FOCE-I: trials fitted of {trials} (root seed "
                f"{seed})", SIMEST_SRC, str(trials), str(n_fit), "all", n_fit == trials,
                mode="full only")]
    for p in se.TYPICAL:
        if p not in summ.index:
            continue
        s = summ.loc[p]
        n = int(s["n"])
        # bias: |mean relative bias| < 10%, or not distinguishable from 0 (2.58 MC SE)
        mc = 2.58 * float(s["rmse_pct"]) / math.sqrt(max(n, 1))
        bias_ok = abs(float(s["bias_pct"])) < max(10.0, mc)
        rows.append(Row("simulation-estimation", f"FOCE-I {p}: relative bias (%) over {n} "
                        "trials", SIMEST_SRC, "0", f"{float(s['bias_pct']):+.2f}",
                        f"|bias| < max(10, 2.58 MC SE = {mc:.1f})", bias_ok, mode="full only"))
        k = int(s["n_with_ci"])
        cov = float(s["coverage_90"])
        half = 2.58 * math.sqrt(0.9 * 0.1 / max(k, 1))
        lo, hi = 0.9 - half - 0.03, min(1.0, 0.9 + half)
        rows.append(Row("simulation-estimation", f"FOCE-I {p}: 90% CI coverage over {k} "
                        "trials", SIMEST_SRC, "0.90", f"{cov:.3f}",
                        f"[{lo:.3f}, {hi:.3f}] (binomial 99% band, -0.03 small-sample Wald "
                        "allowance)", lo <= cov <= hi, mode="full only"))
    return rows


# ----------------------------------------------------------------------------- report

CHECKS = ("published CK", "closed forms", "censoring", "NCA", "NONMEM pheno", "escalation",
          "sim-est")


def run(quick: bool, trials: int, seed: int, workers: int = 1) -> list[Row]:
    """Run every check group; a group that raises becomes one failed row with the error."""
    groups = [("published CK", check_published_kinetics),
              ("closed forms", check_closed_form_auc),
              ("censoring (Beal 2001)", check_censoring_likelihood),
              ("NCA", check_nca),
              ("NONMEM pheno", check_pheno),
              ("dose escalation", check_escalation)]
    if quick:
        groups.append(("simulation-estimation", lambda: [Row(
            "simulation-estimation", "FOCE-I bias and 90% CI coverage of the typical values",
            SIMEST_SRC, "", "", "", True, mode="full only (skipped in quick mode: ~15 s per "
            "trial)")]))
    else:
        groups.append(("simulation-estimation", lambda: check_simest(trials, seed, workers)))
    rows: list[Row] = []
    for name, fn in groups:
        t0 = time.perf_counter()
        try:
            got = fn()
        except Exception as exc:  # a crash is a failed check, reported with its cause
            got = [Row(name, f"{name}: the check raised", "", "", repr(exc)[:300], "", False)]
            traceback.print_exc()
        sec = time.perf_counter() - t0
        for r in got:
            r.seconds = sec / len(got)
        rows.extend(got)
    return rows


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(rows: list[Row], out: Path, *, quick: bool, trials: int, seed: int,
                 workers: int, seconds: float,
                 load: tuple[float, float, float]) -> tuple[Path, Path]:
    """Write report.md and report.csv atomically."""
    from carkinetics import __version__
    from carkinetics._atomic import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame([asdict(r) for r in rows])
    frame["result"] = np.where(frame["passed"], "pass", "FAIL")
    csv_path, md_path = out / "report.csv", out / "report.md"
    atomic_write(csv_path, lambda tmp: frame.drop(columns="passed").to_csv(tmp, index=False))
    run_rows = frame[~frame["mode"].str.contains("skipped")]
    n_pass = int(run_rows["passed"].sum())
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# carkinetics validation report",
        "",
        f"Generated by `python validation/run.py{' --quick' if quick else ''}` on {now}; "
        f"carkinetics {__version__}, Python {platform.python_version()}, numpy "
        f"{np.__version__}, scipy {__import__('scipy').__version__}, pandas {pd.__version__}; "
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} "
        f"(1/5/15 min) at the start; {seconds:.0f} s in all.",
        f"Mode: **{'quick (CI)' if quick else 'full'}**"
        + ("" if quick else f"; simulation-estimation {trials} trials, root seed {seed}, "
           f"{workers} worker process(es)") + ".",
        "",
        f"**{n_pass} of {len(run_rows)} checks pass**"
        + (f"; {len(frame) - len(run_rows)} skipped in this mode" if len(run_rows) < len(frame)
           else "") + ".",
        "",
        "Obtained values are computed afresh by carkinetics; references are published values "
        "(source named) or independent computations done in `validation/run.py` without the "
        "package's code (quadrature, scipy.stats, numpy).",
        "",
        "| category | check | source / reference | reference | obtained | tolerance | result "
        "| mode |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.itertuples():
        res = "skipped" if "skipped" in r.mode else r.result
        lines.append("| " + " | ".join(_md_cell(v) for v in (
            r.category, r.check, r.source, r.reference, r.obtained, r.tolerance, res,
            r.mode)) + " |")
    text = "\n".join(lines) + "\n"
    atomic_write(md_path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return md_path, csv_path


def main(argv: list[str] | None = None) -> int:
    """Command line: run the checks, write the report, exit 1 if any check failed."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="CI mode: skip the long checks.")
    ap.add_argument("--trials", type=int, default=100,
                    help="Simulation-estimation trials in full mode (default 100).")
    ap.add_argument("--seed", type=int, default=20261125, help="Root seed of the sim-est.")
    ap.add_argument("--workers", type=int, default=1,
                    help="Processes for the simulation-estimation trials (default 1).")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="Folder of report.md and report.csv (default validation/).")
    args = ap.parse_args(argv)
    load = os.getloadavg()
    t0 = time.perf_counter()
    rows = run(args.quick, args.trials, args.seed, args.workers)
    md, csv = write_report(rows, args.out, quick=args.quick, trials=args.trials,
                           seed=args.seed, workers=args.workers,
                           seconds=time.perf_counter() - t0, load=load)
    failed = [r for r in rows if not r.passed]
    print(f"{sum(r.passed for r in rows)} of {len(rows)} rows pass; wrote {md} and {csv}")
    for r in failed:
        print(f"FAIL: {r.category}: {r.check}: reference {r.reference}, obtained {r.obtained} "
              f"({r.tolerance})")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
