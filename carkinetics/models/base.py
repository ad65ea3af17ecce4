"""Parameter specifications and the base class shared by every kinetic model.

A model is declarative: it lists immutable :class:`ParameterSpec` objects, evaluates
vectorised over times and participants (parameter arrays broadcast against ``t`` with
numpy's rules), and returns derived quantities in closed form where they exist.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics._validation import closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.models._xp import NUMPY, Namespace

__all__ = [
    "ParameterSpec",
    "Model",
    "DOSE_SPECS",
    "dose_scale",
    "LN2",
]

LN2 = math.log(2.0)
Transform = Literal["log", "logit", "none"]
_TRANSFORMS = ("log", "logit", "none")


@dataclass(frozen=True)
class ParameterSpec:
    """An immutable description of one model parameter.

    Parameters
    ----------
    name : str
        Published symbol in lower case (``foldx``, ``tmax``, ``cmax`` ...).
    unit : str
        Unit of the parameter (``"1/day"``, ``"day"``, ``"copies/ug"``, ``"1"``).
    typical : float
        Typical value; must lie within the bounds.
    lower, upper : float
        Bounds of the admissible values (inclusive for ``none``, exclusive where the
        transform needs it: ``log`` needs ``lower >= 0``, ``logit`` needs ``[0, 1]``).
    transform : {"log", "logit", "none"}
        Scale on which the parameter is estimated and carries random effects.
    description : str
        What the parameter means.
    source : str
        Literature source of the typical value, or ``"I"`` with a reason when chosen here.

    Raises
    ------
    ModelSpecError
        If the bounds are inverted, the transform is unknown or incompatible with the
        bounds, or the typical value lies outside the bounds.
    """

    name: str
    unit: str
    typical: float
    lower: float = 0.0
    upper: float = math.inf
    transform: Transform = "log"
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if self.transform not in _TRANSFORMS:
            raise ModelSpecError(
                f"Invalid transform={self.transform!r} for parameter {self.name!r}; expected "
                f"one of {list(_TRANSFORMS)}." + closest(self.transform, _TRANSFORMS)
            )
        if not self.lower < self.upper:
            raise ModelSpecError(
                f"Parameter {self.name!r}: lower={self.lower!r} must be below upper={self.upper!r}."
            )
        if self.transform == "log" and self.lower < 0:
            raise ModelSpecError(
                f"Parameter {self.name!r}: a log transform needs lower >= 0, got {self.lower!r}."
            )
        if self.transform == "logit" and (self.lower < 0 or self.upper > 1):
            raise ModelSpecError(
                f"Parameter {self.name!r}: a logit transform needs bounds within [0, 1], got "
                f"({self.lower!r}, {self.upper!r})."
            )
        if not self.contains(self.typical):
            raise ModelSpecError(
                f"Parameter {self.name!r}: typical={self.typical!r} is outside its bounds "
                f"({self.lower!r}, {self.upper!r}) {self.unit}."
            )

    @property
    def open_lower(self) -> bool:
        """Whether the lower bound itself is excluded (log and logit transforms)."""
        return self.transform in ("log", "logit")

    @property
    def open_upper(self) -> bool:
        """Whether the upper bound itself is excluded (logit transform)."""
        return self.transform == "logit"

    def contains(self, value: ArrayLike) -> NDArray[np.bool_]:
        """Return, elementwise, whether ``value`` is finite and inside the bounds."""
        v = np.asarray(value, dtype=float)
        lo = v > self.lower if self.open_lower else v >= self.lower
        hi = v < self.upper if self.open_upper else v <= self.upper
        return np.isfinite(v) & lo & hi

    def check(self, value: ArrayLike) -> NDArray[np.float64]:
        """Return ``value`` as a float array, raising if any element is inadmissible.

        Raises
        ------
        ModelSpecError
            Naming the parameter, the first bad value and the bounds.
        """
        v = np.asarray(value, dtype=float)
        ok = self.contains(v)
        if not np.all(ok):
            bad = v[~ok].ravel()[0] if v.ndim else float(v)
            lo = "(" if self.open_lower else "["
            hi = ")" if self.open_upper else "]"
            raise ModelSpecError(
                f"Invalid {self.name}={bad!r} ({int(np.size(v) - np.count_nonzero(ok))} bad "
                f"value(s)); expected a finite value in {lo}{self.lower}, {self.upper}{hi} "
                f"{self.unit}."
            )
        return v

    def to_internal(self, value: ArrayLike) -> NDArray[np.float64]:
        """Map a value to the unconstrained estimation scale of the transform."""
        v = np.asarray(value, dtype=float)
        if self.transform == "log":
            return np.log(v)
        if self.transform == "logit":
            return np.log(v) - np.log1p(-v)
        return v

    def from_internal(self, x: ArrayLike) -> NDArray[np.float64]:
        """Inverse of :meth:`to_internal`."""
        x = np.asarray(x, dtype=float)
        if self.transform == "log":
            return np.exp(x)
        if self.transform == "logit":
            return 1.0 / (1.0 + np.exp(-x))
        return x


#: Dose dependence of the expansion level (see :func:`dose_scale`).
DOSE_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec(
        "dose_ref", "cells/kg", 1.0e6, 1.0, 1.0e12, "log",
        "reference dose at which the level parameter takes its typical value",
        "I: 1e6 cells/kg, the protocol's central dose level",
    ),
    ParameterSpec(
        "dose_exp", "1", 0.5, -2.0, 3.0, "none",
        "exponent of the power relation level = level_ref * (dose / dose_ref) ** dose_exp",
        "I: CLINICAL.md 2g finds no support for dose-proportional Cmax; 0.5 (less than "
        "proportional) is a neutral default to be estimated",
    ),
)


def dose_scale(dose: ArrayLike, dose_ref: float = 1.0e6, dose_exp: float = 0.5) -> NDArray:
    """Multiplier of the expansion level for a dose in cells/kg.

    The documented power relation is ``level(dose) = level_ref * (dose / dose_ref) **
    dose_exp``; ``dose_exp = 1`` is dose-proportional, ``0`` dose-independent.

    Parameters
    ----------
    dose : array_like
        Dose (cells/kg), > 0.
    dose_ref : float, default 1e6
        Reference dose (cells/kg) at which the multiplier is 1.
    dose_exp : float, default 0.5
        Exponent (dimensionless).

    Returns
    -------
    ndarray
        ``(dose / dose_ref) ** dose_exp``, computed in log space.
    """
    d = np.asarray(dose, dtype=float)
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        raise ModelSpecError(f"Invalid dose={dose!r}; expected finite doses > 0 (cells/kg).")
    DOSE_SPECS[0].check(dose_ref)
    DOSE_SPECS[1].check(dose_exp)
    return np.exp(dose_exp * (np.log(d) - math.log(dose_ref)))


Params = Mapping[str, ArrayLike]


class Model(ABC):
    """Base class of the kinetic models.

    Subclasses set :attr:`name`, :attr:`params` (a tuple of :class:`ParameterSpec`),
    :attr:`level_param` (the parameter that dose scales) and implement
    :meth:`log_predict`, and override :meth:`predict`, :meth:`auc` and :meth:`derived`
    with closed forms where they exist.

    Notes
    -----
    Parameter values broadcast against the time array with numpy's rules: scalars for one
    participant; arrays of shape ``(n,)`` with ``t`` of shape ``(n,)`` for one time per
    participant; arrays of shape ``(n, 1)`` with ``t`` of shape ``(m,)`` for an
    ``(n, m)`` grid (see :meth:`predict_grid`). Times are days since infusion; the level
    before infusion (``t < 0``) is zero.
    """

    name: str = ""
    description: str = ""
    level_unit: str = "copies/ug"
    level_param: str = "cmax"
    reference: str = ""
    params: tuple[ParameterSpec, ...] = ()
    #: True when :meth:`log_predict` is a closed form that costs the same per (time,
    #: parameter) pair: fits then evaluate every participant's rows in one flat call.
    #: Models that solve an ODE per parameter set leave it False (evaluated on a grid per
    #: participant).
    closed_form: bool = False

    # -- parameters --------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the parameters, in order."""
        return tuple(p.name for p in self.params)

    def spec(self, name: str) -> ParameterSpec:
        """Return the :class:`ParameterSpec` called ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise ModelSpecError(
            f"Unknown parameter {name!r} for model {self.name!r}; expected one of "
            f"{list(self.param_names)}." + closest(name, self.param_names)
        )

    def typical(self) -> dict[str, float]:
        """Typical values of every parameter, as a dict."""
        return {p.name: p.typical for p in self.params}

    def check_params(self, params: Params) -> dict[str, NDArray[np.float64]]:
        """Validate a parameter mapping and return float arrays.

        Raises
        ------
        ModelSpecError
            If a parameter is missing or unknown, or a value lies outside its bounds.
        """
        if not isinstance(params, Mapping):
            raise ModelSpecError(
                f"Invalid params of type {type(params).__name__}; expected a mapping of "
                f"{list(self.param_names)} to values."
            )
        names = set(self.param_names)
        unknown = [k for k in params if k not in names]
        missing = [k for k in self.param_names if k not in params]
        if unknown or missing:
            parts = []
            if missing:
                parts.append(f"missing {missing}")
            if unknown:
                free = [n for n in names if n not in params]
                parts.append(f"unknown {unknown}" + closest(unknown[0], free))
            raise ModelSpecError(
                f"Invalid params for model {self.name!r}: {'; '.join(parts)}. Expected exactly "
                f"{list(self.param_names)}."
            )
        out = {p.name: p.check(params[p.name]) for p in self.params}
        self._check_relations(out)
        return out

    def _check_relations(self, p: dict[str, NDArray[np.float64]]) -> None:  # noqa: B027
        """Check constraints between parameters (override where a model has them)."""

    def with_dose(self, params: Params, dose: ArrayLike, dose_ref: float = 1.0e6,
                  dose_exp: float = 0.5) -> dict[str, NDArray[np.float64]]:
        """Return ``params`` with the level parameter scaled for ``dose`` (cells/kg).

        See :func:`dose_scale` for the power relation.
        """
        out = {k: np.asarray(v, dtype=float) for k, v in params.items()}
        out[self.level_param] = out[self.level_param] * dose_scale(dose, dose_ref, dose_exp)
        return out

    # -- evaluation --------------------------------------------------------------------
    @abstractmethod
    def log_predict(self, t: ArrayLike, params: Params, *, xp: Namespace = NUMPY):
        """Natural log of the predicted level at days ``t`` (``-inf`` before infusion)."""

    def predict(self, t: ArrayLike, params: Params) -> NDArray[np.float64]:
        """Predicted level at days ``t`` (the model's level unit); 0 before infusion.

        Parameters
        ----------
        t : array_like
            Days since infusion.
        params : mapping
            Parameter values (scalars or arrays broadcasting against ``t``).

        Returns
        -------
        ndarray
            Predicted levels, broadcast shape of ``t`` and the parameters.
        """
        p = self.check_params(params)
        t = np.asarray(t, dtype=float)
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            return np.exp(self.log_predict(t, p))

    def predict_grid(self, t: ArrayLike, params: Params) -> NDArray[np.float64]:
        """Predictions for ``n`` participants x ``m`` times, shape ``(n, m)``.

        ``params`` holds arrays of shape ``(n,)`` (or scalars); ``t`` has shape ``(m,)``.
        """
        p = {k: np.atleast_1d(np.asarray(v, dtype=float))[:, None] for k, v in params.items()}
        return np.atleast_2d(self.predict(np.asarray(t, dtype=float)[None, :], p))

    # -- exposure ----------------------------------------------------------------------
    def auc(self, t0: ArrayLike, t1: ArrayLike, params: Params) -> NDArray[np.float64]:
        """Area under the level curve from ``t0`` to ``t1`` (level unit x day).

        The default integrates numerically (adaptive Gauss-Kronrod per element, with the
        model's own kinks as break points); closed-form models override it.
        """
        from scipy.integrate import quad

        p = self.check_params(params)
        t0, t1, *vals = np.broadcast_arrays(
            np.asarray(t0, float), np.asarray(t1, float), *p.values()
        )
        out = np.empty(t0.shape)
        for idx in np.ndindex(t0.shape):
            pi = {k: float(v[idx]) for k, v in zip(p, vals, strict=True)}

            def f(s: float, pi=pi) -> float:
                return float(self.predict(s, pi))

            brk = [b for b in self.breakpoints(pi) if t0[idx] < b < t1[idx]]
            out[idx] = quad(f, t0[idx], t1[idx], points=brk or None, limit=200,
                            epsabs=0.0, epsrel=1e-10)[0]
        return out

    def breakpoints(self, params: Mapping[str, float]) -> list[float]:
        """Times where the level curve has a kink (used by numerical quadrature)."""
        return [0.0]

    def derived(self, params: Params, *, below: Sequence[float] = ()) -> dict[str, NDArray]:
        """Derived quantities (days; level unit; level unit x day for AUCs).

        Returns a dict with at least ``doubling_time``, ``t_half_alpha``, ``t_half_beta``,
        ``tmax``, ``cmax``, ``auc_0_28``, ``auc_0_84`` and ``auc_0_inf``; with ``below``,
        also ``time_below_<level>`` (the first time after the peak at which the level
        falls below each given level).
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {', '.join(self.param_names)}>"
