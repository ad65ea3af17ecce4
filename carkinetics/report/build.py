"""The committee report: one self-contained HTML file built from the pipeline's outputs.

The report reads what the other commands wrote (the data table, ``carkinetics fit``,
``popfit``, ``nca``, ``endpoints``, ``pd`` and ``escalate`` outputs) and recomputes nothing
that is already in them; figures of the data come from :mod:`carkinetics.plots`, figures
already written by a command are embedded as they are. Every figure is a base64 PNG data
URI and the CSS is inline, so the file needs no network to be viewed. A section whose
inputs are absent is left out with a note saying which option would add it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import io
import json
import math
import os
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from carkinetics.exceptions import DataError

__all__ = ["build_report", "render_report", "Section", "SECTION_IDS", "DEPENDENCIES",
           "PD_GROUPS", "fmt"]

#: Section ids, in report order (``<section id="...">`` in the HTML).
SECTION_IDS = ("cohort", "kinetics", "population", "pd", "safety", "escalation",
               "provenance")

#: Distributions whose versions the provenance section lists.
DEPENDENCIES = ("carkinetics", "numpy", "scipy", "pandas", "lmfit", "pymc", "arviz",
                "matplotlib", "jinja2")

_PNG = b"\x89PNG\r\n\x1a\n"
_DASH = "\u2013"  # shown for a value that is not estimated / not applicable


def _pd_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    from carkinetics.endpoints.serology import AUTOANTIBODIES

    return (("B cells", ("cd19_b",)), ("Immunoglobulins", ("igg", "iga", "igm")),
            ("Autoantibodies", tuple(AUTOANTIBODIES)), ("Complement", ("c3", "c4")))


#: PD endpoint groups of the PD section: (title, endpoints).
PD_GROUPS = _pd_groups()


# -- building blocks ----------------------------------------------------------------------
def fmt(x: Any) -> str:
    """Format one table value: 4 significant digits, an en dash for missing values.

    Examples
    --------
    >>> fmt(15469.880616), fmt(0.0959), fmt(3.0), fmt(float("nan")), fmt(True)
    ('1.547e+04', '0.0959', '3', '–', 'yes')
    """
    if x is None:
        return _DASH
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        x = float(x)
        if not math.isfinite(x):
            return _DASH
        return f"{x:.4g}"
    if isinstance(x, str):
        return x if x.strip() and x.lower() not in ("nan", "none", "<na>") else _DASH
    try:
        if pd.isna(x):
            return _DASH
    except (TypeError, ValueError):
        pass
    return str(x)


@dataclass(frozen=True)
class Table:
    """One HTML table: ``id`` (unique in the report), caption, header and formatted rows."""

    id: str
    caption: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    kind: str = "table"

    @classmethod
    def from_frame(cls, id: str, caption: str, df: pd.DataFrame, *,
                   note: str = "") -> Table:
        """Format every cell of ``df`` with :func:`fmt`; its columns become the header."""
        rows = tuple(tuple(fmt(v) for v in r) for r in df.itertuples(index=False, name=None))
        return cls(id, caption, tuple(str(c) for c in df.columns), rows, note)


@dataclass(frozen=True)
class Figure:
    """One embedded figure (``src`` is a ``data:image/png;base64,...`` URI)."""

    id: str
    caption: str
    src: str
    kind: str = "figure"


@dataclass(frozen=True)
class Text:
    """A paragraph (``items``: optional ``(term, value)`` pairs shown as a list)."""

    text: str
    items: tuple[tuple[str, str], ...] = ()
    id: str = ""
    kind: str = "text"


@dataclass(frozen=True)
class Section:
    """One report section; ``note`` instead of ``blocks`` when its inputs are absent."""

    id: str
    title: str
    blocks: tuple = ()
    note: str = ""

    @property
    def present(self) -> bool:
        """Whether the section has content (False: left out, see ``note``)."""
        return bool(self.blocks)


@dataclass
class _Inputs:
    paths: list[tuple[str, Path]] = field(default_factory=list)

    def add(self, role: str, path: Path | None) -> None:
        if path is not None:
            self.paths.append((role, Path(path)))


def _png_uri(data: bytes, what: str) -> str:
    if not data.startswith(_PNG):
        raise DataError(f"{what}: not a PNG image.", source=what)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure_block(fig, id: str, caption: str, dpi: int = 90) -> Figure:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return Figure(id, caption, _png_uri(buf.getvalue(), id))


def _file_figure(path: Path, id: str, caption: str) -> Figure | None:
    if not path.is_file():
        return None
    return Figure(id, caption, _png_uri(path.read_bytes(), str(path)))


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"id": str})


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file ({what}).", source=str(path))
    return path


def _level_labels(df: pd.DataFrame) -> pd.Series:
    """'DL1 (0.5e6/kg)' style labels per dose level of a participant table."""
    if "dose" in df:
        return df["dose_level"].map(lambda v: f"DL{v}") + df["dose"].map(
            lambda d: f" ({float(d) / 1e6:g}e6/kg)" if pd.notna(d) else "")
    return df["dose_level"].map(lambda v: f"DL{v}")


def _participants(data: pd.DataFrame) -> pd.DataFrame:
    """One row per participant with dose_level (from the column, else the dose rank)."""
    cols = [c for c in ("dose_level", "dose", "disease") if c in data]
    p = data.groupby("id", sort=True)[cols].first().reset_index()
    if "dose_level" not in p:
        if "dose" not in p:
            p["dose_level"] = 1
        else:
            p["dose_level"] = p["dose"].rank(method="dense").astype(int)
    p["dose_level"] = p["dose_level"].astype(int)
    return p


# -- sections -----------------------------------------------------------------------------
def _cohort(data: pd.DataFrame) -> Section:
    p = _participants(data)
    dis = "disease" if "disease" in p else None
    key = ["dose_level"] + (["dose"] if "dose" in p else [])
    if dis is not None:
        tab = pd.crosstab([p[k] for k in key], p[dis]).reset_index()
        tab.columns.name = None
    else:
        tab = p.groupby(key).size().rename("all").reset_index()
    diseases = [c for c in tab.columns if c not in key]
    tab["total"] = tab[diseases].sum(axis=1)
    total = {**{k: None for k in key}, **{c: int(tab[c].sum()) for c in [*diseases, "total"]}}
    total["dose_level"] = "all"
    tab = pd.concat([tab.astype(object), pd.DataFrame([total])], ignore_index=True)
    if "dose" in tab:
        tab["dose"] = tab["dose"].map(lambda d: None if d is None else float(d) / 1e6)
    tab = tab.rename(columns={"dose_level": "dose level", "dose": "dose (10^6 cells/kg)"})
    t1 = Table.from_frame("tab-cohort-participants", "Participants by dose level and disease",
                          tab)
    ck = data.copy()
    ck["blq"] = ck["cens"] == 1 if "cens" in ck else False
    g = ck.groupby("endpoint", sort=False)
    samp = pd.DataFrame({
        "unit": g["unit"].first() if "unit" in ck else "",
        "participants": g["id"].nunique(),
        "samples": g.size(),
        "below LLOQ": g["blq"].sum().astype(int),
    })
    samp["% below LLOQ"] = 100.0 * samp["below LLOQ"] / samp["samples"]
    order = {e: i for i, e in enumerate(_endpoint_order())}
    samp = samp.reset_index().sort_values("endpoint", key=lambda s: s.map(
        lambda e: order.get(e, len(order))), kind="stable")
    samp = samp.rename(columns={"endpoint": "assay / endpoint"})
    t2 = Table.from_frame("tab-cohort-sampling", "Samples and below-LLOQ (BLQ) results per "
                          "assay (all visits, including pre-infusion)", samp)
    n = len(p)
    txt = Text(f"{n} participants in {p['dose_level'].nunique()} dose levels; "
               f"{len(data)} results of {data['endpoint'].nunique()} endpoints.")
    return Section("cohort", "Cohort", (txt, t1, t2))


def _endpoint_order() -> list[str]:
    from carkinetics.data.schema import ENDPOINTS

    return list(ENDPOINTS)


def _nca_units(data: pd.DataFrame) -> dict[str, str]:
    u = data.groupby("endpoint")["unit"].first() if "unit" in data else pd.Series(dtype=str)
    return {str(k): str(v) for k, v in u.items()}


def _kinetics(data: pd.DataFrame, fit: Path | None, nca_file: Path | None) -> Section:
    from carkinetics.data.schema import CK_ENDPOINTS

    blocks: list = []
    notes: list[str] = []
    ck_eps = [e for e in ("car_qpcr", "car_flow") if (data["endpoint"] == e).any()]
    if ck_eps:
        from carkinetics.plots import plot_ck_by_dose

        blocks.append(_figure_block(plot_ck_by_dose(data, endpoints=ck_eps), "fig-ck-spaghetti",
                                    "CAR-T kinetics by dose level: " + " and ".join(ck_eps)
                                    + " per participant (open markers: below LLOQ, at the "
                                    "LLOQ)."))
    else:
        notes.append(f"The data have no CAR-T kinetic endpoint ({', '.join(CK_ENDPOINTS)}): "
                     "no spaghetti plot.")
    if fit is not None:
        blocks.extend(_fit_blocks(fit, data))
    else:
        notes.append("Individual model fits left out: no --fit DIR (output of "
                     "'carkinetics fit') was given.")
    if nca_file is not None:
        blocks.extend(_nca_blocks(nca_file, data))
    else:
        notes.append("NCA table and exposure-dose analysis left out: no --nca FILE (output "
                     "of 'carkinetics nca') was given.")
    if not blocks:
        return Section("kinetics", "CAR-T kinetics", note=" ".join(notes))
    if notes:
        blocks.insert(0, Text(" ".join(notes)))
    return Section("kinetics", "CAR-T kinetics", tuple(blocks))


def _fit_blocks(fit: Path, data: pd.DataFrame) -> list:
    par = _read_table(_need(fit / "parameters.csv", "parameters of 'carkinetics fit'"))
    blocks: list = []
    summ_path = fit / "summary.json"
    if summ_path.is_file():
        s = json.loads(summ_path.read_text())
        c = s.get("counts", {})
        blocks.append(Text(
            f"Individual fits of the {s.get('model', '')} model ({s.get('endpoint', '')}, "
            f"BLQ method {str(s.get('method', '')).upper()}):",
            tuple((k, fmt(v)) for k, v in c.items()), id="fit-counts"))
    p = _participants(data)[["id", "dose_level"]]
    par = par.merge(p, on="id", how="left", suffixes=("_fit", ""))
    par = par[par["kind"] == "kinetic"] if "kind" in par else par
    index = ["endpoint", "parameter"] if "endpoint" in par and \
        par["endpoint"].nunique() > 1 else "parameter"
    piv = par.pivot_table(index=index, columns="dose_level", values="estimate",
                          aggfunc="median", sort=False)
    piv.columns = [f"DL{c} median" for c in piv.columns]
    unit = par.groupby("parameter", sort=False)["unit"].first() if "unit" in par else None
    tab = piv.reset_index()
    if unit is not None:
        tab.insert(tab.columns.get_loc("parameter") + 1, "unit", tab["parameter"].map(unit))
    tab.insert(len(tab.columns), "participants", tab["parameter"].map(
        par.groupby("parameter")["id"].nunique()))
    blocks.append(Table.from_frame("tab-fit-parameters", "Individual kinetic parameter "
                                   "estimates: median by dose level", tab))
    f = _file_figure(fit / "fits.png", "fig-fits", "Individual fits (observed, BLQ open, "
                     "model prediction).")
    if f is not None:
        blocks.append(f)
    return blocks


#: NCA parameters of the report's dose-level table.
NCA_PARAMETERS = ("CMAX", "TMAX", "AUCINT_0_28", "AUCLST", "LAMZHL")


def _nca_blocks(nca_file: Path, data: pd.DataFrame) -> list:
    from carkinetics.nca import dose_proportionality, summarize_nca
    from carkinetics.plots import plot_nca_by_dose

    wide = _read_table(_need(nca_file, "NCA table of 'carkinetics nca'"))
    if "dose_level" not in wide:
        lv = _participants(data).set_index("id")["dose_level"]
        wide["dose_level"] = wide["id"].map(lv)
    params = [q for q in NCA_PARAMETERS if q in wide]
    summ = summarize_nca(wide, by=("dose_level",), parameters=params)
    units = _nca_units(data)

    def unit(row) -> str:
        u = units.get(str(row["endpoint"]), "")
        q = row["parameter"]
        if q in ("TMAX", "LAMZHL", "TLST"):
            return "day"
        return f"{u}*day" if q.startswith("AUC") else u

    summ["unit"] = summ.apply(unit, axis=1)
    cols = ["endpoint", "parameter", "unit", "dose_level", "n", "geomean", "geocv_pct",
            "median", "min", "max"]
    tab = summ[[c for c in cols if c in summ]].rename(columns={
        "dose_level": "dose level", "geomean": "geometric mean", "geocv_pct": "geo CV%"})
    blocks: list = [Table.from_frame("tab-nca", "NCA parameters by dose level", tab)]
    if "dose" not in wide:
        blocks.append(Text(f"{nca_file} has no dose column: no dose-proportionality "
                           "analysis."))
        return blocks
    dp = dose_proportionality(wide)
    keep = [c for c in ("endpoint", "parameter", "n", "n_doses", "b", "ci_low", "ci_high",
                        "level", "smith_low", "smith_high", "proportional") if c in dp]
    dp = dp[keep].rename(columns={"b": "slope b", "ci_low": "CI lower", "ci_high": "CI upper",
                                  "smith_low": "proportional range low",
                                  "smith_high": "proportional range high"})
    blocks.append(Table.from_frame(
        "tab-dose-proportionality", "Dose proportionality: power model "
        "log(P) = a + b log(dose); dose-proportional when the CI of b lies in the "
        "range (Smith et al. 2000)", dp))
    fig = plot_nca_by_dose(wide, parameters=[q for q in ("CMAX", "AUCINT_0_28") if q in wide])
    blocks.append(_figure_block(fig, "fig-exposure-dose", "NCA exposure against dose "
                                    "(log-log) with the power-model fit."))
    return blocks


def _population(popfit: Path | None) -> Section:
    title = "Population model"
    if popfit is None:
        return Section("population", title, note="Left out: no --popfit DIR (output of "
                       "'carkinetics popfit') was given.")
    pop = _read_table(_need(popfit / "population.csv", "estimates of 'carkinetics popfit'"))
    blocks: list = []
    summ_path = popfit / "summary.json"
    if summ_path.is_file():
        s = json.loads(summ_path.read_text())
        items = [(k, fmt(s[k])) for k in ("method", "censoring", "ofv", "aic", "bic", "n_obs",
                                           "n_individuals", "n_par", "converged", "message",
                                           "condition_number") if k in s]
        blocks.append(Text("Fit summary:", tuple(items), id="pop-summary"))
        shr = s.get("shrinkage")
        if isinstance(shr, dict) and shr:
            blocks.append(Table.from_frame(
                "tab-pop-shrinkage", "Shrinkage (eta and epsilon)",
                pd.DataFrame({"parameter": list(shr), "shrinkage": list(shr.values())})))
    cols = [c for c in ("parameter", "estimate", "se", "rse", "ci_lower", "ci_upper")
            if c in pop]
    blocks.insert(0, Table.from_frame(
        "tab-pop-parameters", "Population parameter estimates (SE, RSE %, 95% CI)",
        pop[cols].rename(columns={"rse": "rse %"})))
    missing = []
    for name, cap in (("gof", "Goodness of fit (observed vs PRED/IPRED, CWRES, NPDE)."),
                      ("vpc", "Visual predictive check with the %BLQ panel."),
                      ("individual_fits", "Individual predictions (IPRED) per participant.")):
        f = _file_figure(popfit / f"{name}.png", f"fig-pop-{name}", cap)
        if f is None:
            missing.append(f"{name}.png")
        else:
            blocks.append(f)
    if missing:
        blocks.append(Text(f"Figures not in {popfit}: {', '.join(missing)} (written only by "
                           "a FOCE-I fit with figures)."))
    return Section("population", title, tuple(blocks))


def _visit_order(labels: pd.Series) -> pd.Series:
    from carkinetics.data.visits import visit_day

    def day(v):
        try:
            return visit_day(str(v))
        except (ValueError, KeyError):
            return math.inf
    return labels.map(day)


def _pd(data: pd.DataFrame, pd_dir: Path | None) -> Section:
    from carkinetics.plots import plot_ck_by_dose

    title = "Pharmacodynamics"
    blocks: list = []
    p = _participants(data).set_index("id")["dose_level"]
    df = data.copy()
    if "visit" not in df:  # nearest protocol visit whose window contains the time
        from carkinetics.data.visits import ALL_VISITS, assign_visits

        df["visit"] = assign_visits(df["time"], visits=ALL_VISITS)
    df = df[df["visit"].notna() & (df["visit"].astype(str) != "")]
    df["dose_level"] = df["id"].map(p)
    absent = []
    for gi, (name, eps) in enumerate(PD_GROUPS):
        have = [e for e in eps if (df["endpoint"] == e).any()]
        if not have:
            absent.append(name.lower())
            continue
        fig = plot_ck_by_dose(data, endpoints=have)
        fig.suptitle(f"{name} by dose level (open markers: below LLOQ)", fontsize=10)
        blocks.append(_figure_block(fig, f"fig-pd-{gi}", f"{name}: "
                                    f"{', '.join(have)} per participant by dose level."))
        sub = df[df["endpoint"].isin(have)]
        g = sub.groupby(["endpoint", "visit", "dose_level"], sort=False)["dv"]
        st = pd.DataFrame({"median": g.median(), "n": g.size()}).reset_index()
        st["cell"] = [f"{fmt(m)} (n={k})" for m, k in zip(st["median"], st["n"], strict=True)]
        tab = st.pivot(index=["endpoint", "visit"], columns="dose_level", values="cell")
        tab.columns = [f"DL{c} median (n)" for c in tab.columns]
        tab = tab.reset_index()
        eorder = {e: i for i, e in enumerate(have)}
        tab = tab.assign(_e=tab["endpoint"].map(eorder), _d=_visit_order(tab["visit"]))
        tab = tab.sort_values(["_e", "_d"], kind="stable").drop(columns=["_e", "_d"])
        unit = sub.groupby("endpoint")["unit"].first() if "unit" in sub else None
        if unit is not None:
            tab.insert(1, "unit", tab["endpoint"].map(unit))
        blocks.append(Table.from_frame(f"tab-pd-{gi}", f"{name}: median by dose level and "
                                       "protocol visit (BLQ results at their LLOQ)", tab))
    if absent:
        blocks.insert(0, Text(f"No data for: {', '.join(absent)}."))
    if pd_dir is not None:
        blocks.extend(_pd_dir_blocks(pd_dir, data))
    if not any(b.kind != "text" for b in blocks):
        return Section("pd", title, note="Left out: the data have none of the PD endpoints "
                       "(B cells, immunoglobulins, autoantibodies, complement)"
                       + ("" if pd_dir is not None else " and no --pd DIR was given") + ".")
    return Section("pd", title, tuple(blocks))


def _pd_dir_blocks(pd_dir: Path, data: pd.DataFrame) -> list:
    blocks: list = []
    par_path = pd_dir / "pd_parameters.csv"
    if par_path.is_file():
        par = _read_table(par_path)
        par = par[par["kind"] == "pd"] if "kind" in par else par
        par = par.merge(_participants(data)[["id", "dose_level"]], on="id", how="left")
        piv = par.pivot_table(index=["model", "parameter"], columns="dose_level",
                              values="estimate", aggfunc="median", sort=False)
        piv.columns = [f"DL{c} median" for c in piv.columns]
        tab = piv.reset_index()
        if "unit" in par:
            tab.insert(2, "unit", tab["parameter"].map(par.groupby("parameter")["unit"].first()))
        blocks.append(Table.from_frame("tab-pd-parameters", "CK->PD model parameters "
                                       "(individual fits): median by dose level", tab))
    er_path = pd_dir / "exposure_response.csv"
    if er_path.is_file():
        er = _read_table(er_path)
        cols = [c for c in ("analysis", "model", "parameter", "estimate", "ci_lower",
                            "ci_upper", "n", "n_events", "reason") if c in er]
        er = er[cols].copy()
        if "reason" in er:
            er["reason"] = er["reason"].map(lambda r: str(r).split("\n")[-1].strip(" -")
                                            if isinstance(r, str) else r)
        blocks.append(Table.from_frame("tab-pd-exposure-response", "Exposure-response "
                                       "analyses (AUC0-28 of CAR-T by NCA)", er))
    for png in sorted(pd_dir.glob("er_*.png")):
        blocks.append(_file_figure(png, f"fig-{png.stem.replace('_', '-')}",
                                   f"Exposure-response: {png.stem[3:].replace('_', ' ')}."))
    if not blocks:
        blocks.append(Text(f"{pd_dir}: no pd_parameters.csv, exposure_response.csv or "
                           "exposure-response figures."))
    return blocks


def _n_over_N(df: pd.DataFrame) -> pd.Series:
    return [f"{int(n)}/{int(big)} ({fmt(p)}%)" for n, big, p in
            zip(df["n"], df["N"], df["pct"], strict=True)]


def _safety(endpoints: Path | None) -> Section:
    title = "Safety"
    if endpoints is None:
        return Section("safety", title, note="Left out: no --endpoints DIR (output of "
                       "'carkinetics endpoints') was given.")
    if not endpoints.is_dir():
        raise DataError(f"{endpoints}: no such folder (--endpoints).", source=str(endpoints))
    ae_path = endpoints / "ae_summary.csv"
    if not ae_path.is_file():
        return Section("safety", title, note=f"Left out: {endpoints} has no safety tables "
                       "('carkinetics endpoints' was run without --ae).")
    blocks: list = []
    ae = _read_table(ae_path)
    ae["dose_level"] = ae["dose_level"].astype(str)
    ae["cell"] = _n_over_N(ae)
    tab = ae.pivot_table(index=["category", "measure"], columns="dose_level", values="cell",
                         aggfunc="first", sort=False)
    tab.columns = [f"DL{c}" if c != "All" else "all" for c in tab.columns]
    blocks.append(Table.from_frame("tab-ae-summary", "Adverse events by dose level: "
                                   "participants n/N (%)", tab.reset_index()))
    cr_path = endpoints / "crs_icans_summary.csv"
    if cr_path.is_file():
        cr = _read_table(cr_path)
        cr["participants"] = _n_over_N(cr)
        cols = ["category", "dose_level", "participants", "ci_low", "ci_high", "events",
                "onset_median", "duration_median", "n_ongoing"]
        cr = cr[[c for c in cols if c in cr]].rename(columns={
            "dose_level": "dose level", "ci_low": "95% CI low (%)",
            "ci_high": "95% CI high (%)", "onset_median": "onset median (day)",
            "duration_median": "duration median (days)", "n_ongoing": "ongoing"})
        blocks.append(Table.from_frame("tab-crs-icans", "CRS and ICANS by dose level "
                                       "(ASTCT grading; exact 95% CI)", cr))
    mg_path = endpoints / "ae_max_grade.csv"
    if mg_path.is_file():
        mg = _read_table(mg_path)
        mg = mg[mg["category"].isin(["crs", "icans"])]
        if len(mg):
            tab = mg.pivot_table(index=["category", "dose_level"], columns="max_grade",
                                 values="n", aggfunc="first", sort=False)
            tab.columns = [f"grade {c}" if int(c) else "none" for c in tab.columns]
            blocks.append(Table.from_frame("tab-crs-icans-grade", "CRS and ICANS: "
                                           "participants by worst grade",
                                           tab.reset_index().rename(
                                               columns={"dose_level": "dose level"})))
    dlt_path = endpoints / "dlt.csv"
    if dlt_path.is_file():
        dlt = _read_table(dlt_path)
        g = dlt.groupby("dose_level", sort=True)
        tab = pd.DataFrame({
            "participants": g.size(), "evaluable": g["evaluable"].sum().astype(int),
            "DLT": g["dlt"].sum().astype(int),
            "pending": g["status"].apply(lambda s: int((s == "pending").sum())),
            "not evaluable": g["status"].apply(lambda s: int((s == "not_evaluable").sum())),
        }).reset_index().rename(columns={"dose_level": "dose level"})
        blocks.append(Table.from_frame("tab-dlt", "Dose-limiting toxicities (DLT) by dose "
                                       "level", tab))
        hit = dlt[dlt["dlt"].astype(bool)]
        if len(hit):
            blocks.append(Table.from_frame(
                "tab-dlt-list", "Participants with a DLT",
                hit[["id", "dose_level", "dlt_day", "dlt_reason"]].rename(columns={
                    "dose_level": "dose level", "dlt_day": "day", "dlt_reason": "reason"})))
        else:
            blocks.append(Text("No participant had a DLT in the DLT window."))
    return Section("safety", title, tuple(blocks))


def _escalation(path: Path | None) -> Section:
    from carkinetics.endpoints.ae_tables import clopper_pearson

    title = "Dose escalation"
    if path is None:
        return Section("escalation", title, note="Left out: no --escalation FILE (output "
                       "of 'carkinetics escalate') was given.")
    esc = json.loads(_need(path, "decision of 'carkinetics escalate'").read_text())
    dec = esc.get("decision")
    if not isinstance(dec, dict) or "per_dose" not in esc:
        raise DataError(f"{path}: not a 'carkinetics escalate' decision file (no 'decision' "
                        "or 'per_dose').", source=str(path))
    doses = esc.get("doses")

    def level(lv):
        if lv is None:
            return "none"
        d = f" ({doses[lv - 1] / 1e6:g}e6 cells/kg)" if doses else ""
        return f"dose level {lv}{d}"

    items = [("action", str(dec.get("action"))),
             ("current dose", level(dec.get("current_dose_level"))),
             ("recommended next dose", level(dec.get("next_dose_level"))),
             ("MTD", level(dec.get("mtd_level")) if dec.get("mtd_level") else "not selected"),
             ("design", f"{esc.get('design')} (target DLT probability {fmt(esc.get('target'))})"),
             ("rule", str(dec.get("rule")))]
    nums = dec.get("numbers") or {}
    items += [(str(k), fmt(v) if not isinstance(v, list) else
               (", ".join(fmt(x) for x in v) or "none")) for k, v in nums.items()]
    blocks: list = [Text(f"Recommendation: {dec.get('action')} \u2192 "
                         f"{level(dec.get('next_dose_level'))}.", tuple(items),
                         id="escalation-decision")]
    per = pd.DataFrame(esc["per_dose"])
    lo, hi = clopper_pearson(per["dlt"].to_numpy(int), per["n"].to_numpy(int))
    tab = pd.DataFrame({"dose level": per["dose_level"]})
    if "dose" in per and per["dose"].notna().all():
        tab["dose (10^6 cells/kg)"] = per["dose"].astype(float) / 1e6
    tab["n"] = per["n"]
    tab["DLT"] = per["dlt"]
    tab["pending"] = per["pending"]
    tab["P(DLT) design estimate"] = per["p_dlt"] if "p_dlt" in per else None
    if "p_dlt_lower" in per and per["p_dlt_lower"].notna().any():
        tab["P(DLT) 90% interval low"] = per["p_dlt_lower"]
        tab["P(DLT) 90% interval high"] = per["p_dlt_upper"]
    tab["observed DLT rate"] = per["dlt"] / per["n"].where(per["n"] > 0)
    tab["95% CI low"] = lo
    tab["95% CI high"] = hi
    for m, name in (("cmax", "Cmax"), ("auc_0_28", "AUC0-28")):
        if f"{m}_median" in per:
            tab[f"{name} median"] = per[f"{m}_median"]
            tab[f"{name} PI low"] = per[f"{m}_lower"]
            tab[f"{name} PI high"] = per[f"{m}_upper"]
        if f"{m}_p_exceed" in per:
            lim = (esc.get("exposure_limits") or {}).get(m)
            tab[f"P({name} > {fmt(lim)})"] = per[f"{m}_p_exceed"]
    v = esc.get("virtual") or {}
    note = ("P(DLT) design estimate: " + str(esc.get("p_dlt_estimate") or "none") + ". "
            "Observed DLT rate with its exact (Clopper-Pearson) 95% CI. ")
    if v:
        note += (f"Predicted exposure of {v.get('n_sets')} x {v.get('n_per_set')} virtual "
                 f"participants (seed {v.get('seed')}; parameter uncertainty: "
                 f"{v.get('uncertainty')}) from {esc.get('exposure_source')}: median and "
                 f"{fmt(100 * float(v.get('prediction_interval', 0.9)))}% prediction "
                 "interval (PI).")
    else:
        note += "No predicted exposure: the decision was made without a dose-exposure model."
    blocks.append(Table.from_frame("tab-escalation-doses", "Candidate doses: DLT data, "
                                   "P(DLT) and predicted exposure", tab, note=note))
    dt = esc.get("decision_table")
    if dt:
        d = pd.DataFrame(dt).rename(columns={
            "n": "participants at the dose", "escalate_if_le": "escalate if DLTs <=",
            "deescalate_if_ge": "de-escalate if DLTs >=",
            "eliminate_if_ge": "eliminate the dose if DLTs >="})
        blocks.append(Table.from_frame("tab-escalation-rules", "Decision table of the "
                                       "protocol (BOIN boundaries; stay otherwise)", d))
    else:
        blocks.append(Text(f"The {esc.get('design')} design has no fixed decision table."))
    return Section("escalation", title, tuple(blocks))


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _seeds(inputs: _Inputs, seed: int | None) -> list[tuple[str, str]]:
    from carkinetics.simulate.trial import truth_path_for

    out = []
    if seed is not None:
        out.append(("given", str(seed)))
    for role, path in inputs.paths:
        cand = []
        if role == "data":
            cand = [(truth_path_for(path), "seed", "data (simulation truth file)")]
        elif role == "popfit":
            cand = [(path / "summary.json", "seed", "population fit")]
        elif role == "escalation":
            cand = [(path, ("virtual", "seed"), "escalation virtual participants")]
        for f, key, what in cand:
            if not f.is_file():
                continue
            try:
                obj = json.loads(f.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            for k in (key if isinstance(key, tuple) else (key,)):
                obj = obj.get(k) if isinstance(obj, dict) else None
            if obj is not None:
                out.append((what, str(obj)))
    return out


def _provenance(inputs: _Inputs, command: str | None, seed: int | None,
                now: _dt.datetime) -> Section:
    rows = []
    for role, path in inputs.paths:
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(
            ".")) if path.is_dir() else [path]
        for f in files:
            rows.append({"input": role, "file": str(f), "bytes": f.stat().st_size,
                         "sha256": sha256_file(f)})
    t = Table.from_frame("tab-provenance-inputs", "Inputs (sha256 of every file)",
                         pd.DataFrame(rows, columns=["input", "file", "bytes", "sha256"]))
    seeds = _seeds(inputs, seed)
    items = (("command", command or "carkinetics.report.build_report (Python API)"),
             *(("seed: " + k, v) for k, v in seeds),
             ("date (UTC)", now.strftime("%Y-%m-%d %H:%M:%S")),
             ("python", platform.python_version()),
             ("platform", platform.platform()))
    ver = pd.DataFrame({"package": DEPENDENCIES, "version": [_version(d) for d in DEPENDENCIES]})
    return Section("provenance", "Provenance", (
        Text("How this report was made:", items, id="provenance-run"),
        t, Table.from_frame("tab-provenance-versions", "Package versions", ver)))


# -- assembling ---------------------------------------------------------------------------
def render_report(sections: Sequence[Section], *, title: str, meta: Mapping[str, str]) -> str:
    """Render sections to one HTML document with the package's jinja2 template."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("carkinetics.report", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    css = env.loader.get_source(env, "report.css")[0]
    return env.get_template("report.html.j2").render(title=title, sections=sections,
                                                     meta=dict(meta), css=css)


def build_report(data: str | os.PathLike[str], out: str | os.PathLike[str], *,
                 fit: str | os.PathLike[str] | None = None,
                 popfit: str | os.PathLike[str] | None = None,
                 nca: str | os.PathLike[str] | None = None,
                 endpoints: str | os.PathLike[str] | None = None,
                 escalation: str | os.PathLike[str] | None = None,
                 pd_dir: str | os.PathLike[str] | None = None,
                 command: str | None = None, seed: int | None = None,
                 title: str = "CAR-T dose-escalation committee report") -> Path:
    """Write the committee report (one self-contained HTML file) from the pipeline outputs.

    Parameters
    ----------
    data : path
        The long data table (CSV, Parquet or NONMEM-style), read with
        :func:`carkinetics.data.read_data`.
    out : path
        The HTML file to write (atomically).
    fit, popfit : path, optional
        Output folders of ``carkinetics fit`` and ``carkinetics popfit``.
    nca : path, optional
        Wide NCA table of ``carkinetics nca``.
    endpoints : path, optional
        Output folder of ``carkinetics endpoints`` (safety tables need its ``--ae``).
    escalation : path, optional
        Decision JSON of ``carkinetics escalate``.
    pd_dir : path, optional
        Output folder of ``carkinetics pd`` (and of the demo's exposure-response step).
    command : str, optional
        Command line shown in the provenance section.
    seed : int, optional
        Root seed shown in the provenance section (seeds found in the inputs are shown too).
    title : str
        Title of the report.

    Returns
    -------
    Path
        The HTML file.

    Raises
    ------
    DataError
        If a given input does not exist or is not what the option expects.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from carkinetics._atomic import atomic_write
    from carkinetics.data import read_data

    now = _dt.datetime.now(_dt.UTC)
    inputs = _Inputs()
    p = {k: (None if v is None else Path(v)) for k, v in dict(
        data=data, fit=fit, popfit=popfit, nca=nca, endpoints=endpoints,
        escalation=escalation, pd=pd_dir).items()}
    for role, path in p.items():
        if path is not None and not path.exists():
            raise DataError(f"{path}: no such file or folder (--{role}).", source=str(path))
        inputs.add(role, path)
    table = read_data(p["data"])
    sections = [_cohort(table), _kinetics(table, p["fit"], p["nca"]), _population(p["popfit"]),
                _pd(table, p["pd"]), _safety(p["endpoints"]), _escalation(p["escalation"]),
                _provenance(inputs, command, seed, now)]
    html = render_report(sections, title=title, meta={
        "date": now.strftime("%Y-%m-%d %H:%M UTC"), "data": str(p["data"]),
        "version": _version("carkinetics")})
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(out, lambda tmp: Path(tmp).write_text(html, encoding="utf-8"))
