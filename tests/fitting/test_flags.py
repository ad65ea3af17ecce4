"""Every flag is triggered by a constructed participant; single fits warn, batches do not."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import (
    CensoringWarning,
    ConvergenceWarning,
    IdentifiabilityWarning,
)
from carkinetics.fitting import FLAGS, fit_individuals

from .conftest import fit_quiet, participant, pattern

DENSE = [1, 2, 4, 7, 9, 12, 14, 21, 28, 42, 56, 91, 120, 183, 270, 365]


def case(name):
    if name == "tmax_at_first_sample":
        t = [14, 21, 28, 42, 56, 91, 183, 365]
        return participant(t, noise=pattern(len(t))), {}
    if name == "tmax_at_last_sample":
        t = [1, 2, 3, 4, 5, 6, 7, 8]
        return participant(t, noise=pattern(len(t))), {}
    if name == "few_post_peak":
        t = [1, 2, 4, 7, 10, 21, 42]
        return participant(t, noise=pattern(len(t))), {}
    if name == "all_post_peak_blq":
        t = [1, 2, 4, 7, 10, 28, 56, 91, 183]
        return participant(t, lloq=9000.0, noise=pattern(len(t), 0.05)), {}
    if name == "at_bound":
        return participant(DENSE, noise=pattern(len(DENSE))), {"bounds": {"tmax": (3.0, 6.0)}}
    if name == "not_converged":
        return participant(DENSE, noise=pattern(len(DENSE))), {"max_iter": 1, "max_nfev": 2,
                                                               "n_starts": 1}
    if name == "tmax_on_sample":  # the true tmax (10 d) is a sample time
        t = [1, 2, 4, 7, 10, 14, 21, 28, 42, 56, 91, 120, 183, 270, 365]
        return participant(t, noise=pattern(len(t))), {}
    if name == "n_obs_lt_n_par":
        return participant([2, 7, 14, 28], noise=pattern(4)), {}
    if name == "blq_approximate":
        return participant(DENSE, lloq=200.0, noise=pattern(len(DENSE))), {"method": "m1"}
    raise KeyError(name)


CASES = ["tmax_at_first_sample", "tmax_at_last_sample", "few_post_peak", "all_post_peak_blq",
         "at_bound", "not_converged", "n_obs_lt_n_par", "tmax_on_sample", "blq_approximate"]


@pytest.mark.parametrize("name", CASES)
def test_flag_is_raised_as_warning_and_recorded(name):
    frame, kw = case(name)
    res, classes = fit_quiet(frame, **kw)
    assert name in res.flags
    assert FLAGS[name][1] in classes
    assert any(m.startswith(f"{name}: ") for m in res.messages)
    assert res.status == "flagged"
    assert np.isfinite(res.ofv)


def test_flag_details():
    res, _ = fit_quiet(*case("at_bound")[:1], bounds={"tmax": (3.0, 6.0)})
    assert res.params.loc["tmax", "at_bound"]
    assert res.estimates["tmax"] == pytest.approx(6.0, rel=1e-3)
    assert np.isnan(res.params.loc["tmax", "se"])  # no SE for a parameter at a bound
    row = res.to_frame().set_index("parameter").loc["tmax"]
    assert "at_bound" in row["flags"].split(";")

    res, classes = fit_quiet(case("all_post_peak_blq")[0])
    assert {"all_post_peak_blq", "few_post_peak"} <= set(res.flags)
    assert {CensoringWarning, IdentifiabilityWarning} <= classes

    res, classes = fit_quiet(case("not_converged")[0], max_iter=1, max_nfev=2, n_starts=1)
    assert not res.converged and ConvergenceWarning in classes

    res, _ = fit_quiet(case("n_obs_lt_n_par")[0])
    assert res.n_obs == 4 < res.n_par == 7


def test_a_clean_participant_has_no_flags():
    frame = participant(DENSE, noise=pattern(len(DENSE)))
    res, classes = fit_quiet(frame)
    assert res.flags == () and classes == set()
    assert res.converged


def test_a_minimum_on_the_kink_is_converged():
    """tmax on a sample time: no zero gradient, yet a minimum (no coordinate step helps)."""
    res, _ = fit_quiet(case("tmax_on_sample")[0])
    assert res.flags == ("tmax_on_sample",)
    assert res.converged
    assert res.estimates["tmax"] == pytest.approx(10.0, rel=1e-5)


def test_batch_turns_warnings_into_flags_without_warning():
    frames = []
    for name in CASES[:-1]:
        f, _ = case(name)
        frames.append(f.assign(id=name))
    data = pd.concat(frames, ignore_index=True)
    res = fit_individuals(data, progress=False, bounds={"tmax": (0.5, 60.0)})  # no warnings
    flags = res.flag_table()
    for name in ("tmax_at_first_sample", "tmax_at_last_sample", "few_post_peak",
                 "all_post_peak_blq", "n_obs_lt_n_par"):
        assert name in set(flags.loc[flags["id"] == name, "flag"])
    assert res.counts["flagged"] >= 5 and res.counts["failed"] == 0
