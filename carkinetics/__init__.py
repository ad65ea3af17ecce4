"""carkinetics: CAR-T cellular kinetics and pharmacodynamics for pharmacometricians.

The public API, re-exported (heavy dependencies such as PyMC and matplotlib are imported
only by the functions that need them)::

    from carkinetics import get_model, read_data, validate, loglik_obs, simulate_trial

Capabilities live in their subpackages: ``carkinetics.nca``, ``carkinetics.fitting``,
``carkinetics.endpoints``, ``carkinetics.plots``.
"""

from __future__ import annotations

__version__ = "0.1.0"

from carkinetics.data import read_data, read_nonmem, to_nonmem, validate, write_data, write_nonmem
from carkinetics.exceptions import (
    CarkineticsWarning,
    CensoringWarning,
    ConvergenceWarning,
    DataError,
    IdentifiabilityWarning,
    ModelSpecError,
)
from carkinetics.models import ParameterSpec, available_models, get_model
from carkinetics.models.library import available_cards, get_card
from carkinetics.observation import ErrorModel, ObservationModel, impute_blq, loglik_obs
from carkinetics.simulate import simulate_trial

__all__ = [
    "__version__",
    "read_data",
    "read_nonmem",
    "to_nonmem",
    "validate",
    "write_data",
    "write_nonmem",
    "CarkineticsWarning",
    "CensoringWarning",
    "ConvergenceWarning",
    "DataError",
    "IdentifiabilityWarning",
    "ModelSpecError",
    "ParameterSpec",
    "available_models",
    "get_model",
    "available_cards",
    "get_card",
    "ErrorModel",
    "ObservationModel",
    "impute_blq",
    "loglik_obs",
    "simulate_trial",
]
