"""The CAR-T kinetic population model specification shared by FOCE-I and Bayes.

A :class:`PopulationSpec` says which kinetic model describes each participant, which of its
parameters vary between participants, which covariates act on which parameters, how the
latent level is observed (assays with their scale and residual error) and how censored
rows enter the likelihood. It is *estimator-neutral*: :meth:`PopulationSpec.design` binds
it to a data table (a :class:`PopulationDesign` of plain numpy arrays) and the functions

* :meth:`PopulationSpec.individual_internal` -- individual parameters on the transform
  scale (log, logit or none, per :class:`~carkinetics.models.base.ParameterSpec`),
* :meth:`PopulationSpec.individual` -- the same on the natural scale,
* :meth:`PopulationSpec.log_pred` -- the log of each row's expected value on its assay's
  scale (``log f(t) + log_scale[assay]``),
* :meth:`PopulationSpec.row_sigma` -- each row's residual sigma,

take an array namespace ``xp`` (:data:`~carkinetics.models._xp.NUMPY` or
:func:`~carkinetics.models._xp.pytensor_namespace`), so the FOCE-I engine evaluates them in
numpy (with leading batch dimensions) and the Bayesian fitter compiles *the same* functions
to a PyMC graph. :meth:`PopulationSpec.to_population_model` returns the
:class:`~carkinetics.fitting.population.focei.PopulationModel` of the FOCE-I engine.

Model, per participant ``i`` and kinetic parameter ``p`` with transform ``h_p``::

    h_p(P_ip) = h_p(TV_p) + sum_c effect_c(x_ic) + eta_ip,    eta_i ~ N(0, Omega)

with covariate effects on the transform scale: ``power`` ``theta_c * log(x / ref)`` (so
``P = TV * (x / ref) ** theta_c`` for log-transformed parameters; the default is dose on
the expansion level ``cmax`` with ``ref = 1e6`` cells/kg, i.e. ``dose_exp`` of
:func:`~carkinetics.models.base.dose_scale`), ``linear`` ``theta_c * (x - ref)`` and
``categorical`` ``theta_{c,level} * [x == level]`` (reference level: none). Random effects
are therefore log-normal on positive parameters and logit-normal on fractions. Parameters
without a random effect take ``eta = 0``.

Observation: row ``j`` of participant ``i`` measured by assay ``a`` has expected value
``exp(log_scale_a) * f(t_j; P_i)`` (``log_scale = 0`` for the reference assay, qPCR) and the
assay's residual error (by default log-additive, one sigma per assay); BLQ rows enter
through their censored likelihood (:func:`~carkinetics.observation.loglik_obs`, M3 by
default). An optional random effect on the non-reference assays' ``log_scale``
(``scale_random_effect=True``) lets the flow/qPCR ratio vary between participants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics._validation import check_option, closest
from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.models import get_model
from carkinetics.models._xp import NUMPY, Namespace
from carkinetics.models.base import DOSE_SPECS, Model, ParameterSpec
from carkinetics.observation import METHODS, ObservationModel, default_observation_model

__all__ = ["Covariate", "PopulationSpec", "PopulationDesign", "JOINT", "dose_covariate"]

JOINT = "joint"
#: relative distance of a row's time from tmax within which it counts as on the kink
KINK_WINDOW = 1e-5
CovariateKind = Literal["power", "linear", "categorical"]
_KINDS = ("power", "linear", "categorical")
_EFFECT_BOUND = 10.0


@dataclass(frozen=True)
class Covariate:
    """One covariate effect on one kinetic parameter (on the parameter's transform scale).

    Parameters
    ----------
    column : str
        Column of the data table (one value per participant; the first row's value is used
        and a value changing within a participant is an error).
    parameter : str, optional
        Kinetic parameter it acts on; default the model's level parameter (``cmax`` for
        ``piecewise``).
    kind : {"power", "linear", "categorical"}, default "power"
        ``power``: ``theta * log(x / reference)`` (x > 0); ``linear``: ``theta * (x -
        reference)``; ``categorical``: ``theta_level * [x == level]`` for every level other
        than the reference.
    reference : float or str, optional
        Reference value (power/linear; default the median over participants, 1e6 cells/kg
        for ``dose``) or reference level (categorical; default the most frequent level,
        ties broken alphabetically).
    name : str, optional
        Name of the effect parameter (power/linear) or prefix of the level parameters
        (categorical). Default ``dose_exp`` for dose on the level parameter, else
        ``<parameter>_<column>``.
    typical : float, default 0.0
        Starting value of the effect (``0.5`` for the default dose exponent).
    """

    column: str
    parameter: str | None = None
    kind: CovariateKind = "power"
    reference: float | str | None = None
    name: str | None = None
    typical: float | None = None

    def __post_init__(self) -> None:
        check_option("kind", self.kind, _KINDS, exc=ModelSpecError)
        if not isinstance(self.column, str) or not self.column:
            raise ModelSpecError(f"Invalid column={self.column!r}; expected a column name.")


def dose_covariate(parameter: str | None = None, reference: float = 1.0e6) -> Covariate:
    """The documented dose effect: power model on the expansion level per cells/kg."""
    return Covariate("dose", parameter, "power", reference)


@dataclass(frozen=True, eq=False)
class PopulationDesign:
    """A :class:`PopulationSpec` bound to one data table (plain numpy arrays).

    Attributes
    ----------
    rows : DataFrame
        The rows used (sorted by id, endpoint, time; pre-infusion and ``mdv`` rows dropped).
    ids : ndarray (n_ind,)
        Participant ids, in the order of the random-effect rows.
    covariates : DataFrame
        One row per participant: ``id`` and the covariate columns used.
    ind : ndarray of int (n_rows,)
        Participant index of each row.
    t, dv, lloq, uloq : ndarray (n_rows,)
        Time (days since infusion), observation (dv scale), limits (NaN where absent).
    cens : ndarray of int (n_rows,)
        0 quantified, 1 below LLOQ, -1 above ULOQ.
    assay : ndarray of int (n_rows,)
        Index of each row's assay into ``endpoints``.
    assay_mask : ndarray (n_assays, n_rows)
        ``1.0`` where the row belongs to the assay.
    endpoints : tuple of str
        Assays used (the reference first).
    effects : dict of str to ndarray (n_ind,)
        Covariate regressor of each effect parameter (``log(x / ref)``, ``x - ref`` or the
        level indicator).
    effect_target : dict of str to str
        Kinetic parameter of each effect parameter.
    theta_specs, sigma_specs : tuple of ParameterSpec
        Fixed effects (kinetic typical values, covariate effects, log scales of the
        non-reference assays) and residual parameters (one per assay and sigma kind).
    eta_names : tuple of str
        Parameters carrying a random effect (Omega's order).
    notes : tuple of str
        What was dropped or assumed.
    """

    rows: pd.DataFrame
    ids: NDArray[Any]
    covariates: pd.DataFrame
    ind: NDArray[np.int64]
    t: NDArray[np.float64]
    dv: NDArray[np.float64]
    lloq: NDArray[np.float64]
    uloq: NDArray[np.float64]
    cens: NDArray[np.int64]
    assay: NDArray[np.int64]
    assay_mask: NDArray[np.float64]
    endpoints: tuple[str, ...]
    effects: dict[str, NDArray[np.float64]]
    effect_target: dict[str, str]
    theta_specs: tuple[ParameterSpec, ...]
    sigma_specs: tuple[ParameterSpec, ...]
    eta_names: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def n_ind(self) -> int:
        """Number of participants."""
        return len(self.ids)

    @property
    def n_rows(self) -> int:
        """Number of rows."""
        return len(self.t)

    @property
    def theta_names(self) -> tuple[str, ...]:
        """Names of the fixed effects."""
        return tuple(s.name for s in self.theta_specs)

    @property
    def sigma_names(self) -> tuple[str, ...]:
        """Names of the residual parameters."""
        return tuple(s.name for s in self.sigma_specs)

    def theta_typical(self) -> dict[str, float]:
        """Starting values of the fixed effects (natural scale)."""
        return {s.name: s.typical for s in self.theta_specs}

    def sigma_typical(self) -> dict[str, float]:
        """Starting values of the residual parameters."""
        return {s.name: s.typical for s in self.sigma_specs}


@dataclass(frozen=True)
class PopulationSpec:
    """CK population model specification (see the module docstring).

    Parameters
    ----------
    model : str or Model, default "piecewise"
        Registered kinetic model (:func:`carkinetics.models.get_model`) or an instance.
    random_effects : sequence of str, optional
        Kinetic parameters with a random effect; default all of them.
    covariates : sequence of Covariate, default (dose power on the level parameter,)
        Covariate effects. Pass ``()`` for none.
    observation : ObservationModel, optional
        Assays; default :func:`~carkinetics.observation.default_observation_model`. All
        assays used must share one error kind.
    endpoint : str, default "joint"
        ``"joint"`` (every assay of the observation model present in the data) or one
        endpoint (e.g. ``"car_qpcr"``, which then acts as the reference).
    censoring : str, default "m3"
        Censoring method for BLQ rows (:data:`~carkinetics.observation.METHODS`).
    scale_random_effect : bool, default False
        Random effect on the ``log_scale`` of each non-reference assay.
    typical : mapping, optional
        Starting values overriding the specs' typical values (kinetic parameters, effect
        names, ``log_scale_<endpoint>``, sigma names).
    omega0 : float, default 0.3
        Starting variance of every random effect.

    Examples
    --------
    >>> spec = PopulationSpec()
    >>> spec.kinetic_names
    ('foldx', 'tmax', 'cmax', 'alpha', 'fb', 'beta')
    """

    model: str | Model = "piecewise"
    random_effects: Sequence[str] | None = None
    covariates: Sequence[Covariate] = field(default_factory=lambda: (dose_covariate(),))
    observation: ObservationModel | None = None
    endpoint: str = JOINT
    censoring: str = "m3"
    scale_random_effect: bool = False
    typical: Mapping[str, float] | None = None
    omega0: float = 0.3

    def __post_init__(self) -> None:
        m = get_model(self.model) if isinstance(self.model, str) else self.model
        if not isinstance(m, Model):
            raise ModelSpecError(f"Invalid model={self.model!r}; expected a model name or a "
                                 "carkinetics Model.")
        object.__setattr__(self, "model", m)
        names = m.param_names
        re = tuple(names if self.random_effects is None else self.random_effects)
        for r in re:
            if r not in names:
                raise ModelSpecError(f"Invalid random effect {r!r}; expected parameters of "
                                     f"{m.name!r}: {list(names)}." + closest(r, names))
        if len(set(re)) != len(re):
            raise ModelSpecError(f"Duplicate random effects in {list(re)}.")
        object.__setattr__(self, "random_effects", tuple(n for n in names if n in re))
        covs = []
        for c in self.covariates:
            if not isinstance(c, Covariate):
                raise ModelSpecError(f"Invalid covariate {c!r}; expected a Covariate.")
            par = c.parameter or m.level_param
            if par not in names:
                raise ModelSpecError(f"Invalid covariate parameter {par!r}; expected one of "
                                     f"{list(names)}." + closest(par, names))
            covs.append(replace(c, parameter=par))
        object.__setattr__(self, "covariates", tuple(covs))
        check_option("censoring", str(self.censoring).lower(), METHODS, exc=ModelSpecError)
        object.__setattr__(self, "censoring", str(self.censoring).lower())
        obs = self.observation or default_observation_model()
        if not isinstance(obs, ObservationModel):
            raise ModelSpecError(f"Invalid observation={obs!r}; expected an ObservationModel.")
        if self.endpoint != JOINT and self.endpoint not in obs.endpoints:
            raise ModelSpecError(
                f"Invalid endpoint={self.endpoint!r}; expected 'joint' or one of "
                f"{list(obs.endpoints)}." + closest(self.endpoint, obs.endpoints))
        if self.endpoint != JOINT:
            a = obs.assays[self.endpoint]
            obs = ObservationModel({self.endpoint: replace(a, log_scale=0.0)})
        kinds = {a.error for a in obs.assays.values()}
        if len(kinds) != 1:
            raise ModelSpecError("All assays of a population model must share one ErrorModel; "
                                 f"got {sorted(e.kind for e in kinds)}.")
        object.__setattr__(self, "observation", obs)
        if not (math.isfinite(self.omega0) and self.omega0 > 0):
            raise ModelSpecError(f"Invalid omega0={self.omega0!r}; expected a variance > 0.")

    # -- metadata ---------------------------------------------------------------------------
    @property
    def kinetic_names(self) -> tuple[str, ...]:
        """Parameters of the kinetic model, in order."""
        return self.model.param_names  # type: ignore[union-attr]

    @property
    def error(self):
        """The (shared) residual ErrorModel of the assays."""
        return next(iter(self.observation.assays.values())).error  # type: ignore[union-attr]

    def _typical(self, spec: ParameterSpec) -> ParameterSpec:
        if self.typical and spec.name in self.typical:
            return replace(spec, typical=float(spec.check(self.typical[spec.name])))
        return spec

    # -- binding to data --------------------------------------------------------------------
    def design(self, data: pd.DataFrame) -> PopulationDesign:
        """Bind the specification to a long-format data table.

        Rows before infusion (``time < 0``), rows with ``mdv == 1`` or a missing ``dv`` and
        rows of endpoints the specification does not use are dropped (listed in ``notes``).

        Raises
        ------
        DataError
            If a needed column is missing, a covariate column has missing values (naming the
            column and the rows) or changes within a participant, a power covariate is not
            positive, or no row remains.
        """
        if not isinstance(data, pd.DataFrame):
            raise ModelSpecError(f"Invalid data of type {type(data).__name__}; expected a "
                                 "pandas DataFrame in the long format.")
        need = ["id", "time", "dv"] + [c.column for c in self.covariates]
        missing = [c for c in dict.fromkeys(need) if c not in data.columns]
        if missing:
            raise DataError([f"column {c!r} is missing (needed by the population model)."
                             for c in missing], source="population data")
        obs: ObservationModel = self.observation  # type: ignore[assignment]
        df = data.copy()
        if "endpoint" not in df.columns:
            df["endpoint"] = obs.reference
        if "cens" not in df.columns:
            df["cens"] = 0
        notes: list[str] = []
        keep = df["endpoint"].isin(obs.endpoints).to_numpy().copy()
        if (~keep).any():
            other = sorted(map(str, pd.unique(df.loc[~keep, "endpoint"])))
            notes.append(f"{int((~keep).sum())} row(s) of endpoint(s) {other} not modelled.")
        pre = keep & (df["time"].to_numpy(float) < 0)
        if pre.any():
            notes.append(f"{int(pre.sum())} pre-infusion row(s) (time < 0) left out.")
        keep &= ~pre
        if "mdv" in df.columns:
            mdv = keep & (df["mdv"].to_numpy() == 1)
            if mdv.any():
                notes.append(f"{int(mdv.sum())} row(s) with mdv == 1 left out.")
            keep &= ~mdv
        nodv = keep & ~np.isfinite(df["dv"].to_numpy(float))
        if nodv.any():
            notes.append(f"{int(nodv.sum())} row(s) without dv left out.")
        keep &= ~nodv
        # covariates: checked on the rows used, one value per participant
        problems = []
        for c in dict.fromkeys(c.column for c in self.covariates):
            bad = keep & df[c].isna().to_numpy()
            if bad.any():
                idx = list(df.index[bad])
                problems.append(f"column {c!r}: missing values in {int(bad.sum())} row(s) "
                                f"(rows {idx[:10]}{' ...' if len(idx) > 10 else ''}; "
                                f"participants {sorted(map(str, pd.unique(df.loc[bad, 'id'])))}"
                                "); impute or drop them before a population fit.")
        if problems:
            raise DataError(problems, source="population data")
        df = df[keep]
        if df.empty:
            raise DataError("no row left to fit (after dropping pre-infusion rows and "
                            "endpoints not modelled).", source="population data")
        order = {e: i for i, e in enumerate(obs.endpoints)}
        df = df.assign(_ep=df["endpoint"].map(order)).sort_values(
            ["id", "_ep", "time"], kind="stable")
        cov_cols = list(dict.fromkeys(c.column for c in self.covariates))
        grp = df.groupby("id", sort=False)
        for c in cov_cols:
            varying = grp[c].nunique(dropna=False)
            varying = varying[varying > 1]
            if len(varying):
                raise DataError(f"column {c!r} changes within participant(s) "
                                f"{list(map(str, varying.index[:10]))}; time-varying covariates "
                                "are not supported.", source="population data")
        cov = grp[cov_cols].first().reset_index() if cov_cols else \
            pd.DataFrame({"id": pd.unique(df["id"])})
        ids = cov["id"].to_numpy()
        pos = {v: i for i, v in enumerate(ids)}
        ind = df["id"].map(pos).to_numpy(np.int64)
        ep = df["_ep"].to_numpy(np.int64)
        used = sorted(set(ep.tolist()))
        endpoints = tuple(obs.endpoints[i] for i in used)
        remap = {old: new for new, old in enumerate(used)}
        assay = np.array([remap[e] for e in ep], dtype=np.int64)
        mask = np.stack([(assay == k).astype(float) for k in range(len(endpoints))])
        dv = df["dv"].to_numpy(float)
        lloq = df["lloq"].to_numpy(float) if "lloq" in df.columns else np.full(len(df), np.nan)
        uloq = df["uloq"].to_numpy(float) if "uloq" in df.columns else np.full(len(df), np.nan)
        cens = df["cens"].fillna(0).to_numpy(np.int64)

        m: Model = self.model  # type: ignore[assignment]
        theta = [self._typical(s) for s in m.params]
        effects: dict[str, NDArray[np.float64]] = {}
        target: dict[str, str] = {}
        for c in self.covariates:
            x = cov[c.column]
            base = c.name or ("dose_exp" if c.column == "dose" and c.parameter == m.level_param
                              and c.kind == "power" else f"{c.parameter}_{c.column}")
            if c.kind == "categorical":
                levels = sorted(map(str, pd.unique(x)))
                counts = x.astype(str).value_counts()
                ref = str(c.reference) if c.reference is not None else \
                    sorted(levels, key=lambda v: (-counts[v], v))[0]
                if ref not in levels:
                    raise DataError(f"column {c.column!r}: reference level {ref!r} not among "
                                    f"{levels}." + closest(ref, levels), source="population data")
                for lev in levels:
                    if lev == ref:
                        continue
                    name = f"{base}_{lev}"
                    effects[name] = (x.astype(str).to_numpy() == lev).astype(float)
                    target[name] = c.parameter  # type: ignore[assignment]
                    theta.append(self._typical(ParameterSpec(
                        name, "1", c.typical or 0.0, -_EFFECT_BOUND, _EFFECT_BOUND, "none",
                        f"shift of {c.parameter} (transform scale) for {c.column} == {lev} "
                        f"vs {ref}", "I: 0 (no effect) as a start")))
                continue
            xv = pd.to_numeric(x, errors="coerce").to_numpy(float)
            if not np.all(np.isfinite(xv)):
                raise DataError(f"column {c.column!r}: non-numeric values for a {c.kind} "
                                "covariate.", source="population data")
            if c.kind == "power":
                if np.any(xv <= 0):
                    bad = list(map(str, ids[xv <= 0][:10]))
                    raise DataError(f"column {c.column!r}: values <= 0 for a power covariate "
                                    f"(participants {bad}).", source="population data")
                ref = float(c.reference) if c.reference is not None else (
                    DOSE_SPECS[0].typical if c.column == "dose" else float(np.median(xv)))
                effects[base] = np.log(xv) - math.log(ref)
                desc = f"exponent of ({c.column} / {ref:g}) on {c.parameter}"
            else:
                ref = float(c.reference) if c.reference is not None else float(np.median(xv))
                effects[base] = xv - ref
                desc = f"slope of ({c.column} - {ref:g}) on {c.parameter} (transform scale)"
            target[base] = c.parameter  # type: ignore[assignment]
            start = c.typical if c.typical is not None else (
                DOSE_SPECS[1].typical if base == "dose_exp" else 0.0)
            theta.append(self._typical(ParameterSpec(
                base, "1", start, -_EFFECT_BOUND, _EFFECT_BOUND, "none", desc,
                "I: neutral start")))
        sigma = []
        for k, e in enumerate(endpoints):
            a = obs.assays[e]
            specs = a.param_specs(include_scale=k > 0 and e != obs.reference)
            for s in specs:
                if s.name.startswith("log_scale_"):
                    theta.append(self._typical(s))
                else:
                    sigma.append(self._typical(s))
        etas = tuple(self.random_effects)  # type: ignore[arg-type]
        if self.scale_random_effect:
            etas += tuple(f"log_scale_{e}" for e in endpoints[1:])
        rows = df.drop(columns="_ep").reset_index(drop=True)
        return PopulationDesign(
            rows=rows, ids=ids, covariates=cov, ind=ind, t=df["time"].to_numpy(float),
            dv=dv, lloq=lloq, uloq=uloq, cens=cens, assay=assay, assay_mask=mask,
            endpoints=endpoints, effects=effects, effect_target=target,
            theta_specs=tuple(theta), sigma_specs=tuple(sigma), eta_names=etas,
            notes=tuple(notes))

    def initial_theta(self, design: PopulationDesign) -> dict[str, float]:
        """Data-based starting values of the fixed effects (natural scale).

        For the ``piecewise`` parameters, medians over participants of simple summaries of
        the reference assay's quantified rows: the observed peak (``cmax``, divided by the
        starting covariate effects on it, and ``tmax``), the fold expansion implied by the
        earliest quantified sample before the peak, the log-linear slope within 28 days
        after the peak (``alpha``) and after day 90 (``beta``, with ``fb`` from its
        intercept at the peak); ``log_scale`` of each other assay from the median log
        ratio of paired quantified samples. Other values (and anything the data cannot
        give) are the specs' typical values; user-given ``typical`` values win.
        """
        theta = design.theta_typical()
        by = {s.name: s for s in design.theta_specs}
        ref = design.assay == 0
        q = ref & (design.cens == 0)
        est: dict[str, list[float]] = {k: [] for k in ("cmax", "tmax", "foldx", "alpha",
                                                         "beta", "fb")}
        shift = np.zeros(design.n_ind)  # starting covariate effects on log cmax
        for name, target in design.effect_target.items():
            if target == "cmax":
                shift += theta[name] * design.effects[name]
        for i in range(design.n_ind):
            r = np.flatnonzero(q & (design.ind == i))
            if r.size < 2:
                continue
            t, ly = design.t[r], np.log(design.dv[r])
            k = int(np.argmax(ly))
            tp, lc = float(t[k]), float(ly[k])
            est["cmax"].append(lc - shift[i])
            if tp > 0:
                est["tmax"].append(math.log(tp))
            before = np.flatnonzero(t < tp)
            if before.size and tp > 0:
                j = before[0]
                frac = 1.0 - t[j] / tp
                if frac > 0.05:
                    est["foldx"].append(max((lc - ly[j]) / frac, 0.5))
            early = (t > tp) & (t <= tp + 28)
            if np.count_nonzero(early) >= 1:
                sl = np.polyfit(np.r_[tp, t[early]], np.r_[lc, ly[early]], 1)[0]
                if sl < 0:
                    est["alpha"].append(math.log(-sl))
            late = t > 90
            if np.count_nonzero(late) >= 2:
                sl, ic = np.polyfit(t[late], ly[late], 1)
                if sl < 0:
                    est["beta"].append(math.log(-sl))
                    lfb = ic + sl * tp - lc
                    if lfb < 0:
                        est["fb"].append(lfb)
        kin = set(self.kinetic_names)
        for name, vals in est.items():
            if name in kin and vals and name in by and not (self.typical and name in
                                                              self.typical):
                v = float(np.exp(np.median(vals)))
                s = by[name]
                v = min(max(v, s.lower * 1.01 + 1e-12), s.upper * 0.99)
                if s.contains(v):
                    theta[name] = v
        for k, e in enumerate(design.endpoints[1:], start=1):
            name = f"log_scale_{e}"
            if name not in theta or (self.typical and name in self.typical):
                continue
            a = design.rows.assign(_a=design.assay, _q=design.cens == 0)
            ra = a[(a["_a"] == 0) & a["_q"]].set_index(["id", "time"])["dv"]
            rb = a[(a["_a"] == k) & a["_q"]].set_index(["id", "time"])["dv"]
            both = ra.index.intersection(rb.index)
            if len(both):
                theta[name] = float(np.median(np.log(rb.loc[both].to_numpy(float))
                                              - np.log(ra.loc[both].to_numpy(float))))
        return theta

    # -- the model, in any namespace ----------------------------------------------------------
    @staticmethod
    def _to_internal(spec: ParameterSpec, v, xp: Namespace):
        if spec.transform == "log":
            return xp.log(v)
        if spec.transform == "logit":
            return xp.log(v) - xp.log1p(-v)
        return v

    @staticmethod
    def _from_internal(spec: ParameterSpec, x, xp: Namespace):
        if spec.transform == "log":
            return xp.exp(x)
        if spec.transform == "logit":
            return 1.0 / (1.0 + xp.exp(-x))
        return x

    def individual_internal(self, theta: Mapping[str, Any], eta: Any, design: PopulationDesign,
                            *, xp: Namespace = NUMPY, internal: bool = False) -> dict[str, Any]:
        """Individual kinetic parameters on their transform scale.

        Parameters
        ----------
        theta : mapping
            Fixed effects by name (``design.theta_names``): natural scale, or the transform
            scale with ``internal=True``. Values may be scalars or arrays of shape ``(B, 1)``
            (a batch of parameter vectors, numpy) or pytensor scalars.
        eta : array (..., n_ind, k) or None
            Random effects in the order of ``design.eta_names`` (None: all zero, the
            typical participant with covariates).
        design : PopulationDesign
        xp : Namespace, default NUMPY
        internal : bool, default False
            Whether ``theta`` is given on the transform scale.

        Returns
        -------
        dict of str to array (..., n_ind)
            One entry per kinetic parameter (and ``log_scale_<endpoint>`` for each
            non-reference assay).
        """
        out: dict[str, Any] = {}
        by_name = {s.name: s for s in design.theta_specs}
        kin = set(self.kinetic_names)
        for name, s in by_name.items():
            if name in kin or name.startswith("log_scale_"):
                v = theta[name]
                out[name] = v if internal else self._to_internal(s, v, xp)
        for name, target in design.effect_target.items():
            out[target] = out[target] + theta[name] * design.effects[name]
        for j, name in enumerate(design.eta_names):
            if eta is not None:
                out[name] = out[name] + eta[..., j]
        zero = np.zeros(design.n_ind)  # every entry gets the participant axis
        return {k: v + zero for k, v in out.items()}

    def individual(self, theta: Mapping[str, Any], eta: Any, design: PopulationDesign, *,
                   xp: Namespace = NUMPY, internal: bool = False) -> dict[str, Any]:
        """Individual kinetic parameters on the natural scale (see :meth:`individual_internal`).

        ``log_scale_<endpoint>`` entries stay on the log scale.
        """
        phi = self.individual_internal(theta, eta, design, xp=xp, internal=internal)
        m: Model = self.model  # type: ignore[assignment]
        return {k: (self._from_internal(m.spec(k), v, xp) if k in self.kinetic_names else v)
                for k, v in phi.items()}

    def log_pred(self, theta: Mapping[str, Any], eta: Any, design: PopulationDesign, *,
                 xp: Namespace = NUMPY, internal: bool = False, params: Mapping | None = None):
        """Log of each row's expected value on its assay's scale, shape ``(..., n_rows)``.

        ``log f(t_j; P_i) + log_scale[assay_j]``; ``params`` (the output of
        :meth:`individual`) may be passed to skip recomputing them.
        """
        p = params if params is not None else self.individual(theta, eta, design, xp=xp,
                                                               internal=internal)
        m: Model = self.model  # type: ignore[assignment]
        rows = {k: v[..., design.ind] for k, v in p.items() if k in self.kinetic_names}
        out = m.log_predict(design.t, rows, xp=xp)
        for k, e in enumerate(design.endpoints):
            key = f"log_scale_{e}"
            if key in p:
                out = out + p[key][..., design.ind] * design.assay_mask[k]
        return out

    def log_pred_jac(self, theta: Mapping[str, Any], eta: NDArray[np.float64],
                     design: PopulationDesign) -> tuple[NDArray, NDArray]:
        """Numpy only: :meth:`log_pred` (B, n_rows) and its derivative in eta (B, n_rows, k).

        When a row lies on the kink of the piecewise curve (``|t - tmax_i| <= 1e-5
        tmax_i``) a third item ``(jac_left, jac_right)`` gives the one-sided derivatives
        (the information of that row is the mean of both outer products).

        ``theta`` values are scalars or ``(B, 1)`` arrays, ``eta`` has shape ``(B, n_ind,
        k)``. For the ``piecewise`` model the kinetic derivatives are the analytic closed
        form of :func:`carkinetics.fitting._problem._piecewise_jac` (per participant); other
        models use central differences of ``log_predict`` on the transform scale.
        """
        m: Model = self.model  # type: ignore[assignment]
        phi = self.individual_internal(theta, eta, design)
        kin = self.kinetic_names
        specs = [m.spec(k) for k in kin]
        nat = {k: self._from_internal(s, phi[k], NUMPY) for k, s in zip(kin, specs, strict=True)}
        nat.update({k: v for k, v in phi.items() if k not in nat})
        with np.errstate(over="ignore", under="ignore", divide="ignore"):
            logf = self.log_pred(theta, eta, design, params=nat)
        b = logf.shape[0]
        need = [n for n in design.eta_names if n in kin]
        dk = np.zeros((b, design.n_rows, len(kin)))
        if need:
            dk = _kinetic_jac(m, design, phi, kin, specs, b, design.t)

        def select(d):
            cols = []
            for n in design.eta_names:
                if n in kin:
                    cols.append(d[..., kin.index(n)])
                else:
                    k = design.endpoints.index(n[len("log_scale_"):])
                    cols.append(np.broadcast_to(design.assay_mask[k], (b, design.n_rows)))
            return np.stack(cols, axis=-1) if cols else np.zeros((b, design.n_rows, 0))

        jac = select(dk)
        # A kink of the curve at a parameter value (the piecewise model at t == tmax) makes
        # the row's derivative jump; an EBE often sits exactly there (tmax_i at the observed
        # peak). The information of such a row is then the mean of its left and right
        # outer products, so the Laplace term does not jump as the EBE moves along the kink.
        if "tmax" in need:
            tm = np.broadcast_to(nat["tmax"], (b, design.n_ind))[..., design.ind]
            near = np.abs(design.t - tm) <= KINK_WINDOW * tm
            if near.any():
                lo = _kinetic_jac(m, design, phi, kin, specs, b, design.t * (1 - 2 * KINK_WINDOW))
                hi = _kinetic_jac(m, design, phi, kin, specs, b, design.t * (1 + 2 * KINK_WINDOW))
                j_lo = np.where(near[..., None], select(lo), jac)
                j_hi = np.where(near[..., None], select(hi), jac)
                return logf, jac, (j_lo, j_hi)
        return logf, jac

    def row_sigma(self, sigma: Mapping[str, Any], design: PopulationDesign) -> list[Any]:
        """Per-row residual sigma(s): one ``(..., n_rows)`` array per sigma kind.

        Built as ``sum_a sigma_a * mask_a`` so it works in any namespace.
        """
        out = []
        for pname in self.error.param_names:
            acc = 0.0
            for k, e in enumerate(design.endpoints):
                acc = acc + sigma[f"{pname}_{e}"] * design.assay_mask[k]
            out.append(acc)
        return out

    def to_population_model(self, data: pd.DataFrame | PopulationDesign):
        """The FOCE-I engine's :class:`PopulationModel` for this specification and data.

        Returns
        -------
        (PopulationModel, DataFrame, DataFrame)
            The model, the observation rows and the per-participant covariates to pass to
            :func:`~carkinetics.fitting.population.focei.fit_focei`.
        """
        from carkinetics.fitting.population.focei import PopulationModel

        d = data if isinstance(data, PopulationDesign) else self.design(data)
        return PopulationModel.from_spec(self, d), d.rows, d.covariates


def _kinetic_jac(m: Model, design: PopulationDesign, phi: Mapping[str, NDArray],
                 kin: Sequence[str], specs: Sequence[ParameterSpec], b: int,
                 t: NDArray) -> NDArray:
    """Return d log f / d (transform-scale kinetic parameters) of every row, (B, n_rows, n_kin)."""
    from carkinetics.models.piecewise import PiecewiseModel

    xk = np.stack([np.broadcast_to(phi[k], (b, design.n_ind)) for k in kin], axis=-1)
    analytic = None
    if type(m) is PiecewiseModel:
        try:
            from carkinetics.fitting._problem import _piecewise_jac as analytic
        except ImportError:  # pragma: no cover - internal helper renamed
            analytic = None
    if analytic is not None:
        counts = np.bincount(design.ind, minlength=design.n_ind)
        edges = np.concatenate([[0], np.cumsum(counts)])
        out = np.empty((b, design.n_rows, len(kin)))
        for i in range(design.n_ind):
            a, e = edges[i], edges[i + 1]
            with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
                out[:, a:e] = analytic(t[a:e], xk[:, i], specs)
        return out
    h = 1e-6
    nk = len(kin)
    pert = np.repeat(xk[:, None], 2 * nk, axis=1)  # (B, 2nk, n_ind, nk)
    for j in range(nk):
        pert[:, 2 * j, :, j] += h
        pert[:, 2 * j + 1, :, j] -= h
    rows = {k: s.from_internal(pert[..., j])[..., design.ind]
            for j, (k, s) in enumerate(zip(kin, specs, strict=True))}
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        lp = np.broadcast_to(m.log_predict(t, rows), (b, 2 * nk, design.n_rows))
    return np.stack([(lp[:, 2 * j] - lp[:, 2 * j + 1]) / (2 * h) for j in range(nk)], axis=-1)
