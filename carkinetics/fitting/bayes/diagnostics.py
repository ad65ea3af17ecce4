"""Convergence diagnostics and the prior-data conflict check of a Bayesian fit.

Convergence (Vehtari et al. 2021, Bayesian Analysis 16:667): the rank-normalised split
R-hat and the bulk and tail effective sample sizes of every sampled population parameter
(``theta_t``, ``omega``, ``sigma``), and the number of divergent transitions. A
:class:`~carkinetics.exceptions.ConvergenceWarning` is issued when max R-hat > 1.01, min
bulk or tail ESS < 100 per chain, or any transition diverged.

Prior-data conflict (:func:`prior_conflict`), per population parameter on its sampling
scale (transform scale for fixed effects, SD for omega and sigma):

* ``prior_tail``: prior probability of a value at least as extreme as the posterior median
  (two-sided for normal priors, upper tail for half-normal priors). A posterior median in
  the outer 1 % of its prior (``prior_tail < 0.01``) means the data pull the parameter where
  the prior said it should almost never be: the prior and the data disagree (Evans & Moshonov
  2006 check the same idea with the prior predictive). Flagged as ``conflict`` and warned
  with :class:`PriorConflictWarning`.
* ``sd_ratio``: posterior SD / prior SD. Near 1 the data say little about the parameter and
  its posterior is mostly prior (flagged ``prior_dominated`` when > 0.9; recorded, not
  warned: with informative priors that is intended).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from carkinetics.exceptions import ConvergenceWarning, DataWarning
from carkinetics.fitting.bayes.priors import PriorSet

__all__ = ["PriorConflictWarning", "convergence", "prior_conflict", "POPULATION_VARS"]

POPULATION_VARS = ("theta_t", "omega", "sigma")
RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
CONFLICT_TAIL = 0.01
PRIOR_DOMINATED = 0.9


class PriorConflictWarning(DataWarning):
    """The posterior of a parameter lies in the far tail of its prior."""


def convergence(idata: Any) -> dict[str, Any]:
    """R-hat, ESS and divergences of the population parameters.

    Returns
    -------
    dict
        ``r_hat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``divergences``, ``n_chains``,
        ``n_draws``, ``table`` (DataFrame: parameter, r_hat, ess_bulk, ess_tail) and
        ``warnings`` (list of str).
    """
    import arviz as az

    post = idata.posterior
    names = [v for v in POPULATION_VARS if v in post]
    n_chains, n_draws = int(post.sizes["chain"]), int(post.sizes["draw"])
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # R-hat of 1-chain runs etc.
        rhat = az.rhat(post[names])
        bulk = az.ess(post[names], method="bulk")
        tail = az.ess(post[names], method="tail")
    for v in names:
        r, b, t = (np.ravel(x[v].values) for x in (rhat, bulk, tail))
        labels = _labels(post[v])
        rows += [(lab, float(ri), float(bi), float(ti))
                 for lab, ri, bi, ti in zip(labels, r, b, t, strict=True)]
    table = pd.DataFrame(rows, columns=["parameter", "r_hat", "ess_bulk", "ess_tail"])
    stats = idata.sample_stats
    div = int(np.asarray(stats["diverging"]).sum()) if "diverging" in stats else 0
    depth = None
    for key in ("reached_max_treedepth", "maxdepth_reached"):
        if key in stats:
            depth = int(np.asarray(stats[key]).sum())
    out = {
        "r_hat_max": float(np.nanmax(table["r_hat"])) if n_chains > 1 else float("nan"),
        "ess_bulk_min": float(np.nanmin(table["ess_bulk"])),
        "ess_tail_min": float(np.nanmin(table["ess_tail"])),
        "divergences": div,
        "max_treedepth_hits": depth,
        "n_chains": n_chains,
        "n_draws": n_draws,
        "table": table,
    }
    msgs = []
    if n_chains > 1 and not out["r_hat_max"] <= RHAT_MAX:
        worst = table.loc[table["r_hat"].idxmax(), "parameter"]
        msgs.append(f"max R-hat {out['r_hat_max']:.3f} > {RHAT_MAX} ({worst}): chains have "
                    "not mixed; run longer chains.")
    need = ESS_PER_CHAIN * n_chains
    for kind in ("bulk", "tail"):
        v = out[f"ess_{kind}_min"]
        if not v >= need:
            worst = table.loc[table[f"ess_{kind}"].idxmin(), "parameter"]
            msgs.append(f"min {kind} ESS {v:.0f} < {need} (100 per chain; {worst}): "
                        "intervals are unreliable; run more draws.")
    if div:
        msgs.append(f"{div} divergent transition(s) after warm-up: the posterior may be "
                    "biased; raise target_accept or reparameterise.")
    out["warnings"] = msgs
    return out


def _labels(da: Any) -> list[str]:
    dims = [d for d in da.dims if d not in ("chain", "draw")]
    if not dims:
        return [da.name]
    idx = pd.MultiIndex.from_product([da.coords[d].values for d in dims]) if len(dims) > 1 \
        else da.coords[dims[0]].values
    return [f"{da.name}[{','.join(map(str, i)) if isinstance(i, tuple) else i}]" for i in idx]


def _tail(kind: str, loc: float, scale: float, x: float) -> float:
    if kind == "normal":
        z = abs(x - loc) / scale
        return float(min(1.0, 2.0 * math.exp(log_ndtr(-z))))
    return float(min(1.0, 2.0 * math.exp(log_ndtr(-abs(x) / scale))))


def prior_conflict(idata: Any, priors: PriorSet, *, warn: bool = True) -> pd.DataFrame:
    """Per-parameter prior-data conflict table (see the module docstring).

    Parameters
    ----------
    idata : InferenceData
        Posterior with ``theta_t``, ``omega`` and ``sigma`` (dims ``theta_par``, ``eta_par``,
        ``sigma_par``).
    priors : PriorSet
        The priors used.
    warn : bool, default True
        Issue a :class:`PriorConflictWarning` naming the conflicting parameters.

    Returns
    -------
    DataFrame
        ``group, parameter, prior, prior_loc, prior_scale, post_median, post_sd,
        prior_tail, sd_ratio, conflict, prior_dominated`` (sampling scale).
    """
    post = idata.posterior
    rows = []
    for group, var, dim in (("theta", "theta_t", "theta_par"), ("omega", "omega", "eta_par"),
                            ("sigma", "sigma", "sigma_par")):
        if var not in post:
            continue
        pri = getattr(priors, group)
        for name in post[var].coords[dim].values:
            p = pri[str(name)]
            d = np.ravel(post[var].sel({dim: name}).values)
            med, sd = float(np.median(d)), float(np.std(d, ddof=1))
            prior_sd = p.scale if p.kind == "normal" else p.scale * math.sqrt(1 - 2 / math.pi)
            tail = _tail(p.kind, p.loc, p.scale, med)
            rows.append((group, str(name), p.kind, p.loc, p.scale, med, sd, tail,
                         sd / prior_sd, tail < CONFLICT_TAIL, sd / prior_sd > PRIOR_DOMINATED))
    out = pd.DataFrame(rows, columns=["group", "parameter", "prior", "prior_loc", "prior_scale",
                                      "post_median", "post_sd", "prior_tail", "sd_ratio",
                                      "conflict", "prior_dominated"])
    bad = out.loc[out["conflict"], "parameter"].tolist()
    if warn and bad:
        warnings.warn(f"Prior-data conflict for {bad}: their posterior medians lie in the "
                      f"outer {CONFLICT_TAIL:.0%} of the prior (priors {priors.label!r}); "
                      "check the priors against the data.", PriorConflictWarning, stacklevel=3)
    return out


def warn_convergence(msgs: list[str]) -> None:
    """Issue one :class:`ConvergenceWarning` listing every convergence problem."""
    if msgs:
        warnings.warn("Sampler diagnostics: " + " ".join(msgs), ConvergenceWarning,
                      stacklevel=3)
