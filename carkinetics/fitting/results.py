"""Results of individual fits: frozen dataclasses of pandas objects (never fitters).

:class:`FitResult` holds one participant's fit; :class:`FitResults` a batch, with the
participants that failed and why. Both offer ``to_frame()`` (tidy, long), ``summary()``
(a fit report) and a readable ``repr``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FitResult", "FitFailure", "FitResults", "PARAMETER_COLUMNS"]

#: Columns of the long parameter table written by ``to_frame()`` (and the CLI).
PARAMETER_COLUMNS: tuple[str, ...] = (
    "id", "endpoint", "model", "method", "parameter", "estimate", "se", "rse_pct",
    "ci_lower", "ci_upper", "profile_lower", "profile_upper", "unit", "transform", "kind",
    "fixed", "at_bound", "flags", "status", "reason", "dose", "ofv", "aic", "bic", "n_obs",
    "n_blq", "n_par", "converged",
)


@dataclass(frozen=True, eq=False, repr=False)
class FitResult:
    """One participant's individual fit.

    Attributes
    ----------
    id : object
        Participant.
    model, endpoint, method : str
        Model name, fitted endpoint (or ``"joint"``) and censoring method.
    params : DataFrame
        Indexed by parameter: ``estimate, se, rse_pct, ci_lower, ci_upper, profile_lower,
        profile_upper, unit, transform, kind, fixed, at_bound, estimate_internal,
        se_internal, lower, upper`` (natural scale unless ``_internal``; ``lower``/``upper``
        are the bounds used; Wald CIs are back-transformed from the internal scale).
    predictions : DataFrame
        One row per fitted observation: ``id, time, endpoint, dv, cens, ipred, ll, used,
        res, iwres`` (and ``lloq`` when present). ``ipred`` is the expected value on the
        assay's scale; ``res`` and ``iwres`` are on the error model's observation scale
        (``log dv`` for ``log_additive``). For censored rows ``res`` is NaN and ``iwres`` is
        the conditional mean ``E[Z | Z in censoring interval]`` of the standardised
        residual under the fitted model (deterministic, always on the censored side).
    curve : DataFrame
        ``endpoint, time, ipred`` on a fine grid (for plots).
    covariance : DataFrame
        Covariance of the internal-scale estimates (free parameters not at a bound).
    starts : DataFrame
        The multi-start design: origin, start and final OFV, convergence, iterations and
        the final natural-scale values of every start.
    derived : Series
        The model's derived quantities at the estimates (``doubling_time``, AUCs, ...);
        empty with the reason in ``derived.attrs["note"]`` when the model cannot compute
        them.
    profiles : DataFrame
        Profile-likelihood trace (``parameter, value, delta_ofv``); empty unless requested.
    ofv : float
        ``-2 log-likelihood`` including censored terms (observation scale).
    n_obs, n_blq : int
        Rows counted by the method (see ``rows_used``) and BLQ rows.
    dose : float
        Dose of the participant (cells/kg; NaN without a ``dose`` column).
    level_unit : str
        Unit of the model's level (the reference assay's).
    converged : bool
        lmfit succeeded and the Newton decrement at the estimate is small.
    flags : tuple of str
        Flag codes (see ``carkinetics.fitting.FLAGS``).
    messages : tuple of str
        Details of each flag and notes about left-out rows.
    info : mapping
        Optimiser details (starts, evaluations, OFV spread of the starts, lmfit message).
    timing : float
        Wall-clock seconds of the fit (not part of comparisons).
    raw : object
        The lmfit ``MinimizerResult`` when lmfit polished the optimum (see
        :func:`~carkinetics.fitting.fit_individual`), else ``None``; not part of the stable
        API (``None`` in batch results, which cross process boundaries).
    """

    id: Any
    model: str
    endpoint: str
    method: str
    ofv: float
    n_obs: int
    n_blq: int
    dose: float
    level_unit: str
    converged: bool
    flags: tuple[str, ...]
    messages: tuple[str, ...]
    info: Mapping[str, Any] = field(default_factory=dict)
    timing: float = math.nan
    raw: Any = None
    tables: Any = field(default=None, repr=False)

    # The tables are built from the fit's arrays on first access (``tables`` holds the
    # arrays and a builder; not part of the stable API): a batch of fits computes every
    # number at once and formats only what is looked at.
    @functools.cached_property
    def params(self) -> pd.DataFrame:
        """Parameter table (see the class docstring)."""
        return self.tables.params()

    @functools.cached_property
    def predictions(self) -> pd.DataFrame:
        """Per-observation predictions and residuals."""
        return self.tables.predictions()

    @functools.cached_property
    def curve(self) -> pd.DataFrame:
        """Fitted curve on a fine time grid."""
        return self.tables.curve()

    @functools.cached_property
    def covariance(self) -> pd.DataFrame:
        """Covariance of the internal-scale estimates."""
        return self.tables.covariance()

    @functools.cached_property
    def starts(self) -> pd.DataFrame:
        """The multi-start design and where each start ended."""
        return self.tables.starts()

    @functools.cached_property
    def derived(self) -> pd.Series:
        """Derived quantities at the estimates."""
        return self.tables.derived()

    @functools.cached_property
    def profiles(self) -> pd.DataFrame:
        """Profile-likelihood trace."""
        return self.tables.profiles()

    @property
    def n_par(self) -> int:
        """Number of estimated parameters (fixed ones excluded)."""
        return int(self.tables.n_par)

    @property
    def aic(self) -> float:
        """``OFV + 2 n_par``."""
        return self.ofv + 2.0 * self.n_par

    @property
    def bic(self) -> float:
        """``OFV + n_par ln(n_obs)``."""
        return self.ofv + self.n_par * math.log(max(self.n_obs, 1))

    @property
    def estimates(self) -> pd.Series:
        """Natural-scale estimates by parameter name."""
        return self.params["estimate"].copy()

    @property
    def status(self) -> str:
        """``"ok"`` or ``"flagged"``."""
        return "flagged" if self.flags else "ok"

    def to_frame(self) -> pd.DataFrame:
        """Long table, one row per parameter, columns :data:`PARAMETER_COLUMNS`."""
        p = self.params.reset_index()
        own = {"id": self.id, "endpoint": self.endpoint, "model": self.model,
               "method": self.method, "status": self.status, "reason": "",
               "dose": self.dose, "ofv": self.ofv, "aic": self.aic, "bic": self.bic,
               "n_obs": self.n_obs, "n_blq": self.n_blq, "n_par": self.n_par,
               "converged": self.converged}
        for k, v in own.items():
            p[k] = v
        base = ";".join(f for f in self.flags if f != "at_bound")
        p["flags"] = [";".join(x for x in (base, "at_bound" if b else "") if x)
                      for b in p["at_bound"].to_numpy(dtype=bool)]
        return p[list(PARAMETER_COLUMNS)]

    def summary(self) -> str:
        """A fit report: data, objective, convergence, flags and the parameter table."""
        i = self.info
        lines = [
            f"[[Individual fit]] participant {self.id!r}  model {self.model}  endpoint "
            f"{self.endpoint}  BLQ {self.method.upper()}",
            f"    observations {self.n_obs} ({self.n_blq} BLQ)   parameters {self.n_par}   "
            f"dose {self.dose:g} cells/kg",
            f"    OFV (-2LL) {self.ofv:.4f}   AIC {self.aic:.4f}   BIC {self.bic:.4f}",
            f"    converged {self.converged} ({i.get('lmfit_message', '')}; "
            f"{i.get('n_starts_converged', '?')}/{i.get('n_starts', '?')} starts converged, "
            f"{i.get('n_at_best', '?')} at the best OFV, spread "
            f"{i.get('ofv_spread', math.nan):.3g})",
            f"    flags: {', '.join(self.flags) if self.flags else 'none'}",
        ]
        lines += [f"      - {m}" for m in self.messages]
        level = int(round(100 * i.get("ci_level", 0.95)))
        lines.append(f"[[Parameters]] ({level}% Wald CI back-transformed from the internal "
                     "scale)")
        cols = ["estimate", "se", "rse_pct", "ci_lower", "ci_upper", "unit", "transform"]
        if self.params["profile_lower"].notna().any():
            cols[5:5] = ["profile_lower", "profile_upper"]
        tab = self.params[cols].copy()
        tab["note"] = np.where(self.params["fixed"], "fixed",
                               np.where(self.params["at_bound"], "at bound", ""))
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            body = tab.to_string(float_format=lambda v: f"{v:.4g}")
        lines += ["    " + ln for ln in body.splitlines()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return f"<pre>{self.summary()}</pre>"


@dataclass(frozen=True)
class FitFailure:
    """A participant whose fit could not be done, and why."""

    id: Any
    endpoint: str
    error: str
    reason: str


@dataclass(frozen=True, eq=False, repr=False)
class FitResults:
    """Individual fits of many participants (see :func:`fit_individuals`).

    Attributes
    ----------
    model, endpoint, method : str
        What was fitted.
    fits : tuple of FitResult
        Participants that were fitted (possibly flagged), in input order.
    failures : tuple of FitFailure
        Participants that could not be fitted, with the reason.
    timing : mapping
        ``total_s``, ``per_fit_ms`` (mean of the fits' own timings) and ``workers``
        (not part of comparisons).
    """

    model: str
    endpoint: str
    method: str
    fits: tuple[FitResult, ...]
    failures: tuple[FitFailure, ...] = ()
    timing: Mapping[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fits)

    def __iter__(self) -> Iterator[FitResult]:
        return iter(self.fits)

    def __getitem__(self, key: Any) -> FitResult:
        """The fit of participant ``key`` (first match; ``(id, endpoint)`` also accepted)."""
        for f in self.fits:
            if f.id == key or (isinstance(key, tuple) and (f.id, f.endpoint) == key):
                return f
        raise KeyError(f"no fit for participant {key!r}; fitted: {[f.id for f in self.fits]}")

    @property
    def failed(self) -> pd.DataFrame:
        """``id, endpoint, error, reason`` of the failures."""
        return pd.DataFrame([vars(f) for f in self.failures],
                            columns=["id", "endpoint", "error", "reason"])

    @property
    def counts(self) -> dict[str, int]:
        """Numbers of fits converged, not converged, flagged and failed."""
        conv = sum(f.converged for f in self.fits)
        return {"participants": len(self.fits) + len(self.failures), "fitted": len(self.fits),
                "converged": conv, "not_converged": len(self.fits) - conv,
                "flagged": sum(bool(f.flags) for f in self.fits), "failed": len(self.failures)}

    def to_frame(self, include_failed: bool = True) -> pd.DataFrame:
        """Stacked parameter tables (:data:`PARAMETER_COLUMNS`); one row per failure too."""
        parts = [f.to_frame() for f in self.fits]
        if include_failed and self.failures:
            fail = pd.DataFrame([{"id": f.id, "endpoint": f.endpoint, "model": self.model,
                                  "method": self.method, "status": "failed", "flags": "failed",
                                  "reason": f"{f.error}: {f.reason}"} for f in self.failures])
            parts.append(fail.reindex(columns=list(PARAMETER_COLUMNS)))
        if not parts:
            return pd.DataFrame(columns=list(PARAMETER_COLUMNS))
        parts = [p.astype(object) for p in parts] if len(parts) > 1 else parts
        out = pd.concat(parts, ignore_index=True)
        return out.infer_objects()

    def predictions(self) -> pd.DataFrame:
        """Stacked prediction tables, with ``model`` and ``method`` columns."""
        if not self.fits:
            return pd.DataFrame()
        out = pd.concat([f.predictions for f in self.fits], ignore_index=True)
        out.insert(3, "model", self.model)
        return out

    def flag_table(self) -> pd.DataFrame:
        """One row per (participant, flag) with its message."""
        rows = []
        for f in self.fits:
            for code in f.flags:
                msg = next((m for m in f.messages if m.startswith(code + ":")), "")
                rows.append({"id": f.id, "endpoint": f.endpoint, "flag": code,
                             "message": msg.partition(": ")[2]})
        return pd.DataFrame(rows, columns=["id", "endpoint", "flag", "message"])

    def summary(self) -> str:
        """Counts, flag frequencies, failures and the median estimates."""
        c = self.counts
        lines = [f"[[Individual fits]] model {self.model}  endpoint {self.endpoint}  BLQ "
                 f"{self.method.upper()}",
                 "    " + "  ".join(f"{k} {v}" for k, v in c.items())]
        ft = self.flag_table()
        if len(ft):
            freq = ft["flag"].value_counts()
            lines.append("    flags: " + ", ".join(f"{k} x{v}" for k, v in freq.items()))
        for f in self.failures:
            lines.append(f"    failed {f.id!r}: {f.error}: {f.reason.splitlines()[-1].strip()}")
        if self.fits:
            tab = self.to_frame(include_failed=False)
            for ep, g in tab.groupby("endpoint", sort=False):
                med = g.groupby("parameter", sort=False)["estimate"].median()
                lines.append(f"    median estimates ({ep}): " + ", ".join(
                    f"{k} {v:.4g}" for k, v in med.items()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()
