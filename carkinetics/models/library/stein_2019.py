"""Stein 2019: tisagenlecleucel, piecewise expansion and bi-exponential contraction.

Typical values and IIV as transcribed by nlmixr2lib (``Stein_2019_Tisagenlecleucel``)
from Stein 2019 Table 1 (confidence S); derived numbers from the paper's abstract (R).
"""

from __future__ import annotations

from carkinetics.models.library import ModelCard, Published, Residual, Value

__all__ = ["CARD"]

_T1 = "Stein 2019 Table 1 as transcribed in nlmixr2lib Stein_2019_Tisagenlecleucel (S)"
_ABS = "Stein 2019 abstract (R): 'doubling time ... 0.78, 4.3, and 220 days'"
_IIV = (_T1 + "; nlmixr2lib enters these as omega^2 (variances) on the log/logit scale; "
        "the primary table was not checked here")

CARD = ModelCard(
    id="stein_2019",
    model_name="piecewise",
    reference=("Stein AM, Grupp SA, Levine JE, et al. Tisagenlecleucel Model-Based Cellular "
               "Kinetic Analysis of Chimeric Antigen Receptor-T Cells. CPT Pharmacometrics "
               "Syst Pharmacol 2019;8(5):285-295"),
    doi="10.1002/psp4.12388",
    population=("90 paediatric and young adult patients (age 3-25 y) with relapsed/refractory "
                "B-ALL, pooled ELIANA (NCT02435849) and ENSIGN (NCT02228096); qPCR transgene "
                "copies/ug genomic DNA"),
    typical={
        "foldx": Value(3900.0, _T1),
        "tmax": Value(9.3, _T1 + "; day"),
        "cmax": Value(24000.0, _T1 + "; copies/ug"),
        "alpha": Value(0.16, _T1 + "; 1/day"),
        "fb": Value(0.0079, _T1),
        "beta": Value(0.0032, _T1 + "; 1/day"),
    },
    iiv={
        "foldx": Value(2.4, _IIV),
        "tmax": Value(0.38, _IIV),
        "cmax": Value(0.65, _IIV),
        "alpha": Value(0.91, _IIV),
        "fb": Value(0.8, _IIV),
        "beta": Value(0.86, _IIV),
    },
    iiv_scale="variance",
    residual=Residual("log_additive", 0.56,
                      "nlmixr2lib transcription (S): constant (additive) on the log scale, "
                      "read as an SD; not proportional"),
    derived={
        "doubling_time": Published(0.78, 0.01, _ABS + " (day)"),
        "t_half_alpha": Published(4.3, 0.1, _ABS + " (initial-decline half-life, day)"),
        "t_half_beta": Published(220.0, 10.0, _ABS + " (terminal half-life, day)"),
    },
    notes=(
        "IIV: nlmixr2lib treats the published random effects as variances (omega^2); "
        "whether Stein 2019 Table 1 reports SDs or variances was not checked against the "
        "primary table. iiv_scale='variance' records the transcription, not a verified fact.",
        "The typical values give doubling time 0.780 d, initial-decline half-life 4.33 d and "
        "terminal half-life 217 d; the abstract rounds them to 0.78, 4.3 and 220 d.",
        "Effects of tocilizumab (Ftoci 1.2) and corticosteroids (Fster 1.0) on expansion are "
        "not implemented (the paper found none on the expansion rate).",
        "The model has no dose input; dose enters only through Model.with_dose (power "
        "relation on cmax), which is not part of the published model.",
    ),
)
