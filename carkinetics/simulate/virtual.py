"""Virtual participants drawn from a population fit, and their predicted exposure per dose.

A :class:`VirtualSource` holds what a population fit says about the population: the
:class:`~carkinetics.fitting.population.spec.PopulationSpec` with its design (parameter
names, covariate effects and their reference values), the estimates on the *estimation
(transform) scale* and their uncertainty, either

* a multivariate normal on the estimation scale (fixed effects on their transform scale,
  log variances of the random effects, log residual SDs) built from the FOCE-I covariance
  step (:meth:`VirtualSource.from_focei`: the reported covariance mapped by the delta
  method), or
* posterior draws of a Bayesian fit (:meth:`VirtualSource.from_bayes`), or
* none (:meth:`VirtualSource.from_values`, optionally with a user covariance).

:func:`draw_virtual` draws ``n_sets`` parameter sets (uncertainty) and ``n_per_set``
participants per set (random effects ``eta ~ N(0, Omega)``, covariates: weight, disease,
baseline B-cell count, and a manufacturing shortfall: with probability ``fraction`` the
delivered dose is the assigned dose times ``U(low, high)``). The same participants are used
at every dose (common random numbers): :func:`predict_exposure` gives, per candidate dose,
Cmax and AUC0-28 (closed forms of the kinetic model), B-cell aplasia duration and IgG nadir
(the CK->PD system of :mod:`carkinetics.pd`, integrated for all participants and doses at
once), their medians, 90 % prediction intervals and the probability of exceeding limits.

Reproducibility: one root ``numpy.random.SeedSequence(seed)``; parameter set ``s`` draws
from the child with spawn key ``(0, s)`` and participant ``j`` from ``(1, j)`` (its residual
errors from ``(2, j)``), i.e. ``SeedSequence(seed).spawn(3)[a].spawn(n)[j]``, built directly
from the key so that any chunk of participants is drawn without the others: results do not
depend on ``chunk_size`` or the number of workers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics._validation import check_option, closest
from carkinetics.exceptions import ModelSpecError

__all__ = ["VirtualSource", "CovariateModel", "Shortfall", "VirtualParticipants",
           "ExposurePrediction", "draw_virtual", "predict_exposure", "participant_seed",
           "EXPOSURE_METRICS"]

#: Exposure metrics of :func:`predict_exposure` and the direction in which they are harmful.
EXPOSURE_METRICS: dict[str, str] = {"cmax": ">", "auc_0_28": ">", "aplasia_duration": ">",
                                    "igg_nadir": "<"}
_UNCERTAINTY = ("auto", "none")
Arr = NDArray[np.float64]


def participant_seed(seed: int, stream: int, index: int) -> np.random.SeedSequence:
    """Seed of unit ``index`` of ``stream``.

    Equal to ``SeedSequence(seed).spawn(.)[stream].spawn(.)[index]``, built from its key.

    Examples
    --------
    >>> a = participant_seed(5, 1, 3).generate_state(2)
    >>> b = np.random.SeedSequence(5).spawn(2)[1].spawn(4)[3].generate_state(2)
    >>> bool((a == b).all())
    True
    """
    return np.random.SeedSequence(int(seed), spawn_key=(int(stream), int(index)))


def _sqrt_psd(m: Arr) -> Arr:
    """A matrix root ``R`` with ``R R' = m`` for a symmetric positive semi-definite ``m``."""
    m = np.asarray(m, dtype=float)
    if m.size == 0:
        return m.reshape(m.shape)
    if not np.all(np.isfinite(m)):
        raise ModelSpecError("Invalid covariance: non-finite entries (was the covariance step "
                             "successful?).")
    w, v = np.linalg.eigh(0.5 * (m + m.T))
    if w.min() < -1e-8 * max(1.0, abs(w.max())):
        raise ModelSpecError(f"Invalid covariance: smallest eigenvalue {w.min():.3g} < 0; "
                             "expected a positive semi-definite matrix.")
    return v * np.sqrt(np.clip(w, 0.0, None))


@dataclass(frozen=True, eq=False)
class VirtualSource:
    """Population parameters (estimation scale) and their uncertainty.

    Attributes
    ----------
    spec, design
        The :class:`PopulationSpec` and the :class:`PopulationDesign` of the fit (names,
        covariate effects and their reference values).
    theta_t : ndarray (n_theta,)
        Fixed effects on their transform scale (order ``design.theta_names``).
    omega : ndarray (k, k)
        Random-effect covariance (order ``design.eta_names``).
    sigma : ndarray (n_sigma,)
        Residual SDs (order ``design.sigma_names``).
    covariance : ndarray (P, P) or None
        Covariance of ``(theta_t, log diag(omega), log sigma)`` (the estimation scale);
        None: no parameter uncertainty from a normal approximation.
    draws : dict or None
        Posterior draws ``theta_t`` (B, n_theta), ``omega`` (B, k, k), ``sigma`` (B, n_sigma).
    """

    spec: Any
    design: Any
    theta_t: Arr
    omega: Arr
    sigma: Arr
    covariance: Arr | None = None
    draws: dict[str, Arr] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        d = self.design
        nt, k, ns = len(d.theta_names), len(d.eta_names), len(d.sigma_names)
        th = np.asarray(self.theta_t, dtype=float).reshape(-1)
        om = np.asarray(self.omega, dtype=float).reshape(k, k)
        sg = np.asarray(self.sigma, dtype=float).reshape(-1)
        if th.size != nt or sg.size != ns:
            raise ModelSpecError(f"Invalid parameter vectors: {th.size} fixed effects and "
                                 f"{sg.size} sigmas; expected {nt} ({list(d.theta_names)}) and "
                                 f"{ns} ({list(d.sigma_names)}).")
        _sqrt_psd(om)
        object.__setattr__(self, "theta_t", th)
        object.__setattr__(self, "omega", om)
        object.__setattr__(self, "sigma", sg)
        if self.covariance is not None:
            p = nt + k + ns
            c = np.asarray(self.covariance, dtype=float)
            if c.shape != (p, p):
                raise ModelSpecError(f"Invalid covariance of shape {c.shape}; expected ({p}, "
                                     f"{p}) for {self.uncertainty_names}.")
            _sqrt_psd(c)
            object.__setattr__(self, "covariance", c)

    @property
    def uncertainty_names(self) -> list[str]:
        """Names of the estimation-scale coordinates of :attr:`covariance`."""
        d = self.design
        return ([f"{s.transform}({s.name})" if s.transform != "none" else s.name
                 for s in d.theta_specs] + [f"log(omega({e}))" for e in d.eta_names]
                + [f"log({s})" for s in d.sigma_names])

    @property
    def estimate(self) -> Arr:
        """The estimates on the scale of :attr:`covariance`."""
        with np.errstate(divide="ignore"):
            return np.concatenate([self.theta_t, np.log(np.diag(self.omega)),
                                   np.log(self.sigma)])

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def from_values(cls, spec: Any, design: Any, theta: Mapping[str, float],
                    omega: Any, sigma: Mapping[str, float], *,
                    covariance: Any = None) -> VirtualSource:
        """Source from natural-scale values (``theta``, ``sigma`` by name; ``omega`` (k, k)).

        ``covariance`` (optional) is on the estimation scale (:attr:`uncertainty_names`).
        """
        d = design
        missing = [n for n in d.theta_names if n not in theta] + \
            [n for n in d.sigma_names if n not in sigma]
        if missing:
            raise ModelSpecError(f"Invalid values: missing {missing}; expected "
                                 f"{list(d.theta_names) + list(d.sigma_names)}.")
        th = np.array([float(s.to_internal(theta[s.name])) for s in d.theta_specs])
        sg = np.array([float(sigma[n]) for n in d.sigma_names])
        return cls(spec, design, th, np.asarray(omega, dtype=float), sg, covariance)

    @classmethod
    def from_focei(cls, result: Any, *, uncertainty: bool = True) -> VirtualSource:
        """Source from a :class:`FOCEIResult` of a :class:`PopulationSpec`.

        The reported covariance (natural scale: theta, Omega variances, sigma SDs) is mapped
        to the estimation scale by the delta method (``d h(v) / d v`` of each transform);
        off-diagonal Omega entries keep their estimate (no uncertainty drawn for them).
        """
        model = getattr(result.engine, "model", None)
        spec, design = getattr(model, "spec", None), getattr(model, "design", None)
        if spec is None or design is None:
            raise ModelSpecError("Invalid result: the FOCE-I fit was not made from a "
                                 "PopulationSpec (fit_focei(spec, data)); use "
                                 "VirtualSource.from_values.")
        cov = None
        if uncertainty:
            if result.covariance is None:
                raise ModelSpecError("Invalid result: no covariance step (fit with "
                                     "covariance=True, or uncertainty=False).")
            c = result.covariance
            names, grad = [], []
            for s in design.theta_specs:
                v = result.theta[s.name]
                names.append(s.name)
                grad.append(1 / v if s.transform == "log" else
                            1 / (v * (1 - v)) if s.transform == "logit" else 1.0)
            for j, e in enumerate(design.eta_names):
                names.append(f"omega({e})")
                grad.append(1 / result.omega[j, j])
            for n in design.sigma_names:
                names.append(n)
                grad.append(1 / result.sigma[n])
            sub = c.loc[names, names].to_numpy(float)
            g = np.asarray(grad)
            cov = sub * np.outer(g, g)
        return cls.from_values(spec, design, result.theta, result.omega, result.sigma,
                               covariance=cov)

    @classmethod
    def from_bayes(cls, result: Any) -> VirtualSource:
        """Source from a :class:`BayesResult`: posterior draws (and their medians)."""
        from carkinetics.fitting.bayes.fit import posterior_draws

        design = result.design
        dr = posterior_draws(result.idata, design)
        b, k = dr["theta_t"].shape[0], len(design.eta_names)
        om = np.zeros((b, k, k))
        idx = np.arange(k)
        om[:, idx, idx] = np.asarray(dr["omega"]).reshape(b, k) ** 2
        draws = {"theta_t": dr["theta_t"], "omega": om, "sigma": dr["sigma"]}
        return cls(result.spec, design, np.median(dr["theta_t"], axis=0),
                   np.median(om, axis=0), np.median(dr["sigma"], axis=0), draws=draws)

    # -- parameter sets ------------------------------------------------------------------
    def draw_sets(self, n_sets: int, seed: int, *, uncertainty: str = "auto"
                  ) -> tuple[Arr, Arr, Arr]:
        """``n_sets`` parameter sets: ``theta_t`` (S, n_theta), ``omega`` (S, k, k), ``sigma``.

        ``uncertainty="none"`` (or a source without covariance and draws) repeats the
        estimates; with a covariance, set ``s`` is ``estimate + R z_s`` (``R R' =
        covariance``, ``z_s`` standard normal from stream ``(0, s)``); with posterior draws,
        set ``s`` is the draw with a uniformly chosen index from the same stream.
        """
        check_option("uncertainty", uncertainty, _UNCERTAINTY, exc=ModelSpecError)
        nt, k = self.theta_t.size, self.omega.shape[0]
        th = np.tile(self.theta_t, (n_sets, 1))
        om = np.tile(self.omega, (n_sets, 1, 1))
        sg = np.tile(self.sigma, (n_sets, 1))
        if uncertainty == "none":
            return th, om, sg
        if self.draws is not None:
            nb = self.draws["theta_t"].shape[0]
            pick = np.array([np.random.default_rng(participant_seed(seed, 0, s)).integers(nb)
                             for s in range(n_sets)], dtype=int)
            return (self.draws["theta_t"][pick].copy(), self.draws["omega"][pick].copy(),
                    self.draws["sigma"][pick].copy())
        if self.covariance is None:
            return th, om, sg
        root = _sqrt_psd(self.covariance)
        z = np.stack([np.random.default_rng(participant_seed(seed, 0, s)).standard_normal(
            root.shape[0]) for s in range(n_sets)])
        est = self.estimate
        dom = np.diag(self.omega)
        est[nt:nt + k] = np.where(dom > 0, est[nt:nt + k], 0.0)  # a zero variance stays zero
        x = est + z @ root.T
        th = x[:, :nt]
        d = np.where(dom > 0, np.sqrt(np.exp(x[:, nt:nt + k]) / np.where(dom > 0, dom, 1.0)),
                     1.0)  # rescale the variances (correlations kept)
        om = self.omega[None] * d[:, :, None] * d[:, None, :]
        sg = np.exp(x[:, nt + k:])
        return th, om, sg


@dataclass(frozen=True)
class CovariateModel:
    """Distribution of the participants' covariates.

    Parameters
    ----------
    weight : (median, sd_log), default (70, 0.2)
        Log-normal body weight (kg).
    disease : mapping, default {"SLE": 1.0}
        Probability of each disease (normalised).
    b0 : (median, sd_log), default (150, 0.6)
        Log-normal baseline CD19+ B-cell count (cells/uL; the PD model's ``b0``).
    table : DataFrame, optional
        Resample whole rows of this table instead (columns ``weight``, ``disease``, ``b0``
        and any other covariate of the population model).
    """

    weight: tuple[float, float] = (70.0, 0.2)
    disease: Mapping[str, float] = field(default_factory=lambda: {"SLE": 1.0})
    b0: tuple[float, float] = (150.0, 0.6)
    table: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name in ("weight", "b0"):
            med, sd = getattr(self, name)
            if not (med > 0 and sd >= 0 and math.isfinite(med) and math.isfinite(sd)):
                raise ModelSpecError(f"Invalid {name}=({med!r}, {sd!r}); expected (median > 0, "
                                     "sd_log >= 0).")
        pr = np.array(list(self.disease.values()), dtype=float)
        if pr.size == 0 or np.any(~np.isfinite(pr)) or np.any(pr < 0) or pr.sum() <= 0:
            raise ModelSpecError(f"Invalid disease={dict(self.disease)!r}; expected "
                                 "non-negative probabilities with a positive sum.")
        if self.table is not None and len(self.table) == 0:
            raise ModelSpecError("Invalid table: no rows to resample.")


@dataclass(frozen=True)
class Shortfall:
    """Manufacturing shortfall of the delivered dose.

    With probability ``fraction`` the delivered dose is the assigned one times a factor drawn
    uniformly in ``[low, high]``.
    """

    fraction: float = 0.0
    low: float = 0.5
    high: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ModelSpecError(f"Invalid fraction={self.fraction!r}; expected a probability "
                                 "in [0, 1].")
        if not 0.0 < self.low <= self.high <= 1.0:
            raise ModelSpecError(f"Invalid range low={self.low!r}, high={self.high!r}; "
                                 "expected 0 < low <= high <= 1.")


@dataclass(frozen=True, eq=False)
class VirtualParticipants:
    """Virtual participants (frozen): one row per participant.

    Attributes
    ----------
    source : VirtualSource
    set_index : ndarray of int (n,)
        Parameter set of each participant.
    theta_t : ndarray (n, n_theta)
        Fixed effects of the participant's set (transform scale).
    sigma : ndarray (n, n_sigma)
        Residual SDs of the participant's set.
    eta : ndarray (n, k)
        Random effects.
    covariates : DataFrame
        ``weight``, ``disease``, ``b0`` (and any resampled column), one row per participant.
    dose_factor : ndarray (n,)
        Delivered / assigned dose (1 without shortfall).
    seed : int
        Root seed.
    """

    source: VirtualSource
    set_index: NDArray[np.int64]
    theta_t: Arr
    sigma: Arr
    eta: Arr
    covariates: pd.DataFrame
    dose_factor: Arr
    seed: int

    @property
    def n(self) -> int:
        """Number of participants."""
        return int(self.set_index.size)

    def _effects(self, dose: Arr) -> dict[str, Arr]:
        """Covariate regressors of every effect parameter for these participants.

        Effect names are formed as :meth:`PopulationSpec.design` forms them; the reference
        value of a power/linear effect is recovered from the fit's own regressors.
        """
        d = self.source.design
        spec = self.source.spec
        cov = self.covariates.assign(dose=dose)
        out: dict[str, Arr] = {}
        for c in spec.covariates:
            if c.column not in cov.columns:
                raise ModelSpecError(f"Invalid covariates: the population model needs column "
                                     f"{c.column!r}; give it in CovariateModel.table."
                                     + closest(c.column, list(cov.columns)))
            base = c.name or ("dose_exp" if c.column == "dose" and c.parameter ==
                              spec.model.level_param and c.kind == "power"
                              else f"{c.parameter}_{c.column}")
            x = cov[c.column]
            if c.kind == "categorical":
                for name in d.effect_target:
                    if name.startswith(base + "_") and name not in out:
                        lev = name[len(base) + 1:]
                        out[name] = (x.astype(str).to_numpy() == lev).astype(float)
                continue
            xr = pd.to_numeric(d.covariates[c.column], errors="coerce").to_numpy(float)
            xv = pd.to_numeric(x, errors="coerce").to_numpy(float)
            reg = d.effects[base]
            if c.kind == "power":
                if np.any(~(xv > 0)):
                    raise ModelSpecError(f"Invalid covariate {c.column!r}: values <= 0 for a "
                                         "power effect.")
                out[base] = np.log(xv) - float(np.log(xr[0]) - reg[0])
            else:
                out[base] = xv - float(xr[0] - reg[0])
        return out

    def kinetics(self, dose: float) -> dict[str, Arr]:
        """Individual kinetic parameters (natural scale) at assigned ``dose`` (cells/kg).

        The delivered dose ``dose * dose_factor`` enters through the model's covariates.
        """
        if not (np.isfinite(dose) and dose > 0):
            raise ModelSpecError(f"Invalid dose={dose!r}; expected a dose > 0 (cells/kg).")
        src = self.source
        d, spec = src.design, src.spec
        eff = self._effects(float(dose) * self.dose_factor)
        phi: dict[str, Arr] = {}
        for j, s in enumerate(d.theta_specs):
            if s.name in spec.kinetic_names:
                phi[s.name] = self.theta_t[:, j].copy()
        for name, target in d.effect_target.items():
            phi[target] = phi[target] + self.theta_t[:, d.theta_names.index(name)] * eff[name]
        for j, name in enumerate(d.eta_names):
            if name in phi:
                phi[name] = phi[name] + self.eta[:, j]
        m = spec.model
        return {k: np.asarray(m.spec(k).from_internal(v), dtype=float) for k, v in phi.items()}

    def observe(self, dose: float, times: Any, endpoint: str | None = None) -> Arr:
        """Simulated observations with residual error at ``times`` (days), shape (n, m).

        Log-additive (or the model's) residual error of the reference assay (or
        ``endpoint``), drawn from each participant's residual stream ``(2, j)``; no
        censoring is applied.
        """
        src = self.source
        d = src.design
        ep = endpoint or d.endpoints[0]
        check_option("endpoint", ep, d.endpoints, exc=ModelSpecError)
        t = np.atleast_1d(np.asarray(times, dtype=float))
        p = self.kinetics(dose)
        lf = src.spec.model.log_predict(t[None, :], {k: v[:, None] for k, v in p.items()})
        ls = f"log_scale_{ep}"
        if ls in d.theta_names:
            lf = lf + self.theta_t[:, d.theta_names.index(ls)][:, None]
        err = src.spec.error
        sig = {n: self.sigma[:, d.sigma_names.index(f"{n}_{ep}")][:, None]
               for n in err.param_names}
        z = np.stack([np.random.default_rng(participant_seed(self.seed, 2, j)).standard_normal(
            t.size) for j in range(self.n)])
        f = np.exp(lf)
        if err.kind == "log_additive":
            return f * np.exp(next(iter(sig.values())) * z)
        if err.kind == "additive":
            return f + next(iter(sig.values())) * z
        if err.kind == "proportional":
            return f * (1 + next(iter(sig.values())) * z)
        vals = list(sig.values())
        return f + np.sqrt(vals[0] ** 2 + (vals[1] * f) ** 2) * z

    def to_frame(self) -> pd.DataFrame:
        """One row per participant: set, covariates, dose factor and random effects."""
        df = self.covariates.copy()
        df.insert(0, "set", self.set_index)
        df.insert(0, "participant", np.arange(self.n))
        df["dose_factor"] = self.dose_factor
        for j, e in enumerate(self.source.design.eta_names):
            df[f"eta_{e}"] = self.eta[:, j]
        return df


def _draw_units(seed: int, start: int, stop: int, k: int, covariates: CovariateModel,
                shortfall: Shortfall) -> dict[str, Any]:
    """Draw participants ``start..stop-1``, each from its own stream ``(1, j)``."""
    levels = list(covariates.disease)
    pr = np.array([covariates.disease[v] for v in levels], dtype=float)
    cum = np.cumsum(pr / pr.sum())
    n = stop - start
    eta = np.empty((n, k))
    fac = np.ones(n)
    rows: list[dict[str, Any]] = []
    for i, j in enumerate(range(start, stop)):
        rng = np.random.default_rng(participant_seed(seed, 1, j))
        eta[i] = rng.standard_normal(k)
        u = rng.random(4)
        if u[0] < shortfall.fraction:
            fac[i] = shortfall.low + (shortfall.high - shortfall.low) * u[1]
        g = rng.standard_normal(2)
        if covariates.table is not None:
            rows.append(dict(covariates.table.iloc[int(u[2] * len(covariates.table))]))
        else:
            rows.append({"weight": covariates.weight[0] * math.exp(covariates.weight[1] * g[0]),
                         "disease": levels[int(np.searchsorted(cum, u[3], side="right"))
                                           if u[3] < cum[-1] else len(levels) - 1],
                         "b0": covariates.b0[0] * math.exp(covariates.b0[1] * g[1])})
    return {"z": eta, "dose_factor": fac, "rows": rows}


def draw_virtual(source: VirtualSource, n_per_set: int, *, n_sets: int = 1,
                 uncertainty: str = "auto", covariates: CovariateModel | None = None,
                 shortfall: Shortfall | None = None, seed: int = 20240409,
                 chunk_size: int = 1000, workers: int = 1, first: int = 0,
                 scheduler: Any = None) -> VirtualParticipants:
    """Draw ``n_sets x n_per_set`` virtual participants.

    Parameters
    ----------
    source : VirtualSource
        Population parameters and their uncertainty.
    n_per_set : int
        Participants per parameter set.
    n_sets : int, default 1
        Parameter sets (uncertainty draws); participant ``j`` uses set ``j // n_per_set``.
    uncertainty : {"auto", "none"}
        ``auto``: the source's covariance or posterior draws where present.
    covariates : CovariateModel, optional
    shortfall : Shortfall, optional
        Default: none.
    seed : int
        Root seed (see the module docstring).
    chunk_size, workers : int
        Participants per unit of work and processes (:func:`carkinetics.parallel.map_units`);
        results do not depend on either.
    first : int, default 0
        Index of the first participant in the root stream (participant ``j`` of the result
        draws from stream ``(1, first + j)``), so a large population can be drawn in pieces.
    scheduler : str or distributed.Client, optional
        Backend of :func:`carkinetics.parallel.map_units`; results do not depend on it.

    Returns
    -------
    VirtualParticipants
    """
    for name, v in (("n_per_set", n_per_set), ("n_sets", n_sets), ("chunk_size", chunk_size),
                    ("workers", workers)):
        if not (isinstance(v, (int, np.integer)) and v >= 1):
            raise ModelSpecError(f"Invalid {name}={v!r}; expected an integer >= 1.")
    covariates = covariates or CovariateModel()
    shortfall = shortfall or Shortfall()
    th, om, sg = source.draw_sets(n_sets, seed, uncertainty=uncertainty)
    k = om.shape[1]
    n = n_sets * n_per_set
    if not (isinstance(first, (int, np.integer)) and first >= 0):
        raise ModelSpecError(f"Invalid first={first!r}; expected an integer >= 0.")
    units = [(seed, first + a, first + min(a + chunk_size, n), k, covariates, shortfall)
             for a in range(0, n, chunk_size)]
    from carkinetics.parallel import UnitFailure, map_units

    res = map_units(_draw_chunk, units, workers=workers, scheduler=scheduler, chunksize=1,
                    progress=False, retries=0)
    bad = [r for r in res if isinstance(r, UnitFailure)]
    if bad:
        raise ModelSpecError(f"Drawing virtual participants failed: {bad[0].message}")
    z = np.concatenate([r["z"] for r in res]) if res else np.zeros((0, k))
    fac = np.concatenate([r["dose_factor"] for r in res])
    rows = [row for r in res for row in r["rows"]]
    sets = np.arange(n) // n_per_set
    roots = np.stack([_sqrt_psd(o) for o in om]) if k else np.zeros((n_sets, 0, 0))
    eta = np.einsum("nij,nj->ni", roots[sets], z) if k else np.zeros((n, 0))
    return VirtualParticipants(source=source, set_index=sets, theta_t=th[sets],
                               sigma=sg[sets], eta=eta, covariates=pd.DataFrame(rows),
                               dose_factor=fac, seed=int(seed))


def _draw_chunk(unit: tuple) -> dict[str, Any]:
    seed, a, b, k, cov, sf = unit
    return _draw_units(seed, a, b, k, cov, sf)


# -- exposure -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ExposurePrediction:
    """Predicted exposure of virtual participants at candidate doses (frozen).

    Attributes
    ----------
    doses : ndarray (n_doses,)
        Assigned doses (cells/kg).
    values : dict of str to ndarray (n_doses, n)
        Per metric (:data:`EXPOSURE_METRICS` computed), per dose and participant.
    limits : dict of str to (direction, value)
        Exposure limits: ``(">", v)`` harmful above ``v``, ``("<", v)`` below.
    level : float
        Prediction-interval mass (0.9).
    """

    doses: Arr
    values: dict[str, Arr]
    limits: dict[str, tuple[str, float]]
    level: float = 0.9

    def summary(self, metric: str) -> pd.DataFrame:
        """Median, prediction interval and exceedance probability of one metric per dose."""
        check_option("metric", metric, list(self.values), exc=ModelSpecError)
        v = self.values[metric]
        a = (1 - self.level) / 2
        with np.errstate(invalid="ignore"):
            q = np.quantile(v, [0.5, a, 1 - a], axis=1, method="inverted_cdf")
        df = pd.DataFrame({"dose": self.doses, "metric": metric, "median": q[0],
                           "lower": q[1], "upper": q[2]})
        if metric in self.limits:
            op, lim = self.limits[metric]
            df["limit"] = lim
            df["direction"] = op
            df["p_exceed"] = (v > lim).mean(axis=1) if op == ">" else (v < lim).mean(axis=1)
        return df

    def to_frame(self) -> pd.DataFrame:
        """Long table: ``dose, metric, median, lower, upper`` (and limit columns)."""
        return pd.concat([self.summary(m) for m in self.values], ignore_index=True)


def predict_exposure(participants: VirtualParticipants, doses: Sequence[float], *,
                     limits: Mapping[str, float | tuple[str, float]] | None = None,
                     pd_model: str | None = "immunoglobulins",
                     pd_params: Mapping[str, float] | None = None,
                     t_end: float = 365.0, level: float = 0.9) -> ExposurePrediction:
    """Predicted exposure of every virtual participant at every candidate dose.

    Parameters
    ----------
    participants : VirtualParticipants
    doses : sequence of float
        Assigned doses (cells/kg); each participant receives ``dose x dose_factor``.
    limits : mapping, optional
        ``metric -> value`` (direction of :data:`EXPOSURE_METRICS`) or ``metric ->
        (direction, value)``; the result gives the probability of exceeding each.
    pd_model : str or None, default "immunoglobulins"
        CK->PD system (:func:`carkinetics.pd.get_pd_model`) giving ``aplasia_duration``
        (days below the aplasia level; 0 if never aplasic; still aplasic at ``t_end``:
        censored at ``t_end``) and ``igg_nadir`` (g/L, needs an immunoglobulin module);
        None: kinetics only. The kinetic parameters replace the system's CAR-T parameters
        and ``b0`` is the participant's baseline B-cell count.
    pd_params : mapping, optional
        Other PD parameter values (default: the system's typical values).
    t_end : float, default 365
        Days simulated by the PD system.
    level : float, default 0.9
        Prediction-interval mass.

    Returns
    -------
    ExposurePrediction
    """
    dv = np.atleast_1d(np.asarray(doses, dtype=float))
    if dv.size == 0 or np.any(~np.isfinite(dv)) or np.any(dv <= 0):
        raise ModelSpecError(f"Invalid doses={list(dv)!r}; expected doses > 0 (cells/kg).")
    if not 0 < level < 1:
        raise ModelSpecError(f"Invalid level={level!r}; expected a mass in (0, 1).")
    m = participants.source.spec.model
    n = participants.n
    kin = [participants.kinetics(float(d)) for d in dv]
    values: dict[str, Arr] = {"cmax": np.empty((dv.size, n)), "auc_0_28": np.empty((dv.size, n))}
    for i, p in enumerate(kin):
        der = m.derived(p)
        values["cmax"][i] = der["cmax"]
        values["auc_0_28"][i] = der["auc_0_28"]
    if pd_model is not None:
        from carkinetics.pd import bcell_events, get_pd_model, ig_events

        system = get_pd_model(pd_model)
        par = {**system.typical(), **dict(pd_params or {})}
        unknown = [k for k in (pd_params or {}) if k not in system.param_names]
        if unknown:
            raise ModelSpecError(f"Invalid pd_params {unknown}; expected parameters of "
                                 f"{pd_model!r}." + closest(unknown[0], system.param_names))
        flat = {k: np.concatenate([p[k] for p in kin]) for k in kin[0]}
        full = {k: np.broadcast_to(np.asarray(v, dtype=float), (dv.size * n,)).copy()
                for k, v in par.items()}
        full.update(flat)
        if "b0" in full and "b0" in participants.covariates.columns:
            full["b0"] = np.tile(participants.covariates["b0"].to_numpy(float), dv.size)
        sim = system.simulate(full, t_end)
        ev = bcell_events(sim)
        dur = np.where(np.isfinite(ev["time_to_aplasia"]),
                       np.where(np.isfinite(ev["aplasia_duration"]), ev["aplasia_duration"],
                                t_end - ev["time_to_aplasia"]), 0.0)
        values["aplasia_duration"] = dur.reshape(dv.size, n)
        if "igg" in sim.values:
            values["igg_nadir"] = ig_events(sim)["igg_nadir"].reshape(dv.size, n)
    lim: dict[str, tuple[str, float]] = {}
    for k, v in (limits or {}).items():
        check_option("limit metric", k, list(values), exc=ModelSpecError)
        op, val = (v if isinstance(v, tuple) else (EXPOSURE_METRICS[k], v))
        check_option("limit direction", op, ("<", ">"), exc=ModelSpecError)
        lim[k] = (op, float(val))
    return ExposurePrediction(doses=dv, values=values, limits=lim, level=level)
