"""Exposure-informed dose escalation: DLT probability modelled against CAR-T exposure.

Model: participant ``i`` with exposure ``x_i`` (e.g. Cmax, observed or predicted by the CK
model at the dose delivered) has a DLT with probability ::

    P(DLT | x) = expit(a + exp(g) * (log x - log x_ref))

(logistic in log exposure, increasing; ``exp(g)`` the slope). Weakly informative prior:
``a ~ N(logit(target), a_sd^2)`` (at the reference exposure, default 2) and ``g ~ N(0,
g_sd^2)`` (default 1, slope between 0.14 and 7 with 95 % mass). The posterior is computed on a
fixed grid in ``(a, g)`` (``n_grid^2`` points over +-6 prior SDs, exact up to the grid
resolution; tested against scipy quadrature).

Dose-exposure relation: the CK model (virtual participants, :mod:`carkinetics.simulate.virtual`)
gives, per dose level, either the typical exposure (shape ``(n_doses,)``: the decision quantity
is ``P(DLT at the dose's typical exposure)``) or exposure quantiles (shape ``(n_doses, m)``: the
population DLT rate at the dose, the mean over the quantiles). Because every participant's
DLT informs the same two parameters, information is shared across doses through exposure.

Decision (EWOC-style overdose control): dose ``d`` is admissible when the posterior
probability ``P(p_d > target + margin | data) < overdose``; the next cohort receives the
highest admissible dose, never more than one level above the highest dose tried (no skipping
of untried doses), the lowest dose when none is admissible. Safety stop (no MTD) once
``P(p_lowest > target) > stop_cutoff`` (0.95). At the end the MTD is the tried dose whose
posterior mean ``p_d`` is closest to the target (optionally only among admissible doses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit, log_expit

from carkinetics._validation import check_option
from carkinetics.escalation.base import Decision, Design, ParticipantPool, TrialState
from carkinetics.exceptions import DataError, ModelSpecError

__all__ = ["ExposureDesign", "ExposurePosterior", "make_design", "exposure_pool",
           "simulate_trials", "exposure_quantiles", "source_from_table", "read_population",
           "read_ck_params"]


class ExposurePosterior:
    """Grid posterior of the logistic exposure-toxicity model.

    Parameters
    ----------
    x_ref : float
        Reference exposure (> 0) at which ``a`` is the log-odds of a DLT.
    prior_mean_a : float
        Prior mean of ``a``.
    a_sd, g_sd : float
        Prior SDs of ``a`` and of the log slope ``g`` (prior mean 0).
    n_grid : int, default 101
        Grid points per axis.
    """

    def __init__(self, x_ref: float, prior_mean_a: float, a_sd: float = 2.0,
                 g_sd: float = 1.0, n_grid: int = 101) -> None:
        if not (math.isfinite(x_ref) and x_ref > 0):
            raise ModelSpecError(f"Invalid x_ref={x_ref!r}; expected an exposure > 0.")
        if not (a_sd > 0 and g_sd > 0):
            raise ModelSpecError(f"Invalid prior SDs a_sd={a_sd!r}, g_sd={g_sd!r}; expected > 0.")
        if int(n_grid) < 11:
            raise ModelSpecError(f"Invalid n_grid={n_grid!r}; expected >= 11.")
        self.lx_ref = math.log(x_ref)
        self.mu_a, self.a_sd, self.g_sd = float(prior_mean_a), float(a_sd), float(g_sd)
        a = self.mu_a + np.linspace(-6, 6, int(n_grid)) * a_sd
        g = np.linspace(-6, 6, int(n_grid)) * g_sd
        aa, gg = np.meshgrid(a, g, indexing="ij")
        self.a, self.g = aa.ravel(), gg.ravel()
        self.b = np.exp(self.g)
        self.log_prior = (-0.5 * ((self.a - self.mu_a) / a_sd) ** 2
                          - 0.5 * (self.g / g_sd) ** 2)
        self._cache = (np.zeros(0), np.zeros(0), np.zeros(self.a.size))

    def log_lik(self, exposure: Any, dlt: Any) -> np.ndarray:
        """Bernoulli log-likelihood at every grid point."""
        lx = np.log(np.asarray(exposure, dtype=float)) - self.lx_ref
        y = np.asarray(dlt, dtype=float)
        if lx.size == 0:
            return np.zeros(self.a.size)
        eta = self.a[:, None] + self.b[:, None] * lx[None, :]
        return (y * log_expit(eta) + (1 - y) * log_expit(-eta)).sum(axis=1)

    def weights(self, exposure: Any, dlt: Any) -> np.ndarray:
        """Normalised posterior weights of the grid points.

        The log-likelihood of the longest previously seen prefix of the same participants
        is reused (a trial adds participants cohort by cohort), so only new rows are
        evaluated; the result is the same as a full evaluation up to summation order.
        """
        x = np.asarray(exposure, dtype=float).ravel()
        y = np.asarray(dlt, dtype=float).ravel()
        cx, cy, cll = self._cache
        k = cx.size
        if k <= x.size and np.array_equal(x[:k], cx) and np.array_equal(y[:k], cy):
            ll = cll + self.log_lik(x[k:], y[k:])
        else:
            ll = self.log_lik(x, y)
        self._cache = (x, y, ll)
        lp = self.log_prior + ll
        w = np.exp(lp - lp.max())
        return w / w.sum()

    def p_dlt(self, exposure: Any) -> np.ndarray:
        """``P(DLT)`` at every grid point for exposure(s): shape (n_grid^2, ...).

        A 2-D ``exposure`` (doses x quantiles of a population) is averaged over its last axis.
        """
        x = np.asarray(exposure, dtype=float)
        lx = np.log(x) - self.lx_ref
        eta = self.a.reshape((-1,) + (1,) * lx.ndim) + self.b.reshape((-1,) + (1,) * lx.ndim) * lx
        p = expit(eta)
        return p.mean(axis=-1) if lx.ndim == 2 else p

    def summarise(self, exposure: Any, dlt: Any, dose_exposure: Any,
                  limits: Sequence[float], p_grid: np.ndarray | None = None
                  ) -> dict[str, Any]:
        """Posterior mean of ``p_d`` and ``P(p_d > limit)`` per dose for each limit.

        ``p_grid`` (``p_dlt(dose_exposure)``) may be passed to skip recomputing it.
        """
        w = self.weights(exposure, dlt)
        p = self.p_dlt(dose_exposure) if p_grid is None else p_grid  # (G, n_doses)
        return {"p_mean": w @ p, "p_over": [w @ (p > lim) for lim in limits],
                "slope_mean": float(w @ self.b), "a_mean": float(w @ self.a)}


def _as_dose_exposure(dose_exposure: Any, n_doses: int) -> np.ndarray:
    x = np.asarray(dose_exposure, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] != n_doses:
        raise ModelSpecError(f"Invalid dose_exposure of shape {np.shape(dose_exposure)}; "
                             f"expected ({n_doses},) or ({n_doses}, m): one typical exposure or "
                             "m quantiles per dose level.")
    if np.any(~np.isfinite(x)) or np.any(x <= 0):
        raise ModelSpecError("Invalid dose_exposure: expected finite exposures > 0.")
    return x


class ExposureDesign(Design):
    """Exposure-informed escalation design (see the module docstring).

    Parameters
    ----------
    n_doses : int
    dose_exposure : array (n_doses,) or (n_doses, m)
        Typical exposure per dose level, or m exposure quantiles per dose level (from the CK
        model: :func:`exposure_quantiles`).
    target : float, default 0.3
    cohort_size, n_cohorts : int
    margin : float, default 0.05
        Overdose is ``p_d > target + margin``.
    overdose : float, default 0.25
        Largest admissible posterior probability of overdose (EWOC feasibility bound).
    x_ref : float, optional
        Reference exposure (default the typical exposure of the middle dose).
    a_sd, g_sd : float
        Prior SDs (see :class:`ExposurePosterior`).
    n_grid : int, default 81
        Grid points per axis.
    stop_cutoff : float, default 0.95
        Stop without MTD once ``P(p_lowest > target) > stop_cutoff`` (safety stop, as BOIN's
        elimination rule at the lowest dose).
    select : {"closest", "admissible"}, default "closest"
        MTD at the end: the tried dose with posterior mean ``p_d`` closest to the target
        (``admissible``: among doses meeting the overdose bound only).
    """

    name = "exposure"

    def __init__(self, n_doses: int, dose_exposure: Any, target: float = 0.3,
                 cohort_size: int = 3, n_cohorts: int = 10, *, margin: float = 0.05,
                 overdose: float = 0.25, x_ref: float | None = None, a_sd: float = 2.0,
                 g_sd: float = 1.0, n_grid: int = 81, stop_cutoff: float = 0.95,
                 select: str = "closest") -> None:
        super().__init__(n_doses, target, cohort_size, n_cohorts)
        self.dose_exposure = _as_dose_exposure(dose_exposure, self.n_doses)
        if not (0 <= margin < 1 - self.target):
            raise ModelSpecError(f"Invalid margin={margin!r}; expected 0 <= margin < "
                                 f"1 - target = {1 - self.target:g}.")
        if not 0 < overdose < 1:
            raise ModelSpecError(f"Invalid overdose={overdose!r}; expected a probability in "
                                 "(0, 1).")
        self.margin, self.overdose = float(margin), float(overdose)
        typ = np.median(self.dose_exposure, axis=1)
        ref = float(typ[(self.n_doses - 1) // 2]) if x_ref is None else float(x_ref)
        if not 0 < stop_cutoff < 1:
            raise ModelSpecError(f"Invalid stop_cutoff={stop_cutoff!r}; expected a "
                                 "probability in (0, 1).")
        self.stop_cutoff = float(stop_cutoff)
        self.select = check_option("select", select, ("closest", "admissible"),
                                   exc=ModelSpecError)
        self.posterior = ExposurePosterior(ref, math.log(self.target / (1 - self.target)),
                                           a_sd, g_sd, n_grid)
        self._p_grid = self.posterior.p_dlt(self.dose_exposure)

    def _exposures(self, state: TrialState) -> tuple[np.ndarray, np.ndarray]:
        ok = ~state.pending
        lvl = state.delivered_level[ok]
        typ = np.median(self.dose_exposure, axis=1)
        if state.exposure is None:
            x = typ[lvl]
        else:
            x = state.exposure[ok].copy()
            miss = ~np.isfinite(x)
            x[miss] = typ[lvl[miss]]  # no CK data yet: the dose's typical exposure
            if np.any(x <= 0):
                raise DataError("exposure: values <= 0; expected exposures > 0 (e.g. Cmax).",
                                source="trial state")
        return x, state.dlt[ok]

    def posterior_summary(self, state: TrialState) -> dict[str, Any]:
        """Posterior mean ``p_d``, ``P(overdose)`` per dose and admissibility."""
        self.check_state(state)
        x, y = self._exposures(state)
        s = self.posterior.summarise(x, y, self.dose_exposure,
                                     (self.target + self.margin, self.target), self._p_grid)
        s["p_over"], s["p_above_target"] = s["p_over"]
        s["admissible"] = s["p_over"] < self.overdose
        return s

    def posterior_interval(self, state: TrialState, level: float = 0.9) -> np.ndarray:
        """Equal-tailed posterior interval of ``P(DLT)`` at each dose, shape (2, n_doses).

        Quantiles over the same grid posterior as :meth:`posterior_summary`.
        """
        from carkinetics.escalation.base import weighted_quantiles

        self.check_state(state)
        x, y = self._exposures(state)
        a = (1.0 - level) / 2.0
        return weighted_quantiles(self._p_grid, self.posterior.weights(x, y), [a, 1.0 - a])

    def decide(self, state: TrialState) -> Decision:
        """Highest admissible dose, at most one level above the highest dose tried."""
        s = self.posterior_summary(state)
        cur = state.current
        tried = np.flatnonzero((state.n + state.n_pending) > 0)
        top = int(tried.max()) + 1 if tried.size else 0
        top = min(top, self.n_doses - 1)
        ok = np.flatnonzero(s["admissible"][:top + 1])
        nums = {"p_dlt_mean": s["p_mean"], "p_overdose": s["p_over"],
                "p_above_target": s["p_above_target"], "overdose_bound": self.overdose,
                "limit": self.target + self.margin, "highest_allowed": top, "n": state.n,
                "y": state.y}
        if state.n[0] > 0 and s["p_above_target"][0] > self.stop_cutoff:
            return Decision("stop", None, cur, f"P(p_DLT > {self.target:g}) at the lowest dose "
                            f"> {self.stop_cutoff:g}: stop without MTD", nums)
        nxt = int(ok.max()) if ok.size else 0
        action = "escalate" if nxt > cur else "deescalate" if nxt < cur else "stay"
        rule = (f"highest dose with P(p_DLT > {self.target + self.margin:g}) < "
                f"{self.overdose:g}, no skipping of untried doses")
        return Decision(action, nxt, cur, rule, nums)

    def select_mtd(self, state: TrialState) -> int | None:
        """Tried dose with posterior mean ``p_d`` closest to the target.

        With ``select="admissible"`` only doses meeting the overdose bound qualify; None after
        the safety stop or when no dose qualifies.
        """
        s = self.posterior_summary(state)
        if state.n[0] > 0 and s["p_above_target"][0] > self.stop_cutoff:
            return None
        ok = state.n > 0
        if self.select == "admissible":
            ok &= s["admissible"]
        ok = np.flatnonzero(ok)
        if ok.size == 0:
            return None
        return int(ok[np.argmin(np.abs(s["p_mean"][ok] - self.target))])

    def simulate_pool(self, pool: ParticipantPool) -> dict:
        """Run every trial of ``pool`` (per-trial loop; see :func:`simulate_trials`)."""
        return simulate_trials(self, pool)


def make_design(n_doses: int, target: float = 0.3, cohort_size: int = 3, n_cohorts: int = 10,
                **kw: Any) -> ExposureDesign:
    """Entry point of the design factory: :class:`ExposureDesign` (``dose_exposure`` required).

    Options the design does not use (e.g. BOIN's ``n_earlystop``) and ``None`` values are
    ignored, as in :func:`carkinetics.escalation.designs.make_design`.
    """
    import inspect

    if kw.get("dose_exposure") is None:
        raise ModelSpecError("The exposure design needs dose_exposure: the typical CK exposure "
                             "(or quantiles) per dose level from the population model.")
    params = inspect.signature(ExposureDesign.__init__).parameters
    opts = {k: v for k, v in kw.items() if k in params and v is not None}
    dex = opts.pop("dose_exposure")
    return ExposureDesign(n_doses, dex, target, int(cohort_size or 3), int(n_cohorts or 10),
                          **opts)


def simulate_trials(design: Design, pool: ParticipantPool) -> dict:
    """Run each trial of ``pool`` with ``design.decide`` / ``design.select_mtd``.

    Flow: the first cohort at level 0; each cohort of ``cohort_size`` takes the next unused
    slots of its dose (DLT and exposure of those virtual participants); after each cohort the
    design decides; the trial ends at ``stop`` or after ``n_cohorts`` cohorts. Any design with
    ``decide``/``select_mtd`` runs on the same participants (common random numbers).

    Returns
    -------
    dict
        ``selected`` (n_trials,) int (-1: no MTD), ``n``, ``y`` (n_trials, n_doses),
        ``cohorts`` (n_trials,), ``reason`` (n_trials,) str.
    """
    nt, nd, ns = pool.n_trials, pool.n_doses, pool.n_slots
    if nd != design.n_doses:
        raise ModelSpecError(f"pool has {nd} doses; the design has {design.n_doses}.")
    cs = design.cohort_size
    sel = np.full(nt, -1, dtype=int)
    n_out = np.zeros((nt, nd), dtype=int)
    y_out = np.zeros((nt, nd), dtype=int)
    coh = np.zeros(nt, dtype=int)
    reason = np.empty(nt, dtype=object)
    for i in range(nt):
        lvl: list[int] = []
        dlt: list[bool] = []
        ex: list[float] = []
        used = np.zeros(nd, dtype=int)
        cur, why = 0, "max_cohorts"
        stopped = False
        for c in range(design.n_cohorts):
            k = used[cur]
            if k + cs > ns:
                why = "slots_exhausted"
                break
            lvl += [cur] * cs
            dlt += list(pool.dlt[i, cur, k:k + cs])
            if pool.exposure is not None:
                ex += list(pool.exposure[i, cur, k:k + cs])
            used[cur] += cs
            coh[i] = c + 1
            st = TrialState(nd, np.array(lvl), np.array(dlt),
                            exposure=np.array(ex) if pool.exposure is not None else None,
                            current=cur)
            dec = design.decide(st)
            if dec.action == "stop":
                why, stopped = "stopped: " + dec.rule, True
                break
            cur = int(dec.next_dose)  # type: ignore[arg-type]
        st = TrialState(nd, np.array(lvl), np.array(dlt),
                        exposure=np.array(ex) if pool.exposure is not None else None)
        n_out[i], y_out[i] = st.n, st.y
        m = None if stopped else design.select_mtd(st)
        sel[i] = -1 if m is None else int(m)
        reason[i] = why
    return {"selected": sel, "n": n_out, "y": y_out, "cohorts": coh, "reason": reason}


def exposure_quantiles(values: Any, m: int = 9) -> np.ndarray:
    """``m`` mid-point quantiles ``(j + 0.5) / m`` per dose of exposure samples (n_doses, n)."""
    v = np.asarray(values, dtype=float)
    q = (np.arange(m) + 0.5) / m
    return np.quantile(v, q, axis=1).T


def exposure_pool(participants: Any, doses: Sequence[float], n_trials: int, n_slots: int,
                  dlt_curve: Any, seed: int, *, metric: str = "cmax",
                  first_trial: int = 0) -> ParticipantPool:
    """A pool whose DLTs are driven by each virtual participant's exposure.

    ``participants`` (:class:`~carkinetics.simulate.virtual.VirtualParticipants`) must hold
    ``n_trials x n_doses x n_slots`` participants; participant ``(i * n_doses + d) * n_slots +
    k`` fills slot ``k`` of dose ``d`` in trial ``i`` and receives dose ``doses[d]`` (times its
    shortfall factor). Its exposure is the CK model's ``metric`` (``cmax`` or ``auc_0_28``,
    closed form) and its DLT is ``u < dlt_curve(exposure)`` with the uniforms of
    :func:`carkinetics.escalation.base.uniforms` (one stream per trial from ``seed``), so the
    same pool serves every design (common random numbers). For a chunk of trials starting at
    ``first_trial``, draw the participants with ``draw_virtual(..., first=first_trial *
    n_doses * n_slots)``: the chunk then equals the same trials of the pool drawn at once.
    """
    from carkinetics.escalation.base import uniforms

    nd = len(doses)
    need = n_trials * nd * n_slots
    if participants.n < need:
        raise ModelSpecError(f"Invalid participants: {participants.n} drawn; the pool needs "
                             f"{need} (n_trials x n_doses x n_slots).")
    if metric not in ("cmax", "auc_0_28"):
        raise ModelSpecError(f"Invalid metric={metric!r}; expected 'cmax' or 'auc_0_28'.")
    m = participants.source.spec.model
    x = np.empty((n_trials, nd, n_slots))
    idx = np.arange(need).reshape(n_trials, nd, n_slots)
    for d, dose in enumerate(doses):
        p = participants.kinetics(float(dose))
        x[:, d, :] = np.asarray(m.derived(p)[metric])[idx[:, d, :]]
    u = uniforms(n_trials, nd, n_slots, seed, first_trial)
    prob = np.asarray(dlt_curve(x), dtype=float)
    return ParticipantPool(u < prob, exposure=x, first_trial=first_trial)


# -- dose -> exposure relation from a population fit (command line) ------------------------
def source_from_table(table: Any, *, model: str = "piecewise", uncertainty: bool = True,
                      source: str = "population table") -> Any:
    """A :class:`~carkinetics.simulate.virtual.VirtualSource` from a population-estimate table.

    Parameters
    ----------
    table : DataFrame
        Columns ``parameter``, ``estimate`` (or ``value``) and optionally ``se``: the
        ``population.csv`` of ``carkinetics popfit`` (theta on the natural scale, Omega as
        variances ``omega(p)`` / ``omega(p,q)``, residual SDs ``sigma_*``) or typical values
        only. Every parameter of the kinetic model is required; the only covariate effect
        supported is the default dose effect ``dose_exp`` (power model on the level
        parameter per ``dose / 1e6`` cells/kg: its reference is fixed, whereas other
        covariates' references, the data medians, are not stored in the table). Missing
        ``omega(p)``: no random effect on ``p``; missing sigmas: the assay's typical value
        (not used for exposure).
    model : str, default "piecewise"
        Kinetic model of the fit.
    uncertainty : bool, default True
        Build the estimation-scale covariance from the standard errors (delta method:
        ``se / v`` for log-transformed parameters, Omega variances and sigmas, ``se / (v (1 -
        v))`` for logit ones). The table holds marginal SEs only, so correlations between
        estimates are not represented (a diagonal covariance). Missing SEs: no uncertainty.
    source : str
        Name of the table in error messages.

    Returns
    -------
    VirtualSource
    """
    import pandas as pd

    from carkinetics.fitting.population.spec import PopulationSpec, dose_covariate
    from carkinetics.models import available_models, get_model
    from carkinetics.simulate.virtual import VirtualSource

    check_option("model", model, available_models(), exc=ModelSpecError)
    if not isinstance(table, pd.DataFrame):
        raise ModelSpecError(f"Invalid table of type {type(table).__name__}; expected a "
                             "DataFrame with columns parameter, estimate[, se].")
    col = "estimate" if "estimate" in table else "value" if "value" in table else None
    if "parameter" not in table or col is None:
        raise DataError(f"columns {list(table.columns)}: expected 'parameter' and 'estimate' "
                        "(or 'value'), optionally 'se'.", source=source)
    names = table["parameter"].astype(str).str.strip().tolist()
    repeated = sorted({k for k in names if names.count(k) > 1})
    if repeated:
        raise DataError([f"parameter {k!r} appears {names.count(k)} times; fix: keep one row "
                         "per parameter." for k in repeated], source=source)
    est = dict(zip(names, pd.to_numeric(table[col], errors="coerce").to_numpy(float),
                   strict=True))
    se = (dict(zip(names, pd.to_numeric(table["se"], errors="coerce").to_numpy(float),
                   strict=True)) if "se" in table else {})
    m = get_model(model)
    kin = list(m.param_names)
    problems = [f"parameter {k!r} is missing (needed by model {model!r})." for k in kin
                if k not in est]
    problems += [f"parameter {k!r}: estimate {v!r} is not a finite number." for k, v in
                 est.items() if not math.isfinite(v)]
    omega_diag = {k[6:-1]: v for k, v in est.items()
                  if k.startswith("omega(") and k.endswith(")") and "," not in k}
    sig = [k for k in est if k.startswith("sigma_")]
    scales = [k for k in est if k.startswith("log_scale_")]
    other = [k for k in est if k not in kin and k != "dose_exp" and k not in sig
             and k not in scales and not k.startswith("omega(")]
    if other:
        problems.append(f"parameters {other}: covariate effects other than the dose exponent "
                        "'dose_exp' are not supported (their reference values are not stored "
                        "in the table); expected the kinetic parameters, dose_exp, omega(...), "
                        "sigma_* and log_scale_*.")
    bad_re = [k for k in omega_diag if k not in kin and not k.startswith("log_scale_")]
    if bad_re:
        problems.append(f"omega{bad_re}: not parameters of model {model!r} ({kin}).")
    if problems:
        raise DataError(problems, source=source)
    from carkinetics.observation import default_observation_model

    obs = default_observation_model()
    eps = [e for e in obs.endpoints if any(k.endswith("_" + e) for k in sig)]
    endpoint = "joint" if len(eps) != 1 else eps[0]
    if not eps:
        endpoint = obs.reference
    covs = (dose_covariate(),) if "dose_exp" in est else ()
    re = [k for k in kin if k in omega_diag]
    spec = PopulationSpec(model=m, random_effects=re, covariates=covs, endpoint=endpoint,
                          scale_random_effect=any(k.startswith("log_scale_")
                                                  for k in omega_diag))
    used = spec.observation.endpoints  # type: ignore[union-attr]
    rows = pd.DataFrame({"id": np.repeat([1, 2], len(used)), "time": 1.0, "dv": 1.0,
                         "endpoint": list(used) * 2, "dose": np.repeat([1.0e6, 2.0e6],
                                                                       len(used))})
    design = spec.design(rows)
    theta = {s.name: float(est.get(s.name, s.typical)) for s in design.theta_specs}
    sigma = {s.name: float(est.get(s.name, s.typical)) for s in design.sigma_specs}
    ranges = [s for s in (*design.theta_specs, *design.sigma_specs)
              if not s.contains({**theta, **sigma}[s.name])]
    problems = [f"parameter {s.name!r}: estimate {({**theta, **sigma})[s.name]!r} is outside "
                f"its range {'(' if s.open_lower else '['}{s.lower:g}, {s.upper:g}"
                f"{')' if s.open_upper else ']'}; fix: correct the estimate." for s in ranges]
    problems += [f"parameter {k!r}: a variance of {v!r} is negative; fix: correct it."
                 for k, v in omega_diag.items() if v < 0]
    problems += [f"parameter {k!r}: standard error {v!r} is not a finite number >= 0; fix: "
                 "correct it, or leave it empty." for k, v in se.items()
                 if not (np.isnan(v) or (math.isfinite(v) and v >= 0))]
    if problems:
        raise DataError(problems, source=source)
    k = len(design.eta_names)
    omega = np.zeros((k, k))
    for i, a in enumerate(design.eta_names):
        for j, b in enumerate(design.eta_names):
            v = est.get(f"omega({a})" if i == j else f"omega({a},{b})",
                        est.get(f"omega({b},{a})", 0.0))
            omega[i, j] = v
    cov = None
    if uncertainty and se:
        sd = []
        for s in design.theta_specs:
            v, e = theta[s.name], se.get(s.name, np.nan)
            sd.append(e / v if s.transform == "log" else e / (v * (1 - v))
                      if s.transform == "logit" else e)
        for j, a in enumerate(design.eta_names):
            e, v = se.get(f"omega({a})", np.nan), omega[j, j]
            sd.append(e / v if v > 0 else np.nan)
        for s in design.sigma_specs:
            sd.append(se.get(s.name, np.nan) / sigma[s.name])
        sd_arr = np.nan_to_num(np.abs(np.asarray(sd, dtype=float)), nan=0.0)
        if np.any(sd_arr > 0):
            cov = np.diag(sd_arr ** 2)
    return VirtualSource.from_values(spec, design, theta, omega, sigma, covariance=cov)


def read_population(path: Any, *, model: str | None = None, uncertainty: bool = True) -> Any:
    """:func:`source_from_table` of ``DIR/population.csv`` written by ``carkinetics popfit``.

    ``path`` is the output folder (or the CSV itself); the kinetic model is read from
    ``summary.json`` next to it (``model``, default ``piecewise``) unless given.
    """
    import json
    from pathlib import Path

    from carkinetics.data._text import read_csv

    p = Path(path)
    csv = p / "population.csv" if p.is_dir() else p
    if not csv.exists():
        raise DataError(f"{csv}: no such file (expected the population.csv written by "
                        "'carkinetics popfit --out DIR').", source=str(p))
    summ = csv.parent / "summary.json"
    if model is None and summ.exists():
        try:
            model = json.loads(summ.read_text()).get("model")
        except (ValueError, AttributeError) as exc:
            raise DataError(f"{summ}: not a JSON object ({exc}).", source=str(summ)) from exc
    return source_from_table(read_csv(csv), model=model or "piecewise",
                             uncertainty=uncertainty, source=str(csv))


def read_ck_params(path: Any, *, model: str = "piecewise") -> Any:
    """Typical CK values (CSV ``parameter, value``): a source without uncertainty."""
    from pathlib import Path

    from carkinetics.data._text import read_csv

    if not Path(path).exists():
        raise DataError(f"{path}: no such file (expected a CSV with columns parameter, value).",
                        source=str(path))
    return source_from_table(read_csv(path), model=model, uncertainty=False,
                             source=str(path))
