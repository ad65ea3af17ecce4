"""Shared helpers for the model tests: independent reference computations."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pytest
from scipy.integrate import quad

from carkinetics.models import Model


def level_function(model: Model, params: Mapping[str, float]) -> Callable[[float], float]:
    """Scalar level function for quadrature (one ODE solve for the ODE model)."""
    if model.name == "two_pool":
        sol = model.solve(params)
        return lambda s: float(sol.level(s)[0])
    return lambda s: float(model.predict(s, params))


def reference_auc(model: Model, params: Mapping[str, float], t0: float, t1: float,
                  f: Callable[[float], float] | None = None) -> float:
    """AUC by scipy.integrate.quad, split at the model's breakpoints (t1 may be inf).

    Independent of the models' own AUC code: adaptive Gauss-Kronrod of the predictions.
    """
    f = f or level_function(model, params)
    lo = max(t0, 0.0)
    if t1 <= lo:
        return 0.0
    pts = sorted({b for b in model.breakpoints(params) if lo < b < t1})
    edges = [lo, *pts]
    if math.isfinite(t1):
        edges.append(t1)
    else:  # a few long pieces, then quad's own transform to infinity
        last = edges[-1]
        edges += [last + 50.0, last + 2000.0]
    total = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        total += quad(f, a, b, limit=500, epsabs=0.0, epsrel=1e-12)[0]
    if not math.isfinite(t1):
        total += quad(f, edges[-1], np.inf, limit=500, epsabs=0.0, epsrel=1e-12)[0]
    return total


@pytest.fixture
def ref_auc():
    return reference_auc


@pytest.fixture
def level_fn():
    return level_function
