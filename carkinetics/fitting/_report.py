"""Turning an optimum into a :class:`~carkinetics.fitting.results.FitResult` (internal)."""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from carkinetics.exceptions import CarkineticsError
from carkinetics.fitting._problem import Problem, UnitData
from carkinetics.models import Model
from carkinetics.observation import log_ndtr_diff
from carkinetics.observation.error import standardize

__all__ = ["Tables", "derived_values", "conditional_residual"]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_EMPTY_PROFILES = pd.DataFrame([], columns=["parameter", "value", "delta_ofv"])


def _dnat(transform: str, value: float) -> float:
    """D natural / d internal at ``value`` (natural scale)."""
    if transform == "log":
        return value
    if transform == "logit":
        return value * (1.0 - value)
    return 1.0


def conditional_residual(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    """``E[Z | a < Z < b]`` for a standard normal ``Z`` (the censored rows' ``iwres``).

    ``(phi(a) - phi(b)) / (Phi(b) - Phi(a))``, evaluated in log space (``log_ndtr_diff``) so
    that it stays finite far in either tail; ``a`` may be ``-inf`` and ``b`` ``+inf``.
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    with np.errstate(all="ignore"):
        log_den = log_ndtr_diff(a, b)
        lpa = np.where(np.isfinite(a), -0.5 * a * a - _HALF_LOG_2PI, -np.inf)
        lpb = np.where(np.isfinite(b), -0.5 * b * b - _HALF_LOG_2PI, -np.inf)
        out = np.exp(lpa - log_den) - np.exp(lpb - log_den)
    # an interval of (numerically) zero probability: its nearest end
    bad = ~np.isfinite(out)
    out[bad] = np.where(np.isfinite(b[bad]), b[bad], a[bad])
    return out


def _params_table(prob: Problem, unit: UnitData, model: Model, x: NDArray, se_int: NDArray,
                  at_bound: NDArray, prof: dict[int, tuple[float, float]], z: float):
    # built column-wise (one DataFrame construction, no set_index): a fit's hot path
    cols: dict[str, list[Any]] = {k: [] for k in (
        "estimate", "se", "rse_pct", "ci_lower", "ci_upper", "profile_lower", "profile_upper",
        "unit", "transform", "kind", "fixed", "at_bound", "estimate_internal", "se_internal",
        "lower", "upper")}
    names = []
    with np.errstate(over="ignore"):  # a huge SE on the log scale: the CI reaches inf
        for i, q in enumerate(prob.params):
            s = q.spec
            est = float(s.from_internal(x[i]))
            se = abs(_dnat(s.transform, est)) * se_int[i]
            lo_p, hi_p = prof.get(i, (math.nan, math.nan))
            unit_str = s.unit
            if q.kind == "kinetic" and s.name == model.level_param and unit.level_unit:
                unit_str = unit.level_unit
            names.append(q.name)
            for k, v in (
                ("estimate", est), ("se", se),
                ("rse_pct", 100.0 * se / abs(est) if est != 0 else math.nan),
                ("ci_lower", float(s.from_internal(x[i] - z * se_int[i]))),
                ("ci_upper", float(s.from_internal(x[i] + z * se_int[i]))),
                ("profile_lower", float(s.from_internal(lo_p)) if np.isfinite(lo_p) else math.nan),
                ("profile_upper", float(s.from_internal(hi_p)) if np.isfinite(hi_p) else math.nan),
                ("unit", unit_str), ("transform", s.transform), ("kind", q.kind),
                ("fixed", q.fixed), ("at_bound", bool(at_bound[i])),
                ("estimate_internal", float(x[i])), ("se_internal", float(se_int[i])),
                ("lower", float(s.from_internal(q.lower))),
                ("upper", float(s.from_internal(q.upper))),
            ):
                cols[k].append(v)
    return pd.DataFrame(cols, index=pd.Index(names, name="parameter"))


def _predictions(prob: Problem, unit: UnitData, x: NDArray, ll: NDArray, used: NDArray):
    fr = unit.frame
    mu = prob.mu(x[None, :])[0]
    ipred = np.exp(np.clip(mu, -700, 700))
    res = np.full(prob.n, np.nan)
    iwres = np.full(prob.n, np.nan)
    lim = prob.limit if prob.limit is not None else np.full(prob.n, np.nan)
    for k, assay in enumerate(prob.assays):
        rows = prob.assay == k
        em = assay.error
        sig = [math.exp(x[prob.sig_col[j, k]]) for j in range(len(em.param_names))]
        mean, sd = em.moments(ipred[rows], sig[0] if len(sig) == 1 else tuple(sig))
        xo = em.transform(prob.dv[rows])
        c = prob.cens[rows]
        zt = standardize(xo, mean, sd)
        zl = standardize(em.transform(np.where(np.isfinite(lim[rows]), lim[rows], np.nan)),
                         mean, sd)
        r = np.where(c == 0, xo - mean, np.nan)
        w = np.where(c == 0, zt, np.nan)
        blq, alq = c == 1, c == -1
        lower = np.where(np.isfinite(zl), zl, -np.inf)
        upper = np.where(np.isfinite(zl), zl, np.inf)
        if blq.any():
            w[blq] = conditional_residual(lower[blq], zt[blq])
        if alq.any():
            w[alq] = conditional_residual(zt[alq], upper[alq])
        res[rows], iwres[rows] = r, w
    # the frame's own arrays (no round trip of string columns through object arrays)
    cols = {c: fr[c].array for c in ("id", "time", "endpoint", "dv", "cens", "lloq")
            if c in fr.columns}
    cols.update(ipred=ipred, ll=ll, used=used, res=res, iwres=iwres)
    return pd.DataFrame(cols)


@functools.lru_cache(maxsize=64)
def _curve_grid(t_end: float) -> NDArray[np.float64]:
    grid = np.unique(np.concatenate([np.linspace(0.0, t_end, 160),
                                     np.geomspace(0.02, t_end, 160)]))
    grid.flags.writeable = False
    return grid


def _curve(prob: Problem, model: Model, unit: UnitData, x: NDArray) -> pd.DataFrame:
    t_end = max(float(prob.t.max()) * 1.05, 28.0)
    grid = _curve_grid(t_end)
    nat = {k: v[0, 0] for k, v in prob.natural_kinetic(x[None, :]).items()}
    with np.errstate(all="ignore"):
        lat = np.asarray(model.log_predict(grid, nat), dtype=float)
    off = np.array([x[c] if c >= 0 else 0.0 for c in prob.scale_col])
    k = len(unit.endpoints)
    return pd.DataFrame({
        "endpoint": np.repeat(np.array(unit.endpoints, dtype=object), grid.size),
        "time": np.tile(grid, k),
        "ipred": np.exp(np.clip(lat[None, :] + off[:, None], -700, 700)).ravel(),
    })


def derived_values(model: Model, prob: Problem, x: NDArray) -> tuple[pd.Series, str | None]:
    nat = {k: float(v[0, 0]) for k, v in prob.natural_kinetic(x[None, :]).items()}
    try:
        with np.errstate(all="ignore"):
            d = model.derived(nat)
    except (CarkineticsError, ValueError, ArithmeticError, NotImplementedError) as exc:
        return pd.Series(dtype=float), f"derived quantities unavailable: {exc}"
    return pd.Series({k: float(np.asarray(v).ravel()[0]) for k, v in d.items()}), None


class Tables:
    """The arrays of one fit and the builders of its tables (see ``FitResult``).

    Internal: a :class:`FitResult` builds each table from this on first access.
    """

    def __init__(self, *, prob: Problem, model: Model, unit: UnitData, x_hat: NDArray,
                 se_int: NDArray, cov: NDArray, use: NDArray, at_bound: NDArray, prof: dict,
                 trace: list[dict], ll: NDArray, used: NDArray, z: float,
                 starts: dict[str, Any]) -> None:
        self.prob, self.model, self.unit, self.x_hat = prob, model, unit, x_hat
        self.se_int, self.cov, self.use, self.at_bound = se_int, cov, use, at_bound
        self.prof, self.trace, self.ll, self.used, self.z = prof, trace, ll, used, z
        self._starts = starts
        self.n_par = int(prob.free.sum())

    def params(self) -> pd.DataFrame:
        """The parameter table."""
        return _params_table(self.prob, self.unit, self.model, self.x_hat, self.se_int,
                             self.at_bound, self.prof, self.z)

    def predictions(self) -> pd.DataFrame:
        """The per-observation table."""
        return _predictions(self.prob, self.unit, self.x_hat, self.ll, self.used)

    def curve(self) -> pd.DataFrame:
        """The fitted curve."""
        return _curve(self.prob, self.model, self.unit, self.x_hat)

    def covariance(self) -> pd.DataFrame:
        """Covariance (internal scale) over the parameters that have SEs."""
        names = [q.name for q, u in zip(self.prob.params, self.use, strict=True) if u]
        return pd.DataFrame(self.cov, index=names, columns=names)

    def starts(self) -> pd.DataFrame:
        """The multi-start table."""
        st = dict(self._starts)
        x = st.pop("x")
        cols = {"start": np.arange(x.shape[0]), **st}
        cols.update({q.name: np.asarray(q.spec.from_internal(x[:, i]), dtype=float)
                     for i, q in enumerate(self.prob.params)})
        return pd.DataFrame(cols)

    def derived(self) -> pd.Series:
        """Derived quantities (empty, the reason in ``attrs["note"]``, if unavailable)."""
        out, note = derived_values(self.model, self.prob, self.x_hat)
        if note:
            out.attrs["note"] = note
        return out

    def profiles(self) -> pd.DataFrame:
        """The profile-likelihood trace."""
        if not self.trace:
            return _EMPTY_PROFILES.copy()
        names = [q.name for q in self.prob.params]
        out = pd.DataFrame(
            [{"parameter": names[r["index"]],
              "value": float(self.prob.params[r["index"]].spec.from_internal(r["value"])),
              "delta_ofv": r["delta_ofv"]} for r in self.trace],
            columns=["parameter", "value", "delta_ofv"])
        return out.sort_values(["parameter", "value"], kind="stable", ignore_index=True)
