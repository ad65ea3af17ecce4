"""The validation report (validation/run.py) in quick mode: every check passes and every
reference reproduction is in the table."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]

EXPECTED = [
    ("published CK", "piecewise, Stein 2019 typical values: doubling time"),
    ("published CK", "piecewise_lag typical values: terminal half-life"),
    ("closed forms", "two_pool: auc_0_inf"),
    ("closed forms", "piecewise: AUC0-inf, Stein 2019"),
    ("censoring (Beal 2001)", "additive error, M2"),
    ("censoring (Beal 2001)", "additive error, M4"),
    ("censoring (Beal 2001)", "log-additive error, M3"),
    ("NCA", "Theoph (12 subjects): AUCLST"),
    ("NCA", "Indometh (6 subjects): LAMZ"),
    ("NCA", "Theoph: lambda_z best fit"),
    ("NONMEM pheno", "FOCE-I OFV at NONMEM's final estimates"),
    ("NONMEM pheno", "FOCE-I fit: THETA(1) CL"),
    ("NONMEM pheno", "FOCE-I fit: SIGMA(1,1)"),
    ("dose escalation", "BOIN target 0.30, n = 3..30: eliminate"),
    ("dose escalation", "BOIN target 0.2: lambda_e / lambda_d"),
    ("dose escalation", "3+3 (plain)"),
    ("dose escalation", "CRM (logistic"),
    ("simulation-estimation", "FOCE-I bias and 90% CI coverage"),
]


def test_quick_validation_report_passes(tmp_path):
    spec = importlib.util.spec_from_file_location("carkinetics_validation_run",
                                                  REPO / "validation" / "run.py")
    validation_run = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = validation_run  # dataclasses look their module up there
    try:
        spec.loader.exec_module(validation_run)
    finally:
        sys.modules.pop(spec.name, None)
    code = validation_run.main(["--quick", "--out", str(tmp_path)])
    table = pd.read_csv(tmp_path / "report.csv")
    md = (tmp_path / "report.md").read_text()
    assert code == 0
    ran = table[~table["mode"].str.contains("skipped")]
    assert (ran["result"] == "pass").all(), ran.loc[ran["result"] != "pass", "check"].tolist()
    assert len(ran) >= 50
    for category, check in EXPECTED:
        rows = table[(table["category"] == category) & table["check"].str.startswith(check)]
        assert len(rows) >= 1, (category, check)
    # the long study is named as skipped in quick mode, not silently left out
    sim = table[table["category"] == "simulation-estimation"]
    assert sim["mode"].str.contains("skipped in quick mode").all()
    assert f"**{len(ran)} of {len(ran)} checks pass**" in md
    # every obtained value of a run check is there
    assert ran["obtained"].notna().all() and ran["reference"].notna().all()
