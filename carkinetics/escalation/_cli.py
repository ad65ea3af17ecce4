"""``carkinetics boundaries | oc | escalate``: dose-escalation designs from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from carkinetics._clitools import ResumeOpt, SchedulerOpt, WorkersOpt, check_scheduler

__all__ = ["register"]

_DESIGNS = ("3+3", "boin", "crm", "exposure", "tite-boin", "boin-backfill")


# options shared by `oc` and `escalate` (the dose -> exposure source)
_PopulationOpt = Annotated[Path | None, typer.Option(
    "--population", help="Output folder of 'carkinetics popfit' (population.csv: "
    "estimates and SEs): dose -> exposure relation from virtual participants.")]
_CKParamsOpt = Annotated[Path | None, typer.Option(
    "--ck-params", help="CSV parameter,value of typical CK values (kinetic "
    "parameters, dose_exp, optional omega(p)); no parameter uncertainty.")]
_CKModelOpt = Annotated[str | None, typer.Option(
    "--ck-model", help="Kinetic model of the CK values (default: summary.json's, "
    "else piecewise).")]
_NVirtualOpt = Annotated[int, typer.Option("--n-virtual", min=1, help="Virtual participants.")]
_NSetsOpt = Annotated[int, typer.Option(
    "--n-sets", min=1, help="Parameter sets drawn from the SEs (uncertainty); "
    "n-virtual / n-sets participants each.")]
_MetricOpt = Annotated[str, typer.Option(
    "--metric", help="Exposure of the exposure design: cmax or auc_0_28.")]


def _design_opt(value: str) -> str:
    if value not in _DESIGNS:
        from carkinetics._validation import closest
        raise typer.BadParameter(f"{value!r} is not one of {list(_DESIGNS)}."
                                 f"{closest(value, _DESIGNS)}", param_hint="--design")
    return value


def _floats(text: str, option: str, fail) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip() != ""]
    except ValueError:
        fail(f"{option} {text!r}: expected comma-separated numbers, e.g. 0.05,0.1,0.3.")
        raise  # pragma: no cover


def _write_json(path: Path, obj: dict) -> None:
    from carkinetics._atomic import atomic_write

    def w(tmp: str) -> None:
        Path(tmp).write_text(json.dumps(obj, indent=2) + "\n")
    atomic_write(path, w)


_VIRTUAL_SEED = 20240409


def _exposure_source(population: Path | None, ck_params: Path | None, ck_model: str | None,
                     fail):
    """VirtualSource from ``--population DIR`` or ``--ck-params FILE`` (None if neither)."""
    if population is not None and ck_params is not None:
        fail("give either --population or --ck-params, not both.")
    if population is None and ck_params is None:
        return None
    from carkinetics.escalation.exposure import read_ck_params, read_population
    from carkinetics.exceptions import DataError, ModelSpecError

    try:
        if population is not None:
            return read_population(population, model=ck_model)
        return read_ck_params(ck_params, model=ck_model or "piecewise")
    except (DataError, ModelSpecError) as exc:
        fail(str(exc))


def _predict(source, dose_values: list[float], n_virtual: int, n_sets: int, seed: int,
             limits: dict, fail):
    """Virtual participants and their Cmax / AUC0-28 at every dose (kinetics only)."""
    from carkinetics.exceptions import DataError, ModelSpecError
    from carkinetics.simulate.virtual import draw_virtual, predict_exposure

    if "dose_exp" not in source.design.theta_names:
        fail("the CK values have no dose effect 'dose_exp' (power model on the expansion "
             "level per dose / 1e6 cells/kg): the predicted exposure would be the same at "
             "every dose; add a dose_exp row.")
    sets = n_sets if source.covariance is not None or source.draws is not None else 1
    per = max(1, n_virtual // sets)
    try:
        vp = draw_virtual(source, per, n_sets=sets, seed=seed)
        pred = predict_exposure(vp, dose_values, limits=limits or None, pd_model=None)
    except (DataError, ModelSpecError) as exc:
        fail(str(exc))
    info = {"n_sets": sets, "n_per_set": per, "seed": seed,
            "uncertainty": "standard errors (diagonal)" if sets > 1 else "none",
            "metrics": "cmax, auc_0_28 (closed forms at the delivered dose)",
            "prediction_interval": pred.level}
    return pred, info


def _limits(cmax_limit: float | None, auc_limit: float | None) -> dict:
    out = {}
    if cmax_limit is not None:
        out["cmax"] = cmax_limit
    if auc_limit is not None:
        out["auc_0_28"] = auc_limit
    return out


def _nan_none(v):
    import math

    v = float(v)
    return None if not math.isfinite(v) else v


#: Level of the posterior intervals of P(DLT) in the committee table.
P_DLT_LEVEL = 0.9


def _p_dlt(design: str, d, st) -> tuple[list | None, list | None, str | None]:
    """Per-dose P(DLT) estimate, its 90 % posterior interval (2, D) and what they are.

    None for 3+3 (no model of P(DLT)).
    """
    a = (1.0 - P_DLT_LEVEL) / 2.0
    if design == "boin":
        import numpy as np
        from scipy import stats

        from carkinetics.escalation.boin import boin_select_mtd

        est = boin_select_mtd(st.n, st.y, d.target, d.cutoff, d.extrasafe, d.offset,
                              d.bound_mtd, d.bounds.lambda_d)[1]
        n, y = st.n.astype(float), st.y.astype(float)
        lims = np.where(n > 0, stats.beta.ppf([[a], [1.0 - a]], 1.0 + y, 1.0 + n - y), np.nan)
        return est.tolist(), lims.tolist(), (
            "isotonic estimate (BOIN select.mtd: PAVA of (y + 0.05) / (n + 0.1)); empty where "
            "not estimated. Interval: 90 % equal-tailed Beta(1 + DLTs, 1 + n - DLTs) posterior "
            "(the uniform-prior posterior of BOIN's elimination rule), per dose")
    if design == "crm":
        return (d.posterior(st.n, st.y)["p_mean"].tolist(),
                d.posterior_interval(st.n, st.y, P_DLT_LEVEL).tolist(),
                "posterior mean of p_d (CRM); 90 % equal-tailed posterior interval")
    if design == "exposure":
        return (d.posterior_summary(st)["p_mean"].tolist(),
                d.posterior_interval(st, P_DLT_LEVEL).tolist(),
                "posterior mean of P(DLT) at the dose's exposure (exposure design); 90 % "
                "equal-tailed posterior interval")
    return None, None, None


def _per_dose(n_doses: int, dose_values: list[float] | None, st, p_dlt, p_int,
              pred) -> list[dict]:
    """The committee table: one record per dose level."""
    rows = []
    summ = {m: pred.summary(m) for m in pred.values} if pred is not None else {}
    for i in range(n_doses):
        r = {"dose_level": i + 1,
             "dose": None if dose_values is None else dose_values[i],
             "n": int(st.n[i]), "dlt": int(st.y[i]), "pending": int(st.n_pending[i]),
             "p_dlt": None if p_dlt is None else _nan_none(p_dlt[i]),
             "p_dlt_lower": None if p_int is None else _nan_none(p_int[0][i]),
             "p_dlt_upper": None if p_int is None else _nan_none(p_int[1][i])}
        for m, tab in summ.items():
            row = tab.iloc[i]
            r[f"{m}_median"] = float(row["median"])
            r[f"{m}_lower"] = float(row["lower"])
            r[f"{m}_upper"] = float(row["upper"])
            if "p_exceed" in tab:
                r[f"{m}_p_exceed"] = float(row["p_exceed"])
        rows.append(r)
    return rows


def register(app: typer.Typer, fail) -> None:
    """Add ``boundaries``, ``oc`` and ``escalate``; ``fail(message)`` exits 1 on bad input."""

    @app.command("boundaries")
    def boundaries_cmd(
        target: Annotated[float, typer.Option("--target", help="Target DLT probability.")],
        out: Annotated[Path, typer.Option("--out", help="Output table (.csv).")],
        design: Annotated[str, typer.Option("--design", help="Only 'boin' has boundaries.")
                          ] = "boin",
        max_n: Annotated[int, typer.Option("--max-n", min=1,
                                           help="Largest number at a dose.")] = 30,
        cutoff: Annotated[float, typer.Option("--cutoff", help="Elimination cutoff.")] = 0.95,
        cohort_size: Annotated[int | None, typer.Option(
            "--cohort-size", min=1, help="Keep only multiples of the cohort size.")] = None,
    ) -> None:
        """BOIN escalation / de-escalation / elimination boundaries (DLT counts per n)."""
        if design != "boin":
            raise typer.BadParameter(f"{design!r}: only 'boin' has boundaries.",
                                     param_hint="--design")
        from carkinetics._atomic import write_table
        from carkinetics.escalation.boin import boin_boundaries
        from carkinetics.exceptions import ModelSpecError
        try:
            b = boin_boundaries(target, max_n, cutoff)
        except ModelSpecError as exc:
            fail(str(exc))
        write_table(b.to_frame(cohort_size), out)
        typer.echo(f"wrote {out} (lambda_e {b.lambda_e:.4f}, lambda_d {b.lambda_d:.4f})")

    @app.command("oc")
    def oc_cmd(
        design: Annotated[str, typer.Option("--design", help="3+3, boin, crm or exposure.",
                                            callback=_design_opt)],
        true_tox: Annotated[str, typer.Option("--true-tox",
                                              help="True DLT probabilities P1,P2,...")],
        out: Annotated[Path, typer.Option("--out", help="Output JSON.")],
        target: Annotated[float, typer.Option("--target")] = 0.3,
        n_cohorts: Annotated[int, typer.Option("--n-cohorts", min=1)] = 10,
        cohort_size: Annotated[int, typer.Option("--cohort-size", min=1)] = 3,
        n_earlystop: Annotated[int, typer.Option(
            "--n-earlystop", min=1, help="BOIN: stop at this many at a dose (package default "
            "100 = off).")] = 100,
        n_trials: Annotated[int | None, typer.Option("--n-trials", min=1)] = None,
        seed: Annotated[int | None, typer.Option("--seed")] = None,
        workers: WorkersOpt = 1,
        scheduler: SchedulerOpt = None,
        resume: ResumeOpt = False,
        exact: Annotated[bool, typer.Option(
            "--exact", help="Exact OC by enumerating dose paths (3+3 always exact).")] = False,
        convention: Annotated[str, typer.Option(
            "--convention", help="3+3 MTD convention: expanded or plain.")] = "expanded",
        model: Annotated[str, typer.Option("--model", help="CRM: empiric or logistic.")
                         ] = "empiric",
        skeleton: Annotated[str | None, typer.Option("--skeleton", help="CRM skeleton.")
                            ] = None,
        cutoff: Annotated[float, typer.Option("--cutoff", help="BOIN elimination.")] = 0.95,
        extrasafe: Annotated[bool, typer.Option("--extrasafe")] = False,
        titration: Annotated[bool, typer.Option("--titration")] = False,
        bound_mtd: Annotated[bool, typer.Option("--bound-mtd")] = False,
        doses: Annotated[str | None, typer.Option(
            "--doses", help="Dose per level (cells/kg), comma-separated (with --population "
            "or --ck-params).")] = None,
        population: _PopulationOpt = None,
        ck_params: _CKParamsOpt = None,
        ck_model: _CKModelOpt = None,
        n_virtual: _NVirtualOpt = 1000,
        n_sets: _NSetsOpt = 50,
        metric: _MetricOpt = "cmax",
        backfill_size: Annotated[int, typer.Option(
            "--backfill-size", min=0, help="boin-backfill: participants per backfill cohort "
            "enrolled with each main cohort.")] = 3,
        backfill_cap: Annotated[int, typer.Option(
            "--backfill-cap", min=0, help="boin-backfill: most participants per dose.")] = 12,
        accrual_rate: Annotated[float | None, typer.Option(
            "--accrual-rate", help="tite-boin: participants per day (staggered accrual).")
        ] = None,
        window: Annotated[float, typer.Option(
            "--window", help="tite-boin: DLT window, days.")] = 28.0,
    ) -> None:
        """Operating characteristics of a design for given true DLT probabilities.

        Simulated trials are stored in chunks next to OUT (.OUT.units, removed once OUT is
        written); after an interruption the same command with --resume simulates only the
        chunks not stored yet.
        """
        from carkinetics.escalation.designs import make_design
        from carkinetics.escalation.oc import simulate_oc
        from carkinetics.exceptions import ModelSpecError

        p = _floats(true_tox, "--true-tox", fail)
        check_scheduler(scheduler)
        store = out.parent / f".{out.name}.units"
        sk = _floats(skeleton, "--skeleton", fail) if skeleton else None
        if metric not in ("cmax", "auc_0_28"):
            fail(f"--metric {metric!r}: expected 'cmax' or 'auc_0_28'.")
        src = _exposure_source(population, ck_params, ck_model, fail)
        dex, vinfo = None, None
        if src is not None:
            from carkinetics.escalation.exposure import exposure_quantiles

            if doses is None:
                fail("--population/--ck-params need --doses (cells/kg per dose level).")
            dose_values = _floats(doses, "--doses", fail)
            if len(dose_values) != len(p):
                fail(f"--doses has {len(dose_values)} values but --true-tox has {len(p)}; "
                     "expected one dose per level.")
            pred, vinfo = _predict(src, dose_values, n_virtual, n_sets,
                                   _VIRTUAL_SEED if seed is None else seed, {}, fail)
            dex = exposure_quantiles(pred.values[metric])
        elif design == "exposure":
            fail("--design exposure needs the dose -> exposure relation: give --population "
                 "DIR (output of 'carkinetics popfit') or --ck-params FILE, and --doses.")
        exact = exact or design == "3+3"
        if not exact and (n_trials is None or seed is None):
            raise typer.BadParameter("--n-trials and --seed are required unless --exact.",
                                     param_hint="--n-trials/--seed")
        try:
            from carkinetics.escalation.base import check_probabilities, check_target
            check_target(target)
            check_probabilities(p, "--true-tox")
            d = make_design(design, len(p), target, cohort_size=cohort_size,
                            n_cohorts=n_cohorts, n_earlystop=n_earlystop, convention=convention,
                            model=model, skeleton=sk, cutoff=cutoff, extrasafe=extrasafe,
                            titration=titration, bound_mtd=bound_mtd, dose_exposure=dex,
                            backfill_size=backfill_size, backfill_cap=backfill_cap)
            if exact:
                if not hasattr(d, "exact_oc"):
                    fail(f"--exact is not available for design {design!r}.")
                res = d.exact_oc(p)
            elif design == "tite-boin":
                from carkinetics.escalation.tite import simulate_tite_oc

                if accrual_rate is None or not accrual_rate > 0:
                    fail("--design tite-boin needs --accrual-rate (participants per day, "
                         "> 0).")
                res = simulate_tite_oc(d, p, n_trials=n_trials, seed=seed,
                                       accrual_rate=accrual_rate, window=window,
                                       workers=workers, scheduler=scheduler, store=store,
                                       resume=resume)
            else:
                res = simulate_oc(d, p, n_trials=n_trials, seed=seed, workers=workers,
                                  progress=False, scheduler=scheduler, store=store,
                                  resume=resume)
        except ModelSpecError as exc:
            fail(str(exc))
        obj = res.to_dict()
        obj.update({"target": target, "seed": seed, "workers": workers,
                    "cohort_size": d.cohort_size, "n_cohorts": d.n_cohorts})
        if design in ("boin", "boin-backfill", "tite-boin"):
            obj["n_earlystop"] = n_earlystop
        if design == "boin-backfill":
            obj.update(backfill_size=backfill_size, backfill_cap=backfill_cap)
        if design == "tite-boin":
            obj.update(accrual_rate=accrual_rate, window=window)
        if design == "3+3":
            obj["convention"] = d.convention
        if vinfo is not None:
            obj["exposure_metric"] = metric
            obj["virtual"] = vinfo
            obj["dose_exposure_quantiles"] = dex.tolist()
        _write_json(out, obj)
        import shutil

        shutil.rmtree(store, ignore_errors=True)
        typer.echo(f"wrote {out}: selection % " + ", ".join(f"{v:.1f}"
                                                            for v in obj["selection_pct"])
                   + f"; no MTD {obj['stop_pct']:.1f} %")

    @app.command("escalate")
    def escalate_cmd(
        state: Annotated[Path, typer.Argument(help="CSV: id, dose_level (1-based), "
                                              "delivered_dose, dlt, in_window.")],
        out: Annotated[Path, typer.Option("--out", help="Decision JSON.")],
        design: Annotated[str, typer.Option("--design", callback=_design_opt)] = "boin",
        target: Annotated[float, typer.Option("--target")] = 0.3,
        n_doses: Annotated[int | None, typer.Option(
            "--n-doses", min=1, help="Dose levels of the design (or give --doses).")] = None,
        doses: Annotated[str | None, typer.Option(
            "--doses", help="Dose per level (e.g. cells/kg), comma-separated; maps "
            "delivered_dose to the highest level not above it.")] = None,
        current: Annotated[int | None, typer.Option(
            "--current", help="Current dose level (1-based; default the last row's).")] = None,
        cohort_size: Annotated[int, typer.Option("--cohort-size", min=1)] = 3,
        n_cohorts: Annotated[int, typer.Option("--n-cohorts", min=1)] = 10,
        n_earlystop: Annotated[int, typer.Option("--n-earlystop", min=1)] = 100,
        convention: Annotated[str, typer.Option("--convention")] = "expanded",
        model: Annotated[str, typer.Option("--model")] = "empiric",
        skeleton: Annotated[str | None, typer.Option("--skeleton")] = None,
        population: _PopulationOpt = None,
        ck_params: _CKParamsOpt = None,
        ck_model: _CKModelOpt = None,
        n_virtual: _NVirtualOpt = 1000,
        n_sets: _NSetsOpt = 50,
        metric: _MetricOpt = "cmax",
        seed: Annotated[int, typer.Option("--seed", help="Root seed of the virtual "
                                          "participants.")] = _VIRTUAL_SEED,
        cmax_limit: Annotated[float | None, typer.Option(
            "--cmax-limit", help="Report P(Cmax > limit) per dose.")] = None,
        auc_limit: Annotated[float | None, typer.Option(
            "--auc-limit", help="Report P(AUC0-28 > limit) per dose.")] = None,
    ) -> None:
        """Recommend the next dose from the current trial state.

        Writes the decision, the rule and numbers behind it, the BOIN decision table, and a
        per-dose committee table (``per_dose``): counts, the design's P(DLT) estimate and,
        with --population/--ck-params, the predicted Cmax and AUC0-28 (median, prediction
        interval, P(exceeding --cmax-limit/--auc-limit)). An optional ``exposure`` column of
        the state (e.g. observed Cmax) is used by the exposure design.
        """
        if design == "tite-boin":
            fail("escalate --design tite-boin needs each pending participant's follow-up "
                 "time, which the state file does not carry yet: use the Python API "
                 "(carkinetics.escalation.tite.TiteState and TiteBOIN.decide).")
        import numpy as np
        import pandas as pd

        from carkinetics.data._report import fmt
        from carkinetics.data._text import read_csv
        from carkinetics.escalation.base import TrialState, check_target
        from carkinetics.escalation.designs import make_design
        from carkinetics.exceptions import DataError, ModelSpecError

        dose_values = _floats(doses, "--doses", fail) if doses else None
        if n_doses is None and dose_values is None:
            raise typer.BadParameter("give --n-doses or --doses.", param_hint="--n-doses")
        nd = n_doses if n_doses is not None else len(dose_values)
        if dose_values is not None and len(dose_values) != nd:
            fail(f"--doses has {len(dose_values)} values but --n-doses is {nd}.")
        if not state.exists():
            fail(f"{state}: no such file.")
        if metric not in ("cmax", "auc_0_28"):
            fail(f"--metric {metric!r}: expected 'cmax' or 'auc_0_28'.")
        src = _exposure_source(population, ck_params, ck_model, fail)
        pred = vinfo = dex = None
        if src is not None:
            from carkinetics.escalation.exposure import exposure_quantiles

            if dose_values is None:
                fail("--population/--ck-params need --doses (cells/kg per dose level).")
            pred, vinfo = _predict(src, dose_values, n_virtual, n_sets, seed,
                                   _limits(cmax_limit, auc_limit), fail)
            dex = exposure_quantiles(pred.values[metric])
        elif design == "exposure":
            fail("--design exposure needs the dose -> exposure relation: give --population "
                 "DIR (output of 'carkinetics popfit') or --ck-params FILE, and --doses.")
        elif cmax_limit is not None or auc_limit is not None:
            fail("--cmax-limit/--auc-limit need --population or --ck-params.")
        try:
            check_target(target)
            tab = read_csv(state)
            missing = [c for c in ("id", "dose_level", "dlt") if c not in tab]
            if missing:
                raise DataError(f"missing column(s) {missing}; expected id, dose_level, "
                                "delivered_dose, dlt, in_window.", source=str(state))
            no_id = np.flatnonzero(tab["id"].isna().to_numpy())
            twice = tab["id"].duplicated(keep=False).to_numpy() & tab["id"].notna().to_numpy()
            if no_id.size or twice.any():
                raise DataError([f"row {i + 1}, column 'id': missing; fix: fill in the "
                                 "participant id." for i in no_id]
                                + [f"rows {', '.join(str(i + 1) for i in g)}, column 'id': "
                                   f"participant {fmt(k)} appears {len(g)} times (one row per "
                                   "participant); fix: keep one row." for k, g in
                                   tab[twice].groupby("id", sort=False).groups.items()],
                                source=str(state))
            lvl = pd.to_numeric(tab["dose_level"], errors="coerce").to_numpy(float) - 1
            if "delivered_dose" in tab and dose_values is not None:
                dv = pd.to_numeric(tab["delivered_dose"], errors="coerce").to_numpy(float)
                dvals = np.asarray(dose_values)
                deliv = np.searchsorted(dvals, dv * (1 + 1e-9), side="right") - 1.0
                low = np.flatnonzero(deliv < 0)
                if low.size:
                    raise DataError([f"participant {tab['id'].iloc[i]}: delivered dose "
                                     f"{dv[i]:g} below the lowest dose level {dvals[0]:g}"
                                     for i in low], source=str(state))
                deliv = np.where(np.isnan(dv), lvl, deliv)
            elif "delivered_dose" in tab:
                deliv = pd.to_numeric(tab["delivered_dose"], errors="coerce").to_numpy(float) - 1
                deliv = np.where(np.isnan(deliv), lvl, deliv)
            else:
                deliv = lvl
            pend = (pd.to_numeric(tab["in_window"], errors="coerce").fillna(0).to_numpy()
                    if "in_window" in tab else None)
            dlt = pd.to_numeric(tab["dlt"], errors="coerce").to_numpy(float)
            expo = (pd.to_numeric(tab["exposure"], errors="coerce").to_numpy(float)
                    if "exposure" in tab else None)
            st = TrialState(nd, lvl, np.nan_to_num(dlt, nan=-1.0), deliv, pend,
                            exposure=expo, ids=tab["id"].to_numpy(),
                            current=None if current is None else current - 1)
            sk = _floats(skeleton, "--skeleton", fail) if skeleton else None
            d = make_design(design, nd, target, cohort_size=cohort_size, n_cohorts=n_cohorts,
                            n_earlystop=n_earlystop, convention=convention, model=model,
                            skeleton=sk, dose_exposure=dex)
            dec = d.decide(st)
            p_dlt, p_int, p_dlt_what = _p_dlt(design, d, st)
        except (DataError, ModelSpecError) as exc:
            fail(f"{state}: {exc}")
        obj = {"design": design, "target": target, "n_doses": nd, "decision": dec.to_dict(),
               "n_per_dose": st.n.tolist(), "dlt_per_dose": st.y.tolist(),
               "pending_per_dose": st.n_pending.tolist(),
               "participants_below_assigned_dose": st.n_shortfall,
               "doses": dose_values, "p_dlt_estimate": p_dlt_what,
               "per_dose": _per_dose(nd, dose_values, st, p_dlt, p_int, pred)}
        if vinfo is not None:
            obj["exposure_source"] = str(population if population is not None else ck_params)
            obj["exposure_metric"] = metric
            obj["virtual"] = vinfo
            obj["exposure_limits"] = _limits(cmax_limit, auc_limit)
        if design == "boin":
            from carkinetics.escalation.boin import boin_boundaries
            tab_b = boin_boundaries(target, max(30, int(st.n.max()) if st.n.size else 30))
            table = tab_b.to_frame(cohort_size).astype(object)
            obj["decision_table"] = json.loads(table.where(table.notna(), None)
                                               .to_json(orient="records"))
        _write_json(out, obj)
        nxt = dec.next_dose + 1 if dec.next_dose is not None else None
        typer.echo(f"{dec.action} -> dose level {nxt}: {dec.rule}; wrote {out}")
