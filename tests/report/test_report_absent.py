"""Sections whose inputs are absent are left out with a note; the command's exit codes."""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest

from carkinetics.exceptions import DataError
from carkinetics.report import build_report

from .htmltables import parse_report
from .test_report_tables import PLACEHOLDER


@pytest.fixture(scope="module")
def ck_only(demo_run, tmp_path_factory):
    """The demo's data with the CAR-T rows only (no PD endpoints)."""
    r, demo = demo_run
    assert r.returncode == 0, r.stderr
    data = pd.read_csv(demo / "trial.csv")
    path = tmp_path_factory.mktemp("ck") / "ck.csv"
    data[data["endpoint"].isin(["car_qpcr", "car_flow"])].to_csv(path, index=False)
    return path


def test_absent_inputs_leave_sections_out_with_a_note(ck_only, tmp_path):
    out = build_report(ck_only, tmp_path / "r.html")
    p = parse_report(out.read_text())
    assert p.sections == {"cohort": "yes", "kinetics": "yes", "population": "no",
                          "pd": "no", "safety": "no", "escalation": "no",
                          "provenance": "yes"}
    assert "--popfit" in p.notes["population"] and "--endpoints" in p.notes["safety"]
    assert "--escalation" in p.notes["escalation"]
    assert "PD endpoints" in p.notes["pd"]
    # no table of a left-out section, and the kinetics section says what it lacks
    assert {t.section for t in p.tables.values()} == {"cohort", "provenance"}
    text = "".join(p.text)
    assert "--fit DIR" in text and "--nca FILE" in text
    assert len(p.images) == 1  # the CAR-T spaghetti plot only
    assert not PLACEHOLDER.search(text)
    # the contents mark left-out sections
    assert len(re.findall(r"\(left out\)", text)) == 4
    # the one input is hashed
    assert p.tables["tab-provenance-inputs"].col("file") == [str(ck_only)]


def test_endpoints_without_ae_leave_safety_out(ck_only, demo_run, tmp_path):
    _, demo = demo_run
    ep = tmp_path / "endpoints"
    ep.mkdir()
    (ep / "participants.csv").write_bytes((demo / "endpoints" / "participants.csv")
                                          .read_bytes())
    p = parse_report(build_report(ck_only, tmp_path / "r.html", endpoints=ep).read_text())
    assert p.sections["safety"] == "no" and "without --ae" in p.notes["safety"]


def test_missing_input_is_an_error(ck_only, tmp_path):
    with pytest.raises(DataError, match="absent"):
        build_report(ck_only, tmp_path / "r.html", popfit=tmp_path / "absent")


def test_cli_exit_codes(ck_only, demo_run, tmp_path):
    _, demo = demo_run

    def run(*args):
        return subprocess.run([sys.executable, "-m", "carkinetics", "report", *map(str, args)],
                              capture_output=True, text=True, timeout=600)

    r = run("--data", tmp_path / "absent.csv", "--out", tmp_path / "r.html")
    assert r.returncode == 1 and "absent.csv" in r.stderr
    r = run("--data", ck_only, "--out", tmp_path / "r.pdf")
    assert r.returncode == 2 and "r.pdf" in r.stderr
    r = run("--data", ck_only, "--escalation", demo / "escalation.json",
            "--out", tmp_path / "r.html")
    assert r.returncode == 0, r.stderr
    assert str((tmp_path / "r.html").resolve()) in r.stdout
    p = parse_report((tmp_path / "r.html").read_text())
    assert p.sections["escalation"] == "yes" and p.sections["population"] == "no"
    assert p.items["provenance-run"]["command"].startswith("carkinetics report --data ")
