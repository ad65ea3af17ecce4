"""``carkinetics boundaries | oc | escalate``: dose-escalation designs from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["register"]

_DESIGNS = ("3+3", "boin", "crm", "exposure")


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
        workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
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
    ) -> None:
        """Operating characteristics of a design for given true DLT probabilities."""
        from carkinetics.escalation.designs import make_design
        from carkinetics.escalation.oc import simulate_oc
        from carkinetics.exceptions import ModelSpecError

        p = _floats(true_tox, "--true-tox", fail)
        sk = _floats(skeleton, "--skeleton", fail) if skeleton else None
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
                            titration=titration, bound_mtd=bound_mtd)
            if exact:
                if not hasattr(d, "exact_oc"):
                    fail(f"--exact is not available for design {design!r}.")
                res = d.exact_oc(p)
            else:
                res = simulate_oc(d, p, n_trials=n_trials, seed=seed, workers=workers,
                                  progress=False)
        except ModelSpecError as exc:
            fail(str(exc))
        obj = res.to_dict()
        obj.update({"target": target, "seed": seed, "workers": workers,
                    "cohort_size": d.cohort_size, "n_cohorts": d.n_cohorts})
        if design == "boin":
            obj["n_earlystop"] = n_earlystop
        if design == "3+3":
            obj["convention"] = d.convention
        _write_json(out, obj)
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
    ) -> None:
        """Recommend the next dose from the current trial state."""
        import numpy as np
        import pandas as pd

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
        try:
            check_target(target)
            tab = pd.read_csv(state)
            missing = [c for c in ("id", "dose_level", "dlt") if c not in tab]
            if missing:
                raise DataError(f"missing column(s) {missing}; expected id, dose_level, "
                                "delivered_dose, dlt, in_window.", source=str(state))
            lvl = pd.to_numeric(tab["dose_level"], errors="coerce").to_numpy(float) - 1
            if "delivered_dose" in tab and dose_values is not None:
                dv = pd.to_numeric(tab["delivered_dose"], errors="coerce").to_numpy(float)
                dvals = np.asarray(dose_values)
                deliv = np.searchsorted(dvals * (1 + 1e-9), dv, side="right") - 1.0
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
            st = TrialState(nd, lvl, np.nan_to_num(dlt, nan=-1.0), deliv, pend,
                            ids=tab["id"].to_numpy(),
                            current=None if current is None else current - 1)
            sk = _floats(skeleton, "--skeleton", fail) if skeleton else None
            d = make_design(design, nd, target, cohort_size=cohort_size, n_cohorts=n_cohorts,
                            n_earlystop=n_earlystop, convention=convention, model=model,
                            skeleton=sk)
            dec = d.decide(st)
        except (DataError, ModelSpecError) as exc:
            fail(f"{state}: {exc}")
        obj = {"design": design, "target": target, "n_doses": nd, "decision": dec.to_dict(),
               "n_per_dose": st.n.tolist(), "dlt_per_dose": st.y.tolist(),
               "pending_per_dose": st.n_pending.tolist(),
               "participants_below_assigned_dose": st.n_shortfall}
        if design == "boin":
            from carkinetics.escalation.boin import boin_boundaries
            tab_b = boin_boundaries(target, max(30, int(st.n.max()) if st.n.size else 30))
            table = tab_b.to_frame(cohort_size).astype(object)
            obj["decision_table"] = json.loads(table.where(table.notna(), None)
                                               .to_json(orient="records"))
        _write_json(out, obj)
        nxt = dec.next_dose + 1 if dec.next_dose is not None else None
        typer.echo(f"{dec.action} -> dose level {nxt}: {dec.rule}; wrote {out}")
