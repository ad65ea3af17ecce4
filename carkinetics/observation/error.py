"""Residual-error models: how an observation scatters around the model prediction.

Four kinds are supported. ``f`` is the prediction on the dv scale and ``y`` the observation.

================  =============================================  ================  ==========
kind              model                                          sigma parameters  obs. scale
================  =============================================  ================  ==========
``log_additive``  ``log y ~ N(log f, sigma_log^2)`` (Stein 2019)  ``sigma_log``     ``log y``
``proportional``  ``y ~ N(f, (sigma_prop f)^2)``                 ``sigma_prop``    ``y``
``additive``      ``y ~ N(f, sigma_add^2)``                      ``sigma_add``     ``y``
``combined``      ``y ~ N(f, sigma_add^2 + (sigma_prop f)^2)``   ``sigma_add``,    ``y``
                                                                 ``sigma_prop``
================  =============================================  ================  ==========

Every kind is a normal distribution on its *observation scale* (``log y`` for
``log_additive``, ``y`` otherwise) with the mean and SD returned by
:meth:`ErrorModel.moments`. Log-likelihoods computed from it
(:func:`carkinetics.observation.loglik_obs`) are densities on that observation scale, as
NONMEM reports them for log-transformed data. To compare error models by OFV or AIC, put
them on the same (dv) scale with ``jacobian=True``: for ``log_additive`` this subtracts
``log y`` from each density term (the log-normal density of ``y``); for the other kinds the
observation scale already is the dv scale and the option changes nothing. Censored terms are
probabilities and do not depend on the scale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from carkinetics._validation import check_option, closest
from carkinetics.exceptions import ModelSpecError
from carkinetics.models.base import ParameterSpec

__all__ = ["ErrorKind", "ERROR_KINDS", "ErrorModel", "SigmaLike"]

ErrorKind = Literal["log_additive", "proportional", "additive", "combined"]
ERROR_KINDS: tuple[str, ...] = ("log_additive", "proportional", "additive", "combined")

#: A sigma value: a scalar or per-row array; for ``combined`` a pair ``(sigma_add,
#: sigma_prop)`` (tuple of scalars/arrays, or an array whose last axis has length 2); or a
#: mapping from sigma names to values.
SigmaLike = ArrayLike | tuple | Mapping[str, ArrayLike]

_NAMES: dict[str, tuple[str, ...]] = {
    "log_additive": ("sigma_log",),
    "proportional": ("sigma_prop",),
    "additive": ("sigma_add",),
    "combined": ("sigma_add", "sigma_prop"),
}
_DEFAULT_TYPICAL: dict[str, float] = {"sigma_log": 0.5, "sigma_prop": 0.3, "sigma_add": 1.0}
_DESCRIPTION: dict[str, str] = {
    "sigma_log": "SD of the residual error of log(dv) (natural-log units)",
    "sigma_prop": "proportional residual error: SD of dv as a fraction of the prediction",
    "sigma_add": "additive residual error: SD of dv in dv units",
}
_SOURCE: dict[str, str] = {
    "sigma_log": "I: 0.5 log units (about 50% CV), a neutral start for qPCR transgene levels",
    "sigma_prop": "I: 30% CV, a neutral start",
    "sigma_add": "I: 1 dv unit; set `typical` near the assay LLOQ, whose scale depends on the "
                 "endpoint",
}
_UPPER: dict[str, float] = {"sigma_log": 10.0, "sigma_prop": 10.0, "sigma_add": math.inf}


@dataclass(frozen=True)
class ErrorModel:
    """A residual-error model (see the module docstring for the four kinds).

    Parameters
    ----------
    kind : {"log_additive", "proportional", "additive", "combined"}, default "log_additive"
        The error structure.
    unit : str, default ""
        Unit of dv; used as the unit of ``sigma_add`` in :attr:`params`.
    typical : tuple of float, optional
        Typical (starting) values of the sigmas, in the order of :attr:`param_names`.
        Defaults: ``sigma_log`` 0.5, ``sigma_prop`` 0.3, ``sigma_add`` 1.0 (dv units).

    Raises
    ------
    ModelSpecError
        If ``kind`` is unknown or ``typical`` has the wrong length or an inadmissible value.

    Examples
    --------
    >>> em = ErrorModel("combined", unit="copies/ug", typical=(5.0, 0.3))
    >>> em.param_names
    ('sigma_add', 'sigma_prop')
    >>> mean, sd = em.moments([0.0, 100.0], (5.0, 0.3))
    >>> sd.tolist()
    [5.0, 30.4138126514911]
    """

    kind: ErrorKind = "log_additive"
    unit: str = ""
    typical: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        check_option("kind", self.kind, ERROR_KINDS, exc=ModelSpecError)
        if self.typical is not None:
            typ = tuple(float(v) for v in np.atleast_1d(self.typical))
            if len(typ) != len(self.param_names):
                raise ModelSpecError(
                    f"Invalid typical={self.typical!r} for error kind {self.kind!r}; expected "
                    f"{len(self.param_names)} value(s) for {list(self.param_names)}."
                )
            object.__setattr__(self, "typical", typ)
        self.params  # noqa: B018  (builds the specs, raising on inadmissible typical values)

    # -- metadata ----------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the sigma parameters, in order."""
        return _NAMES[self.kind]

    @property
    def params(self) -> tuple[ParameterSpec, ...]:
        """:class:`~carkinetics.models.base.ParameterSpec` of each sigma (log transform).

        Bounds are ``(0, 10]`` for ``sigma_log`` and ``sigma_prop`` and ``(0, inf)`` for
        ``sigma_add``, so fitters can list and bound them like model parameters.
        """
        typical = self.typical or tuple(_DEFAULT_TYPICAL[n] for n in self.param_names)
        return tuple(
            ParameterSpec(
                name=n,
                unit=(self.unit or "dv unit") if n == "sigma_add" else "1",
                typical=t,
                lower=0.0,
                upper=_UPPER[n],
                transform="log",
                description=_DESCRIPTION[n],
                source=_SOURCE[n] if self.typical is None else "user-supplied typical value",
            )
            for n, t in zip(self.param_names, typical, strict=True)
        )

    @property
    def log_scale(self) -> bool:
        """Whether the observation scale is ``log(dv)`` (``log_additive``)."""
        return self.kind == "log_additive"

    # -- sigma handling ----------------------------------------------------------------
    def sigmas(self, sigma: SigmaLike) -> tuple[NDArray[np.float64], ...]:
        """Split and validate ``sigma`` into one float array per sigma parameter.

        Parameters
        ----------
        sigma : scalar, array_like, tuple or mapping
            A scalar or per-row array; for ``combined`` a pair ``(sigma_add, sigma_prop)``
            given as a tuple/list of two scalars or arrays, or an array whose last axis has
            length 2 (shape ``(2,)`` or ``(n, 2)``); or a mapping from the names in
            :attr:`param_names` to values.

        Returns
        -------
        tuple of ndarray
            In the order of :attr:`param_names`.

        Raises
        ------
        ModelSpecError
            If the form is wrong or a value is not finite and positive (for ``combined``,
            each component must be >= 0 and not both 0).
        """
        names = self.param_names
        if isinstance(sigma, Mapping):
            unknown = [k for k in sigma if k not in names]
            missing = [k for k in names if k not in sigma]
            if unknown or missing:
                hint = closest(unknown[0], names) if unknown else ""
                raise ModelSpecError(
                    f"Invalid sigma keys {sorted(map(str, sigma))} for error kind {self.kind!r}; "
                    f"expected exactly {list(names)}." + hint
                )
            parts = [np.asarray(sigma[n], dtype=float) for n in names]
        elif len(names) == 1:
            if isinstance(sigma, tuple):
                raise ModelSpecError(
                    f"Invalid sigma={sigma!r} for error kind {self.kind!r}; expected one value "
                    "(scalar or per-row array), not a tuple."
                )
            parts = [np.asarray(sigma, dtype=float)]
        else:
            if isinstance(sigma, (tuple, list)) and len(sigma) == 2:
                parts = [np.asarray(s, dtype=float) for s in sigma]
            else:
                arr = np.asarray(sigma, dtype=float)
                if arr.ndim == 0 or arr.shape[-1] != 2:
                    raise ModelSpecError(
                        f"Invalid sigma of shape {arr.shape} for error kind 'combined'; expected "
                        "(sigma_add, sigma_prop) as a tuple, or an array of shape (2,) or (n, 2)."
                    )
                parts = [arr[..., 0], arr[..., 1]]
        for n, p in zip(names, parts, strict=True):
            low_ok = p >= 0 if len(names) == 2 else p > 0
            if not np.all(np.isfinite(p) & low_ok):
                bad = p[~(np.isfinite(p) & low_ok)].ravel()[0] if p.ndim else float(p)
                rule = ">= 0" if len(names) == 2 else "> 0"
                raise ModelSpecError(
                    f"Invalid {n}={bad!r}; expected finite values {rule} for error kind "
                    f"{self.kind!r}."
                )
        if len(names) == 2 and np.any((parts[0] == 0) & (parts[1] == 0)):
            raise ModelSpecError(
                "Invalid sigma for error kind 'combined': sigma_add and sigma_prop are both 0; "
                "at least one must be > 0."
            )
        return tuple(parts)

    # -- scales and moments ------------------------------------------------------------
    def transform(self, y: ArrayLike) -> NDArray[np.float64]:
        """Map dv-scale values to the observation scale.

        ``log`` for ``log_additive`` (values <= 0 map to ``-inf``: the log-normal has no mass
        there; NaN stays NaN), identity otherwise.
        """
        y = np.asarray(y, dtype=float)
        if not self.log_scale:
            return y
        with np.errstate(divide="ignore"):
            return np.where(np.isnan(y), np.nan, np.log(np.where(y > 0, y, 0.0)))

    def untransform(self, x: ArrayLike) -> NDArray[np.float64]:
        """Inverse of :meth:`transform` (``exp`` for ``log_additive``)."""
        x = np.asarray(x, dtype=float)
        return np.exp(x) if self.log_scale else x

    def moments(self, pred: ArrayLike,
                sigma: SigmaLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mean and SD of the observation on the observation scale.

        Parameters
        ----------
        pred : array_like
            Predictions on the dv scale (may be 0, e.g. before infusion; for
            ``log_additive`` a prediction of 0 has mean ``-inf``).
        sigma : see :meth:`sigmas`
            Sigma value(s), broadcasting against ``pred``.

        Returns
        -------
        mean, sd : ndarray
            Broadcast to a common shape. ``log_additive``: ``(log f, sigma_log)``;
            ``proportional``: ``(f, sigma_prop |f|)``; ``additive``: ``(f, sigma_add)``;
            ``combined``: ``(f, sqrt(sigma_add^2 + (sigma_prop f)^2))``.
        """
        f = np.asarray(pred, dtype=float)
        s = self.sigmas(sigma)
        if self.kind == "log_additive":
            if np.any(f < 0):
                raise ModelSpecError(
                    f"Invalid pred={f[f < 0].ravel()[0]!r}; the log_additive error model needs "
                    "predictions >= 0."
                )
            mean, sd = self.transform(f), s[0]
        elif self.kind == "proportional":
            mean, sd = f, s[0] * np.abs(f)
        elif self.kind == "additive":
            mean, sd = f, s[0]
        else:
            mean, sd = f, np.hypot(s[0], s[1] * f)
        mean, sd = np.broadcast_arrays(mean, sd)
        return mean.astype(float, copy=True), sd.astype(float, copy=True)

    def logpdf(self, y: ArrayLike, pred: ArrayLike, sigma: SigmaLike, *,
               jacobian: bool = False) -> NDArray[np.float64]:
        """Log density of quantified observations ``y`` (dv scale) given ``pred``.

        On the observation scale by default; ``jacobian=True`` gives the density of ``y``
        itself (subtracts ``log y`` for ``log_additive``).
        """
        mean, sd = self.moments(pred, sigma)
        x = self.transform(y)
        out = normal_logpdf(x, mean, sd)
        if jacobian and self.log_scale:
            out = out - x
        return out


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def standardize(x: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> NDArray[np.float64]:
    """``(x - mean) / sd`` with the limits that censoring needs.

    An infinite ``x`` (a missing bound) gives ``z = x`` whatever the mean; a finite ``x``
    with an infinite mean gives ``-sign(mean) inf``; ``sd == 0`` gives ``+-inf`` (or 0 when
    ``x == mean``, the limit of a vanishing SD).
    """
    x, mean, sd = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(mean, dtype=float),
                                      np.asarray(sd, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d = x - mean
        z = np.where(sd > 0, d / np.where(sd > 0, sd, 1.0), np.sign(d) * np.inf)
        z = np.where(d == 0, 0.0, z)
        z = np.where(np.isinf(mean) & np.isfinite(x), -np.sign(mean) * np.inf, z)
        z = np.where(np.isinf(x), x, z)
    return z


def normal_logpdf(x: ArrayLike, mean: ArrayLike, sd: ArrayLike) -> NDArray[np.float64]:
    """Normal log density with the limits of :func:`standardize` (``-inf`` off support)."""
    z = standardize(x, mean, sd)
    sd = np.broadcast_to(np.asarray(sd, dtype=float), z.shape)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        out = -0.5 * z * z - np.log(sd) - _HALF_LOG_2PI
    # z infinite -> -inf even when sd == 0 (where -log(sd) = +inf)
    return np.where(np.isinf(z), -np.inf, out)


def _as_error(error: ErrorModel | str) -> ErrorModel:
    """Accept an :class:`ErrorModel` or a kind name."""
    if isinstance(error, ErrorModel):
        return error
    if isinstance(error, str):
        return ErrorModel(error)  # type: ignore[arg-type]
    raise ModelSpecError(
        f"Invalid error={error!r}; expected an ErrorModel or one of {list(ERROR_KINDS)}."
    )
