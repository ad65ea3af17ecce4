"""Run NUTS on a PyMC model: nutpie where installed, else PyMC's own sampler.

:func:`sample` returns the posterior as ArviZ ``InferenceData`` (groups ``posterior`` and
``sample_stats``) with the timings of the compile step and of sampling kept apart.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
import warnings
from typing import Any

import numpy as np

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
MASS_MATRICES = ("low_rank", "diag")


def find_map(model: Any, seed: int = 0, *, maxiter: int = 2000) -> tuple[dict[str, Any], float]:
    """Posterior mode on the sampling (unconstrained) scale, by L-BFGS-B.

    Starts from the model's initial point. The log density and its gradient are compiled
    in pytensor's ``FAST_COMPILE`` mode (no C compilation: a few hundred evaluations do
    not repay it). The result is moved by a tiny seeded jitter (SD 1e-3 on the
    unconstrained scale) so that the sampler's first gradient is not exactly zero.

    Returns
    -------
    (dict, float)
        The point (value-variable names and, on the constrained scale, free-RV names) and
        the seconds it took.
    """
    from pymc.blocking import DictToArrayBijection, RaveledVars

    t0 = time.perf_counter()
    ip = model.initial_point()
    x0 = DictToArrayBijection.map(ip)
    logp = model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(jacobian=True, mode="FAST_COMPILE")

    def point(x: np.ndarray) -> dict[str, Any]:
        return DictToArrayBijection.rmap(RaveledVars(x, x0.point_map_info))

    def logp_grad(x: np.ndarray) -> tuple[float, np.ndarray]:
        p = point(x)
        return float(logp(p)), np.asarray(dlogp(p), dtype=float)

    start = point(_lbfgs(logp_grad, x0.data, seed, maxiter=maxiter))
    out = dict(start)
    out.update(_constrained(model, start))
    return out, time.perf_counter() - t0


def _lbfgs(logp_grad: Any, x0: np.ndarray, seed: int, maxiter: int = 2000) -> np.ndarray:
    """Maximise a log density by L-BFGS-B; return the mode plus a 1e-3 seeded jitter."""
    from scipy import optimize

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = logp_grad(x)
        v = float(v)
        if not np.isfinite(v):
            return 1e300, np.zeros_like(x)
        return -v, -np.asarray(g, dtype=float)

    with np.errstate(all="ignore"):
        res = optimize.minimize(fun, np.asarray(x0, dtype=float), jac=True,
                                method="L-BFGS-B", options={"maxiter": maxiter})
    rng = np.random.default_rng(seed)
    return res.x + 1e-3 * rng.standard_normal(res.x.shape)


def _constrained(model: Any, point: dict[str, Any]) -> dict[str, Any]:
    """Free-RV values (constrained scale) of a value-variable point."""
    out = {}
    for rv in model.free_RVs:
        value = model.rvs_to_values[rv]
        tr = model.rvs_to_transforms.get(rv)
        v = point[value.name]
        if tr is not None:
            v = tr.backward(v, *rv.owner.inputs).eval()
        out[rv.name] = np.asarray(v)
    return out


def sample(model: Any, *, sampler: str = "auto", draws: int = 1000, tune: int = 1000,
           chains: int = 4, seed: int = 0, progressbar: bool = False,
           cores: int | None = None, var_names: list[str] | None = None,
           target_accept: float = 0.8, init: str = "map",
           mass_matrix: str = "low_rank") -> tuple[Any, dict[str, Any]]:
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
    mass_matrix : {"low_rank", "diag"}, default "low_rank"
        nutpie's mass-matrix adaptation (diagonal plus low-rank, or diagonal); PyMC's
        sampler adapts a diagonal one either way.

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
    check_option("mass_matrix", mass_matrix, MASS_MATRICES, exc=ModelSpecError)
    for name, v in (("draws", draws), ("tune", tune), ("chains", chains)):
        if not isinstance(v, int) or v < (0 if name == "tune" else 1):
            raise ModelSpecError(f"Invalid {name}={v!r}; expected a positive integer.")
    names = var_names or ([v.name for v in model.free_RVs]
                          + [v.name for v in model.deterministics])
    t_start = time.perf_counter()
    # the samplers' own chatter (e.g. "only N samples", step-size notes) is replaced by the
    # diagnostics of carkinetics.fitting.bayes.diagnostics, which warn with our classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "nutpie":
            import nutpie

            t0 = time.perf_counter()
            kw: dict[str, Any] = {"jitter_rvs": set()} if init == "map" else {}
            compiled = nutpie.compile_pymc_model(model, var_names=names, **kw)
            t1 = time.perf_counter()
            t_init = 0.0
            if init == "map":
                # the mode from nutpie's own compiled log density and gradient
                x0 = np.asarray(compiled.initial_point_func(seed), dtype=float)
                start = _lbfgs(lambda x: compiled.logp_func(x), x0, seed)
                compiled = dataclasses.replace(compiled,
                                               initial_point_func=lambda _s: start.copy())
                t_init = time.perf_counter() - t1
            t1b = time.perf_counter()
            idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=seed,
                                  progress_bar=progressbar, cores=cores, save_warmup=False,
                                  target_accept=target_accept,
                                  low_rank_modified_mass_matrix=mass_matrix == "low_rank")
            t2 = time.perf_counter()
            t_compile, sampling = t1 - t0, t2 - t1b
        else:
            import pymc as pm

            start, t_init = find_map(model, seed) if init == "map" else (None, 0.0)
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
            # PyMC's own measure of its sampling loop (after its compilation)
            t_compile = t1 - t0
            sampling = float(idata.posterior.attrs.get("sampling_time", t2 - t1))
    return idata, {"mass_matrix": mass_matrix if which == "nutpie" else "diag",
                   "sampler": which, "init": init, "compile_seconds": float(t_compile),
                   "init_seconds": float(t_init), "sampling_seconds": float(sampling),
                   "wall_seconds": float(time.perf_counter() - t_start)}

