"""FOCE-I against NONMEM 7 on the phenobarbital data (pheno_real, FOCE with INTERACTION).

Published NONMEM 7 final estimates and OFV of pheno_real, as stored in Pharmpy's test data
(pheno_real.ext / .lst, also printed in Pharmpy's documentation): OFV 586.27605628188053;
THETA 0.00469555, 0.984258, 0.158920; OMEGA(1,1) 0.0293508, OMEGA(2,2) 0.0279060;
SIGMA(1,1) 0.0132410.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from carkinetics.exceptions import IdentifiabilityWarning
from carkinetics.fitting.population.focei import fit_focei, focei_objective

REPO = Path(__file__).resolve().parents[3]
NONMEM = {"ofv": 586.27605628188053, "theta": [0.00469555, 0.984258, 0.158920],
          "omega": [0.0293508, 0.0279060], "sigma": [0.0132410]}


@pytest.fixture(scope="module")
def pheno():
    sys.path.insert(0, str(REPO / "examples"))
    try:
        import pheno_focei
    finally:
        sys.path.pop(0)
    obs, doses, cov = pheno_focei.load()
    return pheno_focei.build(obs, doses), obs, cov


def test_data_shape(pheno):
    _, obs, cov = pheno
    assert len(obs) == 155 and len(cov) == 59


def test_ofv_at_nonmem_estimates_equals_nonmem_ofv(pheno):
    model, obs, cov = pheno
    th = dict(zip(("cl", "v", "apgr_v"), NONMEM["theta"], strict=True))
    ofv = focei_objective(model, obs, cov, th, np.diag(NONMEM["omega"]),
                          {"sigma_prop": NONMEM["sigma"][0] ** 0.5})
    assert ofv == pytest.approx(NONMEM["ofv"], abs=1e-3)


def test_example_script_reproduces_nonmem():
    env = {**os.environ, "PYTHONPATH": str(REPO)}  # this checkout's carkinetics
    r = subprocess.run([sys.executable, "examples/pheno_focei.py"], cwd=REPO,
                       capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ofv"] == pytest.approx(NONMEM["ofv"], abs=0.1)
    for key in ("theta", "omega", "sigma"):
        np.testing.assert_allclose(out[key], NONMEM[key], rtol=0.01)


def test_pheno_covariance_step_and_diagnostics(pheno):
    """SEs exist (PD Hessian), the sandwich is of the same order, CWRES/NPDE are sane."""
    model, obs, cov = pheno
    # NONMEM-style eta shrinkage of CL is high on these sparse data (about 47%)
    with pytest.warns(IdentifiabilityWarning, match="shrinkage of cl"):
        res = fit_focei(model, obs, cov, omega0=np.diag([0.0309626, 0.031128]), n_sim=300)
    fr = res.to_frame().set_index("parameter")
    assert res.converged and not any("Hessian" in w for w in res.warnings)
    assert 0.3 < res.shrinkage["cl"] < 0.6
    np.testing.assert_allclose(fr["estimate"][["cl", "v", "apgr_v"]], NONMEM["theta"],
                               rtol=0.01)
    assert np.all(fr["se"] > 0) and np.all(np.isfinite(fr["se"]))
    assert np.all((fr["ci_lower"] < fr["estimate"]) & (fr["estimate"] < fr["ci_upper"]))
    ratio = fr["se_sandwich"] / fr["se"]
    assert np.all((ratio > 0.3) & (ratio < 3.0))
    assert np.isfinite(res.condition_number) and res.condition_number >= 1
    t = res.table
    assert abs(t["CWRES"].mean()) < 0.3 and 0.6 < t["CWRES"].std() < 1.4
    assert abs(t["NPDE"].mean()) < 0.3 and 0.6 < t["NPDE"].std() < 1.4
    assert set(res.shrinkage) == {"cl", "v", "epsilon"}
