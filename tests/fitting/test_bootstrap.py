"""Case bootstrap by participant (carkinetics.fitting.bootstrap), against independent sums.

* bootstrap SE of a mean against its plug-in value ``sqrt((n-1)/n) s / sqrt(n)``;
* percentile, basic and BCa limits recomputed here from the replicate and jackknife tables
  with numpy/scipy (Efron & Tibshirani 1993, eqs. 14.9-14.15), and BCa against
  ``scipy.stats.bootstrap``;
* reproducibility: 1 vs 2 workers identical; replicate k alone identical to its run in
  the batch; stratified draws keep each stratum's size;
* failures and unconverged replicates recorded with their reasons and counted;
* individual-fit bootstrap equal to refitting the resampled data of a replicate;
* a small FOCE-I bootstrap against the covariance-step SEs.
"""

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carkinetics.exceptions import DataError
from carkinetics.fitting import fit_individuals
from carkinetics.fitting.bootstrap import (
    Estimate,
    Summary,
    bootstrap_focei,
    bootstrap_individuals,
    bootstrap_participants,
    resample_ids,
    resample_table,
)

from .conftest import TRIAL

#: a fixed sample: one value per participant (n = 40)
X = np.random.default_rng(20261125).normal(10.0, 2.0, 40)
TABLE = pd.DataFrame({"id": [f"S{i:02d}" for i in range(40)], "x": X,
                      "arm": np.repeat(["a", "b"], 20)})
MEAN = Summary("mean", value="x", by=None)


def _fragile(table: pd.DataFrame) -> Estimate:
    """Raises when participant S00 is drawn twice or more; unconverged when S01 is absent."""
    n00 = int((table["id"].str.split("#").str[0] == "S00").sum())
    if n00 >= 2:
        raise ValueError(f"S00 drawn {n00} times")
    conv = bool((table["id"].str.split("#").str[0] == "S01").any())
    return Estimate({"x": float(table["x"].mean())}, conv, "" if conv else "S01 absent")


def test_resampling_reproducible_stratified_and_relabelled():
    ss = np.random.SeedSequence(5).spawn(3)[2]
    a = resample_ids(TABLE["id"], ss, strata=TABLE["arm"])
    b = resample_ids(TABLE["id"], np.random.SeedSequence(5).spawn(7)[2], strata=TABLE["arm"])
    assert a.tolist() == b.tolist()  # child k does not depend on n
    assert set(a[:20]) <= set(TABLE["id"][:20]) and set(a[20:]) <= set(TABLE["id"][20:])
    assert len(set(a)) < 40  # with replacement: some repeats (P(no repeat) ~ 1e-16)
    rows = pd.DataFrame({"id": ["p", "p", "q"], "t": [1, 2, 1]})
    out = resample_table(rows, ["p", "q", "p"])
    assert out["id"].tolist() == ["p#1", "p#1", "q#2", "p#3", "p#3"]
    assert out["t"].tolist() == [1, 2, 1, 1, 2]
    with pytest.raises(DataError, match="varies within"):
        bootstrap_participants(pd.DataFrame({"id": [1, 1, 2], "x": [1.0, 2.0, 3.0],
                                             "s": [0, 1, 0]}), MEAN, n=2, stratify="s",
                               progress=False)


def test_bootstrap_se_of_a_mean_and_interval_formulas():
    res = bootstrap_participants(TABLE, MEAN, n=600, seed=11, progress=False)
    assert res.counts == {"ok": 600, "unconverged": 0, "failed": 0, "total": 600}
    iv = res.intervals.set_index("parameter").loc["x"]
    n = len(X)
    plug_in = np.std(X, ddof=0) / math.sqrt(n)  # = sqrt((n-1)/n) s / sqrt(n)
    # Monte Carlo SD of an SE from B = 600 replicates: ~ 1/sqrt(2B) = 2.9 %; 3 SD = 9 %
    assert iv["se"] == pytest.approx(plug_in, rel=0.09)
    assert iv["estimate"] == pytest.approx(X.mean(), rel=1e-14)
    est = res.to_frame()["estimate"].to_numpy()
    # the estimates are the means of the drawn participants (samples table)
    s = res.samples[res.samples["replicate"] == 17]
    assert est[17] == pytest.approx(TABLE.set_index("id").loc[s["id"], "x"].mean(), rel=1e-13)
    lo, hi = np.percentile(est, [2.5, 97.5])
    assert (iv["pct_lower"], iv["pct_upper"]) == (lo, hi)
    assert (iv["basic_lower"], iv["basic_upper"]) == (2 * X.mean() - hi, 2 * X.mean() - lo)
    # BCa written out here: z0 from the fraction below, a from the leave-one-out means
    z0 = stats.norm.ppf(np.mean(est < X.mean()))
    jk = np.array([np.delete(X, i).mean() for i in range(n)])
    d = jk.mean() - jk
    acc = np.sum(d**3) / (6 * np.sum(d**2) ** 1.5)
    zq = stats.norm.ppf([0.025, 0.975])
    q = stats.norm.cdf(z0 + (z0 + zq) / (1 - acc * (z0 + zq)))
    assert iv["z0"] == pytest.approx(z0, rel=1e-12)
    assert iv["acceleration"] == pytest.approx(acc, rel=1e-9, abs=1e-15)
    assert (iv["bca_lower"], iv["bca_upper"]) == pytest.approx(
        tuple(np.percentile(est, 100 * q)), rel=1e-12)
    # and close to scipy's BCa on its own resamples (Monte Carlo: 15 % of the width)
    ref = stats.bootstrap((X,), np.mean, n_resamples=2000, method="BCa", confidence_level=0.95,
                          rng=np.random.default_rng(1)).confidence_interval
    width = ref.high - ref.low
    assert abs(iv["bca_lower"] - ref.low) < 0.15 * width
    assert abs(iv["bca_upper"] - ref.high) < 0.15 * width


def test_independent_of_workers_and_of_the_other_replicates():
    one = bootstrap_participants(TABLE, MEAN, n=12, seed=3, stratify="arm", bca=False,
                                 progress=False)
    two = bootstrap_participants(TABLE, MEAN, n=12, seed=3, stratify="arm", bca=False,
                                 workers=2, progress=False)
    pd.testing.assert_frame_equal(one.to_frame(), two.to_frame())
    pd.testing.assert_frame_equal(one.samples, two.samples)
    alone = bootstrap_participants(TABLE, MEAN, n=12, seed=3, stratify="arm", bca=False,
                                   replicates=[7], progress=False)
    assert alone.samples["id"].tolist() == one.samples.loc[
        one.samples["replicate"] == 7, "id"].tolist()
    assert alone.to_frame()["estimate"].iloc[0] == one.to_frame()["estimate"].iloc[7]
    per = one.samples.merge(TABLE[["id", "arm"]], on="id").groupby(["replicate", "arm"]).size()
    assert (per == 20).all()  # each stratum keeps its size in every replicate


def test_failed_and_unconverged_replicates_are_recorded():
    res = bootstrap_participants(TABLE, _fragile, n=60, seed=8, bca=False, progress=False)
    s = res.samples
    drawn00 = s[s["id"] == "S00"].groupby("replicate").size().reindex(range(60), fill_value=0)
    has01 = s[s["id"] == "S01"].groupby("replicate").size().reindex(range(60), fill_value=0)
    n_fail = int((drawn00 >= 2).sum())
    n_unconv = int(((drawn00 < 2) & (has01 == 0)).sum())
    assert n_fail > 0 and n_unconv > 0
    assert res.counts == {"ok": 60 - n_fail - n_unconv, "unconverged": n_unconv,
                          "failed": n_fail, "total": 60}
    failed = res.replicates[res.replicates["status"] == "failed"]
    assert failed["reason"].str.startswith("ValueError: S00 drawn").all()
    unconv = res.replicates[res.replicates["status"] == "unconverged"]
    assert (unconv["reason"] == "S01 absent").all()
    assert res.intervals["n_used"].iloc[0] == 60 - n_fail - n_unconv
    assert len(res.to_frame()) == 60 - n_fail  # unconverged estimates are kept, flagged
    summ = res.summary()
    assert len(summ["not_ok"]) == n_fail + n_unconv
    incl = bootstrap_participants(TABLE, _fragile, n=60, seed=8, bca=False, progress=False,
                                  include_unconverged=True)
    assert incl.intervals["n_used"].iloc[0] == 60 - n_fail


@pytest.fixture(scope="module")
def trial():
    return pd.read_csv(TRIAL)


def test_individual_bootstrap_equals_refitting_a_replicate(trial):
    data = trial[trial["endpoint"] == "car_qpcr"]
    res = bootstrap_individuals(data, n=20, seed=4, stratify="dose", n_starts=4,
                                progress=False)
    assert res.counts["ok"] == 20
    drawn = res.samples.loc[res.samples["replicate"] == 13, "id"].to_numpy(dtype=object)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refit = fit_individuals(resample_table(data, drawn), n_starts=4, progress=False)
    tab = refit.to_frame(include_failed=False)
    med = tab[~tab["fixed"].astype(bool)].groupby("parameter")["estimate"].median()
    got = res.to_frame().query("replicate == 13").set_index("parameter")["estimate"]
    pd.testing.assert_series_equal(got.sort_index(), med.sort_index(), check_names=False,
                                   rtol=1e-6)
    assert res.intervals.set_index("parameter").loc["cmax", "n_used"] == 20


def test_small_focei_bootstrap_against_covariance_step():
    from carkinetics.fitting.population import PopulationSpec, fit_focei
    from carkinetics.simulate import simulate_trial
    from carkinetics.simulate.trial import CKPopulation, TrialDesign

    pop = CKPopulation(omega={"foldx": 0.0, "tmax": 0.0, "cmax": 0.6, "alpha": 0.3,
                              "fb": 0.0, "beta": 0.0}, omega_flow_scale=0.0)
    data = simulate_trial(3, population=pop, include_pd=False, design=TrialDesign(
        dose_levels=(1e6, 3e6), cohort_sizes=(5, 5))).data
    spec = PopulationSpec(random_effects=("cmax", "alpha"), endpoint="car_qpcr")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_focei(spec, data, diagnostics=False)
    res = bootstrap_focei(spec, data, n=6, seed=2, stratify="dose", fit=fit, bca=False,
                          progress=False)
    c = res.counts
    assert c["total"] == 6 and c["failed"] == 0 and c["ok"] >= 5
    iv = res.intervals.set_index("parameter")
    theta = ["foldx", "tmax", "cmax", "alpha", "fb", "beta", "dose_exp"]
    assert iv.loc[theta, "estimate"].to_numpy() == pytest.approx(
        [fit.theta[p] for p in theta], rel=1e-12)
    # Same ballpark: an SE from B = 6 replicates has a relative Monte Carlo SD of about
    # 1/sqrt(2 (B - 1)) = 32 %, and with 10 participants the bootstrap and the asymptotic
    # (inverse-Hessian) SE legitimately differ, so the ratio is only required in [1/3, 3].
    ratio = iv.loc[theta, "se"] / iv.loc[theta, "se_model"]
    assert ratio.between(1 / 3, 3).all(), ratio
    # the replicates are refits of relabelled resamples, stratified by dose
    per = res.samples.assign(dose=res.samples["id"].map(
        data.groupby("id")["dose"].first())).groupby(["replicate", "dose"]).size()
    assert (per == 5).all()


def test_cli_bootstrap_individual(tmp_path, trial):
    from typer.testing import CliRunner

    from carkinetics.cli import app

    data = tmp_path / "d.csv"
    trial[trial["id"].isin(trial["id"].unique()[:8])].to_csv(data, index=False)
    out = tmp_path / "bs"
    runner = CliRunner()
    r = runner.invoke(app, ["bootstrap", str(data), "--method", "individual", "--endpoint",
                            "car_qpcr", "--n", "30", "--seed", "5", "--no-progress", "--out",
                            str(out)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == [
        "intervals.csv", "jackknife.csv", "replicate_status.csv", "replicates.csv",
        "samples.csv", "summary.json"]
    reps = pd.read_csv(out / "replicates.csv")
    iv = pd.read_csv(out / "intervals.csv").set_index("parameter")
    x = reps.loc[reps["parameter"] == "alpha", "estimate"].to_numpy()
    assert iv.loc["alpha", ["pct_lower", "pct_upper"]].to_numpy() == pytest.approx(
        np.percentile(x, [2.5, 97.5]), rel=1e-12)
    assert iv.loc["alpha", "se"] == pytest.approx(np.std(x, ddof=1), rel=1e-12)
    summ = json.loads((out / "summary.json").read_text())
    assert summ["counts"]["total"] == 30 and summ["method"] == "individual"
    bad = runner.invoke(app, ["bootstrap", str(data), "--method", "individual", "--stratify",
                              "nope", "--n", "5", "--no-progress", "--out",
                              str(tmp_path / "x")])
    assert bad.exit_code == 1 and "nope" in bad.output
    use = runner.invoke(app, ["bootstrap", str(data), "--method", "bayes", "--out",
                              str(tmp_path / "y")])
    assert use.exit_code == 2 and "--method" in use.output


def test_store_and_resume_skip_the_stored_replicates(tmp_path):
    calls = []

    def stat(table):
        calls.append(len(table))
        return {"x": float(table["x"].mean())}

    store = tmp_path / "units"
    a = bootstrap_participants(TABLE, stat, n=6, seed=2, bca=False, progress=False,
                               store=store)
    first = len(calls)  # the original data + 6 replicates
    assert first == 7
    b = bootstrap_participants(TABLE, stat, n=6, seed=2, bca=False, progress=False,
                               store=store, resume=True)
    assert len(calls) == first + 1  # only the original statistic: every replicate reused
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    with pytest.raises(Exception, match="(?i)different|fingerprint|job"):
        bootstrap_participants(TABLE, stat, n=6, seed=3, bca=False, progress=False,
                               store=store, resume=True)
