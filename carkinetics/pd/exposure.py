"""Exposure-response: CAR-T exposure against PD and clinical responses.

* :func:`exposure_metrics`: per-participant Cmax and AUC0-28 from NCA (default) or from
  model parameters (``piecewise`` estimates, e.g. ``carkinetics fit`` output);
* :func:`response_table`: per-participant responses from the long table: continuous
  change from baseline at a day, binary responder (value below/above a level at a day),
  or time to an event (first crossing of a level, right-censored at the last sample);
* :func:`fit_logistic` (binary), :func:`fit_emax` (continuous), :func:`fit_cox`
  (time to event, Breslow partial likelihood) with Wald intervals, each returning an
  :class:`ERFit`; :func:`carkinetics.plots.pd.plot_exposure_response` draws one figure per
  endpoint.

Exposure enters the logistic and Cox models as ``log10`` of the metric (one unit = a
ten-fold exposure), and the Emax model on its natural scale. Everything is written with
numpy/scipy (statsmodels and lifelines are not dependencies); the tests check the Cox
partial likelihood against a hand-computed example and the exponential-model closed form,
and every slope against simulated data with a known value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize, stats

from carkinetics._validation import check_option
from carkinetics.exceptions import DataError, ModelSpecError

__all__ = ["ERFit", "exposure_metrics", "response_table", "fit_logistic", "fit_emax",
           "fit_cox", "cox_partial_loglik", "kaplan_meier", "exposure_response"]

RESPONSE_KINDS = ("change", "pct_change", "log_ratio", "binary", "tte")


@dataclass(frozen=True, eq=False)
class ERFit:
    """An exposure-response fit.

    Attributes
    ----------
    kind : {"logistic", "emax", "cox"}
    params : DataFrame
        Index parameter; columns ``estimate, se, ci_lower, ci_upper`` (and
        ``hazard_ratio`` with its CI for Cox).
    x, y : ndarray
        Exposure as given and response (for Cox: time); ``event`` for Cox.
    loglik : float
        Maximised (partial) log-likelihood.
    n, n_events : int
    cov : ndarray
        Covariance of the estimates (internal scale for Emax: ``log ec50``).
    info : dict
        ``transform`` of x, endpoint and exposure names, CI level.
    """

    kind: str
    params: pd.DataFrame
    x: NDArray
    y: NDArray
    loglik: float
    n: int
    n_events: int
    cov: NDArray
    event: NDArray | None = None
    info: dict = field(default_factory=dict)

    @property
    def slope(self) -> float:
        """The exposure effect: logistic/Cox coefficient, Emax ``emax``."""
        key = {"logistic": "slope", "cox": "beta", "emax": "emax"}[self.kind]
        return float(self.params.loc[key, "estimate"])

    def predict(self, x: ArrayLike) -> NDArray:
        """Fitted response (logistic: probability; Emax: mean; Cox: hazard ratio vs x=0)."""
        x = np.asarray(x, dtype=float)
        p = self.params["estimate"]
        if self.kind == "logistic":
            return stats.logistic.cdf(p["intercept"] + p["slope"] * np.log10(x))
        if self.kind == "cox":
            return np.exp(p["beta"] * np.log10(x))
        return p["e0"] + p["emax"] * x / (p["ec50"] + x)

    def to_frame(self) -> pd.DataFrame:
        """Long table of the estimates with the fit's kind, n and log-likelihood."""
        f = self.params.reset_index()
        f.insert(0, "model", self.kind)
        for k in ("endpoint", "exposure", "response"):
            f[k] = self.info.get(k, "")
        f["n"], f["n_events"], f["loglik"] = self.n, self.n_events, self.loglik
        return f


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ModelSpecError(f"Invalid ci_level={level!r}; expected a value in (0, 1).")
    return float(stats.norm.ppf(0.5 + level / 2))


def _xy(x: ArrayLike, y: ArrayLike, *, positive_x: bool = True) -> tuple[NDArray, NDArray]:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise ModelSpecError(f"Invalid x/y shapes {x.shape}, {y.shape}; expected equal 1-D.")
    ok = np.isfinite(x) & np.isfinite(y)
    if positive_x:
        ok &= x > 0
    if ok.sum() < 3:
        raise DataError(f"only {int(ok.sum())} participant(s) with finite exposure and "
                        "response; need at least 3.", source="exposure-response")
    return x[ok], y[ok]


def _table(names, est, se, z, extra=None) -> pd.DataFrame:
    t = pd.DataFrame({"parameter": names, "estimate": est, "se": se,
                      "ci_lower": est - z * se, "ci_upper": est + z * se})
    if extra:
        for k, v in extra.items():
            t[k] = v
    return t.set_index("parameter")


# -- logistic ------------------------------------------------------------------------
def fit_logistic(x: ArrayLike, y: ArrayLike, *, ci_level: float = 0.95,
                 info: Mapping[str, Any] | None = None) -> ERFit:
    """Logistic regression of a binary response on ``log10(x)`` (maximum likelihood).

    ``logit P(y = 1) = intercept + slope * log10(x)``; Newton-Raphson with the analytic
    gradient and Hessian; Wald intervals from the inverse observed information.

    Raises
    ------
    DataError
        Fewer than 3 usable participants, a constant response, or complete separation
        (the slope diverges).
    """
    x, y = _xy(x, y)
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("binary response must be 0/1.", source="exposure-response")
    if y.min() == y.max():
        raise DataError(f"every response is {int(y[0])}: the slope is not estimable.",
                        source="exposure-response")
    lx = np.log10(x)
    X = np.column_stack([np.ones_like(lx), lx])
    b = np.zeros(2)
    separated = False
    for _ in range(100):
        eta = X @ b
        p = stats.logistic.cdf(eta)
        g = X.T @ (y - p)
        H = (X * (p * (1 - p))[:, None]).T @ X
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            separated = True
            break
        b = b + step
        if np.max(np.abs(step)) < 1e-10:
            break
    if separated or not np.all(np.isfinite(b)) or np.max(np.abs(b)) > 50:
        raise DataError("complete separation: the logistic slope diverges.",
                        source="exposure-response")
    eta = X @ b
    p = stats.logistic.cdf(eta)
    H = (X * (p * (1 - p))[:, None]).T @ X
    cov = np.linalg.inv(H)
    ll = float(np.sum(y * stats.logistic.logcdf(eta) + (1 - y) * stats.logistic.logsf(eta)))
    z = _z(ci_level)
    se = np.sqrt(np.diag(cov))
    tab = _table(["intercept", "slope"], b, se, z)
    tab["odds_ratio"] = np.exp(tab["estimate"])
    return ERFit("logistic", tab, x, y, ll, int(y.size), int(y.sum()), cov,
                 info={"transform": "log10", "ci_level": ci_level, **(info or {})})


# -- Emax ----------------------------------------------------------------------------
def fit_emax(x: ArrayLike, y: ArrayLike, *, ci_level: float = 0.95,
             info: Mapping[str, Any] | None = None) -> ERFit:
    """Emax model of a continuous response: ``y = e0 + emax x / (ec50 + x) + e``.

    Least squares (normal residuals, maximum likelihood) with ``ec50`` on the log scale;
    covariance ``s^2 inv(J'J)`` with ``s^2 = RSS / (n - 3)``; Wald intervals (``ec50``'s
    back-transformed from the log scale).

    Raises
    ------
    DataError
        Fewer than 4 usable participants.
    """
    x, y = _xy(x, y)
    if x.size < 4:
        raise DataError("the Emax model needs at least 4 participants.",
                        source="exposure-response")

    def f(th):
        return th[0] + th[1] * x / (np.exp(th[2]) + x)

    def res(th):
        return f(th) - y

    lo, hi = float(np.min(y)), float(np.max(y))
    starts = [np.array([y[np.argmin(x)], (hi - lo) * s, math.log(np.median(x) * m)])
              for s in (1.0, -1.0) for m in (0.3, 1.0, 3.0)]
    best = min((optimize.least_squares(res, s0, method="lm", xtol=1e-12, ftol=1e-12)
                for s0 in starts), key=lambda r: float(np.sum(r.fun ** 2)))
    th = best.x
    rss = float(np.sum(best.fun ** 2))
    J = best.jac
    dof = max(x.size - 3, 1)
    s2 = rss / dof
    cov = s2 * np.linalg.pinv(J.T @ J)
    se = np.sqrt(np.clip(np.diag(cov), 0, None))
    z = _z(ci_level)
    tab = _table(["e0", "emax", "log_ec50"], th, se, z)
    ec = tab.loc["log_ec50"]
    tab.loc["ec50"] = [math.exp(ec["estimate"]), math.exp(ec["estimate"]) * ec["se"],
                       math.exp(ec["ci_lower"]), math.exp(ec["ci_upper"])]
    n = x.size
    ll = float(-0.5 * n * (math.log(2 * math.pi * rss / n) + 1))
    return ERFit("emax", tab, x, y, ll, n, n, cov,
                 info={"transform": "none", "ci_level": ci_level, "sigma": math.sqrt(s2),
                       **(info or {})})


# -- Cox -----------------------------------------------------------------------------
def cox_partial_loglik(beta: float, time: ArrayLike, event: ArrayLike, z: ArrayLike
                       ) -> tuple[float, float, float]:
    """Breslow partial log-likelihood of one covariate, its gradient and Hessian.

    ``l(beta) = sum_{events i} [beta z_i - log sum_{t_j >= t_i} exp(beta z_j)]`` (tied
    event times share the risk set: Breslow).
    """
    t = np.asarray(time, dtype=float)
    d = np.asarray(event, dtype=float)
    z = np.asarray(z, dtype=float)
    order = np.argsort(-t, kind="stable")  # descending time: risk sets are prefixes
    t, d, z = t[order], d[order], z[order]
    w = np.exp(beta * z - np.max(beta * z))
    s0 = np.cumsum(w)
    s1 = np.cumsum(w * z)
    s2 = np.cumsum(w * z * z)
    # for ties, the risk set of time t is every subject with time >= t: the last index
    # of each tied block in the descending order
    last = np.searchsorted(-t, -t, side="right") - 1
    s0, s1, s2 = s0[last], s1[last], s2[last]
    shift = np.max(beta * z)
    ll = float(np.sum(d * (beta * z - (np.log(s0) + shift))))
    m1 = s1 / s0
    grad = float(np.sum(d * (z - m1)))
    hess = float(-np.sum(d * (s2 / s0 - m1 ** 2)))
    return ll, grad, hess


def fit_cox(x: ArrayLike, time: ArrayLike, event: ArrayLike, *, ci_level: float = 0.95,
            info: Mapping[str, Any] | None = None) -> ERFit:
    """Cox proportional hazards of a time to event on ``log10(x)`` (Breslow ties).

    Newton-Raphson on the partial likelihood (:func:`cox_partial_loglik`); Wald interval
    of ``beta`` and of the hazard ratio per ten-fold exposure ``exp(beta)``.

    Raises
    ------
    DataError
        Fewer than 3 usable participants or no event.
    """
    x = np.asarray(x, dtype=float)
    t = np.asarray(time, dtype=float)
    d = np.asarray(event, dtype=float)
    ok = np.isfinite(x) & (x > 0) & np.isfinite(t) & np.isfinite(d)
    x, t, d = x[ok], t[ok], d[ok]
    if x.size < 3 or d.sum() < 1:
        raise DataError(f"{x.size} participant(s) and {int(d.sum())} event(s): the Cox model "
                        "needs at least 3 participants and 1 event.",
                        source="exposure-response")
    z = np.log10(x)
    b = 0.0
    for _ in range(200):
        ll, g, h = cox_partial_loglik(b, t, d, z)
        if h >= 0:
            raise DataError("the Cox partial likelihood is flat (no variation in exposure "
                            "within risk sets).", source="exposure-response")
        step = -g / h
        while True:  # step halving keeps the ascent monotone
            ll_new = cox_partial_loglik(b + step, t, d, z)[0]
            if ll_new >= ll - 1e-12 or abs(step) < 1e-12:
                break
            step /= 2
        b += step
        if abs(step) < 1e-10:
            break
    if abs(b) > 50:
        raise DataError("the Cox coefficient diverges (monotone likelihood).",
                        source="exposure-response")
    ll, g, h = cox_partial_loglik(b, t, d, z)
    var = -1.0 / h
    zq = _z(ci_level)
    se = math.sqrt(var)
    tab = _table(["beta"], np.array([b]), np.array([se]), zq)
    tab["hazard_ratio"] = math.exp(b)
    tab["hr_lower"] = math.exp(b - zq * se)
    tab["hr_upper"] = math.exp(b + zq * se)
    return ERFit("cox", tab, x, t, ll, int(x.size), int(d.sum()), np.array([[var]]), event=d,
                 info={"transform": "log10", "ci_level": ci_level, **(info or {})})


def kaplan_meier(time: ArrayLike, event: ArrayLike) -> tuple[NDArray, NDArray]:
    """Kaplan-Meier survival: (event times, survival just after each)."""
    t = np.asarray(time, dtype=float)
    d = np.asarray(event, dtype=float)
    ut = np.unique(t[d == 1])
    s, out = 1.0, []
    for u in ut:
        at_risk = np.sum(t >= u)
        s *= 1.0 - np.sum((t == u) & (d == 1)) / at_risk
        out.append(s)
    return ut, np.array(out)


# -- tables --------------------------------------------------------------------------
def exposure_metrics(data: pd.DataFrame | None = None, *, source: str = "nca",
                     endpoint: str = "car_qpcr",
                     ck_params: Mapping[Any, Mapping[str, float]] | None = None
                     ) -> pd.DataFrame:
    """Per-participant exposure: ``cmax`` and ``auc_0_28`` (level unit, level unit x day).

    Parameters
    ----------
    data : DataFrame, optional
        Long table (for ``source="nca"``; its ``dose``/``dose_level`` are carried over).
    source : {"nca", "model"}, default "nca"
        NCA of ``endpoint`` (:func:`carkinetics.nca.nca`), or the ``piecewise`` closed form
        at ``ck_params`` (id -> parameters at the dose, e.g. from
        :func:`carkinetics.pd.fit.read_ck_params`).
    endpoint : str, default "car_qpcr"
    ck_params : mapping, optional

    Returns
    -------
    DataFrame
        ``id, cmax, auc_0_28`` (and ``dose, dose_level`` when known).
    """
    check_option("source", source, ("nca", "model"), exc=ModelSpecError)
    if source == "nca":
        from carkinetics.nca import nca

        if data is None:
            raise ModelSpecError("source='nca' needs data.")
        w = nca(data, endpoint=endpoint).to_wide()
        out = w[["id", "CMAX", "AUCINT_0_28"]].rename(
            columns={"CMAX": "cmax", "AUCINT_0_28": "auc_0_28"})
        for c in ("dose", "dose_level"):
            if c in w:
                out[c] = w[c].to_numpy()
        return out.reset_index(drop=True)
    if ck_params is None:
        raise ModelSpecError("source='model' needs ck_params (id -> piecewise parameters).")
    from carkinetics.models import get_model

    m = get_model("piecewise")
    ids = list(ck_params)
    p = {n: np.array([ck_params[i][n] for i in ids]) for n in m.param_names}
    der = m.derived(p)
    out = pd.DataFrame({"id": ids, "cmax": der["cmax"], "auc_0_28": der["auc_0_28"]})
    if data is not None and "dose" in data:
        dd = data.groupby("id")[[c for c in ("dose", "dose_level") if c in data]].first()
        out = out.join(dd, on="id")
    return out


def _baseline(g: pd.DataFrame) -> float:
    pre = g[g["time"] <= 0]
    return float(pre["dv"].iloc[-1]) if len(pre) else math.nan


def response_table(data: pd.DataFrame, endpoint: str, *, kind: str = "pct_change",
                   day: float | None = None, window: float = 21.0, level: float | None = None,
                   below: bool = True, after_below: float | None = None) -> pd.DataFrame:
    """Per-participant response of ``endpoint``.

    Parameters
    ----------
    data : DataFrame
        Long table (``id, time, endpoint, dv``; ``cens``).
    endpoint : str
    kind : {"change", "pct_change", "log_ratio", "binary", "tte"}
        ``change``/``pct_change``/``log_ratio`` from baseline (last pre-infusion value) at
        the sample nearest ``day`` (within ``window`` days); ``binary``: 1 if the value at
        ``day`` is below (``below=True``) or above ``level``; ``tte``: first day the value
        is below/above ``level`` (after the first day it was below ``after_below``, e.g.
        B-cell reconstitution after aplasia), right-censored at the last sample.
    day, window, level, below, after_below
        See ``kind``. A BLQ row counts as its LLOQ (for ``binary``/``tte`` with
        ``below=True``, a BLQ row at or under ``level`` counts as below).

    Returns
    -------
    DataFrame
        ``id, response`` (and ``event`` for ``tte``).
    """
    check_option("kind", kind, RESPONSE_KINDS, exc=ModelSpecError)
    d = data[data["endpoint"] == endpoint]
    if d.empty:
        raise DataError(f"no {endpoint!r} rows.", source="response_table")
    if kind in ("binary", "tte") and level is None:
        raise ModelSpecError(f"kind={kind!r} needs level=...")
    if kind != "tte" and day is None:
        raise ModelSpecError(f"kind={kind!r} needs day=...")
    recs = []
    for pid, g in d.sort_values("time").groupby("id", sort=False):
        post = g[g["time"] > 0]
        if kind == "tte":
            t = post["time"].to_numpy(float)
            v = post["dv"].to_numpy(float)
            start = 0.0
            if after_below is not None:
                hit = np.flatnonzero(v < after_below)
                if not hit.size:
                    recs.append({"id": pid, "response": math.nan, "event": math.nan})
                    continue
                start = t[hit[0]]
            cond = (v < level) if below else (v >= level)
            idx = np.flatnonzero(cond & (t > start))
            if idx.size:
                recs.append({"id": pid, "response": float(t[idx[0]]), "event": 1.0})
            else:
                recs.append({"id": pid, "response": float(t[-1]) if t.size else math.nan,
                             "event": 0.0})
            continue
        if post.empty:
            continue
        j = int(np.argmin(np.abs(post["time"].to_numpy(float) - day)))
        if abs(float(post["time"].iloc[j]) - day) > window:
            continue
        v = float(post["dv"].iloc[j])
        b = _baseline(g)
        if kind == "binary":
            r = float(v <= level) if below else float(v >= level)
        elif kind == "change":
            r = v - b
        elif kind == "pct_change":
            r = 100.0 * (v / b - 1.0)
        else:
            r = math.log(v / b)
        recs.append({"id": pid, "response": r})
    cols = ["id", "response"] + (["event"] if kind == "tte" else [])
    return pd.DataFrame(recs, columns=cols)


def exposure_response(exposure: pd.DataFrame, responses: pd.DataFrame, *, model: str,
                      metric: str = "auc_0_28", ci_level: float = 0.95,
                      info: Mapping[str, Any] | None = None) -> ERFit:
    """Join exposure and responses by id and fit ``model`` ("logistic", "emax" or "cox")."""
    check_option("model", model, ("logistic", "emax", "cox"), exc=ModelSpecError)
    j = exposure.merge(responses, on="id", how="inner")
    inf = {"exposure": metric, **(info or {})}
    if model == "logistic":
        return fit_logistic(j[metric], j["response"], ci_level=ci_level, info=inf)
    if model == "emax":
        return fit_emax(j[metric], j["response"], ci_level=ci_level, info=inf)
    return fit_cox(j[metric], j["response"], j["event"], ci_level=ci_level, info=inf)


