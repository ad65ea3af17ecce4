"""Bad input: clear messages from a single fit, recorded failures in a batch."""

import numpy as np
import pandas as pd
import pytest

from carkinetics.exceptions import DataError, ModelSpecError
from carkinetics.fitting import fit_individual, fit_individuals

from .conftest import participant, pattern

T = [1, 2, 4, 7, 9, 12, 14, 21, 28, 56, 91, 183]


def good(pid="G"):
    return participant(T, pid=pid, noise=pattern(len(T)))


def no_ck(pid="N"):
    return pd.DataFrame({"id": pid, "time": [1.0, 7.0, 28.0], "endpoint": "igg",
                         "dv": [9.0, 8.0, 7.5], "unit": "g/L", "cens": 0, "dose": 1e6})


def all_blq(pid="B"):
    return participant(T, pid=pid, lloq=1e7)


def test_no_ck_rows():
    with pytest.raises(DataError, match=r"participant 'N': no car_qpcr rows.*'igg'"):
        fit_individual(no_ck())


def test_all_rows_blq():
    with pytest.raises(DataError, match="all 12 post-infusion car_qpcr row.*below the LLOQ"):
        fit_individual(all_blq())


def test_unknown_model_and_method():
    with pytest.raises(ModelSpecError, match="Did you mean 'piecewise'"):
        fit_individual(good(), model="piecewize")
    with pytest.raises(ModelSpecError, match="Invalid method='m9'"):
        fit_individual(good(), method="m9")
    with pytest.raises(ModelSpecError, match="m7"):  # M7 is impossible on the log scale
        fit_individual(good(), method="m7")


def test_bound_that_excludes_the_start():
    with pytest.raises(ModelSpecError, match=r"start tmax=30.0: outside its bounds \(5.0, 20.0\)"):
        fit_individual(good(), start={"tmax": 30.0}, bounds={"tmax": (5.0, 20.0)})
    with pytest.raises(ModelSpecError, match="within the parameter's own bounds"):
        fit_individual(good(), bounds={"fb": (0.1, 2.0)})
    with pytest.raises(ModelSpecError, match="Did you mean 'alpha'"):
        fit_individual(good(), start={"alpah": 0.1})


def test_several_participants_need_an_id():
    with pytest.raises(ModelSpecError, match="pass id="):
        fit_individual(pd.concat([good("A"), good("B")]))
    with pytest.raises(DataError, match="participant 'Z': no rows"):
        fit_individual(good(), id="Z")


def test_fixed_and_start_values_are_used():
    res = fit_individual(good(), fixed={"fb": 0.03}, start={"alpha": 0.2}, warn=False)
    assert res.params.loc["fb", "fixed"] and res.estimates["fb"] == pytest.approx(0.03)
    assert np.isnan(res.params.loc["fb", "se"])
    assert res.n_par == 6
    assert res.starts.loc[0, "alpha"] != 0.2  # final values of each start are reported


def test_batch_records_each_failure_and_goes_on():
    starts = pd.DataFrame({"tmax": [np.nan, 30.0]}, index=["G1", "G2"])
    data = pd.concat([good("G1"), no_ck("N"), all_blq("B"), good("G2")], ignore_index=True)
    res = fit_individuals(data, progress=False, start=starts, bounds={"tmax": (5.0, 20.0)},
                          n_starts=3)
    assert [f.id for f in res.fits] == ["G1"]
    failed = res.failed.set_index("id")
    assert list(failed.index) == ["N", "B", "G2"]
    assert "no car_qpcr rows" in failed.loc["N", "reason"]
    assert "below the LLOQ" in failed.loc["B", "reason"]
    assert "outside its bounds" in failed.loc["G2", "reason"]
    assert set(failed["error"]) == {"DataError", "ModelSpecError"}
    tab = res.to_frame()
    assert set(tab.loc[tab["status"] == "failed", "id"]) == {"N", "B", "G2"}
    assert res.counts == {"participants": 4, "fitted": 1, "converged": 1, "not_converged": 0,
                          "flagged": 0, "failed": 3}
    assert "failed 'B'" in res.summary()


def test_batch_rejects_unknown_model_at_once():
    with pytest.raises(ModelSpecError, match="Did you mean"):
        fit_individuals(good(), "piecewize", progress=False)


def test_predose_rows_left_out():
    data = pd.concat([participant([-1.0], lloq=50.0).assign(dv=80.0, cens=0), good("X")])
    res = fit_individual(data.assign(id="X"), warn=False)
    assert (res.predictions["time"] >= 0).all()
    assert any("pre-infusion" in m for m in res.messages)
