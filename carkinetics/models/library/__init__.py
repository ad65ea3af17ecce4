"""Model cards: published CAR-T kinetic models with their typical values and sources.

A :class:`ModelCard` records one publication's model: which structural model of
:mod:`carkinetics.models` it uses, the typical values with a source for each, the
between-subject variability (IIV) with its scale convention, the residual error, the
derived numbers the paper reports (to test against) and any deviation of the
implementation from the paper.

>>> from carkinetics.models.library import available_cards, get_card
>>> available_cards()
['ogasawara_2021', 'stein_2019']
>>> card = get_card("stein_2019")
>>> round(float(card.model().derived(card.params())["doubling_time"]), 2)
0.78
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from carkinetics._validation import closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.models import get_model
from carkinetics.models.base import Model

__all__ = ["Value", "Published", "Residual", "ModelCard", "get_card", "available_cards",
           "register_card"]

IIVScale = Literal["variance", "sd"]
ResidualKind = Literal["log_additive", "proportional", "additive", "combined"]
_IIV_SCALES = ("variance", "sd")
_RESIDUAL_KINDS = ("log_additive", "proportional", "additive", "combined")


@dataclass(frozen=True)
class Value:
    """A number with its source (``R``/``S``/``I`` confidence mark included in ``source``)."""

    value: float
    source: str


@dataclass(frozen=True)
class Published:
    """A derived number as the paper reports it.

    Parameters
    ----------
    value : float
        The reported number.
    resolution : float
        Unit of its last reported digit (0.01 for "0.78", 10 for "220"): a computed value
        reproduces it when it lies within ``resolution / 2``.
    source : str
        Where it was read.
    """

    value: float
    resolution: float
    source: str

    def matches(self, x: float) -> bool:
        """Whether ``x`` rounds to the published value (within half a last digit)."""
        return abs(float(x) - self.value) <= 0.5 * self.resolution * (1.0 + 1e-9)


@dataclass(frozen=True)
class Residual:
    """Residual error model: ``kind`` and its magnitude ``sigma`` (an SD)."""

    kind: ResidualKind
    sigma: float
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _RESIDUAL_KINDS:
            raise ModelSpecError(
                f"Invalid residual kind={self.kind!r}; expected one of "
                f"{list(_RESIDUAL_KINDS)}." + closest(self.kind, _RESIDUAL_KINDS)
            )
        if not (math.isfinite(self.sigma) and self.sigma > 0):
            raise ModelSpecError(f"Invalid residual sigma={self.sigma!r}; expected > 0.")


@dataclass(frozen=True)
class ModelCard:
    """One published model, ready to simulate from.

    Parameters
    ----------
    id : str
        Registry key (``author_year``).
    model_name : str
        Name of the structural model in :func:`carkinetics.models.get_model`.
    reference : str
        Citation.
    doi : str
        DOI of the publication.
    population : str
        Who the model was fitted to.
    typical : mapping of str to Value
        Typical value of every model parameter, each with its source.
    iiv : mapping of str to Value
        Between-subject variability on the transformed (estimation) scale of the
        parameters; empty when not published.
    iiv_scale : {"variance", "sd"} or None
        Whether the ``iiv`` numbers are variances (omega^2) or SDs (omega); ``None`` only
        when ``iiv`` is empty.
    residual : Residual or None
        Residual error model (``None`` when not published).
    derived : mapping of str to Published
        Derived quantities the paper reports, keyed like ``Model.derived``.
    notes : tuple of str
        Deviations of this implementation from the paper and caveats.

    Raises
    ------
    ModelSpecError
        If the model is unknown, a typical value is missing, unknown or out of bounds,
        an IIV key is not a parameter, or the IIV scale is invalid.
    """

    id: str
    model_name: str
    reference: str
    doi: str
    population: str
    typical: Mapping[str, Value]
    iiv: Mapping[str, Value] = field(default_factory=dict)
    iiv_scale: IIVScale | None = None
    residual: Residual | None = None
    derived: Mapping[str, Published] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("typical", "iiv", "derived"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        model = get_model(self.model_name)
        model.check_params(self.params())
        unknown = [k for k in self.iiv if k not in model.param_names]
        if unknown:
            raise ModelSpecError(
                f"Invalid iiv keys {unknown} for card {self.id!r}; expected parameters of "
                f"{self.model_name!r}: {list(model.param_names)}."
                + closest(unknown[0], model.param_names)
            )
        if self.iiv and self.iiv_scale not in _IIV_SCALES:
            raise ModelSpecError(
                f"Invalid iiv_scale={self.iiv_scale!r} for card {self.id!r}; expected one of "
                f"{list(_IIV_SCALES)}." + closest(self.iiv_scale, _IIV_SCALES)
            )
        if not self.iiv and self.iiv_scale is not None and self.iiv_scale not in _IIV_SCALES:
            raise ModelSpecError(f"Invalid iiv_scale={self.iiv_scale!r} for card {self.id!r}.")

    def model(self) -> Model:
        """A new instance of the card's structural model."""
        return get_model(self.model_name)

    def params(self) -> dict[str, float]:
        """Typical parameter values, as a plain dict."""
        return {k: float(v.value) for k, v in self.typical.items()}

    def omega_sd(self) -> dict[str, float]:
        """IIV as standard deviations on the transformed scale (``sqrt`` of variances)."""
        if self.iiv_scale == "variance":
            return {k: math.sqrt(v.value) for k, v in self.iiv.items()}
        return {k: float(v.value) for k, v in self.iiv.items()}


_CARDS: dict[str, ModelCard] = {}


def register_card(card: ModelCard) -> ModelCard:
    """Add ``card`` to the registry under its ``id`` (returns it)."""
    if not isinstance(card, ModelCard):
        raise ModelSpecError(f"Invalid card {card!r}; expected a ModelCard.")
    _CARDS[card.id] = card
    return card


def available_cards() -> list[str]:
    """Ids of the registered cards, sorted."""
    return sorted(_CARDS)


def get_card(name: str) -> ModelCard:
    """Return the card registered as ``name``.

    Raises
    ------
    ModelSpecError
        For an unknown id, with the nearest registered id as a hint.
    """
    try:
        return _CARDS[name]
    except (KeyError, TypeError):
        raise ModelSpecError(
            f"Unknown model card {name!r}; expected one of {available_cards()}."
            + closest(name, _CARDS)
        ) from None


from carkinetics.models.library import ogasawara_2021, stein_2019  # noqa: E402

for _mod in (stein_2019, ogasawara_2021):
    register_card(_mod.CARD)
