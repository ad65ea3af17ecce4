"""Observation models: residual error, censoring likelihoods (M1-M7, ULOQ, intervals), assays.

One per-observation log-likelihood, :func:`loglik_obs`, feeds every fitter and diagnostic.
"""

from __future__ import annotations

from carkinetics.observation.assays import (
    Assay,
    ObservationModel,
    default_observation_model,
)
from carkinetics.observation.censoring import (
    METHODS,
    impute_blq,
    log_ndtr_diff,
    loglik_obs,
    m6_first_mask,
    ofv,
    rows_used,
)
from carkinetics.observation.error import ERROR_KINDS, ErrorKind, ErrorModel, SigmaLike

__all__ = [
    "Assay",
    "ERROR_KINDS",
    "ErrorKind",
    "ErrorModel",
    "METHODS",
    "ObservationModel",
    "SigmaLike",
    "default_observation_model",
    "impute_blq",
    "log_ndtr_diff",
    "loglik_obs",
    "m6_first_mask",
    "ofv",
    "rows_used",
]
