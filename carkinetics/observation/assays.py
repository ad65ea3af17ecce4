"""One latent CAR-T level seen by several assays (qPCR and flow cytometry).

Each assay sees the latent level (the kinetic model's prediction, in the reference
assay's unit, qPCR transgene copies/ug gDNA) through its own scale factor and residual
error::

    expected_assay = exp(log_scale_assay) * latent

and each row carries its own LLOQ/ULOQ/limit/cens. The qPCR assay (``car_qpcr``) is the
reference (``log_scale = 0``); flow cytometry (``car_flow``, CAR+ cells/uL) has its own
factor. :class:`ObservationModel` maps each row to its assay through the ``endpoint``
column and evaluates :func:`~carkinetics.observation.censoring.loglik_obs` once per assay.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from carkinetics._validation import closest
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.models.base import ParameterSpec
from carkinetics.observation.censoring import loglik_obs, m6_first_mask, rows_used
from carkinetics.observation.error import ErrorModel, SigmaLike

__all__ = ["Assay", "ObservationModel", "default_observation_model", "GENOMES_PER_UG"]

#: Diploid genomes per ug of genomic DNA (about 6.6 pg DNA per diploid cell; CLINICAL.md).
GENOMES_PER_UG = 1.5e5

_LOG_SCALE_BOUND = 50.0


@dataclass(frozen=True)
class Assay:
    """One assay of the latent level.

    Parameters
    ----------
    endpoint : str
        Endpoint code of its rows (``"car_qpcr"``, ``"car_flow"``, ...).
    log_scale : float, default 0.0
        Natural log of the factor from the latent level to the assay's expected value
        (0 for the reference assay).
    error : ErrorModel
        Residual-error model of the assay (keyword-only).
    sigma : float or (float, float)
        Its sigma(s), in the order of ``error.param_names`` (keyword-only).
    unit : str, default ""
        Unit of the assay's dv (documentation only).

    Raises
    ------
    ModelSpecError
        If the endpoint is empty, ``log_scale`` is not finite or ``sigma`` is invalid.
    """

    endpoint: str
    log_scale: float = 0.0
    error: ErrorModel = field(kw_only=True)
    sigma: float | tuple[float, ...] = field(kw_only=True)
    unit: str = field(default="", kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.endpoint, str) or not self.endpoint:
            raise ModelSpecError(f"Invalid endpoint={self.endpoint!r}; expected a non-empty str.")
        if not isinstance(self.error, ErrorModel):
            raise ModelSpecError(
                f"Invalid error={self.error!r} for assay {self.endpoint!r}; expected an "
                "ErrorModel."
            )
        ls = float(self.log_scale)
        if not math.isfinite(ls):
            raise ModelSpecError(
                f"Invalid log_scale={self.log_scale!r} for assay {self.endpoint!r}; expected a "
                "finite number."
            )
        parts = self.error.sigmas(self.sigma)
        if any(p.ndim for p in parts):
            raise ModelSpecError(
                f"Invalid sigma={self.sigma!r} for assay {self.endpoint!r}; an assay has one "
                f"value per sigma parameter {list(self.error.param_names)}."
            )
        sig = float(parts[0]) if len(parts) == 1 else tuple(float(p) for p in parts)
        object.__setattr__(self, "log_scale", ls)
        object.__setattr__(self, "sigma", sig)

    @property
    def scale(self) -> float:
        """``exp(log_scale)``: the assay's expected value per unit of latent level."""
        return math.exp(self.log_scale)

    def expected(self, latent_pred: ArrayLike) -> NDArray[np.float64]:
        """Expected assay value ``exp(log_scale) * latent_pred``."""
        return self.scale * np.asarray(latent_pred, dtype=float)

    def param_specs(self, *, include_scale: bool = True) -> tuple[ParameterSpec, ...]:
        """Specs of the assay's parameters, named ``<param>_<endpoint>``.

        The sigmas (log transform, typical value = the assay's current sigma) and, when
        ``include_scale``, ``log_scale_<endpoint>`` (no transform, bounds +-50).
        """
        values = (self.sigma,) if isinstance(self.sigma, float) else self.sigma
        specs = [
            replace(spec, name=f"{spec.name}_{self.endpoint}", typical=v,
                    description=f"{spec.description} ({self.endpoint})",
                    source="assay's current value")
            for spec, v in zip(self.error.params, values, strict=True)
        ]
        if include_scale:
            specs.append(ParameterSpec(
                name=f"log_scale_{self.endpoint}", unit="1", typical=self.log_scale,
                lower=-_LOG_SCALE_BOUND, upper=_LOG_SCALE_BOUND, transform="none",
                description=f"log of the factor from the latent level to {self.endpoint}",
                source="assay's current value",
            ))
        return tuple(specs)


@dataclass(frozen=True)
class ObservationModel:
    """Several assays of one latent level, each row routed to its assay by ``endpoint``.

    Parameters
    ----------
    assays : mapping of str to Assay, or iterable of Assay
        Keyed by endpoint (each key must equal its assay's ``endpoint``).
    reference : str, optional
        Endpoint whose ``log_scale`` is fixed (not listed by :meth:`param_specs`). Defaults
        to ``"car_qpcr"`` when present, else the first assay.

    Raises
    ------
    ModelSpecError
        If there is no assay, a key differs from its assay's endpoint, or ``reference`` is
        unknown.
    """

    assays: Mapping[str, Assay]
    reference: str | None = None

    def __post_init__(self) -> None:
        raw = self.assays
        items = list(raw.items()) if isinstance(raw, Mapping) else [
            (a.endpoint if isinstance(a, Assay) else None, a) for a in raw
        ]
        if not items:
            raise ModelSpecError("An ObservationModel needs at least one Assay.")
        out: dict[str, Assay] = {}
        for key, assay in items:
            if not isinstance(assay, Assay):
                raise ModelSpecError(f"Invalid assay {assay!r} for key {key!r}; expected an Assay.")
            if key != assay.endpoint:
                raise ModelSpecError(
                    f"Assay key {key!r} differs from its endpoint {assay.endpoint!r}."
                )
            if key in out:
                raise ModelSpecError(f"Duplicate assay for endpoint {key!r}.")
            out[key] = assay
        ref = self.reference
        if ref is None:
            ref = "car_qpcr" if "car_qpcr" in out else next(iter(out))
        elif ref not in out:
            raise ModelSpecError(
                f"Invalid reference={ref!r}; expected one of {list(out)}." + closest(ref, out)
            )
        object.__setattr__(self, "assays", MappingProxyType(out))
        object.__setattr__(self, "reference", ref)

    def __hash__(self) -> int:
        return hash((tuple(self.assays.items()), self.reference))

    def __reduce__(self):
        # the read-only mapping proxy does not pickle; rebuild from a plain dict
        return (type(self), (dict(self.assays), self.reference))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ObservationModel):
            return NotImplemented
        return dict(self.assays) == dict(other.assays) and self.reference == other.reference

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Endpoints with an assay, in order."""
        return tuple(self.assays)

    # -- parameters --------------------------------------------------------------------
    def param_specs(self) -> tuple[ParameterSpec, ...]:
        """Specs of every assay's sigmas and of the non-reference ``log_scale`` values."""
        return tuple(
            spec for ep, assay in self.assays.items()
            for spec in assay.param_specs(include_scale=ep != self.reference)
        )

    def with_values(self, values: Mapping[str, float]) -> ObservationModel:
        """Return a copy with parameters replaced by name (names of :meth:`param_specs`).

        Raises
        ------
        ModelSpecError
            Naming unknown parameters, or if a value is outside its bounds.
        """
        specs = {s.name: s for s in self.param_specs()}
        unknown = [k for k in values if k not in specs]
        if unknown:
            raise ModelSpecError(
                f"Unknown observation parameter(s) {unknown}; expected names among "
                f"{list(specs)}." + closest(unknown[0], specs)
            )
        new = {}
        for ep, assay in self.assays.items():
            names = [f"{n}_{ep}" for n in assay.error.param_names]
            cur = (assay.sigma,) if isinstance(assay.sigma, float) else assay.sigma
            sig = tuple(float(specs[n].check(values[n])) if n in values else c
                        for n, c in zip(names, cur, strict=True))
            ls_name = f"log_scale_{ep}"
            ls = float(specs[ls_name].check(values[ls_name])) if ls_name in values \
                else assay.log_scale
            new[ep] = replace(assay, log_scale=ls, sigma=sig[0] if len(sig) == 1 else sig)
        return ObservationModel(new, reference=self.reference)

    # -- evaluation --------------------------------------------------------------------
    def _endpoint_rows(self, frame: pd.DataFrame, latent_pred: ArrayLike,
                       need: tuple[str, ...] = ()) -> tuple[NDArray, NDArray[np.float64]]:
        if not isinstance(frame, pd.DataFrame):
            raise ModelSpecError(f"Invalid frame of type {type(frame).__name__}; expected a "
                                 "pandas DataFrame.")
        missing = [c for c in ("endpoint", *need) if c not in frame.columns]
        if missing:
            raise DataError([f"column {c!r} is missing." for c in missing],
                            source="ObservationModel")
        ep = frame["endpoint"].to_numpy(dtype=object)
        known = np.isin(ep, np.asarray(self.endpoints, dtype=object))
        if not np.all(known):
            unknown = sorted({str(e) for e in ep[~known]})
            raise ModelSpecError(
                f"Unknown endpoint(s) {unknown} in frame['endpoint'] "
                f"({int(np.count_nonzero(~known))} rows); the observation model has assays for "
                f"{list(self.endpoints)}." + closest(unknown[0], self.endpoints)
            )
        lat = np.asarray(latent_pred, dtype=float)
        if lat.shape != (len(frame),):
            raise ModelSpecError(
                f"latent_pred has shape {lat.shape}; expected ({len(frame)},), one prediction "
                "per row of frame."
            )
        return ep, lat

    def expected(self, frame: pd.DataFrame, latent_pred: ArrayLike) -> NDArray[np.float64]:
        """Expected value of each row on its assay's scale (``exp(log_scale) * latent``).

        Parameters
        ----------
        frame : DataFrame
            Rows with an ``endpoint`` column.
        latent_pred : array_like, shape (len(frame),)
            Latent level at each row (reference-assay units).

        Returns
        -------
        ndarray
        """
        ep, lat = self._endpoint_rows(frame, latent_pred)
        factor = np.ones(lat.shape)
        for key, assay in self.assays.items():
            factor[ep == key] = assay.scale
        return factor * lat

    def loglik(self, frame: pd.DataFrame, latent_pred: ArrayLike, *, method: str = "m3",
               m6_first: ArrayLike | None = None, jacobian: bool = False) -> NDArray[np.float64]:
        """Per-row log-likelihood, each row evaluated under its own assay.

        Parameters
        ----------
        frame : DataFrame
            Columns ``endpoint``, ``dv``, ``cens``; optional ``lloq``, ``uloq``, ``limit``
            (each row's own limits); ``id`` and ``time`` for M6 unless ``m6_first`` is given
            (runs are then formed per participant and endpoint).
        latent_pred : array_like, shape (len(frame),)
            Latent level at each row (reference-assay units; may be 0).
        method : {"m1", ..., "m7"}, default "m3"
            Censoring method (see :func:`~carkinetics.observation.censoring.loglik_obs`).
        m6_first : array_like of bool, optional
            First-BLQ-of-run mask for M6; computed from ``id``/``time``/``endpoint`` if
            omitted.
        jacobian : bool, default False
            Density terms on the dv scale (see ``loglik_obs``).

        Returns
        -------
        ndarray
            One value per row, in the frame's order.

        Raises
        ------
        ModelSpecError
            Naming endpoints without an assay, or as :func:`loglik_obs`.
        DataError
            If a needed column is missing, or as :func:`loglik_obs`.
        """
        m = method.lower() if isinstance(method, str) else method
        need = ("dv", "cens") + (("id", "time") if m == "m6" and m6_first is None else ())
        ep, lat = self._endpoint_rows(frame, latent_pred, need)
        first = self._m6(frame, ep, m, m6_first)
        cols = {c: frame[c].to_numpy(dtype=float) for c in ("dv", "lloq", "uloq", "limit")
                if c in frame.columns}
        cens = frame["cens"].to_numpy()
        ll = np.zeros(lat.shape)
        for key, assay in self.assays.items():
            rows = ep == key
            ll[rows] = loglik_obs(
                cols["dv"][rows], assay.expected(lat[rows]), cens[rows],
                error=assay.error, sigma=assay.sigma,
                lloq=cols["lloq"][rows] if "lloq" in cols else None,
                uloq=cols["uloq"][rows] if "uloq" in cols else None,
                limit=cols["limit"][rows] if "limit" in cols else None,
                method=m, m6_first=None if first is None else first[rows], jacobian=jacobian,
            )
        return ll

    def rows_used(self, frame: pd.DataFrame, *, method: str = "m3",
                  m6_first: ArrayLike | None = None) -> NDArray[np.bool_]:
        """Rows counting towards ``n_obs`` under ``method`` (see :func:`rows_used`)."""
        m = method.lower() if isinstance(method, str) else method
        need = ("cens",) + (("id", "time") if m == "m6" and m6_first is None else ())
        ep, _ = self._endpoint_rows(frame, np.zeros(len(frame)), need)
        return rows_used(frame["cens"].to_numpy(), m, self._m6(frame, ep, m, m6_first))

    @staticmethod
    def _m6(frame: pd.DataFrame, ep: NDArray, m: str,
            m6_first: ArrayLike | None) -> NDArray[np.bool_] | None:
        if m6_first is not None:
            first = np.asarray(m6_first, dtype=bool)
            if first.shape != (len(frame),):
                raise ModelSpecError(f"m6_first has shape {first.shape}; expected "
                                     f"({len(frame)},).")
            return first
        if m != "m6":
            return None
        return m6_first_mask(frame["id"].to_numpy(), frame["time"].to_numpy(),
                             frame["cens"].to_numpy(), ep)


def default_observation_model(
    *,
    error: ErrorModel | None = None,
    qpcr_sigma: SigmaLike = 0.5,
    flow_sigma: SigmaLike = 0.3,
    nucleated_per_ul: float = 5000.0,
    vcn: float = 1.0,
) -> ObservationModel:
    """Build the default observation model: qPCR (reference) and flow cytometry.

    The flow scale follows the conversion in CLINICAL.md (I): copies/ug / 1.5e5 is the
    fraction of nucleated cells that are CAR+ times the vector copy number (VCN), so::

        cells/uL = copies/ug * nucleated_per_ul / (1.5e5 * vcn)
        log_scale(car_flow) = log(nucleated_per_ul / (1.5e5 * vcn))

    With the defaults (5000 nucleated cells/uL, VCN 1) the factor is 1/30. VCN is
    product-specific (CMC release data) and the factor is best estimated from paired
    samples (it is listed by :meth:`ObservationModel.param_specs`).

    Parameters
    ----------
    error : ErrorModel, optional
        Error model of both assays; default ``ErrorModel("log_additive")``.
    qpcr_sigma, flow_sigma : float or (float, float), default 0.5 and 0.3
        Sigmas of the two assays (I: neutral starting values, log units by default).
    nucleated_per_ul : float, default 5000
        Nucleated (white) cells per uL of blood.
    vcn : float, default 1
        Vector copies per CAR+ cell.

    Returns
    -------
    ObservationModel
        With assays ``car_qpcr`` (reference) and ``car_flow``.
    """
    if not (math.isfinite(nucleated_per_ul) and nucleated_per_ul > 0):
        raise ModelSpecError(f"Invalid nucleated_per_ul={nucleated_per_ul!r}; expected > 0.")
    if not (math.isfinite(vcn) and vcn > 0):
        raise ModelSpecError(f"Invalid vcn={vcn!r}; expected > 0.")
    em = error if error is not None else ErrorModel("log_additive")
    return ObservationModel(
        {
            "car_qpcr": Assay("car_qpcr", 0.0, error=em, sigma=qpcr_sigma, unit="copies/ug"),
            "car_flow": Assay("car_flow", math.log(nucleated_per_ul / (GENOMES_PER_UG * vcn)),
                              error=em, sigma=flow_sigma, unit="cells/uL"),
        },
        reference="car_qpcr",
    )
