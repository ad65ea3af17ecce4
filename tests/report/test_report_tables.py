"""The committee report's tables against numbers computed independently from its inputs.

The report of the shared demo run (``demo_run`` fixture) is parsed with html.parser and
every section's table is compared with a direct pandas/numpy/scipy computation from the
files the report read (data table, fit, popfit, NCA, endpoints, escalation outputs).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from .htmltables import num, parse_report

PLACEHOLDER = re.compile(r"\bnan\b|\bNaN\b|\bNone\b|\bnull\b|TODO|TBD|[Pp]laceholder|[Ll]orem|"
                         r"\{\{|\}\}|\{%|\bxxx\b")


@pytest.fixture(scope="module")
def rep(demo_run):
    r, demo = demo_run
    assert r.returncode == 0, r.stderr
    html = (demo / "report.html").read_text()
    return demo, html, parse_report(html)


def _participants(demo):
    return pd.read_csv(demo / "trial.csv").groupby("id").first()


def test_every_section_present_and_self_contained(rep):
    demo, html, p = rep
    assert list(p.sections) == ["cohort", "kinetics", "population", "pd", "safety",
                                "escalation", "provenance"]
    assert set(p.sections.values()) == {"yes"} and not p.notes
    assert not PLACEHOLDER.search("".join(p.text))
    # no network: every image is an embedded PNG, nothing refers to http(s) resources
    figs = {i["data-figure"] for i in p.images}
    assert {"fig-ck-spaghetti", "fig-fits", "fig-exposure-dose", "fig-pop-gof", "fig-pop-vpc",
            "fig-pd-0", "fig-pd-1", "fig-pd-2", "fig-pd-3"} <= figs
    for img in p.images:
        assert img["src"].startswith("data:image/png;base64,")
        assert base64.b64decode(img["src"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert img["alt"]
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html and "<link" not in html and "@import" not in html
    assert "@media print" in html and "break-before: page" in html


def test_cohort_tables(rep):
    demo, _, p = rep
    part = _participants(demo)
    t = p.tables["tab-cohort-participants"]
    want = pd.crosstab(part["dose_level"], part["disease"])
    diseases = [c for c in t.columns if c not in ("dose level", "dose (10^6 cells/kg)",
                                                  "total")]
    assert sorted(diseases) == sorted(want.columns)
    rec = {r["dose level"]: r for r in t.records()}
    for lv, row in want.iterrows():
        got = rec[str(lv)]
        assert [int(got[d]) for d in want.columns] == row.tolist()
        assert int(got["total"]) == row.sum()
        assert num(got["dose (10^6 cells/kg)"]) == pytest.approx(
            part.loc[part["dose_level"] == lv, "dose"].iloc[0] / 1e6)
    assert int(rec["all"]["total"]) == len(part) == 18
    data = pd.read_csv(demo / "trial.csv")
    s = {r["assay / endpoint"]: r for r in p.tables["tab-cohort-sampling"].records()}
    assert set(s) == set(data["endpoint"])
    for ep, g in data.groupby("endpoint"):
        assert int(s[ep]["samples"]) == len(g)
        assert int(s[ep]["below LLOQ"]) == int((g["cens"] == 1).sum())
        assert int(s[ep]["participants"]) == g["id"].nunique()
        assert num(s[ep]["% below LLOQ"]) == pytest.approx(100 * (g["cens"] == 1).mean(),
                                                          rel=1e-3, abs=1e-9)


def test_kinetics_tables(rep):
    demo, _, p = rep
    part = _participants(demo)
    nca = pd.read_csv(demo / "nca.csv")
    rows = {(r["endpoint"], r["parameter"], r["dose level"]): r
            for r in p.tables["tab-nca"].records()}
    for (ep, lv), g in nca.groupby(["endpoint", "dose_level"]):
        for par in ("CMAX", "AUCINT_0_28"):
            r = rows[(ep, par, str(lv))]
            x = g[par].dropna()
            assert int(r["n"]) == len(x)
            assert num(r["geometric mean"]) == pytest.approx(np.exp(np.log(x).mean()), rel=1e-3)
            assert num(r["median"]) == pytest.approx(x.median(), rel=1e-3)
            assert num(r["max"]) == pytest.approx(x.max(), rel=1e-3)
    # dose proportionality: OLS slope of log(P) on log(dose) and its 90% t interval
    dp = {(r["endpoint"], r["parameter"]): r
          for r in p.tables["tab-dose-proportionality"].records()}
    for (ep, par), r in dp.items():
        g = nca[nca["endpoint"] == ep]
        ok = g[par] > 0
        res = stats.linregress(np.log(g.loc[ok, "dose"]), np.log(g.loc[ok, par]))
        tq = stats.t.ppf(0.95, ok.sum() - 2)
        assert num(r["slope b"]) == pytest.approx(res.slope, rel=1e-3)
        assert num(r["CI lower"]) == pytest.approx(res.slope - tq * res.stderr, rel=1e-3)
        assert num(r["CI upper"]) == pytest.approx(res.slope + tq * res.stderr, rel=1e-3)
    # individual fits: median estimate per dose level
    fp = pd.read_csv(demo / "fits" / "parameters.csv")
    fp = fp[fp["kind"] == "kinetic"].assign(dose_level=lambda d: d["id"].map(
        part["dose_level"]))
    want = fp.groupby(["parameter", "dose_level"])["estimate"].median()
    t = {r["parameter"]: r for r in p.tables["tab-fit-parameters"].records()}
    assert set(t) == set(fp["parameter"])
    for (par, lv), v in want.items():
        assert num(t[par][f"DL{lv} median"]) == pytest.approx(v, rel=1e-3)
    counts = json.loads((demo / "fits" / "summary.json").read_text())["counts"]
    assert {k: int(v) for k, v in p.items["fit-counts"].items()} == counts


def test_population_tables(rep):
    demo, _, p = rep
    pop = pd.read_csv(demo / "population" / "population.csv")
    t = p.tables["tab-pop-parameters"]
    assert t.col("parameter") == pop["parameter"].tolist()
    for col, name in (("estimate", "estimate"), ("se", "se"), ("ci_lower", "ci_lower"),
                      ("ci_upper", "ci_upper"), ("rse", "rse %")):
        got = np.array([num(v) for v in t.col(name)])
        np.testing.assert_allclose(got, pop[col].to_numpy(float), rtol=1e-3)
    summ = json.loads((demo / "population" / "summary.json").read_text())
    assert num(p.items["pop-summary"]["ofv"]) == pytest.approx(summ["ofv"], rel=1e-3)
    figs = {i["data-figure"] for i in p.images if i["section"] == "population"}
    assert figs == {"fig-pop-gof", "fig-pop-vpc", "fig-pop-individual_fits"}


def test_pd_tables(rep):
    demo, _, p = rep
    data = pd.read_csv(demo / "trial.csv")
    tabs = [t for t in p.tables.values() if t.section == "pd" and t.id.startswith("tab-pd-")
            and "visit" in t.columns]
    seen = {r["endpoint"] for t in tabs for r in t.records()}
    assert {"cd19_b", "igg", "iga", "igm", "anti_dsdna", "c3", "c4"} <= seen
    cells = {(r["endpoint"], r["visit"]): r for t in tabs for r in t.records()}
    for (ep, visit, lv), g in data[data["endpoint"].isin(seen)].groupby(
            ["endpoint", "visit", "dose_level"]):
        m = re.fullmatch(r"(\S+) \(n=(\d+)\)", cells[(ep, visit)][f"DL{lv} median (n)"])
        assert num(m.group(1)) == pytest.approx(g["dv"].median(), rel=1e-3)
        assert int(m.group(2)) == len(g)
    # visits in protocol order within an endpoint
    igg = [r["visit"] for r in cells.values() if r["endpoint"] == "igg"]
    assert igg[:4] == ["Day -1", "Day 14", "Day 21", "Day 28"] and igg[-1] == "Month 24"
    er = pd.read_csv(demo / "pd" / "exposure_response.csv")
    t = p.tables["tab-pd-exposure-response"]
    est = er["estimate"].to_numpy(float)
    got = np.array([num(v) for v in t.col("estimate")])
    np.testing.assert_allclose(got[np.isfinite(est)], est[np.isfinite(est)], rtol=1e-3)


def test_safety_tables(rep):
    demo, _, p = rep
    part = _participants(demo)
    ae = pd.read_csv(demo / "adverse_events.csv")
    ae["dose_level"] = ae["id"].map(part["dose_level"])
    big_n = part.groupby("dose_level").size()
    t = {(r["category"], r["measure"]): r for r in p.tables["tab-ae-summary"].records()}
    for cat in ("all", "crs", "icans"):
        sub = ae if cat == "all" else ae[ae["category"] == cat]
        for measure, sel in (("any", sub), ("grade>=3", sub[sub["grade"] >= 3])):
            k = sel.groupby("dose_level")["id"].nunique()
            for lv, n in big_n.items():
                cell = t[(cat, measure)][f"DL{lv}"]
                m = re.fullmatch(r"(\d+)/(\d+) \((\S+)%\)", cell)
                assert (int(m.group(1)), int(m.group(2))) == (int(k.get(lv, 0)), n), (cat, lv)
                assert float(m.group(3)) == pytest.approx(100 * k.get(lv, 0) / n, rel=1e-3)
    # CRS/ICANS incidence with exact 95% CI (Clopper-Pearson from scipy's beta)
    for r in p.tables["tab-crs-icans"].records():
        if r["dose level"] == "All":
            continue
        lv = int(r["dose level"])
        k = ae[(ae["category"] == r["category"]) & (ae["dose_level"] == lv)]["id"].nunique()
        n = big_n[lv]
        lo = 0.0 if k == 0 else stats.beta.ppf(0.025, k, n - k + 1)
        assert r["participants"].startswith(f"{k}/{n} ")
        assert num(r["95% CI low (%)"]) == pytest.approx(100 * lo, rel=1e-3, abs=1e-9)
    dlt = pd.read_csv(demo / "endpoints" / "dlt.csv")
    rows = {r["dose level"]: r for r in p.tables["tab-dlt"].records()}
    for lv, g in dlt.groupby("dose_level"):
        assert int(rows[str(lv)]["participants"]) == len(g)
        assert int(rows[str(lv)]["DLT"]) == int(g["dlt"].sum())
        assert int(rows[str(lv)]["evaluable"]) == int(g["evaluable"].sum())


def test_escalation_tables(rep):
    demo, _, p = rep
    esc = json.loads((demo / "escalation.json").read_text())
    d = p.items["escalation-decision"]
    assert d["action"] == esc["decision"]["action"]
    assert d["rule"] == esc["decision"]["rule"]
    assert d["recommended next dose"].startswith(
        f"dose level {esc['decision']['next_dose_level']} ")
    t = p.tables["tab-escalation-doses"]
    assert len(t.rows) == esc["n_doses"]
    for r, e in zip(t.records(), esc["per_dose"], strict=True):
        assert int(r["n"]) == e["n"] and int(r["DLT"]) == e["dlt"]
        for k in ("cmax_median", "cmax_lower", "cmax_upper", "auc_0_28_median"):
            name = {"cmax_median": "Cmax median", "cmax_lower": "Cmax PI low",
                    "cmax_upper": "Cmax PI high", "auc_0_28_median": "AUC0-28 median"}[k]
            assert num(r[name]) == pytest.approx(e[k], rel=1e-3)
        assert num(r["P(DLT) design estimate"]) == pytest.approx(e["p_dlt"], rel=1e-3)
        k, n = e["dlt"], e["n"]
        hi = 1.0 if k == n else stats.beta.ppf(0.975, k + 1, n - k)
        assert num(r["95% CI high"]) == pytest.approx(hi, rel=1e-3)
    rules = p.tables["tab-escalation-rules"]
    assert [[int(v) for v in row] for row in rules.rows] == [
        [x["n"], x["escalate_if_le"], x["deescalate_if_ge"], x["eliminate_if_ge"]]
        for x in esc["decision_table"]]


def test_provenance(rep):
    demo, _, p = rep
    t = p.tables["tab-provenance-inputs"]
    sha = dict(zip(t.col("file"), t.col("sha256"), strict=True))
    for f in [demo / "trial.csv", demo / "nca.csv", demo / "escalation.json",
              *sorted((demo / "fits").iterdir()), *sorted((demo / "population").iterdir()),
              *sorted((demo / "endpoints").iterdir()), *sorted((demo / "pd").iterdir())]:
        assert sha[str(f)] == hashlib.sha256(f.read_bytes()).hexdigest(), f
    v = dict(zip(*[p.tables["tab-provenance-versions"].col(c) for c in ("package", "version")],
                 strict=True))
    for dist in ("numpy", "scipy", "pandas", "lmfit", "pymc", "arviz", "matplotlib"):
        assert v[dist] == version(dist)
    run = p.items["provenance-run"]
    assert run["command"].startswith("carkinetics demo --out ")
    assert run["seed: given"] == run["seed: data (simulation truth file)"] == "20240409"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", run["date (UTC)"])
