import numpy as np
import pandas as pd
import pytest

from carkinetics.endpoints import validate_ae

NAN = np.nan
CRS, ICANS = "Cytokine release syndrome", "Immune effector cell-associated neurotoxicity syndrome"
ANC = "Neutrophil count decreased"


@pytest.fixture
def participants():
    """Six participants in two dose levels; P3 and P6 have no adverse events."""
    return pd.DataFrame({
        "id": ["P1", "P2", "P3", "P4", "P5", "P6"], "dose_level": [1, 1, 1, 2, 2, 2],
        "dose": [0.5e6] * 3 + [1e6] * 3, "follow_up_days": [365.0] * 6})


@pytest.fixture
def ae(participants):
    rows = [
        ("P1", CRS, 2, 4, 1, False, "crs"),
        ("P1", ANC, 0, 10, 4, False, "cytopenia"),
        ("P2", CRS, 1, 3, 2, True, "crs"),
        ("P2", CRS, 4, 5, 3, True, "crs"),           # touches the previous record: one episode
        ("P4", "Pneumonia", 60, 70, 3, True, "infection"),
        ("P4", CRS, 3, NAN, 1, False, "crs"),         # ongoing
        ("P5", ANC, 1, 40, 3, False, "cytopenia"),
        ("P5", ICANS, 6, 8, 3, True, "icans"),
        ("P5", ICANS, 12, 12, 1, False, "icans"),     # a second episode
        ("P5", "Upper respiratory tract infection", 100, 105, 1, False, "infection"),
    ]
    df = pd.DataFrame(rows, columns=["id", "term", "onset_day", "resolution_day", "grade",
                                     "serious", "category"])
    return validate_ae(df, participants=participants)
