"""Property tests of the individual fits: never a NaN estimate without a flag saying why.

Small random and degenerate data sets (one row, constant values, all BLQ but one, huge or
tiny dv, flat or single-peak profiles) go through ``fit_individual`` and
``fit_individuals``: the result is a clear error (DataError / ModelSpecError), a failure
record with a reason, or a fit whose estimates and OFV are finite; a missing standard error
comes with the flag that explains it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from _props import examples
from hypothesis import event, given
from hypothesis import strategies as st

from carkinetics.exceptions import CarkineticsWarning, DataError, ModelSpecError
from carkinetics.fitting import fit_individual, fit_individuals

_SHAPES = ("random", "constant", "one_row", "all_blq_but_one", "peak")


@st.composite
def one_participant(draw, pid=1):
    shape = draw(st.sampled_from(_SHAPES))
    n = 1 if shape == "one_row" else draw(st.integers(2, 7))
    times = sorted(draw(st.lists(st.sampled_from([0.0, 1.0, 3.0, 7.0, 10.0, 14.0, 21.0,
                                                  28.0, 60.875, 91.3125, 182.625, 365.25]),
                                 min_size=n, max_size=n, unique=True)))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3, 1e6, 1e12]))
    lloq = draw(st.sampled_from([np.nan, 0.5 * scale, 5.0 * scale]))
    if shape == "constant":
        dv = [scale] * n
    elif shape == "peak":
        k = draw(st.integers(0, n - 1))
        dv = [scale * (100.0 if i == k else 1.0 + i) for i in range(n)]
    else:
        dv = [scale * draw(st.floats(0.01, 1000.0)) for _ in range(n)]
    cens = [0] * n
    if shape == "all_blq_but_one" and not np.isnan(lloq):
        keep = draw(st.integers(0, n - 1))
        cens = [0 if i == keep else 1 for i in range(n)]
        dv = [max(v, lloq * 1.5) if i == keep else lloq for i, v in enumerate(dv)]
    elif not np.isnan(lloq):
        cens = [1 if v < lloq else 0 for v in dv]
        dv = [lloq if c else v for v, c in zip(dv, cens, strict=True)]
    dose = draw(st.sampled_from([1e5, 1e6, 5e7]))
    df = pd.DataFrame({"id": pid, "time": times, "dv": dv, "endpoint": "car_qpcr",
                       "unit": "copies/ug", "dose": dose, "cens": cens})
    if not np.isnan(lloq):
        df["lloq"] = lloq
    event(shape)
    return df


def _check_fit(fit) -> None:
    params = fit.params
    free = ~params["fixed"].astype(bool)
    est = params.loc[free, "estimate"].to_numpy(dtype=float)
    flags = set(fit.flags)
    if not np.all(np.isfinite(est)):
        assert flags, f"NaN estimate without a flag: {params['estimate'].to_dict()}"
    assert math.isfinite(fit.ofv) or "not_converged" in flags, fit.ofv
    se = params.loc[free & ~params["at_bound"].astype(bool), "se"].to_numpy(dtype=float)
    if not np.all(np.isfinite(se)):
        assert flags & {"se_unavailable", "at_bound", "not_converged", "n_obs_lt_n_par"}, (
            flags, params["se"].to_dict())
    # every flag has its explanation among the messages
    for code in flags:
        assert any(m.startswith(code + ":") for m in fit.messages), (code, fit.messages)


@examples(15)
@given(df=one_participant(), method=st.sampled_from(["m3", "m1", "m5", "m7"]))
def test_fit_individual_finite_estimates_or_flagged_or_clear_error(df, method):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CarkineticsWarning)
            fit = fit_individual(df, "piecewise", method=method, n_starts=2, warn=False)
    except (DataError, ModelSpecError) as err:
        event(type(err).__name__)
        assert str(err)
        return
    event("fitted")
    _check_fit(fit)
    assert np.all(np.isfinite(fit.params["estimate"].to_numpy(dtype=float))), (
        "fit returned a NaN estimate", fit.params["estimate"].to_dict(), fit.flags)


@examples(8)
@given(parts=st.lists(one_participant(), min_size=1, max_size=3))
def test_fit_individuals_every_participant_fitted_or_failed_with_a_reason(parts):
    df = pd.concat([p.assign(id=i + 1) for i, p in enumerate(parts)], ignore_index=True)
    res = fit_individuals(df, "piecewise", n_starts=2, progress=False)
    done = {f.id for f in res.fits} | set(res.failures["id"] if hasattr(res.failures, "columns")
                                           else [f.id for f in res.failures])
    assert done == set(range(1, len(parts) + 1))
    for fit in res.fits:
        _check_fit(fit)
        assert np.all(np.isfinite(fit.params["estimate"].to_numpy(dtype=float)))
    failures = res.failures if hasattr(res.failures, "columns") else pd.DataFrame(
        [f.__dict__ for f in res.failures])
    for _, f in failures.iterrows():
        assert str(f["reason"]).strip() and str(f["error"]).strip()
