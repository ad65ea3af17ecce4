"""Priors of the hierarchical Bayesian population model.

Every prior is on the scale the model samples:

* fixed effects ``theta``: ``Normal(loc, scale)`` on the parameter's transform scale (log for
  positive kinetic parameters, logit for fractions, none for covariate effects and assay log
  scales);
* random-effect SDs ``omega`` (transform scale) and residual sigmas: ``HalfNormal(scale)``.

Default (weakly informative) priors, :func:`default_priors`:

========================  =====================================================================
parameter                 prior
========================  =====================================================================
kinetic typical values    ``Normal(h(typical), 2)``: centred on the model spec's literature
                          value, a factor ``e^2 = 7.4`` per SD on log-scale parameters
covariate effects         ``Normal(start, 1)`` (``dose_exp`` start 0.5: an exponent within
                          about -1.5 .. 2.5 at 95 %)
assay log scales          ``Normal(start, 2)`` (the conversion of CLINICAL.md as centre)
omega (random-effect SD)  ``HalfNormal(1)`` on the transform scale (a CV of up to ~130 %
                          within one prior SD)
residual sigmas           ``HalfNormal(2 x start)`` (``HalfNormal(1)`` log units for qPCR)
========================  =====================================================================

Informative priors from published estimates, :func:`card_priors`, take a model card of
:mod:`carkinetics.models.library` (e.g. ``"stein_2019"``): typical values ``Normal(h(value),
card_scale)`` (0.5 by default: a factor 1.65 per SD, since the cards carry no standard
errors), random-effect SDs ``HalfNormal`` with scale the published SD (variances converted
per the card's ``iiv_scale``) and the residual sigma ``HalfNormal`` with scale the published
sigma. Parameters the card does not cover keep their default priors.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from carkinetics._validation import check_option, closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec

__all__ = ["Prior", "PriorSet", "default_priors", "card_priors", "resolve_priors"]

PriorKind = Literal["normal", "halfnormal"]


@dataclass(frozen=True)
class Prior:
    """One prior on the sampling scale (see the module docstring).

    Parameters
    ----------
    kind : {"normal", "halfnormal"}
        ``normal`` for fixed effects (transform scale), ``halfnormal`` for SDs.
    loc : float
        Mean (``normal``); ignored by ``halfnormal``.
    scale : float
        SD (``normal``) or scale (``halfnormal``), > 0.
    source : str
        Where it comes from (documentation, carried into the conflict table).
    """

    kind: PriorKind
    loc: float
    scale: float
    source: str = "default (weakly informative)"

    def __post_init__(self) -> None:
        check_option("kind", self.kind, ("normal", "halfnormal"), exc=ModelSpecError)
        if not (math.isfinite(self.loc) and math.isfinite(self.scale) and self.scale > 0):
            raise ModelSpecError(f"Invalid prior loc={self.loc!r}, scale={self.scale!r}; "
                                 "expected a finite loc and a finite scale > 0.")


@dataclass(frozen=True)
class PriorSet:
    """Priors of every parameter of a bound specification (by name).

    ``theta`` keys are the fixed-effect names, ``omega`` keys the random-effect names and
    ``sigma`` keys the residual-parameter names of the
    :class:`~carkinetics.fitting.population.spec.PopulationDesign`.
    """

    theta: Mapping[str, Prior]
    omega: Mapping[str, Prior]
    sigma: Mapping[str, Prior]
    label: str = "default"

    def table(self) -> list[tuple[str, str, Prior]]:
        """Rows ``(group, name, prior)`` in order."""
        return ([("theta", k, p) for k, p in self.theta.items()]
                + [("omega", k, p) for k, p in self.omega.items()]
                + [("sigma", k, p) for k, p in self.sigma.items()])


def _internal(spec: ParameterSpec, v: float) -> float:
    if spec.transform == "log":
        return math.log(v)
    if spec.transform == "logit":
        return math.log(v) - math.log1p(-v)
    return float(v)


def default_priors(design: Any) -> PriorSet:
    """Weakly informative priors for a :class:`PopulationDesign` (module docstring table).

    Parameters
    ----------
    design : PopulationDesign
        The specification bound to data (names, transforms and starting values).

    Returns
    -------
    PriorSet
    """
    theta = {}
    for s in design.theta_specs:
        if s.transform in ("log", "logit"):
            theta[s.name] = Prior("normal", _internal(s, s.typical), 2.0,
                                  f"default: Normal(h({s.typical:g}), 2); {s.source}")
        elif s.name.startswith("log_scale_"):
            theta[s.name] = Prior("normal", float(s.typical), 2.0,
                                  f"default: Normal({s.typical:.3g}, 2); {s.source}")
        else:
            theta[s.name] = Prior("normal", float(s.typical), 1.0,
                                  f"default: Normal({s.typical:g}, 1) (covariate effect)")
    omega = {n: Prior("halfnormal", 0.0, 1.0, "default: HalfNormal(1) on the transform scale")
             for n in design.eta_names}
    sigma = {s.name: Prior("halfnormal", 0.0, 2.0 * s.typical,
                           f"default: HalfNormal(2 x {s.typical:g})")
             for s in design.sigma_specs}
    return PriorSet(theta, omega, sigma, "default")


def card_priors(design: Any, card: Any, *, scale: float = 0.5) -> PriorSet:
    """Informative priors from a published model card (module docstring).

    Parameters
    ----------
    design : PopulationDesign
        The bound specification; the card's model must be the specification's model.
    card : ModelCard or str
        A card of :mod:`carkinetics.models.library` or its id (e.g. ``"stein_2019"``).
    scale : float, default 0.5
        Prior SD of the typical values on the transform scale.

    Returns
    -------
    PriorSet
        Default priors where the card is silent.

    Raises
    ------
    ModelSpecError
        Unknown card id, a card for another model, or ``scale`` not > 0.
    """
    from carkinetics.models import library

    if isinstance(card, str):
        cards = _cards(library)
        if card not in cards:
            raise ModelSpecError(f"Invalid priors={card!r}; expected a model card id among "
                                 f"{sorted(cards)}." + closest(card, cards))
        card = cards[card]
    if not (math.isfinite(scale) and scale > 0):
        raise ModelSpecError(f"Invalid scale={scale!r}; expected a prior SD > 0.")
    base = default_priors(design)
    kin = {s.name: s for s in design.theta_specs}
    model_name = getattr(design, "model_name", None)
    if model_name is not None and model_name != card.model_name:
        raise ModelSpecError(f"Model card {card.id!r} is for model {card.model_name!r}; the "
                             f"specification uses {model_name!r}.")
    src = f"{card.id}: {card.reference}"
    theta = dict(base.theta)
    for name, val in card.typical.items():
        if name in kin:
            theta[name] = Prior("normal", _internal(kin[name], float(val.value)), scale,
                                f"informative: Normal(h({float(val.value):g}), {scale:g}); {src}")
    omega = dict(base.omega)
    for name, val in card.iiv.items():
        if name in omega:
            sd = math.sqrt(float(val.value)) if card.iiv_scale == "variance" else float(val.value)
            omega[name] = Prior("halfnormal", 0.0, sd,
                                f"informative: HalfNormal({sd:.3g}) (published IIV, "
                                f"{card.iiv_scale}); {src}")
    sigma = dict(base.sigma)
    res = card.residual
    if res is not None and res.kind == design_error_kind(design):
        for name in sigma:
            sigma[name] = Prior("halfnormal", 0.0, float(res.sigma),
                                f"informative: HalfNormal({float(res.sigma):g}) (published "
                                f"residual SD); {src}")
    return PriorSet(theta, omega, sigma, card.id)


def design_error_kind(design: Any) -> str | None:
    """Error kind of a design (from its sigma names), or None if unknown."""
    names = design.sigma_names
    if all(n.startswith("sigma_log_") for n in names):
        return "log_additive"
    return None


def _cards(library: Any) -> dict[str, Any]:
    out = {}
    getter = getattr(library, "available_cards", None)
    if callable(getter):
        for cid in getter():
            out[cid] = library.get_card(cid)
        return out
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(library.__path__):
        m = importlib.import_module(f"{library.__name__}.{mod.name}")
        card = getattr(m, "CARD", None)
        if card is not None:
            out[card.id] = card
    return out


def resolve_priors(design: Any, priors: Any) -> PriorSet:
    """Turn the ``priors=`` argument of :func:`fit_bayes` into a :class:`PriorSet`.

    ``None`` gives :func:`default_priors`; a card id or ModelCard gives
    :func:`card_priors`; a :class:`PriorSet` is used as is; a mapping from parameter names
    (theta, random-effect names prefixed ``omega_``, sigma names) to :class:`Prior` overrides
    the defaults one by one.
    """
    if priors is None:
        return default_priors(design)
    if isinstance(priors, PriorSet):
        return priors
    if isinstance(priors, Mapping):
        base = default_priors(design)
        theta, omega, sigma = dict(base.theta), dict(base.omega), dict(base.sigma)
        known = [*theta, *(f"omega_{k}" for k in omega), *sigma]
        for k, p in priors.items():
            if not isinstance(p, Prior):
                raise ModelSpecError(f"Invalid prior for {k!r}: {p!r}; expected a Prior.")
            if k in theta:
                target, key = theta, k
            elif k.startswith("omega_") and k[6:] in omega:
                target, key = omega, k[6:]
            elif k in sigma:
                target, key = sigma, k
            else:
                raise ModelSpecError(f"Invalid prior name {k!r}; expected one of {known}."
                                     + closest(k, known))
            want = "normal" if target is theta else "halfnormal"
            if p.kind != want:
                raise ModelSpecError(f"Invalid prior kind {p.kind!r} for {k!r}; expected "
                                     f"{want!r}.")
            target[key] = p
        return PriorSet(theta, omega, sigma, "default+user")
    return card_priors(design, priors)
