"""DAS28 (ESR/CRP, 3 and 4 variables), categories, EULAR response and ACR20/50/70."""

import math

import pytest

from carkinetics.endpoints import (
    EndpointError,
    acr_response,
    das28,
    das28_category,
    eular_response,
    improved,
)

# Hand-worked: TJC 4, SJC 9 -> 0.56*2 + 0.28*3 = 1.96; ln 25 = 3.2188758; ln 11 = 2.3978953
JOINTS = 0.56 * 2 + 0.28 * 3


def test_das28_formulas_hand_worked():
    assert das28(4, 9, esr=25, patient_global=50) == pytest.approx(
        1.96 + 0.70 * 3.2188758 + 0.014 * 50, abs=1e-7)  # 4.9132131
    assert das28(4, 9, esr=25, patient_global=50) == pytest.approx(4.9132131, abs=1e-7)
    assert das28(4, 9, crp=10, patient_global=50) == pytest.approx(
        1.96 + 0.36 * 2.3978953 + 0.7 + 0.96, abs=1e-7)  # 4.4832423
    assert das28(4, 9, esr=25) == pytest.approx((1.96 + 0.70 * 3.2188758) * 1.08 + 0.16,
                                                abs=1e-7)  # 4.7102701
    assert das28(4, 9, crp=10) == pytest.approx((1.96 + 0.36 * 2.3978953) * 1.10 + 1.15,
                                                abs=1e-7)  # 4.2555665
    # the general formula, as written in the issue and CLINICAL.md 4.5
    t, s, esr, crp, gh = 17, 11, 38, 24.5, 72
    assert das28(t, s, esr=esr, patient_global=gh) == pytest.approx(
        0.56 * math.sqrt(t) + 0.28 * math.sqrt(s) + 0.70 * math.log(esr) + 0.014 * gh)
    assert das28(t, s, crp=crp, patient_global=gh) == pytest.approx(
        0.56 * math.sqrt(t) + 0.28 * math.sqrt(s) + 0.36 * math.log(crp + 1) + 0.014 * gh
        + 0.96)


def test_das28_crp_published_minimum():
    # medicalalgorithms.com (S): minimum 0.96 (4 variables) and 1.15 (3 variables)
    assert das28(0, 0, crp=0, patient_global=0) == pytest.approx(0.96)
    assert das28(0, 0, crp=0) == pytest.approx(1.15)


@pytest.mark.parametrize("kwargs, match", [
    (dict(tjc28=29, sjc28=0, esr=10), "tjc28=29"),
    (dict(tjc28=2.5, sjc28=0, esr=10), "tjc28=2.5"),
    (dict(tjc28=2, sjc28=-1, esr=10), "sjc28=-1"),
    (dict(tjc28=2, sjc28=1, esr=0), "esr=0"),
    (dict(tjc28=2, sjc28=1, crp=-1), "crp=-1"),
    (dict(tjc28=2, sjc28=1, esr=10, crp=5), "exactly one"),
    (dict(tjc28=2, sjc28=1), "exactly one"),
    (dict(tjc28=2, sjc28=1, esr=10, patient_global=101), "patient_global=101"),
])
def test_das28_bad_arguments(kwargs, match):
    with pytest.raises(EndpointError, match=match):
        das28(**kwargs)


@pytest.mark.parametrize("value, cat", [(2.59, "remission"), (2.6, "low"), (3.19, "low"),
                                        (3.2, "moderate"), (5.1, "moderate"), (5.11, "high")])
def test_das28_category_boundaries(value, cat):
    assert das28_category(value) == cat


@pytest.mark.parametrize("base, now, resp", [
    (5.0, 4.4, "none"),       # improvement exactly 0.6 -> none
    (5.0, 4.39, "moderate"),  # 0.61
    (4.4, 3.2, "moderate"),   # exactly 1.2 with DAS28 3.2 -> not good
    (4.41, 3.2, "good"),      # 1.21 and <= 3.2
    (4.8, 3.21, "moderate"),  # > 1.2 but present DAS28 > 3.2
    (4.7, 3.5, "moderate"),   # 4.7 - 3.5 is 1.2000000000000002 in floats; exactly 1.2 here
    (6.4, 5.2, "none"),       # <= 1.2 with present > 5.1
    (6.5, 5.2, "moderate"),   # > 1.2 with present > 5.1
    (5.8, 5.11, "none"),
    (3.0, 2.0, "moderate"),   # 1.0 improvement, low activity
])
def test_eular_response_matrix(base, now, resp):
    assert eular_response(base, now) == resp


def test_improved_counts_exactly_20_percent():
    assert improved(10, 8, 20) and not improved(10, 8.01, 20)
    assert improved(50, 40, 20) and not improved(50, 40.05, 20)  # 20% vs 19.9%
    # (1.0 - 0.8) / 1.0 * 100 is 19.999999999999996 in floats: exact arithmetic counts it
    assert (1.0 - 0.8) / 1.0 * 100 < 20
    assert improved(1.0, 0.8, 20)
    assert improved(1.5, 0.75, 50) and not improved(1.5, 0.76, 50)
    assert improved(10, 3, 70) and not improved(10, 3.1, 70)
    assert not improved(0, 0, 20)  # baseline 0 cannot improve


BASE = dict(sjc=10, tjc=20, pain=60, patient_global=50, physician_global=40, haq_di=1.0,
            esr=30, crp=15)


def _follow(**kw):
    out = dict(sjc=8, tjc=16, pain=60, patient_global=50, physician_global=40, haq_di=1.0,
               esr=30, crp=15)
    out.update(kw)
    return out


def test_acr20_needs_sjc_tjc_and_three_of_five():
    # SJC and TJC exactly 20% better, 3 of 5 others exactly 20% (HAQ 1.0 -> 0.8 included)
    f = _follow(pain=48, patient_global=40, haq_di=0.8)
    assert acr_response(BASE, f) == {"acr20": True, "acr50": False, "acr70": False}
    # only 2 of 5 others improved
    assert not acr_response(BASE, _follow(pain=48, haq_di=0.8))["acr20"]
    # SJC 19.9% better: no response however good the rest
    f = _follow(sjc=8.01, pain=10, patient_global=10, physician_global=10, haq_di=0.1, esr=5)
    assert not acr_response(BASE, f)["acr20"]


def test_acr50_and_acr70_levels():
    f = dict(sjc=3, tjc=6, pain=18, patient_global=15, physician_global=20, haq_di=0.5,
             esr=9)
    # SJC/TJC 70%; pain 70%, patient global 70%, physician 50%, HAQ 50%, ESR 70%
    assert acr_response(BASE, f) == {"acr20": True, "acr50": True, "acr70": True}
    f["esr"] = 9.1  # ESR now 69.7%: only 2 of 5 others at 70%
    assert acr_response(BASE, f) == {"acr20": True, "acr50": True, "acr70": False}


def test_acute_phase_reactant_choice():
    b = dict(BASE)
    f = _follow(pain=48, patient_global=40, esr=30, crp=12)  # ESR unchanged, CRP 20% better
    assert not acr_response(b, f)["acr20"]  # auto: ESR when both have it
    assert acr_response(b, f, acute_phase="crp")["acr20"]
    b.pop("esr")
    assert acr_response(b, f)["acr20"]  # auto falls back to CRP


def test_missing_components():
    b = {k: v for k, v in BASE.items() if k != "physician_global"}
    f = _follow(pain=48, patient_global=40, haq_di=0.8)
    with pytest.raises(EndpointError, match="'physician_global' is missing"):
        acr_response(b, f)
    assert acr_response(b, f, missing="not_improved")["acr20"]
    f.pop("haq_di")
    assert not acr_response(b, f, missing="not_improved")["acr20"]


def test_baseline_zero_is_not_improved():
    b = dict(BASE, pain=0)
    f = _follow(pain=0, patient_global=40, haq_di=0.8)
    assert not acr_response(b, f)["acr20"]


def test_acr_bad_arguments():
    with pytest.raises(EndpointError, match="Did you mean 'haq_di'"):
        acr_response(dict(BASE, haq=1), _follow())
    with pytest.raises(EndpointError, match="sjc'\\]=-1"):
        acr_response(dict(BASE, sjc=-1), _follow())
    with pytest.raises(EndpointError, match="expected a mapping"):
        acr_response([1, 2], _follow())
    with pytest.raises(EndpointError, match="Did you mean 'crp'"):
        acr_response(BASE, _follow(), acute_phase="cpr")
