"""SLEDAI-2K, BILAG-2004 numeric score, PGA and SRI-4."""

import pytest

from carkinetics.endpoints import (
    BILAG_SYSTEMS,
    SLEDAI2K_WEIGHTS,
    EndpointError,
    bilag2004_score,
    check_pga,
    clinical_sledai2k,
    sledai2k,
    sri4_response,
)


def test_sledai2k_has_24_descriptors_totalling_105():
    assert len(SLEDAI2K_WEIGHTS) == 24
    weights = sorted(SLEDAI2K_WEIGHTS.values())
    assert [weights.count(w) for w in (8, 4, 2, 1)] == [8, 6, 7, 3]
    assert sledai2k(SLEDAI2K_WEIGHTS) == 8 * 8 + 6 * 4 + 7 * 2 + 3 * 1 == 105
    assert sledai2k([]) == 0


@pytest.mark.parametrize("descriptors, score", [
    (["seizure"], 8), (["arthritis"], 4), (["rash"], 2), (["fever"], 1),
    (["arthritis", "rash", "low_complement", "increased_dna_binding"], 10),
    (["proteinuria", "hematuria", "urinary_casts", "low_complement"], 14),
    (["vasculitis", "lupus_headache", "pleurisy", "leukopenia", "thrombocytopenia"], 20),
])
def test_sledai2k_hand_worked(descriptors, score):
    assert sledai2k(descriptors) == score
    assert sledai2k(iter(descriptors)) == score


def test_clinical_sledai2k_drops_serology():
    assert clinical_sledai2k(["arthritis", "low_complement", "increased_dna_binding"]) == 4


def test_sledai2k_bad_arguments():
    with pytest.raises(EndpointError, match="Did you mean 'alopecia'"):
        sledai2k(["alopecea"])
    with pytest.raises(EndpointError, match="listed twice"):
        sledai2k(["rash", "rash"])
    with pytest.raises(EndpointError, match="iterable of descriptor names"):
        sledai2k("rash")


def _grades(**kw):
    return dict.fromkeys(BILAG_SYSTEMS, "E") | kw


def test_bilag2004_numeric_conversion():
    assert len(BILAG_SYSTEMS) == 9
    assert bilag2004_score(_grades()) == 0
    assert bilag2004_score(dict.fromkeys(BILAG_SYSTEMS, "A")) == 108
    assert bilag2004_score(dict.fromkeys(BILAG_SYSTEMS, "D")) == 0
    # A 12 + B 8 + B 8 + C 1 + C 1 = 30
    g = _grades(renal="A", musculoskeletal="B", mucocutaneous="B", haematological="C",
                constitutional="c")
    assert bilag2004_score(g) == 30


def test_bilag2004_bad_arguments():
    with pytest.raises(EndpointError, match="systems \\['ophthalmic'\\] are missing"):
        bilag2004_score({s: "E" for s in BILAG_SYSTEMS if s != "ophthalmic"})
    with pytest.raises(EndpointError, match="Did you mean 'haematological'"):
        bilag2004_score(_grades(hematological="A"))
    with pytest.raises(EndpointError, match="renal'\\]='F'"):
        bilag2004_score(_grades(renal="F"))


def test_pga_range():
    assert check_pga(3) == 3.0
    with pytest.raises(EndpointError, match="pga=3.1"):
        check_pga(3.1)


def test_sri4_components_and_boundaries():
    e = _grades()
    assert sri4_response(12, 8, 2.0, 2.0, e, e)          # decrease exactly 4
    assert not sri4_response(12, 9, 2.0, 2.0, e, e)      # decrease 3
    assert sri4_response(12, 8, 2.0, 2.29, e, e)         # PGA +0.29
    assert not sri4_response(12, 8, 2.0, 2.3, e, e)      # PGA +0.3 (0.3 in floats is 0.2999..)
    assert not sri4_response(12, 8, 0.1, 0.4, e, e)      # 0.4 - 0.1 = 0.30000000000000004
    assert not sri4_response(12, 0, 2.0, 1.0, e, _grades(renal="A"))  # new A
    assert sri4_response(12, 0, 2.0, 1.0, _grades(renal="A"), _grades(renal="A"))  # not new
    assert sri4_response(12, 0, 2.0, 1.0, _grades(renal="A"), _grades(renal="B"))  # A->B
    one_b = _grades(musculoskeletal="B")
    two_b = _grades(musculoskeletal="B", mucocutaneous="B")
    assert sri4_response(12, 0, 2.0, 1.0, e, one_b)       # one new B allowed
    assert not sri4_response(12, 0, 2.0, 1.0, e, two_b)   # two new B
    assert sri4_response(12, 0, 2.0, 1.0, two_b, two_b)   # B that stayed B are not new
