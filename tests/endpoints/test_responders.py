"""DAS28 per visit, ACR/EULAR/SLE responder flags and responder tables on a constructed trial."""

import math

import pandas as pd
import pytest

from carkinetics.endpoints import (
    change_from_baseline,
    das28,
    das28_scores,
    responder_table,
    responders,
)

RA_BASE = dict(sjc28=10, tjc28=20, vas_pain=60, vas_global=50, haq_di=1.0, esr=30, crp=15)
RA_D28 = dict(sjc28=8, tjc28=16, vas_pain=48, vas_global=40, haq_di=0.8, esr=30, crp=12)
RA_M3 = dict(sjc28=1, tjc28=1, vas_pain=10, vas_global=10, haq_di=0.25, esr=8, crp=2)


def _rows(pid, level, disease, day, values):
    return [dict(id=pid, time=day, endpoint=k, dv=float(v), dose_level=level, disease=disease)
            for k, v in values.items()]


def _data():
    rows = (_rows("R1", 1, "RA", -1, RA_BASE) + _rows("R1", 1, "RA", 28, RA_D28)
            + _rows("R1", 1, "RA", 91, RA_M3)
            + _rows("S1", 1, "SLE", -1, dict(sledai2k=12, pga=2.0, bilag2004=20))
            + _rows("S1", 1, "SLE", 28, dict(sledai2k=8, pga=2.2, bilag2004=20))
            + _rows("S1", 1, "SLE", 91, dict(sledai2k=8, pga=2.3, bilag2004=9))
            + _rows("S2", 2, "SLE", -1, dict(sledai2k=10))
            + _rows("S2", 2, "SLE", 28, dict(sledai2k=8)))
    return pd.DataFrame(rows)


@pytest.fixture
def cfb():
    return change_from_baseline(_data())


def test_das28_per_visit(cfb):
    d = das28_scores(cfb).set_index(["endpoint", "visit"])
    base = 0.56 * math.sqrt(20) + 0.28 * math.sqrt(10) + 0.70 * math.log(30) + 0.014 * 50
    assert d.loc[("das28_esr", "Day -1"), "value"] == pytest.approx(base)
    assert d.loc[("das28_esr", "Day 28"), "value"] == pytest.approx(
        das28(16, 8, esr=30, patient_global=40))
    assert d.loc[("das28_esr", "Month 3"), "change"] == pytest.approx(
        das28(1, 1, esr=8, patient_global=10) - base)
    assert d.loc[("das28_crp", "Day 28"), "baseline"] == pytest.approx(
        das28(20, 10, crp=15, patient_global=50))


def test_responder_flags(cfb):
    r = responders(cfb).set_index(["id", "visit", "measure"])["responder"]
    # Day 28: SJC, TJC, pain, patient global and HAQ-DI (1.0 -> 0.8) exactly 20% better;
    # physician global missing (not improved), ESR unchanged -> 3 of 5: ACR20
    assert r[("R1", "Day 28", "acr20")] and not r[("R1", "Day 28", "acr50")]
    # DAS28-ESR 6.47 -> 5.97: improvement 0.50 <= 0.6 -> no EULAR response
    assert not r[("R1", "Day 28", "eular_moderate_or_good")]
    assert r[("R1", "Month 3", "acr70")] and r[("R1", "Month 3", "eular_good")]
    assert r[("R1", "Month 3", "das28_remission")]
    assert not r[("R1", "Day 28", "haq_di_mcid")]   # 0.2 < 0.22
    assert r[("R1", "Month 3", "haq_di_mcid")]
    assert r[("S1", "Day 28", "sledai_drop4")] and r[("S1", "Day 28", "sri4_bilag_numeric")]
    assert r[("S1", "Month 3", "sledai_drop4")]
    assert not r[("S1", "Month 3", "sri4_bilag_numeric")]  # PGA +0.3 is a worsening
    assert not r[("S2", "Day 28", "sledai_drop4")]
    assert ("S2", "Day 28", "sri4_bilag_numeric") not in r.index  # no PGA/BILAG
    assert ("S1", "Day 28", "acr20") not in r.index


def test_responder_table_counts(cfb):
    t = responder_table(responders(cfb)).set_index(["measure", "dose_level", "visit"])
    assert t.loc[("sledai_drop4", 1, "Day 28"), ["n", "N"]].tolist() == [1, 1]
    assert t.loc[("sledai_drop4", 2, "Day 28"), ["n", "N"]].tolist() == [0, 1]
    row = t.loc[("sledai_drop4", "All", "Day 28")]
    assert (row["n"], row["N"], row["pct"]) == (1, 2, 50.0)
    assert row["ci_low"] == pytest.approx(1.2579, abs=1e-3)
    assert t.loc[("acr20", "All", "Month 3"), "n"] == 1


def test_responder_figure_draws_every_measure(cfb):
    from matplotlib.figure import Figure

    from carkinetics.plots.endpoints import plot_responder_rates, responder_figure

    table = responder_table(responders(cfb))
    fig = responder_figure(table)
    assert isinstance(fig, Figure)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == table["measure"].nunique()
    ax = Figure().subplots()
    plot_responder_rates(table, measure="sledai_drop4", ax=ax)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Day 28", "Month 3"]
    assert len(ax.get_lines()) >= 3  # levels 1, 2 and all
