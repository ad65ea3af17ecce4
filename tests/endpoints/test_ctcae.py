import pytest

from carkinetics.endpoints import EndpointError, ctcae_lab_grade


@pytest.mark.parametrize("term, value, grade", [
    ("Neutrophil count decreased", 2.0, 0), ("Neutrophil count decreased", 1.5, 1),
    ("Neutrophil count decreased", 1.49, 2), ("Neutrophil count decreased", 1.0, 2),
    ("Neutrophil count decreased", 0.99, 3), ("Neutrophil count decreased", 0.5, 3),
    ("Neutrophil count decreased", 0.49, 4),
    ("Platelet count decreased", 75, 1), ("Platelet count decreased", 49, 3),
    ("Platelet count decreased", 24, 4), ("Anaemia", 95, 2), ("Anaemia", 79, 3),
    ("Lymphocyte count decreased", 0.1, 4), ("White blood cell decreased", 2.5, 2),
])
def test_grades(term, value, grade):
    assert ctcae_lab_grade(term, value) == grade


def test_lln_and_errors():
    assert ctcae_lab_grade("Neutrophil count decreased", 1.7, lln=1.5) == 0
    assert ctcae_lab_grade("Neutrophil count decreased", 1.7) == 1
    with pytest.raises(EndpointError, match="Did you mean 'Anaemia'"):
        ctcae_lab_grade("Anemia", 90)
