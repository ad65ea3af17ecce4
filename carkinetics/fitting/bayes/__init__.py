"""Hierarchical Bayesian population fits (PyMC + ArviZ) of the shared population specification.

* :func:`fit_bayes` compiles a :class:`~carkinetics.fitting.population.spec.PopulationSpec`
  to a PyMC model (closed-form kinetics in pytensor, non-centred random effects, censored
  rows through :func:`loglik_obs_pt`, the twin of
  :func:`carkinetics.observation.loglik_obs`), samples it with NUTS (nutpie where installed)
  and returns a :class:`BayesResult` with ArviZ ``InferenceData``;
* :mod:`~carkinetics.fitting.bayes.priors`: weakly informative defaults and informative
  priors from published model cards;
* :mod:`~carkinetics.fitting.bayes.diagnostics`: R-hat/ESS/divergence checks and the
  prior-data conflict check.
"""

from carkinetics.fitting.bayes.diagnostics import PriorConflictWarning, prior_conflict
from carkinetics.fitting.bayes.fit import BayesResult, fit_bayes, posterior_draws
from carkinetics.fitting.bayes.loglik import log_ndtr_diff_pt, log_ndtr_pt, loglik_obs_pt
from carkinetics.fitting.bayes.model import build_model
from carkinetics.fitting.bayes.priors import (
    Prior,
    PriorSet,
    card_priors,
    default_priors,
    resolve_priors,
)
from carkinetics.fitting.bayes.sampling import nutpie_available

__all__ = [
    "BayesResult",
    "Prior",
    "PriorConflictWarning",
    "PriorSet",
    "build_model",
    "card_priors",
    "default_priors",
    "fit_bayes",
    "log_ndtr_diff_pt",
    "log_ndtr_pt",
    "loglik_obs_pt",
    "nutpie_available",
    "posterior_draws",
    "prior_conflict",
    "resolve_priors",
]
