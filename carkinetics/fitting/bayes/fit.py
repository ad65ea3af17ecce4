"""``fit_bayes``: the population specification fitted by hierarchical Bayes (PyMC/ArviZ).

The model is :func:`carkinetics.fitting.bayes.model.build_model` (non-centred random effects,
the shared censored likelihood); the sampler nutpie where installed, else PyMC's NUTS. The
result holds ArviZ ``InferenceData`` with the groups ``posterior`` (the sampled variables
plus ``theta`` on the natural scale and the individual parameters ``individual``),
``sample_stats``, ``posterior_predictive`` (``dv`` and ``cens``: replicated data censored
at each row's own limits, as the assay would report them), ``log_likelihood`` (``dv``, per
row, from :func:`carkinetics.observation.loglik_obs`), ``observed_data`` and
``constant_data`` (``time``, ``lloq``, ``uloq``, ``cens``, ``id``, ``endpoint``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError
from carkinetics.fitting.bayes.diagnostics import convergence, prior_conflict, warn_convergence
from carkinetics.fitting.bayes.model import PARAMETERIZATIONS, build_model, m6_mask
from carkinetics.fitting.bayes.priors import PriorSet, resolve_priors
from carkinetics.fitting.bayes.sampling import resolve_sampler, sample
from carkinetics.models._xp import NUMPY
from carkinetics.observation import loglik_obs

__all__ = ["BayesResult", "fit_bayes", "posterior_draws"]

RESULT_COLUMNS = ("parameter", "estimate", "se", "rse", "ci_lower", "ci_upper")


@dataclass(frozen=True)
class BayesResult:
    """Result of :func:`fit_bayes` (frozen).

    Attributes
    ----------
    idata : arviz.InferenceData
        Posterior, sample statistics, posterior predictive, log-likelihood, observed and
        constant data (see the module docstring).
    parameters : DataFrame
        Population parameters (see :meth:`to_frame`).
    individual : DataFrame
        Posterior medians of the individual parameters (see :meth:`individual_frame`).
    diagnostics : DataFrame
        R-hat and bulk/tail ESS of every sampled population parameter.
    prior_check : DataFrame
        Prior-data conflict table (:func:`~carkinetics.fitting.bayes.diagnostics.
        prior_conflict`).
    summary : dict
        JSON-ready: method, sampler, censoring, draws, chains, ``r_hat_max``,
        ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, timings, warnings, notes.
    spec, design, priors
        The specification, its binding to the data and the priors used.
    ci : float
        Credible-interval mass of ``ci_lower``/``ci_upper``.
    """

    idata: Any
    parameters: pd.DataFrame
    individual: pd.DataFrame
    diagnostics: pd.DataFrame
    prior_check: pd.DataFrame
    summary: dict[str, Any]
    spec: Any = field(repr=False)
    design: Any = field(repr=False)
    priors: PriorSet = field(repr=False)
    ci: float = 0.9

    def to_frame(self) -> pd.DataFrame:
        """Population parameters: ``parameter, estimate, se, rse, ci_lower, ci_upper``.

        ``estimate`` is the posterior median, ``se`` the posterior SD, ``rse`` 100 se /
        |estimate| (%), and the interval equal-tailed with mass :attr:`ci` (90 % by
        default). Fixed effects on the natural scale (kinetic typical values at the
        covariates' reference values, covariate effects, assay log scales), random effects
        as variances ``omega(<name>)`` on the transform scale (as FOCE-I reports them), and
        the residual sigmas.
        """
        return self.parameters.copy()

    def individual_frame(self) -> pd.DataFrame:
        """Posterior medians per participant.

        Columns ``id``, ``eta_<name>`` and the individual kinetic parameters (natural scale).
        """
        return self.individual.copy()


def _interval(d: np.ndarray, ci: float) -> tuple[float, float, float, float, float]:
    med = float(np.median(d))
    sd = float(np.std(d, ddof=1))
    lo, hi = np.quantile(d, [(1 - ci) / 2, (1 + ci) / 2])
    rse = 100.0 * sd / abs(med) if med != 0 else float("nan")
    return med, sd, rse, float(lo), float(hi)


def posterior_draws(idata: Any, design: Any) -> dict[str, np.ndarray]:
    """Flattened draws (``B = chains x draws``) of the sampled variables.

    Returns
    -------
    dict
        ``theta_t`` (B, n_theta), ``omega`` (B, k), ``eta`` (B, n_ind, k), ``sigma``
        (B, n_sigma).
    """
    post = idata.posterior
    th = post["theta_t"].transpose("chain", "draw", "theta_par").values
    b = th.shape[0] * th.shape[1]
    out = {"theta_t": th.reshape(b, -1),
           "sigma": post["sigma"].transpose("chain", "draw", "sigma_par").values.reshape(b, -1)}
    k = len(design.eta_names)
    if k:
        om = post["omega"].transpose("chain", "draw", "eta_par").values.reshape(b, k)
        if "z" in post:
            z = post["z"].transpose("chain", "draw", "id", "eta_par").values.reshape(b, -1, k)
            eta = z * om[:, None, :]
        else:  # centred: eta stored as a deterministic
            eta = post["eta"].transpose("chain", "draw", "id", "eta_par").values.reshape(b, -1, k)
        out["omega"], out["eta"] = om, eta
    else:
        out["omega"], out["eta"] = np.zeros((b, 0)), None
    return out


def _natural_theta(design: Any, th: np.ndarray) -> np.ndarray:
    out = th.copy()
    for j, s in enumerate(design.theta_specs):
        if s.transform == "log":
            out[:, j] = np.exp(th[:, j])
        elif s.transform == "logit":
            out[:, j] = 1.0 / (1.0 + np.exp(-th[:, j]))
    return out


def _as_spec(spec: Any) -> Any:
    from carkinetics.fitting.population.spec import PopulationSpec

    if isinstance(spec, PopulationSpec):
        return spec
    if isinstance(spec, str) or spec is None:
        return PopulationSpec(model=spec or "piecewise")
    raise ModelSpecError(f"Invalid spec={spec!r}; expected a PopulationSpec or a model name.")


def _as_data(data: Any) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, str | os.PathLike):
        from carkinetics.data import read_data

        return read_data(data)
    raise ModelSpecError(f"Invalid data of type {type(data).__name__}; expected a DataFrame "
                         "in the long format or a path to a data file.")


def fit_bayes(spec: Any, data: Any, *, draws: int = 1000, tune: int = 1000, chains: int = 4,
              seed: int = 0, sampler: str = "auto", priors: Any = None,
              progressbar: bool = False, target_accept: float = 0.8, ci: float = 0.9,
              cores: int | None = None, parameterization: str = "noncentred",
              init: str = "map", mass_matrix: str = "low_rank") -> BayesResult:
    """Fit a population specification by hierarchical Bayes (NUTS).

    Parameters
    ----------
    spec : PopulationSpec or str
        The population model (:class:`~carkinetics.fitting.population.spec.PopulationSpec`)
        or a kinetic model name (its default specification).
    data : DataFrame or path
        Long-format data table (or a file :func:`carkinetics.data.read_data` reads).
    draws, tune : int, default 1000
        Kept draws and warm-up iterations per chain.
    chains : int, default 4
        Number of chains.
    seed : int, default 0
        Root seed: the sampler's seed and (spawned from it) the posterior-predictive stream.
    sampler : {"auto", "nutpie", "pymc"}, default "auto"
        ``auto`` uses nutpie when installed (it is several times faster per effective
        sample; see benchmarks/README.md), else PyMC's NUTS.
    priors : None, str, ModelCard, PriorSet or mapping of str to Prior, optional
        ``None``: weakly informative defaults; a model-card id (e.g. ``"stein_2019"``) or
        card: informative priors from its published estimates; a mapping overrides
        single priors (see :func:`carkinetics.fitting.bayes.priors.resolve_priors`).
    progressbar : bool, default False
        Show the sampler's progress bar.
    target_accept : float, default 0.8
        NUTS target acceptance rate.
    ci : float, default 0.9
        Mass of the equal-tailed credible intervals of :meth:`BayesResult.to_frame`.
    cores : int, optional
        Chains run in parallel (the sampler's default otherwise).
    parameterization : {"noncentred", "centred"}, default "noncentred"
        Random effects sampled as ``z ~ N(0, 1)``, ``eta = omega z`` (default), or the
        individual parameters themselves (see :func:`~carkinetics.fitting.bayes.model.
        build_model`); the posterior is the same.
    init : {"map", "jitter"}, default "map"
        Where the chains start: all at the posterior mode (default), or at the model's
        initial point with the sampler's random jitter.
    mass_matrix : {"low_rank", "diag"}, default "low_rank"
        nutpie's mass-matrix adaptation: diagonal plus a low-rank correction from the
        gradients (captures the strong posterior correlations of the typical values, e.g.
        alpha-fb-beta and cmax-dose_exp; 3-5x the effective samples per second of the
        diagonal one on the synthetic trial), or diagonal. PyMC's sampler always adapts a
        diagonal one.

    Returns
    -------
    BayesResult

    Raises
    ------
    ModelSpecError
        Bad arguments (sampler, priors, draws ...).
    DataError
        Data the specification cannot use (see ``PopulationSpec.design``).

    Notes
    -----
    Why the chains start at the posterior mode: with sparse early sampling the piecewise
    model has a secondary mode in which some participants peak early (tmax ~ 3 d) and
    contract very fast (alpha ~ 10 /d), with large omega(tmax) and omega(alpha). Started
    from the prior's centre with the samplers' usual jitter, one of two chains fell into it
    in 6 of 12 simulated trials of the protocol (benchmarks/simest_bayes.py; R-hat 1.8);
    started at the mode, none did. Chains started at one point make R-hat less sensitive
    to such modes; ``init="jitter"`` restores dispersed starts.

    Warns
    -----
    ConvergenceWarning
        R-hat > 1.01, bulk or tail ESS < 100 per chain, or divergent transitions.
    PriorConflictWarning
        A posterior median in the outer 1 % of its prior.
    """
    if not (isinstance(ci, float | int) and 0 < ci < 1):
        raise ModelSpecError(f"Invalid ci={ci!r}; expected a probability in (0, 1).")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ModelSpecError(f"Invalid seed={seed!r}; expected a non-negative integer.")
    resolve_sampler(sampler)
    check_option("parameterization", parameterization, PARAMETERIZATIONS, exc=ModelSpecError)
    t_start = time.perf_counter()
    spec = _as_spec(spec)
    design = spec.design(_as_data(data))
    priorset = resolve_priors(design, priors)
    t0 = time.perf_counter()
    built = build_model(spec, design, priorset, parameterization=parameterization)
    t_build = time.perf_counter() - t0
    ss_sampler, ss_ppc = np.random.SeedSequence(int(seed)).spawn(2)
    sampler_seed = int(ss_sampler.generate_state(1)[0])
    idata, timing = sample(built.model, sampler=sampler, draws=draws, tune=tune, chains=chains,
                           seed=sampler_seed, progressbar=progressbar, cores=cores,
                           target_accept=target_accept, init=init, mass_matrix=mass_matrix)
    t0 = time.perf_counter()
    indiv = _complete_idata(idata, spec, design, np.random.default_rng(ss_ppc))
    t_post = time.perf_counter() - t0
    conv = convergence(idata)
    check = prior_conflict(idata, priorset, warn=True)
    warn_convergence(conv["warnings"])
    params = _population_table(idata, design, ci)
    msgs = list(conv["warnings"])
    conflict = check.loc[check["conflict"], "parameter"].tolist()
    if conflict:
        msgs.append(f"prior-data conflict for {conflict} (posterior median in the outer 1 % "
                    "of the prior)")
    summary = {
        "method": "bayes",
        "sampler": timing["sampler"],
        "censoring": spec.censoring,
        "model": spec.model.name,
        "priors": priorset.label,
        "parameterization": parameterization,
        "draws": draws, "tune": tune, "chains": chains, "seed": int(seed),
        "n_obs": int(design.n_rows), "n_individuals": int(design.n_ind),
        "n_blq": int(np.sum(design.cens == 1)),
        "r_hat_max": conv["r_hat_max"], "ess_bulk_min": conv["ess_bulk_min"],
        "ess_tail_min": conv["ess_tail_min"], "divergences": conv["divergences"],
        "max_treedepth_hits": conv["max_treedepth_hits"],
        "converged": not conv["warnings"],
        "prior_conflict": conflict,
        "prior_dominated": check.loc[check["prior_dominated"], "parameter"].tolist(),
        "init": init,
        "timings": {"build_seconds": t_build, "compile_seconds": timing["compile_seconds"],
                    "init_seconds": timing["init_seconds"],
                    "sampling_seconds": timing["sampling_seconds"],
                    "postprocess_seconds": t_post,
                    "total_seconds": time.perf_counter() - t_start},
        "warnings": msgs,
        "notes": list(design.notes),
    }
    return BayesResult(idata=idata, parameters=params, individual=indiv,
                       diagnostics=conv["table"], prior_check=check, summary=summary,
                       spec=spec, design=design, priors=priorset, ci=float(ci))


def _population_table(idata: Any, design: Any, ci: float) -> pd.DataFrame:
    post = idata.posterior
    rows = []
    th = post["theta"].values.reshape(-1, len(design.theta_names))
    for j, n in enumerate(design.theta_names):
        rows.append((n, *_interval(th[:, j], ci)))
    if "omega" in post:
        om = post["omega"].values.reshape(-1, len(design.eta_names))
        for j, n in enumerate(design.eta_names):
            rows.append((f"omega({n})", *_interval(om[:, j] ** 2, ci)))
    sg = post["sigma"].values.reshape(-1, len(design.sigma_names))
    for j, n in enumerate(design.sigma_names):
        rows.append((n, *_interval(sg[:, j], ci)))
    return pd.DataFrame(rows, columns=list(RESULT_COLUMNS))


def _complete_idata(idata: Any, spec: Any, design: Any, rng: np.random.Generator
                    ) -> pd.DataFrame:
    """Add natural-scale parameters, posterior predictive, log-likelihood and data groups."""
    import arviz as az
    import xarray as xr

    post = idata.posterior
    n_chain, n_draw = int(post.sizes["chain"]), int(post.sizes["draw"])
    dr = posterior_draws(idata, design)
    b = n_chain * n_draw
    theta = {n: dr["theta_t"][:, j:j + 1] for j, n in enumerate(design.theta_names)}
    nat_theta = _natural_theta(design, dr["theta_t"])
    params = spec.individual(theta, dr["eta"], design, xp=NUMPY, internal=True)
    kin = list(spec.kinetic_names)
    sigma = {n: dr["sigma"][:, j:j + 1] for j, n in enumerate(design.sigma_names)}
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        logp = spec.log_pred(theta, dr["eta"], design, xp=NUMPY, internal=True, params=params)
    logp = np.broadcast_to(logp, (b, design.n_rows))
    sig_rows = [np.broadcast_to(s, (b, design.n_rows)) for s in spec.row_sigma(sigma, design)]
    sig_arg = sig_rows[0] if len(sig_rows) == 1 else tuple(sig_rows)
    em = spec.error
    with np.errstate(under="ignore"):
        pred = np.exp(logp)
    ll = loglik_obs(design.dv, pred, design.cens, error=em, sigma=sig_arg, lloq=design.lloq,
                    uloq=design.uloq, method=spec.censoring,
                    m6_first=m6_mask(design) if spec.censoring == "m6" else None, check=False)
    mean, sd = em.moments(pred, sig_arg)
    if em.log_scale:
        mean = logp
    with np.errstate(over="ignore", invalid="ignore"):
        y = em.untransform(mean + sd * rng.standard_normal(mean.shape))
    lq = np.where(np.isfinite(design.lloq), design.lloq, -np.inf)
    uq = np.where(np.isfinite(design.uloq), design.uloq, np.inf)
    cens_rep = np.where(y < lq, 1, np.where(y > uq, -1, 0)).astype(np.int8)
    y_rep = np.where(cens_rep == 1, lq, np.where(cens_rep == -1, uq, y))

    def cd(x: np.ndarray, *extra: int) -> np.ndarray:
        return x.reshape(n_chain, n_draw, *extra)

    ids = [str(i) for i in design.ids]
    obs = np.arange(design.n_rows)
    # natural-scale typical values and individual parameters beside the sampled variables
    post["theta"] = xr.DataArray(cd(nat_theta, nat_theta.shape[1]),
                                 dims=("chain", "draw", "theta_par"),
                                 coords={"theta_par": list(design.theta_names)})
    ind = np.stack([np.broadcast_to(params[k], (b, design.n_ind)) for k in kin], axis=-1)
    post["individual"] = xr.DataArray(cd(ind, design.n_ind, len(kin)),
                                      dims=("chain", "draw", "id", "kinetic"),
                                      coords={"id": ids, "kinetic": kin})
    rows = design.rows
    extra = az.from_dict(
        posterior_predictive={"dv": cd(y_rep, design.n_rows), "cens": cd(cens_rep,
                                                                         design.n_rows)},
        observed_data={"dv": design.dv, "cens": design.cens.astype(np.int8)},
        constant_data={
            "time": design.t, "lloq": design.lloq, "uloq": design.uloq,
            "cens": design.cens.astype(np.int8),
            "id": np.asarray([str(i) for i in rows["id"]], dtype=str),
            "endpoint": np.asarray(rows["endpoint"].astype(str), dtype=str),
        },
        coords={"obs": obs},
        dims={"dv": ["obs"], "cens": ["obs"], "obs": ["obs"], "time": ["obs"],
              "lloq": ["obs"], "uloq": ["obs"], "id": ["obs"], "endpoint": ["obs"]},
    )
    idata.extend(extra)
    idata.add_groups(log_likelihood=xr.Dataset(
        {"dv": (("chain", "draw", "obs"), cd(ll, design.n_rows))},
        coords={"chain": post["chain"].values, "draw": post["draw"].values, "obs": obs}))
    idata.constant_data.attrs["censoring"] = spec.censoring
    idata.constant_data.attrs["cens_codes"] = "0 quantified, 1 below LLOQ, -1 above ULOQ"

    med = {f"eta_{n}": np.median(dr["eta"][:, :, j], axis=0)
           for j, n in enumerate(design.eta_names)} if dr["eta"] is not None else {}
    med.update({k: np.median(np.broadcast_to(params[k], (b, design.n_ind)), axis=0)
                for k in kin})
    return pd.DataFrame({"id": design.ids, **med})
