"""Run NUTS on a PyMC model: nutpie where installed, else PyMC's own sampler.

:func:`sample` returns the posterior as ArviZ ``InferenceData`` (groups ``posterior`` and
``sample_stats``) with the timings of the compile step and of sampling kept apart.
"""

from __future__ import annotations

import importlib.util
import time
import warnings
from typing import Any

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError

__all__ = ["SAMPLERS", "nutpie_available", "resolve_sampler", "sample"]

SAMPLERS = ("auto", "nutpie", "pymc")


def nutpie_available() -> bool:
    """Whether the optional ``nutpie`` sampler is importable (extra ``carkinetics[bayes]``)."""
    return importlib.util.find_spec("nutpie") is not None


def resolve_sampler(sampler: str) -> str:
    """``"auto"`` -> ``"nutpie"`` when installed, else ``"pymc"``; check the others.

    Raises
    ------
    ModelSpecError
        For an unknown sampler, or ``"nutpie"`` when it is not installed.
    """
    check_option("sampler", sampler, SAMPLERS, exc=ModelSpecError)
    if sampler == "auto":
        return "nutpie" if nutpie_available() else "pymc"
    if sampler == "nutpie" and not nutpie_available():
        raise ModelSpecError("Invalid sampler='nutpie': nutpie is not installed; install the "
                             "extra (pip install 'carkinetics[bayes]') or use sampler='pymc'.")
    return sampler


INITS = ("map", "jitter")


def find_map(model: Any, seed: int = 0) -> tuple[dict[str, Any], float]:
    """Posterior mode on the sampling (unconstrained) scale, by L-BFGS-B.

    Starts from the model's initial point; returns the point (value-variable names and,
    constrained, free-RV names) and the seconds it took.
    """
    import pymc as pm

    t0 = time.perf_counter()
    with model:
        mp = pm.find_MAP(progressbar=False, include_transformed=True, seed=seed)
    names = [v.name for v in model.value_vars] + [v.name for v in model.free_RVs]
    return {k: mp[k] for k in dict.fromkeys(names)}, time.perf_counter() - t0


def sample(model: Any, *, sampler: str = "auto", draws: int = 1000, tune: int = 1000,
           chains: int = 4, seed: int = 0, progressbar: bool = False,
           cores: int | None = None, var_names: list[str] | None = None,
           target_accept: float = 0.8, init: str = "map") -> tuple[Any, dict[str, Any]]:
    """Sample ``model`` with NUTS.

    Parameters
    ----------
    model : pymc.Model
    sampler : {"auto", "nutpie", "pymc"}, default "auto"
    draws, tune, chains : int
        Kept draws and warm-up (tuning) iterations per chain, number of chains.
    seed : int, default 0
        Seed of the sampler.
    progressbar : bool, default False
    cores : int, optional
        Chains run in parallel (default: the sampler's own choice).
    var_names : list of str, optional
        Variables to store (default: the free variables and the deterministics).
    target_accept : float, default 0.8
        Target acceptance rate of the step-size adaptation.
    init : {"map", "jitter"}, default "map"
        ``map``: every chain starts at the posterior mode (:func:`find_map`), without
        jitter; ``jitter``: the sampler's default (the model's initial point with a uniform
        jitter in (-1, 1) on every unconstrained coordinate). See the note in
        :func:`carkinetics.fitting.bayes.fit_bayes` on why ``map`` is the default.

    Returns
    -------
    (InferenceData, dict)
        The posterior and ``{"sampler", "init", "compile_seconds", "init_seconds",
        "sampling_seconds", "wall_seconds"}``: sampling includes warm-up and excludes the
        one-off graph compilation (for PyMC, its recorded ``sampling_time``); init is the
        mode search (its first call also compiles); wall is everything.
    """
    which = resolve_sampler(sampler)
    check_option("init", init, INITS, exc=ModelSpecError)
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if not isinstance(v, int) or v < (0 if name == "tune" else 1):
            raise ModelSpecError(f"Invalid {name}={v!r}; expected a positive integer.")
    names = var_names or ([v.name for v in model.free_RVs]
                          + [v.name for v in model.deterministics])
    # the samplers' own chatter (e.g. "only N samples", step-size notes) is replaced by the
    # diagnostics of carkinetics.fitting.bayes.diagnostics, which warn with our classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start, t_init = find_map(model, seed) if init == "map" else (None, 0.0)
        if which == "nutpie":
            import nutpie

            t0 = time.perf_counter()
            kw: dict[str, Any] = {} if start is None else {
                "initial_points": {v.name: start[v.name] for v in model.value_vars},
                "jitter_rvs": set()}
            compiled = nutpie.compile_pymc_model(model, var_names=names, **kw)
            t1 = time.perf_counter()
            idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                                  progress_bar=progressbar, cores=cores, save_warmup=False,
                                  target_accept=target_accept)
            t2 = time.perf_counter()
        else:
            import pymc as pm

            t0 = time.perf_counter()
            with model:
                # compile the log density and its gradient once, outside the timed loop
                model.compile_logp()
                model.compile_dlogp()
            t1 = time.perf_counter()
            kw = {} if start is None else {
                "initvals": {v.name: start[v.name] for v in model.free_RVs},
                "init": "adapt_diag"}
            with model:
                idata = pm.sample(draws=draws, tune=tune, chains=chains, random_seed=seed,
                                  progressbar=progressbar, cores=cores,
                                  compute_convergence_checks=False, var_names=names,
                                  target_accept=target_accept, **kw)
            t2 = time.perf_counter()
    sampling = float(t2 - t1)
    if which == "pymc":  # PyMC's own measure of its sampling loop (after its compilation)
        sampling = float(idata.posterior.attrs.get("sampling_time", sampling))
    return idata, {"sampler": which, "init": init, "compile_seconds": float(t1 - t0),
                   "init_seconds": float(t_init), "sampling_seconds": sampling,
                   "wall_seconds": float(t2 - t0 + t_init)}

