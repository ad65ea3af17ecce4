"""Ogasawara 2021: lisocabtagene maraleucel, piecewise model with a lag phase.

The abstract (R) reports population means of the derived quantities only; the typical
parameters are reconstructed from them (``PiecewiseLagModel.from_derived``). cmax and fb
are not in the abstract: placeholders marked "I".
"""

from __future__ import annotations

from carkinetics.models.library import ModelCard, Published, Value
from carkinetics.models.piecewise_lag import FB, OGASAWARA_2021, PiecewiseLagModel

__all__ = ["CARD"]

_ABS = ("Ogasawara 2021 abstract (R): population means of lag 3.27, doubling time 0.755, "
        "Tmax 9.29, initial-decline t1/2 5.00 and terminal t1/2 352 days")
_CALC = "I: computed here from " + _ABS

_P = PiecewiseLagModel.from_derived(
    tlag=OGASAWARA_2021["tlag"], doubling_time=OGASAWARA_2021["doubling_time"],
    tmax=OGASAWARA_2021["tmax"], t_half_alpha=OGASAWARA_2021["t_half_alpha"],
    t_half_beta=OGASAWARA_2021["t_half_beta"], cmax=24000.0, fb=FB.typical,
)

CARD = ModelCard(
    id="ogasawara_2021",
    model_name="piecewise_lag",
    reference=("Ogasawara K, et al. Population cellular kinetics of lisocabtagene "
               "maraleucel in relapsed/refractory large B-cell lymphoma (TRANSCEND NHL 001). "
               "Clin Pharmacokinet 2021 (full title not verified here; PMC8613160)"),
    doi="10.1007/s40262-021-01039-5",
    population=("261 adults with relapsed/refractory large B-cell lymphoma in TRANSCEND NHL "
                "001 (NCT02631044), 2524 post-infusion transgene (qPCR) observations"),
    typical={
        "tlag": Value(float(_P["tlag"]), _ABS + "; lag 3.27 d"),
        "foldx": Value(float(_P["foldx"]), _CALC + ": exp(ln2/0.755 x (9.29 - 3.27))"),
        "tmax": Value(float(_P["tmax"]), _ABS + "; Tmax 9.29 d, taken as measured from "
                      "infusion (I)"),
        "cmax": Value(float(_P["cmax"]), "I: not in the abstract; placeholder 24000 copies/ug "
                      "(Stein 2019's tisagenlecleucel value)"),
        "alpha": Value(float(_P["alpha"]), _CALC + ": ln2 / 5.00"),
        "fb": Value(float(_P["fb"]), "I: not in the abstract; placeholder 0.0079 (Stein "
                    "2019's tisagenlecleucel value)"),
        "beta": Value(float(_P["beta"]), _CALC + ": ln2 / 352"),
    },
    iiv={},
    iiv_scale=None,
    residual=None,
    derived={
        "tlag": Published(3.27, 0.01, _ABS),
        "doubling_time": Published(0.755, 0.001, _ABS),
        "tmax": Published(9.29, 0.01, _ABS),
        "t_half_alpha": Published(5.00, 0.01, _ABS),
        "t_half_beta": Published(352.0, 1.0, _ABS),
    },
    notes=(
        "The paper's exact parameterisation was not read: C = r0 during the lag, growth at "
        "rho = ln(foldx)/(tmax - tlag) to cmax at tmax (from infusion), then Stein's "
        "bi-exponential. This reproduces the published derived numbers by construction.",
        "The published numbers are population means of derived quantities; using them as "
        "typical parameter values ignores the difference between a mean of a nonlinear "
        "function and the function of typical values.",
        "cmax and fb are placeholders (I); IIV magnitudes and the residual error were not "
        "retrieved (iiv empty, residual None).",
    ),
)
