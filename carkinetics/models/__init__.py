"""Structural CAR-T kinetic models, one file per model, and their registry.

>>> from carkinetics.models import get_model, available_models
>>> "piecewise" in available_models()
True
"""

from __future__ import annotations

from carkinetics._validation import closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import DOSE_SPECS, Model, ParameterSpec, dose_scale
from carkinetics.models.piecewise import PiecewiseModel, PiecewiseRateModel
from carkinetics.models.piecewise_lag import PiecewiseLagModel
from carkinetics.models.smooth import SmoothModel
from carkinetics.models.two_pool import TwoPoolModel

__all__ = [
    "Model",
    "ParameterSpec",
    "DOSE_SPECS",
    "dose_scale",
    "get_model",
    "available_models",
    "register_model",
    "PiecewiseModel",
    "PiecewiseRateModel",
    "PiecewiseLagModel",
    "SmoothModel",
    "TwoPoolModel",
]

_REGISTRY: dict[str, type[Model]] = {}


def register_model(cls: type[Model]) -> type[Model]:
    """Register a :class:`Model` subclass under its ``name`` (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Model)) or not cls.name:
        raise ModelSpecError(f"Invalid model class {cls!r}; expected a named Model subclass.")
    _REGISTRY[cls.name] = cls
    return cls


def available_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


def get_model(name: str) -> Model:
    """Return a new instance of the model registered as ``name``.

    Raises
    ------
    ModelSpecError
        For an unknown name, with the nearest registered name as a hint.
    """
    try:
        return _REGISTRY[name]()
    except (KeyError, TypeError):
        raise ModelSpecError(
            f"Unknown model {name!r}; expected one of {available_models()}."
            + closest(name, _REGISTRY)
        ) from None


for _cls in (PiecewiseModel, PiecewiseRateModel, PiecewiseLagModel, SmoothModel, TwoPoolModel):
    register_model(_cls)
