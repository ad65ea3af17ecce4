"""Shared data and an independent (scipy.stats, row by row) censored likelihood."""

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.models import get_model

TRIAL = Path(__file__).resolve().parents[2] / "data" / "synthetic" / "trial.csv"
PIECEWISE = get_model("piecewise")
TRUTH = {"foldx": 1500.0, "tmax": 10.0, "cmax": 15000.0, "alpha": 0.12, "fb": 0.03,
         "beta": 0.006}


@pytest.fixture(scope="session")
def trial():
    return pd.read_csv(TRIAL)


def participant(times, *, pid="X", lloq=50.0, noise=None, params=None, endpoint="car_qpcr",
                dose=1e6):
    """A participant's rows from the piecewise truth; BLQ rows keep dv == lloq."""
    t = np.asarray(times, dtype=float)
    f = PIECEWISE.predict(t, params or TRUTH)
    if noise is not None:
        f = f * np.exp(np.asarray(noise, dtype=float))
    cens = (f < lloq).astype(int)
    dv = np.where(cens == 1, lloq, f)
    return pd.DataFrame({"id": pid, "time": t, "endpoint": endpoint, "dv": dv,
                         "unit": "copies/ug", "lloq": lloq, "cens": cens, "dose": dose})


#: a fixed, zero-mean pattern of residuals (no random numbers in tests)
def pattern(n, scale=0.2):
    return scale * np.sin(1.7 * np.arange(n) + 0.3)


def fit_quiet(*args, **kw):
    """fit_individual with its flag warnings recorded: (result, set of warning classes)."""
    from carkinetics.fitting import fit_individual

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit_individual(*args, **kw)
    return res, {w.category for w in caught}


def handwritten_ll(pred_rows: pd.DataFrame, ipred, sigma, method="m3"):
    """Per-row log-likelihood written with scipy.stats (log-normal error, M1 or M3)."""
    x = np.log(pred_rows["dv"].to_numpy(float))
    mu = np.log(np.asarray(ipred, float))
    s = np.asarray(sigma, float) * np.ones_like(x)
    c = pred_rows["cens"].to_numpy()
    out = np.empty_like(x)
    for i in range(x.size):
        if c[i] == 0:
            out[i] = stats.norm.logpdf(x[i], mu[i], s[i])
        elif c[i] == 1:
            out[i] = 0.0 if method == "m1" else stats.norm.logcdf(x[i], mu[i], s[i])
        else:
            out[i] = stats.norm.logsf(x[i], mu[i], s[i])
    return out
