"""``carkinetics demo``: the pipeline on the embedded synthetic trial."""

from __future__ import annotations

import os
from pathlib import Path

from tqdm.auto import tqdm

from carkinetics._atomic import save_figure, write_table

__all__ = ["run_demo"]


def run_demo(out: str | os.PathLike[str], *, seed: int | None = None,
             progress: bool = True) -> dict[str, Path]:
    """Simulate the synthetic trial, validate it, and write figures and tables.

    Parameters
    ----------
    out : path
        Output folder (created).
    seed : int, optional
        Root seed (default: the embedded trial's seed).
    progress : bool, default True
        Show a progress bar.

    Returns
    -------
    dict of str to Path
        What was written, by name.
    """
    from carkinetics.data import validate
    from carkinetics.plots import plot_ck_by_dose
    from carkinetics.simulate import DEFAULT_SEED, simulate_trial
    from carkinetics.summary import observed_exposure, summarize_by_dose

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed = DEFAULT_SEED if seed is None else seed
    written: dict[str, Path] = {}
    steps = ["simulate", "validate", "figure", "summary"]
    with tqdm(total=len(steps), desc="carkinetics demo", disable=not progress,
              file=None) as bar:
        bar.set_postfix_str("simulate")
        trial = simulate_trial(seed)
        written["data"], written["truth"] = trial.write(out / "trial.csv")
        bar.update()

        bar.set_postfix_str("validate")
        data = validate(trial.data, source=str(written["data"]))
        bar.update()

        bar.set_postfix_str("figure")
        fig = plot_ck_by_dose(data)
        written["ck_by_dose_figure"] = out / "ck_by_dose.png"
        save_figure(fig, written["ck_by_dose_figure"])
        bar.update()

        bar.set_postfix_str("summary")
        exposure = observed_exposure(data)
        written["exposure_table"] = out / "exposure_by_participant.csv"
        write_table(exposure, written["exposure_table"])
        written["dose_summary_table"] = out / "exposure_by_dose.csv"
        write_table(summarize_by_dose(exposure), written["dose_summary_table"])
        bar.update()
    return written
