"""FOCE-I against NONMEM 7 on the phenobarbital data (pheno_real, FOCE with INTERACTION).

Published NONMEM 7 final estimates and OFV of pheno_real, as stored in Pharmpy's test data
(pheno_real.ext / .lst, also printed in Pharmpy's documentation): OFV 586.27605628188053;
THETA 0.00469555, 0.984258, 0.158920; OMEGA(1,1) 0.0293508, OMEGA(2,2) 0.0279060;
SIGMA(1,1) 0.0132410.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from carkinetics.fitting.population.focei import focei_objective

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
    r = subprocess.run([sys.executable, "examples/pheno_focei.py"], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["ofv"] == pytest.approx(NONMEM["ofv"], abs=0.1)
    for key in ("theta", "omega", "sigma"):
        np.testing.assert_allclose(out[key], NONMEM[key], rtol=0.01)
