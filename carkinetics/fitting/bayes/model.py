"""Compile a :class:`~carkinetics.fitting.population.spec.PopulationSpec` to a PyMC model.

The hierarchical model is the specification's own (the same functions FOCE-I evaluates in
numpy, here in the pytensor namespace of :func:`carkinetics.models._xp.pytensor_namespace`)::

    theta_t ~ Normal(prior)                       fixed effects on the transform scale
    omega_k ~ HalfNormal(prior)                   random-effect SDs (transform scale)
    z_ik    ~ Normal(0, 1)                        non-centred random effects
    eta_ik  = omega_k z_ik
    sigma   ~ HalfNormal(prior)                   residual parameters, one per assay
    log f_j = spec.log_pred(theta_t, eta, internal=True)[j]
    log p(y | ...) = sum_j loglik_obs_pt(y_j | f_j, sigma_j, cens_j)   (M3 etc.)

with the censored likelihood entering as a ``pm.Potential`` (the pytensor twin of
:func:`carkinetics.observation.loglik_obs`, tested equal to it). Omega is diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from carkinetics._validation import check_option
from carkinetics.exceptions import ModelSpecError
from carkinetics.fitting.bayes.loglik import loglik_obs_pt
from carkinetics.fitting.bayes.priors import PriorSet
from carkinetics.observation import m6_first_mask

__all__ = ["CompiledSpec", "PARAMETERIZATIONS", "build_model", "m6_mask"]

PARAMETERIZATIONS = ("noncentred", "centred")


@dataclass(frozen=True, eq=False)
class CompiledSpec:
    """A PyMC model built from a specification bound to data."""

    model: Any
    spec: Any
    design: Any
    priors: PriorSet


def m6_mask(design: Any) -> np.ndarray:
    """First-BLQ-of-run mask of a design's rows (per participant and endpoint)."""
    r = design.rows
    return m6_first_mask(r["id"].to_numpy(), r["time"].to_numpy(float), design.cens,
                         r["endpoint"].to_numpy() if "endpoint" in r.columns else None)


def _loglik_graph(spec: Any, design: Any, theta: dict[str, Any], eta: Any,
                  sigma: dict[str, Any]) -> Any:
    """Per-row log-likelihood tensor of the specification (pytensor)."""
    from carkinetics.models._xp import pytensor_namespace

    xp = pytensor_namespace()
    logp = spec.log_pred(theta, eta, design, xp=xp, internal=True)
    sig = spec.row_sigma(sigma, design)
    sig_arg = sig[0] if len(sig) == 1 else tuple(sig)
    em = spec.error
    kw: dict[str, Any] = {"log_pred": logp} if em.log_scale else {"pred": xp.exp(logp)}
    return loglik_obs_pt(
        design.dv, design.cens, error=em, sigma=sig_arg, lloq=design.lloq, uloq=design.uloq,
        method=spec.censoring, m6_first=m6_mask(design) if spec.censoring == "m6" else None,
        **kw)


def _effect_shift(design: Any, theta_names: list[str]) -> np.ndarray | None:
    """Matrix M with ``M[p, e] = mean regressor of effect e`` for effect e acting on p."""
    shift = np.zeros((len(theta_names), len(theta_names)))
    for e, target in design.effect_target.items():
        m = float(np.mean(design.effects[e]))
        if m != 0.0:
            shift[theta_names.index(target), theta_names.index(e)] = m
    return shift if np.any(shift) else None


def build_model(spec: Any, design: Any, priors: PriorSet, *,
                parameterization: str = "noncentred") -> CompiledSpec:
    """Build the PyMC model (see the module docstring).

    Parameters
    ----------
    spec : PopulationSpec
    design : PopulationDesign
        ``spec`` bound to the data.
    priors : PriorSet
        Priors by parameter name.
    parameterization : {"noncentred", "centred"}, default "noncentred"
        ``noncentred``: ``z ~ N(0, 1)``, ``eta = omega z``; ``centred``: the individual
        parameters on the transform scale ``phi ~ N(typical_i, omega)`` are sampled (free
        variable ``phi``, dims ``id``, ``eta_par``) and ``eta = phi - typical_i``. Same
        posterior; the sampling geometry differs (centred suits participants whose own data
        pin their parameters down, non-centred sparse data).

    Returns
    -------
    CompiledSpec
        Free variables ``theta_t`` (dims ``theta_par``; when covariate regressors have a
        non-zero mean, ``theta_c`` with its centred effects and ``theta_t`` a
        deterministic), ``omega`` (``eta_par``), ``z`` (``id``, ``eta_par``) and ``sigma``
        (``sigma_par``); the likelihood is the potential ``loglik``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    check_option("parameterization", parameterization, PARAMETERIZATIONS, exc=ModelSpecError)
    theta_names = list(design.theta_names)
    eta_names = list(design.eta_names)
    sigma_names = list(design.sigma_names)
    coords = {"theta_par": theta_names, "eta_par": eta_names,
              "id": [str(i) for i in design.ids], "sigma_par": sigma_names}
    th = [priors.theta[n] for n in theta_names]
    om = [priors.omega[n] for n in eta_names]
    sg = [priors.sigma[n] for n in sigma_names]
    with pm.Model(coords=coords) as model:
        locs, scales = np.array([p.loc for p in th]), np.array([p.scale for p in th])
        shift = _effect_shift(design, theta_names)
        if shift is None:
            theta_t = pm.Normal("theta_t", mu=locs, sigma=scales, dims="theta_par")
        else:
            # covariate effects centred for sampling: theta_c[p] is the typical value at the
            # participants' mean regressor, theta_t = (I - M) theta_c (unit Jacobian), and the
            # prior stays the prior of theta_t (same posterior, less correlated geometry)
            init = np.linalg.solve(np.eye(len(locs)) - shift, locs)
            theta_c = pm.Flat("theta_c", dims="theta_par", initval=init)
            theta_t = pm.Deterministic("theta_t", theta_c - pt.dot(shift, theta_c),
                                       dims="theta_par")
            pm.Potential("theta_prior", pm.logp(pm.Normal.dist(locs, scales), theta_t).sum())
        sigma = pm.HalfNormal("sigma", sigma=np.array([p.scale for p in sg]), dims="sigma_par")
        theta = {n: theta_t[j] for j, n in enumerate(theta_names)}
        if eta_names and parameterization == "centred":
            from carkinetics.models._xp import pytensor_namespace

            omega = pm.HalfNormal("omega", sigma=np.array([p.scale for p in om]), dims="eta_par")
            typ = spec.individual_internal(theta, None, design, xp=pytensor_namespace(),
                                           internal=True)
            centre = pt.stack([typ[n] for n in eta_names], axis=-1)  # (n_ind, k)
            phi = pm.Normal("phi", centre, omega, dims=("id", "eta_par"))
            eta = pm.Deterministic("eta", phi - centre, dims=("id", "eta_par"))
        elif eta_names:
            omega = pm.HalfNormal("omega", sigma=np.array([p.scale for p in om]), dims="eta_par")
            z = pm.Normal("z", 0.0, 1.0, dims=("id", "eta_par"))
            eta = z * omega
        else:
            eta = None
        ll = _loglik_graph(spec, design, theta,
                           eta, {n: sigma[j] for j, n in enumerate(sigma_names)})
        pm.Potential("loglik", ll.sum())
    return CompiledSpec(model=model, spec=spec, design=design, priors=priors)
